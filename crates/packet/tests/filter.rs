//! Filter expressions: what each primitive selects, how they combine, and
//! the errors for bad expressions.

use ctsim_packet::{parse, Filter};

fn bytes(text: &str) -> Vec<u8> {
    parse(text, &|_| None).unwrap_or_else(|e| panic!("\n{}", e.render(text)))
}

fn matches(filter: &str, literal: &str) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|e| panic!("\n{}", e.render(filter)))
        .matches(&bytes(literal))
}

const SYN: &str = "tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1 win=1024";
const SYN_ACK: &str = "tcp 198.51.100.2:22 > 192.0.2.2:40000 S. seq=9 ack=2 win=1024";
const DNS: &str = "udp 192.0.2.2:5353 > 198.51.100.53:53 len=20";
const PING: &str = "icmp 192.0.2.2 > 198.51.100.2 echo-request id=1 seq=1";
const UNREACHABLE: &str =
    "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:5353 > 198.51.100.53:53)";
const GRE: &str = "ip 192.0.2.2 > 198.51.100.2 proto=47 len=4";
const LATER_FRAGMENT: &str = "ip 192.0.2.2 > 198.51.100.2 proto=6 frag=8 hex=00160016";

#[test]
fn protocols() {
    assert!(matches("tcp", SYN));
    assert!(!matches("tcp", DNS));
    assert!(matches("udp", DNS));
    assert!(matches("icmp", PING));
    assert!(matches("proto 47", GRE));
    assert!(matches("tcp", LATER_FRAGMENT));
}

#[test]
fn addresses_and_networks() {
    assert!(matches("host 198.51.100.2", SYN));
    assert!(matches("host 192.0.2.2", SYN));
    assert!(matches("src 192.0.2.2", SYN));
    assert!(!matches("dst 192.0.2.2", SYN));
    assert!(matches("dst 192.0.2.2", SYN_ACK));
    assert!(matches("net 198.51.100.0/24", SYN));
    assert!(!matches("net 203.0.113.0/24", SYN));
    assert!(matches("net 0.0.0.0/0", SYN));
    assert!(matches("net 192.0.2.2/32", SYN));
}

#[test]
fn ports_only_in_first_fragments() {
    assert!(matches("port 22", SYN));
    assert!(matches("port 40000", SYN));
    assert!(matches("dport 22", SYN));
    assert!(!matches("sport 22", SYN));
    assert!(matches("sport 22", SYN_ACK));
    assert!(matches("dport 53", DNS));
    assert!(!matches("port 22", LATER_FRAGMENT));
    assert!(!matches("port 53", UNREACHABLE));
}

#[test]
fn tcp_flags() {
    assert!(matches("tcp-flags S", SYN));
    assert!(!matches("tcp-flags S", SYN_ACK));
    assert!(matches("tcp-flags .S", SYN_ACK));
    assert!(matches("syn", SYN) && matches("syn", SYN_ACK));
    assert!(matches("ack", SYN_ACK) && !matches("ack", SYN));
    assert!(!matches("rst or fin", SYN));
    assert!(matches(
        "rst",
        "tcp 1.1.1.1:1 > 2.2.2.2:2 R. seq=1 ack=1 win=0"
    ));
    assert!(matches(
        "fin",
        "tcp 1.1.1.1:1 > 2.2.2.2:2 F. seq=1 ack=1 win=0"
    ));
    assert!(!matches("syn", DNS));
}

#[test]
fn icmp_types() {
    assert!(matches("icmp-type echo-request", PING));
    assert!(!matches("icmp-type echo-reply", PING));
    assert!(matches("icmp-type port-unreachable", UNREACHABLE));
    assert!(!matches("icmp-type host-unreachable", UNREACHABLE));
    assert!(matches("icmp-type 3", UNREACHABLE));
    assert!(!matches("icmp-type 3", SYN));
}

#[test]
fn lengths() {
    assert!(matches("len 40", SYN));
    assert!(!matches("len 41", SYN));
}

#[test]
fn combinations() {
    assert!(matches("tcp and dport 22 and (syn or rst)", SYN));
    assert!(!matches("tcp and not syn", SYN));
    assert!(matches("udp or icmp or tcp", SYN));
    assert!(matches("not not tcp", SYN));
    assert!(matches("tcp and port 22 or udp", DNS));
    assert!(!matches("tcp and (port 22 or udp)", DNS));
    assert!(matches("((tcp))", SYN));
    let long = vec!["tcp"; 10_000].join(" or ");
    assert!(matches(&long, SYN));
}

#[test]
fn non_ipv4_bytes_match_nothing() {
    let filter = Filter::parse("not tcp").unwrap();
    assert!(!filter.matches(&[]));
    assert!(!filter.matches(&[0x60; 40]));
    assert!(filter.matches(&bytes(DNS)));
}

#[test]
fn errors() {
    let cases = [
        ("", "^", "expected a filter primitive (tcp, udp, icmp, proto, host, src, dst, net, port, sport, dport, tcp-flags, syn, fin, rst, ack, icmp-type, len), found the end of the filter"),
        ("tcp )", "    ^", "this `)` closes no `(`"),
        ("(tcp or udp", "           ^", "expected `)`, found the end of the filter"),
        ("net 10.0.0.0/33", "    ^^^^^^^^^^^", "expected a prefix length from 0 to 32, found `33`"),
        ("net 10.0.0.0", "    ^^^^^^^^", "expected a network like 192.0.2.0/24, found `10.0.0.0`"),
        ("port x", "     ^", "expected a port from 0 to 65535, found `x`"),
        ("host", "    ^", "expected an address, found the end of the filter"),
        ("tcp-flags SS", "          ^^", "expected TCP flags (S, S., ., P., F., R, R.; letters F S R P . U E W e; or none), found `SS`"),
        ("frob", "^^^^", "expected a filter primitive (tcp, udp, icmp, proto, host, src, dst, net, port, sport, dport, tcp-flags, syn, fin, rst, ack, icmp-type, len), found `frob`"),
    ];
    for (text, carets, message) in cases {
        let error = Filter::parse(text).unwrap_err();
        assert_eq!(error.render(text), format!("{text}\n{carets}\n{message}"));
    }
    let deep = format!("{}tcp", "not ".repeat(100));
    assert!(Filter::parse(&deep)
        .unwrap_err()
        .message
        .contains("nest at most 64 deep"));
    let deep = format!("{}tcp{}", "(".repeat(100), ")".repeat(100));
    assert!(Filter::parse(&deep).is_err());
}

#[test]
fn juxtaposed_primitives_mean_and() {
    assert!(matches("tcp dport 22", SYN));
    assert!(!matches("udp dport 22", SYN));
    assert_eq!(
        Filter::parse("tcp dport 22 or udp").unwrap(),
        Filter::parse("(tcp and dport 22) or udp").unwrap()
    );
}
