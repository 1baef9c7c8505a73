//! Helpers end to end: a router loop in Linux's hook order (conntrack,
//! follow-master, DNAT, SNAT, helper + seqadj, confirm) running FTP, TFTP
//! and IRC control connections, with and without MASQUERADE. Expected
//! lines are those Linux 6.18 printed for the same exchanges
//! (reference/helpers-and-expectations.md §5–§9, nat.md §6–§7).

mod nat_util;

use ctsim_conntrack::{
    CtInfo, CtState, EntryKey, Filter, FormatOpts, Status, Sysctls, Table, Verdict,
};
use nat_util::{lit, Router};

/// A forwarded packet ([`nat_util::forward_helped`]) with its literal.
struct Step {
    packet: String,
    bytes: Vec<u8>,
    ctinfo: Option<CtInfo>,
    key: Option<EntryKey>,
    verdict: Verdict,
}

/// One forwarded packet through the whole hook chain; `masq` SNATs new
/// connections from the client to N, `helper` is the `CT --helper` of the
/// raw table for new connections to port 21/69/6667.
fn step(rt: &mut Router, text: &str, masq: bool, helper_name: Option<&'static str>) -> Step {
    let s = nat_util::forward_helped(rt, lit(text), masq, &|_| helper_name);
    Step {
        packet: ctsim_packet::show(&s.bytes),
        bytes: s.bytes,
        ctinfo: s.ctinfo,
        key: s.key,
        verdict: s.verdict,
    }
}

fn expect_lines(rt: &Router) -> String {
    rt.ct
        .conntrack_l(
            Table::Expect,
            &Filter::default(),
            FormatOpts::default(),
            rt.now,
        )
        .0
}

const SYN: &str = "tcp 192.0.2.2:35006 > 198.51.100.2:21 S seq=1000 win=64240";
const SYNACK: &str = "tcp 198.51.100.2:21 > 192.0.2.2:35006 S. seq=5000 ack=1001 win=65160";
const ACK: &str = "tcp 192.0.2.2:35006 > 198.51.100.2:21 . seq=1001 ack=5001 win=502";

/// A server→client literal: to the client's NAT address when masq.
fn srv(text: &str, masq: bool) -> String {
    if masq {
        text.replace("> 192.0.2.2:", "> 198.51.100.1:")
    } else {
        text.to_string()
    }
}

/// Handshake, the server's banner and the client's USER: the first data
/// segment of each direction (never parsed) is behind us. Client seq 1017,
/// server seq 5012 afterwards. `helper` is the CT template's.
fn ftp_login_with(rt: &mut Router, masq: bool, helper_name: Option<&'static str>) {
    step(rt, SYN, masq, helper_name);
    step(rt, &srv(SYNACK, masq), masq, None);
    step(rt, ACK, masq, None);
    let banner = "tcp 198.51.100.2:21 > 192.0.2.2:35006 P. seq=5001 ack=1001 win=509 payload=\"220 ready\\r\\n\"";
    step(rt, &srv(banner, masq), masq, None);
    step(rt, "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1001 ack=5012 win=502 payload=\"USER anonymous\\r\\n\"", masq, None);
}

fn ftp_login(rt: &mut Router, masq: bool) {
    ftp_login_with(rt, masq, Some("ftp"));
}

#[test]
fn active_ftp_port_makes_the_data_connection_related() {
    let mut rt = Router::new();
    ftp_login(&mut rt, false);
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2,2,117,48\\r\\n\"",
        false,
        None,
    );
    assert_eq!(s.verdict, Verdict::Accept);
    // The PORT's expectation: from the server (any port) to the client's
    // port 30000 (conntrack-tool-formats.md §6 shape, Linux 6.18).
    assert_eq!(
        expect_lines(&rt),
        "300 proto=6 src=198.51.100.2 dst=192.0.2.2 sport=0 dport=30000 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
         sport=35006 dport=21 class=0 helper=ftp\n"
    );
    // The server's data connection from port 20 is RELATED at its first
    // packet and takes the expectation away.
    let d = step(
        &mut rt,
        "tcp 198.51.100.2:20 > 192.0.2.2:30000 S seq=9000 win=64240",
        false,
        None,
    );
    assert_eq!(d.ctinfo.unwrap().state(), CtState::Related);
    assert_eq!(rt.ct.expect_count(), 0);
    let child = rt.ct.get(d.key.unwrap()).unwrap();
    assert!(child.status().contains(Status::EXPECTED));
    assert_eq!(rt.ct.master_of(d.key.unwrap()), s.key);
}

#[test]
fn first_segment_of_a_direction_is_not_parsed() {
    // Checked on Linux 6.18: a PORT sent as the client's first segment
    // created no expectation and was not rewritten.
    let mut rt = Router::new();
    for t in [SYN, SYNACK, ACK] {
        step(&mut rt, t, false, Some("ftp"));
    }
    step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1001 ack=5001 win=502 payload=\"PORT 192,0,2,2,117,48\\r\\n\"",
        false,
        None,
    );
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn split_port_command_is_dropped_then_parsed_whole() {
    let mut rt = Router::new();
    ftp_login(&mut rt, false);
    // "PORT 192,0,2" alone: partial match, the helper drops it.
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2\"",
        false,
        None,
    );
    assert_eq!(
        s.verdict,
        Verdict::Drop {
            reason: "partial matching of `PORT'"
        }
    );
    assert_eq!(rt.ct.expect_count(), 0);
    // The retransmission carrying the whole line is parsed.
    step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2,2,117,48\\r\\n\"",
        false,
        None,
    );
    assert_eq!(rt.ct.expect_count(), 1);
    // A segment that does not start a line is not looked at (no drop).
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1100 ack=5012 win=502 payload=\"PORT 1,2\"",
        false,
        None,
    );
    assert_eq!(s.verdict, Verdict::Accept);
}

#[test]
fn pasv_and_epsv_replies_expect_the_client() {
    let mut rt = Router::new();
    ftp_login(&mut rt, true);
    // Server seq 5012 after the banner.
    step(
        &mut rt,
        "tcp 198.51.100.2:21 > 198.51.100.1:35006 P. seq=5012 ack=1017 win=509 payload=\"227 Entering Passive Mode (198,51,100,2,117,48).\\r\\n\"",
        true,
        None,
    );
    // Linux 6.18 with the client MASQUERADEd: the expectation keeps the
    // private client address (helpers-and-expectations.md §5).
    assert_eq!(
        expect_lines(&rt),
        "300 proto=6 src=192.0.2.2 dst=198.51.100.2 sport=0 dport=30000 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
         sport=35006 dport=21 class=0 helper=ftp\n"
    );
    step(
        &mut rt,
        "tcp 198.51.100.2:21 > 198.51.100.1:35006 P. seq=5062 ack=1017 win=509 payload=\"229 Entering Extended Passive Mode (|||30001|)\\r\\n\"",
        true,
        None,
    );
    // max_expected 1: the EPSV replaced the PASV expectation.
    let lines = expect_lines(&rt);
    assert_eq!(lines.lines().count(), 1);
    assert!(
        lines.contains("src=192.0.2.2 dst=198.51.100.2 sport=0 dport=30001 "),
        "{lines}"
    );
    // The client's data connection is RELATED and SNATed like its master.
    let d = step(
        &mut rt,
        "tcp 192.0.2.2:40000 > 198.51.100.2:30001 S seq=1 win=64240",
        true,
        None,
    );
    assert_eq!(d.ctinfo, Some(CtInfo::Related));
    assert_eq!(
        d.packet,
        "tcp 198.51.100.1:40000 > 198.51.100.2:30001 S seq=1 win=64240"
    );
}

#[test]
fn port_through_masquerade_is_rewritten_and_sequence_adjusted() {
    let mut rt = Router::new();
    ftp_login(&mut rt, true);
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2,2,195,80\\r\\n\"",
        true,
        None,
    );
    // Linux 6.18: the server received `PORT 198,51,100,1,195,80`.
    assert_eq!(
        s.packet,
        "tcp 198.51.100.1:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 198,51,100,1,195,80\\r\\n\""
    );
    let key = s.key.unwrap();
    assert!(rt
        .ct
        .get(key)
        .unwrap()
        .status()
        .contains(Status::SEQ_ADJUST));
    assert_eq!(
        expect_lines(&rt),
        "300 proto=6 src=198.51.100.2 dst=198.51.100.1 sport=0 dport=50000 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
         sport=35006 dport=21 class=0 helper=ftp\n"
    );
    // The server acknowledges the 26 bytes it got (1017 + 26 = 1043): the
    // tracker accepts it and the client sees 1040, what it sent.
    let a = step(&mut rt, "tcp 198.51.100.2:21 > 198.51.100.1:35006 P. seq=5012 ack=1043 win=509 payload=\"200 PORT command successful.\\r\\n\"", true, None);
    assert_eq!(a.verdict, Verdict::Accept);
    assert_eq!(a.ctinfo, Some(CtInfo::EstablishedReply));
    assert!(a.packet.contains("ack=1040 "), "{}", a.packet);
    // The client's next segment (seq 1040) leaves as 1043.
    let n = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1040 ack=5042 win=502 payload=\"LIST\\r\\n\"",
        true,
        None,
    );
    assert!(n.packet.contains("seq=1043 "), "{}", n.packet);
    // The active data connection from port 20 is RELATED and DNATed back
    // to the client (Linux 6.18: `src=198.51.100.2 dst=198.51.100.1
    // sport=20 dport=50000 src=192.0.2.2 dst=198.51.100.2 sport=50000
    // dport=20`).
    let d = step(
        &mut rt,
        "tcp 198.51.100.2:20 > 198.51.100.1:50000 S seq=9000 win=64240",
        true,
        None,
    );
    assert_eq!(d.ctinfo, Some(CtInfo::Related));
    assert_eq!(
        d.packet,
        "tcp 198.51.100.2:20 > 192.0.2.2:50000 S seq=9000 win=64240"
    );
    let line = rt.line(d.key.unwrap());
    assert!(
        line.contains("src=198.51.100.2 dst=198.51.100.1 sport=20 dport=50000 [UNREPLIED] src=192.0.2.2 dst=198.51.100.2 sport=50000 dport=20"),
        "{line}"
    );
}

#[test]
fn eprt_through_masquerade() {
    let mut rt = Router::new();
    ftp_login(&mut rt, true);
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"EPRT |1|192.0.2.2|50002|\\r\\n\"",
        true,
        None,
    );
    // Linux 6.18: `EPRT |1|198.51.100.1|50002|`.
    assert!(
        s.packet
            .ends_with("payload=\"EPRT |1|198.51.100.1|50002|\\r\\n\""),
        "{}",
        s.packet
    );
    assert!(expect_lines(&rt)
        .starts_with("300 proto=6 src=198.51.100.2 dst=198.51.100.1 sport=0 dport=50002 "));
}

#[test]
fn port_naming_another_host_opens_nothing() {
    let mut rt = Router::new();
    ftp_login(&mut rt, false);
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 203,0,113,9,117,48\\r\\n\"",
        false,
        None,
    );
    assert_eq!(s.verdict, Verdict::Accept);
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn no_helper_no_expectation() {
    let mut rt = Router::new();
    for t in [SYN, SYNACK, ACK] {
        step(&mut rt, t, false, None);
    }
    step(&mut rt, "tcp 198.51.100.2:21 > 192.0.2.2:35006 P. seq=5001 ack=1001 win=509 payload=\"220 ready\\r\\n\"", false, None);
    step(&mut rt, "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1001 ack=5012 win=502 payload=\"USER anonymous\\r\\n\"", false, None);
    step(&mut rt, "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2,2,117,48\\r\\n\"", false, None);
    assert_eq!(rt.ct.expect_count(), 0);
    let d = step(
        &mut rt,
        "tcp 198.51.100.2:20 > 192.0.2.2:30000 S seq=9000 win=64240",
        false,
        None,
    );
    assert_eq!(d.ctinfo, Some(CtInfo::New));
}

#[test]
fn automatic_assignment_with_the_teaching_sysctl() {
    let mut sys = Sysctls::default();
    sys.set("net.netfilter.nf_conntrack_helper", "1").unwrap();
    let mut rt = Router::with(sys, 1);
    ftp_login_with(&mut rt, false, None);
    let syn_key = rt.ct.keys(Table::Conntrack, rt.now)[0];
    let e = rt.ct.get(syn_key).unwrap();
    assert_eq!(e.helper(), Some("ftp"));
    // Assigned by port, not by a template: no IPS_HELPER.
    assert!(!e.status().contains(Status::HELPER));
    step(&mut rt, "tcp 192.0.2.2:35006 > 198.51.100.2:21 P. seq=1017 ack=5012 win=502 payload=\"PORT 192,0,2,2,117,48\\r\\n\"", false, None);
    assert_eq!(rt.ct.expect_count(), 1);
}

#[test]
fn tftp_read_request_through_masquerade() {
    let mut rt = Router::new();
    step(
        &mut rt,
        "udp 192.0.2.2:41000 > 198.51.100.2:69 payload=\"\\x00\\x01hello.txt\\x00octet\\x00\"",
        true,
        Some("tftp"),
    );
    // Linux 6.18 (helpers-and-expectations.md §6).
    assert_eq!(
        expect_lines(&rt),
        "300 proto=17 src=198.51.100.2 dst=198.51.100.1 sport=0 dport=41000 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
         sport=41000 dport=69 class=0 helper=tftp\n"
    );
    let d = step(
        &mut rt,
        "udp 198.51.100.2:40069 > 198.51.100.1:41000 payload=\"\\x00\\x03\\x00\\x01hi\"",
        true,
        None,
    );
    assert_eq!(d.ctinfo, Some(CtInfo::Related));
    assert_eq!(
        d.packet,
        "udp 198.51.100.2:40069 > 192.0.2.2:41000 hex=000300016869"
    );
    let line = rt.line(d.key.unwrap());
    assert!(line.contains("src=198.51.100.2 dst=198.51.100.1 sport=40069 dport=41000 [UNREPLIED] src=192.0.2.2 dst=198.51.100.2 sport=41000 dport=40069"), "{line}");
}

#[test]
fn irc_dcc_through_masquerade() {
    let mut rt = Router::new();
    let syn = "tcp 192.0.2.2:45000 > 198.51.100.2:6667 S seq=100 win=64240";
    step(&mut rt, syn, true, Some("irc"));
    step(
        &mut rt,
        "tcp 198.51.100.2:6667 > 198.51.100.1:45000 S. seq=700 ack=101 win=65160",
        true,
        None,
    );
    step(
        &mut rt,
        "tcp 192.0.2.2:45000 > 198.51.100.2:6667 . seq=101 ack=701 win=502",
        true,
        None,
    );
    let s = step(
        &mut rt,
        "tcp 192.0.2.2:45000 > 198.51.100.2:6667 P. seq=101 ack=701 win=502 payload=\"PRIVMSG bob :\\x01DCC SEND notes.txt 3221225986 5000 1234\\x01\\r\\n\"",
        true,
        None,
    );
    // 198.51.100.1 = 3325256705.
    let text = String::from_utf8_lossy(&s.bytes);
    assert!(
        text.contains("\x01DCC SEND notes.txt 3325256705 5000 1234\x01\r\n"),
        "{text}"
    );
    assert!(expect_lines(&rt).starts_with(
        "300 proto=6 src=0.0.0.0 dst=198.51.100.1 sport=0 dport=5000 mask-src=0.0.0.0 "
    ));
    let d = step(
        &mut rt,
        "tcp 203.0.113.7:51000 > 198.51.100.1:5000 S seq=1 win=64240",
        true,
        None,
    );
    assert_eq!(d.ctinfo, Some(CtInfo::Related));
    // nf_nat_follow_master() also SNATs it to "where master sends to",
    // the IRC server (exp->dir is REPLY for IRC): the client sees the DCC
    // peer as the server. Read from nf_nat_irc.c/nf_nat_helper.c; not yet
    // checked on a kernel.
    assert_eq!(
        d.packet,
        "tcp 198.51.100.2:51000 > 192.0.2.2:5000 S seq=1 win=64240"
    );
}

#[test]
fn fast_path_without_helper_leaves_packets_alone() {
    let mut rt = Router::new();
    let s = step(&mut rt, SYN, true, None);
    assert_eq!(
        s.packet,
        "tcp 198.51.100.1:35006 > 198.51.100.2:21 S seq=1000 win=64240"
    );
    assert!(rt.ct.help_ext(s.key.unwrap()).is_none());
}
