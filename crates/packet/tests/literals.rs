//! Every literal form, the bytes it stands for, and the errors parsing
//! reports.

use std::net::Ipv4Addr;

use ctsim_packet::{icmp_error, is_icmp_error, parse, show, IcmpError};
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, IpAddress, Ipv4Packet, TcpOption, TcpPacket, UdpPacket,
};

fn bytes(text: &str) -> Vec<u8> {
    parse(text, &|_| None).unwrap_or_else(|e| panic!("\n{}", e.render(text)))
}

fn error(text: &str) -> String {
    parse(text, &|_| None).unwrap_err().render(text)
}

/// Parses `text` and checks that it prints as `shown`.
fn shows_as(text: &str, shown: &str) {
    assert_eq!(show(&bytes(text)), shown, "{text}");
}

/// Parses a literal that is already canonical and checks it prints as is.
fn canonical(text: &str) {
    shows_as(text, text);
}

fn ip(bytes: &[u8]) -> Ipv4Packet<&[u8]> {
    let packet = Ipv4Packet::new_checked(bytes).unwrap();
    assert!(packet.verify_checksum(), "IP header checksum");
    packet
}

fn addresses(packet: &Ipv4Packet<&[u8]>) -> (IpAddress, IpAddress) {
    (packet.src_addr().into(), packet.dst_addr().into())
}

const SYN: &str = "tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240 [mss 1460, sackOK, ts val 100 ecr 0, nop, wscale 7]";

#[test]
fn tcp_syn_with_options() {
    canonical(SYN);
    let syn = bytes(SYN);
    let ip = ip(&syn);
    assert_eq!(ip.hop_limit(), 64);
    assert!(ip.dont_frag());
    assert_eq!(ip.ident(), 0);
    let (src, dst) = addresses(&ip);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(tcp.verify_checksum(&src, &dst));
    assert!(tcp.syn() && !tcp.ack());
    assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 22));
    assert_eq!(tcp.seq_number().0, 1000);
    assert_eq!(tcp.window_len(), 64240);
    assert_eq!(tcp.header_len(), 40);
    let mut options = tcp.options();
    let mut parsed = Vec::new();
    while !options.is_empty() {
        let (rest, option) = TcpOption::parse(options).unwrap();
        parsed.push(option);
        options = rest;
    }
    assert_eq!(
        parsed,
        [
            TcpOption::MaxSegmentSize(1460),
            TcpOption::SackPermitted,
            TcpOption::TimeStamp {
                tsval: 100,
                tsecr: 0
            },
            TcpOption::NoOperation,
            TcpOption::WindowScale(7),
        ]
    );
}

#[test]
fn tcp_forms() {
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 . seq=1001 ack=5001 win=502 len=100");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 P. seq=1 ack=2 win=3 payload=\"GET / HTTP/1.1\\r\\n\"");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 F. seq=1 ack=2 win=3");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 R seq=1 win=0");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 R. seq=1 ack=2 win=0");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 SEW seq=1 win=3");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 none seq=1 ack=7 win=3 urg=9");
    canonical("tcp 192.0.2.2:40000 > 198.51.100.2:22 P.U seq=1 ack=2 win=3 urg=1 hex=ff");
    canonical("tcp 192.0.2.2:1 > 198.51.100.2:2 S. seq=1 ack=2 win=3 [sack 1:2 3:4 5:6 7:8]");
    canonical("tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=1 win=3 [opt 254 hex=f989, opt 2 hex=05]");
    // Defaults fill in, flags print in canonical order, padding is implied.
    shows_as(
        "tcp 192.0.2.2:1 > 198.51.100.2:2 .S [mss 1460, wscale 7]",
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S. seq=0 ack=0 win=65535 [mss 1460, wscale 7]",
    );
    // Option bytes that spell a known option print as it.
    shows_as(
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S [opt 2 hex=05b4]",
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=0 win=65535 [mss 1460]",
    );
    shows_as(
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S [nop, nop, nop, nop, eol, eol, eol, eol]",
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=0 win=65535 [nop, nop, nop, nop, eol]",
    );
}

#[test]
fn tcp_reserved_bits_fall_back_to_ip() {
    let mut segment = bytes("tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=1 win=3");
    segment[20 + 12] |= 0x02;
    assert_eq!(
        show(&segment),
        "ip 192.0.2.2 > 198.51.100.2 proto=6 hex=00010002000000010000000052020003c3a30000"
    );
    assert_eq!(parse(&show(&segment), &|_| None).unwrap(), segment);
}

#[test]
fn udp_forms() {
    canonical("udp 192.0.2.2:5000 > 198.51.100.2:53 len=32");
    canonical("udp 192.0.2.2:5000 > 198.51.100.2:53");
    canonical("udp 192.0.2.2:5000 > 198.51.100.2:53 ulen=4 hex=01");
    canonical("udp 192.0.2.2:5000 > 198.51.100.2:53 payload=\"a \\\"quoted\\\" \\\\ word\\t\"");
    shows_as(
        "udp 192.0.2.2:5000 > 198.51.100.2:53 payload=\"\\x00\\x01\"",
        "udp 192.0.2.2:5000 > 198.51.100.2:53 hex=0001",
    );
    shows_as(
        "udp 192.0.2.2:5000 > 198.51.100.2:53 hex=ab len=100",
        "udp 192.0.2.2:5000 > 198.51.100.2:53 hex=ab len=100",
    );
    let datagram = bytes("udp 192.0.2.2:5000 > 198.51.100.2:53 payload=\"hello\"");
    let ip = ip(&datagram);
    let (src, dst) = addresses(&ip);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(udp.verify_checksum(&src, &dst));
    assert_eq!(udp.payload(), b"hello");
}

#[test]
fn icmp_queries() {
    canonical("icmp 192.0.2.2 > 198.51.100.2 echo-request id=7 seq=1 len=56");
    canonical("icmp 198.51.100.2 > 192.0.2.2 echo-reply id=7 seq=1 payload=\"ping\"");
    canonical("icmp 192.0.2.2 > 198.51.100.2 timestamp-request id=1 seq=2 orig=1000");
    canonical(
        "icmp 198.51.100.2 > 192.0.2.2 timestamp-reply id=1 seq=2 orig=1000 recv=1001 xmit=1002",
    );
    canonical("icmp 192.0.2.2 > 198.51.100.2 info-request id=1 seq=2");
    canonical("icmp 198.51.100.2 > 192.0.2.2 info-reply id=1 seq=2");
    canonical("icmp 192.0.2.2 > 198.51.100.2 mask-request id=1 seq=2");
    canonical("icmp 198.51.100.2 > 192.0.2.2 mask-reply id=1 seq=2 mask=255.255.255.0");
    shows_as(
        "icmp 192.0.2.2 > 198.51.100.2 echo-request",
        "icmp 192.0.2.2 > 198.51.100.2 echo-request id=0 seq=0",
    );
    let echo = bytes("icmp 192.0.2.2 > 198.51.100.2 echo-request id=7 seq=1 len=56");
    let packet = Icmpv4Packet::new_checked(ip(&echo).payload()).unwrap();
    assert!(packet.verify_checksum());
    assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (7, 1));
    assert_eq!(packet.data().len(), 56);
}

#[test]
fn icmp_errors() {
    let quote = "quote=(udp 192.0.2.2:5000 > 198.51.100.2:53 len=10)";
    for kind in [
        "net-unreachable",
        "host-unreachable",
        "proto-unreachable",
        "port-unreachable",
        "frag-needed mtu=1400",
        "net-prohibited",
        "host-prohibited",
        "admin-prohibited",
        "source-quench",
        "redirect gw=198.51.100.9",
        "time-exceeded",
        "reassembly-time-exceeded",
        "param-problem ptr=8",
        "type=3 code=5",
        "type=3 code=4 rest=0x00010578",
    ] {
        canonical(&format!("icmp 198.51.100.1 > 192.0.2.2 {kind} {quote}"));
    }
    canonical("icmp 198.51.100.1 > 192.0.2.2 type=42");
    canonical("icmp 198.51.100.1 > 192.0.2.2 port-unreachable");
    let error = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 frag-needed mtu=1400 {quote}"
    ));
    let ip = ip(&error);
    let packet = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(packet.verify_checksum());
    assert_eq!((packet.msg_type().into(), packet.msg_code()), (3u8, 4));
    assert_eq!(
        &packet.data()[..20],
        &bytes(&quote[7..quote.len() - 1])[..20]
    );
    assert!(is_icmp_error(&error));
    assert!(!is_icmp_error(&bytes(
        "icmp 192.0.2.2 > 198.51.100.2 echo-request"
    )));
}

#[test]
fn other_protocols_and_ip_fields() {
    canonical("ip 192.0.2.2 > 198.51.100.2 proto=47 len=20");
    canonical("udp 192.0.2.2:1 > 198.51.100.2:2 ttl=1 tos=0xb8 ipid=42 nodf mf rf ipopts=94040000");
    let datagram =
        bytes("udp 192.0.2.2:1 > 198.51.100.2:2 ttl=1 tos=0xb8 ipid=42 nodf mf ipopts=9404");
    let ip = ip(&datagram);
    assert_eq!(
        (ip.hop_limit(), ip.dscp(), ip.ecn(), ip.ident()),
        (1, 0xb8 >> 2, 0, 42)
    );
    assert!(!ip.dont_frag() && ip.more_frags());
    assert_eq!(ip.header_len(), 24);
}

#[test]
fn checksums_can_be_wrong_on_purpose() {
    let base = "tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=1 win=3";
    let bad = bytes(&format!("{base} csum=bad"));
    let ip = ip(&bad);
    let (src, dst) = addresses(&ip);
    assert!(!TcpPacket::new_checked(ip.payload())
        .unwrap()
        .verify_checksum(&src, &dst));
    let shown = show(&bad);
    assert!(shown.starts_with(&format!("{base} csum=0x")), "{shown}");
    assert_eq!(parse(&shown, &|_| None).unwrap(), bad);

    let exact = bytes(&format!("{base} csum=0x1234 ipcsum=0xabcd"));
    assert_eq!(&exact[10..12], &[0xab, 0xcd]);
    assert_eq!(&exact[20 + 16..20 + 18], &[0x12, 0x34]);
    canonical(&format!("{base} csum=0x1234 ipcsum=0xabcd"));

    let bad_ip = bytes(&format!("{base} ipcsum=bad"));
    assert!(!Ipv4Packet::new_checked(&bad_ip[..])
        .unwrap()
        .verify_checksum());
    for protocol in [
        "udp 192.0.2.2:1 > 198.51.100.2:2",
        "icmp 192.0.2.2 > 198.51.100.2 echo-request",
    ] {
        let bytes = bytes(&format!("{protocol} csum=bad"));
        assert!(show(&bytes).contains(" csum=0x"));
    }
}

#[test]
fn fragments_print_at_ip_level_unless_first() {
    canonical("tcp 192.0.2.2:1 > 198.51.100.2:2 . seq=1 ack=2 win=3 csum=0xa6ba mf len=1000");
    shows_as(
        "tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=1 win=3 frag=1480",
        "ip 192.0.2.2 > 198.51.100.2 proto=6 frag=1480 hex=00010002000000010000000050020003c3a30000",
    );
    canonical("ip 192.0.2.2 > 198.51.100.2 proto=17 mf hex=0001");
}

#[test]
fn quotes_by_name_and_inline() {
    let syn = bytes(SYN);
    let quotes = |name: &str| (name == "syn").then(|| syn.clone());
    let error = parse(
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=syn/28",
        &quotes,
    )
    .unwrap();
    assert_eq!(error.len(), 20 + 8 + 28);
    assert_eq!(&error[28..], &syn[..28]);
    assert_eq!(
        show(&error),
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable \
         quote=(tcp 192.0.2.2:40000 > 198.51.100.2:22 none seq=1000 win=0 len=20)/28"
    );
    let whole = parse(
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=syn",
        &quotes,
    )
    .unwrap();
    assert_eq!(&whole[28..], &syn[..]);
    assert_eq!(
        show(&whole),
        format!("icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=({SYN})")
    );
    // A length past the end keeps everything.
    assert_eq!(
        parse(
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=syn/9999",
            &quotes
        )
        .unwrap(),
        whole
    );
}

#[test]
fn quotes_keep_what_linux_keeps() {
    let big = "tcp 192.0.2.2:1 > 198.51.100.2:2 . seq=1 ack=2 win=3 len=1460";
    let error = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 frag-needed mtu=1400 quote=({big})"
    ));
    assert_eq!(error.len(), 576);
    assert_eq!(
        show(&error),
        format!("icmp 198.51.100.1 > 192.0.2.2 frag-needed mtu=1400 quote=({big})/548")
    );
    // IP options on the error leave less room for the quote.
    let with_options = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 time-exceeded ipopts=94040000 quote=({big})"
    ));
    assert_eq!(with_options.len(), 576);
    // A quote longer than the default must say so to round-trip.
    let long = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 time-exceeded quote=({big})/1500"
    ));
    assert_eq!(long.len(), 20 + 8 + 1500);
    assert!(show(&long).ends_with(")/1500"));
}

#[test]
fn truncated_quotes_show_known_bytes_and_unverifiable_checksums() {
    let inner = "udp 192.0.2.2:5000 > 198.51.100.2:53 payload=\"hello world\"";
    let error = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=({inner})/30"
    ));
    let shown = show(&error);
    assert!(
        shown.starts_with(
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:5000 > 198.51.100.2:53 csum=0x"
        ),
        "{shown}"
    );
    assert!(shown.ends_with(" payload=\"he\" len=11)/30"), "{shown}");
    assert_eq!(parse(&shown, &|_| None).unwrap(), error);
    // A quote too short for an IP header prints as bytes.
    let stub = bytes(&format!(
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=({inner})/12"
    ));
    assert_eq!(
        show(&stub),
        "icmp 198.51.100.1 > 192.0.2.2 port-unreachable hex=450000270000400040114e8e"
    );
}

#[test]
fn nested_quotes() {
    canonical(
        "icmp 203.0.113.1 > 198.51.100.1 time-exceeded \
         quote=(icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1 > 198.51.100.2:2 len=4))",
    );
}

#[test]
fn icmp_error_follows_linux() {
    let router = Ipv4Addr::new(203, 0, 113, 1);
    let big = bytes("tcp 192.0.2.2:1 > 198.51.100.2:2 . seq=1 ack=2 win=3 len=1460");
    let error = icmp_error(router, IcmpError::FragNeeded { mtu: 1400 }, &big);
    assert_eq!(error.len(), 576);
    let ip = ip(&error);
    assert_eq!(ip.src_addr(), router);
    assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
    // Checked on Linux 6.x in a namespace (ping -M do -s 1400 across a
    // 1280-byte link): tos 0xc0, ttl 64, DF clear, 576 bytes in all.
    assert!(!ip.dont_frag());
    assert_eq!((ip.hop_limit(), ip.ident()), (64, 0));
    assert_eq!((ip.dscp() << 2) | ip.ecn(), 0xc0);
    let packet = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(packet.verify_checksum());
    assert_eq!(packet.data(), &big[..548]);
    assert_eq!(packet.msg_type(), Icmpv4Message::DstUnreachable);
    assert_eq!(packet.msg_code(), 4);
    assert_eq!(&ip.payload()[4..8], &[0, 0, 0x05, 0x78]);
    assert!(is_icmp_error(&error));

    let small = bytes("udp 192.0.2.2:1 > 198.51.100.2:2 len=10");
    let error = icmp_error(router, IcmpError::PortUnreachable, &small);
    assert_eq!(
        show(&error),
        "icmp 203.0.113.1 > 192.0.2.2 port-unreachable tos=0xc0 nodf quote=(udp 192.0.2.2:1 > 198.51.100.2:2 len=10)"
    );
    // Garbage in, an addressed-to-nowhere error out, no panic.
    let error = icmp_error(router, IcmpError::TimeExceeded, &[1, 2, 3]);
    assert_eq!(
        show(&error),
        "icmp 203.0.113.1 > 0.0.0.0 time-exceeded tos=0xc0 nodf hex=010203"
    );
}

#[test]
fn malformed_bytes_print_and_parse_back() {
    for (bytes, shown) in [
        (&[][..], "malformed (0 bytes, shorter than an IPv4 header) hex="),
        (&[0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], "malformed (IP version 6) hex=6000000000000000000000000000000000000000"),
        (&[0x44, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], "malformed (header length 16 is less than 20) hex=4400001400000000000000000000000000000000"),
        (&[0x46, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], "malformed (header length 24 but only 20 bytes) hex=4600001400000000000000000000000000000000"),
        (&[0x45, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], "malformed (total length 10 is less than header length 20) hex=4500000a00000000000000000000000000000000"),
        (&[0x45, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], "malformed (total length 21 but 20 bytes) hex=4500001500000000000000000000000000000000"),
    ] {
        assert_eq!(show(bytes), shown);
        assert_eq!(parse(shown, &|_| None).unwrap(), bytes);
    }
    assert_eq!(bytes("malformed hex=00"), [0]);
}

#[test]
fn errors_point_at_the_offending_token() {
    let cases = [
        (
            "tcpx 192.0.2.2:1 > 198.51.100.2:2 S",
            "^^^^",
            "expected a protocol (tcp, udp, icmp, ip, malformed), found `tcpx`",
        ),
        (
            "tcp 192.0.2.2 > 198.51.100.2:22 S",
            "    ^^^^^^^^^",
            "expected ADDRESS:PORT like 192.0.2.1:80, found `192.0.2.2`",
        ),
        (
            "udp 192.0.2.256:1 > 198.51.100.2:2",
            "    ^^^^^^^^^^^",
            "expected an IPv4 address like 192.0.2.1, found `192.0.2.256`",
        ),
        (
            "udp 192.0.2.2:1 < 198.51.100.2:2",
            "                ^",
            "expected `>` between source and destination, found `<`",
        ),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 X seq=1",
            "                                 ^",
            "expected TCP flags (S, S., ., P., F., R, R.; letters F S R P . U E W e; or none), found `X`",
        ),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2 mss=5",
            "                                 ^^^",
            "unknown field `mss` for udp literals; expected one of ulen, csum, ttl, tos, ipid, nodf, mf, rf, frag, ipopts, ipcsum, len, payload, hex",
        ),
        ("tcp 192.0.2.2:1 > 198.51.100.2:2 S seq=1 seq=2", "                                         ^^^", "`seq` given twice"),
        ("udp 192.0.2.2:1 > 198.51.100.2:2 ttl=300", "                                     ^^^", "expected a TTL from 0 to 255, found `300`"),
        ("udp 192.0.2.2:1 > 198.51.100.2:2 ttl", "                                 ^^^", "expected `ttl=` and a value"),
        ("udp 192.0.2.2:1 > 198.51.100.2:2 nodf=1", "                                 ^^^^", "`nodf` takes no value"),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2 frag=7",
            "                                      ^",
            "expected a fragment offset in bytes, a multiple of 8, found `7`",
        ),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2 csum=good",
            "                                      ^^^^",
            "expected `bad` or a checksum from 0 to 65535, found `good`",
        ),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 S [ts val 1 ecr 2, ts val 3 ecr 4, ts val 5 ecr 6, ts val 7 ecr 8, nop]",
            "                                                                                                   ^^^^",
            "TCP options do not fit in 40 bytes",
        ),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 S [mss 1460, md5]",
            "                                              ^^^",
            "expected a TCP option (mss, wscale, sackOK, sack, ts, nop, eol, opt), found `md5`",
        ),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 S [ts val 1 ecr]",
            "                                                ^",
            "expected a timestamp after `ecr`, found end of option",
        ),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 S [mss 1460, sack]",
            "                                              ^^^^",
            "expected SACK blocks like 1000:2000 after `sack`",
        ),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2 payload=\"a\\qb\"",
            "                                           ^^",
            "expected an escape: \\r \\n \\t \\\" \\\\ or \\xNN",
        ),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2 payload=\"abcdef\" len=3",
            "                                                      ^",
            "len=3 is shorter than the 6 payload bytes given",
        ),
        (
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=nosuch",
            "                                                     ^^^^^^",
            "no packet named `nosuch`",
        ),
        (
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1 > 198.51.100.2:2) len=4",
            "                                               ^^^^^",
            "give either `quote=` or a payload, not both",
        ),
        (
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1 > 198.51.100.2:2 ttl=x)",
            "                                                                                           ^",
            "expected a TTL from 0 to 255, found `x`",
        ),
        (
            "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1 > 198.51.100.2:2",
            "                                                     ^",
            "unclosed `(`",
        ),
        ("tcp 192.0.2.2:1 >", "                 ^", "expected a destination address and port, found end of literal"),
        ("ip 1.1.1.1 > 2.2.2.2 len=4", "^^", "expected `proto=N` in an ip literal"),
        (
            "tcp 192.0.2.2:1 > 198.51.100.2:2 S len=65535",
            "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            "the datagram would be 65575 bytes; IPv4 allows at most 65535",
        ),
        (
            "udp 192.0.2.2:1 > 198.51.100.2:2\tpayload=\"é\" ttl=é",
            "                                                 ^",
            "expected a TTL from 0 to 255, found `é`",
        ),
    ];
    for (text, carets, message) in cases {
        let line = text.replace('\t', " ");
        assert_eq!(error(text), format!("{line}\n{carets}\n{message}"));
    }
}

#[test]
fn quotes_nest_only_so_deep() {
    let mut text = "udp 1.1.1.1:1 > 2.2.2.2:2".to_string();
    for _ in 0..4 {
        text = format!("icmp 1.1.1.1 > 2.2.2.2 time-exceeded quote=({text})");
    }
    assert!(parse(&text, &|_| None).is_ok());
    let deeper = format!("icmp 1.1.1.1 > 2.2.2.2 time-exceeded quote=({text})");
    assert!(error(&deeper).ends_with("quotes nest at most 4 deep"));
    // Printing stops quoting at the same depth, so it still round-trips.
    let bytes = parse(&text, &|_| None).unwrap();
    assert_eq!(parse(&show(&bytes), &|_| None).unwrap(), bytes);
}
