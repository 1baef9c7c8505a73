//! Every cell of Linux's TCP transition table, driven with real segments.
//!
//! `EXPECTED` is typed from reference/tcp-tracking.md §3 (which copies
//! `tcp_conntracks` of nf_conntrack_proto_tcp.c), independently of
//! `ctsim_conntrack::tcp::table`. For each (direction, class, state) the test
//! drives a fresh connection into the state with in-window segments (client
//! ISN 1000, server ISN 5000), sends one in-window segment of the class in
//! that direction, and checks the outcome and the new state.
//!
//! Checked against the kernel: the same paths and probes were sent as raw
//! packets through a Linux 6.18.44 router namespace (client and server in
//! their own namespaces, nf_conntrack_log_invalid=6, observed with
//! `conntrack -L`, the kernel log and an INVALID rule counter). All 95 cells
//! a real packet can reach agreed with `EXPECTED`, including the log texts
//! and the special cases below (reopen, destroy on an unreplied RST). Cells
//! not reachable with real packets: the NONE class row (`tcp_error()` rejects
//! every flag set of that class) and the REPLY column of state NONE (an entry
//! is never in NONE when a reply arrives); they are checked against the table
//! only.

#[path = "tcp_common.rs"]
mod common;

use common::*;
use ctsim_conntrack::tcp::{Dir, PacketClass, TcpConntrack, TcpFlags, TcpOutcome, TcpSegment};

use TcpConntrack as S;

const STATES: [TcpConntrack; 10] = [
    S::None,
    S::SynSent,
    S::SynRecv,
    S::Established,
    S::FinWait,
    S::CloseWait,
    S::LastAck,
    S::TimeWait,
    S::Close,
    S::SynSent2,
];
const CLASSES: [PacketClass; 6] = [
    PacketClass::Syn,
    PacketClass::SynAck,
    PacketClass::Fin,
    PacketClass::Ack,
    PacketClass::Rst,
    PacketClass::None,
];

/// reference/tcp-tracking.md §3, row by row.
#[rustfmt::skip]
const EXPECTED: [[[&str; 10]; 6]; 2] = [
    // ORIGINAL   NONE   SYN_SENT SYN_RECV ESTAB  FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE  SYN_SENT2
    [
        /* SYN    */ ["SS", "SS", "IG", "IG", "IG", "IG", "IG", "SS", "SS", "S2"],
        /* SYNACK */ ["IV", "IV", "SR", "IV", "IV", "IV", "IV", "IV", "IV", "SR"],
        /* FIN    */ ["IV", "IV", "FW", "FW", "LA", "LA", "LA", "TW", "CL", "IV"],
        /* ACK    */ ["ES", "IV", "ES", "ES", "CW", "CW", "TW", "TW", "CL", "IV"],
        /* RST    */ ["IV", "CL", "CL", "CL", "CL", "CL", "CL", "CL", "CL", "CL"],
        /* NONE   */ ["IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV"],
    ],
    // REPLY
    [
        /* SYN    */ ["IV", "S2", "IV", "IV", "IV", "IV", "IV", "SS", "IV", "S2"],
        /* SYNACK */ ["IV", "SR", "IG", "IG", "IG", "IG", "IG", "IG", "IG", "SR"],
        /* FIN    */ ["IV", "IV", "FW", "FW", "LA", "LA", "LA", "TW", "CL", "IV"],
        /* ACK    */ ["IV", "IG", "SR", "ES", "CW", "CW", "TW", "TW", "CL", "IG"],
        /* RST    */ ["IV", "CL", "CL", "CL", "CL", "CL", "CL", "CL", "CL", "CL"],
        /* NONE   */ ["IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV", "IV"],
    ],
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    To(TcpConntrack),
    Invalid,
    Ignore,
}

fn cell(s: &str) -> Cell {
    match s {
        "IV" => Cell::Invalid,
        "IG" => Cell::Ignore,
        "NO" => Cell::To(S::None),
        "SS" => Cell::To(S::SynSent),
        "SR" => Cell::To(S::SynRecv),
        "ES" => Cell::To(S::Established),
        "FW" => Cell::To(S::FinWait),
        "CW" => Cell::To(S::CloseWait),
        "LA" => Cell::To(S::LastAck),
        "TW" => Cell::To(S::TimeWait),
        "CL" => Cell::To(S::Close),
        "S2" => Cell::To(S::SynSent2),
        other => panic!("bad cell {other}"),
    }
}

/// The path into each state: (direction, segment).
fn path(state: TcpConntrack) -> Vec<(Dir, TcpSegment)> {
    let ss = vec![(O, syn(1000))];
    let sr = [ss.clone(), vec![(R, synack(5000, 1001))]].concat();
    let es = [sr.clone(), vec![(O, ack(1001, 5001))]].concat();
    let fw = [es.clone(), vec![(O, fin(1001, 5001))]].concat();
    let cw = [fw.clone(), vec![(R, ack(5001, 1002))]].concat();
    let la = [cw.clone(), vec![(R, fin(5001, 1002))]].concat();
    match state {
        S::None => vec![],
        S::SynSent => ss,
        S::SynSent2 => [ss, vec![(R, syn(5000))]].concat(),
        S::SynRecv => sr,
        S::Established => es,
        S::FinWait => fw,
        S::CloseWait => cw,
        S::LastAck => la,
        S::TimeWait => [la, vec![(O, ack(1002, 5002))]].concat(),
        S::Close => [es, vec![(O, rst(1001))]].concat(),
    }
}

/// (client next seq, server next seq) once in `state` via `path`.
fn next_seqs(state: TcpConntrack) -> (u32, u32) {
    match state {
        S::None => (1000, 5000),
        S::SynSent => (1001, 5000),
        S::SynSent2 | S::SynRecv | S::Established | S::Close => (1001, 5001),
        S::FinWait | S::CloseWait => (1002, 5001),
        S::LastAck | S::TimeWait => (1002, 5002),
    }
}

/// An in-window segment of `class` sent in `dir` in `state`.
fn probe(dir: Dir, class: PacketClass, state: TcpConntrack) -> TcpSegment {
    let (c, s) = next_seqs(state);
    let (nxt, peer, isn) = if dir == O { (c, s, 1000) } else { (s, c, 5000) };
    match class {
        PacketClass::Syn => {
            let retransmit = matches!(state, S::None | S::SynSent | S::SynSent2);
            syn(if retransmit { isn } else { nxt + 100_000 })
        }
        PacketClass::SynAck => synack(isn, peer),
        PacketClass::Fin => fin(nxt, peer),
        PacketClass::Ack => ack(nxt, peer),
        PacketClass::Rst => rst(nxt),
        // No real packet has this class: tcp_error() refuses its flags.
        PacketClass::None => TcpSegment::new(TcpFlags::PSH, nxt, peer, 64240),
    }
}

fn check_cell(dir: Dir, class: PacketClass, state: TcpConntrack) {
    let expected = cell(EXPECTED[dir as usize][class as usize][state as usize]);
    let what = format!("{dir:?} {class:?} in {state}: expected {expected:?}");
    let seg = probe(dir, class, state);
    let idx = class as u8;
    let d = dir as u8;

    if state == S::None && dir == O {
        // No entry yet: tcp_new().
        let mut c = Conn::new(Default::default());
        let out = c.send(O, seg);
        match expected {
            Cell::Invalid => {
                assert_eq!(
                    out,
                    TcpOutcome::Invalid {
                        reason: "invalid new"
                    },
                    "{what}"
                );
                assert!(c.tcp.is_none(), "{what}");
            }
            Cell::To(to) => {
                assert!(matches!(out, TcpOutcome::Accept { .. }), "{what}: {out:?}");
                assert_eq!(c.state(), Some(to), "{what}");
            }
            Cell::Ignore => unreachable!(),
        }
        return;
    }

    let mut c = Conn::new(Default::default());
    if state == S::None {
        // An entry between tcp_new() and its first tcp_packet(): only
        // reachable by calling the API directly.
        c.tcp = Some(ctsim_conntrack::tcp::Tcp::new(&syn(1000), &c.sysctl).unwrap());
    }
    for (pd, ps) in path(state) {
        let out = c.send(pd, ps);
        assert!(out.is_accepted(), "path to {state}: {out:?}");
    }
    assert_eq!(c.state(), Some(state), "path to {state}");
    let seen_reply = c.seen_reply;

    let out = c.send(dir, seg);
    match expected {
        Cell::Invalid => {
            let reason = format!("packet (index {idx}) in dir {d} invalid, state {state}");
            assert_eq!(
                out,
                TcpOutcome::Invalid {
                    reason: reason.leak()
                },
                "{what}"
            );
            assert_eq!(c.state(), Some(state), "{what}");
        }
        Cell::Ignore => {
            let reason = format!("packet (index {idx}) in dir {d} ignored, state {state}");
            assert_eq!(
                out,
                TcpOutcome::Ignore {
                    reason: reason.leak()
                },
                "{what}"
            );
            assert_eq!(c.state(), Some(state), "{what}");
        }
        // SYN in TIME_WAIT/CLOSE: both paths leave a reason to reopen (a FIN
        // was seen, or the last packet in ORIGINAL was an RST), so the old
        // entry goes and the SYN creates a new one (§4).
        Cell::To(S::SynSent) if matches!(state, S::TimeWait | S::Close) => {
            assert_eq!(out, TcpOutcome::Reopen, "{what}");
            assert_eq!(c.state(), Some(S::SynSent), "{what}");
            assert!(!c.seen_reply && !c.assured, "{what}: a fresh entry");
            assert_eq!(
                c.flipped,
                dir == R,
                "{what}: the SYN's sender is the new ORIGINAL"
            );
        }
        // An RST before any reply deletes the entry (§4.7).
        Cell::To(S::Close) if !seen_reply => {
            assert_eq!(out, TcpOutcome::AcceptAndDestroy, "{what}");
            assert!(c.tcp.is_none(), "{what}");
        }
        // A SYN in SYN_SENT without reply (a retransmission, or the
        // reply's SYN of a simultaneous open: Linux does not look at the
        // direction) does not refresh the timeout.
        Cell::To(to) if class == PacketClass::Syn && state == S::SynSent && !seen_reply => {
            assert_eq!(out, TcpOutcome::AcceptNoRefresh, "{what}");
            assert_eq!(c.state(), Some(to), "{what}");
        }
        Cell::To(to) => {
            assert!(matches!(out, TcpOutcome::Accept { .. }), "{what}: {out:?}");
            // SYN_RECV + ACK in REPLY after a simultaneous open is handled
            // outside the table; none of our paths sets that flag before it.
            assert_eq!(c.state(), Some(to), "{what}");
        }
    }
}

#[test]
fn every_cell_of_the_transition_table() {
    let mut n = 0;
    for dir in [O, R] {
        for class in CLASSES {
            for state in STATES {
                check_cell(dir, class, state);
                n += 1;
            }
        }
    }
    assert_eq!(n, 120);
}

/// The library's own `const` table must equal the one typed here.
#[test]
fn library_table_matches_the_reference() {
    use ctsim_conntrack::tcp::table::{next, Next};
    for dir in [O, R] {
        for class in CLASSES {
            for state in STATES {
                let want = cell(EXPECTED[dir as usize][class as usize][state as usize]);
                let got = match next(dir, class, state) {
                    Next::To(s) => Cell::To(s),
                    Next::Invalid => Cell::Invalid,
                    Next::Ignore => Cell::Ignore,
                };
                assert_eq!(got, want, "{dir:?} {class:?} {state}");
            }
        }
    }
}

/// `conntrack -L` spellings.
#[test]
fn state_names() {
    let names: Vec<String> = STATES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names,
        [
            "NONE",
            "SYN_SENT",
            "SYN_RECV",
            "ESTABLISHED",
            "FIN_WAIT",
            "CLOSE_WAIT",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSE",
            "SYN_SENT2"
        ]
    );
}
