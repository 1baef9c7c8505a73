//! NAT bindings and packet rewriting (reference/nat.md), driven as a
//! router drives them: conntrack at PRE_ROUTING, DNAT at PRE_ROUTING,
//! SNAT at POST_ROUTING, confirm. Packets are written and read in the
//! packet literal notation; a literal printed without `csum=`/`ipcsum=`
//! carries correct checksums.

mod nat_util;

use std::net::Ipv4Addr;

use ctsim_conntrack::{time::Instant, CtHook, CtInfo, FormatOpts, Sysctls, Verdict, Zone};
use ctsim_netfilter::nat::{self, Binding, Manip, NatRange};
use nat_util::*;

/// nat.md §2's example (MASQUERADE to 198.51.100.1 on Linux 6.18): the
/// free source port is kept, the reply goes to the NAT address, and
/// `conntrack -L` prints the entry as Linux did.
#[test]
fn masquerade_keeps_a_free_port() {
    let mut r = Router::new();
    let out = r.forward(
        "tcp 192.0.2.2:34098 > 198.51.100.2:8080 S seq=1 win=64240",
        None,
        Some(to(N)),
    );
    assert_eq!(
        out.packet,
        "tcp 198.51.100.1:34098 > 198.51.100.2:8080 S seq=1 win=64240"
    );
    assert_eq!(
        out.snat,
        Some(Binding {
            tuple: ctsim_conntrack::Tuple::tcp(N, 34098, S, 8080),
            changed: true
        })
    );
    let line = r.ct.entry_line(out.key, FormatOpts::default(), Instant(0));
    assert_eq!(
        line.unwrap(),
        "tcp      6 120 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=34098 dport=8080 [UNREPLIED] \
         src=198.51.100.2 dst=198.51.100.1 sport=8080 dport=34098 mark=0 use=1"
    );
    // The SYN/ACK to the NAT address is un-SNATed at PRE_ROUTING.
    let back = r.forward(
        "tcp 198.51.100.2:8080 > 198.51.100.1:34098 S. seq=9 ack=2 win=65160",
        None,
        None,
    );
    assert_eq!(back.ctinfo, CtInfo::EstablishedReply);
    assert_eq!(
        back.packet,
        "tcp 198.51.100.2:8080 > 192.0.2.2:34098 S. seq=9 ack=2 win=65160"
    );
}

/// nat.md §3–§4: two LAN hosts using the same source port towards the same
/// server: the second cannot keep it and gets another port of its class
/// (>= 1024), and its replies find their way back.
#[test]
fn second_host_gets_another_port() {
    for seed in 0..20 {
        let mut r = Router::seeded(seed);
        let a = r.forward(
            "udp 192.0.2.2:40000 > 198.51.100.2:53 len=8",
            None,
            Some(to(N)),
        );
        let b = r.forward(
            "udp 192.0.2.3:40000 > 198.51.100.2:53 len=8",
            None,
            Some(to(N)),
        );
        assert_eq!(a.packet, "udp 198.51.100.1:40000 > 198.51.100.2:53 len=8");
        let port = b.snat.unwrap().tuple.sport();
        assert!(port >= 1024 && port != 40000, "seed {seed}: port {port}");
        assert_eq!(
            b.packet,
            format!("udp 198.51.100.1:{port} > 198.51.100.2:53 len=8")
        );
        let back = r.forward(
            &format!("udp 198.51.100.2:53 > 198.51.100.1:{port} len=4"),
            None,
            None,
        );
        assert_eq!(back.key, b.key);
        assert_eq!(back.packet, "udp 198.51.100.2:53 > 192.0.2.3:40000 len=4");
    }
}

/// nat.md §4: a clashing source port below 1024 stays privileged: < 512
/// maps into 1–511, 512–1023 into 600–1023.
#[test]
fn privileged_ports_stay_in_their_class() {
    for (sport, class) in [(80u16, 1..=511u16), (700, 600..=1023)] {
        for seed in 0..50 {
            let mut r = Router::seeded(seed);
            let a = format!("tcp 192.0.2.2:{sport} > 198.51.100.2:22 S seq=1 win=1000");
            let b = a.replace("192.0.2.2", "192.0.2.3");
            r.forward(&a, None, Some(to(N)));
            let p = r.forward(&b, None, Some(to(N))).snat.unwrap().tuple.sport();
            assert!(class.contains(&p) && p != sport, "{sport} -> {p}");
        }
    }
}

/// nat.md §2: DNAT C:c -> V:80 to S:8080 gives REPLY S:8080 -> C:c; the
/// server's answer is un-DNATed at POST_ROUTING.
#[test]
fn dnat_rewrites_destination_and_reply() {
    let mut r = Router::new();
    let range = NatRange {
        addrs: Some((S, S)),
        ports: Some((8080, 8080)),
        ..NatRange::default()
    };
    let out = r.forward(
        "tcp 192.0.2.2:40000 > 203.0.113.10:80 S seq=1 win=1000",
        Some(range),
        None,
    );
    assert_eq!(
        out.packet,
        "tcp 192.0.2.2:40000 > 198.51.100.2:8080 S seq=1 win=1000"
    );
    let e = r.ct.get(out.key).unwrap();
    assert_eq!(*e.reply(), ctsim_conntrack::Tuple::tcp(S, 8080, C, 40000));
    let back = r.forward(
        "tcp 198.51.100.2:8080 > 192.0.2.2:40000 S. seq=5 ack=2 win=1000",
        None,
        None,
    );
    assert_eq!(
        back.packet,
        "tcp 203.0.113.10:80 > 192.0.2.2:40000 S. seq=5 ack=2 win=1000"
    );
}

/// `--to-source 198.51.100.1:2000-2001`: two ports, two connections; the
/// third finds nothing free, keeps a taken tuple and confirm drops it
/// (insert_failed), as Linux does.
#[test]
fn explicit_port_range_exhausts() {
    let mut r = Router::new();
    let range = NatRange {
        addrs: Some((N, N)),
        ports: Some((2000, 2001)),
        ..NatRange::default()
    };
    let mut ports = Vec::new();
    for host in 2..=4 {
        let lit = format!("udp 192.0.2.{host}:40000 > 198.51.100.2:53 len=1");
        let out = r.forward(&lit, None, Some(range));
        ports.push((out.snat.unwrap().tuple.sport(), out.dropped));
    }
    ports[..2].sort();
    assert_eq!(&ports[..2], &[(2000, false), (2001, false)]);
    assert!(ports[2].1, "third connection dropped at confirm");
    assert!((2000..=2001).contains(&ports[2].0));
    assert_eq!(r.ct.stats().insert_failed, 1);
}

/// udp-icmp.md §2 / nat.md §4: the echo id is the ICMP "port": a second
/// host pinging with the same id gets another id; the echo reply comes
/// back with the host's own id and valid checksums.
#[test]
fn icmp_echo_id_is_remapped() {
    let mut r = Router::seeded(7);
    let ping = "icmp 192.0.2.2 > 198.51.100.2 echo-request id=7 seq=1 len=56";
    let a = r.forward(ping, None, Some(to(N)));
    let b = r.forward(&ping.replace("192.0.2.2", "192.0.2.3"), None, Some(to(N)));
    assert_eq!(
        a.packet,
        "icmp 198.51.100.1 > 198.51.100.2 echo-request id=7 seq=1 len=56"
    );
    let id = b.snat.unwrap().tuple.icmp_id();
    assert_ne!(id, 7);
    assert_eq!(
        b.packet,
        format!("icmp 198.51.100.1 > 198.51.100.2 echo-request id={id} seq=1 len=56")
    );
    let back = r.forward(
        &format!("icmp 198.51.100.2 > 198.51.100.1 echo-reply id={id} seq=1 len=56"),
        None,
        None,
    );
    assert_eq!(
        back.packet,
        "icmp 198.51.100.2 > 192.0.2.3 echo-reply id=7 seq=1 len=56"
    );
}

/// hooks.md §7 / the comment on Linux's `nf_nat_used_tuple()`: a LAN
/// connection masqueraded as N:40000, then the router itself connects from
/// N:40000 to the same server. No rule applies, but the null binding sees
/// that the replies would be ambiguous and moves the port.
#[test]
fn null_binding_moves_a_clashing_port() {
    let mut r = Router::seeded(3);
    r.forward(
        "udp 192.0.2.2:40000 > 198.51.100.2:53 len=1",
        None,
        Some(to(N)),
    );
    let own = r.output("udp 198.51.100.1:40000 > 198.51.100.2:53 len=1");
    let b = own.snat.unwrap();
    assert!(b.changed);
    assert!(b.tuple.sport() >= 1024 && b.tuple.sport() != 40000);
    assert!(!own.dropped);
    // Without the clash the null binding changes nothing.
    let free = r.output("udp 198.51.100.1:40001 > 198.51.100.2:53 len=1");
    assert!(!free.snat.unwrap().changed);
    assert_eq!(
        free.packet,
        "udp 198.51.100.1:40001 > 198.51.100.2:53 len=1"
    );
}

/// nat.md §5 against Linux 6.18 (netns lab, MASQUERADE to 198.51.100.1):
/// the bytes of a UDP datagram leaving the router and of the server's
/// port unreachable as the client received it. The quoted header gets the
/// client's address back with its IP checksum and (incrementally) its UDP
/// checksum fixed, the ICMP checksum is recomputed, the outer destination
/// becomes the client. (The lab's client sent a partial, offloaded UDP
/// checksum, hence conntrack's checksum check is off here; the expected
/// outer header is the captured one before the router's TTL decrement.)
#[test]
fn icmp_error_translated_like_linux() {
    let mut sys = Sysctls::default();
    sys.checksum = false;
    let mut r = Router::with(sys, 0);
    // The client's datagram after the router's TTL decrement.
    let sent = hex("4500001d98bc40003f11b6dbc0000202c6336402a7f917700009ec5278");
    let out = r.forward_bytes(sent, None, Some(to(N)));
    // The lab's UDP checksum was a partial one updated as such (offload);
    // everything else is the captured datagram.
    let mut lab = hex("4500001d98bc40003f114ea9 c6336401 c6336402 a7f91770 0009 5485 78");
    lab[26..28].copy_from_slice(&out.bytes[26..28]);
    assert_eq!(out.bytes, lab);
    let err = hex(
        "45c0003928900000 4001fd09c6336402 c633640103037104 00000000 \
         4500001d98bc40003f114ea9c6336401c6336402a7f917700009548578",
    );
    let back = r.forward_bytes(err, None, None);
    assert_eq!(back.ctinfo, CtInfo::RelatedReply);
    assert_eq!(back.key, out.key);
    assert_eq!(
        back.bytes,
        hex(
            "45c0003928900000 4001653c c6336402 c0000202 030308d2 00000000 \
             4500001d98bc40003f11b6dbc0000202c6336402a7f917700009bcb778"
        )
    );
}

/// An ICMP error about a SNATed flow, built by the literal notation:
/// after translation every checksum printed is right (no `csum=`), and
/// the quote shows the client's own packet.
#[test]
fn icmp_error_about_snated_udp() {
    let mut r = Router::new();
    let out = r.forward(
        "udp 192.0.2.2:39422 > 198.51.100.2:5353 payload=\"q\"",
        None,
        Some(to(N)),
    );
    let back = server_error(&mut r, "port-unreachable", &out);
    assert_eq!(
        back.packet,
        "icmp 198.51.100.2 > 192.0.2.2 port-unreachable \
         quote=(udp 192.0.2.2:39422 > 198.51.100.2:5353 payload=\"q\")"
    );
}

/// `nf_nat_icmp_reply_translation()`: a redirect about a NATed
/// connection is dropped.
#[test]
fn redirect_about_nated_flow_is_dropped() {
    let mut r = Router::new();
    let out = r.forward(
        "udp 192.0.2.2:1000 > 198.51.100.2:53 len=1",
        None,
        Some(to(N)),
    );
    assert!(server_error(&mut r, "redirect gw=198.51.100.3", &out).dropped);
}

/// `needs_binding`: only a first packet, once per manip; never an ICMP
/// error.
#[test]
fn bindings_only_for_first_packets() {
    let mut ct = ctsim_conntrack::Conntrack::default();
    let p = lit("udp 192.0.2.2:1000 > 198.51.100.2:53 len=1");
    let h = ct
        .handle_packet(&p, CtHook::PreRouting, Zone(0), Instant(0))
        .ct
        .unwrap();
    assert!(nat::needs_binding(&ct, &h, Manip::Dst, &p));
    nat::setup(&mut ct, &h, Manip::Dst, None, &mut || 0).unwrap();
    assert!(!nat::needs_binding(&ct, &h, Manip::Dst, &p));
    assert!(nat::needs_binding(&ct, &h, Manip::Src, &p));
    let icmp = lit("icmp 198.51.100.2 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1000 > 198.51.100.2:53 len=1)");
    let rel = ct.attach(&h, CtInfo::RelatedReply);
    assert!(!nat::needs_binding(&ct, &rel, Manip::Src, &icmp));
    ct.release(rel);
    assert_eq!(ct.confirm(h, Instant(0)).verdict, Verdict::Accept);
}

fn to(a: Ipv4Addr) -> NatRange {
    NatRange {
        addrs: Some((a, a)),
        ..NatRange::default()
    }
}

/// The server's ICMP error `kind` about the packet `out` the router sent.
fn server_error(r: &mut Router, kind: &str, out: &Out) -> Out {
    let err = format!(
        "icmp 198.51.100.2 > 198.51.100.1 {kind} quote=({})",
        out.packet
    );
    r.forward(&err, None, None)
}
