//! The table's own rules: unconfirmed entries, confirm clashes, early drop
//! and table-full drops, dying entries, timers, expectations, sysctls.
//! Expected values follow the kernel source (nf_conntrack_core.c of 6.x)
//! where no lab capture exists; each test says which function.

mod ct_util;

use ct_util::*;
use ctsim_conntrack::expect::{ExpectMask, NewExpectation};
use ctsim_conntrack::time::{Duration, Instant};
use ctsim_conntrack::{
    Conntrack, CtHook, CtInfo, CtState, Entry, Filter, FormatOpts, Status, Sysctls, Table, Tuple,
    Verdict, Zone, TABLE_FULL_MSG,
};

fn small(max: u32, buckets: u32) -> Conntrack {
    let mut ct = Conntrack::new(Sysctls::default());
    ct.resize_exact(buckets);
    ct.set_sysctl("nf_conntrack_max", &max.to_string()).unwrap();
    ct
}

#[test]
fn entry_fits_in_256_bytes() {
    let size = std::mem::size_of::<Entry>();
    eprintln!("size_of::<Entry>() = {size}");
    assert!(size <= 256, "Entry is {size} bytes");
}

/// hooks.md §5.4: a first packet dropped before confirm leaves nothing.
#[test]
fn unconfirmed_entry_dropped_with_its_packet() {
    let mut ct = Conntrack::default();
    let now = secs(0.0);
    let r = ct.handle_packet(&udp(C, 1000, S, 53, b"q"), CtHook::PreRouting, Zone(0), now);
    let h = r.ct.unwrap();
    assert_eq!(ct.count(), 1);
    let (out, _) = ct.conntrack_l(
        Table::Unconfirmed,
        &Filter::default(),
        FormatOpts::default(),
        now,
    );
    assert_eq!(
        out,
        "udp      17 30 src=192.0.2.2 dst=198.51.100.2 sport=1000 dport=53 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=53 dport=1000 mark=0 use=1\n"
    );
    assert_eq!(
        ct.lookup(&Tuple::udp(C, 1000, S, 53), Zone(0), now),
        None,
        "lookups ignore unconfirmed entries"
    );
    ct.release(h);
    assert_eq!(ct.count(), 0);
    assert!(ct.poll_event().is_none());
    assert_eq!(ct.poll_timeout(), None);
}

/// `__nf_conntrack_confirm()` + `nf_ct_resolve_clash()`: two first packets
/// of one UDP flow in flight at once; the second merges into the first.
#[test]
fn udp_confirm_clash_is_merged() {
    let mut ct = Conntrack::default();
    ct.set_sysctl("nf_conntrack_acct", "1").unwrap();
    let now = secs(0.0);
    let p = udp(C, 1000, S, 53, b"q");
    let a = ct
        .handle_packet(&p, CtHook::PreRouting, Zone(0), now)
        .ct
        .unwrap();
    let b = ct
        .handle_packet(&p, CtHook::PreRouting, Zone(0), now)
        .ct
        .unwrap();
    assert_ne!(a.key(), b.key());
    assert_eq!(ct.count(), 2);
    let ca = ct.confirm(a, now);
    let cb = ct.confirm(b, now);
    assert_eq!(cb.verdict, Verdict::Accept);
    assert_eq!(cb.key, ca.key, "the packet now belongs to the winner");
    assert_eq!(ct.count(), 1);
    assert_eq!(ct.stats().clash_resolve, 1);
    let e = ct.get(ca.key.unwrap()).unwrap();
    assert_eq!(
        e.counters(ctsim_conntrack::Dir::Original).unwrap().packets,
        2
    );
    assert_eq!(e.use_count(), 1);
}

/// TCP does not allow clashes: the loser's packet is dropped.
#[test]
fn tcp_confirm_clash_drops() {
    let mut ct = Conntrack::default();
    let now = secs(0.0);
    let p = tcp(C, 1000, S, 80, SYN, 1, 0, b"");
    let a = ct
        .handle_packet(&p, CtHook::PreRouting, Zone(0), now)
        .ct
        .unwrap();
    let b = ct
        .handle_packet(&p, CtHook::PreRouting, Zone(0), now)
        .ct
        .unwrap();
    let _ = ct.confirm(a, now);
    let cb = ct.confirm(b, now);
    assert_eq!(
        cb.verdict,
        Verdict::Drop {
            reason: "insert clash"
        }
    );
    assert_eq!(
        (ct.stats().insert_failed, ct.stats().drop, ct.count()),
        (1, 1, 1)
    );
}

/// `early_drop()`: at nf_conntrack_max, a new flow evicts the unassured
/// entries of the first non-empty bucket among 8 (one bucket here, so all
/// of them), with DESTROY events.
#[test]
fn early_drop_evicts_unassured() {
    let mut ct = small(4, 1);
    for port in 0..4 {
        forward(&mut ct, &udp(C, 1000 + port, S, 53, b"q"), secs(0.0));
    }
    events(&mut ct);
    let r = forward(&mut ct, &udp(C, 2000, S, 53, b"q"), secs(1.0));
    assert_eq!(r.state, CtState::New);
    assert!(!r.dropped);
    assert_eq!(ct.stats().early_drop, 4);
    assert_eq!(ct.count(), 1);
    let ev = events(&mut ct);
    assert_eq!(ev.len(), 5);
    assert!(ev[..4]
        .iter()
        .all(|l| l.starts_with("[DESTROY] udp      17 29 ")));
}

/// A table full of ASSURED entries drops every new first packet, logs the
/// ratelimited kernel message, and the GC sweep a second later cannot
/// evict ASSURED non-TCP entries either.
#[test]
fn table_full_of_assured_entries_drops() {
    let mut ct = small(2, 1);
    for port in 0..2 {
        let q = udp(C, 1000 + port, S, 53, b"q");
        forward(&mut ct, &q, secs(0.0));
        forward(&mut ct, &udp(S, 53, C, 1000 + port, b"a"), secs(0.1));
        forward(&mut ct, &q, secs(3.0));
    }
    let r = forward(&mut ct, &udp(C, 3000, S, 53, b"q"), secs(4.0));
    assert!(r.dropped);
    assert_eq!(r.state, CtState::Invalid);
    assert_eq!(
        (ct.stats().drop, ct.stats().early_drop, ct.count()),
        (1, 0, 2)
    );
    assert_eq!(ct.poll_log().unwrap().text, TABLE_FULL_MSG);
    assert_eq!(ct.poll_timeout(), Some(secs(5.0)), "GC early-drop sweep");
    ct.handle_timeout(secs(5.0));
    assert_eq!(ct.count(), 2);
    // 10 messages per 5 s, then a "callbacks suppressed" line.
    for i in 0..12 {
        forward(&mut ct, &udp(C, 4000 + i, S, 53, b"q"), secs(6.0));
    }
    assert_eq!(std::iter::from_fn(|| ct.poll_log()).count(), 9);
    forward(&mut ct, &udp(C, 5000, S, 53, b"q"), secs(10.0));
    let logs: Vec<String> = std::iter::from_fn(|| ct.poll_log())
        .map(|l| l.text)
        .collect();
    assert_eq!(
        logs,
        ["net_ratelimit: 3 callbacks suppressed", TABLE_FULL_MSG]
    );
}

/// `gc_worker()` in early-drop mode kills ASSURED TCP entries in closing
/// states while the table holds >= 95 % of max.
#[test]
fn gc_sweep_evicts_closing_tcp() {
    let mut ct = small(1, 1);
    let (c, s) = (1000u32, 5000u32);
    forward(&mut ct, &tcp(C, 1, S, 80, SYN, c, 0, b""), secs(0.0));
    forward(
        &mut ct,
        &tcp(S, 80, C, 1, SYN | ACK, s, c + 1, b""),
        secs(0.0),
    );
    forward(
        &mut ct,
        &tcp(C, 1, S, 80, ACK, c + 1, s + 1, b""),
        secs(0.0),
    );
    forward(
        &mut ct,
        &tcp(C, 1, S, 80, FIN | ACK, c + 1, s + 1, b""),
        secs(0.0),
    );
    assert_eq!(
        ct.get(ct.keys(Table::Conntrack, secs(0.0))[0])
            .unwrap()
            .tcp_state()
            .unwrap()
            .to_string(),
        "FIN_WAIT"
    );
    // max 1 → max95 = 0: the sweep is off; raise max to see it work.
    ct.set_sysctl("nf_conntrack_max", "1").unwrap();
    let r = forward(&mut ct, &udp(C, 9, S, 53, b"q"), secs(1.0));
    assert!(
        r.dropped,
        "ASSURED entries are never early-dropped synchronously"
    );
    let mut ct2 = small(200, 1024);
    for port in 0..200u16 {
        let (c, s) = (1000u32, 5000u32);
        forward(&mut ct2, &tcp(C, port, S, 80, SYN, c, 0, b""), secs(0.0));
        forward(
            &mut ct2,
            &tcp(S, 80, C, port, SYN | ACK, s, c + 1, b""),
            secs(0.0),
        );
        forward(
            &mut ct2,
            &tcp(C, port, S, 80, ACK, c + 1, s + 1, b""),
            secs(0.0),
        );
        if port < 15 {
            forward(
                &mut ct2,
                &tcp(C, port, S, 80, FIN | ACK, c + 1, s + 1, b""),
                secs(0.0),
            );
        }
    }
    assert!(forward(&mut ct2, &udp(C, 9, S, 53, b"q"), secs(1.0)).dropped);
    ct2.handle_timeout(secs(2.0));
    // max95 = 200 / 100 * 95 = 190: closing entries die while count >= 190.
    assert_eq!(ct2.count(), 189);
    assert_eq!(ct2.stats().early_drop, 0, "GC kills are not early drops");
}

/// Entries deleted while a packet holds them stay in the dying table until
/// the packet lets go (`use` counts the packet).
#[test]
fn dying_until_last_reference() {
    let mut ct = Conntrack::default();
    forward(&mut ct, &udp(C, 1000, S, 53, b"q"), secs(0.0));
    let r = ct.handle_packet(
        &udp(C, 1000, S, 53, b"q"),
        CtHook::PreRouting,
        Zone(0),
        secs(1.0),
    );
    let h = r.ct.unwrap();
    assert_eq!(ct.get(h.key()).unwrap().use_count(), 2);
    assert_eq!(ct.flush(secs(1.0)), 1);
    assert_eq!(ct.keys(Table::Conntrack, secs(1.0)), []);
    assert_eq!(ct.keys(Table::Dying, secs(1.0)), [h.key()]);
    assert_eq!(ct.count(), 1);
    let c = ct.confirm(h, secs(1.0));
    assert_eq!(c.verdict, Verdict::Accept);
    assert_eq!(ct.count(), 0);
    assert_eq!(ct.keys(Table::Dying, secs(1.0)), []);
}

/// Expiry happens exactly at the deadline; a refresh moves it; lookups
/// never return expired entries.
#[test]
fn timers_follow_refreshes() {
    let mut ct = Conntrack::default();
    forward(&mut ct, &udp(C, 1000, S, 53, b"q"), secs(0.0));
    forward(&mut ct, &udp(C, 1000, S, 53, b"q"), secs(10.0));
    assert_eq!(ct.poll_timeout(), Some(secs(40.0)));
    ct.handle_timeout(secs(39.999));
    assert_eq!(ct.count(), 1);
    assert!(ct
        .lookup(&Tuple::udp(C, 1000, S, 53), Zone(0), secs(39.9))
        .is_some());
    assert!(ct
        .lookup(&Tuple::udp(C, 1000, S, 53), Zone(0), secs(40.0))
        .is_none());
    ct.handle_timeout(secs(40.0));
    assert_eq!(ct.count(), 0);
    assert_eq!(ct.poll_timeout(), None);
}

/// A packet arriving after expiry but before handle_timeout reaps the old
/// entry (DESTROY) and starts a new one, as a chain walk does in Linux.
#[test]
fn lookup_reaps_expired_entry() {
    let mut ct = Conntrack::default();
    let p = udp(C, 1000, S, 53, b"q");
    let now = secs(0.0);
    let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), now);
    let _ = ct.confirm(r.ct.unwrap(), now);
    let later = secs(31.0);
    let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), later);
    assert_eq!(r.state(), CtState::New);
    let _ = ct.confirm(r.ct.unwrap(), later);
    let ev = events(&mut ct);
    assert_eq!(ev.len(), 3);
    assert!(ev[1].starts_with("[DESTROY] udp      17 src="));
}

/// Checksums are verified in PRE_ROUTING only (and only with
/// nf_conntrack_checksum=1).
#[test]
fn checksum_only_in_prerouting() {
    let mut ct = Conntrack::default();
    let mut p = tcp(C, 1000, S, 80, SYN, 1, 0, b"");
    p[36] ^= 0xff;
    let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), secs(0.0));
    assert_eq!(r.invalid_reason(), Some("bad checksum"));
    let r = ct.handle_packet(&p, CtHook::LocalOut, Zone(0), secs(0.0));
    assert_eq!(r.state(), CtState::New);
    ct.release(r.ct.unwrap());
    ct.set_sysctl("nf_conntrack_checksum", "0").unwrap();
    let r = ct.handle_packet(&p, CtHook::PreRouting, Zone(0), secs(0.0));
    assert_eq!(r.state(), CtState::New);
    ct.release(r.ct.unwrap());
    assert_eq!(ct.count(), 0);
}

/// Invalid TCP: SYN+FIN counts `invalid` (conntrack-core.md §2).
#[test]
fn tcp_syn_fin_is_invalid() {
    let mut ct = Conntrack::default();
    ct.set_sysctl("nf_conntrack_log_invalid", "6").unwrap();
    let r = ct.handle_packet(
        &tcp(C, 1000, S, 80, SYN | FIN, 1, 0, b""),
        CtHook::PreRouting,
        Zone(0),
        secs(0.0),
    );
    let inv = r.invalid.unwrap();
    assert_eq!(
        inv.to_string(),
        "nf_ct_proto_6: invalid tcp flag combination"
    );
    assert!(inv.log);
    assert_eq!((ct.stats().invalid, ct.count()), (1, 0));
}

/// Untrackable packets: fragments, cut-short headers, ICMP types above 18.
#[test]
fn untrackable_packets() {
    let mut ct = Conntrack::default();
    let mut frag = udp(C, 1, S, 2, b"x");
    frag[7] = 1;
    assert_eq!(forward(&mut ct, &frag, secs(0.0)).state, CtState::Invalid);
    assert_eq!(
        forward(&mut ct, &ipv4(C, S, 17, &[0, 1]), secs(0.0)).state,
        CtState::Invalid
    );
    let r = forward(&mut ct, &icmp(C, S, 40, 0, [0; 4], b""), secs(0.0));
    assert_eq!(r.invalid, Some("invalid icmp type"));
    let r = forward(&mut ct, &icmp(C, S, 9, 0, [0; 4], b""), secs(0.0));
    assert_eq!(r.invalid, Some(ctsim_conntrack::NO_INVERSE));
    assert_eq!(
        (ct.stats().invalid, ct.stats().error, ct.count()),
        (3, 1, 0)
    );
    for junk in [&[][..], &[0x45][..], &[0x45; 19][..], &[0xff; 40][..]] {
        assert_eq!(forward(&mut ct, junk, secs(0.0)).state, CtState::Invalid);
    }
}

/// An expected connection: RELATED ctinfo, IPS_EXPECTED, master use=2,
/// the expectation consumed (DESTROY), `[NEW]` event, `-S expect`.
#[test]
fn expectation_creates_related_connection() {
    let mut ct = Conntrack::default();
    let (c, s) = (1000u32, 5000u32);
    forward(&mut ct, &tcp(C, 35006, S, 21, SYN, c, 0, b""), secs(0.0));
    forward(
        &mut ct,
        &tcp(S, 21, C, 35006, SYN | ACK, s, c + 1, b""),
        secs(0.0),
    );
    let m = forward(
        &mut ct,
        &tcp(C, 35006, S, 21, ACK, c + 1, s + 1, b""),
        secs(0.0),
    )
    .key
    .unwrap();
    events(&mut ct);
    ct.expect_related(
        NewExpectation {
            tuple: Tuple::tcp(C, 0, S, 30000),
            mask: ExpectMask {
                src: std::net::Ipv4Addr::BROADCAST,
                src_port: 0,
            },
            master: m,
            class: 0,
            flags: 0,
            helper: "ftp",
            child_helper: None,
            timeout: Duration::from_secs(300),
            max_expected: 1,
            nat: None,
        },
        secs(1.5),
    )
    .unwrap();
    let (out, err) = ct.conntrack_l(
        Table::Expect,
        &Filter::default(),
        FormatOpts::default(),
        secs(3.0),
    );
    assert_eq!(
        out,
        "298 proto=6 src=192.0.2.2 dst=198.51.100.2 sport=0 dport=30000 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 sport=35006 dport=21 class=0 helper=ftp\n"
    );
    assert_eq!(
        err,
        "conntrack v1.4.7 (conntrack-tools): 1 expectations have been shown.\n"
    );
    let x = ct.poll_expect_event().unwrap();
    assert_eq!(
        x.line(),
        format!("    [NEW] 300 {}", &out[4..out.len() - 1])
    );
    let d = forward(&mut ct, &tcp(C, 40000, S, 30000, SYN, 7, 0, b""), secs(3.0));
    assert_eq!(
        (d.state, d.ctinfo),
        (CtState::Related, Some(CtInfo::Related))
    );
    let child = ct.get(d.key.unwrap()).unwrap();
    assert!(child.status().contains(Status::EXPECTED));
    assert_eq!(ct.get(m).unwrap().use_count(), 2);
    assert_eq!(ct.expect_count(), 0);
    assert!(ct
        .poll_expect_event()
        .unwrap()
        .line()
        .starts_with("[DESTROY] 298 proto=6 "));
    assert!(events(&mut ct)[0].starts_with(
        "    [NEW] tcp      6 120 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=40000 dport=30000"
    ));
    assert_eq!(
        ct.stats().conntrack_s_expect(),
        "cpu=0   \texpect_new=1 expect_create=1 expect_delete=1 \n"
    );
    // The master outlives no child: deleting the child drops the master's use.
    let f = Filter {
        dport: Some(30000),
        ..Filter::default()
    };
    assert_eq!(ct.delete(&f, FormatOpts::default(), secs(4.0)).len(), 1);
    assert_eq!(ct.get(m).unwrap().use_count(), 1);
}

/// Expectations expire, respect nf_conntrack_expect_max, and die with
/// their master.
#[test]
fn expectation_limits_and_lifetime() {
    let mut ct = Conntrack::default();
    ct.set_sysctl("nf_conntrack_expect_max", "1").unwrap();
    let m = forward(&mut ct, &udp(C, 41000, S, 69, b"r"), secs(0.0))
        .key
        .unwrap();
    let x = |dport| NewExpectation {
        tuple: Tuple::udp(S, 0, C, dport),
        mask: ExpectMask {
            src: std::net::Ipv4Addr::BROADCAST,
            src_port: 0,
        },
        master: m,
        class: 0,
        flags: 0,
        helper: "tftp",
        child_helper: None,
        timeout: Duration::from_secs(300),
        max_expected: 0,
        nat: None,
    };
    ct.expect_related(x(41000), secs(0.0)).unwrap();
    assert!(ct.expect_related(x(41001), secs(0.0)).is_err());
    assert_eq!(
        ct.poll_log().unwrap().text,
        "nf_conntrack: expectation table full"
    );
    ct.handle_timeout(secs(30.0)); // the master expires, its expectation goes too
    assert_eq!((ct.count(), ct.expect_count()), (0, 0));
    ct.set_sysctl("nf_conntrack_udp_timeout", "1000").unwrap();
    let m = forward(&mut ct, &udp(C, 41000, S, 69, b"r"), secs(31.0))
        .key
        .unwrap();
    ct.expect_related(
        NewExpectation {
            master: m,
            ..x(41000)
        },
        secs(31.0),
    )
    .unwrap();
    assert_eq!(ct.poll_timeout(), Some(secs(331.0)));
    ct.handle_timeout(secs(331.0));
    assert_eq!(ct.expect_count(), 0);
}

/// Writing nf_conntrack_buckets rehashes: every entry is still found by
/// both tuples.
#[test]
fn resize_keeps_entries() {
    let mut ct = small(0, 16);
    for p in 0..200 {
        forward(&mut ct, &udp(C, 1000 + p, S, 53, b"q"), secs(0.0));
    }
    ct.set_sysctl("nf_conntrack_buckets", "4096").unwrap();
    assert_eq!(ct.sysctls().buckets, 4096);
    let now = secs(1.0);
    for p in 0..200 {
        let (k, d) = ct
            .lookup(&Tuple::udp(S, 53, C, 1000 + p), Zone(0), now)
            .unwrap();
        assert_eq!(d, ctsim_conntrack::Dir::Reply);
        assert_eq!(
            ct.lookup(&Tuple::udp(C, 1000 + p, S, 53), Zone(0), now)
                .unwrap()
                .0,
            k
        );
    }
    assert_eq!(ct.get_sysctl("nf_conntrack_count").unwrap(), "200");
}

/// Lines of `/proc/net/nf_conntrack` (reference §3 shape, lab values).
#[test]
fn proc_listing() {
    let mut ct = Conntrack::default();
    forward(&mut ct, &ipv4(C, S, 99, b"hello"), secs(0.0));
    forward(&mut ct, &ipv4(S, C, 99, b"hello"), secs(0.1));
    assert_eq!(
        ct.proc_nf_conntrack(secs(1.0)),
        "ipv4     2 unknown  99 599 src=192.0.2.2 dst=198.51.100.2 src=198.51.100.2 dst=192.0.2.2 mark=0 zone=0 use=2\n"
    );
}

/// Time arithmetic used by every test above.
#[test]
fn instants() {
    assert_eq!(secs(1.5), Instant(1_500_000_000));
    assert_eq!(after(secs(1.0), 2), secs(3.0));
}

/// Regression (found by ct_props): entries expiring in one handle_timeout
/// call came out in heap-node order, which depended on whether
/// poll_timeout had run before. They must come out in deadline order.
#[test]
fn expiry_order_does_not_depend_on_polling() {
    let run = |poll: bool| {
        let mut ct = Conntrack::default();
        forward(&mut ct, &echo(C, S, 8, 7), secs(0.0)); // deadline 30 → 34 after refresh
        forward(&mut ct, &udp(C, 5000, S, 53, b"q"), secs(2.0)); // deadline 32
        if poll {
            ct.poll_timeout();
        }
        forward(&mut ct, &echo(C, S, 8, 7), secs(4.0));
        events(&mut ct);
        ct.handle_timeout(secs(100.0));
        events(&mut ct)
    };
    let a = run(false);
    assert_eq!(a, run(true));
    assert!(a[0].starts_with("[DESTROY] udp"), "{a:?}");
}

/// `__nf_conntrack_confirm()`: a chain longer than the limit refuses the
/// insert (`chaintoolong`, `insert_failed`) and drops the packet.
#[test]
fn chain_too_long() {
    let mut ct = small(0, 1);
    let mut dropped = 0;
    for p in 0..40 {
        if forward(&mut ct, &udp(C, 1000 + p, S, 53, b"q"), secs(0.0)).dropped {
            dropped += 1;
        }
    }
    // One bucket holds both tuples of each entry: 33 entries = 66 nodes.
    assert_eq!(ct.count(), 33);
    assert_eq!(
        (ct.stats().chaintoolong, ct.stats().insert_failed, dropped),
        (7, 7, 7)
    );
}

/// `nf_ct_destroy()`: an expectation made on a first packet (TFTP) goes
/// with the entry if that packet is dropped before confirm.
#[test]
fn expectation_of_unconfirmed_master_dies_with_it() {
    let mut ct = Conntrack::default();
    let r = ct.handle_packet(
        &udp(C, 41000, S, 69, b"r"),
        CtHook::PreRouting,
        Zone(0),
        secs(0.0),
    );
    let h = r.ct.unwrap();
    ct.expect_related(
        NewExpectation {
            tuple: Tuple::udp(S, 0, C, 41000),
            mask: ExpectMask {
                src: std::net::Ipv4Addr::BROADCAST,
                src_port: 0,
            },
            master: h.key(),
            class: 0,
            flags: 0,
            helper: "tftp",
            child_helper: None,
            timeout: Duration::from_secs(300),
            max_expected: 0,
            nat: None,
        },
        secs(0.0),
    )
    .unwrap();
    assert_eq!(ct.expect_count(), 1);
    ct.release(h);
    assert_eq!((ct.count(), ct.expect_count()), (0, 0));
    let kinds: Vec<String> = std::iter::from_fn(|| ct.poll_expect_event())
        .map(|e| e.line())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds[1].starts_with("[DESTROY] 300 proto=17 "));
}
