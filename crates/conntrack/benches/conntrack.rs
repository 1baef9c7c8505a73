//! Conntrack's per-packet costs at 1,000 / 100,000 / 1,000,000 entries.
//!
//! - `established/*`: one packet of an existing flow, `handle_packet` at
//!   PRE_ROUTING plus `confirm` (the full conntrack cost of a forwarded
//!   packet). `udp-hot`: one flow over and over (warm caches); `udp-spread`:
//!   packets cycling over 4096 flows spread through the table, so at 10⁶
//!   entries each packet pays cache and TLB misses. Target < 100 ns.
//! - `new-flow/*`: the first packet of a new TCP connection (SYN), created
//!   and confirmed, in batches of 256 (the table grows by at most that much
//!   before the batch expires, outside the measured time). Target < 400 ns.
//! - `expire/*`: `handle_timeout` reaping 1,000 due entries out of a table of
//!   N; the time per reaped entry must not grow with N.
//!
//! The hash has one bucket per entry (as Linux sizes it by default) and
//! events are off (`nf_conntrack_events=0`), as on a router nobody watches.

#[path = "../tests/ct_util/mod.rs"]
mod ct_util;

use std::net::Ipv4Addr;
use std::time::Instant as WallClock;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ct_util::{tcp, udp, ACK, SYN};
use ctsim_conntrack::time::{Duration, Instant};
use ctsim_conntrack::{Conntrack, CtHook, Sysctls, Zone};

const SIZES: [u32; 3] = [1_000, 100_000, 1_000_000];

fn client(i: u32) -> (Ipv4Addr, u16) {
    // 192.0.2.0/24 and 203.0.113.0/24 × 50,000 ports: plenty of tuples.
    let host = i / 50_000;
    let net = if host < 256 {
        [192, 0, 2, host as u8]
    } else {
        [203, 0, 113, (host - 256) as u8]
    };
    (Ipv4Addr::from(net), 10_000 + (i % 50_000) as u16)
}

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// A table holding `n` assured UDP flows with a timeout far in the future.
fn table(n: u32) -> Conntrack {
    let mut s = Sysctls::default();
    s.buckets = (n + 1_000).next_power_of_two();
    s.max = 0;
    s.events = 0;
    s.udp_timeout = Duration::from_secs(2_000_000);
    s.udp_timeout_stream = Duration::from_secs(2_000_000);
    // New SYNs expire after 1 s, so batches can be reaped between samples.
    s.tcp.timeouts.syn_sent = Duration::from_secs(1);
    let mut ct = Conntrack::new(s);
    let t = Instant(0);
    for i in 0..n {
        let (a, p) = client(i);
        for pkt in [udp(a, p, SERVER, 53, b"q"), udp(SERVER, 53, a, p, b"a")] {
            let r = ct.handle_packet(&pkt, CtHook::PreRouting, Zone(0), t);
            let _ = ct.confirm(r.ct.expect("tracked"), t);
        }
    }
    assert_eq!(ct.count(), n);
    ct
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/established");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut ct = table(n);
        let step = (n / 4096).max(1);
        let pkts: Vec<Vec<u8>> = (0..4096u32)
            .map(|k| {
                let (a, p) = client((k * step) % n);
                if k % 2 == 0 {
                    udp(a, p, SERVER, 53, b"q")
                } else {
                    udp(SERVER, 53, a, p, b"a")
                }
            })
            .collect();
        let now = Instant(1_000_000_000);
        let hot = &pkts[0];
        g.bench_with_input(BenchmarkId::new("udp-hot", n), &n, |b, _| {
            b.iter(|| {
                let r = ct.handle_packet(hot, CtHook::PreRouting, Zone(0), now);
                ct.confirm(r.ct.expect("tracked"), now)
            })
        });
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::new("udp-spread", n), &n, |b, _| {
            b.iter(|| {
                let r = ct.handle_packet(&pkts[i & 4095], CtHook::PreRouting, Zone(0), now);
                i = i.wrapping_add(1);
                ct.confirm(r.ct.expect("tracked"), now)
            })
        });
    }
    // A TCP flow in ESTABLISHED (same ACK repeated, in window).
    let mut ct = table(1_000);
    let (a, s) = (Ipv4Addr::new(192, 0, 2, 200), SERVER);
    let t = Instant(0);
    for p in [
        tcp(a, 40000, s, 80, SYN, 1000, 0, b""),
        tcp(s, 80, a, 40000, SYN | ACK, 5000, 1001, b""),
        tcp(a, 40000, s, 80, ACK, 1001, 5001, b""),
    ] {
        let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), t);
        let _ = ct.confirm(r.ct.expect("tracked"), t);
    }
    let ack = tcp(a, 40000, s, 80, ACK, 1001, 5001, b"");
    g.bench_function("tcp-ack/1000", |b| {
        b.iter(|| {
            let r = ct.handle_packet(&ack, CtHook::PreRouting, Zone(0), t);
            ct.confirm(r.ct.expect("tracked"), t)
        })
    });
    g.finish();
}

fn new_flow(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/new-flow");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut ct = table(n);
        // SYNs from a range no prefilled flow uses; they expire (1 s) between
        // batches, outside the measured time.
        let syns: Vec<Vec<u8>> = (0..256u32)
            .map(|k| {
                tcp(
                    Ipv4Addr::new(203, 0, 113, 250 + (k / 50_000) as u8),
                    1024 + k as u16,
                    SERVER,
                    443,
                    SYN,
                    k,
                    0,
                    b"",
                )
            })
            .collect();
        let mut clock = 10u64;
        g.bench_with_input(BenchmarkId::new("tcp-syn", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(syns.len() as u64);
                    let now = Instant(clock * 1_000_000_000);
                    let start = WallClock::now();
                    for p in &syns[..batch as usize] {
                        let r = ct.handle_packet(p, CtHook::PreRouting, Zone(0), now);
                        let _ = ct.confirm(r.ct.expect("tracked"), now);
                    }
                    total += start.elapsed();
                    clock += 2;
                    ct.handle_timeout(Instant(clock * 1_000_000_000));
                    assert_eq!(ct.count(), n);
                    left -= batch;
                }
                total
            })
        });
    }
    g.finish();
}

fn expire(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/expire");
    g.sample_size(10);
    const DUE: u32 = 1_000;
    g.throughput(Throughput::Elements(u64::from(DUE)));
    for n in SIZES {
        let mut ct = table(n);
        let mut clock = 10u64;
        g.bench_with_input(BenchmarkId::new("1000-due", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let now = Instant(clock * 1_000_000_000);
                    for k in 0..DUE {
                        let p = tcp(
                            Ipv4Addr::new(203, 0, 113, 251),
                            1024 + k as u16,
                            SERVER,
                            443,
                            SYN,
                            k,
                            0,
                            b"",
                        );
                        let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), now);
                        let _ = ct.confirm(r.ct.expect("tracked"), now);
                    }
                    clock += 2;
                    let due = Instant(clock * 1_000_000_000);
                    let start = WallClock::now();
                    ct.handle_timeout(due);
                    total += start.elapsed();
                    assert_eq!(ct.count(), n);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, established, new_flow, expire);
criterion_main!(benches);
