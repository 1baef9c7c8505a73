//! Forwarded packets per second of wall time through one router, with raw
//! hosts, for 1, 100 and 10,000 flows (the dumbbell in `dumbbell.rs`).
//! Target on the 2-core reference machine: at least 3 million per second,
//! flat across flow counts.
//!
//! The offered load is the same for every flow count (100,000 datagrams per
//! simulated second in all, each flow sending every `flows` × 10 µs), so what
//! changes between the cases is only the size of the topology: 2N hosts, 2N
//! links and 2N router interfaces. Flat figures mean a packet's cost does not
//! grow with the topology.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ctsim_engine::host::{App, AppKind, CloseMode, Host, HostConfig, Nic, Payload, ServerMode};
use ctsim_engine::router::conntrack::Conntrack;
use ctsim_engine::router::netfilter::Ruleset;
use ctsim_engine::router::Router;
use ctsim_engine::{dumbbell, Builder, Cidr, Duration, Instant, LinkParams, NodeId, PortSpec, Sim};

/// Packets per measured run, split evenly over the flows.
const PACKETS: u64 = 200_000;

fn forwarding(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/forward");
    group.sample_size(10);
    for flows in [1u32, 100, 10_000] {
        let per_flow = PACKETS / u64::from(flows);
        group.throughput(Throughput::Elements(per_flow * u64::from(flows)));
        group.bench_function(format!("raw-udp/{flows}-flows"), |bench| {
            bench.iter_batched(
                || {
                    dumbbell::build(
                        flows,
                        per_flow,
                        Duration::from_micros(10 * u64::from(flows)),
                        false,
                        false,
                        |r| r,
                    )
                    .build()
                },
                |mut sim| {
                    sim.run_until(Instant::MAX);
                    let router = sim.node(NodeId(0)).as_any().downcast_ref::<Router>();
                    assert_eq!(
                        router.map(|r| r.stats.forwarded),
                        Some(per_flow * u64::from(flows))
                    );
                    sim
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// The firewall of issue 4's benchmark: a 100-rule FORWARD chain whose
/// first rule accepts ESTABLISHED and whose 100th accepts the benchmark's
/// UDP, with (`snat`) SNAT of every flow in POSTROUTING.
fn firewall(snat: bool) -> Ruleset {
    let mut text =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    text.push_str("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    for i in 0..98 {
        text.push_str(&format!(
            "-A FORWARD -p tcp -m tcp --dport {} -j ACCEPT\n",
            8000 + i
        ));
    }
    text.push_str("-A FORWARD -p udp -m udp --dport 9 -j ACCEPT\nCOMMIT\n");
    if snat {
        text.push_str("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
        text.push_str("-A POSTROUTING -p udp -j SNAT --to-source 198.19.255.254\nCOMMIT\n");
    }
    Ruleset::parse(&text).expect("bench ruleset")
}

/// Forwarding through conntrack and that firewall, issue 4's two cases:
/// `established`: 100 answered UDP flows, both ways, every datagram after
/// the first of each direction ESTABLISHED and accepted by rule 1 (no nat
/// table); `new-flows`: 10,000 flows of one datagram each, every one NEW,
/// down the chain to rule 100, then an SNAT binding. Each again with
/// conntrack alone: the difference is what the hook chain costs.
fn netfilter(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/netfilter");
    group.sample_size(10);
    // (name, flows, datagrams per flow and direction, replies, ruleset)
    for (name, flows, per_flow, replies, rules) in [
        ("established", 100u32, 1_000u64, true, true),
        ("established-conntrack-only", 100, 1_000, true, false),
        ("new-flows", 10_000, 1, false, true),
        ("new-flows-conntrack-only", 10_000, 1, false, false),
    ] {
        let total = per_flow * u64::from(flows) * (1 + u64::from(replies));
        group.throughput(Throughput::Elements(total));
        group.bench_function(format!("udp/{name}"), |bench| {
            bench.iter_batched(
                || {
                    let interval = Duration::from_micros(10 * u64::from(flows));
                    dumbbell::build(flows, per_flow, interval, false, replies, |r| {
                        r.with_conntrack(Some(Conntrack::default()), false)
                            .with_ruleset(rules.then(|| firewall(!replies)))
                    })
                    .build()
                },
                |mut sim| {
                    sim.run_until(Instant::MAX);
                    let router = sim.node(NodeId(0)).as_any().downcast_ref::<Router>();
                    assert_eq!(router.map(|r| r.stats.forwarded), Some(total));
                    sim
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// `flows` TCP downloads of `bytes` each, from a smoltcp server through one
/// router to a smoltcp client, on 10 Gbit/s, 0.5 ms links.
fn tcp_world(flows: u16, bytes: u64) -> Sim {
    let cidr = |s: &str| {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        Cidr::new(
            a.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            l.parse().unwrap_or(32),
        )
    };
    let host = |b: &mut Builder, name: &str, addr: &str, gw: &str, apps: Vec<App>| {
        let nic = Nic {
            name: "eth0".into(),
            addr: cidr(addr),
        };
        let ports = vec![PortSpec {
            name: "eth0".into(),
            addr: Some(nic.addr),
        }];
        let config = HostConfig {
            nics: vec![nic],
            gateway: gw.parse().ok(),
            apps,
        };
        b.add_node(name, ports, Box::new(Host::new(config)))
    };
    let mut b = Builder::new(1);
    b.trace(false);
    let server_ip = std::net::Ipv4Addr::new(198, 51, 100, 2);
    let clients = (0..flows)
        .map(|i| App {
            name: format!("c{i}"),
            at: Instant::ZERO,
            kind: AppKind::TcpClient {
                to: std::net::SocketAddrV4::new(server_ip, 1000 + i),
                send: Payload::Bytes(0),
                expect: Some(bytes),
                close: CloseMode::Close,
                timeout: Duration::from_secs(3600),
            },
        })
        .collect();
    let servers = (0..flows)
        .map(|i| App {
            name: format!("s{i}"),
            at: Instant::ZERO,
            kind: AppKind::TcpServer {
                port: 1000 + i,
                mode: ServerMode::Send(bytes),
            },
        })
        .collect();
    let c = host(&mut b, "client", "192.0.2.2/24", "192.0.2.1", clients);
    let s = host(&mut b, "server", "198.51.100.2/24", "198.51.100.1", servers);
    let (lan, wan) = (cidr("192.0.2.1/24"), cidr("198.51.100.1/24"));
    let ports = vec![
        PortSpec {
            name: "lan0".into(),
            addr: Some(lan),
        },
        PortSpec {
            name: "wan0".into(),
            addr: Some(wan),
        },
    ];
    let r = b.add_node(
        "r",
        ports,
        Box::new(Router::new(vec![Some(lan), Some(wan)], &[])),
    );
    let params = LinkParams {
        delay: Duration::from_micros(500),
        bandwidth: Some(10_000_000_000),
        ..LinkParams::default()
    };
    // Ports and links are ours, so these cannot fail.
    let _ = b.add_link("lan", (c, 0), (r, 0), params.clone());
    let _ = b.add_link("wan", (s, 0), (r, 1), params);
    b.build()
}

/// TCP segments forwarded per second of wall time with smoltcp at both
/// ends. Target on the 2-core reference machine: at least 300,000.
fn tcp_segments(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/tcp");
    group.sample_size(10);
    for flows in [1u16, 8] {
        let bytes = 8_000_000 / u64::from(flows);
        let run = |mut sim: Sim| {
            sim.run_until(Instant::MAX);
            let forwarded = sim
                .node(NodeId(2))
                .as_any()
                .downcast_ref::<Router>()
                .map(|r| r.stats.forwarded);
            (sim, forwarded.unwrap_or(0))
        };
        // The run is deterministic: count its segments once, then time it.
        let (_, segments) = run(tcp_world(flows, bytes));
        group.throughput(Throughput::Elements(segments));
        group.bench_function(format!("segments/{flows}-flows"), |bench| {
            bench.iter_batched(
                || tcp_world(flows, bytes),
                |sim| {
                    let (sim, n) = run(sim);
                    assert_eq!(n, segments);
                    sim
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, forwarding, netfilter, tcp_segments);
criterion_main!(benches);
