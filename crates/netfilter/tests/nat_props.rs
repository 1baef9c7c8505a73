//! Properties of NAT over random traffic: whatever the flows and ranges
//! (tiny ones included), no two confirmed entries ever share a tuple
//! (conntrack-core.md §1: the table must stay unambiguous, which is what
//! get_unique_tuple and confirm's clash check guarantee), rewritten packets
//! carry valid checksums, replies come back as the inverse of what the
//! client sent, and no bytes make `nat::packet` panic.

mod nat_util;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ctsim_conntrack::time::Instant;
use ctsim_conntrack::{CtHook, CtInfo, Table, Tuple, Zone};
use ctsim_netfilter::nat::{self, Manip, NatRange};
use nat_util::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    New {
        host: u8,
        sport: u16,
        dst: u8,
        dport: u16,
        proto: u8,
        dnat: Option<NatRange>,
        snat: Option<NatRange>,
    },
    /// The reply of the n-th listed entry.
    Reply(usize),
}

fn range() -> impl Strategy<Value = Option<NatRange>> {
    let some = (
        1u8..=3,
        prop::option::of((2000u16..2003, 0u16..3)),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, ports, random, persistent)| {
            Some(NatRange {
                addrs: Some((Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, n))),
                ports: ports.map(|(lo, w)| (lo, lo + w)),
                random,
                persistent,
                ..NatRange::default()
            })
        });
    prop_oneof![Just(None), some]
}

fn op() -> impl Strategy<Value = Op> {
    let new = (
        2u8..=5,
        prop::sample::select(vec![80u16, 700, 1024, 40000, 40001]),
        2u8..=3,
        prop::sample::select(vec![53u16, 80]),
        prop::sample::select(vec![6u8, 17, 1]),
        range(),
        range(),
    )
        .prop_map(|(host, sport, dst, dport, proto, dnat, snat)| Op::New {
            host,
            sport,
            dst,
            dport,
            proto,
            dnat,
            snat,
        });
    prop_oneof![3 => new, 1 => (0usize..64).prop_map(Op::Reply)]
}

/// The literal of a first packet (or reply) with tuple `t`.
fn packet_of(t: &Tuple, reply: bool) -> String {
    match t.proto {
        6 if reply => format!(
            "tcp {}:{} > {}:{} S. seq=100 ack=2 win=1000",
            t.src, t.src_u, t.dst, t.dst_u
        ),
        6 => format!(
            "tcp {}:{} > {}:{} S seq=1 win=1000",
            t.src, t.src_u, t.dst, t.dst_u
        ),
        17 => format!("udp {}:{} > {}:{} len=5", t.src, t.src_u, t.dst, t.dst_u),
        _ => format!(
            "icmp {} > {} {} id={} seq=1 len=8",
            t.src,
            t.dst,
            if reply { "echo-reply" } else { "echo-request" },
            t.src_u
        ),
    }
}

/// The tuple a packet carries (ports or echo id).
fn tuple_of(p: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let addr = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    let w = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    match p[9] {
        1 => (addr(12), addr(16), w(24), 0),
        _ => (addr(12), addr(16), w(20), w(22)),
    }
}

fn assert_unique(r: &Router) {
    let mut seen = HashSet::new();
    for k in r.ct.keys(Table::Conntrack, r.now) {
        let e = r.ct.get(k).unwrap();
        for t in [e.orig(), e.reply()] {
            assert!(seen.insert(*t), "two entries share {t}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_two_entries_share_a_tuple(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..60)) {
        let mut r = Router::seeded(seed);
        for op in ops {
            r.now = Instant(r.now.0 + 1_000_000);
            let (pkt, dnat, snat, expect) = match op {
                Op::New { host, sport, dst, dport, proto, dnat, snat } => {
                    let t = Tuple::with_ports(
                        proto,
                        Ipv4Addr::new(192, 0, 2, host),
                        sport,
                        Ipv4Addr::new(198, 51, 100, dst),
                        if proto == 1 { 8 << 8 } else { dport },
                    );
                    (packet_of(&t, false), dnat, snat, None)
                }
                Op::Reply(n) => {
                    let keys = r.ct.keys(Table::Conntrack, r.now);
                    if keys.is_empty() {
                        continue;
                    }
                    let e = r.ct.get(keys[n % keys.len()]).unwrap();
                    (packet_of(e.reply(), true), None, None, Some(*e.orig()))
                }
            };
            let Ok(out) = r.try_run(lit(&pkt), CtHook::PreRouting, dnat, snat) else {
                continue; // e.g. a TCP SYN the tracker refuses
            };
            assert_unique(&r);
            if out.dropped {
                continue;
            }
            prop_assert!(checksums_ok(&out.bytes), "{} -> {}", pkt, out.packet);
            if let Some(o) = expect.filter(|_| out.ctinfo == CtInfo::EstablishedReply) {
                let back = tuple_of(&out.bytes);
                let want = if o.proto == 1 { (o.dst, o.src, o.src_u, 0) } else { (o.dst, o.src, o.dst_u, o.src_u) };
                prop_assert_eq!(back, want, "{} -> {}", pkt, out.packet);
            }
        }
    }

    /// Whatever the bytes, under any ctinfo and manip, `packet` returns.
    #[test]
    fn packet_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..80),
        base in 0usize..4,
        cut in 0usize..120,
        flips in prop::collection::vec((0usize..120, any::<u8>()), 0..4),
    ) {
        let mut r = Router::new();
        let dnat = NatRange { addrs: Some((Ipv4Addr::new(198, 51, 100, 3), Ipv4Addr::new(198, 51, 100, 3))), ports: Some((8080, 8080)), ..NatRange::default() };
        let snat = NatRange { addrs: Some((N, N)), ..NatRange::default() };
        let first = r.forward("tcp 192.0.2.2:40000 > 198.51.100.2:80 S seq=1 win=1000", Some(dnat), Some(snat));
        let valid = [
            first.packet.clone(),
            format!("icmp 198.51.100.3 > 198.51.100.1 port-unreachable quote=({})", first.packet),
            "icmp 198.51.100.3 > 198.51.100.1 echo-reply id=1 seq=1 len=4".to_string(),
            "udp 198.51.100.3:8080 > 198.51.100.1:40000 len=3".to_string(),
        ];
        // Either random bytes, or a valid packet cut and with bytes changed.
        let mut pkt = if base < valid.len() && !bytes.is_empty() {
            let mut p = lit(&valid[base]);
            p.truncate(cut.max(1));
            for (at, v) in &flips {
                if let Some(b) = p.get_mut(*at) {
                    *b = *v;
                }
            }
            p
        } else {
            bytes
        };
        let h = r.ct.handle_packet(&lit(&first.packet), CtHook::LocalOut, Zone(0), Instant(0)).ct.unwrap();
        for info in [CtInfo::New, CtInfo::Established, CtInfo::Related, CtInfo::EstablishedReply, CtInfo::RelatedReply] {
            let a = r.ct.attach(&h, info);
            for manip in [Manip::Src, Manip::Dst] {
                let _ = nat::packet(&r.ct, &a, manip, &mut pkt);
                let _ = nat::needs_binding(&r.ct, &a, manip, &pkt);
            }
            r.ct.release(a);
        }
        r.ct.release(h);
    }
}
