//! The TCP connection tracker, as Linux 6.x's
//! net/netfilter/nf_conntrack_proto_tcp.c behaves (reference/tcp-tracking.md).
//!
//! Sans-I/O like the rest of the crate: a [`Tcp`] is the per-connection
//! private part of a conntrack entry (`struct ip_ct_tcp`). The entry table
//! owns it and feeds it one parsed [`TcpSegment`] per packet; the tracker
//! answers with a [`TcpOutcome`] the table acts on (timeouts, ASSURED,
//! INVALID, deleting the entry). Nothing here reads a clock: timeouts come
//! back as [`Duration`]s relative to the packet's arrival.
//!
//! Module map:
//! - [`segment`]: `tcp_error()` header checks and option parsing → [`TcpSegment`];
//! - [`table`]: the transition table `tcp_conntracks`, written as a `const`;
//! - `window`: `tcp_in_window()`, the per-direction sequence/window tracking;
//! - `tracker`: `tcp_new()` and `nf_conntrack_tcp_packet()` on [`Tcp`];
//! - [`seq`]: modulo-2³² sequence numbers.
//!
//! # How the entry table drives it
//!
//! ```
//! use ctsim_conntrack::tcp::{Dir, Tcp, TcpFlags, TcpOutcome, TcpSegment, TcpSysctl};
//! let sysctl = TcpSysctl::default();
//! let syn = TcpSegment::new(TcpFlags::SYN, 1000, 0, 64240);
//! // No entry yet: tcp_new(), then tcp_packet() on the same segment.
//! let mut tcp = Tcp::new(&syn, &sysctl).expect("a SYN may open a connection");
//! let out = tcp.packet(Dir::Original, &syn, false, false, &sysctl);
//! assert!(matches!(out, TcpOutcome::Accept { assured: false, .. }));
//! assert_eq!(tcp.state().to_string(), "SYN_SENT");
//! ```

use std::fmt;

use crate::time::Duration;

pub mod segment;
pub mod seq;
pub mod table;
mod tracker;
mod window;

pub use segment::{TcpFlags, TcpSegment};
pub use seq::Seq;
pub use table::{Next, PacketClass};
pub use tracker::{Tcp, TcpWindow, INVALID_NEW, LOOSE_OFF};
pub use window::{
    ACK_OVER_UPPER, ACK_UNDER_LOWER, BYTES_MORE_THAN_EXPECTED, CHALLENGE_ACK_IGNORED, INVALID_RST,
    SEQ_OVER_UPPER, SEQ_UNDER_LOWER,
};

/// The tracker's guess of the connection's state (`enum tcp_conntrack`),
/// numbered as in the kernel. `Display` gives the `conntrack -L` spelling.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum TcpConntrack {
    /// Initial: an entry between `tcp_new()` and its first `tcp_packet()`.
    #[default]
    None = 0,
    /// SYN seen in ORIGINAL.
    SynSent = 1,
    /// SYN/ACK seen.
    SynRecv = 2,
    /// Handshake ACK seen (or a mid-stream pickup).
    Established = 3,
    /// A FIN seen.
    FinWait = 4,
    /// A FIN acknowledged.
    CloseWait = 5,
    /// FINs seen in both directions.
    LastAck = 6,
    /// The last ACK seen.
    TimeWait = 7,
    /// RST seen.
    Close = 8,
    /// SYN seen in both directions (simultaneous open); the old LISTEN slot.
    SynSent2 = 9,
}

impl TcpConntrack {
    /// All states in numeric order (the table's column order).
    pub const ALL: [TcpConntrack; 10] = [
        TcpConntrack::None,
        TcpConntrack::SynSent,
        TcpConntrack::SynRecv,
        TcpConntrack::Established,
        TcpConntrack::FinWait,
        TcpConntrack::CloseWait,
        TcpConntrack::LastAck,
        TcpConntrack::TimeWait,
        TcpConntrack::Close,
        TcpConntrack::SynSent2,
    ];

    /// `tcp_conntrack_names[]`.
    pub const fn name(self) -> &'static str {
        match self {
            TcpConntrack::None => "NONE",
            TcpConntrack::SynSent => "SYN_SENT",
            TcpConntrack::SynRecv => "SYN_RECV",
            TcpConntrack::Established => "ESTABLISHED",
            TcpConntrack::FinWait => "FIN_WAIT",
            TcpConntrack::CloseWait => "CLOSE_WAIT",
            TcpConntrack::LastAck => "LAST_ACK",
            TcpConntrack::TimeWait => "TIME_WAIT",
            TcpConntrack::Close => "CLOSE",
            TcpConntrack::SynSent2 => "SYN_SENT2",
        }
    }

    /// `tcp_can_early_drop()`: the closing states, which early drop and the
    /// GC's 95 % rule may evict even when ASSURED. An RST in one of them
    /// also skips every sequence check (the tuple may have been reused).
    pub const fn can_early_drop(self) -> bool {
        matches!(
            self,
            TcpConntrack::FinWait
                | TcpConntrack::CloseWait
                | TcpConntrack::LastAck
                | TcpConntrack::TimeWait
                | TcpConntrack::Close
        )
    }
}

impl fmt::Display for TcpConntrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Direction of a packet relative to the entry (`enum ip_conntrack_dir`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Dir {
    /// Matches the ORIGINAL tuple (the first packet's direction).
    #[default]
    Original = 0,
    /// Matches the REPLY tuple.
    Reply = 1,
}

impl Dir {
    /// The other direction (`!dir`).
    #[inline]
    pub const fn opposite(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// `nf_conntrack_tcp_timeout_*` (and the two slots without a state).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TcpTimeouts {
    /// SYN_SENT, and the "new" timeout (`timeouts[0]`): 120 s.
    pub syn_sent: Duration,
    /// SYN_RECV: 60 s.
    pub syn_recv: Duration,
    /// ESTABLISHED: 432000 s (5 days).
    pub established: Duration,
    /// FIN_WAIT: 120 s.
    pub fin_wait: Duration,
    /// CLOSE_WAIT: 60 s.
    pub close_wait: Duration,
    /// LAST_ACK: 30 s.
    pub last_ack: Duration,
    /// TIME_WAIT: 120 s.
    pub time_wait: Duration,
    /// CLOSE: 10 s (also every accepted RST).
    pub close: Duration,
    /// SYN_SENT2: 120 s. Linux has no sysctl for it (only cttimeout
    /// policies set it); extension of the agreed interface.
    pub syn_sent2: Duration,
    /// `nf_conntrack_tcp_timeout_max_retrans`: 300 s.
    pub retrans: Duration,
    /// `nf_conntrack_tcp_timeout_unacknowledged`: 300 s.
    pub unacknowledged: Duration,
}

impl Default for TcpTimeouts {
    fn default() -> Self {
        TcpTimeouts {
            syn_sent: Duration::from_secs(120),
            syn_recv: Duration::from_secs(60),
            established: Duration::from_secs(432_000),
            fin_wait: Duration::from_secs(120),
            close_wait: Duration::from_secs(60),
            last_ack: Duration::from_secs(30),
            time_wait: Duration::from_secs(120),
            close: Duration::from_secs(10),
            syn_sent2: Duration::from_secs(120),
            retrans: Duration::from_secs(300),
            unacknowledged: Duration::from_secs(300),
        }
    }
}

impl TcpTimeouts {
    /// `timeouts[state]`; NONE uses the SYN_SENT value like the kernel's
    /// `timeouts[0]`.
    pub const fn for_state(&self, state: TcpConntrack) -> Duration {
        match state {
            TcpConntrack::None | TcpConntrack::SynSent => self.syn_sent,
            TcpConntrack::SynRecv => self.syn_recv,
            TcpConntrack::Established => self.established,
            TcpConntrack::FinWait => self.fin_wait,
            TcpConntrack::CloseWait => self.close_wait,
            TcpConntrack::LastAck => self.last_ack,
            TcpConntrack::TimeWait => self.time_wait,
            TcpConntrack::Close => self.close,
            TcpConntrack::SynSent2 => self.syn_sent2,
        }
    }
}

/// The TCP sysctls under net.netfilter (per network namespace).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TcpSysctl {
    /// `nf_conntrack_tcp_loose` (default on): a lone ACK may create an
    /// ESTABLISHED entry with liberal window checks.
    pub loose: bool,
    /// `nf_conntrack_tcp_be_liberal` (default off): window-check failures
    /// are accepted. The table, RST sequence and header checks still apply.
    pub be_liberal: bool,
    /// `nf_conntrack_tcp_max_retrans` (default 3).
    pub max_retrans: u32,
    /// `nf_conntrack_tcp_ignore_invalid_rst` (default off).
    pub ignore_invalid_rst: bool,
    /// `nf_conntrack_tcp_timeout_*`.
    pub timeouts: TcpTimeouts,
}

impl Default for TcpSysctl {
    fn default() -> Self {
        TcpSysctl {
            loose: true,
            be_liberal: false,
            max_retrans: 3,
            ignore_invalid_rst: false,
            timeouts: TcpTimeouts::default(),
        }
    }
}

/// What the entry table does with the packet after [`Tcp::packet`].
///
/// Whenever the packet is let through with its entry (every variant except
/// `Invalid*` and `Reopen`) and it travels in [`Dir::Reply`], the caller then
/// sets IPS_SEEN_REPLY if not yet set, as `nf_conntrack_in()` does after the
/// tracker returns. The refresh of an `Accept` is the caller's
/// `nf_ct_refresh_acct()`: skipped under IPS_FIXED_TIMEOUT.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[must_use]
pub enum TcpOutcome {
    /// Accepted and in window: the state may have changed (see
    /// [`Tcp::state`]); set the entry's timeout to now + `timeout` and
    /// account the packet. `assured`: set IPS_ASSURED now (with its event);
    /// true exactly when Linux sets it here.
    Accept {
        /// The entry's new timeout, from now.
        timeout: Duration,
        /// Set IPS_ASSURED now.
        assured: bool,
    },
    /// Accepted, state updated, but the timeout is **not** refreshed and the
    /// packet is not accounted: a retransmitted SYN while still in SYN_SENT
    /// without reply (so port reuse cannot keep an entry alive forever).
    /// Extension of the agreed interface.
    AcceptNoRefresh,
    /// Accepted, and the caller deletes the entry now (DESTROY event,
    /// `nf_ct_kill_acct()`): an RST before any reply was seen, e.g. "port
    /// closed". The state is already CLOSE. Extension of the agreed
    /// interface.
    AcceptAndDestroy,
    /// The packet is INVALID (it leaves conntrack without an entry; the
    /// `invalid` counter goes up). `reason` is the text Linux logs with
    /// `nf_conntrack_log_invalid` (a number Linux prints inside the text is
    /// left out, see [`SEQ_OVER_UPPER`] and its siblings). The TCP state is
    /// unchanged.
    Invalid {
        /// Linux's log text.
        reason: &'static str,
    },
    /// Like `Invalid`, and in addition (`nf_tcp_handle_invalid()`): if the
    /// entry's remaining timeout is at least 120 s and greater than
    /// `timeout`, set it to now + `timeout` — unless IPS_FIXED_TIMEOUT. Given
    /// for an out-of-window FIN/RST on an ASSURED entry answering a FIN/RST
    /// of the other direction. Extension of the agreed interface.
    InvalidLowerTimeout {
        /// Linux's log text.
        reason: &'static str,
        /// `nf_conntrack_tcp_timeout_unacknowledged`.
        timeout: Duration,
    },
    /// A SYN reopens a connection in TIME_WAIT/CLOSE: delete this entry
    /// (DESTROY event) and handle the packet again from the start as one
    /// without entry (it creates a new one, NEW event). Not INVALID.
    Reopen,
    /// Linux's "ignored" outcome: the packet is accepted (NF_ACCEPT) with
    /// its entry and ctinfo, but nothing else happens — no state change, no
    /// timeout refresh, no accounting. `reason` is the debug text Linux
    /// logs (only with `nf_conntrack_log_invalid`). Internal bookkeeping
    /// (`last_*`) may have changed so that a later SYN/ACK or RST is
    /// understood.
    Ignore {
        /// Linux's log text.
        reason: &'static str,
    },
}

impl TcpOutcome {
    /// The packet passes conntrack with its entry (anything but INVALID and
    /// reopen).
    pub const fn is_accepted(&self) -> bool {
        !matches!(
            self,
            TcpOutcome::Invalid { .. }
                | TcpOutcome::InvalidLowerTimeout { .. }
                | TcpOutcome::Reopen
        )
    }

    /// The packet is INVALID.
    pub const fn is_invalid(&self) -> bool {
        matches!(
            self,
            TcpOutcome::Invalid { .. } | TcpOutcome::InvalidLowerTimeout { .. }
        )
    }
}
