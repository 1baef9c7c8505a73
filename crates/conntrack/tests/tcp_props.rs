//! Properties of the TCP tracker over random segment sequences in both
//! directions: no panics, the state is always a real state, an INVALID or
//! ignored packet leaves the state alone, and parsing arbitrary bytes never
//! panics.

#[path = "tcp_common.rs"]
mod common;

use common::*;
use ctsim_conntrack::tcp::{Dir, TcpConntrack, TcpFlags, TcpOutcome, TcpSegment, TcpSysctl};
use proptest::prelude::*;

/// Flag bytes: every valid combination (with PSH/ECE/CWR noise), plus the
/// NONE class, which `parse` would refuse but the API accepts.
fn flags() -> impl Strategy<Value = TcpFlags> {
    let core = prop_oneof![
        Just(0x02u8),
        Just(0x22),
        Just(0x12),
        Just(0x04),
        Just(0x14),
        Just(0x11),
        Just(0x31),
        Just(0x10),
        Just(0x30),
        Just(0x00),
        Just(0x08),
    ];
    (core, prop::sample::select(vec![0u8, 0x08, 0x40, 0x80])).prop_map(|(c, n)| TcpFlags(c | n))
}

/// Offsets around the interesting edges, sometimes far away.
fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -3i64..4,
        3 => -200i64..200,
        2 => -70_000i64..140_000,
        1 => any::<u32>().prop_map(i64::from),
    ]
}

#[derive(Clone, Debug)]
struct Op {
    dir: Dir,
    flags: TcpFlags,
    seq: i64,
    ack: i64,
    len: u32,
    window: u16,
    wscale: Option<u8>,
    sack_perm: bool,
    sack_edge: Option<i64>,
}

fn op() -> impl Strategy<Value = Op> {
    (
        any::<bool>(),
        flags(),
        delta(),
        delta(),
        prop_oneof![3 => Just(0u32), 1 => 0u32..2000, 1 => Just(70_000u32)],
        prop_oneof![Just(0u16), Just(1), Just(1000), Just(64240), any::<u16>()],
        prop::option::of(0u8..16),
        any::<bool>(),
        prop::option::of(delta()),
    )
        .prop_map(
            |(reply, flags, seq, ack, len, window, wscale, sack_perm, sack_edge)| Op {
                dir: if reply { Dir::Reply } else { Dir::Original },
                flags,
                seq,
                ack,
                len,
                window,
                wscale,
                sack_perm,
                sack_edge,
            },
        )
}

fn sysctl() -> impl Strategy<Value = TcpSysctl> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0u32..5).prop_map(
        |(loose, be_liberal, ignore_invalid_rst, max_retrans)| TcpSysctl {
            loose,
            be_liberal,
            ignore_invalid_rst,
            max_retrans,
            ..TcpSysctl::default()
        },
    )
}

/// Turns an op into a segment near the sender's and receiver's current edges.
fn segment(c: &Conn, op: &Op) -> TcpSegment {
    let (own, peer) = match c.tcp {
        Some(t) => {
            let d = if c.flipped { op.dir.opposite() } else { op.dir };
            (t.window(d).end.0, t.window(d.opposite()).end.0)
        }
        None => (1000, 5000),
    };
    let at = |base: u32, d: i64| base.wrapping_add(d as u32);
    let mut seg =
        TcpSegment::new(op.flags, at(own, op.seq), at(peer, op.ack), op.window).with_len(op.len);
    if let Some(w) = op.wscale {
        seg = seg.with_wscale(w);
    }
    if op.sack_perm {
        seg = seg.with_sack_permitted();
    }
    if let Some(e) = op.sack_edge {
        seg = seg.with_sack_edge(at(peer, e));
    }
    seg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_invariants(sysctl in sysctl(), ops in prop::collection::vec(op(), 1..60)) {
        let mut c = Conn::new(sysctl);
        for op in &ops {
            let seg = segment(&c, op);
            let before = c.state();
            let out = c.send(op.dir, seg);
            let after = c.state();
            if let Some(s) = after {
                prop_assert!(TcpConntrack::ALL.contains(&s));
            }
            match out {
                TcpOutcome::Invalid { reason } | TcpOutcome::InvalidLowerTimeout { reason, .. } => {
                    prop_assert!(!reason.is_empty());
                    prop_assert_eq!(before, after, "INVALID changed the state");
                }
                TcpOutcome::Ignore { reason } => {
                    prop_assert!(!reason.is_empty());
                    prop_assert_eq!(before, after, "an ignored packet changed the state");
                }
                TcpOutcome::Reopen => {
                    prop_assert!(matches!(before, Some(TcpConntrack::TimeWait | TcpConntrack::Close)));
                    prop_assert_eq!(after, Some(TcpConntrack::SynSent));
                }
                TcpOutcome::AcceptAndDestroy => {
                    prop_assert!(seg.flags.contains(TcpFlags::RST));
                    prop_assert!(after.is_none());
                }
                TcpOutcome::AcceptNoRefresh => {
                    prop_assert_eq!(before, Some(TcpConntrack::SynSent));
                }
                TcpOutcome::Accept { timeout, assured } => {
                    prop_assert!(timeout > ctsim_conntrack::time::Duration::ZERO);
                    if assured {
                        prop_assert_eq!(after, Some(TcpConntrack::Established));
                    }
                }
            }
            // No entry: only a SYN or (loose) ACK can create one.
            if before.is_none() {
                if let Some(s) = after {
                    prop_assert!(matches!(s, TcpConntrack::SynSent | TcpConntrack::Established));
                }
            }
        }
    }

    /// The first packet of a connection is always accepted once `new` agrees.
    #[test]
    fn first_packet_is_accepted(op in op(), sysctl in sysctl()) {
        let c = Conn::new(sysctl);
        let seg = segment(&c, &op);
        if let Ok(mut t) = ctsim_conntrack::tcp::Tcp::new(&seg, &sysctl) {
            let out = t.packet(Dir::Original, &seg, false, false, &sysctl);
            prop_assert!(matches!(out, TcpOutcome::Accept { assured: false, .. }), "{:?}", out);
        }
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80), extra in 0usize..3000) {
        let _ = TcpSegment::parse(&bytes, bytes.len() + extra);
        let _ = TcpSegment::parse(&bytes, bytes.len().saturating_sub(extra));
    }
}

/// The generator is not vacuous: with a fixed seed, random sequences reach
/// every state and every kind of outcome.
#[test]
fn random_sequences_cover_states_and_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use std::collections::BTreeSet;

    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = (sysctl(), prop::collection::vec(op(), 1..60));
    let mut states = BTreeSet::new();
    let mut outcomes = BTreeSet::new();
    for _ in 0..3000 {
        let (sysctl, ops) = strategy.new_tree(&mut runner).unwrap().current();
        let mut c = Conn::new(sysctl);
        for op in &ops {
            let seg = segment(&c, op);
            let out = c.send(op.dir, seg);
            outcomes.insert(match out {
                TcpOutcome::Accept { assured: true, .. } => "assured",
                TcpOutcome::Accept { .. } => "accept",
                TcpOutcome::AcceptNoRefresh => "no-refresh",
                TcpOutcome::AcceptAndDestroy => "destroy",
                TcpOutcome::Invalid { .. } => "invalid",
                TcpOutcome::InvalidLowerTimeout { .. } => "lower-timeout",
                TcpOutcome::Reopen => "reopen",
                TcpOutcome::Ignore { .. } => "ignore",
            });
            if let Some(s) = c.state() {
                states.insert(s as u8);
            }
        }
    }
    assert_eq!(states.len(), 9, "states reached: {states:?}"); // all but NONE
    assert_eq!(outcomes.len(), 8, "outcomes seen: {outcomes:?}");
}
