//! Loading scenarios: each syntax and validation error points at `file.yaml:LINE:COL` and says
//! what was expected; a full example loads; hostile input never panics.

use ctsim_scenario::diag::{literal_error, Source, Spanned};
use ctsim_scenario::load::{load, load_bytes};
use ctsim_scenario::model::{
    json_schema, AppKind, Bandwidth, CheckKind, Cidr, CloseMode, CountRange, Duration, PacketKind,
    Payload, ServerMode,
};

const FULL: &str = r#"name: tcp-transfer
description: A client sends 100 kB to a server through one router.
seed: 7
until: 10s
hosts:
  client: { addr: 192.0.2.2/24, gateway: 192.0.2.1 }
  server: { addr: 198.51.100.2/24, gateway: 198.51.100.1 }
  multi: { interfaces: { eth0: 192.0.2.3/24, eth1: 203.0.113.3/24 }, gateway: 192.0.2.1 }
  probe: { stack: none, addr: 192.0.2.9/24 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24, lan1: 192.0.2.129/24, lan2: 192.0.2.130/24, ext0: 203.0.113.1/24 }
    routes:
      - { to: 203.0.113.0/24, via: 198.51.100.254 }
      - { to: default, via: 198.51.100.254 }
links:
  - { ends: [client, r1.lan0], delay: 1ms }
  - name: wan
    ends: [server, r1.wan0]
    delay: 5ms
    bandwidth: 1Gbps
    queue: 1000
    loss: 0.01
    duplicate: 0.0
    reorder: 0.05
    reorder-delay: 5ms
    mtu: 1500
  - { ends: [multi.eth0, r1.lan1] }
  - { ends: [probe, r1.lan2] }
apps:
  - { at: 0s, on: server, run: tcp-server, port: 5001, mode: echo }
  - { at: 100ms, on: client, run: tcp-client, to: 198.51.100.2:5001, send: 100000, close: close, name: upload }
  - { at: 0s, on: server, run: udp-echo, port: 7 }
  - { at: 1s, on: client, run: udp-sender, to: 198.51.100.2:7, count: 5, size: 100, interval: 10ms }
  - { at: 1s, on: client, run: ping, to: 198.51.100.2, count: 3, interval: 1s, size: 56, ttl: 64 }
packets:
  - { name: syn, at: 10ms, from: probe, tcp: "192.0.2.9:40000 > 198.51.100.2:22 S seq=1000 win=64240" }
  - { at: 20ms, from: probe, udp: "192.0.2.9:5000 > 198.51.100.2:53 len=32", count: 100, interval: 1ms }
  - { at: 30ms, from: probe, icmp: "192.0.2.9 > 198.51.100.2 port-unreachable quote=syn" }
  - { at: 40ms, from: probe, packet: "ip 192.0.2.9 > 198.51.100.2 proto=47 len=20" }
events:
  - { at: 2s, link: wan, down: true }
  - { at: 4s, link: wan, down: false, loss: 0.0 }
checks:
  - { app: upload, bytes-sent: 100000, state: closed }
  - { on: server, received: "udp dport 7", count: 5 }
  - { link: wan, dropped: 2, reason: loss }
  - { on: r1, seen: "icmp time-exceeded" }
  - { at: 3s, on: r1, seen: "tcp", min: 1, max: 10 }
"#;

const BASE: &str = "name: t
hosts:
  a: { addr: 192.0.2.2/24, gateway: 192.0.2.1 }
  b: { addr: 198.51.100.2/24 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24 }
links:
  - { ends: [a, r1.lan0] }
  - { ends: [b, r1.wan0] }
";

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The rendered report (no color) of a scenario that must fail to load.
fn errors(yaml: &str) -> String {
    match load("file.yaml", yaml) {
        Ok(_) => panic!("expected an error, but this loaded:\n{yaml}"),
        Err(r) => r.render(false),
    }
}

/// Asserts the report points at `file.yaml:LINE:COL` and contains every text.
#[track_caller]
fn expect_err(yaml: &str, at: &str, texts: &[&str]) {
    let out = errors(yaml);
    assert!(
        out.contains(&format!("file.yaml:{at}]")),
        "expected file.yaml:{at} in:\n{out}"
    );
    for t in texts {
        assert!(out.contains(t), "expected {t:?} in:\n{out}");
    }
}

#[test]
fn full_example_loads() {
    let s = match load("file.yaml", FULL) {
        Ok(s) => s,
        Err(r) => panic!("{}", r.render(false)),
    };
    assert_eq!(s.name.value, "tcp-transfer");
    assert_eq!(s.seed, 7);
    assert_eq!(s.until.as_ref().unwrap().value, Duration::from_secs(10));
    assert_eq!(s.hosts.len(), 4);
    let multi = s.host("multi").unwrap();
    assert_eq!(multi.interfaces[1].name.value, "eth1");
    assert!(s.host("probe").unwrap().is_raw());
    let r1 = s.router("r1").unwrap();
    assert_eq!(r1.routes[1].to.value, Cidr::DEFAULT_ROUTE);
    assert_eq!(s.links[0].name.value, "client-r1");
    assert_eq!(s.links[0].ends[0].iface, "eth0");
    assert_eq!(s.links[0].params.delay, Duration::from_millis(1));
    assert_eq!(s.links[0].params.mtu, 1500);
    assert_eq!(s.links[0].params.queue, 1000);
    let wan = s.link("wan").unwrap();
    assert_eq!(wan.params.bandwidth, Bandwidth::BitsPerSec(1_000_000_000));
    assert_eq!(wan.params.loss, 0.01);
    assert_eq!(wan.params.reorder_delay, Duration::from_millis(5));
    assert_eq!(s.links[2].ends[0].iface, "eth0");
    assert_eq!(s.apps.len(), 5);
    let upload = s.app("upload").unwrap();
    assert_eq!(upload.at, Duration::from_millis(100));
    match &upload.kind {
        AppKind::TcpClient {
            to, send, close, ..
        } => {
            assert_eq!(to.to_string(), "198.51.100.2:5001");
            assert_eq!(*send, Payload::Bytes(100_000));
            assert_eq!(*close, CloseMode::Close);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.apps[0].kind,
        AppKind::TcpServer {
            port: 5001,
            mode: ServerMode::Echo
        }
    ));
    assert!(matches!(
        s.apps[4].kind,
        AppKind::Ping {
            count: 3,
            ttl: 64,
            size: 56,
            ..
        }
    ));
    assert_eq!(s.packets.len(), 4);
    assert_eq!(s.packets[0].kind, PacketKind::Tcp);
    assert_eq!(
        s.packets[0].full_literal().0,
        "tcp 192.0.2.9:40000 > 198.51.100.2:22 S seq=1000 win=64240"
    );
    assert_eq!(s.packets[1].count, 100);
    assert_eq!(s.packets[3].kind, PacketKind::Full);
    assert_eq!(s.events[0].down, Some(true));
    assert_eq!(s.events[1].loss, Some(0.0));
    assert_eq!(s.checks.len(), 5);
    match &s.checks[1].kind {
        CheckKind::Received { on, filter, count } => {
            assert_eq!(on.value, "server");
            assert_eq!(filter.as_ref().unwrap().value, "udp dport 7");
            assert_eq!(
                *count,
                CountRange {
                    min: 5,
                    max: Some(5)
                }
            );
        }
        other => panic!("{other:?}"),
    }
    match &s.checks[3].kind {
        CheckKind::Seen { count, .. } => assert_eq!(*count, CountRange { min: 1, max: None }),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.checks[4].at.as_ref().unwrap().value,
        Duration::from_secs(3)
    );
    // Spans point into the file.
    let span = s.packets[0].literal.span;
    assert_eq!((span.line, span.column), (37, 46));
    assert_eq!(
        &FULL[span.start..span.end],
        "\"192.0.2.9:40000 > 198.51.100.2:22 S seq=1000 win=64240\""
    );
}

#[test]
fn base_loads() {
    let s = load("file.yaml", BASE).unwrap();
    assert_eq!(s.links[1].name.value, "b-r1");
}

// ------------------------------------------------------------ syntax and type errors

#[test]
fn unknown_key() {
    expect_err(
        &with("zzz: 1\n"),
        "11:1",
        &["unknown key `zzz`", "this mapping takes `name`"],
    );
}

#[test]
fn unknown_key_nested_suggests() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, reorder_delay: 5ms }\n"),
        "12:27",
        &[
            "unknown key `reorder_delay`",
            "did you mean `reorder-delay`?",
        ],
    );
}

#[test]
fn wrong_type_number() {
    expect_err(
        &with("seed: lots\n"),
        "11:7",
        &["expected a whole number", "found `lots`"],
    );
}

#[test]
fn wrong_type_negative_number() {
    expect_err(
        &with("seed: -1\n"),
        "11:7",
        &["expected a whole number from 0 to 18446744073709551615"],
    );
}

#[test]
fn wrong_type_port() {
    expect_err(
        &with("apps:\n  - { on: a, run: udp-echo, port: 70000 }\n"),
        "12:35",
        &["expected a whole number from 0 to 65535", "found `70000`"],
    );
}

#[test]
fn wrong_type_mapping() {
    expect_err(
        &with("apps: { on: a }\n"),
        "11:7",
        &["expected a list, found `{`"],
    );
}

#[test]
fn bad_duration_no_unit() {
    expect_err(
        &with("until: 5\n"),
        "11:8",
        &["the duration `5` has no unit", "`5ms`"],
    );
}

#[test]
fn bad_duration_text() {
    expect_err(
        &with("until: soon\n"),
        "11:8",
        &[
            "expected a duration like `10ms` or `2.5s`, found `soon`",
            "ns, us, ms, s",
        ],
    );
}

#[test]
fn bad_duration_negative() {
    expect_err(
        &with("until: -5s\n"),
        "11:8",
        &["a duration cannot be negative"],
    );
}

#[test]
fn bad_duration_overflow() {
    expect_err(
        &with("until: 600000000000h\n"),
        "11:8",
        &["is too long", "584 years"],
    );
}

#[test]
fn bad_duration_too_precise() {
    expect_err(
        &with("until: 1.5ns\n"),
        "11:8",
        &["finer than a nanosecond"],
    );
}

#[test]
fn bad_address() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.300/24 }\n",
        "3:14",
        &["expected an IPv4 address with a prefix length like `192.0.2.2/24`, found `192.0.2.300`"],
    );
}

#[test]
fn bad_address_no_prefix() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.3 }\n",
        "3:14",
        &[
            "the address `192.0.2.3` has no prefix length",
            "`192.0.2.3/24`",
        ],
    );
}

#[test]
fn bad_address_prefix_len() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.3/40 }\n",
        "3:14",
        &["bad prefix length", "0 to 32"],
    );
}

#[test]
fn bad_address_ipv6() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: \"2001:db8::1/64\" }\n",
        "3:14",
        &["IPv6 is not supported yet"],
    );
}

#[test]
fn bad_gateway_with_prefix() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.3/24, gateway: 192.0.2.1/24 }\n",
        "3:37",
        &["expected an address without a prefix length", "`192.0.2.1`"],
    );
}

#[test]
fn bad_socket_address() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-client, to: 198.51.100.2:99999 }\n"),
        "12:35",
        &["bad port in `198.51.100.2:99999`", "1 to 65535"],
    );
}

#[test]
fn bad_bandwidth() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, bandwidth: 1GB }\n"),
        "12:38",
        &["expected a bandwidth like `100Mbps`", "kbps, Mbps, Gbps"],
    );
}

#[test]
fn bad_probability_text() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, loss: lots }\n"),
        "12:33",
        &["expected a probability like `0.01` or `1%`"],
    );
}

#[test]
fn unknown_choice_suggests() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-serve, port: 1 }\n"),
        "12:19",
        &[
            "unknown value `tcp-serve`",
            "did you mean `tcp-server`?",
            "`udp-echo`",
        ],
    );
}

#[test]
fn missing_key() {
    expect_err(
        &with("apps:\n  - run: ping\n    to: 1.2.3.4\n"),
        "13:5",
        &["missing key `on`", "add `on: …`"],
    );
}

#[test]
fn missing_name() {
    expect_err(
        "hosts:\n  a: { addr: 192.0.2.3/24 }\n",
        "1:1",
        &["missing key `name`"],
    );
}

#[test]
fn duplicate_key() {
    expect_err(
        &with("name: again\n"),
        "11:1",
        &["duplicate key `name`", "only once"],
    );
}

#[test]
fn yaml_syntax_error() {
    expect_err(&with("apps: [ { on: a\n"), "11:9", &["unclosed bracket"]);
}

#[test]
fn not_a_mapping() {
    expect_err("- a\n- b\n", "1:1", &["expected a mapping", "name: demo"]);
}

#[test]
fn two_documents() {
    expect_err(
        &with("---\nname: y\n"),
        "12:1",
        &["a scenario file holds one YAML document"],
    );
}

#[test]
fn empty_file() {
    let out = errors("  \n");
    assert!(out.contains("the file is empty"), "{out}");
}

#[test]
fn yaml_1_1_booleans_rejected() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, down: yes }\n"),
        "12:33",
        &["expected `true` or `false`, found `yes`"],
    );
}

// ------------------------------------------------------------ kinds

#[test]
fn app_key_of_another_kind() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-server, port: 1, ttl: 3 }\n"),
        "12:45",
        &[
            "`ttl` does not apply to `run: tcp-server`",
            "takes `port`, `mode`, `bytes`",
        ],
    );
}

#[test]
fn app_required_key_missing() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-server }\n"),
        "12:19",
        &["`run: tcp-server` needs `port:`"],
    );
}

#[test]
fn app_client_needs_port() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-client, to: 198.51.100.2 }\n"),
        "12:35",
        &["needs a port in `to:`", "`198.51.100.2:5001`"],
    );
}

#[test]
fn app_send_and_text() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-client, to: 198.51.100.2:1, send: 1, text: hi }\n"),
        "12:66",
        &["either `send:` or `text:`"],
    );
}

#[test]
fn server_bytes_without_send_mode() {
    expect_err(
        &with("apps:\n  - { on: a, run: tcp-server, port: 1, bytes: 5 }\n"),
        "12:47",
        &["`bytes:` goes with `mode: send`"],
    );
}

#[test]
fn packet_needs_one_literal() {
    expect_err(
        &with("packets:\n  - { from: a, tcp: \"x\", udp: \"y\" }\n"),
        "12:31",
        &["holds one packet, found `tcp:` and `udp:`"],
    );
}

#[test]
fn check_without_kind() {
    expect_err(
        &with("checks:\n  - { on: a, min: 1 }\n"),
        "12:11",
        &["what does this check test?", "`received:`"],
    );
}

#[test]
fn check_two_kinds() {
    expect_err(
        &with("checks:\n  - { app: x, on: a, seen: foo }\n"),
        "12:28",
        &["`app:` and `seen:` cannot be combined"],
    );
}

#[test]
fn check_count_and_min() {
    expect_err(
        &with("checks:\n  - { on: a, seen: foo, count: 1, min: 2 }\n"),
        "12:40",
        &["either `count:` or `min:`/`max:`"],
    );
}

#[test]
fn event_without_change() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1 }\n"),
        "12:21",
        &["this event changes nothing"],
    );
}

#[test]
fn link_with_one_end() {
    expect_err(
        &with("  - { ends: [a] }\n"),
        "11:13",
        &["a link has exactly two ends, found 1"],
    );
}

// ------------------------------------------------------------ validation

#[test]
fn unknown_node_in_link() {
    expect_err(
        &with("  - { ends: [c, r1.x] }\n"),
        "11:14",
        &["unknown node `c`", "known: `a`, `b`, `r1`"],
    );
}

#[test]
fn unknown_node_suggests() {
    expect_err(
        &with("  - { ends: [r2.lan0, a] }\n"),
        "11:14",
        &["unknown node `r2`", "did you mean `r1`?"],
    );
}

#[test]
fn unknown_interface() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\nrouters:\n  r1: { interfaces: { lan0: 192.0.2.1/24 } }\nlinks:\n  - { ends: [a, r1.lan9] }\n",
        "7:20",
        &["`r1` has no interface `lan9`", "`r1` has `lan0`"],
    );
}

#[test]
fn unknown_interface_quoted() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\nrouters:\n  r1: { interfaces: { lan0: 192.0.2.1/24 } }\nlinks:\n  - { ends: [a, \"r1.lan9\"] }\n",
        "7:21",
        &["`r1` has no interface `lan9`"],
    );
}

#[test]
fn several_nics_without_iface() {
    expect_err(
        "name: t\nhosts:\n  m: { interfaces: { eth0: 192.0.2.2/24, eth1: 10.0.0.2/24 } }\n  b: { addr: 192.0.2.3/24 }\nlinks:\n  - { ends: [b, m] }\n",
        "6:17",
        &["`m` has several interfaces: say which one", "`m.eth0`"],
    );
}

#[test]
fn interface_in_two_links() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\n  b: { addr: 192.0.2.3/24 }\nrouters:\n  r1: { interfaces: { lan0: 192.0.2.1/24 } }\nlinks:\n  - { ends: [a, r1] }\n  - { ends: [b, r1.lan0] }\n",
        "9:17",
        &["interface r1.lan0 is in two links", "first link"],
    );
}

#[test]
fn duplicate_node_names() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\nrouters:\n  a: { interfaces: { lan0: 192.0.2.1/24 } }\n",
        "5:3",
        &["two nodes are named `a`", "share one namespace"],
    );
}

#[test]
fn bad_node_name() {
    expect_err(
        "name: t\nhosts:\n  a.b: { addr: 192.0.2.2/24 }\n",
        "3:3",
        &["bad node name `a.b`", "letters, digits"],
    );
}

#[test]
fn duplicate_addresses() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\n  b: { addr: 192.0.2.2/25 }\n",
        "4:14",
        &["address 192.0.2.2 is used twice", "already on a.eth0"],
    );
}

#[test]
fn gateway_outside_subnets() {
    expect_err(
        "name: t\nhosts:\n  a: { addr: 192.0.2.2/24, gateway: 192.0.3.1 }\n",
        "3:37",
        &[
            "gateway 192.0.3.1 is not in any subnet of host `a`",
            "192.0.2.0/24",
        ],
    );
}

#[test]
fn route_via_outside_subnets() {
    expect_err(
        "name: t\nrouters:\n  r1:\n    interfaces: { lan0: 192.0.2.1/24 }\n    routes:\n      - { to: default, via: 10.0.0.1 }\n",
        "6:29",
        &["next hop 10.0.0.1 is not in any subnet of router `r1`", "192.0.2.0/24"],
    );
}

#[test]
fn route_destination_host_bits() {
    expect_err(
        "name: t\nrouters:\n  r1:\n    interfaces: { lan0: 192.0.2.1/24 }\n    routes:\n      - { to: 10.0.0.1/8, via: 192.0.2.9 }\n",
        "6:15",
        &["has host bits set", "did you mean `10.0.0.0/8`?"],
    );
}

#[test]
fn link_ends_not_on_same_subnet() {
    expect_err(
        &with("  - { ends: [a, r1.wan0] }\n"),
        "11:17",
        &["are not on the same subnet", "r1.wan0 is 198.51.100.1/24"],
    );
}

#[test]
fn app_on_raw_host() {
    expect_err(
        "name: t\nhosts:\n  p: { stack: none, addr: 192.0.2.9/24 }\napps:\n  - { on: p, run: udp-echo, port: 7 }\n",
        "5:11",
        &["host `p` has no stack to run apps", "stack: smoltcp"],
    );
}

/// A router may run apps: they run on its own stack, behind INPUT and
/// OUTPUT.
#[test]
fn app_on_router_loads() {
    let text = with("apps:\n  - { on: r1, run: udp-echo, port: 7 }\n");
    if let Err(r) = ctsim_scenario::load("t.yaml", &text) {
        panic!("{}", r.render(false));
    }
}

#[test]
fn app_on_unknown_host() {
    expect_err(
        &with("apps:\n  - { on: c, run: udp-echo, port: 7 }\n"),
        "12:11",
        &["unknown node `c`"],
    );
}

#[test]
fn packet_from_stack_host() {
    expect_err(
        &with("packets:\n  - { from: a, udp: \"192.0.2.2:1 > 198.51.100.2:2\" }\n"),
        "12:13",
        &[
            "`a` cannot send raw packets: it is a host with a stack",
            "stack: none",
        ],
    );
}

#[test]
fn packet_from_unknown_node() {
    expect_err(
        &with("packets:\n  - { from: zz, udp: \"x\" }\n"),
        "12:13",
        &["unknown node `zz`"],
    );
}

const RAW: &str = "name: t
hosts:
  p: { stack: none, addr: 192.0.2.9/24 }
  s: { addr: 192.0.2.2/24 }
links:
  - { ends: [p, s] }
";

#[test]
fn quote_unknown_packet() {
    expect_err(
        &format!("{RAW}packets:\n  - {{ name: syn, from: p, icmp: \"192.0.2.9 > 192.0.2.2 port-unreachable quote=sin\" }}\n"),
        "8:79",
        &["unknown packet `sin`", "did you mean `syn`?"],
    );
}

#[test]
fn quote_later_packet() {
    expect_err(
        &format!(
            "{RAW}packets:\n  - {{ at: 10ms, from: p, icmp: \"192.0.2.9 > 192.0.2.2 port-unreachable quote=syn\" }}\n  - {{ name: syn, at: 20ms, from: p, tcp: \"192.0.2.9:1 > 192.0.2.2:2 S\" }}\n"
        ),
        "8:78",
        &["packet `syn` is sent after this one (at 20ms, this one at 10ms)"],
    );
}

#[test]
fn quote_in_block_scalar_falls_back_to_whole_string() {
    let out = errors(&format!(
        "{RAW}packets:\n  - from: p\n    icmp: >-\n      192.0.2.9 > 192.0.2.2\n      port-unreachable quote=nope\n"
    ));
    assert!(out.contains("file.yaml:10:7"), "{out}");
    assert!(out.contains("unknown packet `nope`"), "{out}");
}

#[test]
fn duplicate_link_names() {
    expect_err(
        &with("  - { name: b-r1, ends: [a, r1.lan0] }\n"),
        "11:13",
        &["two links are named `b-r1`", "second link of this name"],
    );
}

#[test]
fn default_link_names_collide() {
    expect_err(
        "name: t\nhosts:\n  m: { interfaces: { eth0: 192.0.2.2/24, eth1: 10.0.0.2/24 } }\nrouters:\n  r: { interfaces: { a: 192.0.2.1/24, b: 10.0.0.1/24 } }\nlinks:\n  - { ends: [m.eth0, r.a] }\n  - { ends: [m.eth1, r.b] }\n",
        "8:13",
        &["two links are both named `m-r` by default", "give the links names"],
    );
}

#[test]
fn duplicate_app_names() {
    expect_err(
        &with("apps:\n  - { on: a, run: udp-echo, port: 7, name: e }\n  - { on: b, run: udp-echo, port: 7, name: e }\n"),
        "13:44",
        &["two apps are named `e`"],
    );
}

#[test]
fn duplicate_packet_names() {
    expect_err(
        &format!("{RAW}packets:\n  - {{ name: x, from: p, udp: \"a\" }}\n  - {{ name: x, from: p, udp: \"b\" }}\n"),
        "9:13",
        &["two packets are named `x`"],
    );
}

#[test]
fn probability_out_of_range() {
    expect_err(
        &with("  - { ends: [a, r1.lan0], loss: 1.5 }\n"),
        "11:33",
        &["`loss` is a probability, from 0 to 1; found 1.5"],
    );
}

#[test]
fn probability_percent_out_of_range() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, reorder: 150% }\n"),
        "12:36",
        &["`reorder` is a probability"],
    );
}

#[test]
fn mtu_too_small() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r1, mtu: 20 }\n"),
        "12:32",
        &["an MTU of 20 is below the IPv4 minimum of 68"],
    );
}

#[test]
fn event_unknown_link() {
    expect_err(
        &with("events:\n  - { at: 1s, link: a-r2, down: true }\n"),
        "12:21",
        &["unknown link `a-r2`", "did you mean `a-r1`?"],
    );
}

#[test]
fn check_missing_key_reported_once() {
    let r = load("file.yaml", &with("checks:\n  - { dropped: 1 }\n")).unwrap_err();
    assert_eq!(r.diagnostics().len(), 1, "{}", r.render(false));
    assert!(r.render(false).contains("a `dropped:` check needs `link:`"));
    assert!(r.render(false).contains("file.yaml:12:16"));
}

#[test]
fn received_without_filter_means_every_packet() {
    let s = load(
        "file.yaml",
        &with("checks:\n  - { on: a, received: }\n  - { on: a, received: \"\", max: 3 }\n"),
    )
    .unwrap();
    for c in &s.checks {
        assert!(
            matches!(&c.kind, CheckKind::Received { filter: None, .. }),
            "{c:?}"
        );
    }
}

#[test]
fn check_unknown_app() {
    expect_err(
        &with("checks:\n  - { app: upload, state: closed }\n"),
        "12:12",
        &["unknown app `upload`", "no app has a `name:`"],
    );
}

#[test]
fn check_unknown_link() {
    expect_err(
        &with("checks:\n  - { link: wan, dropped: 0 }\n"),
        "12:13",
        &["unknown link `wan`", "known: `a-r1`, `b-r1`"],
    );
}

#[test]
fn check_unknown_node() {
    expect_err(
        &with("checks:\n  - { on: r9, seen: icmp }\n"),
        "12:11",
        &["unknown node `r9`"],
    );
}

#[test]
fn check_after_end_of_run() {
    expect_err(
        &with("until: 1s\nchecks:\n  - { at: 2s, on: r1, seen: icmp }\n"),
        "13:11",
        &["after the run ends (1s)"],
    );
}

#[test]
fn all_errors_reported_sorted() {
    let yaml = with("events:\n  - { at: 1s, link: nope, loss: 7 }\napps:\n  - { on: zz, run: udp-echo, port: 7 }\n");
    let r = load("file.yaml", &yaml).unwrap_err();
    let lines: Vec<u32> = r.diagnostics().iter().map(|d| d.span().line).collect();
    assert_eq!(r.diagnostics().len(), 3, "{}", r.render(false));
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    let out = r.render(false);
    let a = out.find("file.yaml:12:21").unwrap();
    let b = out.find("file.yaml:12:33").unwrap();
    let c = out.find("file.yaml:14:11").unwrap();
    assert!(a < b && b < c, "{out}");
    assert!(out.contains("3 errors in file.yaml"), "{out}");
}

// ------------------------------------------------------------ helpers, schema

#[test]
fn literal_errors_map_into_the_file() {
    let text = "name: t\na: 192.0.2.9 > 1.2.3.4 bad=1\nb: \"192.0.2.9 > 1.2.3.4 bad=1\"\nc: |\n  192.0.2.9 > 1.2.3.4 bad=1\n";
    let src = Source::new("file.yaml", text);
    let line = |n: usize| text.lines().take(n - 1).map(|l| l.len() + 1).sum::<usize>();
    let value = "192.0.2.9 > 1.2.3.4 bad=1".to_string();
    let range = 20..25; // `bad=1`
                        // plain scalar on line 2, starting at column 4
    let plain = Spanned::new(
        value.clone(),
        src.span(line(2) + 3..line(2) + 3 + value.len()),
    );
    let d = literal_error(&src, &plain, range.clone(), "unknown option `bad`");
    assert_eq!((d.span().line, d.span().column), (2, 24));
    assert_eq!(src.slice(d.span()), Some("bad=1"));
    // double-quoted: one more for the quote
    let quoted = Spanned::new(
        value.clone(),
        src.span(line(3) + 3..line(3) + 5 + value.len()),
    );
    let d = literal_error(&src, &quoted, range.clone(), "unknown option `bad`");
    assert_eq!(src.slice(d.span()), Some("bad=1"));
    // block scalar: the whole scalar, and the help says where
    let block = Spanned::new(format!("{value}\n"), src.span(line(4) + 3..text.len()));
    let d = literal_error(&src, &block, range, "unknown option `bad`");
    assert_eq!(d.span(), block.span);
    assert!(d.help.as_deref().unwrap().contains("`bad=1`"));
}

#[test]
fn schema_has_descriptions_and_kinds() {
    let schema = json_schema();
    let text = serde_json::to_string(&schema).unwrap();
    assert_eq!(schema["title"], "ctsim scenario");
    assert!(text.contains("One-way propagation delay"), "{text}");
    assert!(text.contains("reorder-delay"));
    let app = &schema["$defs"]["App"];
    assert_eq!(app["additionalProperties"], false);
    assert_eq!(app["oneOf"].as_array().unwrap().len(), 15);
}

#[test]
fn colors_only_when_asked() {
    let r = load("file.yaml", &with("zzz: 1\n")).unwrap_err();
    assert!(!r.render(false).contains('\u{1b}'));
    assert!(r.render(true).contains('\u{1b}'));
}

// ------------------------------------------------------------ hostile input

#[test]
fn control_characters_are_not_echoed() {
    let out = errors(&with("zz\u{1b}[31m: 1\n"));
    assert!(!out.contains('\u{1b}'), "{out}");
}

#[test]
fn deep_nesting() {
    let deep = format!(
        "name: t\nhosts: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let out = errors(&deep);
    assert!(out.contains("file.yaml:2:"), "{out}");
    let deep = format!("name: t\nhosts:\n  a: {}\n", "{a: ".repeat(50_000));
    errors(&deep);
}

#[test]
fn alias_bomb() {
    let mut yaml = String::from("name: t\nrouters:\n  r1:\n    interfaces: { lan0: 192.0.2.1/24 }\n    sysctl:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, next) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("d", "e"),
        ("e", "f"),
        ("f", "g"),
        ("g", "h"),
    ] {
        yaml.push_str(&format!("      {next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    errors(&yaml);
}

#[test]
fn invalid_utf8() {
    let r = load_bytes("file.yaml", b"name: t\nhosts: \xff\xfe\n").unwrap_err();
    let out = r.render(false);
    assert!(out.contains("file.yaml:2:8"), "{out}");
    assert!(out.contains("not valid UTF-8"), "{out}");
}

#[test]
fn huge_numbers() {
    expect_err(&with("seed: 1e999\n"), "11:7", &["whole number"]);
    expect_err(
        &with("  - { ends: [a, r1.lan0], mtu: 99999999999999999999999 }\n"),
        "11:32",
        &["whole number"],
    );
    expect_err(
        &with("  - { ends: [a, r1.lan0], bandwidth: 99999999999999999999Tbps }\n"),
        "11:38",
        &["too large"],
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC*") {
        let _ = load("file.yaml", &s).map_err(|r| r.render(false));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = load_bytes("file.yaml", &b).map_err(|r| r.render(false));
    }

    #[test]
    fn mangled_scenarios_never_panic(cut in 0usize..2000, insert in "[ -~\\n\\t]{0,8}") {
        let mut text = FULL.to_string();
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        text.insert_str(at, &insert);
        let _ = load("file.yaml", &text).map_err(|r| r.render(false));
    }
}
#[test]
fn many_errors_are_capped() {
    let mut yaml = String::from(BASE);
    for i in 0..20_000 {
        yaml.push_str(&format!("  - {{ ends: [x{i}, y{i}] }}\n"));
    }
    let r = load("file.yaml", &yaml).unwrap_err();
    assert_eq!(r.diagnostics().len(), 40_000);
    let out = r.render(false);
    assert!(out.contains("more errors"), "{}", &out[out.len() - 200..]);
    let _ = format!("{:?}", r.into_miette());
}

#[test]
fn merge_keys_and_anchors() {
    let yaml = with("  - { <<: &slow { delay: 5ms, loss: 1% }, ends: [a, r1.lan0], name: x }\n");
    let r = load("file.yaml", &yaml).unwrap_err();
    // the merged link reuses a.eth0 and r1.lan0; the merge itself is fine
    assert!(r.render(false).contains("is in two links"));
    let ok = "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\nrouters:\n  r1: { interfaces: { lan0: 192.0.2.1/24 } }\nlinks:\n  - { <<: { delay: 5ms, loss: 1% }, ends: [a, r1.lan0] }\n";
    let s = load("file.yaml", ok).unwrap_or_else(|r| panic!("{}", r.render(false)));
    assert_eq!(s.links[0].params.delay, Duration::from_millis(5));
    assert_eq!(s.links[0].params.loss, 0.01);
}

/// Switches: a link names one of their ports; a missing or unknown port,
/// and a port count out of range, are errors where they are written.
#[test]
fn switch_ports_are_named_and_bounded() {
    let base = "name: t\nhosts:\n  a: { addr: 192.0.2.2/24 }\n  b: { addr: 192.0.2.3/24 }\nswitches:\n  lan: { ports: 2 }\nlinks:\n";
    let ok = format!("{base}  - {{ ends: [a, lan.p0] }}\n  - {{ ends: [b, lan.p1] }}\n");
    if let Err(r) = load("file.yaml", &ok) {
        panic!("{}", r.render(false));
    }
    let no_port = format!("{base}  - {{ ends: [a, lan] }}\n");
    let e = errors(&no_port);
    assert!(
        e.contains("which port of switch `lan`?") && e.contains("lan.p0"),
        "{e}"
    );
    let bad_port = format!("{base}  - {{ ends: [a, lan.p7] }}\n");
    let e = errors(&bad_port);
    assert!(
        e.contains("`lan` has no port `p7`") && e.contains("ports p0 to p1"),
        "{e}"
    );
    let twice = format!("{base}  - {{ ends: [a, lan.p0] }}\n  - {{ ends: [b, lan.p0] }}\n");
    assert!(errors(&twice).contains("interface lan.p0 is in two links"));
    let too_many = "name: t\nswitches:\n  lan: { ports: 100 }\n";
    assert!(errors(too_many).contains("a switch has 2 to 64 ports, not 100"));
}
