//! The bridge between one smoltcp `Interface` and the engine: a device whose
//! receive queue the host fills and whose transmissions go straight onto the
//! link, plus the few header peeks the host makes before smoltcp sees a packet.
//!
//! Buffers circulate instead of being allocated per packet: a datagram
//! smoltcp has consumed goes back into the NIC's pool, and the next datagram
//! smoltcp emits is written into a pooled buffer and handed to the link.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::ports::{Ports, Proto};
use crate::node::Cx;
use crate::topology::Cidr;
use crate::trace::What;

/// Buffers kept for reuse per NIC at most.
const POOL_MAX: usize = 256;

/// One interface of a host: its smoltcp stack, sockets and queues.
pub(crate) struct NicState {
    /// The engine's interface index (the NIC's position in the config).
    pub port: u16,
    pub cidr: Cidr,
    pub mtu: usize,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub rx: VecDeque<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    spent: Vec<Vec<u8>>,
    /// Sockets no app uses any more, left to finish (TIME-WAIT, a pending
    /// RST); removed once closed, freeing their port if they hold one.
    pub lingering: Vec<(SocketHandle, Option<(Proto, u16)>)>,
}

/// A device that only answers `capabilities`, to create the interface.
struct Caps(usize);

impl Device for Caps {
    type RxToken<'t>
        = RxTok<'t>
    where
        Self: 't;
    type TxToken<'t>
        = Never
    where
        Self: 't;
    fn receive(&mut self, _: SInstant) -> Option<(RxTok<'_>, Never)> {
        None
    }
    fn transmit(&mut self, _: SInstant) -> Option<Never> {
        None
    }
    fn capabilities(&self) -> DeviceCapabilities {
        caps(self.0)
    }
}

/// The transmit token of a device that never transmits.
enum Never {}

impl TxToken for Never {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _: usize, _: F) -> R {
        match self {}
    }
}

fn caps(mtu: usize) -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ip;
    caps.max_transmission_unit = mtu;
    caps
}

impl NicState {
    pub(crate) fn new(
        port: u16,
        cidr: Cidr,
        mtu: u32,
        gateway: Option<Ipv4Addr>,
        seed: u64,
        now: SInstant,
    ) -> Self {
        // An unattached interface reports MTU 0; smoltcp needs a usable one.
        let mtu = if mtu < 68 { 1500 } else { mtu as usize };
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut Caps(mtu), now);
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(cidr.addr), cidr.len));
        });
        if let Some(gw) = gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        NicState {
            port,
            cidr,
            mtu,
            iface,
            sockets: SocketSet::new(Vec::new()),
            rx: VecDeque::new(),
            pool: Vec::new(),
            spent: Vec::new(),
            lingering: Vec::new(),
        }
    }

    /// Lets smoltcp take in the queued datagrams and send what it has;
    /// true when a socket may have changed.
    pub(crate) fn poll(&mut self, now: SInstant, cx: &mut Cx<'_>) -> bool {
        let mut dev = Dev {
            rx: &mut self.rx,
            pool: &mut self.pool,
            spent: &mut self.spent,
            cx,
            port: self.port,
            mtu: self.mtu,
        };
        let changed = self.iface.poll(now, &mut dev, &mut self.sockets);
        for buf in self.spent.drain(..) {
            if self.pool.len() < POOL_MAX {
                self.pool.push(buf);
            }
        }
        changed == PollResult::SocketStateChanged
    }

    /// Removes lingering sockets that have finished, freeing their ports.
    pub(crate) fn sweep(&mut self, ports: &mut Ports) {
        let sockets = &mut self.sockets;
        self.lingering.retain(|&(handle, port)| {
            let s = sockets.get::<tcp::Socket>(handle);
            let done = s.state() == tcp::State::Closed && s.remote_endpoint().is_none();
            if done {
                sockets.remove(handle);
                if let Some((proto, p)) = port {
                    ports.free(proto, p);
                }
            }
            !done
        });
    }
}

struct Dev<'a, 'c> {
    rx: &'a mut VecDeque<Vec<u8>>,
    pool: &'a mut Vec<Vec<u8>>,
    spent: &'a mut Vec<Vec<u8>>,
    cx: &'a mut Cx<'c>,
    port: u16,
    mtu: usize,
}

struct RxTok<'t> {
    buf: Vec<u8>,
    spent: &'t mut Vec<Vec<u8>>,
}

struct TxTok<'t, 'c> {
    cx: &'t mut Cx<'c>,
    pool: &'t mut Vec<Vec<u8>>,
    port: u16,
    mtu: usize,
}

impl<'c> Device for Dev<'_, 'c> {
    type RxToken<'t>
        = RxTok<'t>
    where
        Self: 't;
    type TxToken<'t>
        = TxTok<'t, 'c>
    where
        Self: 't;

    fn receive(&mut self, _: SInstant) -> Option<(RxTok<'_>, TxTok<'_, 'c>)> {
        let buf = self.rx.pop_front()?;
        let rx = RxTok {
            buf,
            spent: &mut *self.spent,
        };
        let tx = TxTok {
            cx: &mut *self.cx,
            pool: &mut *self.pool,
            port: self.port,
            mtu: self.mtu,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _: SInstant) -> Option<TxTok<'_, 'c>> {
        Some(TxTok {
            cx: &mut *self.cx,
            pool: &mut *self.pool,
            port: self.port,
            mtu: self.mtu,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        caps(self.mtu)
    }
}

impl RxToken for RxTok<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf);
        self.spent.push(self.buf);
        r
    }
}

impl TxToken for TxTok<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.mtu.max(len)));
        buf.clear();
        buf.resize(len, 0);
        let r = f(&mut buf);
        self.cx.record(self.port, What::Sent, &buf);
        self.cx.transmit(self.port, buf);
        r
    }
}

/// What the host reads from a datagram's headers before smoltcp gets it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Peek {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// (protocol, local port or ICMP identifier) of the app it concerns.
    pub key: Option<(u8, u16)>,
    /// A TCP segment with RST set.
    pub rst: bool,
    pub icmp_error: Option<IcmpNote>,
}

/// An ICMP error that quotes one of our datagrams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IcmpNote {
    /// `time-exceeded`, `port-unreachable`, ...
    pub kind: String,
    /// Who sent the error.
    pub from: Ipv4Addr,
    /// ICMP type and code.
    pub icmp: (u8, u8),
    /// Destination address and port (or ident) of the quoted datagram.
    pub to: (Ipv4Addr, u16),
}

impl IcmpNote {
    /// Whether Linux fails a connect in SYN-SENT on this error (tcp_v4_err):
    /// every destination-unreachable but frag-needed, time-exceeded and
    /// parameter-problem.
    pub(crate) fn aborts_connect(&self) -> bool {
        matches!(self.icmp, (3, c) if c != 4) || matches!(self.icmp.0, 11 | 12)
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn addr(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

/// The IPv4 header's length if `b` starts with a plausible one, and the
/// transport header when this is not a later fragment.
fn ipv4(b: &[u8]) -> Option<(usize, Option<&[u8]>)> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 || ihl > b.len() {
        return None;
    }
    let frag_offset = be16(b, 6)? & 0x1fff;
    Some((ihl, (frag_offset == 0).then(|| &b[ihl..])))
}

/// The name of an ICMP error type/code, as iptables' REJECT spells them.
pub(crate) fn icmp_error_name(ty: u8, code: u8, mtu: u16) -> Option<String> {
    let name = match (ty, code) {
        (3, 0) => "net-unreachable",
        (3, 1) => "host-unreachable",
        (3, 2) => "proto-unreachable",
        (3, 3) => "port-unreachable",
        (3, 4) => return Some(format!("frag-needed (mtu {mtu})")),
        (3, 6) => "net-unknown",
        (3, 7) => "host-unknown",
        (3, 9) => "net-prohibited",
        (3, 10) => "host-prohibited",
        (3, 13) => "admin-prohibited",
        (3, c) => return Some(format!("dest-unreachable (code {c})")),
        (4, _) => "source-quench",
        (11, 0) => "time-exceeded",
        (11, _) => "reassembly-time-exceeded",
        (12, _) => "parameter-problem",
        _ => return None,
    };
    Some(name.to_string())
}

/// Reads addresses and the app demultiplexing key; `None` if this is not a
/// well-formed IPv4 header.
pub(crate) fn peek(b: &[u8]) -> Option<Peek> {
    let (_, l4) = ipv4(b)?;
    let (src, dst) = (addr(b, 12)?, addr(b, 16)?);
    let proto = b[9];
    let mut p = Peek {
        src,
        dst,
        key: None,
        rst: false,
        icmp_error: None,
    };
    let Some(l4) = l4 else { return Some(p) };
    match proto {
        6 | 17 => {
            p.key = be16(l4, 2).map(|port| (proto, port));
            p.rst = proto == 6 && l4.get(13).is_some_and(|f| f & 0x04 != 0);
        }
        1 if l4.len() >= 8 => match l4[0] {
            0 => p.key = be16(l4, 4).map(|id| (1, id)),
            ty @ (3 | 4 | 11 | 12) => {
                let kind = icmp_error_name(ty, l4[1], be16(l4, 6).unwrap_or(0));
                let inner = &l4[8..];
                if let (Some(kind), Some((_, Some(il4)))) = (kind, ipv4(inner)) {
                    let iproto = inner[9];
                    let idst = addr(inner, 16)?;
                    let quoted = match iproto {
                        6 | 17 => be16(il4, 0).zip(be16(il4, 2)),
                        1 if il4.first() == Some(&8) => be16(il4, 4).map(|id| (id, id)),
                        _ => None,
                    };
                    if let Some((local, remote)) = quoted {
                        p.key = Some((iproto, local));
                        p.icmp_error = Some(IcmpNote {
                            kind,
                            from: src,
                            icmp: (ty, l4[1]),
                            to: (idst, remote),
                        });
                    }
                }
            }
            _ => {}
        },
        _ => {}
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut b = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        b.extend_from_slice(&src);
        b.extend_from_slice(&dst);
        let len = (20 + l4.len()) as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b.extend_from_slice(l4);
        b
    }

    #[test]
    fn peeks_tcp_rst_and_icmp_errors() {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[13] = 0x14;
        let seg = ip(6, [10, 0, 0, 2], [10, 0, 0, 1], &tcp);
        let p = peek(&seg).unwrap();
        assert_eq!((p.key, p.rst), (Some((6, 40000)), true));

        // Time exceeded from a router quoting our echo request (ident 7).
        let echo = [8, 0, 0, 0, 0, 7, 0, 1];
        let quoted = ip(1, [10, 0, 0, 1], [192, 0, 2, 9], &echo);
        let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[..28]);
        let err = ip(1, [10, 0, 0, 254], [10, 0, 0, 1], &icmp);
        let p = peek(&err).unwrap();
        assert_eq!(p.key, Some((1, 7)));
        let note = p.icmp_error.unwrap();
        assert_eq!(note.kind, "time-exceeded");
        assert_eq!(note.from, Ipv4Addr::new(10, 0, 0, 254));
        assert!(note.aborts_connect());
        assert!(peek(&[0x60; 40]).is_none());
    }
}
