//! Raw hosts: no stack. They send the scenario's packets byte for byte and
//! keep whatever reaches them, so a user can craft INVALID segments, spoofed
//! RSTs or ICMP errors that quote a flow, and see exactly what comes back.

use std::any::Any;
use std::net::Ipv4Addr;

use crate::node::{Cx, Node};
use crate::time::{Duration, Instant};
use crate::trace::What;

/// One scheduled packet, possibly repeated as a flow.
#[derive(Clone, Debug)]
pub struct RawSend {
    pub at: Instant,
    /// A complete IPv4 datagram.
    pub packet: Vec<u8>,
    /// How many copies to send, `interval` apart (at least one).
    pub count: u64,
    pub interval: Duration,
    /// The interface to send from; `None` picks one from the addresses.
    pub port: Option<u16>,
}

/// A host without a stack.
pub struct RawHost {
    sends: Vec<RawSend>,
    /// Per send: copies sent so far, and how many leading bytes of its
    /// packet to copy; the rest are zeros (a `len=` payload), written
    /// without reading them, so a flow's packet costs no reads of its cold
    /// padding.
    sent: Vec<(u64, usize)>,
    received: u64,
}

impl RawHost {
    pub fn new(sends: Vec<RawSend>) -> Self {
        RawHost {
            sent: sends
                .iter()
                .map(|s| {
                    let zeros = s.packet.iter().rev().take_while(|&&b| b == 0).count();
                    (0, s.packet.len() - zeros)
                })
                .collect(),
            sends,
            received: 0,
        }
    }

    /// Packets that reached this host.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The interface a packet leaves from: the one owning its source address,
    /// else the one whose subnet holds its destination, else the first.
    fn port_for(cx: &Cx<'_>, packet: &[u8]) -> u16 {
        let addr = |at: usize| -> Option<Ipv4Addr> {
            let b: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
            Some(Ipv4Addr::from(b))
        };
        let (src, dst) = (addr(12), addr(16));
        let find = |pred: &dyn Fn(&crate::topology::Cidr) -> bool| {
            cx.ports
                .iter()
                .position(|p| p.addr.as_ref().is_some_and(pred))
        };
        src.and_then(|s| find(&|c| c.addr == s))
            .or_else(|| dst.and_then(|d| find(&|c| c.contains(d))))
            .unwrap_or(0) as u16
    }
}

impl Node for RawHost {
    fn start(&mut self, cx: &mut Cx<'_>) {
        for (i, s) in self.sends.iter_mut().enumerate() {
            // The interface each send leaves from, decided once.
            s.port = Some(s.port.unwrap_or_else(|| Self::port_for(cx, &s.packet)));
            cx.wake_at(s.at, i as u64);
        }
    }

    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>) {
        self.received += 1;
        cx.record(port, What::Received, &packet);
        cx.recycle(packet);
    }

    fn wake(&mut self, cx: &mut Cx<'_>, token: u64) {
        let i = token as usize;
        let Some(send) = self.sends.get(i) else {
            return;
        };
        let port = send.port.unwrap_or(0);
        cx.record(port, What::Sent, &send.packet);
        let (sent, head) = &mut self.sent[i];
        let mut packet = cx.buffer();
        packet.extend_from_slice(&send.packet[..*head]);
        packet.resize(send.packet.len(), 0);
        cx.transmit(port, packet);
        *sent += 1;
        if *sent < send.count {
            cx.wake_at(cx.now + send.interval, token);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
