//! A run: the nodes, the links, the queue, and the loop that drives them.

use crate::link::{Link, LinkChange, LinkParams, LinkStats};
use crate::node::{AppOutcome, Command, Cx, Node};
use crate::queue::{Event, Queue};
use crate::rng::Rng;
use crate::time::Instant;
use crate::topology::{Cidr, LinkId, NodeId, Port};
use crate::trace::{Record, Tapped, Trace};

/// A change scheduled by the scenario.
#[derive(Clone, Debug)]
pub enum Action {
    Link {
        link: LinkId,
        change: LinkChange,
    },
    /// A command run on a node (`iptables …` on a router).
    Command {
        node: NodeId,
        command: Command,
    },
}

/// Why a topology could not be assembled. The scenario validates first, so
/// these mean a bug in the caller, but they are errors, not panics.
#[derive(Debug, PartialEq, Eq)]
pub enum BuildError {
    UnknownPort { node: String, port: u16 },
    PortInUse { node: String, port: String },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::UnknownPort { node, port } => write!(f, "{node} has no interface #{port}"),
            BuildError::PortInUse { node, port } => write!(f, "{node}.{port} is already on a link"),
        }
    }
}

impl std::error::Error for BuildError {}

/// A link being declared: its name, its ends (node, interface) and settings.
type LinkDecl = (String, [(NodeId, u16); 2], LinkParams);

/// The interface of a node being declared.
pub struct PortSpec {
    pub name: String,
    pub addr: Option<Cidr>,
}

/// Declares nodes, links and actions, then builds the [`Sim`].
///
/// Nodes and links get their random streams in declaration order, nodes
/// first, so the same scenario always gives every part the same stream.
pub struct Builder {
    seed: u64,
    names: Vec<String>,
    nodes: Vec<Box<dyn Node>>,
    ports: Vec<Vec<Port>>,
    links: Vec<LinkDecl>,
    actions: Vec<(Instant, Action)>,
    trace: bool,
}

impl Builder {
    pub fn new(seed: u64) -> Self {
        Builder {
            seed,
            names: Vec::new(),
            nodes: Vec::new(),
            ports: Vec::new(),
            links: Vec::new(),
            actions: Vec::new(),
            trace: true,
        }
    }

    /// Keep per-packet trace records (on by default; off for throughput runs).
    pub fn trace(&mut self, on: bool) -> &mut Self {
        self.trace = on;
        self
    }

    pub fn add_node(&mut self, name: &str, ports: Vec<PortSpec>, node: Box<dyn Node>) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.names.push(name.to_string());
        self.ports.push(
            ports
                .into_iter()
                .map(|p| Port {
                    name: p.name,
                    addr: p.addr,
                    link: None,
                    mtu: 0,
                    peer: None,
                })
                .collect(),
        );
        self.nodes.push(node);
        id
    }

    pub fn add_link(
        &mut self,
        name: &str,
        a: (NodeId, u16),
        b: (NodeId, u16),
        params: LinkParams,
    ) -> Result<LinkId, BuildError> {
        let id = LinkId(self.links.len() as u32);
        for (dir, &(node, port)) in [a, b].iter().enumerate() {
            let node_name = &self.names[node.0 as usize];
            let slot = self.ports[node.0 as usize]
                .get_mut(usize::from(port))
                .ok_or_else(|| BuildError::UnknownPort {
                    node: node_name.clone(),
                    port,
                })?;
            if slot.link.is_some() {
                return Err(BuildError::PortInUse {
                    node: node_name.clone(),
                    port: slot.name.clone(),
                });
            }
            slot.link = Some((id, dir as u8));
            slot.mtu = params.mtu;
        }
        let peer_of = |ports: &[Vec<Port>], (n, p): (NodeId, u16)| {
            ports[n.0 as usize][usize::from(p)].addr.map(|c| c.addr)
        };
        let (pa, pb) = (peer_of(&self.ports, a), peer_of(&self.ports, b));
        self.ports[a.0 .0 as usize][usize::from(a.1)].peer = pb;
        self.ports[b.0 .0 as usize][usize::from(b.1)].peer = pa;
        self.links.push((name.to_string(), [a, b], params));
        Ok(id)
    }

    pub fn schedule(&mut self, at: Instant, action: Action) {
        self.actions.push((at, action));
    }

    pub fn build(self) -> Sim {
        let mut root = Rng::from_seed(self.seed);
        let node_rngs = self.nodes.iter().map(|_| root.fork()).collect();
        let links = self
            .links
            .into_iter()
            .enumerate()
            .map(|(i, (name, ends, params))| {
                Link::new(LinkId(i as u32), name, ends, params, root.fork())
            })
            .collect();
        let mut queue = Queue::default();
        for (i, (at, _)) in self.actions.iter().enumerate() {
            queue.push(*at, Event::Action(i));
        }
        Sim {
            now: Instant::ZERO,
            started: false,
            names: self.names,
            nodes: self.nodes,
            node_rngs,
            ports: self.ports,
            links,
            queue,
            actions: self.actions.into_iter().map(|(_, a)| a).collect(),
            trace: Trace::new(self.trace),
            background: 0,
            events: 0,
            last_activity: Instant::ZERO,
            pool: Vec::new(),
            cancelled: std::collections::BTreeMap::new(),
        }
    }
}

/// A run in progress.
pub struct Sim {
    now: Instant,
    started: bool,
    names: Vec<String>,
    nodes: Vec<Box<dyn Node>>,
    node_rngs: Vec<Rng>,
    ports: Vec<Vec<Port>>,
    links: Vec<Link>,
    queue: Queue,
    actions: Vec<Action>,
    trace: Trace,
    /// Background wake-ups pending in the queue ([`Cx::wake_background`]).
    background: u64,
    events: u64,
    /// When the last event that did something happened (a wake-up that
    /// found nothing to do, such as an expired but moot timeout, does not count).
    last_activity: Instant,
    /// Packet buffers for reuse (see [`Cx::buffer`]).
    pool: Vec<Vec<u8>>,
    /// Wake-ups their nodes called off ([`Cx::cancel_wake`]), by (time,
    /// node, token), with how many of each: skipped when popped.
    cancelled: std::collections::BTreeMap<(Instant, NodeId, u64), u32>,
}

impl Sim {
    /// Runs every event due at or before `until`; returns when none is left
    /// or the next one is later. Time then stands at the last event run.
    pub fn run_until(&mut self, until: Instant) {
        self.run(until, false);
    }

    /// Like [`run_until`](Self::run_until), but also stops when only
    /// background wake-ups (conntrack timers) are left: the run is over.
    pub fn run_while_busy(&mut self, until: Instant) {
        self.run(until, true);
    }

    /// Whether every pending event is a background wake-up.
    pub fn idle(&self) -> bool {
        self.queue.len() as u64 == self.background
    }

    fn run(&mut self, until: Instant, stop_when_idle: bool) {
        if !self.started {
            self.started = true;
            for i in 0..self.nodes.len() {
                let _ = self.call(NodeId(i as u32), |node, cx| node.start(cx));
            }
        }
        while !(stop_when_idle && self.idle()) {
            let Some((time, event)) = self.queue.pop_until(until) else {
                break;
            };
            if let Event::Wake { node, token } = event {
                if self.take_cancelled(time, node, token) {
                    continue;
                }
            }
            self.now = time;
            self.events += 1;
            let acted = match event {
                Event::Deliver { link, dir, packet } => {
                    self.deliver(link, dir, packet);
                    true
                }
                Event::Wake { node, token } => {
                    if token & crate::node::BACKGROUND != 0 {
                        self.background -= 1;
                    }
                    self.call(node, |n, cx| n.wake(cx, token))
                }
                Event::Action(i) => {
                    self.act(i);
                    true
                }
            };
            if acted {
                self.last_activity = time;
            }
        }
    }

    /// Whether the wake-up (time, node, token) was called off; if so it is
    /// forgotten (it counted as background while it waited).
    fn take_cancelled(&mut self, time: Instant, node: NodeId, token: u64) -> bool {
        let Some(n) = self.cancelled.get_mut(&(time, node, token)) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.cancelled.remove(&(time, node, token));
        }
        self.background -= 1;
        true
    }

    fn deliver(&mut self, link: LinkId, dir: u8, packet: Vec<u8>) {
        let l = &mut self.links[link.0 as usize];
        if !l.arrive(self.now, dir, &packet, &mut self.trace) {
            return;
        }
        let (node, port) = l.ends[1 - usize::from(dir)];
        self.trace.tap_packet(self.now, node, port, true, &packet);
        let _ = self.call(node, |n, cx| n.receive(cx, port, packet));
    }

    fn act(&mut self, i: usize) {
        match &self.actions[i] {
            Action::Link { link, change } => {
                let l = &mut self.links[link.0 as usize];
                change.apply(&mut l.params);
                if let Some(mtu) = change.mtu {
                    for &(node, port) in &l.ends {
                        self.ports[node.0 as usize][usize::from(port)].mtu = mtu;
                    }
                }
            }
            Action::Command { node, command } => {
                let (node, command) = (*node, command.clone());
                let _ = self.call(node, |n, cx| n.command(cx, &command));
            }
        }
    }

    /// Runs `f` on node `id`; whether the node did anything observable.
    fn call(&mut self, id: NodeId, f: impl FnOnce(&mut dyn Node, &mut Cx<'_>)) -> bool {
        let i = id.0 as usize;
        let mut cx = Cx {
            now: self.now,
            node: id,
            rng: &mut self.node_rngs[i],
            ports: &self.ports[i],
            queue: &mut self.queue,
            links: &mut self.links,
            trace: &mut self.trace,
            acted: false,
            background: &mut self.background,
            pool: &mut self.pool,
            cancelled: &mut self.cancelled,
            inner: None,
        };
        f(self.nodes[i].as_mut(), &mut cx);
        cx.acted
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the last event that did something happened.
    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// When the next event is due, if any.
    pub fn next_event(&self) -> Option<Instant> {
        self.queue.next_time()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn node_name(&self, id: NodeId) -> &str {
        &self.names[id.0 as usize]
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| NodeId(i as u32))
    }

    pub fn ports(&self, id: NodeId) -> &[Port] {
        &self.ports[id.0 as usize]
    }

    pub fn node(&self, id: NodeId) -> &dyn Node {
        self.nodes[id.0 as usize].as_ref()
    }

    /// The node itself, for a driver that arms something on it between
    /// events (e.g. a probe inside a router's next packet walk).
    pub fn node_mut(&mut self, id: NodeId) -> &mut dyn Node {
        self.nodes[id.0 as usize].as_mut()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn link_stats(&self, id: LinkId) -> &[LinkStats; 2] {
        &self.links[id.0 as usize].stats
    }

    /// Start keeping a copy of every packet entering each link (for pcap).
    pub fn capture_links(&mut self) {
        self.links.iter_mut().for_each(Link::enable_capture);
    }

    pub fn records(&self) -> &[Record] {
        self.trace.records()
    }

    /// Keep every packet `node` receives from a link or sends onto one
    /// (`ctsim linux-diff` replays the first and compares the second).
    pub fn tap(&mut self, node: NodeId) {
        self.trace.tap(node);
    }

    /// The tapped node's packets, in the order they crossed.
    pub fn tapped(&self) -> &[Tapped] {
        self.trace.tapped()
    }

    /// Every app's outcome, nodes in declaration order.
    pub fn outcomes(&self) -> Vec<AppOutcome> {
        self.nodes.iter().flat_map(|n| n.outcomes()).collect()
    }
}
