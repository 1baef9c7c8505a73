//! `netfilter` benchmark (targets in issue 4): an established packet through
//! PREROUTING, FORWARD and POSTROUTING with a 100-rule filter table whose
//! first rule accepts ESTABLISHED; a new flow hitting the 100th rule and SNAT;
//! a NAT binding for a new flow and the rewrite of an established packet.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use ctsim_conntrack::{time::Instant, Conntrack, CtHook, CtInfo, Status, Zone};
use ctsim_netfilter::nat::{self, Manip};
use ctsim_netfilter::*;

fn tcp_syn() -> Vec<u8> {
    let mut b = vec![0u8; 40];
    b[0] = 0x45;
    b[2..4].copy_from_slice(&40u16.to_be_bytes());
    b[8] = 64;
    b[9] = 6;
    b[12..16].copy_from_slice(&Ipv4Addr::new(192, 0, 2, 2).octets());
    b[16..20].copy_from_slice(&Ipv4Addr::new(198, 51, 100, 2).octets());
    b[20..22].copy_from_slice(&40000u16.to_be_bytes());
    b[22..24].copy_from_slice(&8099u16.to_be_bytes());
    b[32] = 0x50;
    b[33] = 0x02;
    b
}

fn ruleset() -> Ruleset {
    let mut text =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    text.push_str("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    for i in 0..98 {
        text.push_str(&format!(
            "-A FORWARD -p tcp -m tcp --dport {} -j ACCEPT\n",
            8000 + i
        ));
    }
    text.push_str("-A FORWARD -i lan0 -o wan0 -p tcp -j ACCEPT\nCOMMIT\n");
    text.push_str("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    text.push_str("-A POSTROUTING -o wan0 -j SNAT --to-source 198.51.100.1\nCOMMIT\n");
    Ruleset::parse(&text).expect("bench ruleset")
}

fn walk(rs: &mut Ruleset, pkt: &[u8], ct: &CtSnapshot, out: &mut Outcome) -> bool {
    let mut meta = PacketMeta::default();
    let mut ok = true;
    for hook in [Hook::Prerouting, Hook::Forward, Hook::Postrouting] {
        out.clear();
        let input = HookInput {
            hook,
            packet: pkt,
            in_iface: "lan0",
            out_iface: "wan0",
            now: Instant(0),
        };
        ok &= rs.hook(&input, &mut meta, ct, out) == Decision::Accept;
    }
    ok
}

fn bench(c: &mut Criterion) {
    let pkt = tcp_syn();
    let mut rs = ruleset();
    let mut out = Outcome::default();
    let est = CtSnapshot {
        ctinfo: Some(CtInfo::Established),
        status: Status::CONFIRMED | Status::SRC_NAT_DONE | Status::DST_NAT_DONE,
        ..CtSnapshot::default()
    };
    c.bench_function("established_3_hooks_100_rules", |b| {
        b.iter(|| black_box(walk(&mut rs, black_box(&pkt), &est, &mut out)))
    });
    let new = CtSnapshot {
        ctinfo: Some(CtInfo::New),
        ..CtSnapshot::default()
    };
    c.bench_function("new_flow_rule_100_and_snat", |b| {
        b.iter(|| black_box(walk(&mut rs, black_box(&pkt), &new, &mut out)))
    });
    // nf_nat: a new flow's SNAT binding (port kept) and rewrite, the entry
    // then dropped before confirm so the table stays as it was; and the
    // rewrite of an established packet.
    let mut ct = Conntrack::default();
    let snat = NatRange {
        addrs: Some((
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 1),
        )),
        ..NatRange::default()
    };
    let mut seed = 0u32;
    c.bench_function("nat_new_flow_snat", |b| {
        b.iter(|| {
            let mut p = pkt.clone();
            let h = ct
                .handle_packet(&p, CtHook::LocalOut, Zone(0), Instant(0))
                .ct
                .expect("tracked");
            let bound = nat::setup(&mut ct, &h, Manip::Src, Some(&snat), &mut || {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                seed
            });
            black_box((bound.is_ok(), nat::packet(&ct, &h, Manip::Src, &mut p)));
            ct.release(h);
        })
    });
    let mut p = pkt.clone();
    let h = ct
        .handle_packet(&p, CtHook::LocalOut, Zone(0), Instant(0))
        .ct
        .expect("tracked");
    nat::setup(&mut ct, &h, Manip::Src, Some(&snat), &mut || 0).expect("bound");
    c.bench_function("nat_rewrite_established", |b| {
        b.iter(|| black_box(nat::packet(&ct, &h, Manip::Src, black_box(&mut p))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
