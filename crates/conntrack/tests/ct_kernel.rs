//! Sequences whose expected `conntrack -E`, `-L` and `-S` output was
//! checked against Linux 6.18 with conntrack-tools 1.4.7.
//!
//! Two sources: lines marked "reference" are the captures of
//! shared/reference/conntrack-tool-formats.md (a MASQUERADE lab, so their
//! reply tuples say 198.51.100.1; ctsim has no NAT yet, so the tests below
//! use the same flows without NAT and the reply destination is the client).
//! Lines marked "lab" were captured for this crate on this machine: three
//! network namespaces (client 192.0.2.2, router 192.0.2.1/198.51.100.1,
//! server 198.51.100.2), no NAT, `iptables -A FORWARD -m conntrack --ctstate
//! INVALID -j ACCEPT` to switch conntrack on, packets written byte by byte
//! with raw sockets, `conntrack -E` / `-L` / `-S` run in the router.

mod ct_util;

use ct_util::*;
use ctsim_conntrack::{
    Conntrack, CtHook, CtInfo, CtState, Filter, FormatOpts, Sysctls, Table, Zone, ICMP_NOT_NEW,
    ICMP_NO_MATCH,
};

fn ct() -> Conntrack {
    Conntrack::new(Sysctls::default())
}

/// Lab: request, reply 0.2 s later, request 2.5 s after the first; then
/// `conntrack -L` 1 s later.
#[test]
fn udp_stream_becomes_assured_after_two_seconds() {
    let mut ct = ct();
    forward(&mut ct, &udp(C, 40002, S, 5000, b"abcd"), secs(0.0));
    forward(&mut ct, &udp(S, 5000, C, 40002, b"abcd"), secs(0.2));
    forward(&mut ct, &udp(C, 40002, S, 5000, b"abcd"), secs(2.7));
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002",
            " [UPDATE] udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002",
            " [UPDATE] udp      17 120 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002 [ASSURED]",
        ]
    );
    assert_eq!(
        list(&ct, secs(3.7)),
        "udp      17 119 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002 [ASSURED] mark=0 use=1\n"
    );
    let (_, err) = ct.conntrack_l(
        Table::Conntrack,
        &Filter::default(),
        FormatOpts::default(),
        secs(3.7),
    );
    assert_eq!(
        err,
        "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n"
    );
    let mut opts = FormatOpts::EXTENDED;
    opts.id = true;
    let (out, _) = ct.conntrack_l(Table::Conntrack, &Filter::default(), opts, secs(3.7));
    // Lab printed `id=3770711826`; ctsim numbers entries from 1.
    assert_eq!(
        out,
        "ipv4     2 udp      17 119 src=192.0.2.2 dst=198.51.100.2 sport=40002 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40002 [ASSURED] mark=0 use=1 id=1\n"
    );
}

/// Lab: the first reply arrives 2.5 s after the request: it only clears
/// UNREPLIED (the tracker reads the status before SEEN_REPLY is set); the
/// next packet makes the stream ASSURED.
#[test]
fn udp_late_first_reply_is_not_yet_a_stream() {
    let mut ct = ct();
    forward(&mut ct, &udp(C, 41000, S, 5000, b"abcd"), secs(0.0));
    forward(&mut ct, &udp(S, 5000, C, 41000, b"abcd"), secs(2.5));
    forward(&mut ct, &udp(C, 41000, S, 5000, b"abcd"), secs(2.7));
    let ev = events(&mut ct);
    assert_eq!(ev[1], " [UPDATE] udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=41000 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=41000");
    assert_eq!(ev[2], " [UPDATE] udp      17 120 src=192.0.2.2 dst=198.51.100.2 sport=41000 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=41000 [ASSURED]");
}

/// Reference §1 + udp-icmp.md: one request and one reply, no flags, 30 s.
#[test]
fn udp_single_exchange_stays_unassured() {
    let mut ct = ct();
    forward(&mut ct, &udp(C, 40001, S, 5000, b"abcd"), secs(0.0));
    forward(&mut ct, &udp(S, 5000, C, 40001, b"abcd"), secs(0.1));
    assert_eq!(
        list(&ct, secs(7.0)),
        "udp      17 23 src=192.0.2.2 dst=198.51.100.2 sport=40001 dport=5000 src=198.51.100.2 dst=192.0.2.2 sport=5000 dport=40001 mark=0 use=1\n"
    );
}

/// Lab + reference §5: ping; the entry is not deleted by the reply and
/// expires after 30 s with a DESTROY that has no timeout field.
#[test]
fn icmp_echo_entry_lives_30_seconds() {
    let mut ct = ct();
    let a = forward(&mut ct, &echo(C, S, 8, 7003), secs(0.0));
    assert_eq!(a.state, CtState::New);
    let b = forward(&mut ct, &echo(S, C, 0, 7003), secs(0.1));
    assert_eq!(b.ctinfo, Some(CtInfo::EstablishedReply));
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] icmp     1 30 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003",
            " [UPDATE] icmp     1 30 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003",
        ]
    );
    assert_eq!(
        list(&ct, secs(2.0)),
        "icmp     1 28 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003 mark=0 use=1\n"
    );
    assert_eq!(ct.poll_timeout(), Some(secs(30.1)));
    ct.handle_timeout(secs(30.1));
    assert_eq!(
        events(&mut ct),
        ["[DESTROY] icmp     1 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003"]
    );
    assert_eq!(ct.count(), 0);
}

/// Lab: an echo reply without entry is INVALID (`invalid` +1, no `error`).
#[test]
fn icmp_echo_reply_without_entry_is_invalid() {
    let mut ct = ct();
    let r = forward(&mut ct, &echo(S, C, 0, 7777), secs(0.0));
    assert_eq!((r.state, r.invalid), (CtState::Invalid, Some(ICMP_NOT_NEW)));
    assert_eq!((ct.stats().invalid, ct.stats().error), (1, 0));
    assert_eq!(ct.count(), 0);
}

/// Lab + reference §1 line 6: a UDP datagram to a closed port; the port
/// unreachable is RELATED_REPLY and leaves the entry UNREPLIED at its
/// timeout. An error about no known flow counts as `error`.
#[test]
fn icmp_error_is_related_and_changes_nothing() {
    let mut ct = ct();
    let q = udp(C, 39422, S, 5353, b"q");
    forward(&mut ct, &q, secs(0.0));
    let r = forward(&mut ct, &icmp_error(S, C, 3, 3, &q), secs(0.1));
    assert_eq!(
        (r.state, r.ctinfo),
        (CtState::Related, Some(CtInfo::RelatedReply))
    );
    let unknown = udp(C, 39423, S, 5353, b"q");
    let u = forward(&mut ct, &icmp_error(S, C, 3, 3, &unknown), secs(0.2));
    assert_eq!(
        (u.state, u.invalid),
        (CtState::Invalid, Some(ICMP_NO_MATCH))
    );
    assert_eq!(
        list(&ct, secs(8.0)),
        "udp      17 22 src=192.0.2.2 dst=198.51.100.2 sport=39422 dport=5353 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=5353 dport=39422 mark=0 use=1\n"
    );
    assert_eq!(
        events(&mut ct).len(),
        1,
        "only [NEW]: RELATED packets cache no event"
    );
    assert_eq!(
        ct.stats().conntrack_s(),
        "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=1 search_restart=0 clash_resolve=0 chaintoolong=0 \n"
    );
}

/// Lab: an ICMP error the client sends about the server's packet is RELATED
/// (original direction); one whose outer destination is not the quoted
/// packet's source counts as `error`; a bad UDP checksum and a UDP length
/// beyond the packet count as `invalid` (lab: error=1 invalid=2).
#[test]
fn icmp_error_directions_and_udp_validation() {
    let mut ct = ct();
    forward(&mut ct, &udp(C, 41000, S, 5000, b"abcd"), secs(0.0));
    forward(&mut ct, &udp(S, 5000, C, 41000, b"abcd"), secs(0.1));
    let orig = forward(
        &mut ct,
        &icmp_error(C, S, 3, 3, &udp(S, 5000, C, 41000, b"abcd")),
        secs(0.2),
    );
    assert_eq!(orig.ctinfo, Some(CtInfo::Related));
    let other = std::net::Ipv4Addr::new(192, 0, 2, 99);
    let bad = forward(
        &mut ct,
        &icmp_error(S, other, 3, 3, &udp(C, 41000, S, 5000, b"abcd")),
        secs(0.3),
    );
    assert_eq!(bad.invalid, Some("outer daddr"));
    let mut p = udp(C, 41001, S, 5000, b"abcd");
    p[27] ^= 0x11;
    assert_eq!(
        forward(&mut ct, &p, secs(0.4)).invalid,
        Some("bad checksum")
    );
    let mut p = udp(C, 41002, S, 5000, b"abcd");
    p[25] = 100;
    assert_eq!(
        forward(&mut ct, &p, secs(0.5)).invalid,
        Some("truncated/malformed packet")
    );
    assert_eq!((ct.stats().error, ct.stats().invalid), (1, 2));
    assert_eq!(ct.count(), 1);
}

/// Lab: a lone ACK picked up mid-stream is ESTABLISHED but UNREPLIED with
/// 300 s and its packet is ctstate NEW; the reply only clears UNREPLIED,
/// so the UPDATE carries no state word (no PROTOINFO attribute).
#[test]
fn tcp_loose_pickup_events() {
    let mut ct = ct();
    let a = forward(
        &mut ct,
        &tcp(C, 46000, S, 9999, ACK, 1000, 5000, b""),
        secs(0.0),
    );
    assert_eq!(a.state, CtState::New);
    forward(
        &mut ct,
        &tcp(S, 9999, C, 46000, ACK, 5000, 1000, b""),
        secs(0.1),
    );
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] tcp      6 300 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=46000 dport=9999 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=9999 dport=46000",
            " [UPDATE] tcp      6 300 src=192.0.2.2 dst=198.51.100.2 sport=46000 dport=9999 src=198.51.100.2 dst=192.0.2.2 sport=9999 dport=46000",
        ]
    );
    assert_eq!(
        list(&ct, secs(3.0)),
        "tcp      6 297 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=46000 dport=9999 src=198.51.100.2 dst=192.0.2.2 sport=9999 dport=46000 mark=0 use=1\n"
    );
}

/// Lab (acct and timestamp on): SYN to a closed port, RST+ACK 0.1 s later:
/// NEW then DESTROY at once, in state CLOSE, still UNREPLIED, with the
/// SYN_SENT timeout left, counters and delta-time.
#[test]
fn tcp_refused_connection_is_destroyed_at_once() {
    let mut ct = ct();
    ct.set_sysctl("net.netfilter.nf_conntrack_acct", "1")
        .unwrap();
    ct.set_sysctl("net.netfilter.nf_conntrack_timestamp", "1")
        .unwrap();
    forward(
        &mut ct,
        &tcp(C, 33482, S, 7777, SYN, 100, 0, b""),
        secs(0.95),
    );
    let r = forward(
        &mut ct,
        &tcp(S, 7777, C, 33482, RST | ACK, 0, 101, b""),
        secs(1.05),
    );
    assert_eq!(r.ctinfo, Some(CtInfo::EstablishedReply));
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] tcp      6 120 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=33482 dport=7777 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=7777 dport=33482",
            "[DESTROY] tcp      6 119 CLOSE src=192.0.2.2 dst=198.51.100.2 sport=33482 dport=7777 packets=1 bytes=40 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=7777 dport=33482 packets=1 bytes=40 delta-time=1",
        ]
    );
    assert_eq!(ct.count(), 0);
}

/// Lab (acct and timestamp on): generic protocol 99 one packet each way;
/// the listing 1.5 s later.
#[test]
fn generic_protocol() {
    let mut ct = ct();
    ct.set_sysctl("nf_conntrack_acct", "1").unwrap();
    ct.set_sysctl("nf_conntrack_timestamp", "1").unwrap();
    forward(&mut ct, &ipv4(C, S, 99, b"hello"), secs(0.0));
    forward(&mut ct, &ipv4(S, C, 99, b"hello"), secs(0.1));
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] unknown  99 600 src=192.0.2.2 dst=198.51.100.2 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2",
            " [UPDATE] unknown  99 600 src=192.0.2.2 dst=198.51.100.2 src=198.51.100.2 dst=192.0.2.2",
        ]
    );
    assert_eq!(
        list(&ct, secs(1.5)),
        "unknown  99 598 src=192.0.2.2 dst=198.51.100.2 packets=1 bytes=25 src=198.51.100.2 dst=192.0.2.2 packets=1 bytes=25 mark=0 delta-time=1 use=1\n"
    );
}

/// Lab: CONNMARK --set-mark 7 in mangle FORWARD on the first packet shows
/// in its NEW event; CT --zone 5 in raw shows as zone=5 in events and the
/// listing.
#[test]
fn mark_and_zone() {
    let mut ct = ct();
    ct.set_sysctl("nf_conntrack_udp_timeout", "3").unwrap();
    let now = secs(0.0);
    let r = ct.handle_packet(
        &udp(C, 40010, S, 6000, b"abcd"),
        CtHook::PreRouting,
        Zone(0),
        now,
    );
    let h = r.ct.unwrap();
    ct.set_mark(h.key(), 7);
    let _ = ct.confirm(h, now);
    forward_zone(
        &mut ct,
        &udp(C, 40011, S, 6001, b"abcd"),
        Zone(5),
        secs(0.1),
    );
    forward_zone(
        &mut ct,
        &udp(S, 6001, C, 40011, b"abcdef"),
        Zone(5),
        secs(0.2),
    );
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] udp      17 3 src=192.0.2.2 dst=198.51.100.2 sport=40010 dport=6000 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=6000 dport=40010 mark=7",
            "    [NEW] udp      17 3 src=192.0.2.2 dst=198.51.100.2 sport=40011 dport=6001 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=6001 dport=40011 zone=5",
            " [UPDATE] udp      17 3 src=192.0.2.2 dst=198.51.100.2 sport=40011 dport=6001 src=198.51.100.2 dst=192.0.2.2 sport=6001 dport=40011 zone=5",
        ]
    );
    assert_eq!(
        list(&ct, secs(2.5)),
        "udp      17 0 src=192.0.2.2 dst=198.51.100.2 sport=40010 dport=6000 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=6000 dport=40010 mark=7 use=1\n\
         udp      17 0 src=192.0.2.2 dst=198.51.100.2 sport=40011 dport=6001 src=198.51.100.2 dst=192.0.2.2 sport=6001 dport=40011 mark=0 zone=5 use=1\n"
    );
    // The same tuple in zone 0 is another connection.
    let z0 = forward(&mut ct, &udp(C, 40011, S, 6001, b"abcd"), secs(0.3));
    assert_eq!(z0.state, CtState::New);
    assert_eq!(ct.count(), 3);
}

/// Lab: `conntrack -D -p icmp` prints the entry, the summary, and the
/// DESTROY event carries the remaining timeout and the deleter.
#[test]
fn delete_from_userspace() {
    let mut ct = ct();
    ct.set_userspace_portid(2_735_688_708);
    forward(&mut ct, &echo(C, S, 8, 7003), secs(0.0));
    forward(&mut ct, &echo(S, C, 0, 7003), secs(0.1));
    events(&mut ct);
    let f = Filter {
        proto: Some(1),
        ..Filter::default()
    };
    let lines = ct.delete(&f, FormatOpts::default(), secs(2.0));
    assert_eq!(
        lines,
        ["icmp     1 28 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003 mark=0 use=1"]
    );
    assert_eq!(
        ctsim_conntrack::format::flows_deleted(lines.len()),
        "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n"
    );
    assert_eq!(
        events(&mut ct),
        ["[DESTROY] icmp     1 28 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003 src=198.51.100.2 dst=192.0.2.2 type=0 code=0 id=7003 [USERSPACE] portid=2735688708 progname=conntrack"]
    );
}

/// Lab: -L expect / dying / unconfirmed on an idle table print only the
/// stderr summary (reference §7 says nothing at all; the lab shows the
/// summary with 0); -S expect and -C formats.
#[test]
fn empty_tables_and_counters() {
    let ct = ct();
    let none = Filter::default();
    let o = FormatOpts::default();
    let t = secs(0.0);
    assert_eq!(
        ct.conntrack_l(Table::Expect, &none, o, t),
        (
            String::new(),
            "conntrack v1.4.7 (conntrack-tools): 0 expectations have been shown.\n".to_string()
        )
    );
    for table in [Table::Dying, Table::Unconfirmed] {
        assert_eq!(
            ct.conntrack_l(table, &none, o, t),
            (
                String::new(),
                "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n".to_string()
            )
        );
    }
    assert_eq!(
        ct.stats().conntrack_s_expect(),
        "cpu=0   \texpect_new=0 expect_create=0 expect_delete=0 \n"
    );
    assert_eq!(ct.conntrack_c(), "0\n");
}

/// Reference §5 (tcp-tracking.md §9): a client-initiated connection closed
/// by the client, timeout column = value set, then expiry.
#[test]
fn tcp_handshake_and_close_events() {
    let mut ct = ct();
    let (c, s) = (1000u32, 5000u32);
    let t = |x: f64| secs(x);
    forward(&mut ct, &tcp(C, 34098, S, 8080, SYN, c, 0, b""), t(0.0));
    forward(
        &mut ct,
        &tcp(S, 8080, C, 34098, SYN | ACK, s, c + 1, b""),
        t(0.01),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, ACK, c + 1, s + 1, b""),
        t(0.02),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, FIN | ACK, c + 1, s + 1, b""),
        t(0.03),
    );
    forward(
        &mut ct,
        &tcp(S, 8080, C, 34098, FIN | ACK, s + 1, c + 2, b""),
        t(0.04),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, ACK, c + 2, s + 2, b""),
        t(0.05),
    );
    let flow = "src=192.0.2.2 dst=198.51.100.2 sport=34098 dport=8080 src=198.51.100.2 dst=192.0.2.2 sport=8080 dport=34098";
    assert_eq!(
        events(&mut ct),
        [
            "    [NEW] tcp      6 120 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=34098 dport=8080 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=8080 dport=34098".to_string(),
            format!(" [UPDATE] tcp      6 60 SYN_RECV {flow}"),
            format!(" [UPDATE] tcp      6 432000 ESTABLISHED {flow} [ASSURED]"),
            format!(" [UPDATE] tcp      6 120 FIN_WAIT {flow} [ASSURED]"),
            format!(" [UPDATE] tcp      6 30 LAST_ACK {flow} [ASSURED]"),
            format!(" [UPDATE] tcp      6 120 TIME_WAIT {flow} [ASSURED]"),
        ]
    );
    assert_eq!(
        list(&ct, t(2.0)),
        format!("tcp      6 118 TIME_WAIT {flow} [ASSURED] mark=0 use=1\n")
    );
    ct.handle_timeout(t(120.05));
    assert_eq!(
        events(&mut ct),
        [format!("[DESTROY] tcp      6 TIME_WAIT {flow} [ASSURED]")]
    );
}

/// Reference §5: re-open from TIME_WAIT with the same ports gives DESTROY
/// of the old entry immediately followed by NEW.
#[test]
fn tcp_reopen_from_time_wait() {
    let mut ct = ct();
    let (c, s) = (1000u32, 5000u32);
    forward(&mut ct, &tcp(C, 34098, S, 8080, SYN, c, 0, b""), secs(0.0));
    forward(
        &mut ct,
        &tcp(S, 8080, C, 34098, SYN | ACK, s, c + 1, b""),
        secs(0.01),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, ACK, c + 1, s + 1, b""),
        secs(0.02),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, FIN | ACK, c + 1, s + 1, b""),
        secs(0.03),
    );
    forward(
        &mut ct,
        &tcp(S, 8080, C, 34098, FIN | ACK, s + 1, c + 2, b""),
        secs(0.04),
    );
    forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, ACK, c + 2, s + 2, b""),
        secs(0.05),
    );
    events(&mut ct);
    let r = forward(
        &mut ct,
        &tcp(C, 34098, S, 8080, SYN, c + 100_000, 0, b""),
        secs(1.0),
    );
    assert_eq!(r.state, CtState::New);
    let ev = events(&mut ct);
    assert_eq!(ev.len(), 2);
    assert!(
        ev[0].starts_with("[DESTROY] tcp      6 119 TIME_WAIT "),
        "{}",
        ev[0]
    );
    assert!(
        ev[1].starts_with("    [NEW] tcp      6 120 SYN_SENT "),
        "{}",
        ev[1]
    );
}
