//! smoltcp hosts and their apps, in worlds of two hosts on one link.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use ctsim_engine::host::{App, AppKind, CloseMode, Host, HostConfig, Nic, Payload, ServerMode};
use ctsim_engine::raw::{RawHost, RawSend};
use ctsim_engine::{
    AppOutcome, Builder, Cidr, DropReason, Duration, Instant, LinkParams, Place, PortSpec, Sim,
    What,
};

use common::{app, find, host, link, world, A, B};

fn server(port: u16, mode: ServerMode) -> App {
    app("server", 0, AppKind::TcpServer { port, mode })
}

fn client(port: u16, send: Payload, expect: Option<u64>, close: CloseMode) -> App {
    app(
        "client",
        10,
        AppKind::TcpClient {
            to: SocketAddrV4::new(B, port),
            send,
            expect,
            close,
            timeout: Duration::from_secs(900),
        },
    )
}

fn run(sim: &mut Sim, secs: u64) -> Vec<AppOutcome> {
    sim.run_until(Instant::ZERO + Duration::from_secs(secs));
    sim.outcomes()
}

#[test]
fn tcp_download_of_100k_completes_and_closes() {
    let mut sim = world(
        1,
        link(5),
        vec![client(
            80,
            Payload::Bytes(0),
            Some(100_000),
            CloseMode::Close,
        )],
        vec![server(80, ServerMode::Send(100_000))],
    );
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(
        (c.kind, c.state.as_str()),
        ("tcp-client", "closed"),
        "{c:?}"
    );
    assert_eq!(c.bytes_received, 100_000);
    assert_eq!(c.error, None);
    let s = find(&out, "server");
    assert_eq!(
        (s.state.as_str(), s.bytes_sent, s.requests),
        ("listening", 100_000, 1)
    );
}

#[test]
fn tcp_upload_of_100k_reaches_a_discard_server() {
    let mut sim = world(
        2,
        link(1),
        vec![client(9, Payload::Bytes(100_000), None, CloseMode::Close)],
        vec![server(9, ServerMode::Discard)],
    );
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(
        (c.state.as_str(), c.bytes_sent),
        ("closed", 100_000),
        "{c:?}"
    );
    assert_eq!(find(&out, "server").bytes_received, 100_000);
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let mut sim = world(
        3,
        link(1),
        vec![client(
            81,
            Payload::Text("hi".into()),
            None,
            CloseMode::Close,
        )],
        vec![server(80, ServerMode::Echo)],
    );
    let out = run(&mut sim, 5);
    let c = find(&out, "client");
    assert_eq!(c.state, "refused", "{c:?}");
    assert_eq!(c.bytes_sent, 0);
}

#[test]
fn echo_round_trips_text_and_pattern() {
    let mut sim = world(
        4,
        link(2),
        vec![
            client(
                7,
                Payload::Text("hello, world".into()),
                Some(12),
                CloseMode::Close,
            ),
            App {
                name: "bulk".into(),
                at: Instant::ZERO + Duration::from_secs(1),
                ..client(7, Payload::Bytes(20_000), Some(20_000), CloseMode::Close)
            },
        ],
        vec![server(7, ServerMode::Echo)],
    );
    // The server serves one connection at a time: the second client comes later.
    let out = run(&mut sim, 30);
    let c = find(&out, "client");
    assert_eq!(
        (c.state.as_str(), c.bytes_sent, c.bytes_received),
        ("closed", 12, 12),
        "{c:?}"
    );
    let bulk = find(&out, "bulk");
    assert_eq!(bulk.bytes_received, 20_000, "{bulk:?}");
    assert_eq!(bulk.error, None);
    let s = find(&out, "server");
    assert_eq!((s.bytes_received, s.bytes_sent), (20_012, 20_012), "{s:?}");
    assert_eq!(s.requests, 2);
}

#[test]
fn abort_sends_rst_and_leaves_the_server_listening() {
    let mut sim = world(
        5,
        link(1),
        vec![client(
            7,
            Payload::Bytes(1000),
            Some(1000),
            CloseMode::Abort,
        )],
        vec![server(7, ServerMode::Echo)],
    );
    let out = run(&mut sim, 10);
    assert_eq!(find(&out, "client").state, "aborted");
    let rst_from_a = sim.records().iter().any(|r| {
        r.what == What::Sent
            && r.packet[9] == 6
            && r.packet[12..16] == A.octets()
            && r.packet[33] & 0x04 != 0
    });
    assert!(rst_from_a);
    assert_eq!(find(&out, "server").state, "listening");
}

#[test]
fn udp_sender_counts_echoed_datagrams() {
    let sender = app(
        "sender",
        0,
        AppKind::UdpSender {
            to: SocketAddrV4::new(B, 7),
            count: 10,
            size: 100,
            interval: Duration::from_millis(10),
        },
    );
    let echo = app("echo", 0, AppKind::UdpEcho { port: 7 });
    let mut sim = world(6, link(3), vec![sender], vec![echo]);
    let out = run(&mut sim, 5);
    let s = find(&out, "sender");
    assert_eq!(
        (s.state.as_str(), s.requests, s.replies),
        ("done", 10, 10),
        "{s:?}"
    );
    assert_eq!(
        (s.bytes_sent, s.bytes_received, s.error.clone()),
        (1000, 1000, None)
    );
    let e = find(&out, "echo");
    assert_eq!((e.requests, e.replies), (10, 10));
}

#[test]
fn udp_to_a_closed_port_gets_port_unreachable() {
    let sender = app(
        "sender",
        0,
        AppKind::UdpSender {
            to: SocketAddrV4::new(B, 9999),
            count: 2,
            size: 10,
            interval: Duration::from_millis(10),
        },
    );
    let mut sim = world(6, link(3), vec![sender], vec![]);
    let out = run(&mut sim, 5);
    let s = find(&out, "sender");
    assert_eq!(s.replies, 0);
    assert_eq!(
        s.error.as_deref(),
        Some("port-unreachable from 192.0.2.2 (2 times)")
    );
}

#[test]
fn ping_gets_its_replies() {
    let ping = app(
        "ping",
        0,
        AppKind::Ping {
            to: B,
            count: 3,
            interval: Duration::from_secs(1),
            size: 56,
            ttl: 64,
        },
    );
    let mut sim = world(7, link(10), vec![ping], vec![]);
    let out = run(&mut sim, 5);
    let p = find(&out, "ping");
    assert_eq!(
        (p.kind, p.state.as_str(), p.requests, p.replies),
        ("ping", "done", 3, 3),
        "{p:?}"
    );
    assert_eq!(p.error, None);
}

#[test]
fn lossy_reordering_link_still_delivers_every_byte_intact() {
    let params = LinkParams {
        delay: Duration::from_millis(2),
        loss: 0.1,
        reorder: 0.2,
        reorder_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let up = App {
        name: "up".into(),
        ..client(9, Payload::Bytes(100_000), None, CloseMode::Close)
    };
    let mut sim = world(
        8,
        params,
        vec![
            client(80, Payload::Bytes(0), Some(100_000), CloseMode::Close),
            up,
        ],
        vec![
            server(80, ServerMode::Send(100_000)),
            App {
                name: "sink".into(),
                ..server(9, ServerMode::Discard)
            },
        ],
    );
    let out = run(&mut sim, 900);
    let c = find(&out, "client");
    assert_eq!(
        (c.state.as_str(), c.bytes_received, c.error.clone()),
        ("closed", 100_000, None),
        "{c:?}"
    );
    let up = find(&out, "up");
    assert_eq!(up.state, "closed", "{up:?}");
    assert_eq!(find(&out, "sink").bytes_received, 100_000);
    assert!(sim.link_stats(ctsim_engine::LinkId(0))[0].lost > 0);
}

fn first_syn(sim: &Sim) -> Vec<u8> {
    sim.records()
        .iter()
        .find(|r| r.what == What::Sent && r.packet[9] == 6 && r.packet[33] & 0x02 != 0)
        .map(|r| r.packet.to_vec())
        .expect("a SYN")
}

fn syn_world(seed: u64) -> Sim {
    world(
        seed,
        link(1),
        vec![client(
            80,
            Payload::Text("x".into()),
            None,
            CloseMode::Close,
        )],
        vec![server(80, ServerMode::Discard)],
    )
}

#[test]
fn the_seed_picks_the_ephemeral_port_and_isn() {
    let syn = |seed| {
        let mut sim = syn_world(seed);
        run(&mut sim, 2);
        first_syn(&sim)
    };
    let (one, two) = (syn(1), syn(2));
    let port = |p: &[u8]| u16::from_be_bytes([p[20], p[21]]);
    let isn = |p: &[u8]| u32::from_be_bytes([p[24], p[25], p[26], p[27]]);
    assert!((32768..=60999).contains(&port(&one)));
    assert_ne!(port(&one), port(&two));
    assert_ne!(isn(&one), isn(&two));
    assert_eq!(syn(1), one);
}

#[test]
fn same_seed_gives_identical_records() {
    let records = |seed| {
        let mut sim = world(
            seed,
            LinkParams {
                loss: 0.05,
                ..link(3)
            },
            vec![client(
                80,
                Payload::Bytes(30_000),
                Some(30_000),
                CloseMode::Close,
            )],
            vec![server(80, ServerMode::Echo)],
        );
        let out = run(&mut sim, 120);
        let recs: Vec<_> = sim
            .records()
            .iter()
            .map(|r| (r.time, r.place, r.what, r.packet.to_vec()))
            .collect();
        (recs, out)
    };
    let (r1, o1) = records(11);
    let (r2, o2) = records(11);
    assert!(r1.len() > 40);
    assert_eq!(r1, r2);
    assert_eq!(o1, o2);
    assert_eq!(find(&o1, "client").state, "closed");
}

#[test]
fn client_gives_up_after_its_timeout() {
    // The peer is a raw host: it takes the SYNs in and never answers.
    let mut b = Builder::new(9);
    let (ports, node) = host(
        A,
        vec![app(
            "client",
            0,
            AppKind::TcpClient {
                to: SocketAddrV4::new(B, 80),
                send: Payload::Bytes(10),
                expect: None,
                close: CloseMode::Close,
                timeout: Duration::from_secs(5),
            },
        )],
    );
    let a = b.add_node("a", ports, node);
    let raw = b.add_node(
        "b",
        vec![PortSpec {
            name: "eth0".into(),
            addr: Some(Cidr::new(B, 24)),
        }],
        Box::new(RawHost::new(vec![])),
    );
    b.add_link("l", (a, 0), (raw, 0), link(1)).unwrap();
    let mut sim = b.build();
    let out = run(&mut sim, 20);
    assert_eq!(find(&out, "client").state, "timed-out");
    // SYN at 0, retransmitted after 1 s and 3 s (RTO doubling); none after the timeout.
    let syns: Vec<Instant> = sim
        .records()
        .iter()
        .filter(|r| r.what == What::Sent && matches!(r.place, Place::Node { port: 0, .. }))
        .map(|r| r.time)
        .collect();
    assert!(
        syns.len() >= 2
            && syns
                .iter()
                .all(|&t| t <= Instant::from_nanos(5_000_000_000))
    );
    // Nothing keeps the host busy afterwards.
    assert!(sim.next_event().is_none(), "{:?}", sim.next_event());
}

#[test]
fn datagrams_for_other_addresses_are_dropped_not_for_us() {
    let mut b = Builder::new(10);
    let (ports, node) = host(B, vec![]);
    let h = b.add_node("b", ports, node);
    let mut pkt = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
    pkt.extend_from_slice(&A.octets());
    pkt.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 99).octets());
    pkt.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    let raw = b.add_node(
        "a",
        vec![PortSpec {
            name: "eth0".into(),
            addr: Some(Cidr::new(A, 24)),
        }],
        Box::new(RawHost::new(vec![RawSend {
            at: Instant::ZERO,
            packet: pkt,
            count: 1,
            interval: Duration::ZERO,
            port: None,
        }])),
    );
    b.add_link("l", (raw, 0), (h, 0), link(1)).unwrap();
    let mut sim = b.build();
    run(&mut sim, 1);
    let last = sim.records().last().unwrap();
    assert_eq!(last.what, What::Dropped(DropReason::NotForUs));
}

/// A TCP segment from B to A, checksummed.
fn segment(dst_port: u16, seq: u32, ack: Option<u32>, syn: bool, rst: bool) -> Vec<u8> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };
    let tcp = TcpRepr {
        src_port: 80,
        dst_port,
        control: match (syn, rst) {
            (true, _) => TcpControl::Syn,
            (_, true) => TcpControl::Rst,
            _ => TcpControl::None,
        },
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 65535,
        window_scale: None,
        max_seg_size: syn.then_some(1460),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: B,
        dst_addr: A,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let mut buf = vec![0u8; 20 + tcp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut buf[20..]),
        &B.into(),
        &A.into(),
        &caps,
    );
    buf
}

/// Client `a` against a raw host `b` that sends `script` (at ms, packet).
fn scripted(script: Vec<(u64, Vec<u8>)>) -> Sim {
    let mut b = Builder::new(12);
    let (ports, node) = host(
        A,
        vec![app(
            "client",
            0,
            AppKind::TcpClient {
                to: SocketAddrV4::new(B, 80),
                send: Payload::Bytes(0),
                expect: Some(1),
                close: CloseMode::Close,
                timeout: Duration::from_secs(30),
            },
        )],
    );
    let a = b.add_node("a", ports, node);
    let sends = script
        .into_iter()
        .map(|(ms, packet)| RawSend {
            at: Instant::ZERO + Duration::from_millis(ms),
            packet,
            count: 1,
            interval: Duration::ZERO,
            port: None,
        })
        .collect();
    let raw = b.add_node(
        "b",
        vec![PortSpec {
            name: "eth0".into(),
            addr: Some(Cidr::new(B, 24)),
        }],
        Box::new(RawHost::new(sends)),
    );
    b.add_link("l", (a, 0), (raw, 0), link(1)).unwrap();
    b.build()
}

#[test]
fn rst_after_the_handshake_is_a_reset() {
    // First learn the client's port and ISN (the raw host's script does not
    // touch the client's random stream), then answer and reset.
    let mut probe = scripted(vec![]);
    run(&mut probe, 1);
    let syn = first_syn(&probe);
    let port = u16::from_be_bytes([syn[20], syn[21]]);
    let isn = u32::from_be_bytes([syn[24], syn[25], syn[26], syn[27]]);
    let mut sim = scripted(vec![
        (
            5,
            segment(port, 1000, Some(isn.wrapping_add(1)), true, false),
        ),
        (20, segment(port, 1001, None, false, true)),
    ]);
    let out = run(&mut sim, 2);
    assert_eq!(find(&out, "client").state, "reset", "{out:?}");
}

#[test]
fn two_nics_pick_the_one_on_the_destination_subnet() {
    let c0 = Cidr::new(Ipv4Addr::new(10, 0, 0, 1), 24);
    let c1 = Cidr::new(Ipv4Addr::new(198, 51, 100, 1), 24);
    let peer = Ipv4Addr::new(198, 51, 100, 2);
    let ping = app(
        "ping",
        0,
        AppKind::Ping {
            to: peer,
            count: 2,
            interval: Duration::from_millis(100),
            size: 8,
            ttl: 0,
        },
    );
    let config = HostConfig {
        nics: vec![
            Nic {
                name: "eth0".into(),
                addr: c0,
            },
            Nic {
                name: "eth1".into(),
                addr: c1,
            },
        ],
        gateway: Some(Ipv4Addr::new(10, 0, 0, 254)),
        apps: vec![ping],
    };
    let mut b = Builder::new(13);
    let specs = vec![
        PortSpec {
            name: "eth0".into(),
            addr: Some(c0),
        },
        PortSpec {
            name: "eth1".into(),
            addr: Some(c1),
        },
    ];
    let a = b.add_node("a", specs, Box::new(Host::new(config)));
    let (ports, node) = host(peer, vec![]);
    let p = b.add_node("p", ports, node);
    b.add_link("l", (a, 1), (p, 0), link(1)).unwrap();
    let mut sim = b.build();
    let out = run(&mut sim, 2);
    let ping = find(&out, "ping");
    assert_eq!((ping.requests, ping.replies), (2, 2), "{ping:?}");
}

/// An ICMP error from `from` to A quoting the start of `quoted`.
fn icmp_error(from: Ipv4Addr, ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut icmp = vec![ty, code, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted[..28]);
    let sum = |b: &[u8]| {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    let c = sum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&from.octets());
    ip.extend_from_slice(&A.octets());
    let c = sum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}

#[test]
fn icmp_port_unreachable_fails_the_connect_as_refused() {
    let mut probe = scripted(vec![]);
    run(&mut probe, 1);
    let syn = first_syn(&probe);
    let mut sim = scripted(vec![(5, icmp_error(B, 3, 3, &syn))]);
    let out = run(&mut sim, 10);
    let c = find(&out, "client");
    assert_eq!(c.state, "refused", "{c:?}");
    assert_eq!(c.error.as_deref(), Some("port-unreachable from 192.0.2.2"));
    // No SYN retransmission after the error.
    let sent_after = sim
        .records()
        .iter()
        .filter(|r| r.what == What::Sent && r.time > Instant::from_nanos(6_000_000))
        .count();
    assert_eq!(sent_after, 0);
}

#[test]
fn ping_reports_time_exceeded_with_the_router_address() {
    let router = Ipv4Addr::new(192, 0, 2, 254);
    let build = |script: Vec<(u64, Vec<u8>)>| {
        let mut b = Builder::new(14);
        let ping = app(
            "ping",
            0,
            AppKind::Ping {
                to: B,
                count: 1,
                interval: Duration::from_secs(1),
                size: 56,
                ttl: 1,
            },
        );
        let (ports, node) = host(A, vec![ping]);
        let a = b.add_node("a", ports, node);
        let sends = script
            .into_iter()
            .map(|(ms, packet)| RawSend {
                at: Instant::ZERO + Duration::from_millis(ms),
                packet,
                count: 1,
                interval: Duration::ZERO,
                port: None,
            })
            .collect();
        let spec = PortSpec {
            name: "eth0".into(),
            addr: Some(Cidr::new(router, 24)),
        };
        let raw = b.add_node("r", vec![spec], Box::new(RawHost::new(sends)));
        b.add_link("l", (a, 0), (raw, 0), link(1)).unwrap();
        b.build()
    };
    let mut probe = build(vec![]);
    run(&mut probe, 1);
    let request = probe
        .records()
        .iter()
        .find(|r| r.what == What::Sent)
        .unwrap()
        .packet
        .to_vec();
    assert_eq!(request[8], 1, "ttl");
    let mut sim = build(vec![(5, icmp_error(router, 11, 0, &request))]);
    let out = run(&mut sim, 2);
    let p = find(&out, "ping");
    assert_eq!(
        (p.state.as_str(), p.requests, p.replies),
        ("done", 1, 0),
        "{p:?}"
    );
    assert_eq!(p.error.as_deref(), Some("time-exceeded from 192.0.2.254"));
}

/// Once every reply is in, ping's wait for stragglers is called off: it
/// does not keep the run going (nothing happens at last-send + 10 s).
/// With the reply lost, the wait is real and the run goes on to it.
#[test]
fn ping_deadline_is_called_off_when_every_reply_is_in() {
    let ping = |count| {
        app(
            "ping",
            0,
            AppKind::Ping {
                to: B,
                count,
                interval: Duration::from_secs(1),
                size: 56,
                ttl: 64,
            },
        )
    };
    let mut sim = world(7, link(10), vec![ping(1)], vec![]);
    sim.run_while_busy(Instant::ZERO + Duration::from_secs(3600));
    assert!(sim.idle());
    assert_eq!(sim.now(), Instant::ZERO + Duration::from_millis(20));
    assert_eq!(find(&sim.outcomes(), "ping").state, "done");
    let lossy = LinkParams {
        loss: 1.0,
        ..link(10)
    };
    let mut sim = world(7, lossy, vec![ping(1)], vec![]);
    sim.run_while_busy(Instant::ZERO + Duration::from_secs(3600));
    assert_eq!(sim.now(), Instant::ZERO + Duration::from_secs(10));
    let p = find(&sim.outcomes(), "ping").clone();
    assert_eq!((p.state.as_str(), p.replies), ("done", 0), "{p:?}");
}

/// A server accepts a second connection while serving the first, as a
/// listening socket with a backlog does.
#[test]
fn a_server_serves_overlapping_connections() {
    let c = |name: &str, at| App {
        name: name.into(),
        at: Instant::ZERO + Duration::from_millis(at),
        ..client(7, Payload::Text("hi\n".into()), Some(3), CloseMode::Close)
    };
    let mut sim = world(
        3,
        link(10),
        vec![c("one", 10), c("two", 15)],
        vec![server(7, ServerMode::Echo)],
    );
    let out = run(&mut sim, 5);
    for name in ["one", "two"] {
        let o = find(&out, name);
        assert_eq!((o.state.as_str(), o.bytes_received), ("closed", 3), "{o:?}");
    }
    assert_eq!(find(&out, "server").requests, 2);
}
