//! The iptables rule engine of ctsim: tables, chains, rules, matches and
//! targets with Linux 6.x netfilter semantics, the `iptables-restore`
//! parser, the `iptables-save -c` and `iptables -L -v -n` printers, and
//! `iptables` commands (`-A`, `-I`, `-D`, `-R`, `-F`, `-P`, `-N`, `-X`, `-Z`).
//!
//! # Contract
//!
//! The crate is deterministic and sans-I/O: it has no networking code, never
//! reads a clock and uses no randomness. Time (`now`, for `-m limit`) and the
//! packet's connection (a [`ConnView`] the caller fills from
//! ctsim-conntrack) arrive as arguments; what must happen outside (NAT
//! bindings, conntrack templates, REJECT replies, log lines) is returned in
//! an [`Outcome`] for the caller to act on. Parsing never panics on any
//! input; errors carry a line and column.
//!
//! # Calling it
//!
//! The router calls [`Ruleset::hook`] (or [`Ruleset::hook_range`], to run
//! raw before its conntrack lookup at -200 and the rest after) once per
//! hook with a [`HookInput`], the packet's [`PacketMeta`] (skb mark and
//! trace flag, changed in place), a [`ConnView`] and a reused [`Outcome`].
//! It gets a [`Decision`] back; the outcome holds the NAT binding to make,
//! the new connmark, `CT --notrack/--helper/--zone` requests, a REJECT reply
//! datagram, LOG/TRACE lines and, when `record_walk` is set, the walk (each
//! matched rule, return, policy and skipped nat table;
//! [`Ruleset::rule_text`] gives a step's rule as `-A CHAIN ...`). Only
//! tables that were loaded or touched by a command are traversed, as with
//! iptables-nft. The nat chains are consulted only for a connection's first
//! packet (hooks.md §7). Matching allocates nothing; LOG, TRACE and REJECT
//! do.
//!
//! # Where it differs from the kernel
//!
//! - `iptables-save`'s header and footer carry a date: [`SaveHeader`] takes
//!   it as an argument ([`SaveHeader::at_secs`] prints simulated seconds as
//!   a 1970 date), so output is deterministic.
//! - [`Ruleset::restore`] always loads `[packets:bytes]` counters, as
//!   `iptables-restore -c` does.
//! - LOG/TRACE lines have no `MAC=` field (ctsim links carry no Ethernet
//!   header) and no trailing space.
//! - `-m limit` runs with HZ = 1000 (32 credits per jiffy); the bucket
//!   starts full at the rule's first packet.
//! - Names are not resolved: addresses and ports are numeric (a few service
//!   names such as `ssh` are known).
//!
//! # Modules
//!
//! - [`model`]: hooks with their priorities, tables, chains, rules, matches,
//!   targets.
//! - `parse` and `ruleset`: [`Ruleset::parse`], [`Ruleset::restore`],
//!   [`Ruleset::command`].
//! - `print`: [`Ruleset::save`] and [`Ruleset::list`].
//! - `eval`: [`Ruleset::hook`], the traversal; [`ConnView`] and
//!   [`CtSnapshot`].
//! - [`nat`]: NAT bindings ([`nat::setup`]) and packet rewriting
//!   ([`nat::packet`]) over ctsim-conntrack entries.
//! - [`helper`]: conntrack helpers at the confirm hook with their NAT
//!   halves ([`helper::confirm_hook`]); [`seqadj`]: sequence adjustment
//!   of packets after a helper resized a payload.
//! - `view`: [`EntryView`], a [`ConnView`] over a ctsim-conntrack
//!   [`Entry`](ctsim_conntrack::Entry).
//!
//! # Example
//!
//! ```
//! use ctsim_netfilter::*;
//!
//! let mut rs = Ruleset::parse("*filter\n:INPUT DROP [0:0]\n\
//!     -A INPUT -p tcp --dport 22 -m state --state NEW,ESTABLISHED -j ACCEPT\nCOMMIT\n").unwrap();
//! rs.command("-A INPUT -p icmp -j ACCEPT").unwrap();
//! assert!(rs.save(&SaveHeader::at_secs(0)).contains("-A INPUT -p icmp -j ACCEPT"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod eval;
pub mod helper;
pub mod model;
pub mod nat;
mod parse;
mod print;
mod ruleset;
pub mod seqadj;
mod view;

pub use eval::{
    log_line, ConnView, CtSnapshot, Decision, HookInput, LogLine, NatRequest, Outcome, PacketMeta,
    StepKind, WalkStep,
};
pub use model::*;
pub use parse::ParseError;
pub use print::{ctime, rule_options, rule_text, SaveHeader};
pub use ruleset::Ruleset;
pub use view::EntryView;
