//! Events as `conntrack -E` receives them (ctnetlink_conntrack_event(),
//! ctnetlink_expect_event(); reference/conntrack-tool-formats.md §5–6).
//!
//! Which change gives which line, as Linux 6.x decides:
//! - `[NEW]`: the entry was confirmed (IPCT_NEW, or IPCT_RELATED for an
//!   expected connection), delivered when its first packet passes confirm.
//! - `[UPDATE]`: any other cached bit when a later packet of the entry passes
//!   confirm: REPLY (first reply), ASSURED, PROTOINFO (TCP state change),
//!   HELPER, MARK. Events are cached while a packet is in the hooks and
//!   delivered at confirm, so one packet gives at most one line.
//! - `[DESTROY]`: the entry left the table (timeout, early drop, flush,
//!   delete, TCP RST before a reply, re-open), emitted at once.
//!
//! What a line shows follows the attributes Linux puts in the message: the
//! timeout only if at least one second remains (so never after expiry), the
//! TCP state only with PROTOINFO or DESTROY, counters and `delta-time` only
//! with DESTROY, `mark=` when non-zero or just changed, never `use=`.

use crate::format::{Flow, FormatOpts};
use crate::time::Instant;
use crate::tuple::Tuple;
use crate::EntryKey;

/// The message type `conntrack -E` prints as the prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EventKind {
    New,
    Update,
    Destroy,
}

impl EventKind {
    /// The prefix, right-justified in 9 columns plus a space.
    pub const fn prefix(self) -> &'static str {
        match self {
            EventKind::New => "    [NEW] ",
            EventKind::Update => " [UPDATE] ",
            EventKind::Destroy => "[DESTROY] ",
        }
    }
}

/// One conntrack event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it was emitted.
    pub at: Instant,
    pub kind: EventKind,
    /// The cached `IPCT_*` bits that made it.
    pub mask: crate::status::EventMask,
    /// The entry it is about (its slot may already be free).
    pub entry: EntryKey,
    /// Netlink port id of the process that caused it (`conntrack -D`,
    /// `-F`): printed as ` [USERSPACE] portid=N progname=conntrack`.
    pub userspace_portid: Option<u32>,
    pub(crate) flow: Flow,
}

impl Event {
    /// The original tuple.
    pub fn orig(&self) -> &Tuple {
        &self.flow.orig
    }
    /// The reply tuple.
    pub fn reply(&self) -> &Tuple {
        &self.flow.reply
    }
    /// The entry's id (`-o id`).
    pub fn id(&self) -> u32 {
        self.flow.id
    }

    /// The line `conntrack -E` prints, with the given `-o` options and
    /// without the newline.
    pub fn line(&self, opts: FormatOpts) -> String {
        let mut s = String::with_capacity(200);
        s.push_str(self.kind.prefix());
        self.flow.write(&mut s, opts);
        if let Some(p) = self.userspace_portid {
            s.push_str(" [USERSPACE] portid=");
            s.push_str(&p.to_string());
            s.push_str(" progname=conntrack");
        }
        s
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line(FormatOpts::default()))
    }
}

/// An expectation event (`conntrack -E expect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectEvent {
    pub at: Instant,
    /// `New` or `Destroy`.
    pub kind: EventKind,
    /// The line after the prefix (the `-L expect` format).
    pub(crate) body: String,
}

impl ExpectEvent {
    /// The line `conntrack -E expect` prints, without the newline.
    pub fn line(&self) -> String {
        format!("{}{}", self.kind.prefix(), self.body)
    }
}
