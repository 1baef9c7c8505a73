//! A router's own applications: their packets go through INPUT, OUTPUT
//! and POSTROUTING, so rules and NAT apply to them as to a Linux router's
//! local services.

use std::net::{Ipv4Addr, SocketAddrV4};

use ctsim_engine::host::{App, AppKind, CloseMode, Host, HostConfig, Nic, Payload, ServerMode};
use ctsim_engine::router::conntrack::Conntrack;
use ctsim_engine::router::netfilter::Ruleset;
use ctsim_engine::router::{Router, StaticRoute};
use ctsim_engine::{AppOutcome, Builder, Cidr, Duration, Instant, LinkParams, PortSpec};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const WAN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn nic(name: &str, addr: Ipv4Addr) -> Nic {
    Nic {
        name: name.into(),
        addr: Cidr::new(addr, 24),
    }
}

fn app(name: &str, at_ms: u64, kind: AppKind) -> App {
    App {
        name: name.into(),
        at: Instant::ZERO + Duration::from_millis(at_ms),
        kind,
    }
}

fn echo_client(to: SocketAddrV4) -> App {
    app(
        "client",
        10,
        AppKind::TcpClient {
            to,
            send: Payload::Text("ping\n".into()),
            expect: Some(5),
            close: CloseMode::Close,
            timeout: Duration::from_secs(10),
        },
    )
}

/// A host on the router's LAN running `host_apps`, and the router with
/// `rules` and its own apps `apps`. Returns every app's outcome after 20 s.
fn run(host_apps: Vec<App>, rules: &str, apps: Vec<App>) -> Vec<AppOutcome> {
    let mut b = Builder::new(5);
    let c = Host::new(HostConfig {
        nics: vec![nic("eth0", CLIENT)],
        gateway: Some(LAN),
        apps: host_apps,
    });
    let port = |name: &str, a| PortSpec {
        name: name.into(),
        addr: Some(Cidr::new(a, 24)),
    };
    let c = b.add_node("c", vec![port("eth0", CLIENT)], Box::new(c));
    let nics = vec![nic("lan0", LAN), nic("wan0", WAN)];
    let addrs = nics.iter().map(|n| Some(n.addr)).collect();
    let default = StaticRoute {
        to: Cidr::new(Ipv4Addr::UNSPECIFIED, 0),
        via: Ipv4Addr::new(198, 51, 100, 254),
    };
    let router = Router::new(addrs, &[default])
        .with_conntrack(Some(Conntrack::default()), false)
        .with_ruleset(Some(Ruleset::parse(rules).expect("rules")))
        .with_apps(nics, apps);
    let r = b.add_node(
        "r",
        vec![port("lan0", LAN), port("wan0", WAN)],
        Box::new(router),
    );
    let link = LinkParams {
        delay: Duration::from_millis(1),
        ..LinkParams::default()
    };
    b.add_link("l", (c, 0), (r, 0), link).unwrap();
    let mut sim = b.build();
    sim.run_until(Instant::ZERO + Duration::from_secs(20));
    sim.outcomes()
}

fn find<'a>(all: &'a [AppOutcome], name: &str) -> &'a AppOutcome {
    all.iter().find(|o| o.name == name).expect(name)
}

const ACCEPT: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

fn echo_server(port: u16) -> App {
    app(
        "sshd",
        0,
        AppKind::TcpServer {
            port,
            mode: ServerMode::Echo,
        },
    )
}

/// A service on the router answers through INPUT and OUTPUT.
#[test]
fn a_client_reaches_a_service_on_the_router() {
    let out = run(
        vec![echo_client(SocketAddrV4::new(LAN, 22))],
        ACCEPT,
        vec![echo_server(22)],
    );
    let c = find(&out, "client");
    assert_eq!((c.state.as_str(), c.bytes_received), ("closed", 5), "{c:?}");
    assert_eq!(find(&out, "sshd").requests, 1);
}

/// INPUT's DROP policy keeps the client out: it times out, no RST.
#[test]
fn input_drop_keeps_the_service_unreachable() {
    let drop = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    let out = run(
        vec![echo_client(SocketAddrV4::new(LAN, 22))],
        drop,
        vec![echo_server(22)],
    );
    assert_eq!(find(&out, "client").state, "timed-out");
    assert_eq!(find(&out, "sshd").requests, 0);
}

/// REDIRECT sends a connection for a remote web server to the router's
/// own port 8080; the replies are un-NATed, so the client sees them come
/// from the address it connected to.
#[test]
fn redirect_reaches_a_local_port() {
    let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
        -A PREROUTING -i lan0 -p tcp --dport 80 -j REDIRECT --to-ports 8080\nCOMMIT\n";
    let out = run(
        vec![echo_client(SocketAddrV4::new(
            Ipv4Addr::new(203, 0, 113, 9),
            80,
        ))],
        rules,
        vec![echo_server(8080)],
    );
    let c = find(&out, "client");
    assert_eq!((c.state.as_str(), c.bytes_received), ("closed", 5), "{c:?}");
}

/// Without an app on the port, the router answers as before: RST.
#[test]
fn ports_without_an_app_keep_the_built_in_answers() {
    let out = run(
        vec![echo_client(SocketAddrV4::new(LAN, 23))],
        ACCEPT,
        vec![echo_server(22)],
    );
    assert_eq!(find(&out, "client").state, "refused");
}

/// DNAT in OUTPUT: the router's own connection to a public address is
/// sent to a LAN host instead, after a new route for the new destination.
#[test]
fn dnat_in_output_redirects_the_routers_own_connection() {
    let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
        -A OUTPUT -p tcp --dport 80 -j DNAT --to-destination 192.0.2.2:7\nCOMMIT\n";
    let out = run(
        vec![echo_server(7)],
        rules,
        vec![echo_client(SocketAddrV4::new(
            Ipv4Addr::new(203, 0, 113, 9),
            80,
        ))],
    );
    let c = find(&out, "client");
    assert_eq!((c.state.as_str(), c.bytes_received), ("closed", 5), "{c:?}");
    assert_eq!(find(&out, "sshd").requests, 1);
}

/// The router's own datagram to its LAN's broadcast address leaves through
/// the LAN interface (the local table's broadcast route) and reaches the
/// host there, which answers. (udp-sender counts only answers from the
/// address it sent to, so the unicast answer is not its reply.)
#[test]
fn a_routers_broadcast_reaches_the_subnet() {
    let sender = app(
        "query",
        10,
        AppKind::UdpSender {
            to: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 255), 7),
            count: 1,
            size: 16,
            interval: Duration::from_secs(1),
        },
    );
    let echo = app("echo", 0, AppKind::UdpEcho { port: 7 });
    let out = run(vec![echo], ACCEPT, vec![sender]);
    let e = find(&out, "echo");
    assert_eq!((e.requests, e.replies), (1, 1), "{e:?}");
}
