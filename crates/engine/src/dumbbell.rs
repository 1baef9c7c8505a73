//! The benchmark topology: N clients and N servers, each on its own link to
//! one router, one UDP flow of 512-byte datagrams from each client to its
//! server. Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside
//! for benchmarks: link k is 198.18.0.0 + 4k/30, the router .1, the host .2.

use std::net::Ipv4Addr;

use crate::link::LinkParams;
use crate::raw::{RawHost, RawSend};
use crate::router::Router;
use crate::sim::{Builder, PortSpec};
use crate::time::{Duration, Instant};
use crate::topology::Cidr;

/// The /30 of link `k` and the address `host` (1: router, 2: host) in it.
pub fn addr(k: u32, host: u32) -> Cidr {
    Cidr::new(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 4 * k + host),
        30,
    )
}

/// The most flows the address range holds (two /30s per flow).
pub const MAX_FLOWS: u32 = (1 << 17) / 8;

/// A 512-byte UDP datagram with a correct IPv4 header checksum. The UDP
/// checksum is 0 ("none"), which IPv4 allows and the router never reads.
fn datagram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 512];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&512u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = p[..20]
        .chunks(2)
        .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
    let folded = (sum & 0xffff) + (sum >> 16);
    let csum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    p[10..12].copy_from_slice(&csum.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&492u16.to_be_bytes());
    p
}

/// Builds the dumbbell with `flows` flows of `packets` datagrams each, sent
/// every `interval` on 1 Gbit/s, 1 ms links. Flows start 1 ns apart.
/// With `replies`, each server sends as many datagrams back, starting 2 ms
/// later (after the client's first one has crossed, so a tracking router
/// sees an answered, ESTABLISHED flow). `setup` configures the router
/// (conntrack, a ruleset); its interfaces are `p0`, `p1`, …: clients on
/// even ones, servers on odd ones.
pub fn build(
    flows: u32,
    packets: u64,
    interval: Duration,
    trace: bool,
    replies: bool,
    setup: impl FnOnce(Router) -> Router,
) -> Builder {
    let flows = flows.min(MAX_FLOWS);
    let mut b = Builder::new(1);
    b.trace(trace);
    let mut router_ports = Vec::new();
    let mut router_addrs = Vec::new();
    for k in 0..2 * flows {
        router_ports.push(PortSpec {
            name: format!("p{k}"),
            addr: Some(addr(k, 1)),
        });
        router_addrs.push(Some(addr(k, 1)));
    }
    let router = setup(Router::new(router_addrs, &[]));
    let router = b.add_node("r", router_ports, Box::new(router));
    let params = LinkParams {
        delay: Duration::from_millis(1),
        bandwidth: Some(1_000_000_000),
        ..LinkParams::default()
    };
    for i in 0..flows {
        let (c, s) = (2 * i, 2 * i + 1);
        let (ca, sa) = (addr(c, 2).addr, addr(s, 2).addr);
        let send = |at: Instant, packet: Vec<u8>| RawSend {
            at,
            packet,
            count: packets,
            interval,
            port: Some(0),
        };
        let start = Instant::from_nanos(u64::from(i));
        let forth = vec![send(start, datagram(ca, sa, 40000, 9))];
        let back = match replies {
            true => vec![send(
                start + Duration::from_millis(2),
                datagram(sa, ca, 9, 40000),
            )],
            false => Vec::new(),
        };
        for (k, sends, name) in [(c, forth, "c"), (s, back, "s")] {
            let port = PortSpec {
                name: "eth0".into(),
                addr: Some(addr(k, 2)),
            };
            let host = b.add_node(
                &format!("{name}{i}"),
                vec![port],
                Box::new(RawHost::new(sends)),
            );
            // Ports and links are ours, so this cannot fail.
            let _ = b.add_link(
                &format!("l{k}"),
                (host, 0),
                (router, k as u16),
                params.clone(),
            );
        }
    }
    b
}
