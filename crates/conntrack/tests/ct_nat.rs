//! The table's side of NAT: bindings alter the REPLY tuple that confirm
//! hashes, replies and ICMP errors find the entry through it, and the
//! uniqueness checks and by-source index behave as nf_nat_core.c's
//! (reference/nat.md §2–§4). The tuple choice itself is tested in
//! ctsim-netfilter.

mod ct_util;

use std::net::Ipv4Addr;

use ct_util::*;
use ctsim_conntrack::{BindError, Conntrack, CtHook, CtInfo, EntryRef, Manip, Status, Tuple, Zone};

/// The router's WAN address (MASQUERADE's source).
const N: Ipv4Addr = R;
const C2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// The first packet of a UDP flow, looked up at PRE_ROUTING.
fn first(ct: &mut Conntrack, src: Ipv4Addr, sport: u16, dport: u16) -> EntryRef {
    let r = ct.handle_packet(
        &udp(src, sport, S, dport, b"q"),
        CtHook::PreRouting,
        Zone(0),
        secs(0.0),
    );
    r.ct.expect("tracked")
}

/// SNAT to `N:port` for an unconfirmed entry, then confirm.
fn snat(ct: &mut Conntrack, r: EntryRef, port: u16) -> Option<ctsim_conntrack::EntryKey> {
    let o = *ct.get(r.key()).unwrap().orig();
    let new = Tuple::udp(N, port, o.dst, o.dport());
    assert_eq!(ct.nat_bind(r.key(), Manip::Src, &new), Ok(true));
    ct.confirm(r, secs(0.0)).key
}

/// nat.md §2: the binding rewrites only the REPLY tuple and sets SRC_NAT
/// and SRC_NAT_DONE; `conntrack -L` shows the reply addressed to the NAT
/// address, as Linux 6.18 printed it for MASQUERADE.
#[test]
fn binding_alters_reply_and_listing() {
    let mut ct = Conntrack::default();
    let r = first(&mut ct, C, 34098, 8080);
    let k = snat(&mut ct, r, 34098).unwrap();
    let e = ct.get(k).unwrap();
    assert_eq!(*e.orig(), Tuple::udp(C, 34098, S, 8080));
    assert!(e
        .status()
        .contains(Status::SRC_NAT | Status::SRC_NAT_DONE | Status::CONFIRMED));
    assert!(!e
        .status()
        .intersects(Status::DST_NAT | Status::DST_NAT_DONE));
    assert_eq!(
        list(&ct, secs(0.0)),
        "udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=34098 dport=8080 [UNREPLIED] \
         src=198.51.100.2 dst=198.51.100.1 sport=8080 dport=34098 mark=0 use=1\n"
    );
}

/// Confirm hashes the REPLY tuple as it is after NAT: the server's answer
/// to the NAT address is the entry's REPLY direction, while a packet
/// matching the un-NATed reply is a new connection.
#[test]
fn replies_find_the_entry_by_the_nated_tuple() {
    let mut ct = Conntrack::default();
    let r = first(&mut ct, C, 40000, 53);
    let k = snat(&mut ct, r, 40001).unwrap();
    let ans = forward(&mut ct, &udp(S, 53, N, 40001, b"a"), secs(0.1));
    assert_eq!(
        (ans.ctinfo, ans.key),
        (Some(CtInfo::EstablishedReply), Some(k))
    );
    assert_eq!(
        ct.lookup(&Tuple::udp(S, 53, C, 40000), Zone(0), secs(0.1)),
        None,
        "the un-NATed reply tuple is not in the table"
    );
}

/// udp-icmp.md §2: an ICMP error from the WAN quoting the SNATed packet
/// (N:a' -> S:b) inverts to the REPLY tuple: RELATED_REPLY.
#[test]
fn icmp_error_about_snated_packet_is_related_reply() {
    let mut ct = Conntrack::default();
    let r = first(&mut ct, C, 40000, 5353);
    let k = snat(&mut ct, r, 40001).unwrap();
    let quoted = udp(N, 40001, S, 5353, b"q");
    let err = icmp_error(S, N, 3, 3, &quoted);
    let seen = ct.handle_packet(&err, CtHook::PreRouting, Zone(0), secs(0.2));
    let h = seen.ct.expect("related");
    assert_eq!((h.ctinfo(), h.key()), (CtInfo::RelatedReply, k));
    ct.release(h);
}

/// `__nf_conntrack_confirm()` checks the altered REPLY tuple: a second
/// binding onto a reply tuple already in the table fails at confirm
/// (insert_failed, drop), which is what happens when the port search
/// gave up.
#[test]
fn confirm_refuses_a_taken_reply_tuple() {
    let mut ct = Conntrack::default();
    let a = first(&mut ct, C, 40000, 80);
    snat(&mut ct, a, 50000).unwrap();
    let b = first(&mut ct, C2, 40000, 80);
    assert_eq!(snat(&mut ct, b, 50000), None);
    assert_eq!(ct.stats().insert_failed, 1);
    assert_eq!(ct.confirmed_count(), 1);
}

/// Bindings exist only for unconfirmed entries, once per manip; a null
/// binding sets only the DONE bit.
#[test]
fn bind_rules() {
    let mut ct = Conntrack::default();
    let r = first(&mut ct, C, 40000, 80);
    let same = *ct.get(r.key()).unwrap().orig();
    assert_eq!(ct.nat_bind(r.key(), Manip::Dst, &same), Ok(false));
    assert_eq!(
        ct.nat_bind(r.key(), Manip::Dst, &same),
        Err(BindError::AlreadyBound)
    );
    let st = ct.get(r.key()).unwrap().status();
    assert!(st.contains(Status::DST_NAT_DONE) && !st.intersects(Status::NAT_MASK));
    let k = ct.confirm(r, secs(0.0)).key.unwrap();
    assert_eq!(ct.nat_bind(k, Manip::Src, &same), Err(BindError::Confirmed));
}

/// `nf_conntrack_tuple_taken()`: a candidate is taken when its inverse is
/// some confirmed entry's tuple (either direction), not counting entries
/// with our own ORIGINAL tuple; each hit counts `found`.
#[test]
fn tuple_taken_semantics() {
    let mut ct = Conntrack::default();
    let a = first(&mut ct, C, 40000, 80);
    snat(&mut ct, a, 50000).unwrap();
    let me = first(&mut ct, C2, 40000, 80);
    assert!(ct.tuple_taken(&Tuple::udp(N, 50000, S, 80), me.key()));
    assert!(!ct.tuple_taken(&Tuple::udp(N, 50001, S, 80), me.key()));
    // Hits the first entry's ORIGINAL tuple: our replies would look like
    // C:40000's packets.
    assert!(ct.tuple_taken(&Tuple::udp(S, 80, C, 40000), me.key()));
    assert_eq!(ct.stats().found, 2);
    ct.release(me);
    // The same flow racing itself is left to confirm.
    let twin = first(&mut ct, C, 40000, 80);
    assert!(!ct.tuple_taken(&Tuple::udp(N, 50000, S, 80), twin.key()));
    ct.release(twin);
}

/// `nf_nat_used_tuple_new()`: for UDP, a null binding whose only clash is
/// the exact reverse flow (not NATed) is free — crossing first packets;
/// a NATed clash is not.
#[test]
fn reverse_clash_tolerated_for_unnated_udp() {
    let mut ct = Conntrack::default();
    // Both first packets are in flight; S:53 -> C:40000 confirms first.
    let me = first(&mut ct, C, 40000, 53);
    let back = ct
        .handle_packet(
            &udp(S, 53, C, 40000, b"x"),
            CtHook::PreRouting,
            Zone(0),
            secs(0.0),
        )
        .ct
        .unwrap();
    let _ = ct.confirm(back, secs(0.0));
    let t = *ct.get(me.key()).unwrap().orig();
    assert!(ct.tuple_taken(&t, me.key()));
    assert!(!ct.tuple_taken_new(&t, me.key()));
    ct.release(me);
}

/// The by-source index (`find_appropriate_src()`): the mapping of an
/// earlier connection from the same source address, port and protocol,
/// newest first, with our destination; gone once the entry is freed.
#[test]
fn by_source_index() {
    let mut ct = Conntrack::default();
    let a = first(&mut ct, C, 40000, 80);
    let ka = snat(&mut ct, a, 61000).unwrap();
    let b = first(&mut ct, C, 40000, 81);
    snat(&mut ct, b, 62000).unwrap();
    let probe = Tuple::udp(C, 40000, S, 443);
    let all = |ct: &Conntrack| {
        let mut v = Vec::new();
        ct.find_nat_source(&probe, Zone(0), |t| {
            v.push(*t);
            false
        });
        v
    };
    assert_eq!(
        all(&ct),
        [Tuple::udp(N, 62000, S, 443), Tuple::udp(N, 61000, S, 443)]
    );
    assert_eq!(
        ct.find_nat_source(&probe, Zone(0), |t| t.sport() < 62000),
        Some(Tuple::udp(N, 61000, S, 443))
    );
    assert!(ct.find_nat_source(&probe, Zone(1), |_| true).is_none());
    let other_port = Tuple::udp(C, 40001, S, 443);
    assert!(ct.find_nat_source(&other_port, Zone(0), |_| true).is_none());
    // Deleting the first entry frees it: its mapping is forgotten.
    ct.handle_timeout(after(secs(0.0), 31));
    assert!(ct.get(ka).is_none());
    assert!(all(&ct).is_empty());
}
