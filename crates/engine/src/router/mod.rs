//! Routers: interfaces, a routing table, and the forwarding path.
//!
//! The path is written as the sequence of steps Linux takes, with the places
//! where netfilter's hooks sit marked, so the hook chain can be inserted at
//! exactly those points:
//!
//! ```text
//! receive ─ check header ─ [PREROUTING] ─ route ─┬─ local ─ [INPUT] ─ answer ─ route ─ [OUTPUT] ─ [POSTROUTING] ─ send
//!                                                └─ forward ─ TTL ─ DF/MTU ─ TTL-1 ─ [FORWARD] ─ [POSTROUTING] ─ fragment ─ send
//! ```
//!
//! Connection tracking (`ct.rs`) runs where Linux runs it: lookup or
//! creation at priority -200 of PREROUTING (received packets) and OUTPUT
//! (the router's own answers and ICMP errors), confirmation as the last step
//! of POSTROUTING and INPUT. A packet dropped in between gives its entry
//! back (an unconfirmed entry vanishes with it).
//!
//! A [`Probe`] (`ctsim conntrack --during`) sits just before each
//! confirmation: armed, it reads the table there for the first packet it
//! matches, while that packet's entry is still unconfirmed.

mod admin;
mod ct;
mod frag;
mod local;
mod nf;
mod routes;

use std::any::Any;
use std::net::Ipv4Addr;

use ctsim_packet::IcmpError;
use smoltcp::wire::Ipv4Packet;

pub use admin::CtCommand;
pub use ct::{ConfirmHook, Look, Probe, Probed, CT_TIMER};
/// The conntrack crate the routers run, for callers that configure or read
/// their tables.
pub use ctsim_conntrack as conntrack;
/// The netfilter crate the routers run, for callers that build or print
/// their rulesets.
pub use ctsim_netfilter as netfilter;
pub use routes::{Local, Route, Routes};

use ct::{Ct, Tracked};
use ctsim_conntrack::EntryRef;
use ctsim_netfilter::{Decision as Verdict, Hook, PacketMeta, Ruleset};
use nf::{Nf, Walk};

use crate::host::{App, Host, HostConfig, Nic};
use crate::node::{AppOutcome, Command, Cx, Node};
use crate::topology::Cidr;
use crate::trace::{CtNote, DropReason, What};

/// A static route from the scenario.
#[derive(Clone, Debug)]
pub struct StaticRoute {
    pub to: Cidr,
    pub via: Ipv4Addr,
}

/// Counters a router keeps, named after the SNMP/`nstat` counters they mirror.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterStats {
    pub in_receives: u64,
    pub forwarded: u64,
    pub delivered: u64,
    pub out_requests: u64,
    pub in_hdr_errors: u64,
    pub out_no_routes: u64,
    pub frag_creates: u64,
    pub icmp_errors_sent: u64,
}

/// A router with addresses on its interfaces and a routing table.
pub struct Router {
    addrs: Vec<Option<Cidr>>,
    routes: Routes,
    pub stats: RouterStats,
    /// Connection tracking; `None` when the router tracks nothing.
    ct: Option<Ct>,
    /// A probe waiting for its packet (`ctsim conntrack --during`).
    probe: Option<Box<Probe>>,
    /// What the probe saw, once it fired.
    probed: Option<Box<Probed>>,
    /// The iptables ruleset; `None`: no netfilter tables at all.
    nf: Option<Box<Nf>>,
    /// The walk of the packet in flight (while tracing).
    walk: Walk,
    /// The router's own addresses (`-m addrtype` LOCAL).
    local: Vec<Ipv4Addr>,
    /// The router's own TCP/IP stack and its applications, if it runs any.
    stack: Option<Box<Host>>,
}

/// The bit of a wake token that says it is for the router's own stack.
const STACK_TAG: u64 = 1 << 62;

/// Where the routing decision sends a packet.
enum Decision {
    Local(Local),
    Forward { port: u16 },
    Unreachable(IcmpError, DropReason),
}

impl Router {
    /// `addrs` are the interfaces' addresses in port order; static routes
    /// whose gateway is on no connected network are skipped (the scenario
    /// rejects them before this point).
    pub fn new(addrs: Vec<Option<Cidr>>, static_routes: &[StaticRoute]) -> Self {
        let mut routes = Routes::default();
        for (port, c) in addrs.iter().enumerate() {
            if let Some(c) = c {
                routes.add_local(c.addr, Local::Unicast);
                if let Some(b) = c.broadcast() {
                    routes.add_local(b, Local::Broadcast);
                }
                let net = Cidr::new(c.network(), c.len);
                routes.add(
                    net,
                    Route {
                        port: port as u16,
                        via: None,
                    },
                );
            }
        }
        for r in static_routes {
            if let Some(gw) = routes.lookup(r.via).filter(|g| g.via.is_none()) {
                routes.add(
                    r.to,
                    Route {
                        port: gw.port,
                        via: Some(r.via),
                    },
                );
            }
        }
        let local = addrs.iter().flatten().map(|c| c.addr).collect();
        Router {
            addrs,
            routes,
            stats: RouterStats::default(),
            ct: None,
            probe: None,
            probed: None,
            nf: None,
            walk: Walk::default(),
            local,
            stack: None,
        }
    }

    /// Runs `apps` on a stack of the router's own (smoltcp, one interface
    /// per router interface, as a host has): their packets go out through
    /// OUTPUT and POSTROUTING and come in through INPUT, so the rules and
    /// NAT see them as Linux's would see a local service's. Packets no app
    /// owns keep the router's built-in answers.
    pub fn with_apps(mut self, nics: Vec<Nic>, apps: Vec<App>) -> Self {
        if apps.is_empty() {
            return self;
        }
        // smoltcp sends off-link only with a default route. The router's
        // own default gateway gives the stack the source address Linux
        // would pick for off-link destinations (that interface's);
        // without one, any address on the first interface's network does:
        // the router routes whatever the stack sends.
        let gateway = self
            .routes
            .lookup(Ipv4Addr::UNSPECIFIED)
            .and_then(|r| r.via)
            .or_else(|| {
                nics.first().map(|n| {
                    let first = u32::from(n.addr.network()) + 1;
                    let own = u32::from(n.addr.addr);
                    Ipv4Addr::from(if first == own { first + 1 } else { first })
                })
            });
        self.stack = Some(Box::new(Host::new(HostConfig {
            nics,
            gateway,
            apps,
        })));
        self
    }

    /// Runs `rules` at the hooks (`None`: no tables, as a namespace where
    /// nothing loaded iptables). Commands scheduled with
    /// [`Command::Iptables`] change it during the run; a router without a
    /// ruleset gets an empty one at the first such command.
    pub fn with_ruleset(mut self, rules: Option<Ruleset>) -> Self {
        self.nf = rules.map(|r| Box::new(Nf::new(r)));
        self
    }

    /// The router's ruleset, with its counters, if it has one.
    pub fn ruleset(&self) -> Option<&Ruleset> {
        self.nf.as_deref().map(|n| &n.rules)
    }

    /// Tracks connections with `table` (`None`: no conntrack at all, as in
    /// a Linux namespace where nothing loaded it). `keep_events` keeps every
    /// `conntrack -E` event for [`conntrack_events`](Self::conntrack_events).
    pub fn with_conntrack(
        mut self,
        table: Option<ctsim_conntrack::Conntrack>,
        keep_events: bool,
    ) -> Self {
        self.ct = table.map(|t| Ct::new(t, keep_events));
        self
    }

    /// The router's conntrack table, if it tracks connections.
    pub fn conntrack(&self) -> Option<&ctsim_conntrack::Conntrack> {
        self.ct.as_ref().map(|c| &c.table)
    }

    /// Every conntrack event so far, in order (kept when asked for in
    /// [`with_conntrack`](Self::with_conntrack)).
    pub fn conntrack_events(&self) -> &[ctsim_conntrack::Event] {
        self.ct.as_ref().map_or(&[], |c| c.events.as_slice())
    }

    /// Every expectation event so far (`conntrack -E expect`), when events
    /// are kept.
    pub fn expect_events(&self) -> &[ctsim_conntrack::ExpectEvent] {
        self.ct.as_ref().map_or(&[], |c| c.expect_events.as_slice())
    }

    /// Arms `probe` (replacing one not yet fired, and forgetting what an
    /// earlier one saw). A router without conntrack never fires it.
    pub fn arm_probe(&mut self, probe: Probe) {
        self.probe = Some(Box::new(probe));
        self.probed = None;
    }

    /// What the armed probe saw, once it fired.
    pub fn probed(&self) -> Option<&Probed> {
        self.probed.as_deref()
    }

    /// The probe point, just before conntrack confirms `packet` at the end
    /// of `hook`. Costs one `Option` check when no probe is armed.
    #[inline]
    fn probe(&mut self, cx: &Cx<'_>, packet: &[u8], hook: ConfirmHook) {
        if self.probe.is_some() {
            self.fire_probe(cx, packet, hook);
        }
    }

    #[cold]
    fn fire_probe(&mut self, cx: &Cx<'_>, packet: &[u8], hook: ConfirmHook) {
        let (Some(c), Some(p)) = (&self.ct, &self.probe) else {
            return;
        };
        if cx.now < p.from || !p.filter.matches(packet) {
            return;
        }
        let Some(p) = self.probe.take() else { return };
        let now = ctsim_conntrack::time::Instant(cx.now.nanos());
        let out = (p.look)(&c.table, now);
        self.probed = Some(Box::new(Probed {
            at: cx.now,
            hook,
            packet: packet.to_vec(),
            out,
        }));
    }

    /// The routing decision for `dst`, as `ip route get` would make it.
    fn route(&self, cx: &Cx<'_>, dst: Ipv4Addr) -> Decision {
        if let Some(kind) = self.routes.local(dst) {
            return Decision::Local(kind);
        }
        let Some(route) = self.routes.lookup(dst) else {
            return Decision::Unreachable(IcmpError::NetUnreachable, DropReason::NoRoute);
        };
        let next_hop = route.via.unwrap_or(dst);
        // On a point-to-point link the only neighbour is the far end; on a
        // switch (a link whose far end has no address) any address of the
        // subnet may answer. Linux would answer host-unreachable after ARP
        // gives up (about 3 s later).
        let p = &cx.ports[usize::from(route.port)];
        if p.link.is_none() || p.peer.is_some_and(|peer| peer != next_hop) {
            return Decision::Unreachable(IcmpError::HostUnreachable, DropReason::NoNeighbour);
        }
        Decision::Forward { port: route.port }
    }

    /// Sends an ICMP error about `offending`, unless RFC 1122 forbids one:
    /// never about an ICMP error, a non-first fragment, or a packet from an
    /// address that cannot be answered. The source address is Linux's
    /// (__icmp_send): the address the offending packet was sent to when it
    /// was for the router itself, else the address of the interface the
    /// error leaves through.
    ///
    /// Like Linux's icmp_send (`nf_ct_attach()` in icmp_glue_bits), the
    /// error is attached to the offending packet's entry as RELATED (or
    /// RELATED_REPLY): `related` is that reference, and conntrack does not
    /// look the error up again at OUTPUT.
    fn icmp_error(
        &mut self,
        cx: &mut Cx<'_>,
        kind: IcmpError,
        offending: &[u8],
        related: Option<EntryRef>,
    ) {
        let ip = Ipv4Packet::new_unchecked(offending);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if ctsim_packet::is_icmp_error(offending)
            || ip.frag_offset() != 0
            || src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
        {
            return ct::release(&mut self.ct, cx, related);
        }
        let from = match self.route(cx, src) {
            _ if self.routes.local(dst) == Some(Local::Unicast) => dst,
            Decision::Forward { port } => match self.addrs[usize::from(port)] {
                Some(c) => c.addr,
                None => return ct::release(&mut self.ct, cx, related),
            },
            Decision::Local(_) | Decision::Unreachable(..) => {
                return ct::release(&mut self.ct, cx, related)
            }
        };
        self.stats.icmp_errors_sent += 1;
        let error = ctsim_packet::icmp_error(from, kind, offending);
        self.output(cx, error, related);
    }

    /// A packet the router itself originates: route it, then OUTPUT (raw;
    /// conntrack at -200 unless the packet is already `attached` to an
    /// entry; mangle; DNAT, then a new route if the destination changed;
    /// filter) and POSTROUTING (mangle; SNAT; confirm), and send it.
    fn output(&mut self, cx: &mut Cx<'_>, mut packet: Vec<u8>, attached: Option<EntryRef>) {
        self.stats.out_requests += 1;
        let dst = Ipv4Packet::new_unchecked(&packet[..]).dst_addr();
        // Nowhere to send our own packet: Linux fails the send
        // (ENETUNREACH) before OUTPUT. A route whose next hop does not
        // answer fails only later, at neighbour resolution.
        let Some(mut port) = self.routes.lookup(dst).map(|r| r.port) else {
            self.stats.out_no_routes += 1;
            return ct::release(&mut self.ct, cx, attached);
        };
        let mut meta = PacketMeta::default();
        // [OUTPUT] raw, conntrack, mangle, DNAT: a new destination means a
        // new route.
        let Some(t) = self.through_dnat(
            cx,
            Hook::Output,
            port,
            (None, Some(port)),
            &mut packet,
            &mut meta,
            attached,
        ) else {
            return;
        };
        let new_dst = Ipv4Packet::new_unchecked(&packet[..]).dst_addr();
        let reroute = new_dst != dst;
        let mut decision = self.route(cx, new_dst);
        // A subnet's broadcast address (the router's own pings and SNMP
        // queries to 192.0.2.255) leaves through that subnet's interface.
        if let (Decision::Local(Local::Broadcast), Some(r)) =
            (&decision, self.routes.lookup(new_dst))
        {
            decision = Decision::Forward { port: r.port };
        }
        if reroute || !matches!(decision, Decision::Forward { .. }) {
            match decision {
                Decision::Forward { port: p } => {
                    self.walk(cx, "routing", "", |s| {
                        format!("rerouted after DNAT: {}", s.route_text(cx, p, new_dst))
                    });
                    port = p;
                }
                Decision::Local(_) => {
                    self.stats.out_no_routes += 1;
                    self.walk(cx, "routing", "", |_| {
                        format!("{new_dst} is local: loopback is not modelled")
                    });
                    let what = What::Dropped(DropReason::NoRoute);
                    self.record(cx, port, what, &packet, t.note);
                    return ct::release(&mut self.ct, cx, t.r);
                }
                Decision::Unreachable(_, reason) => {
                    self.stats.out_no_routes += 1;
                    self.walk(cx, "routing", "", |_| format!("{reason}: {new_dst}"));
                    self.record(cx, port, What::Dropped(reason), &packet, t.note);
                    return ct::release(&mut self.ct, cx, t.r);
                }
            }
        }
        let ports = (None, Some(port));
        // filter (0), security (50)
        if self.hook(
            cx,
            Hook::Output,
            nf::AFTER_DNAT,
            ports,
            &packet,
            &mut meta,
            Some(&t),
        ) == Verdict::Drop
        {
            return self.nf_drop(cx, port, &packet, t);
        }
        // [POSTROUTING] mangle, SNAT, confirm
        let Some(note) = self.postrouting(cx, port, ports, &mut packet, &mut meta, t) else {
            return;
        };
        self.record(cx, port, What::Sent, &packet, note);
        ct::flush(&mut self.ct, cx);
        cx.transmit(port, packet);
    }

    /// INPUT: the packet is for the router; its tables run (mangle, filter,
    /// security, SNAT) and conntrack confirms it as the hook's last step. A
    /// broadcast gets no answer: Linux ignores broadcast pings
    /// (icmp_echo_ignore_broadcasts=1) and sends neither RST nor ICMP
    /// errors about broadcasts.
    fn local_in(
        &mut self,
        cx: &mut Cx<'_>,
        port: u16,
        mut packet: Vec<u8>,
        kind: Local,
        t: Tracked,
        meta: &mut PacketMeta,
    ) {
        let ports = (Some(port), None);
        // [INPUT]
        let ok = self.hook(cx, Hook::Input, nf::TO_SNAT, ports, &packet, meta, Some(&t))
            == Verdict::Accept
            && self.nat(cx, Hook::Input, ports, &mut packet, &t);
        if !ok {
            return self.nf_drop(cx, port, &packet, t);
        }
        let to_stack = self.stack.as_ref().is_some_and(|h| h.wants(&packet));
        let answer = match kind {
            _ if to_stack => local::Answer::Nothing,
            Local::Broadcast => local::Answer::Nothing,
            Local::Unicast => local::answer(&packet),
        };
        // An ICMP error keeps a reference to the packet's entry (the skb
        // icmp_send quotes is still attached to it after INPUT).
        let related = match answer {
            local::Answer::Error(_) => ct::attach(&mut self.ct, t.r.as_ref()),
            _ => None,
        };
        let ctx = self.help_ctx(false, None, &packet);
        if !ct::help(&mut self.ct, cx, t.r.as_ref(), &mut packet, &ctx) {
            ct::release(&mut self.ct, cx, related);
            self.record(
                cx,
                port,
                What::Dropped(DropReason::Conntrack),
                &packet,
                t.note,
            );
            return ct::release(&mut self.ct, cx, t.r);
        }
        self.probe(cx, &packet, ConfirmHook::Input);
        if !ct::confirm(&mut self.ct, cx, t.r) {
            ct::release(&mut self.ct, cx, related);
            self.record(
                cx,
                port,
                What::Dropped(DropReason::Conntrack),
                &packet,
                t.note,
            );
            return ct::flush(&mut self.ct, cx);
        }
        self.stats.delivered += 1;
        self.record(cx, port, What::Received, &packet, t.note);
        ct::flush(&mut self.ct, cx);
        if to_stack {
            return self.in_stack(cx, |h, cx| h.receive(cx, port, packet));
        }
        match answer {
            local::Answer::Reply(reply) => self.output(cx, reply, None),
            local::Answer::Error(kind) => self.icmp_error(cx, kind, &packet, related),
            local::Answer::Nothing => {}
        }
    }

    /// Runs `f` on the router's own stack, then sends what it sent through
    /// OUTPUT and POSTROUTING.
    fn in_stack(&mut self, cx: &mut Cx<'_>, f: impl FnOnce(&mut Host, &mut Cx<'_>)) {
        let Some(mut host) = self.stack.take() else {
            return;
        };
        let mut sent = Vec::new();
        {
            let mut inner = cx.nested(&mut sent, STACK_TAG);
            f(&mut host, &mut inner);
        }
        self.stack = Some(host);
        for (_, packet) in sent {
            self.output(cx, packet, None);
        }
    }

    /// The steps of Linux's ip_forward, in its order: TTL, then the MTU
    /// check on the datagram as received, then the TTL decrement, then the
    /// FORWARD hook; POSTROUTING, then fragmentation, in ip_output.
    fn forward(
        &mut self,
        cx: &mut Cx<'_>,
        in_port: u16,
        mut packet: Vec<u8>,
        out: u16,
        t: Tracked,
        meta: &mut PacketMeta,
    ) {
        let ip = Ipv4Packet::new_unchecked(&packet[..]);
        if ip.hop_limit() <= 1 {
            self.record(
                cx,
                in_port,
                What::Dropped(DropReason::TtlExceeded),
                &packet,
                t.note,
            );
            let related = ct::attach(&mut self.ct, t.r.as_ref());
            self.icmp_error(cx, IcmpError::TimeExceeded, &packet, related);
            return ct::release(&mut self.ct, cx, t.r);
        }
        let mtu = cx.ports[usize::from(out)].mtu as usize;
        if packet.len() > mtu && ip.dont_frag() {
            self.record(
                cx,
                in_port,
                What::Dropped(DropReason::FragNeeded),
                &packet,
                t.note,
            );
            let kind = IcmpError::FragNeeded {
                mtu: mtu.min(usize::from(u16::MAX)) as u16,
            };
            let related = ct::attach(&mut self.ct, t.r.as_ref());
            self.icmp_error(cx, kind, &packet, related);
            return ct::release(&mut self.ct, cx, t.r);
        }
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.set_hop_limit(ip.hop_limit() - 1);
        ip.fill_checksum();
        let ports = (Some(in_port), Some(out));
        // [FORWARD]
        if self.hook(cx, Hook::Forward, nf::ALL, ports, &packet, meta, Some(&t)) == Verdict::Drop {
            return self.nf_drop(cx, in_port, &packet, t);
        }
        // [POSTROUTING]: confirm is its last step, before fragmentation.
        let Some(note) = self.postrouting(cx, in_port, ports, &mut packet, meta, t) else {
            return;
        };
        self.stats.forwarded += 1;
        if packet.len() > mtu {
            let pieces = frag::fragment(&packet, mtu);
            self.stats.frag_creates += pieces.len() as u64;
            for piece in pieces {
                self.record(cx, in_port, What::Forwarded { to: out }, &piece, note);
                cx.transmit(out, piece);
            }
            return ct::flush(&mut self.ct, cx);
        }
        if cx.tracing() {
            self.record(cx, in_port, What::Forwarded { to: out }, &packet, note);
        }
        ct::flush(&mut self.ct, cx);
        cx.transmit(out, packet);
    }

    /// A router without tables or tracking: every step of the hooks accepts
    /// and leaves nothing behind, so the forwarding path skips them.
    fn plain(&self) -> bool {
        self.nf.is_none() && self.ct.is_none()
    }

    /// The first half of PREROUTING or OUTPUT: raw (-300), conntrack
    /// (-200; a packet `attached` to an entry keeps it), mangle (-150) and
    /// DNAT (-100). `None`: the packet was dropped there (recorded at
    /// `port`, its entry given back).
    #[allow(clippy::too_many_arguments)]
    fn through_dnat(
        &mut self,
        cx: &mut Cx<'_>,
        hook: Hook,
        port: u16,
        ports: (Option<u16>, Option<u16>),
        packet: &mut [u8],
        meta: &mut PacketMeta,
        attached: Option<EntryRef>,
    ) -> Option<Tracked> {
        if self.plain() {
            return Some(attached.map_or_else(Tracked::none, Tracked::attached));
        }
        if self.hook(cx, hook, nf::BEFORE_CT, ports, packet, meta, None) == Verdict::Drop {
            let t = attached.map_or_else(Tracked::none, Tracked::attached);
            self.nf_drop(cx, port, packet, t);
            return None;
        }
        let t = match attached {
            Some(r) => Tracked::attached(r),
            None => {
                let ct_hook = match hook {
                    Hook::Output => ctsim_conntrack::CtHook::LocalOut,
                    _ => ctsim_conntrack::CtHook::PreRouting,
                };
                let t = self.track(cx, packet, ct_hook);
                ct::follow_master(&mut self.ct, cx, t.r.as_ref());
                t
            }
        };
        self.walk_conntrack(cx, hook, &t);
        if t.dropped {
            let what = What::Dropped(DropReason::Conntrack);
            self.record(cx, port, what, packet, t.note);
            ct::flush(&mut self.ct, cx);
            return None;
        }
        let ok = self.hook(cx, hook, nf::TO_DNAT, ports, packet, meta, Some(&t)) == Verdict::Accept
            && self.nat(cx, hook, ports, packet, &t);
        if !ok {
            self.nf_drop(cx, port, packet, t);
            return None;
        }
        Some(t)
    }

    /// POSTROUTING: its tables (mangle, SNAT at 100), the source NAT
    /// rewrite, the probe point and conntrack's confirmation. The packet's
    /// state to record it with, or `None` when it was dropped (recorded at
    /// `port`).
    fn postrouting(
        &mut self,
        cx: &mut Cx<'_>,
        port: u16,
        ports: (Option<u16>, Option<u16>),
        packet: &mut Vec<u8>,
        meta: &mut PacketMeta,
        t: Tracked,
    ) -> Option<Option<CtNote>> {
        let ok = self.hook(
            cx,
            Hook::Postrouting,
            nf::TO_SNAT,
            ports,
            packet,
            meta,
            Some(&t),
        ) == Verdict::Accept
            && self.nat(cx, Hook::Postrouting, ports, packet, &t);
        if !ok {
            self.nf_drop(cx, port, packet, t);
            return None;
        }
        let ctx = self.help_ctx(ports.0.is_none(), ports.1, packet);
        if !ct::help(&mut self.ct, cx, t.r.as_ref(), packet, &ctx) {
            let what = What::Dropped(DropReason::Conntrack);
            self.record(cx, port, what, packet, t.note);
            ct::release(&mut self.ct, cx, t.r);
            return None;
        }
        self.probe(cx, packet, ConfirmHook::PostRouting);
        if !ct::confirm(&mut self.ct, cx, t.r) {
            let what = What::Dropped(DropReason::Conntrack);
            self.record(cx, port, what, packet, t.note);
            ct::flush(&mut self.ct, cx);
            return None;
        }
        Some(t.note)
    }

    /// What the broadcast helpers need to know: whether the router sent the
    /// packet itself, and the netmask of the output interface when the
    /// packet goes to its broadcast address.
    fn help_ctx(
        &self,
        local: bool,
        out: Option<u16>,
        packet: &[u8],
    ) -> ctsim_conntrack::helper::HelpCtx {
        let dst = Ipv4Packet::new_unchecked(packet).dst_addr();
        let broadcast_mask = out
            .and_then(|p| self.addrs.get(usize::from(p)).copied().flatten())
            .filter(|c| c.broadcast() == Some(dst))
            .map(|c| Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(c.len)).unwrap_or(0)));
        ctsim_conntrack::helper::HelpCtx {
            local,
            broadcast_mask,
        }
    }

    /// Runs the tables of `hook` with priorities in `prio` (nothing, and
    /// ACCEPT, without a ruleset). `ports` are the input and output
    /// interfaces where known.
    #[allow(clippy::too_many_arguments)]
    fn hook(
        &mut self,
        cx: &mut Cx<'_>,
        hook: Hook,
        prio: std::ops::Range<i32>,
        ports: (Option<u16>, Option<u16>),
        packet: &[u8],
        meta: &mut PacketMeta,
        t: Option<&Tracked>,
    ) -> Verdict {
        let Some(nf) = self.nf.as_deref_mut() else {
            return Verdict::Accept;
        };
        let at = nf::At::new(hook, ports, cx.ports, &self.local, &self.addrs);
        let (r, untracked) = match t {
            Some(t) => (t.r.as_ref(), t.is_untracked()),
            None => (None, false),
        };
        nf::run(
            nf,
            &mut self.ct,
            cx,
            &mut self.walk,
            &at,
            prio,
            packet,
            meta,
            r,
            untracked,
        )
    }

    /// The NAT step of `hook` (see [`nf::nat_step`]); `false`: drop.
    fn nat(
        &mut self,
        cx: &mut Cx<'_>,
        hook: Hook,
        ports: (Option<u16>, Option<u16>),
        packet: &mut [u8],
        t: &Tracked,
    ) -> bool {
        let Some(nf) = self.nf.as_deref_mut() else {
            return true;
        };
        let at = nf::At::new(hook, ports, cx.ports, &self.local, &self.addrs);
        nf::nat_step(
            nf,
            &mut self.ct,
            cx,
            &mut self.walk,
            &at,
            packet,
            t.r.as_ref(),
        )
    }

    /// Conntrack at -200 of PREROUTING or OUTPUT, with the template the raw
    /// table left: `CT --notrack` makes the packet UNTRACKED, `--zone`
    /// picks the zone, `--helper` names the new entry's helper.
    fn track(&mut self, cx: &Cx<'_>, packet: &[u8], hook: ctsim_conntrack::CtHook) -> Tracked {
        let (zone, helper) = match self.nf.as_deref() {
            Some(nf) if nf.notrack() => return Tracked::untracked(),
            Some(nf) => nf.template(),
            None => (None, None),
        };
        let zone = ctsim_conntrack::Zone(zone.unwrap_or(0));
        let t = ct::track(&mut self.ct, cx, packet, hook, zone);
        if let (Some(name), Some(c), Some(r)) = (helper, self.ct.as_mut(), t.r.as_ref()) {
            if r.ctinfo() == ctsim_conntrack::CtInfo::New {
                if let Some(name) = nf::helper_name(name) {
                    c.table.set_helper(r.key(), name);
                }
            }
        }
        t
    }

    /// A rule dropped the packet: record it with the rule that decided,
    /// give its entry back, and send REJECT's answer if there is one
    /// (attached to the packet's entry, as `nf_ct_attach()` does).
    fn nf_drop(&mut self, cx: &mut Cx<'_>, port: u16, packet: &[u8], t: Tracked) {
        let reject = self.nf.as_deref_mut().and_then(Nf::take_reject);
        self.record(
            cx,
            port,
            What::Dropped(DropReason::Netfilter),
            packet,
            t.note,
        );
        let related = match reject {
            Some(_) => ct::attach(&mut self.ct, t.r.as_ref()),
            None => None,
        };
        ct::release(&mut self.ct, cx, t.r);
        if let Some(reply) = reject {
            self.output(cx, reply, related);
        }
    }

    /// Records the packet's fate at `port` and, just after it, its walk.
    fn record(
        &mut self,
        cx: &mut Cx<'_>,
        port: u16,
        what: What,
        packet: &[u8],
        note: Option<CtNote>,
    ) {
        if !cx.tracing() {
            return;
        }
        let verdict = match what {
            What::Dropped(DropReason::Netfilter) => {
                let by = self.nf.as_deref().map(Nf::decided_by).unwrap_or_default();
                format!("DROP by {by}")
            }
            What::Dropped(reason) => format!("dropped ({reason})"),
            _ => "ACCEPT".to_string(),
        };
        self.walk.push(cx, "verdict", "", verdict);
        cx.record_ct(port, what, packet, note);
        if let Some(before) = self.walk.take_before() {
            cx.record_before(before);
        }
        self.walk.flush(cx, port);
    }

    /// Adds a line to the walk of the packet in flight, while tracing.
    fn walk(
        &mut self,
        cx: &Cx<'_>,
        hook: &'static str,
        step: &'static str,
        text: impl FnOnce(&Self) -> String,
    ) {
        if cx.tracing() {
            let text = text(self);
            self.walk.push(cx, hook, step, text);
        }
    }

    /// The walk's conntrack line: the packet's state and ctinfo.
    fn walk_conntrack(&mut self, cx: &Cx<'_>, hook: Hook, t: &Tracked) {
        if self.ct.is_none() {
            return;
        }
        self.walk(cx, hook.name(), "conntrack", |_| {
            let info = t.r.as_ref().map(|r| r.ctinfo().name());
            match (t.note, info) {
                (Some(n), Some(info)) => format!("{} ({info})", n.state.name()),
                (Some(n), None) => match n.invalid {
                    Some(why) => format!("{}: {why}", n.state.name()),
                    None => n.state.name().to_string(),
                },
                (None, _) => "dropped".to_string(),
            }
        });
    }

    /// `forward via wan0 to 198.51.100.2` / `… via gateway 198.51.100.254`.
    fn route_text(&self, cx: &Cx<'_>, port: u16, dst: Ipv4Addr) -> String {
        let name = &cx.ports[usize::from(port)].name;
        match self.routes.lookup(dst).and_then(|r| r.via) {
            Some(gw) => format!("out {name} via {gw}"),
            None => format!("out {name} to {dst}"),
        }
    }
}

impl Node for Router {
    fn start(&mut self, cx: &mut Cx<'_>) {
        self.in_stack(cx, |h, cx| h.start(cx));
    }

    fn outcomes(&self) -> Vec<AppOutcome> {
        self.stack.as_ref().map_or_else(Vec::new, |h| h.outcomes())
    }

    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, mut packet: Vec<u8>) {
        self.stats.in_receives += 1;
        if valid_header(&packet).is_none() {
            self.stats.in_hdr_errors += 1;
            return cx.record(port, What::Dropped(DropReason::Malformed), &packet);
        }
        let mut meta = PacketMeta::default();
        // [PREROUTING] raw, conntrack, mangle, DNAT. A plain router's answer
        // is made here, where it stays in registers: returned by
        // through_dnat through memory, written byte by byte and read back
        // wider, it stalled forwarding on store forwarding.
        let t = if self.plain() {
            Tracked::none()
        } else {
            let Some(t) = self.through_dnat(
                cx,
                Hook::Prerouting,
                port,
                (Some(port), None),
                &mut packet,
                &mut meta,
                None,
            ) else {
                return ct::schedule(&mut self.ct, cx);
            };
            t
        };
        // The route of the (possibly DNATed) destination.
        let dst = Ipv4Packet::new_unchecked(&packet[..]).dst_addr();
        match self.route(cx, dst) {
            Decision::Local(kind) => {
                self.walk(cx, "routing", "", |_| match kind {
                    Local::Unicast => format!("local: {dst} is the router's"),
                    Local::Broadcast => format!("local: {dst} is a broadcast address"),
                });
                self.local_in(cx, port, packet, kind, t, &mut meta)
            }
            Decision::Forward { port: out } => {
                self.walk(cx, "routing", "", |s| {
                    format!("forward {}", s.route_text(cx, out, dst))
                });
                self.forward(cx, port, packet, out, t, &mut meta)
            }
            Decision::Unreachable(kind, reason) => {
                self.stats.out_no_routes += 1;
                self.walk(cx, "routing", "", |_| format!("{reason}: {dst}"));
                self.record(cx, port, What::Dropped(reason), &packet, t.note);
                let related = ct::attach(&mut self.ct, t.r.as_ref());
                self.icmp_error(cx, kind, &packet, related);
                ct::release(&mut self.ct, cx, t.r);
            }
        }
        ct::schedule(&mut self.ct, cx);
    }

    fn wake(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token & STACK_TAG != 0 {
            self.in_stack(cx, |h, cx| h.wake(cx, token & !STACK_TAG));
        } else if token == CT_TIMER {
            ct::timer(&mut self.ct, cx);
        }
        ct::schedule(&mut self.ct, cx);
    }

    /// `iptables ARGS` changes the ruleset (creating it if the router had
    /// none); `conntrack ARGS` changes the table. The command and what the
    /// tool printed go to the trace; conntrack's events follow.
    fn command(&mut self, cx: &mut Cx<'_>, cmd: &Command) {
        let text = match cmd {
            Command::Iptables(args) => {
                let nf = self
                    .nf
                    .get_or_insert_with(|| Box::new(Nf::new(Ruleset::new())));
                match nf.rules.command(args) {
                    Ok(()) => format!("iptables {args}"),
                    Err(e) => format!("iptables {args}\niptables: {}", e.message),
                }
            }
            Command::Conntrack(args) => {
                let now = ctsim_conntrack::time::Instant(cx.now.nanos());
                let out = match (CtCommand::parse(args), self.ct.as_mut()) {
                    (Ok(c), Some(ct)) => c.run(ct, now),
                    (Err(e), _) => format!("conntrack: {e}"),
                    (Ok(_), None) => "conntrack: this router tracks no connections".into(),
                };
                format!("conntrack {args}\n{out}")
            }
        };
        if cx.tracing() {
            cx.record_text(What::Command, text);
        }
        ct::flush(&mut self.ct, cx);
        ct::schedule(&mut self.ct, cx);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The destination of a datagram whose IPv4 header Linux's ip_rcv would
/// accept: version 4, sane lengths, a correct header checksum.
fn valid_header(packet: &[u8]) -> Option<Ipv4Addr> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    (ip.version() == 4 && ip.verify_checksum()).then(|| ip.dst_addr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{RawHost, RawSend};
    use crate::time::{Duration, Instant};
    use crate::{Builder, LinkParams, PortSpec};
    use ctsim_conntrack::{Conntrack, Filter, FormatOpts, Table};

    fn cidr(s: &str) -> Cidr {
        let (a, l) = s.split_once('/').unwrap();
        Cidr::new(a.parse().unwrap(), l.parse().unwrap())
    }

    fn port(name: &str, addr: &str) -> Vec<PortSpec> {
        vec![PortSpec {
            name: name.into(),
            addr: Some(cidr(addr)),
        }]
    }

    /// A raw client, a tracking router and a raw server; the client sends
    /// `packets` (literals) at 1 ms intervals.
    fn world(packets: &[&str]) -> (crate::Sim, crate::NodeId) {
        let sends = packets
            .iter()
            .enumerate()
            .map(|(i, p)| RawSend {
                at: Instant::from_nanos(1_000_000 * (i as u64 + 1)),
                packet: ctsim_packet::parse(p, &|_| None).unwrap(),
                count: 1,
                interval: Duration::ZERO,
                port: Some(0),
            })
            .collect();
        let mut b = Builder::new(1);
        let c = b.add_node(
            "c",
            port("eth0", "192.0.2.2/24"),
            Box::new(RawHost::new(sends)),
        );
        let s = b.add_node(
            "s",
            port("eth0", "198.51.100.2/24"),
            Box::new(RawHost::new(vec![])),
        );
        let addrs = vec![Some(cidr("192.0.2.1/24")), Some(cidr("198.51.100.1/24"))];
        let router = Router::new(addrs, &[]).with_conntrack(Some(Conntrack::default()), true);
        let mut ports = port("lan0", "192.0.2.1/24");
        ports.extend(port("wan0", "198.51.100.1/24"));
        let r = b.add_node("r", ports, Box::new(router));
        b.add_link("a", (c, 0), (r, 0), LinkParams::default())
            .unwrap();
        b.add_link("b", (s, 0), (r, 1), LinkParams::default())
            .unwrap();
        (b.build(), r)
    }

    fn table(sim: &crate::Sim, r: crate::NodeId) -> &Conntrack {
        let router = sim.node(r).as_any().downcast_ref::<Router>().unwrap();
        router.conntrack().unwrap()
    }

    fn listing(sim: &crate::Sim, r: crate::NodeId, at: Instant) -> String {
        let now = ctsim_conntrack::time::Instant(at.nanos());
        table(sim, r)
            .conntrack_l(
                Table::Conntrack,
                &Filter::default(),
                FormatOpts::default(),
                now,
            )
            .0
    }

    /// A packet dropped before POSTROUTING (TTL exceeded) leaves no entry;
    /// the router's ICMP error is RELATED to the unconfirmed entry and does
    /// not confirm it either.
    #[test]
    fn dropped_before_confirm_leaves_nothing() {
        let (mut sim, r) = world(&["udp 192.0.2.2:4000 > 198.51.100.2:53 ttl=1 len=4"]);
        sim.run_while_busy(Instant::MAX);
        assert_eq!(table(&sim, r).count(), 0);
        let states: Vec<_> = sim
            .records()
            .iter()
            .filter_map(|rec| rec.ct.map(|n| n.state.name()))
            .collect();
        assert_eq!(states, ["NEW", "RELATED"]);
        assert!(sim.records().iter().all(|rec| rec.what != What::Conntrack));
    }

    /// Entries expire through a background wake-up at their deadline, which
    /// does not keep a run without an end time alive.
    #[test]
    fn timers_expire_entries_in_the_background() {
        let (mut sim, r) = world(&["udp 192.0.2.2:4000 > 198.51.100.2:53 len=4"]);
        sim.run_while_busy(Instant::MAX);
        assert!(sim.idle() && sim.next_event().is_some());
        assert_eq!(sim.last_activity(), Instant::from_nanos(1_000_000));
        let at = Instant::from_nanos(2_000_000);
        assert!(listing(&sim, r, at).starts_with("udp      17 29 src=192.0.2.2"));
        // The entry is due 30 s after it was confirmed at 1 ms.
        sim.run_until(Instant::from_nanos(30_000_999_999));
        assert_eq!(table(&sim, r).count(), 1);
        sim.run_until(Instant::from_nanos(30_001_000_000));
        assert_eq!(table(&sim, r).count(), 0);
        let router = sim.node(r).as_any().downcast_ref::<Router>().unwrap();
        let kinds: Vec<String> = router
            .conntrack_events()
            .iter()
            .map(|e| e.line(FormatOpts::default())[..10].to_string())
            .collect();
        assert_eq!(kinds, ["    [NEW] ", "[DESTROY] "]);
        assert!(sim.next_event().is_none());
    }

    /// Arms a probe on `r` that lists `t` when a packet matching `filter`
    /// is about to be confirmed.
    fn arm(sim: &mut crate::Sim, r: crate::NodeId, filter: &str, t: Table) {
        let router = sim.node_mut(r).as_any_mut().downcast_mut::<Router>();
        router.unwrap().arm_probe(Probe {
            from: Instant::ZERO,
            filter: ctsim_packet::Filter::parse(filter).unwrap(),
            look: Box::new(move |table, now| {
                table.conntrack_l(t, &Filter::default(), FormatOpts::default(), now)
            }),
        });
    }

    fn probed(sim: &crate::Sim, r: crate::NodeId) -> Option<Probed> {
        let router = sim.node(r).as_any().downcast_ref::<Router>().unwrap();
        router.probed().cloned()
    }

    /// A probe fires once, for the first matching packet, just before its
    /// entry is confirmed: the entry is unconfirmed there, and confirmed
    /// once the walk goes on.
    #[test]
    fn a_probe_sees_the_unconfirmed_entry() {
        let syn = "tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240";
        let (mut sim, r) = world(&[syn, syn]);
        arm(&mut sim, r, "tcp dport 22", Table::Unconfirmed);
        sim.run_until(Instant::from_nanos(1_000_000));
        let p = probed(&sim, r).expect("the probe fired");
        assert_eq!(p.at, Instant::from_nanos(1_000_000));
        assert_eq!(p.hook, ConfirmHook::PostRouting);
        assert!(p
            .out
            .0
            .starts_with("tcp      6 120 SYN_SENT src=192.0.2.2 "));
        assert!(p.out.0.ends_with(
            "[UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=22 dport=40000 mark=0 use=1\n"
        ));
        assert_eq!(table(&sim, r).count(), 1);
        // Fired once: the retransmitted SYN does not replace what it saw.
        sim.run_until(Instant::from_nanos(3_000_000));
        assert_eq!(probed(&sim, r).unwrap().at, Instant::from_nanos(1_000_000));
    }

    /// A reset before any reply kills the entry while the RST still holds
    /// it: the entry is dying until the RST leaves.
    #[test]
    fn a_probe_sees_the_dying_entry() {
        let (mut sim, r) = world(&[
            "tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240",
            "tcp 192.0.2.2:40000 > 198.51.100.2:22 R seq=1001 win=0",
        ]);
        arm(&mut sim, r, "rst", Table::Dying);
        sim.run_until(Instant::from_nanos(2_000_000));
        let p = probed(&sim, r).expect("the probe fired");
        assert!(p.out.0.starts_with("tcp      6 "), "{:?}", p.out);
        assert!(p.out.0.contains(" CLOSE src=192.0.2.2 "), "{:?}", p.out);
        assert_eq!(table(&sim, r).count(), 0);
        let listed = table(&sim, r).conntrack_l(
            Table::Dying,
            &Filter::default(),
            FormatOpts::default(),
            ctsim_conntrack::time::Instant(2_000_000),
        );
        assert_eq!(listed.0, "");
    }

    /// A matching packet that never reaches confirmation (dropped for its
    /// TTL) leaves the probe armed.
    #[test]
    fn a_probe_waits_past_dropped_packets() {
        let (mut sim, r) = world(&[
            "udp 192.0.2.2:4000 > 198.51.100.2:53 ttl=1 len=4",
            "udp 192.0.2.2:4000 > 198.51.100.2:53 len=4",
        ]);
        arm(&mut sim, r, "udp", Table::Unconfirmed);
        sim.run_until(Instant::from_nanos(1_500_000));
        assert!(probed(&sim, r).is_none());
        sim.run_until(Instant::from_nanos(2_000_000));
        let p = probed(&sim, r).expect("the probe fired");
        assert_eq!(p.at, Instant::from_nanos(2_000_000));
        assert!(
            p.out.0.starts_with("udp      17 30 src=192.0.2.2"),
            "{:?}",
            p.out
        );
    }
}
