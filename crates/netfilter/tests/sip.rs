//! The SIP helper end to end, through the same router loop as
//! `helpers.rs` (conntrack, follow-master, DNAT, SNAT, helper + seqadj,
//! confirm). The messages are RFC 3261 §24.2 / RFC 4566 style INVITE and
//! 200 OK (as RFC 3665 §3.1 shows them) and an RFC 3665 §2.1 REGISTER,
//! with the documentation addresses. Every expected line, rewritten
//! header and entry below was printed by Linux 6.18 (conntrack v1.4.7)
//! for the same datagrams: client 192.0.2.2 behind router 192.0.2.1 /
//! 198.51.100.1, server 198.51.100.2, `iptables -t raw -A PREROUTING -p
//! udp --dport 5060 -j CT --helper sip`, with and without `-t nat -A
//! POSTROUTING -o <wan> -j MASQUERADE`. (Linux lists expectations in hash
//! order; ctsim in creation order, so lists are compared as sets.)

mod nat_util;

use ctsim_conntrack::time::Duration;
use ctsim_conntrack::{CtInfo, Filter, FormatOpts, Status, Table, Verdict};
use nat_util::{lit, Router, Step, N};

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// A UDP datagram `src > dst` carrying `payload`.
fn udp(src: &str, dst: &str, payload: &str) -> Vec<u8> {
    lit(&format!(
        "udp {src} > {dst} payload=\"{}\"",
        escape(payload)
    ))
}

/// A SIP message from header lines and SDP lines, CRLF-ended, with its
/// Content-Length (the kernel runs' messages were built the same way).
fn sip(head: &str, body: &str) -> String {
    let body: String = body.lines().map(|l| format!("{l}\r\n")).collect();
    let mut s: String = head.lines().map(|l| format!("{l}\r\n")).collect();
    s += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    s
}

/// One forwarded datagram; `masq` SNATs new connections from the client
/// to N; new connections to port 5060 get `CT --helper sip`.
fn step(rt: &mut Router, pkt: Vec<u8>, masq: bool) -> Step {
    nat_util::forward_helped(rt, pkt, masq, &|orig| (orig.dst_u == 5060).then_some("sip"))
}

/// The UDP payload of a datagram, as text.
fn payload(pkt: &[u8]) -> String {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let ulen = usize::from(u16::from_be_bytes([pkt[ihl + 4], pkt[ihl + 5]]));
    assert_eq!(ulen, pkt.len() - ihl, "UDP length");
    String::from_utf8_lossy(&pkt[ihl + 8..]).into_owned()
}

fn expect_lines(rt: &Router) -> Vec<String> {
    let (text, _) = rt.ct.conntrack_l(
        Table::Expect,
        &Filter::default(),
        FormatOpts::default(),
        rt.now,
    );
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    v.sort();
    v
}

const INVITE_HEAD: &str = "INVITE sip:bob@198.51.100.2 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@198.51.100.2>
From: Alice <sip:alice@192.0.2.2>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.2
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.2>
Content-Type: application/sdp";

const INVITE_SDP: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.2
s=-
c=IN IP4 192.0.2.2
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000";

/// The callee's 200 OK; `via` is the client address the server saw.
fn ok_head(via: &str) -> String {
    format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/UDP {via}:5060;branch=z9hG4bKnashds8;received={via}
To: Bob <sip:bob@198.51.100.2>;tag=a6c85cf
From: Alice <sip:alice@{via}>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.2
CSeq: 314159 INVITE
Contact: <sip:bob@198.51.100.2>
Content-Type: application/sdp"
    )
}

const OK_SDP: &str = "v=0
o=bob 2808844564 2808844564 IN IP4 198.51.100.2
s=-
c=IN IP4 198.51.100.2
t=0 0
m=audio 3456 RTP/AVP 0
a=rtpmap:0 PCMU/8000";

const BYE_HEAD: &str = "BYE sip:bob@198.51.100.2 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKnashds9
Max-Forwards: 70
From: Alice <sip:alice@192.0.2.2>;tag=1928301774
To: Bob <sip:bob@198.51.100.2>;tag=a6c85cf
Call-ID: a84b4c76e66710@192.0.2.2
CSeq: 314160 BYE";

const MASTER: &str = "master-src=192.0.2.2 master-dst=198.51.100.2 sport=5060 dport=5060";

fn media(src: &str, dst: &str, dport: u16) -> String {
    format!(
        "180 proto=17 src={src} dst={dst} sport=0 dport={dport} mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 {MASTER} class=1 helper=sip"
    )
}

/// INVITE with SDP, then the 200 OK with SDP.
fn call(rt: &mut Router, masq: bool) -> (Step, Step) {
    let inv = step(
        rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(INVITE_HEAD, INVITE_SDP),
        ),
        masq,
    );
    let ca = if masq { "198.51.100.1" } else { "192.0.2.2" };
    let ok = step(
        rt,
        udp(
            "198.51.100.2:5060",
            &format!("{ca}:5060"),
            &sip(&ok_head(ca), OK_SDP),
        ),
        masq,
    );
    (inv, ok)
}

#[test]
fn invite_and_ok_expect_rtp_and_rtcp_both_ways() {
    let mut rt = Router::new();
    let (inv, ok) = call(&mut rt, false);
    assert_eq!(inv.verdict, Verdict::Accept);
    assert_eq!(ok.verdict, Verdict::Accept);
    // Nothing rewritten without NAT.
    assert_eq!(payload(&inv.bytes), sip(INVITE_HEAD, INVITE_SDP));
    // Linux 6.18: four audio expectations, the media of each side from
    // the other side's signalling address only (sip_direct_media).
    assert_eq!(
        expect_lines(&rt),
        sorted(&[
            &media("198.51.100.2", "192.0.2.2", 49170),
            &media("198.51.100.2", "192.0.2.2", 49171),
            &media("192.0.2.2", "198.51.100.2", 3456),
            &media("192.0.2.2", "198.51.100.2", 3457),
        ])
    );
    // The signalling entry's timeout is sip_timeout (Linux showed 3599 a
    // moment later).
    let key = inv.key.unwrap();
    let line = rt.line(key);
    assert!(
        line.starts_with(
            "udp      17 3600 src=192.0.2.2 dst=198.51.100.2 sport=5060 dport=5060 \
             src=198.51.100.2 dst=192.0.2.2 sport=5060 dport=5060 "
        ) && line.contains(" helper=sip"),
        "{line}"
    );
    assert_eq!(rt.ct.sip_state(key).unwrap().invite_cseq, 314159);

    // The callee's RTP to 49170 is RELATED; the expectation is used up.
    rt.now = rt.now + Duration::from_secs(1);
    let rtp = step(
        &mut rt,
        lit("udp 198.51.100.2:3456 > 192.0.2.2:49170 payload=\"rtp\""),
        false,
    );
    assert_eq!(rtp.ctinfo, Some(CtInfo::Related));
    assert_eq!(rt.ct.master_of(rtp.key.unwrap()), Some(key));
    assert_eq!(rt.ct.expect_count(), 3);
    // Linux: `udp 17 29 src=198.51.100.2 dst=192.0.2.2 sport=3456
    // dport=49170 src=192.0.2.2 dst=198.51.100.2 sport=49170 dport=3456`
    // once the client answered.
    let back = step(
        &mut rt,
        lit("udp 192.0.2.2:49170 > 198.51.100.2:3456 payload=\"rtp\""),
        false,
    );
    assert_eq!(back.ctinfo, Some(CtInfo::EstablishedReply));

    // BYE removes the call's media expectations.
    let bye = step(
        &mut rt,
        udp("192.0.2.2:5060", "198.51.100.2:5060", &sip(BYE_HEAD, "")),
        false,
    );
    assert_eq!(bye.verdict, Verdict::Accept);
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn masquerade_rewrites_sip_and_sdp_as_linux() {
    let mut rt = Router::new();
    let (inv, ok) = call(&mut rt, true);
    assert_eq!(inv.verdict, Verdict::Accept);
    // What the server received from Linux 6.18 (491 bytes).
    let got = payload(&inv.bytes);
    assert_eq!(
        got,
        "INVITE sip:bob@198.51.100.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKnashds8\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@198.51.100.2>\r\n\
         From: Alice <sip:alice@198.51.100.1:5060>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@192.0.2.2\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:alice@198.51.100.1:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 138\r\n\
         \r\n\
         v=0\r\n\
         o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n\
         s=-\r\n\
         c=IN IP4 198.51.100.1\r\n\
         t=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n"
    );
    assert_eq!(got.len(), 491);
    assert_eq!(
        ctsim_packet::show(&inv.bytes)
            .split(" payload")
            .next()
            .unwrap(),
        "udp 198.51.100.1:5060 > 198.51.100.2:5060"
    );
    // What the client received (467 bytes): the server's Via, received=
    // and From name the NAT address; they are mapped back.
    let back = payload(&ok.bytes);
    assert_eq!(
        back,
        sip(
            &ok_head("192.0.2.2").replace("alice@192.0.2.2>", "alice@192.0.2.2:5060>"),
            OK_SDP
        )
    );
    assert_eq!(back.len(), 467);
    // Linux 6.18's expectations: the client's media at the NAT address.
    assert_eq!(
        expect_lines(&rt),
        sorted(&[
            &media("198.51.100.2", "198.51.100.1", 49170),
            &media("198.51.100.2", "198.51.100.1", 49171),
            &media("192.0.2.2", "198.51.100.2", 3456),
            &media("192.0.2.2", "198.51.100.2", 3457),
        ])
    );
    let line = rt.line(inv.key.unwrap());
    assert!(
        line.contains("src=192.0.2.2 dst=198.51.100.2 sport=5060 dport=5060 src=198.51.100.2 dst=198.51.100.1 sport=5060 dport=5060"),
        "{line}"
    );

    // The BYE (286 bytes at the server): Via and From rewritten, the
    // Request-URI (the server's address) untouched.
    let bye = step(
        &mut rt,
        udp("192.0.2.2:5060", "198.51.100.2:5060", &sip(BYE_HEAD, "")),
        true,
    );
    let got = payload(&bye.bytes);
    assert_eq!(
        got,
        sip(
            &BYE_HEAD
                .replace("UDP 192.0.2.2:5060", "UDP 198.51.100.1:5060")
                .replace("alice@192.0.2.2>", "alice@198.51.100.1:5060>"),
            ""
        )
    );
    assert_eq!(got.len(), 286);
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn callee_media_through_masquerade_reaches_the_client() {
    let mut rt = Router::new();
    call(&mut rt, true);
    // Linux 6.18: `src=198.51.100.2 dst=198.51.100.1 sport=3456
    // dport=49170 src=192.0.2.2 dst=198.51.100.2 sport=49170 dport=3456`.
    let rtp = step(
        &mut rt,
        lit("udp 198.51.100.2:3456 > 198.51.100.1:49170 payload=\"rtp\""),
        true,
    );
    assert_eq!(rtp.ctinfo, Some(CtInfo::Related));
    assert_eq!(
        ctsim_packet::show(&rtp.bytes),
        "udp 198.51.100.2:3456 > 192.0.2.2:49170 payload=\"rtp\""
    );
    let line = rt.line(rtp.key.unwrap());
    assert!(
        line.contains("src=198.51.100.2 dst=198.51.100.1 sport=3456 dport=49170 [UNREPLIED] src=192.0.2.2 dst=198.51.100.2 sport=49170 dport=3456"),
        "{line}"
    );
}

#[test]
fn caller_media_first_leaves_from_the_port_it_announced() {
    let mut rt = Router::new();
    call(&mut rt, true);
    // The client's RTP to the callee's 3456 matches that expectation;
    // nf_nat_sip_expected() finds the paired expectation (saved
    // 192.0.2.2:49170) and SNATs to 198.51.100.1:49170. Linux 6.18:
    // `src=192.0.2.2 dst=198.51.100.2 sport=49170 dport=3456 [UNREPLIED]
    // src=198.51.100.2 dst=198.51.100.1 sport=3456 dport=49170`.
    let rtp = step(
        &mut rt,
        lit("udp 192.0.2.2:49170 > 198.51.100.2:3456 payload=\"rtp\""),
        true,
    );
    assert_eq!(rtp.ctinfo, Some(CtInfo::Related));
    let line = rt.line(rtp.key.unwrap());
    assert!(
        line.contains("src=192.0.2.2 dst=198.51.100.2 sport=49170 dport=3456 [UNREPLIED] src=198.51.100.2 dst=198.51.100.1 sport=3456 dport=49170"),
        "{line}"
    );
    assert_eq!(
        ctsim_packet::show(&rtp.bytes),
        "udp 198.51.100.1:49170 > 198.51.100.2:3456 payload=\"rtp\""
    );
    let left = expect_lines(&rt);
    assert_eq!(left.len(), 3);
    assert!(!left.iter().any(|l| l.contains("dport=3456 ")), "{left:?}");
}

const REGISTER_HEAD: &str = "REGISTER sip:198.51.100.2 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Alice <sip:alice@198.51.100.2>
From: Alice <sip:alice@198.51.100.2>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:alice@192.0.2.2>
Expires: 7200";

fn register_ok(via: &str) -> String {
    format!(
        "SIP/2.0 200 OK
Via: SIP/2.0/UDP {via}:5060;branch=z9hG4bKnashds7;received={via}
To: Alice <sip:alice@198.51.100.2>;tag=2493k59kd
From: Alice <sip:alice@198.51.100.2>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:alice@{via}>
Expires: 3600"
    )
}

fn signalling(dst: &str, secs: u64, flags: &str) -> String {
    format!(
        "{secs} proto=17 src=198.51.100.2 dst={dst} sport=0 dport=5060 mask-src=255.255.255.255 \
         mask-dst=255.255.255.255 sport=0 dport=65535 {MASTER} {flags}class=0 helper=sip"
    )
}

fn registration(masq: bool) {
    let mut rt = Router::new();
    let ca = if masq { "198.51.100.1" } else { "192.0.2.2" };
    let reg = step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(REGISTER_HEAD, ""),
        ),
        masq,
    );
    assert_eq!(reg.verdict, Verdict::Accept);
    // Linux 6.18: inactive until the registrar accepts, 180 s (the
    // signalling policy), incoming requests from the registrar only.
    assert_eq!(
        expect_lines(&rt),
        vec![signalling(ca, 180, "PERMANENT,INACTIVE ")]
    );
    if masq {
        // The registrar was told the NAT address (331 bytes).
        let got = payload(&reg.bytes);
        assert!(
            got.contains("\r\nContact: <sip:alice@198.51.100.1:5060>\r\n"),
            "{got}"
        );
        assert!(
            got.contains("\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch"),
            "{got}"
        );
        assert_eq!(got.len(), 331);
    }
    // An incoming call cannot use it yet.
    rt.now = rt.now + Duration::from_secs(1);
    let ok = step(
        &mut rt,
        udp(
            "198.51.100.2:5060",
            &format!("{ca}:5060"),
            &sip(&register_ok(ca), ""),
        ),
        masq,
    );
    assert_eq!(ok.verdict, Verdict::Accept);
    if masq {
        let got = payload(&ok.bytes);
        assert!(
            got.contains("\r\nContact: <sip:alice@192.0.2.2:5060>\r\n"),
            "{got}"
        );
        assert_eq!(got.len(), 321);
    }
    // The 200 OK's Expires: 3600 restarts it, active.
    assert_eq!(expect_lines(&rt), vec![signalling(ca, 3600, "PERMANENT ")]);

    // The registrar's INVITE from another port is RELATED, gets the sip
    // helper, and its SDP expects media in turn (Linux 6.18: two audio
    // expectations with master-src=198.51.100.2 master-dst=<client>
    // sport=5070 dport=5060).
    let invite = sip(
        &format!(
            "INVITE sip:alice@{ca} SIP/2.0
Via: SIP/2.0/UDP 198.51.100.2:5070;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Alice <sip:alice@{ca}>
From: Bob <sip:bob@198.51.100.2>;tag=1928301774
Call-ID: b84b4c76e66710@198.51.100.2
CSeq: 1 INVITE
Contact: <sip:bob@198.51.100.2:5070>
Content-Type: application/sdp"
        ),
        OK_SDP,
    );
    let inc = step(
        &mut rt,
        udp("198.51.100.2:5070", &format!("{ca}:5060"), &invite),
        masq,
    );
    assert_eq!(inc.ctinfo, Some(CtInfo::Related));
    let key = inc.key.unwrap();
    let e = rt.ct.get(key).unwrap();
    assert_eq!(e.helper(), Some("sip"));
    assert!(e.status().contains(Status::EXPECTED));
    let line = rt.line(key);
    let want = format!(
        "udp      17 3600 src=198.51.100.2 dst={ca} sport=5070 dport=5060 [UNREPLIED] \
         src=192.0.2.2 dst=198.51.100.2 sport=5060 dport=5070 "
    );
    assert!(line.starts_with(&want), "{line}");
    if masq {
        // Linux 6.18: `INVITE sip:alice@192.0.2.2:5060`, `To: Alice
        // <sip:alice@192.0.2.2:5060>` (487 bytes).
        let got = payload(&inc.bytes);
        assert!(
            got.starts_with("INVITE sip:alice@192.0.2.2:5060 SIP/2.0\r\n"),
            "{got}"
        );
        assert!(
            got.contains("\r\nTo: Alice <sip:alice@192.0.2.2:5060>\r\n"),
            "{got}"
        );
        assert_eq!(got.len(), 487);
    }
    let lines = expect_lines(&rt);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let child_master = format!("master-src=198.51.100.2 master-dst={ca} sport=5070 dport=5060");
    for port in [3456, 3457] {
        let l = format!(
            "180 proto=17 src=192.0.2.2 dst=198.51.100.2 sport=0 dport={port} mask-src=255.255.255.255 \
             mask-dst=255.255.255.255 sport=0 dport=65535 {child_master} class=1 helper=sip"
        );
        assert!(lines.contains(&l), "{lines:?}");
    }
    // PERMANENT: still there.
    assert!(lines.iter().any(|l| l.contains("PERMANENT class=0")));
}

#[test]
fn register_expects_incoming_calls() {
    registration(false);
}

#[test]
fn register_through_masquerade() {
    registration(true);
}

#[test]
fn error_response_flushes_the_invites_media() {
    let mut rt = Router::new();
    step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(INVITE_HEAD, INVITE_SDP),
        ),
        false,
    );
    assert_eq!(rt.ct.expect_count(), 2);
    let busy = "SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKnashds8
To: Bob <sip:bob@198.51.100.2>;tag=a6c85cf
From: Alice <sip:alice@192.0.2.2>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.2
CSeq: 314159 INVITE";
    step(
        &mut rt,
        udp("198.51.100.2:5060", "192.0.2.2:5060", &sip(busy, "")),
        false,
    );
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn malformed_messages_create_nothing_and_never_panic() {
    let whole = sip(INVITE_HEAD, INVITE_SDP);
    // Every truncation of the INVITE: no panic, and an expectation only
    // for what the m= line says so far. Over UDP Linux does not check
    // Content-Length, so a datagram cut inside "49170" expects the port
    // its digits give (4917 becomes the pair 4916/4917); under 1024 it
    // drops ("wrong port").
    for n in 0..whole.len() {
        let mut rt = Router::new();
        let t = &whole[..n];
        let s = step(
            &mut rt,
            udp("192.0.2.2:5060", "198.51.100.2:5060", t),
            false,
        );
        let port: u32 = t
            .split("m=audio ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let mut got: Vec<u16> = rt.ct.expectations().iter().map(|x| x.tuple.dst_u).collect();
        got.sort_unstable();
        match port {
            0 => assert!(got.is_empty(), "{t:?}"),
            1..=1023 => {
                assert_eq!(
                    s.verdict,
                    Verdict::Drop {
                        reason: "wrong port"
                    }
                );
                assert!(got.is_empty());
            }
            p => {
                let base = (p as u16) & !1;
                assert_eq!(got, vec![base, base + 1], "{t:?}");
            }
        }
    }
    // Bad port, bad CSeq, no code: dropped with Linux's reasons.
    let mut rt = Router::new();
    let s = step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(INVITE_HEAD, &INVITE_SDP.replace("49170", "80")),
        ),
        false,
    );
    assert_eq!(
        s.verdict,
        Verdict::Drop {
            reason: "wrong port"
        }
    );
    let s = step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(&INVITE_HEAD.replace("CSeq: 314159", "CSeq: x"), ""),
        ),
        false,
    );
    assert_eq!(
        s.verdict,
        Verdict::Drop {
            reason: "cannot parse cseq"
        }
    );
    let s = step(
        &mut rt,
        udp(
            "198.51.100.2:5060",
            "192.0.2.2:5060",
            "SIP/2.0 abc OK\r\n\r\n",
        ),
        false,
    );
    assert_eq!(
        s.verdict,
        Verdict::Drop {
            reason: "cannot get code"
        }
    );
    // SDP without any c= line: "cannot parse SDP message".
    let s = step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(INVITE_HEAD, &INVITE_SDP.replace("c=IN IP4 192.0.2.2\n", "")),
        ),
        false,
    );
    assert_eq!(
        s.verdict,
        Verdict::Drop {
            reason: "cannot parse SDP message"
        }
    );
    assert_eq!(rt.ct.expect_count(), 0);
    // Media at an address the sender does not own: nothing (direct_media).
    let s = step(
        &mut rt,
        udp(
            "192.0.2.2:5060",
            "198.51.100.2:5060",
            &sip(
                INVITE_HEAD,
                &INVITE_SDP.replace("c=IN IP4 192.0.2.2", "c=IN IP4 203.0.113.9"),
            ),
        ),
        false,
    );
    assert_eq!(s.verdict, Verdict::Accept);
    assert_eq!(rt.ct.expect_count(), 0);
}

#[test]
fn sip_over_tcp_rewrites_and_adjusts_sequence_numbers() {
    let mut rt = Router::new();
    let syn = "tcp 192.0.2.2:40000 > 198.51.100.2:5060 S seq=1000 win=64240";
    step(&mut rt, lit(syn), true);
    step(
        &mut rt,
        lit("tcp 198.51.100.2:5060 > 198.51.100.1:40000 S. seq=5000 ack=1001 win=65160"),
        true,
    );
    step(
        &mut rt,
        lit("tcp 192.0.2.2:40000 > 198.51.100.2:5060 . seq=1001 ack=5001 win=502"),
        true,
    );
    let head = INVITE_HEAD.replace("UDP 192.0.2.2:5060", "TCP 192.0.2.2:40000");
    let msg = sip(&head, INVITE_SDP);
    let s = step(
        &mut rt,
        lit(&format!(
            "tcp 192.0.2.2:40000 > 198.51.100.2:5060 P. seq=1001 ack=5001 win=502 payload=\"{}\"",
            escape(&msg)
        )),
        true,
    );
    assert_eq!(s.verdict, Verdict::Accept);
    let ihl = usize::from(s.bytes[0] & 0x0f) * 4;
    let doff = usize::from(s.bytes[ihl + 12] >> 4) * 4;
    let got = String::from_utf8_lossy(&s.bytes[ihl + doff..]).into_owned();
    assert!(
        got.contains("Via: SIP/2.0/TCP 198.51.100.1:40000;branch"),
        "{got}"
    );
    assert!(got.contains("c=IN IP4 198.51.100.1\r\n"), "{got}");
    assert!(got.contains("Content-Length: 138\r\n"), "{got}");
    let delta = got.len() as i32 - msg.len() as i32;
    assert!(delta > 0);
    let key = s.key.unwrap();
    assert!(rt
        .ct
        .get(key)
        .unwrap()
        .status()
        .contains(Status::SEQ_ADJUST));
    // The server acknowledges what it got; the client sees its own count.
    let ack = 1001 + got.len() as u32;
    let a = step(
        &mut rt,
        lit(&format!(
            "tcp 198.51.100.2:5060 > 198.51.100.1:40000 . seq=5001 ack={ack} win=509"
        )),
        true,
    );
    let shown = ctsim_packet::show(&a.bytes);
    assert!(
        shown.contains(&format!("ack={} ", 1001 + msg.len())),
        "{shown}"
    );
    assert_eq!(rt.ct.expect_count(), 2);
}

#[test]
fn sdp_rewrite_parses_back_and_content_length_matches() {
    use ctsim_conntrack::helper::sip::{self as p, Found, Header, SdpHeader};
    let mut rt = Router::new();
    let (inv, _) = call(&mut rt, true);
    let got = payload(&inv.bytes);
    let m = got.as_bytes();
    let Found::Yes(v) = p::get_sdp_header(m, 0, SdpHeader::Version, SdpHeader::Unspec) else {
        panic!()
    };
    let Found::Yes((_, c)) = p::parse_sdp_addr(m, v.off, SdpHeader::Connection, SdpHeader::Media)
    else {
        panic!()
    };
    assert_eq!(c, N);
    let Found::Yes(cl) = p::get_header(m, 0, Header::ContentLength).0 else {
        panic!()
    };
    let (n, _) = p::strtoul10(m, cl.off);
    let body = got.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(n as usize, body.len());
}
