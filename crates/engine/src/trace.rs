//! What happened during a run, packet by packet.
//!
//! Nodes and links report events here; the scenario runner turns them into the
//! timeline and evaluates checks over them. Recording copies packet bytes, so
//! it can be switched off for pure throughput runs, leaving only counters.

use std::fmt;

pub use ctsim_conntrack::CtState;

use crate::time::Instant;
use crate::topology::{LinkId, NodeId};

/// Where an event happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Place {
    /// At a node's interface (`port` indexes the node's interfaces).
    Node { node: NodeId, port: u16 },
    /// Inside a node, at no interface (its conntrack table, its kernel log).
    Inside { node: NodeId },
    /// On a link, in direction `dir` (0: from ends[0] towards ends[1]).
    Link { link: LinkId, dir: u8 },
}

/// What happened to the packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum What {
    /// A host or router emitted a packet of its own.
    Sent,
    /// A host, or a router for itself (INPUT), took a packet in.
    Received,
    /// A router passed a packet on through interface `to`.
    Forwarded { to: u16 },
    /// A node or link discarded the packet.
    Dropped(DropReason),
    /// A conntrack event (`[NEW]`, `[UPDATE]`, `[DESTROY]`) as `conntrack -E`
    /// prints it; the line is the record's `text`.
    Conntrack,
    /// A kernel log message (e.g. conntrack's "table full, dropping packet",
    /// or a LOG/TRACE line); the message is the record's `text`.
    Kernel,
    /// One step of a packet's walk through a router's hooks, recorded just
    /// after the packet's own record: `hook` is `PREROUTING` … `POSTROUTING`
    /// (or `routing`, `verdict`), `step` the table or stage (`raw`,
    /// `conntrack`, `nat`, `filter`, `dnat`, `snat`, …; empty for routing
    /// and verdict), and the record's `text` says what happened there.
    Walk {
        hook: &'static str,
        step: &'static str,
    },
    /// An administrator's command run on a node during the run (`iptables
    /// …`, `conntrack …`): the command line and, on the lines after it, what
    /// it printed or the error, as the record's `text`.
    Command,
}

/// What conntrack made of a packet at a router: the state iptables'
/// `--ctstate` matches, and for INVALID the reason Linux logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CtNote {
    pub state: CtState,
    pub invalid: Option<&'static str>,
}

impl fmt::Display for CtNote {
    /// `[NEW]`, `[INVALID: SEQ is over the upper bound]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.invalid {
            Some(reason) => write!(f, "[{}: {reason}]", self.state.name()),
            None => write!(f, "[{}]", self.state.name()),
        }
    }
}

/// Why a packet was discarded. The words follow what Linux counts or logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// Random loss on a link.
    Loss,
    /// The link's transmit queue was full (tail drop).
    QueueFull,
    /// Larger than the link's MTU.
    Mtu,
    /// The link was down.
    LinkDown,
    /// Nothing attached at the interface (no link).
    NoLink,
    /// TTL would reach zero: the router sent ICMP time-exceeded.
    TtlExceeded,
    /// No route to the destination: the router sent ICMP net-unreachable.
    NoRoute,
    /// The next hop is not on the link: the router sent ICMP host-unreachable.
    NoNeighbour,
    /// DF set and larger than the next link's MTU: the router sent frag-needed.
    FragNeeded,
    /// Not a valid IPv4 datagram.
    Malformed,
    /// Conntrack dropped it (table full, or an unresolvable clash at confirm).
    Conntrack,
    /// Addressed to another host (hosts do not forward).
    NotForUs,
    /// A netfilter rule or policy dropped it (Linux's `NETFILTER_DROP`).
    Netfilter,
}

impl DropReason {
    /// Short keyword used in checks (`reason: loss`) and the timeline.
    pub fn keyword(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::QueueFull => "queue",
            DropReason::Mtu => "mtu",
            DropReason::LinkDown => "down",
            DropReason::NoLink => "no-link",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::NoRoute => "no-route",
            DropReason::NoNeighbour => "no-neighbour",
            DropReason::FragNeeded => "frag-needed",
            DropReason::Malformed => "malformed",
            DropReason::Conntrack => "conntrack",
            DropReason::NotForUs => "not-for-us",
            DropReason::Netfilter => "netfilter",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// One event of the timeline.
#[derive(Clone, Debug)]
pub struct Record {
    pub time: Instant,
    pub place: Place,
    pub what: What,
    /// The packet's bytes (empty for [`What::Conntrack`] and [`What::Kernel`]).
    pub packet: Box<[u8]>,
    /// At a router that tracks connections: the packet's conntrack state.
    pub ct: Option<CtNote>,
    /// The line of a [`What::Conntrack`] or [`What::Kernel`] record.
    pub text: Option<Box<str>>,
    /// The packet as the router received it, when NAT rewrote it on its way
    /// through (`packet` is what left).
    pub before: Option<Box<[u8]>>,
}

impl Record {
    /// Whether the packet, as it left or (NATed) as it came in, matches.
    pub fn matches(&self, filter: &ctsim_packet::Filter) -> bool {
        self.text.is_none()
            && (filter.matches(&self.packet)
                || self.before.as_deref().is_some_and(|b| filter.matches(b)))
    }
}

/// A packet crossing the boundary of the node being tapped (see
/// [`crate::Sim::tap`]): what reached one of its interfaces from a link, or
/// what it handed to one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tapped {
    pub time: Instant,
    pub port: u16,
    /// `true`: the node received it; `false`: the node sent it.
    pub inbound: bool,
    pub packet: Box<[u8]>,
}

/// The run's record of events, in the order they happened.
#[derive(Default)]
pub struct Trace {
    enabled: bool,
    records: Vec<Record>,
    /// The node whose every packet in and out is kept, and those packets.
    tap: Option<(NodeId, Vec<Tapped>)>,
}

impl Trace {
    pub fn new(enabled: bool) -> Self {
        Trace {
            enabled,
            records: Vec::new(),
            tap: None,
        }
    }

    /// Starts keeping every packet `node` receives from or gives to a link.
    pub fn tap(&mut self, node: NodeId) {
        self.tap = Some((node, Vec::new()));
    }

    /// Keeps a copy of the packet when `node` is the tapped one (on every
    /// packet's path: inlined, so an untapped run pays one branch).
    #[inline]
    pub fn tap_packet(
        &mut self,
        time: Instant,
        node: NodeId,
        port: u16,
        inbound: bool,
        packet: &[u8],
    ) {
        if let Some((n, packets)) = &mut self.tap {
            if *n == node {
                packets.push(Tapped {
                    time,
                    port,
                    inbound,
                    packet: packet.into(),
                });
            }
        }
    }

    /// What the tap kept, in order.
    pub fn tapped(&self) -> &[Tapped] {
        self.tap.as_ref().map_or(&[], |(_, p)| p)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn record(&mut self, time: Instant, place: Place, what: What, packet: &[u8]) {
        self.record_ct(time, place, what, packet, None);
    }

    /// Like [`record`](Self::record), with the packet's conntrack state.
    pub fn record_ct(
        &mut self,
        time: Instant,
        place: Place,
        what: What,
        packet: &[u8],
        ct: Option<CtNote>,
    ) {
        if self.enabled {
            self.records.push(Record {
                time,
                place,
                what,
                packet: packet.into(),
                ct,
                text: None,
                before: None,
            });
        }
    }

    /// A line of text inside a node: a conntrack event or a kernel message.
    pub fn record_text(&mut self, time: Instant, place: Place, what: What, text: String) {
        if self.enabled {
            self.records.push(Record {
                time,
                place,
                what,
                packet: Box::default(),
                ct: None,
                text: Some(text.into_boxed_str()),
                before: None,
            });
        }
    }

    /// Sets `before` of the latest record (the router calls this right
    /// after recording a packet NAT rewrote).
    pub fn set_before(&mut self, before: Vec<u8>) {
        if let Some(r) = self.records.last_mut() {
            r.before = Some(before.into_boxed_slice());
        }
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }
}
