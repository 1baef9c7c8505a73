//! The apps whose traffic conntrack helpers read: SNMP, IRC with DCC SEND,
//! SIP with RTP. Each pair on a direct link (IRC on a router joining three
//! hosts, since a DCC connection goes between two clients), and what each
//! does with malformed input.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use ctsim_engine::host::{App, AppKind, CloseMode, DccSend, Host, HostConfig, Nic, Payload};
use ctsim_engine::router::Router;
use ctsim_engine::{AppOutcome, Builder, Cidr, Duration, Instant, Place, PortSpec, Sim, What};

use common::{app, find, link, world, B};

fn run(sim: &mut Sim, secs: u64) -> Vec<AppOutcome> {
    sim.run_while_busy(Instant::ZERO + Duration::from_secs(secs));
    sim.outcomes()
}

#[track_caller]
fn assert_state(o: &AppOutcome, state: &str) {
    assert_eq!(o.state, state, "{o:?}");
}

#[track_caller]
fn assert_done(o: &AppOutcome) {
    assert_eq!((o.state.as_str(), &o.error), ("done", &None), "{o:?}");
}

/// The UDP or TCP payloads `node` sent to or from `port`, as text, in order.
fn sent(sim: &Sim, node: &str, port: u16) -> Vec<String> {
    let id = sim.node_id(node).unwrap();
    sim.records()
        .iter()
        .filter(|r| matches!(r.what, What::Sent))
        .filter(|r| matches!(r.place, Place::Node { node, .. } if node == id))
        .filter_map(|r| {
            let p: &[u8] = &r.packet;
            let l4 = p.get(usize::from(p[0] & 0x0f) * 4..)?;
            let ports = [
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]]),
            ];
            if !ports.contains(&port) {
                return None;
            }
            let data = match p[9] {
                6 => l4.get(usize::from(l4[12] >> 4) * 4..)?,
                17 => l4.get(8..)?,
                _ => return None,
            };
            (!data.is_empty()).then(|| String::from_utf8_lossy(data).into_owned())
        })
        .collect()
}

fn first_sent<'a>(sim: &'a Sim, node: &str) -> &'a ctsim_engine::Record {
    let id = sim.node_id(node).unwrap();
    sim.records()
        .iter()
        .find(|r| {
            matches!(r.what, What::Sent)
                && matches!(r.place, Place::Node { node, .. } if node == id)
        })
        .unwrap()
}

fn detail(sim: &Sim, node: &str, app: &str) -> Option<String> {
    let id = sim.node_id(node).unwrap();
    sim.node(id)
        .as_any()
        .downcast_ref::<Host>()
        .unwrap()
        .app_detail(app)
}

// ---------------------------------------------------------------------------
// SNMP

fn manager(to: Ipv4Addr, port: u16, community: &str) -> App {
    app(
        "manager",
        10,
        AppKind::SnmpManager {
            to: SocketAddrV4::new(to, port),
            community: community.into(),
            timeout: Duration::from_secs(3),
        },
    )
}

fn agent(name: &str) -> App {
    app(
        "agent",
        0,
        AppKind::SnmpAgent {
            port: 161,
            community: "public".into(),
            sys_name: name.into(),
        },
    )
}

#[test]
fn snmp_get_is_answered_with_the_agents_name() {
    let mut sim = world(
        1,
        link(2),
        vec![manager(B, 161, "public")],
        vec![agent("b")],
    );
    let out = run(&mut sim, 10);
    let m = find(&out, "manager");
    assert_done(m);
    assert_eq!((m.requests, m.replies), (1, 1));
    let a = find(&out, "agent");
    assert_eq!(
        (a.state.as_str(), a.requests, a.replies),
        ("listening", 1, 1)
    );
    assert_eq!(
        detail(&sim, "a", "manager").as_deref(),
        Some("responders: 192.0.2.2 (b)")
    );
    // The request as snmpget sends it: SNMPv2c, community public, sysName.0.
    let req = first_sent(&sim, "a");
    let udp = &req.packet[20 + 8..];
    assert_eq!(
        (udp[0], &udp[2..13], udp[13]),
        (0x30, &b"\x02\x01\x01\x04\x06public"[..], 0xa0)
    );
    assert!(udp.ends_with(b"\x06\x08\x2b\x06\x01\x02\x01\x01\x05\x00\x05\x00"));
}

#[test]
fn snmp_get_to_the_subnet_broadcast_is_answered_from_the_agents_address() {
    let bcast = Ipv4Addr::new(192, 0, 2, 255);
    let mut sim = world(
        2,
        link(2),
        vec![manager(bcast, 161, "public")],
        vec![agent("b")],
    );
    let out = run(&mut sim, 10);
    assert_done(find(&out, "manager"));
    assert_eq!(find(&out, "manager").replies, 1);
    assert_eq!(
        detail(&sim, "a", "manager").as_deref(),
        Some("responders: 192.0.2.2 (b)")
    );
    // The answer comes from B's own address, not the broadcast address.
    let answer = first_sent(&sim, "b");
    assert_eq!(&answer.packet[12..16], &B.octets());
}

#[test]
fn snmp_with_the_wrong_community_gets_no_answer() {
    let mut sim = world(
        3,
        link(2),
        vec![manager(B, 161, "private")],
        vec![agent("b")],
    );
    let out = run(&mut sim, 10);
    let m = find(&out, "manager");
    assert_state(m, "timed-out");
    assert_eq!(
        m.error.as_deref(),
        Some("no response from 192.0.2.2:161 within 3s")
    );
    assert_eq!(find(&out, "agent").requests, 0);
}

#[test]
fn snmp_garbage_is_dropped_and_an_echo_is_no_answer() {
    // The agent gets random bytes; the manager asks an echo server, which
    // sends its GetRequest back (a request, not a response).
    let junk = app(
        "junk",
        5,
        AppKind::UdpSender {
            to: SocketAddrV4::new(B, 161),
            count: 20,
            size: 100,
            interval: Duration::from_millis(10),
        },
    );
    let echo = app("echo", 0, AppKind::UdpEcho { port: 162 });
    let mut sim = world(
        4,
        link(2),
        vec![manager(B, 162, "public"), junk],
        vec![agent("b"), echo],
    );
    let out = run(&mut sim, 10);
    let a = find(&out, "agent");
    assert_eq!(
        (a.state.as_str(), a.requests, a.bytes_received),
        ("listening", 0, 2000)
    );
    let m = find(&out, "manager");
    assert_state(m, "timed-out");
    assert_eq!(m.replies, 0);
}

// ---------------------------------------------------------------------------
// IRC

const HOST_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const HOST_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const HOST_C: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

/// Hosts a, b and c on three interfaces of router r, each on its own link.
fn star(seed: u64, a: Vec<App>, b: Vec<App>, c: Vec<App>) -> Sim {
    let mut builder = Builder::new(seed);
    let mut ids = Vec::new();
    let mut router_addrs = Vec::new();
    for (name, addr, apps) in [("a", HOST_A, a), ("b", HOST_B, b), ("c", HOST_C, c)] {
        let o = addr.octets();
        let gw = Ipv4Addr::new(o[0], o[1], o[2], 1);
        let cidr = Cidr::new(addr, 24);
        let host = Host::new(HostConfig {
            nics: vec![Nic {
                name: "eth0".into(),
                addr: cidr,
            }],
            gateway: Some(gw),
            apps,
        });
        let ports = vec![PortSpec {
            name: "eth0".into(),
            addr: Some(cidr),
        }];
        ids.push(builder.add_node(name, ports, Box::new(host)));
        router_addrs.push(Cidr::new(gw, 24));
    }
    let ports = router_addrs
        .iter()
        .enumerate()
        .map(|(i, c)| PortSpec {
            name: format!("if{i}"),
            addr: Some(*c),
        })
        .collect();
    let router = Router::new(router_addrs.iter().map(|c| Some(*c)).collect(), &[]);
    let r = builder.add_node("r", ports, Box::new(router));
    for (i, id) in ids.into_iter().enumerate() {
        builder
            .add_link(&format!("l{i}"), (id, 0), (r, i as u16), link(2))
            .unwrap();
    }
    builder.build()
}

fn irc_server() -> App {
    app("server", 0, AppKind::IrcServer { port: 6667 })
}

fn irc_client(
    name: &str,
    at_ms: u64,
    nick: &str,
    dcc_send: Option<DccSend>,
    accept_dcc: bool,
) -> App {
    app(
        name,
        at_ms,
        AppKind::IrcClient {
            to: SocketAddrV4::new(HOST_B, 6667),
            nick: nick.into(),
            dcc_send,
            accept_dcc,
            timeout: Duration::from_secs(30),
        },
    )
}

fn offer(to: &str, size: u64) -> Option<DccSend> {
    Some(DccSend {
        to: to.into(),
        file: "report.pdf".into(),
        size,
    })
}

#[test]
fn irc_dcc_send_moves_the_file_between_clients() {
    let alice = irc_client("alice", 200, "alice", offer("bob", 100_000), false);
    let bob = irc_client("bob", 0, "bob", None, true);
    let mut sim = star(1, vec![alice], vec![irc_server()], vec![bob]);
    let out = run(&mut sim, 60);
    let (alice, bob) = (find(&out, "alice"), find(&out, "bob"));
    assert_done(alice);
    assert_done(bob);
    assert_eq!(alice.bytes_sent, 100_000);
    assert_eq!(bob.bytes_received, 100_000);
    let server = find(&out, "server");
    assert_state(server, "listening");
    // What alice said to the server: registration, then the offer with her
    // address as a decimal integer (192.0.2.2 = 3221225986).
    let text = sent(&sim, "a", 6667).concat();
    assert!(
        text.starts_with("NICK alice\r\nUSER alice 0 * :alice\r\n"),
        "{text}"
    );
    let offer = text
        .lines()
        .find(|l| l.starts_with("PRIVMSG bob :\x01DCC SEND report.pdf 3221225986 "))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(offer.ends_with(" 100000\x01"), "{offer:?}");
    assert!(text.ends_with("QUIT :Leaving\r\n"));
    // The server relayed it to bob with alice's prefix.
    let relayed = sent(&sim, "b", 6667).concat();
    assert!(
        relayed.contains(":alice!alice@192.0.2.2 PRIVMSG bob :\x01DCC SEND report.pdf"),
        "{relayed}"
    );
    assert!(relayed
        .contains(":ctsim 001 bob :Welcome to the Internet Relay Network bob!bob@203.0.113.2"));
}

#[test]
fn irc_offers_to_nobody_and_taken_nicks_fail_with_the_servers_words() {
    let alice = irc_client("alice", 200, "alice", offer("carol", 10), false);
    let bob = irc_client("bob", 0, "bob", None, false);
    let bob2 = irc_client("bob2", 100, "Bob", None, true);
    let mut sim = star(2, vec![alice], vec![irc_server()], vec![bob, bob2]);
    let out = run(&mut sim, 60);
    let alice = find(&out, "alice");
    assert_state(alice, "failed");
    assert_eq!(
        alice.error.as_deref(),
        Some("DCC offer refused: :ctsim 401 alice carol :No such nick/channel")
    );
    // A client without a transfer stays registered.
    assert_state(find(&out, "bob"), "established");
    let bob2 = find(&out, "bob2");
    assert_state(bob2, "failed");
    assert!(bob2
        .error
        .as_deref()
        .unwrap()
        .contains("433 * Bob :Nickname is already in use"));
}

#[test]
fn irc_receiver_reports_a_malformed_offer_and_the_server_survives_garbage() {
    let bob = irc_client("bob", 0, "bob", None, true);
    let evil = app(
        "evil",
        100,
        AppKind::TcpClient {
            to: SocketAddrV4::new(HOST_B, 6667),
            send: Payload::Text(
                "NICK evil\r\nUSER evil 0 * :e\r\nPRIVMSG bob :\x01DCC SEND x 3221225986\x01\r\n"
                    .into(),
            ),
            expect: None,
            close: CloseMode::None,
            timeout: Duration::from_secs(10),
        },
    );
    let noise = app(
        "noise",
        50,
        AppKind::TcpClient {
            to: SocketAddrV4::new(HOST_B, 6667),
            send: Payload::Bytes(20_000),
            expect: None,
            close: CloseMode::Close,
            timeout: Duration::from_secs(10),
        },
    );
    let mut sim = star(3, vec![evil, noise], vec![irc_server()], vec![bob]);
    let out = run(&mut sim, 60);
    let bob = find(&out, "bob");
    assert_state(bob, "failed");
    assert_eq!(
        bob.error.as_deref(),
        Some("malformed DCC SEND offer from evil (\"DCC SEND x 3221225986\"): no port")
    );
    assert_state(find(&out, "server"), "listening");
}

#[test]
fn irc_receiver_times_out_without_an_offer() {
    let bob = app(
        "bob",
        0,
        AppKind::IrcClient {
            to: SocketAddrV4::new(HOST_B, 6667),
            nick: "bob".into(),
            dcc_send: None,
            accept_dcc: true,
            timeout: Duration::from_secs(5),
        },
    );
    let mut sim = star(4, vec![], vec![irc_server()], vec![bob]);
    let out = run(&mut sim, 60);
    let bob = find(&out, "bob");
    assert_state(bob, "timed-out");
    assert_eq!(
        bob.error.as_deref(),
        Some("timed out waiting for a DCC SEND offer")
    );
}

// ---------------------------------------------------------------------------
// SIP

fn caller(duration_ms: u64) -> App {
    app(
        "caller",
        10,
        AppKind::SipCaller {
            to: SocketAddrV4::new(B, 5060),
            rtp_port: 16384,
            duration: Duration::from_millis(duration_ms),
        },
    )
}

fn callee() -> App {
    app(
        "callee",
        0,
        AppKind::SipCallee {
            port: 5060,
            rtp_port: 20000,
        },
    )
}

#[test]
fn sip_call_sets_up_streams_rtp_both_ways_and_hangs_up() {
    let mut sim = world(1, link(5), vec![caller(2000)], vec![callee()]);
    let out = run(&mut sim, 60);
    let (a, b) = (find(&out, "caller"), find(&out, "callee"));
    assert_done(a);
    assert_done(b);
    // 2 s of 20 ms packets, 172 bytes each (12 of header, 160 of PCMU).
    assert_eq!((a.requests, a.bytes_sent), (100, 100 * 172));
    assert!(a.replies >= 95 && b.replies >= 95, "{a:?} {b:?}");
    assert_eq!(b.bytes_received, b.replies * 172);
    let caller_sip = sent(&sim, "a", 5060);
    let methods: Vec<&str> = caller_sip
        .iter()
        .map(|m| m.split(' ').next().unwrap())
        .collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"]);
    let invite = &caller_sip[0];
    for line in [
        "INVITE sip:192.0.2.2 SIP/2.0\r\n",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK",
        "From: <sip:caller@192.0.2.1>;tag=",
        "To: <sip:192.0.2.2>\r\n",
        "CSeq: 1 INVITE\r\n",
        "Contact: <sip:caller@192.0.2.1:5060>\r\n",
        "Content-Type: application/sdp\r\n",
        "\r\n\r\nv=0\r\no=caller ",
        "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 16384 RTP/AVP 0\r\n",
    ] {
        assert!(invite.contains(line), "{line:?} not in {invite}");
    }
    let callee_sip = sent(&sim, "b", 5060);
    let statuses: Vec<&str> = callee_sip.iter().map(|m| &m[..11]).collect();
    assert_eq!(
        statuses,
        ["SIP/2.0 100", "SIP/2.0 180", "SIP/2.0 200", "SIP/2.0 200"]
    );
    assert!(callee_sip[2].contains("c=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0"));
    assert!(callee_sip[2].contains(";tag="));
    // The ACK and BYE carry the callee's tag.
    let tag = callee_sip[2]
        .split("To: <sip:192.0.2.2>;tag=")
        .nth(1)
        .unwrap();
    let tag = tag.split("\r\n").next().unwrap();
    assert!(caller_sip[2].contains(&format!("To: <sip:192.0.2.2>;tag={tag}\r\n")));
    // RTP goes to the ports the SDP bodies announced.
    assert_eq!(sent(&sim, "a", 20000).len(), 100);
    assert!(sent(&sim, "b", 16384).len() >= 95);
}

#[test]
fn sip_calls_are_deterministic_and_seeds_change_the_tokens() {
    let invite = |seed| {
        let mut sim = world(seed, link(5), vec![caller(200)], vec![callee()]);
        let out = run(&mut sim, 60);
        assert_done(find(&out, "caller"));
        (sent(&sim, "a", 5060), sim.records().len())
    };
    assert_eq!(invite(7), invite(7));
    assert_ne!(invite(7).0[0], invite(8).0[0]);
}

#[test]
fn sip_without_a_callee_reports_no_answer() {
    let echo = app("echo", 0, AppKind::UdpEcho { port: 5060 });
    let mut sim = world(2, link(5), vec![caller(1000)], vec![echo]);
    let out = run(&mut sim, 60);
    let a = find(&out, "caller");
    assert_state(a, "timed-out");
    assert_eq!(
        a.error.as_deref(),
        Some("no answer to INVITE from 192.0.2.2:5060")
    );
    // RFC 3261 timer A: 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(sent(&sim, "a", 5060).len(), 7);
}

#[test]
fn sip_callee_ignores_garbage() {
    let junk = app(
        "junk",
        5,
        AppKind::UdpSender {
            to: SocketAddrV4::new(B, 5060),
            count: 20,
            size: 300,
            interval: Duration::from_millis(1),
        },
    );
    let mut sim = world(3, link(5), vec![junk, caller(500)], vec![callee()]);
    let out = run(&mut sim, 60);
    assert_done(find(&out, "caller"));
    assert_done(find(&out, "callee"));
}

#[test]
fn sip_caller_reports_a_taken_rtp_port() {
    // The caller's RTP port is taken by another app: it cannot call.
    let squat = app("squat", 0, AppKind::UdpEcho { port: 16384 });
    let mut sim = world(4, link(5), vec![squat, caller(500)], vec![callee()]);
    let out = run(&mut sim, 60);
    let a = find(&out, "caller");
    assert_state(a, "failed");
    assert_eq!(a.error.as_deref(), Some("udp port 16384 is not available"));
}
