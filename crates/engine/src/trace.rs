//! What happened during a run, packet by packet.
//!
//! Nodes and links report events here; the scenario runner turns them into the
//! timeline and evaluates checks over them. Recording copies packet bytes, so
//! it can be switched off for pure throughput runs, leaving only counters.

use std::fmt;

use crate::time::Instant;
use crate::topology::{LinkId, NodeId};

/// Where an event happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Place {
    /// At a node's interface (`port` indexes the node's interfaces).
    Node { node: NodeId, port: u16 },
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
    /// Addressed to another host (hosts do not forward).
    NotForUs,
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
            DropReason::NotForUs => "not-for-us",
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
    pub packet: Box<[u8]>,
}

/// The run's record of events, in the order they happened.
#[derive(Default)]
pub struct Trace {
    enabled: bool,
    records: Vec<Record>,
}

impl Trace {
    pub fn new(enabled: bool) -> Self {
        Trace {
            enabled,
            records: Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn record(&mut self, time: Instant, place: Place, what: What, packet: &[u8]) {
        if self.enabled {
            self.records.push(Record {
                time,
                place,
                what,
                packet: packet.into(),
            });
        }
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }
}
