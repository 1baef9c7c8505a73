//! Property tests over random operation sequences (quinn-proto's proptest
//! pattern): random packets of a few flows in both directions (TCP, UDP,
//! ICMP queries and errors, a generic protocol, two zones), packets dropped
//! before confirm, time steps, flushes, deletes and sysctl changes.
//!
//! Invariants after every step: nothing panics; every listed entry is found
//! through both its tuples; its reply tuple is the inverse of the original
//! (no NAT yet); the count never exceeds nf_conntrack_max; nothing expired
//! survives `handle_timeout`; and the same operations always give the same
//! table, events and counters.

mod ct_util;

use ct_util::*;
use ctsim_conntrack::time::{Duration, Instant};
use ctsim_conntrack::{Conntrack, CtHook, Dir, Filter, FormatOpts, Sysctls, Table, Zone};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A packet of flow `flow` (index into FLOWS) in one direction.
    Packet {
        flow: u8,
        reply: bool,
        flags: u8,
        seq_off: u16,
        ack_off: u16,
        len: u8,
        drop: bool,
    },
    /// An ICMP error quoting a packet of a flow.
    IcmpError {
        flow: u8,
        reply: bool,
        icmp_type: u8,
    },
    /// Time passes.
    Wait {
        ms: u32,
    },
    Flush,
    Delete {
        proto: u8,
    },
    SetMax {
        max: u8,
    },
    /// Random bytes.
    Junk {
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    Icmp,
    Other,
}

/// (kind, client port, server port, zone)
const FLOWS: [(Kind, u16, u16, u16); 8] = [
    (Kind::Tcp, 40000, 80, 0),
    (Kind::Tcp, 40001, 80, 0),
    (Kind::Tcp, 40000, 80, 3),
    (Kind::Udp, 5000, 53, 0),
    (Kind::Udp, 5001, 53, 3),
    (Kind::Icmp, 7, 0, 0),
    (Kind::Icmp, 8, 0, 0),
    (Kind::Other, 0, 0, 0),
];

const TCP_FLAGS: [u8; 9] = [
    SYN,
    SYN | ACK,
    ACK,
    ACK | PSH,
    FIN | ACK,
    RST,
    RST | ACK,
    SYN | FIN,
    0,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..8u8, any::<bool>(), 0..9u8, 0..3000u16, 0..3000u16, 0..3u8, prop::bool::weighted(0.1)).prop_map(
            |(flow, reply, f, seq_off, ack_off, len, drop)| Op::Packet {
                flow,
                reply,
                flags: TCP_FLAGS[f as usize],
                seq_off,
                ack_off,
                len,
                drop
            }
        ),
        1 => (0..8u8, any::<bool>(), prop::sample::select(vec![3u8, 11, 12])).prop_map(|(flow, reply, icmp_type)| Op::IcmpError { flow, reply, icmp_type }),
        3 => prop_oneof![0..3000u32, 0..200_000u32].prop_map(|ms| Op::Wait { ms }),
        1 => Just(Op::Flush),
        1 => prop::sample::select(vec![1u8, 6, 17, 99]).prop_map(|proto| Op::Delete { proto }),
        1 => (0..12u8).prop_map(|max| Op::SetMax { max }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| Op::Junk { bytes }),
    ]
}

/// Per-flow TCP sequence bases, so that some random sequences are valid
/// handshakes and data.
const ISN: [u32; 2] = [1_000, 900_000];

fn packet(
    flow: usize,
    reply: bool,
    flags: u8,
    seq_off: u16,
    ack_off: u16,
    len: u8,
) -> (Vec<u8>, Zone) {
    let (kind, cport, sport, zone) = FLOWS[flow];
    let (src, sp, dst, dp) = if reply {
        (S, sport, C, cport)
    } else {
        (C, cport, S, sport)
    };
    let data = vec![0x61; usize::from(len) * 100];
    let p = match kind {
        Kind::Tcp => {
            let (me, peer) = if reply {
                (ISN[1], ISN[0])
            } else {
                (ISN[0], ISN[1])
            };
            tcp(
                src,
                sp,
                dst,
                dp,
                flags,
                me + u32::from(seq_off),
                peer + u32::from(ack_off),
                &data,
            )
        }
        Kind::Udp => udp(src, sp, dst, dp, &data),
        Kind::Icmp => echo(src, dst, if reply { 0 } else { 8 }, cport),
        Kind::Other => ipv4(src, dst, 99, &data),
    };
    (p, Zone(zone))
}

struct Run {
    ct: Conntrack,
    now: Instant,
    log: Vec<String>,
}

impl Run {
    fn new() -> Run {
        let mut s = Sysctls::default();
        s.buckets = 64;
        Run {
            ct: Conntrack::new(s),
            now: Instant(0),
            log: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Packet {
                flow,
                reply,
                flags,
                seq_off,
                ack_off,
                len,
                drop,
            } => {
                let (p, zone) = packet(flow as usize, reply, flags, seq_off, ack_off, len);
                self.send(&p, zone, drop);
            }
            Op::IcmpError {
                flow,
                reply,
                icmp_type,
            } => {
                let (q, zone) = packet(flow as usize, reply, ACK, 0, 0, 0);
                let (from, to) = if reply { (C, S) } else { (S, C) };
                self.send(&icmp_error(from, to, icmp_type, 0, &q), zone, false);
            }
            Op::Wait { ms } => {
                self.now = self.now + Duration::from_millis(u64::from(ms));
                self.ct.handle_timeout(self.now);
            }
            Op::Flush => {
                self.ct.flush(self.now);
            }
            Op::Delete { proto } => {
                let f = Filter {
                    proto: Some(proto),
                    ..Filter::default()
                };
                self.log
                    .extend(self.ct.delete(&f, FormatOpts::default(), self.now));
            }
            Op::SetMax { max } => self
                .ct
                .set_sysctl("nf_conntrack_max", &max.to_string())
                .unwrap(),
            Op::Junk { ref bytes } => self.send(bytes, Zone(0), false),
        }
        self.log
            .extend(std::iter::from_fn(|| self.ct.poll_event()).map(|e| e.to_string()));
        self.log
            .extend(std::iter::from_fn(|| self.ct.poll_log()).map(|l| l.text));
    }

    fn send(&mut self, p: &[u8], zone: Zone, drop: bool) {
        self.ct.handle_timeout(self.now);
        let r = self.ct.handle_packet(p, CtHook::PreRouting, zone, self.now);
        self.log.push(format!(
            "{:?} {:?} {:?}",
            r.state(),
            r.invalid_reason(),
            r.verdict
        ));
        if let Some(h) = r.ct {
            if drop {
                self.ct.release(h);
            } else {
                let c = self.ct.confirm(h, self.now);
                self.log.push(format!("{:?}", c.verdict));
            }
        }
    }

    /// `before`: the count before the operation (lowering
    /// nf_conntrack_max evicts nothing, as in Linux; it only stops growth).
    fn check(&mut self, before: u32) -> Result<(), TestCaseError> {
        let ct = &mut self.ct;
        let now = self.now;
        let max = ct.sysctls().max;
        prop_assert!(
            max == 0 || ct.count() <= max.max(before),
            "count {} > max {}",
            ct.count(),
            max
        );
        // No packet holds a reference between operations.
        prop_assert_eq!(ct.count(), ct.confirmed_count());
        prop_assert!(ct.keys(Table::Unconfirmed, now).is_empty());
        prop_assert!(ct.keys(Table::Dying, now).is_empty());
        let keys = ct.keys(Table::Conntrack, now);
        prop_assert_eq!(
            keys.len() as u32,
            ct.confirmed_count(),
            "expired entry survived handle_timeout"
        );
        for k in keys {
            let e = ct.get(k).unwrap();
            prop_assert_eq!(Some(*e.reply()), e.orig().invert());
            prop_assert!(e.deadline().unwrap() > now);
            prop_assert_eq!(e.use_count(), 1);
            prop_assert_eq!(ct.lookup(e.orig(), e.zone(), now), Some((k, Dir::Original)));
            prop_assert_eq!(ct.lookup(e.reply(), e.zone(), now), Some((k, Dir::Reply)));
        }
        match ct.poll_timeout() {
            None => prop_assert_eq!(ct.count(), 0),
            Some(t) => prop_assert!(t > now),
        }
        Ok(())
    }

    fn snapshot(&self) -> (String, String, Vec<String>) {
        let (l, _) = self.ct.conntrack_l(
            Table::Conntrack,
            &Filter::default(),
            FormatOpts {
                extended: true,
                id: true,
            },
            self.now,
        );
        (l, self.ct.stats().conntrack_s(), self.log.clone())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_table_consistent(ops in prop::collection::vec(op(), 1..80)) {
        let mut a = Run::new();
        for op in &ops {
            let before = a.ct.count();
            a.apply(op);
            a.check(before)?;
        }
        // Identical inputs, identical tables.
        let mut b = Run::new();
        for op in &ops {
            b.apply(op);
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..120), hook in any::<bool>()) {
        let mut ct = Conntrack::default();
        let hook = if hook { CtHook::PreRouting } else { CtHook::LocalOut };
        let r = ct.handle_packet(&bytes, hook, Zone(0), Instant(0));
        if let Some(h) = r.ct {
            let _ = ct.confirm(h, Instant(0));
        }
    }

    #[test]
    fn mutated_packets_never_panic(flow in 0..8usize, at in 0..80usize, byte in any::<u8>(), cut in 0..100usize) {
        let mut ct = Conntrack::default();
        let (p, zone) = packet(flow, false, SYN, 0, 0, 0);
        let mut m = p.clone();
        let i = at % m.len();
        m[i] = byte;
        m.truncate(m.len().saturating_sub(cut % 20));
        for pkt in [&p, &m] {
            let r = ct.handle_packet(pkt, CtHook::PreRouting, zone, Instant(0));
            if let Some(h) = r.ct {
                let _ = ct.confirm(h, Instant(0));
            }
        }
        let q = icmp_error(S, C, 3, 3, &m);
        let r = ct.handle_packet(&q, CtHook::PreRouting, zone, Instant(0));
        if let Some(h) = r.ct {
            ct.release(h);
        }
    }
}
