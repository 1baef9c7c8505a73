//! Routers: interfaces, a routing table, and the forwarding path.
//!
//! The path is written as the sequence of steps Linux takes, with the places
//! where netfilter's hooks sit marked, so the hook chain can be inserted at
//! exactly those points:
//!
//! ```text
//! receive ─ check header ─ [PREROUTING] ─ route ─┬─ local ─ [INPUT] ─ answer ─ [OUTPUT] ─ route ─ [POSTROUTING] ─ send
//!                                                └─ forward ─ TTL ─ DF/MTU ─ TTL-1 ─ [FORWARD] ─ [POSTROUTING] ─ fragment ─ send
//! ```

mod frag;
mod local;
mod routes;

use std::any::Any;
use std::net::Ipv4Addr;

use ctsim_packet::IcmpError;
use smoltcp::wire::Ipv4Packet;

pub use routes::{Local, Route, Routes};

use crate::node::{Cx, Node};
use crate::topology::Cidr;
use crate::trace::{DropReason, What};

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
}

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
        Router {
            addrs,
            routes,
            stats: RouterStats::default(),
        }
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
        // Links are point to point: the only neighbour is the far end. Linux
        // would answer host-unreachable after ARP gives up (about 3 s later).
        if cx.ports[usize::from(route.port)].peer != Some(next_hop) {
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
    fn icmp_error(&mut self, cx: &mut Cx<'_>, kind: IcmpError, offending: &[u8]) {
        let ip = Ipv4Packet::new_unchecked(offending);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if ctsim_packet::is_icmp_error(offending)
            || ip.frag_offset() != 0
            || src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
        {
            return;
        }
        let from = match self.route(cx, src) {
            _ if self.routes.local(dst) == Some(Local::Unicast) => dst,
            Decision::Forward { port } => match self.addrs[usize::from(port)] {
                Some(c) => c.addr,
                None => return,
            },
            Decision::Local(_) | Decision::Unreachable(..) => return,
        };
        self.stats.icmp_errors_sent += 1;
        let error = ctsim_packet::icmp_error(from, kind, offending);
        self.output(cx, error);
    }

    /// A packet the router itself originates: route it and send it.
    fn output(&mut self, cx: &mut Cx<'_>, packet: Vec<u8>) {
        self.stats.out_requests += 1;
        let dst = Ipv4Packet::new_unchecked(&packet[..]).dst_addr();
        match self.route(cx, dst) {
            Decision::Forward { port, .. } => {
                cx.record(port, What::Sent, &packet);
                cx.transmit(port, packet);
            }
            // Nowhere to send our own packet: Linux fails the send (ENETUNREACH).
            Decision::Local(_) | Decision::Unreachable(..) => self.stats.out_no_routes += 1,
        }
    }

    /// INPUT: the packet is for the router. A broadcast gets no answer:
    /// Linux ignores broadcast pings (icmp_echo_ignore_broadcasts=1) and
    /// sends neither RST nor ICMP errors about broadcasts.
    fn local_in(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>, kind: Local) {
        self.stats.delivered += 1;
        cx.record(port, What::Received, &packet);
        if kind == Local::Broadcast {
            return;
        }
        match local::answer(&packet) {
            local::Answer::Reply(reply) => self.output(cx, reply),
            local::Answer::Error(kind) => self.icmp_error(cx, kind, &packet),
            local::Answer::Nothing => {}
        }
    }

    /// The steps of Linux's ip_forward, in its order: TTL, then the MTU
    /// check on the datagram as received, then the TTL decrement, then the
    /// FORWARD hook; POSTROUTING, then fragmentation, in ip_output.
    fn forward(&mut self, cx: &mut Cx<'_>, in_port: u16, mut packet: Vec<u8>, out: u16) {
        let ip = Ipv4Packet::new_unchecked(&packet[..]);
        if ip.hop_limit() <= 1 {
            cx.record(in_port, What::Dropped(DropReason::TtlExceeded), &packet);
            return self.icmp_error(cx, IcmpError::TimeExceeded, &packet);
        }
        let mtu = cx.ports[usize::from(out)].mtu as usize;
        if packet.len() > mtu && ip.dont_frag() {
            cx.record(in_port, What::Dropped(DropReason::FragNeeded), &packet);
            let kind = IcmpError::FragNeeded {
                mtu: mtu.min(usize::from(u16::MAX)) as u16,
            };
            return self.icmp_error(cx, kind, &packet);
        }
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.set_hop_limit(ip.hop_limit() - 1);
        ip.fill_checksum();
        // [FORWARD]
        // [POSTROUTING]
        self.stats.forwarded += 1;
        if packet.len() > mtu {
            let pieces = frag::fragment(&packet, mtu);
            self.stats.frag_creates += pieces.len() as u64;
            for piece in pieces {
                cx.record(in_port, What::Forwarded { to: out }, &piece);
                cx.transmit(out, piece);
            }
            return;
        }
        if cx.tracing() {
            cx.record(in_port, What::Forwarded { to: out }, &packet);
        }
        cx.transmit(out, packet);
    }
}

impl Node for Router {
    fn start(&mut self, _cx: &mut Cx<'_>) {}

    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>) {
        self.stats.in_receives += 1;
        let Some(dst) = valid_header(&packet) else {
            self.stats.in_hdr_errors += 1;
            return cx.record(port, What::Dropped(DropReason::Malformed), &packet);
        };
        // [PREROUTING]
        match self.route(cx, dst) {
            Decision::Local(kind) => self.local_in(cx, port, packet, kind),
            Decision::Forward { port: out } => self.forward(cx, port, packet, out),
            Decision::Unreachable(kind, reason) => {
                self.stats.out_no_routes += 1;
                cx.record(port, What::Dropped(reason), &packet);
                self.icmp_error(cx, kind, &packet);
            }
        }
    }

    fn wake(&mut self, _cx: &mut Cx<'_>, _token: u64) {}

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The destination of a datagram whose IPv4 header Linux's ip_rcv would
/// accept: version 4, sane lengths, a correct header checksum.
fn valid_header(packet: &[u8]) -> Option<Ipv4Addr> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    (ip.version() == 4 && ip.verify_checksum()).then(|| ip.dst_addr())
}
