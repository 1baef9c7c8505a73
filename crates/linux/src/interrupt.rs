//! Ctrl-C (SIGINT) and SIGTERM during a replay: the signal only raises a
//! flag; the replay loop sees it within a few milliseconds, returns, and the
//! [`Lab`](crate::Lab)'s `Drop` deletes the namespaces. Without this, the
//! default action would kill the process with its namespaces still there.

use std::sync::atomic::{AtomicBool, Ordering};

static RAISED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: nothing else is safe in a signal handler.
    RAISED.store(true, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM from now on.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler is async-signal-safe (one atomic store) and lives
    // for the whole program.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether a signal asked the run to stop.
pub fn raised() -> bool {
    RAISED.load(Ordering::SeqCst)
}
