//! Connection tracking as Linux 6.x does it, without I/O.
//!
//! This crate is fully deterministic: it has no networking code, reads no
//! clock and draws no randomness. Time arrives as an argument (`now`), and
//! everything it decides comes back as return values and polled events.
//! The same inputs always give the same table, events and output bytes.
//!
//! # Contract
//!
//! A [`Conntrack`] is one network namespace's conntrack. Its driver (the
//! netfilter layer of a router) calls, per packet, in hook order:
//!
//! 1. [`Conntrack::handle_packet`] at PRE_ROUTING or LOCAL_OUT (priority
//!    -200): `nf_conntrack_in()`. The result carries the packet's reference
//!    ([`EntryRef`], Linux's `skb->_nfct`) and ctinfo, or says INVALID, or
//!    asks to drop (table full).
//! 2. [`Conntrack::confirm`] when the packet leaves through POST_ROUTING or
//!    LOCAL_IN (priority INT_MAX), or [`Conntrack::release`] when it is
//!    dropped earlier. Only `confirm` inserts a new entry; a first packet
//!    dropped before it leaves nothing behind. Cached events are delivered
//!    at `confirm`.
//!
//! and between inputs: [`Conntrack::poll_timeout`] /
//! [`Conntrack::handle_timeout`] for expiry, [`Conntrack::poll_event`] for
//! `conntrack -E`, [`Conntrack::poll_log`] for kernel messages. Getters and
//! the `conntrack_*` formatters give `conntrack -L/-S/-C` byte for byte.
//!
//! Panics: none on any packet bytes. Misuse (a reference given back twice,
//! to another table) is caught by debug assertions.
//!
//! # Modules
//!
//! - [`tuple`]: tuples, zones, ICMP type tables.
//! - [`status`]: status bits, ctinfo, `--ctstate` states, event bits.
//! - [`sysctl`]: net.netfilter sysctls with Linux names and defaults.
//! - `table`: the table itself ([`Conntrack`], [`Entry`]): arena, hash,
//!   timers, clash handling, early drop, UDP/ICMP/generic trackers.
//! - `table/nat`: what NAT needs of the table ([`Conntrack::tuple_taken`],
//!   [`Conntrack::nat_bind`], the by-source index); the NAT layer itself
//!   is ctsim-netfilter's `nat`.
//! - [`tcp`]: the TCP tracker.
//! - [`format`], [`event`]: conntrack-tools output.
//! - [`expect`]: expectations. [`filter`]: `-L`/`-D` filters.
//! - [`helper`]: conntrack helpers (ftp, tftp, irc, sip, snmp,
//!   netbios-ns): registry and parsers; [`Conntrack::help`] runs them.
//! - [`seqadj`]: sequence adjustment after NAT helpers resize payloads.
//! - [`stats`]: `conntrack -S` counters. [`time`]: nanosecond time.
//!
//! # Example
//!
//! ```
//! use ctsim_conntrack::{Conntrack, CtHook, CtState, Zone, time::Instant};
//! # fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
//! #     let mut p = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
//! #     p.extend_from_slice(&src); p.extend_from_slice(&dst);
//! #     p.extend_from_slice(&sport.to_be_bytes()); p.extend_from_slice(&dport.to_be_bytes());
//! #     p.extend_from_slice(&[0, 8, 0, 0]); p
//! # }
//! let mut ct = Conntrack::default();
//! let now = Instant(0);
//! let req = udp([192, 0, 2, 2], 40002, [198, 51, 100, 2], 5000);
//! let r = ct.handle_packet(&req, CtHook::PreRouting, Zone(0), now);
//! assert_eq!(r.state(), CtState::New);
//! let _ = ct.confirm(r.ct.unwrap(), now);
//! let ev = ct.poll_event().unwrap();
//! assert_eq!(
//!     ev.to_string(),
//!     "    [NEW] udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 \
//!      [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002"
//! );
//! ```

#![forbid(unsafe_code)]

pub mod event;
pub mod expect;
pub mod filter;
pub mod format;
pub mod helper;
pub mod seqadj;
pub mod stats;
pub mod status;
pub mod sysctl;
mod table;
pub mod tcp;
pub mod time;
pub mod tuple;
mod wire;

pub use event::{Event, EventKind, ExpectEvent};
pub use filter::Filter;
pub use format::{Counter, FormatOpts};
pub use stats::Stats;
pub use status::{CtInfo, CtState, EventMask, Status};
pub use sysctl::Sysctls;
pub use table::nat::{BindError, Manip, HARDER_THRESH};
pub use table::{
    Confirmed, Conntrack, CtHook, Entry, EntryKey, EntryRef, Invalid, KernelLog, PacketResult,
    Table, Verdict, EXPECT_TABLE_FULL_MSG, ICMP_NOT_NEW, ICMP_NO_MATCH, ICMP_QUOTE_UNTRACKABLE,
    NO_INVERSE, NO_TUPLE, TABLE_FULL_MSG,
};
pub use tcp::Dir;
pub use tuple::{Tuple, Zone};
