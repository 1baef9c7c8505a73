//! One lock for every kernel-side run on the machine: shared by runs that
//! touch only their own namespaces, exclusive for a run that changes a
//! setting of the initial namespace (it would change every other run's
//! limits while it lasts).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

const PATH: &str = "/run/lock/ctsim-linux-diff.lock";

pub(crate) struct Lock(File);

impl Lock {
    pub(crate) fn take(exclusive: bool) -> std::io::Result<Lock> {
        let _ = std::fs::create_dir_all("/run/lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PATH)?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on a descriptor we own; the lock goes with the file.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
