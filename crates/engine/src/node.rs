//! The one trait every kind of node implements, and the context a node gets
//! when the engine calls it.

use std::any::Any;

use crate::link::Link;
use crate::queue::{Event, Queue};
use crate::rng::Rng;
use crate::time::Instant;
use crate::topology::{NodeId, Port};
use crate::trace::{CtNote, DropReason, Place, Trace, What};

/// The bit of a wake token that marks a background wake-up
/// ([`Cx::wake_background`]).
pub const BACKGROUND: u64 = 1 << 63;

/// What an application reports at the end of a run (or at a check's instant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppOutcome {
    /// The app's name in the scenario.
    pub name: String,
    /// `tcp-client`, `ping`, ...
    pub kind: &'static str,
    /// The last state, in words a user checks against: `established`,
    /// `closed`, `refused`, `reset`, `timed-out`, `listening`, `done`, ...
    pub state: String,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Requests sent and replies received, for ping and UDP apps.
    pub requests: u64,
    pub replies: u64,
    /// What went wrong, in a sentence, if anything did.
    pub error: Option<String>,
}

/// A command an administrator types on a node, in the tool's own syntax
/// without the program name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `iptables ARGS` (`-t nat -A POSTROUTING -o wan0 -j MASQUERADE`).
    Iptables(String),
    /// `conntrack ARGS` (`-F`, `-D -p tcp --dport 22`, `-U --mark 1`).
    Conntrack(String),
}

/// A host, raw host or router. The engine calls it; it answers through `Cx`.
pub trait Node: Any {
    /// Called once at time zero, before any event.
    fn start(&mut self, cx: &mut Cx<'_>);
    /// A packet arrived on interface `port`. The node owns the buffer now.
    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>);
    /// A wake-up asked for with [`Cx::wake_at`] is due.
    fn wake(&mut self, cx: &mut Cx<'_>, token: u64);
    /// An administrator's command scheduled by the scenario (`iptables …`
    /// on a router). Nodes that run no such tool ignore it.
    fn command(&mut self, cx: &mut Cx<'_>, cmd: &Command) {
        let _ = (cx, cmd);
    }
    /// The node's applications and how they fared.
    fn outcomes(&self) -> Vec<AppOutcome> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Everything a node may touch while the engine runs it.
pub struct Cx<'a> {
    pub now: Instant,
    pub node: NodeId,
    pub rng: &'a mut Rng,
    pub ports: &'a [Port],
    pub(crate) queue: &'a mut Queue,
    pub(crate) links: &'a mut [Link],
    pub(crate) trace: &'a mut Trace,
    /// Whether the node did anything observable (sent, scheduled, recorded).
    pub(crate) acted: bool,
    /// Background wake-ups pending in the queue (the run's count).
    pub(crate) background: &'a mut u64,
    /// Packet buffers that finished their journey, for reuse.
    pub(crate) pool: &'a mut Vec<Vec<u8>>,
    /// Wake-ups called off (the run's set).
    pub(crate) cancelled: &'a mut std::collections::BTreeMap<(Instant, NodeId, u64), u32>,
    /// For a node inside another (a router's own stack): where its packets
    /// go instead of the links, the bits its wake tokens carry, and that
    /// its records are left to the outer node.
    pub(crate) inner: Option<Inner<'a>>,
}

/// How a node inside another reaches the outside (see [`Cx::inner`]).
pub(crate) struct Inner<'a> {
    /// Packets the inner node sends: (its port, the datagram).
    pub sent: &'a mut Vec<(u16, Vec<u8>)>,
    /// Ored into every wake token, so the outer node knows whose it is.
    pub tag: u64,
}

impl<'a> Cx<'a> {
    /// A context for a node living inside this one: its packets are
    /// collected in `sent`, its wake tokens carry `tag`, its records are
    /// dropped (the outer node records what it does with the packets).
    pub(crate) fn nested<'b>(&'b mut self, sent: &'b mut Vec<(u16, Vec<u8>)>, tag: u64) -> Cx<'b> {
        Cx {
            now: self.now,
            node: self.node,
            rng: &mut *self.rng,
            ports: self.ports,
            queue: &mut *self.queue,
            links: &mut *self.links,
            trace: &mut *self.trace,
            acted: false,
            background: &mut *self.background,
            pool: &mut *self.pool,
            cancelled: &mut *self.cancelled,
            inner: Some(Inner { sent, tag }),
        }
    }

    fn tag(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.tag)
    }
}

/// Buffers kept for reuse at most; beyond this a finished packet is freed.
/// The pool never holds more buffers than were in flight at once, so this
/// only bounds what a burst leaves behind; it is sized for the largest
/// bursts we run (10,000 flows sending in the same 10 µs, each packet in
/// flight for milliseconds), which a smaller pool met with a malloc and a
/// free per packet.
const POOL_MAX: usize = 1 << 16;

impl Cx<'_> {
    /// An empty packet buffer, reused from a packet that has finished
    /// (so a steady flow allocates nothing per packet).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    /// Hands back a packet the node is done with.
    pub fn recycle(&mut self, mut packet: Vec<u8>) {
        if self.pool.len() < POOL_MAX {
            packet.clear();
            self.pool.push(packet);
        }
    }

    /// Hands `packet` to the link on `port`. An unattached port drops it.
    pub fn transmit(&mut self, port: u16, packet: Vec<u8>) {
        self.acted = true;
        if let Some(inner) = &mut self.inner {
            return inner.sent.push((port, packet));
        }
        self.trace
            .tap_packet(self.now, self.node, port, false, &packet);
        match self.ports.get(usize::from(port)).and_then(|p| p.link) {
            Some((link, dir)) => {
                self.links[link.0 as usize].send(self.now, dir, packet, self.queue, self.trace)
            }
            None => self.record(port, What::Dropped(DropReason::NoLink), &packet),
        }
    }

    /// Asks to be woken at `at` (never earlier than now) with `token`.
    pub fn wake_at(&mut self, at: Instant, token: u64) {
        debug_assert!(
            token & BACKGROUND == 0,
            "the BACKGROUND bit is wake_background's"
        );
        let node = self.node;
        let token = token | self.tag();
        self.queue
            .push(at.max(self.now), Event::Wake { node, token });
    }

    /// Calls off a wake-up asked for with [`wake_at`](Self::wake_at)(`at`,
    /// `token`) that is still pending (a deadline that no longer matters):
    /// it will not be delivered, and it no longer keeps the run alive.
    pub fn cancel_wake(&mut self, at: Instant, token: u64) {
        let token = token | self.tag();
        *self.cancelled.entry((at, self.node, token)).or_default() += 1;
        *self.background += 1;
    }

    /// Asks to be woken at `at` with `token` for housekeeping that must not
    /// keep a run alive (conntrack timers): a run without an end time stops
    /// when only background wake-ups are left. `token` gets [`BACKGROUND`]
    /// set, and the node is woken with it set.
    pub fn wake_background(&mut self, at: Instant, token: u64) {
        let node = self.node;
        let token = token | self.tag();
        *self.background += 1;
        self.queue.push(
            at.max(self.now),
            Event::Wake {
                node,
                token: token | BACKGROUND,
            },
        );
    }

    /// Adds an event at this node's interface `port` to the trace.
    pub fn record(&mut self, port: u16, what: What, packet: &[u8]) {
        self.record_ct(port, what, packet, None);
    }

    /// Like [`record`](Self::record), with the packet's conntrack state.
    pub fn record_ct(&mut self, port: u16, what: What, packet: &[u8], ct: Option<CtNote>) {
        if self.inner.is_some() {
            return;
        }
        let place = Place::Node {
            node: self.node,
            port,
        };
        self.trace.record_ct(self.now, place, what, packet, ct);
    }

    /// Adds a line inside this node (a conntrack event, a kernel message).
    pub fn record_text(&mut self, what: What, text: String) {
        if self.inner.is_some() {
            return;
        }
        let place = Place::Inside { node: self.node };
        self.trace.record_text(self.now, place, what, text);
    }

    /// Notes on the latest record the packet as it was received, before
    /// NAT rewrote it.
    pub fn record_before(&mut self, before: Vec<u8>) {
        self.trace.set_before(before);
    }

    /// Adds a line at this node's interface `port` (a step of a packet's
    /// walk).
    pub fn record_text_at(&mut self, port: u16, what: What, text: String) {
        let place = Place::Node {
            node: self.node,
            port,
        };
        self.trace.record_text(self.now, place, what, text);
    }

    /// Whether the trace keeps events (nodes may skip work that only feeds it).
    pub fn tracing(&self) -> bool {
        self.trace.enabled()
    }
}
