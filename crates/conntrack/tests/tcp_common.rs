//! Shared harness for the TCP tracker tests (included by the other
//! `tcp_*.rs` files with `#[path]`; as its own test crate it has no tests).
//!
//! `Conn` plays the entry table: it creates the `Tcp` with `Tcp::new`, runs
//! the first packet through `Tcp::packet`, keeps the SEEN_REPLY and ASSURED
//! bits, deletes the entry on `AcceptAndDestroy` and recreates it on
//! `Reopen` the way `nf_conntrack_in()` does.
#![allow(dead_code)]

use ctsim_conntrack::tcp::{Dir, Tcp, TcpConntrack, TcpFlags, TcpOutcome, TcpSegment, TcpSysctl};
use ctsim_conntrack::time::Duration;

pub const O: Dir = Dir::Original;
pub const R: Dir = Dir::Reply;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn syn(seq: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::SYN, seq, 0, 64240)
}
pub fn synack(seq: u32, ack: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::SYN | TcpFlags::ACK, seq, ack, 65160)
}
pub fn ack(seq: u32, ack: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::ACK, seq, ack, 64240)
}
pub fn data(seq: u32, ack: u32, len: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::ACK | TcpFlags::PSH, seq, ack, 64240).with_len(len)
}
pub fn fin(seq: u32, ack: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::FIN | TcpFlags::ACK, seq, ack, 64240)
}
pub fn rst(seq: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::RST, seq, 0, 64240)
}
pub fn rstack(seq: u32, ack: u32) -> TcpSegment {
    TcpSegment::new(TcpFlags::RST | TcpFlags::ACK, seq, ack, 64240)
}
/// Same segment with another window.
pub fn win(mut seg: TcpSegment, w: u16) -> TcpSegment {
    seg.window = w;
    seg
}

/// One tracked connection, as the entry table would hold it.
#[derive(Clone, Debug)]
pub struct Conn {
    pub tcp: Option<Tcp>,
    pub seen_reply: bool,
    pub assured: bool,
    /// The entry was recreated by a reply-direction packet (reopen with
    /// roles switched): directions given to `send` are then flipped.
    pub flipped: bool,
    /// The last timeout set by an `Accept`.
    pub timeout: Option<Duration>,
    pub sysctl: TcpSysctl,
}

impl Conn {
    pub fn new(sysctl: TcpSysctl) -> Conn {
        Conn {
            tcp: None,
            seen_reply: false,
            assured: false,
            flipped: false,
            timeout: None,
            sysctl,
        }
    }

    pub fn state(&self) -> Option<TcpConntrack> {
        self.tcp.map(|t| t.state())
    }

    /// Sends `seg` in `dir` (relative to the first connection's ORIGINAL).
    /// Returns the tracker's outcome; on `Reopen` the entry has already been
    /// recreated from the same packet.
    pub fn send(&mut self, dir: Dir, seg: TcpSegment) -> TcpOutcome {
        let dir = if self.flipped { dir.opposite() } else { dir };
        let Some(tcp) = self.tcp.as_mut() else {
            return self.create(dir, seg);
        };
        let out = tcp.packet(dir, &seg, self.seen_reply, self.assured, &self.sysctl);
        match out {
            TcpOutcome::Accept { timeout, assured } => {
                self.timeout = Some(timeout);
                self.assured |= assured;
            }
            TcpOutcome::AcceptAndDestroy => self.tcp = None,
            TcpOutcome::Reopen => {
                self.tcp = None;
                let again = self.create(dir, seg);
                assert!(again.is_accepted(), "reopening packet refused: {again:?}");
                return TcpOutcome::Reopen;
            }
            _ => {}
        }
        if out.is_accepted() && dir == Dir::Reply {
            self.seen_reply = true;
        }
        out
    }

    /// `send` for a step that must be let through.
    #[track_caller]
    pub fn go(&mut self, dir: Dir, seg: TcpSegment) {
        let out = self.send(dir, seg);
        assert!(out.is_accepted(), "{dir:?} {seg:?}: {out:?}");
    }

    fn create(&mut self, dir: Dir, seg: TcpSegment) -> TcpOutcome {
        match Tcp::new(&seg, &self.sysctl) {
            Err(reason) => TcpOutcome::Invalid { reason },
            Ok(mut tcp) => {
                // The packet's direction becomes ORIGINAL of the new entry.
                self.flipped ^= dir == Dir::Reply;
                self.seen_reply = false;
                self.assured = false;
                let out = tcp.packet(Dir::Original, &seg, false, false, &self.sysctl);
                if let TcpOutcome::Accept { timeout, .. } = out {
                    self.timeout = Some(timeout);
                }
                self.tcp = Some(tcp);
                out
            }
        }
    }
}

/// The client's ISN is 1000, the server's 5000, no options.
pub fn handshake() -> Conn {
    let mut c = Conn::new(TcpSysctl::default());
    c.go(O, syn(1000));
    c.go(R, synack(5000, 1001));
    c.go(O, ack(1001, 5001));
    assert_eq!(c.state(), Some(TcpConntrack::Established));
    assert!(c.assured);
    c
}

/// Asserts an `Accept` with this timeout and state.
#[track_caller]
pub fn assert_accept(out: TcpOutcome, c: &Conn, state: TcpConntrack, timeout: Duration) {
    match out {
        TcpOutcome::Accept { timeout: t, .. } => assert_eq!(t, timeout, "timeout"),
        other => panic!("expected Accept, got {other:?}"),
    }
    assert_eq!(c.state(), Some(state));
}
