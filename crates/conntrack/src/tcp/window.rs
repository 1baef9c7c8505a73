//! `tcp_in_window()`: per-direction sequence and window tracking
//! (reference/tcp-tracking.md §5–6).
//!
//! With sender = `seen[dir]` and receiver = `seen[!dir]`, a segment must
//! satisfy, in sequence space:
//!
//! - I.   `seq <= sender.td_maxend`                      (else INVALID, or IGNORE
//!   when only a little overshoot of an otherwise good segment);
//! - III. `sack <= receiver.td_end`                      (else INVALID);
//! - II.  `end >= sender.td_end - receiver.td_maxwin`     (else IGNORE);
//! - IV.  `sack >= receiver.td_end - MAXACKWINDOW(sender)` (else IGNORE).
//!
//! In 6.x the checks run in that order (I, III, II, IV), and II and IV only
//! make the packet *ignored* (accepted, no update), not INVALID.
//! `nf_conntrack_tcp_be_liberal` or the sender's BE_LIBERAL flag turns
//! every failure into an accept **without** the state update (the kernel
//! returns from `tcp_in_window()` at once).

use super::segment::TcpSegment;
use super::seq::Seq;
use super::table::PacketClass;
use super::tracker::{Tcp, TcpWindow};
use super::{Dir, TcpConntrack, TcpSysctl};

/// Check I failed: "SEQ is over upper bound %u (over the window of the
/// receiver)" without the number. INVALID.
pub const SEQ_OVER_UPPER: &str = "SEQ is over upper bound (over the window of the receiver)";
/// Check III failed: "ACK is over upper bound %u (ACKed data not seen yet)"
/// without the number. INVALID.
pub const ACK_OVER_UPPER: &str = "ACK is over upper bound (ACKed data not seen yet)";
/// Check II failed: "SEQ is under lower bound %u (already ACKed data
/// retransmitted)" without the number. Ignored (accepted) in 6.x.
pub const SEQ_UNDER_LOWER: &str = "SEQ is under lower bound (already ACKed data retransmitted)";
/// Check IV failed: "ignored ACK under lower bound %u (possible overly
/// delayed)" without the number. Ignored (accepted) in 6.x.
pub const ACK_UNDER_LOWER: &str = "ignored ACK under lower bound (possible overly delayed)";
/// Check I failed by a small overshoot of a segment that is otherwise fine:
/// "%u bytes more than expected" without the number. Ignored, but the
/// sender's `td_end` advances so that the peer's ACK of it is not "over
/// upper bound".
pub const BYTES_MORE_THAN_EXPECTED: &str = "bytes more than expected";
/// An RST whose sequence number lies before the peer's highest ACK. INVALID
/// (unless `nf_conntrack_tcp_ignore_invalid_rst`).
pub const INVALID_RST: &str = "invalid rst";
/// The ACK that LAST_ACK would take as the last one answers a SYN we let
/// through (RFC 5961 challenge ACK). Ignored.
pub const CHALLENGE_ACK_IGNORED: &str = "challenge-ack ignored";

/// `MAXACKWINCONST`.
const MAX_ACK_WIN_CONST: u32 = 66_000;
/// `TCP_MAX_WSCALE`.
const MAX_WSCALE: u8 = 14;

/// `enum nf_ct_tcp_action`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum WindowVerdict {
    Accept,
    Ignore(&'static str),
    Invalid(&'static str),
}

/// `MAXACKWINDOW(sender)`.
#[inline]
fn max_ack_window(sender: &TcpWindow) -> u32 {
    sender.maxwin.max(MAX_ACK_WIN_CONST)
}

/// `tcp_options()` applied to one direction: only when the header has
/// options at all, the scale and option flags (all but BE_LIBERAL) are
/// reset, then set from the options found.
pub(super) fn apply_options(side: &mut TcpWindow, seg: &TcpSegment) {
    if !seg.has_options {
        return;
    }
    side.scale = 0;
    side.flags &= TcpWindow::BE_LIBERAL;
    if seg.sack_permitted {
        side.flags |= TcpWindow::SACK_PERM;
    }
    if let Some(shift) = seg.wscale {
        side.scale = shift.min(MAX_WSCALE);
        side.flags |= TcpWindow::WINDOW_SCALE;
    }
}

impl Tcp {
    /// `tcp_init_sender()`: (re)initialise `seen[dir]` from a SYN or SYN/ACK.
    /// Window scaling is kept only if both sides offered it; the check is
    /// made when the REPLY side's SYN(/ACK) is seen.
    fn init_sender(&mut self, dir: Dir, seg: &TcpSegment, end: Seq, win: u32) {
        let (s, r) = (dir as usize, dir.opposite() as usize);
        let sender = &mut self.seen[s];
        sender.end = end;
        sender.maxend = end;
        sender.maxwin = win.max(1);
        apply_options(sender, seg);
        let both = self.seen[s].flags & self.seen[r].flags & TcpWindow::WINDOW_SCALE != 0;
        if dir == Dir::Reply && !both {
            self.seen[s].scale = 0;
            self.seen[r].scale = 0;
        }
    }

    /// `nf_tcp_log_invalid()`: under `be_liberal` (sysctl or the sender's
    /// flag) a failed check accepts the packet.
    fn window_failure(
        &self,
        s: usize,
        sysctl: &TcpSysctl,
        verdict: WindowVerdict,
    ) -> WindowVerdict {
        if sysctl.be_liberal || self.seen[s].flags & TcpWindow::BE_LIBERAL != 0 {
            WindowVerdict::Accept
        } else {
            verdict
        }
    }

    /// `tcp_in_window()`. `self.state` is still the old state here.
    pub(super) fn in_window(
        &mut self,
        dir: Dir,
        index: PacketClass,
        seg: &TcpSegment,
        sysctl: &TcpSysctl,
    ) -> WindowVerdict {
        let (s, r) = (dir as usize, dir.opposite() as usize);
        let mut seq = Seq(seg.seq);
        let mut ack = Seq(seg.ack);
        let mut sack = if self.seen[r].flags & TcpWindow::SACK_PERM != 0 {
            Seq(seg.sack)
        } else {
            ack
        };
        let win_raw = seg.window;
        let mut win = u32::from(win_raw);
        let mut end = Seq(seg.end());

        // NAT sequence adjustment of the other direction.
        ack = ack - seg.ack_offset;
        sack = sack - seg.ack_offset;

        if self.seen[s].maxwin == 0 {
            if seg.syn() {
                // SYN/ACK answering the SYN, or the reply's SYN in a
                // simultaneous open.
                self.init_sender(dir, seg, end, win);
                if !seg.ack_flag() {
                    return WindowVerdict::Accept;
                }
            } else {
                // First packet of this direction in a picked-up connection:
                // its history is lost, take what the packet says.
                let sender = &mut self.seen[s];
                sender.end = end;
                let swin = win << sender.scale;
                sender.maxwin = swin.max(1);
                sender.maxend = end + sender.maxwin;
                let receiver = &mut self.seen[r];
                if receiver.maxwin == 0 {
                    // Nothing seen the other way yet: make III and IV pass.
                    receiver.end = sack;
                    receiver.maxend = sack;
                } else if sack == receiver.end + 1 {
                    // Likely the answer to a keep-alive (needed for III).
                    receiver.end += 1;
                }
            }
        } else if seg.syn()
            && end.after(self.seen[s].end)
            && matches!(self.state, TcpConntrack::SynSent | TcpConntrack::SynRecv)
        {
            // RFC 793: a reinitialised TCP uses higher sequence numbers.
            // Re-initialise this direction as for the first SYN(/ACK).
            self.init_sender(dir, seg, end, win);
            if dir == Dir::Reply && !seg.ack_flag() {
                return WindowVerdict::Accept;
            }
        }

        if !seg.ack_flag() {
            // No ACK: pretend it acknowledges everything seen.
            ack = self.seen[r].end;
            sack = ack;
        } else if seg.rst() && ack == Seq(0) {
            // Broken stacks send RST+ACK with ack 0.
            ack = self.seen[r].end;
            sack = ack;
        }

        if seg.rst() && seq == Seq(0) && self.state == TcpConntrack::SynSent {
            // RST answering a SYN.
            seq = self.seen[s].end;
            end = seq;
        }

        let sender = self.seen[s];
        let receiver = self.seen[r];

        // I. Upper bound for valid data.
        if !seq.before(sender.maxend + 1) {
            let overshot = (end - sender.maxend).wrapping_add(1);
            let ack_ok = sack.after(receiver.end - max_ack_window(&sender) - 1);
            let in_recv_win = receiver.maxwin != 0 && end.after(sender.end - receiver.maxwin - 1);
            if in_recv_win && ack_ok && overshot <= receiver.maxwin && sack.before(receiver.end + 1)
            {
                // A TCP that sends more than the window allows: if the peer
                // ACKs these bytes, III must not fail on every later packet.
                self.seen[s].end = end;
                self.seen[s].flags |= TcpWindow::DATA_UNACKNOWLEDGED;
                return self.window_failure(
                    s,
                    sysctl,
                    WindowVerdict::Ignore(BYTES_MORE_THAN_EXPECTED),
                );
            }
            return self.window_failure(s, sysctl, WindowVerdict::Invalid(SEQ_OVER_UPPER));
        }

        // III. Upper bound for valid (s)ack.
        if !sack.before(receiver.end + 1) {
            return self.window_failure(s, sysctl, WindowVerdict::Invalid(ACK_OVER_UPPER));
        }

        // II. Lower bound for valid data (only once the receiver's window is known).
        let in_recv_win = receiver.maxwin == 0 || end.after(sender.end - receiver.maxwin - 1);
        if !in_recv_win {
            return self.window_failure(s, sysctl, WindowVerdict::Ignore(SEQ_UNDER_LOWER));
        }

        // IV. Lower bound for valid (s)ack.
        if !sack.after(receiver.end - max_ack_window(&sender) - 1) {
            return self.window_failure(s, sysctl, WindowVerdict::Ignore(ACK_UNDER_LOWER));
        }

        // RFC 1323: windows of SYN segments are never scaled.
        if !seg.syn() {
            win <<= sender.scale;
        }

        // Update the sender.
        let sender = &mut self.seen[s];
        let swin = win.wrapping_add(sack - ack);
        if sender.maxwin < swin {
            sender.maxwin = swin;
        }
        if end.after(sender.end) {
            sender.end = end;
            sender.flags |= TcpWindow::DATA_UNACKNOWLEDGED;
        }
        if seg.ack_flag() {
            if sender.flags & TcpWindow::MAXACK_SET == 0 {
                sender.maxack = ack;
                sender.flags |= TcpWindow::MAXACK_SET;
            } else if ack.after(sender.maxack) {
                sender.maxack = ack;
            }
        }
        let sender_maxend = sender.maxend;

        // Update the receiver.
        let receiver = &mut self.seen[r];
        if receiver.maxwin != 0 && end.after(sender_maxend) {
            receiver.maxwin = receiver.maxwin.wrapping_add(end - sender_maxend);
        }
        if (sack + win).after(receiver.maxend - 1) {
            receiver.maxend = sack + win;
            if win == 0 {
                receiver.maxend += 1;
            }
        }
        if ack == receiver.end {
            receiver.flags &= !TcpWindow::DATA_UNACKNOWLEDGED;
        }

        // Count retransmissions of identical ACK-class segments.
        if index == PacketClass::Ack {
            if self.last_dir == dir
                && self.last_seq == seq
                && self.last_ack == ack
                && self.last_end == end
                && self.last_win == win_raw
            {
                self.retrans = self.retrans.wrapping_add(1);
            } else {
                self.last_dir = dir;
                self.last_seq = seq;
                self.last_ack = ack;
                self.last_end = end;
                self.last_win = win_raw;
                self.retrans = 0;
            }
        }

        WindowVerdict::Accept
    }
}
