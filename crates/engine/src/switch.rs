//! A learning switch: several hosts on one segment, so that a broadcast
//! reaches them all (an SNMP query answered by every agent on a LAN).
//!
//! ctsim's links carry IP datagrams without an Ethernet header, so the
//! switch learns where each *IP address* is, from the source of what it
//! receives, as a switch learns MAC addresses: a datagram to a learned
//! address goes out of that port alone, anything else (broadcasts, and
//! addresses not seen yet) is flooded to every other port.

use std::any::Any;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::node::{Cx, Node};
use crate::trace::{DropReason, What};

/// The switch: its learned addresses and counters.
#[derive(Default)]
pub struct Switch {
    /// Address → port, learned from sources.
    learned: BTreeMap<Ipv4Addr, u16>,
    /// Datagrams sent out of one port.
    pub forwarded: u64,
    /// Datagrams flooded to every other port.
    pub flooded: u64,
}

impl Switch {
    pub fn new() -> Switch {
        Switch::default()
    }
}

impl Node for Switch {
    fn start(&mut self, _cx: &mut Cx<'_>) {}

    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>) {
        let (Some(src), Some(dst)) = (addr(&packet, 12), addr(&packet, 16)) else {
            return cx.record(port, What::Dropped(DropReason::Malformed), &packet);
        };
        if !(src.is_unspecified() || src.is_broadcast() || src.is_multicast()) {
            self.learned.insert(src, port);
        }
        match self.learned.get(&dst).copied() {
            // Back where it came from: nothing to do, as a switch filters it.
            Some(out) if out == port => cx.recycle(packet),
            Some(out) => {
                self.forwarded += 1;
                if cx.tracing() {
                    cx.record(port, What::Forwarded { to: out }, &packet);
                }
                cx.transmit(out, packet);
            }
            None => {
                self.flooded += 1;
                let others: Vec<u16> = (0..cx.ports.len() as u16).filter(|&p| p != port).collect();
                for (i, &out) in others.iter().enumerate() {
                    if cx.tracing() {
                        cx.record(port, What::Forwarded { to: out }, &packet);
                    }
                    if i + 1 == others.len() {
                        return cx.transmit(out, packet);
                    }
                    let mut copy = cx.buffer();
                    copy.extend_from_slice(&packet);
                    cx.transmit(out, copy);
                }
                cx.recycle(packet);
            }
        }
    }

    fn wake(&mut self, _cx: &mut Cx<'_>, _token: u64) {}

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The IPv4 address at `at` of a datagram long enough to have one.
fn addr(packet: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
    (packet.len() >= 20 && packet[0] >> 4 == 4).then(|| Ipv4Addr::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{RawHost, RawSend};
    use crate::time::{Duration, Instant};
    use crate::topology::Cidr;
    use crate::{Builder, LinkParams, NodeId, PortSpec};

    fn host(b: &mut Builder, name: &str, addr: [u8; 4], sends: Vec<RawSend>) -> NodeId {
        let port = PortSpec {
            name: "eth0".into(),
            addr: Some(Cidr::new(Ipv4Addr::from(addr), 24)),
        };
        b.add_node(name, vec![port], Box::new(RawHost::new(sends)))
    }

    fn send(ms: u64, literal: &str) -> RawSend {
        RawSend {
            at: Instant::from_nanos(ms * 1_000_000),
            packet: ctsim_packet::parse(literal, &|_| None).unwrap(),
            count: 1,
            interval: Duration::ZERO,
            port: Some(0),
        }
    }

    fn received(sim: &crate::Sim, id: NodeId) -> u64 {
        let h = sim.node(id).as_any().downcast_ref::<RawHost>().unwrap();
        h.received()
    }

    /// A broadcast is flooded to every other port; an answer to a learned
    /// address goes out of that port alone; an address not seen yet is
    /// flooded.
    #[test]
    fn floods_until_it_learns() {
        let mut b = Builder::new(1);
        let a = host(
            &mut b,
            "a",
            [192, 0, 2, 1],
            vec![send(1, "udp 192.0.2.1:5 > 192.0.2.255:7 len=4")],
        );
        let c = host(
            &mut b,
            "c",
            [192, 0, 2, 2],
            vec![send(5, "udp 192.0.2.2:7 > 192.0.2.1:5 len=4")],
        );
        let d = host(
            &mut b,
            "d",
            [192, 0, 2, 3],
            vec![send(9, "udp 192.0.2.3:7 > 192.0.2.9:5 len=4")],
        );
        let ports = (0..3)
            .map(|i| PortSpec {
                name: format!("p{i}"),
                addr: None,
            })
            .collect();
        let sw = b.add_node("sw", ports, Box::new(Switch::new()));
        for (i, h) in [a, c, d].into_iter().enumerate() {
            b.add_link(
                &format!("l{i}"),
                (h, 0),
                (sw, i as u16),
                LinkParams::default(),
            )
            .unwrap();
        }
        let mut sim = b.build();
        sim.run_while_busy(Instant::MAX);
        // a's broadcast reached c and d; c's answer reached a only; d's
        // datagram to an unknown address was flooded to a and c.
        assert_eq!(
            (received(&sim, a), received(&sim, c), received(&sim, d)),
            (2, 2, 1)
        );
        let s = sim.node(sw).as_any().downcast_ref::<Switch>().unwrap();
        assert_eq!((s.forwarded, s.flooded), (1, 2));
    }
}
