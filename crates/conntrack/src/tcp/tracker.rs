//! `tcp_new()` and `nf_conntrack_tcp_packet()`: the per-connection state
//! machine around the transition table (reference/tcp-tracking.md §4, §7).

use super::segment::TcpSegment;
use super::seq::Seq;
use super::table::{self, Next, PacketClass};
use super::window::{apply_options, WindowVerdict, CHALLENGE_ACK_IGNORED, INVALID_RST};
use super::{Dir, TcpConntrack, TcpOutcome, TcpSysctl};
use crate::time::Duration;

/// `tcp_new()` refused a packet the table maps to INVALID from NONE (SYN/ACK,
/// FIN, RST, no flags): Linux logs "invalid new".
pub const INVALID_NEW: &str = "invalid new";
/// `tcp_new()` refused a lone ACK because `nf_conntrack_tcp_loose=0`. Linux
/// logs nothing in this case; this text is ours.
pub const LOOSE_OFF: &str = "no SYN and nf_conntrack_tcp_loose=0";

/// One direction's window data (`struct ip_ct_tcp_state`, `seen[dir]`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TcpWindow {
    /// `td_end`: highest seq + len (+SYN, +FIN) this side sent.
    pub end: Seq,
    /// `td_maxend`: the right edge this side may send to (peer's ack + window).
    pub maxend: Seq,
    /// `td_maxwin`: largest (scaled) window this side advertised; 0 = not
    /// seen yet.
    pub maxwin: u32,
    /// `td_maxack`: highest ACK this side sent (valid with MAXACK_SET).
    pub maxack: Seq,
    /// `td_scale`: window scale shift applied to this side's windows.
    pub scale: u8,
    /// `IP_CT_TCP_FLAG_*` bits.
    pub flags: u8,
}

impl TcpWindow {
    /// Window scale option seen.
    pub const WINDOW_SCALE: u8 = 0x01;
    /// SACK-permitted option seen.
    pub const SACK_PERM: u8 = 0x02;
    /// This side sent the first FIN.
    pub const CLOSE_INIT: u8 = 0x04;
    /// Liberal window checks for this side (loose pickup).
    pub const BE_LIBERAL: u8 = 0x08;
    /// This side has data the peer has not acknowledged.
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    /// `maxack` is valid.
    pub const MAXACK_SET: u8 = 0x20;
}

/// `last_flags` bit: an RFC 5961 challenge ACK may follow an ignored SYN in
/// LAST_ACK (`IP_CT_EXP_CHALLENGE_ACK`).
const EXP_CHALLENGE_ACK: u8 = 0x40;
/// `last_flags` bit: simultaneous open seen (`IP_CT_TCP_SIMULTANEOUS_OPEN`).
const SIMULTANEOUS_OPEN: u8 = 0x80;

/// The TCP part of a conntrack entry (`struct ip_ct_tcp`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tcp {
    /// Window data, indexed by `Dir as usize`.
    pub(super) seen: [TcpWindow; 2],
    /// Sequence number of the last ignored or ACK-class packet.
    pub(super) last_seq: Seq,
    /// Ack of the last ACK-class packet (or of a possible challenge ACK).
    pub(super) last_ack: Seq,
    /// End of the last ignored or ACK-class packet.
    pub(super) last_end: Seq,
    /// Raw window of the last ignored or ACK-class packet.
    pub(super) last_win: u16,
    pub(super) state: TcpConntrack,
    pub(super) last_dir: Dir,
    pub(super) last_index: PacketClass,
    /// Identical ACK-class retransmissions in a row.
    pub(super) retrans: u8,
    /// Window scale of an ignored SYN.
    pub(super) last_wscale: u8,
    /// Option flags of an ignored SYN, plus the two bits above.
    pub(super) last_flags: u8,
}

impl Tcp {
    /// A zeroed entry (`memset(&ct->proto.tcp, 0, ...)`).
    fn zeroed() -> Tcp {
        Tcp {
            seen: [TcpWindow::default(); 2],
            last_seq: Seq(0),
            last_ack: Seq(0),
            last_end: Seq(0),
            last_win: 0,
            state: TcpConntrack::None,
            last_dir: Dir::Original,
            last_index: PacketClass::Syn,
            retrans: 0,
            last_wscale: 0,
            last_flags: 0,
        }
    }

    /// `tcp_new()`: may this packet (no entry exists, header already checked
    /// by [`TcpSegment::parse`]) create a connection?
    ///
    /// A SYN may (window data of the ORIGINAL side from the SYN). A lone ACK
    /// may if `loose` is on: a mid-stream pickup, with both sides marked
    /// SACK_PERM and BE_LIBERAL. Anything else gives `Err(INVALID_NEW)`;
    /// an ACK with `loose` off gives `Err(LOOSE_OFF)`. Either way no entry is
    /// created and the packet is INVALID.
    ///
    /// The returned entry is still in state NONE. Like `nf_conntrack_in()`,
    /// the caller then runs [`Tcp::packet`] on the same segment in
    /// [`Dir::Original`] with `seen_reply = assured = false`; that gives the
    /// state (SYN_SENT or ESTABLISHED) and the timeout (always an `Accept`).
    pub fn new(seg: &TcpSegment, sysctl: &TcpSysctl) -> Result<Tcp, &'static str> {
        let mut tcp = Tcp::zeroed();
        let end = Seq(seg.end());
        let win = u32::from(seg.window).max(1);
        match table::next(Dir::Original, seg.class(), TcpConntrack::None) {
            Next::To(TcpConntrack::SynSent) => {
                let orig = &mut tcp.seen[Dir::Original as usize];
                orig.end = end;
                orig.maxwin = win;
                orig.maxend = end;
                apply_options(orig, seg);
            }
            Next::To(_) if !sysctl.loose => return Err(LOOSE_OFF),
            Next::To(_) => {
                // In the middle of a connection whose history we lost: take
                // the packet's data and be liberal (window scaling unknown).
                let orig = &mut tcp.seen[Dir::Original as usize];
                orig.end = end;
                orig.maxwin = win;
                orig.maxend = end + win;
                let flags = TcpWindow::SACK_PERM | TcpWindow::BE_LIBERAL;
                tcp.seen[0].flags = flags;
                tcp.seen[1].flags = flags;
            }
            Next::Invalid | Next::Ignore => return Err(INVALID_NEW),
        }
        // tcp_packet() will set them.
        tcp.last_index = PacketClass::None;
        Ok(tcp)
    }

    /// The current state.
    #[inline]
    pub fn state(&self) -> TcpConntrack {
        self.state
    }

    /// A copy of one direction's window data (for traces and tests).
    #[inline]
    pub fn window(&self, dir: Dir) -> TcpWindow {
        self.seen[dir as usize]
    }

    /// Identical ACK-class retransmissions counted so far.
    #[inline]
    pub fn retrans(&self) -> u8 {
        self.retrans
    }

    /// `nf_conntrack_tcp_packet()` for a packet of this connection travelling
    /// in `dir` (header already checked by [`TcpSegment::parse`]).
    ///
    /// `seen_reply` and `assured` are the entry's IPS_SEEN_REPLY and
    /// IPS_ASSURED bits **before** this packet (Linux sets SEEN_REPLY only
    /// after the tracker returned). See [`TcpOutcome`] for what the caller
    /// does with the answer.
    pub fn packet(
        &mut self,
        dir: Dir,
        seg: &TcpSegment,
        seen_reply: bool,
        assured: bool,
        sysctl: &TcpSysctl,
    ) -> TcpOutcome {
        let index = seg.class();
        let mut old_state = self.state;
        let mut skip_window = false;

        let new_state = match table::next(dir, index, old_state) {
            // SYN_SENT from NONE (first SYN) or SYN_SENT (retransmission).
            Next::To(TcpConntrack::SynSent)
                if !matches!(old_state, TcpConntrack::TimeWait | TcpConntrack::Close) =>
            {
                TcpConntrack::SynSent
            }
            // SYN in TIME_WAIT/CLOSE (RFC 1122 reopen), or a sIG cell.
            next @ (Next::To(TcpConntrack::SynSent) | Next::Ignore) => {
                let reopen = next != Next::Ignore
                    && ((self.seen[0].flags | self.seen[1].flags) & TcpWindow::CLOSE_INIT != 0
                        || (self.last_dir == dir && self.last_index == PacketClass::Rst));
                if reopen {
                    // A closed or aborted connection is reopened: the caller
                    // kills this entry and looks the packet up again.
                    return TcpOutcome::Reopen;
                }
                if index == PacketClass::SynAck
                    && self.last_index == PacketClass::Syn
                    && self.last_dir != dir
                    && seg.ack == self.last_end.0
                {
                    // This SYN/ACK answers a SYN we ignored: client and server
                    // are in sync, we are not. Resynchronise from the values
                    // remembered with that SYN and go on as SYN_SENT → SYN_RECV.
                    self.resync_from_ignored_syn(dir);
                    old_state = TcpConntrack::SynSent;
                    TcpConntrack::SynRecv
                } else {
                    return self.ignore(dir, index, seg, old_state);
                }
            }
            Next::Invalid => {
                // (The SYN proxy keep-alive exception does not apply: ctsim
                // has no SYNPROXY target.)
                return TcpOutcome::Invalid {
                    reason: table::invalid_text(dir, index, old_state),
                };
            }
            Next::To(TcpConntrack::TimeWait) => {
                // RFC 5961 stacks answer a spurious SYN with a challenge
                // ACK; in LAST_ACK it must not pass for the last ACK.
                if old_state == TcpConntrack::LastAck
                    && index == PacketClass::Ack
                    && self.last_dir != dir
                    && self.last_index == PacketClass::Syn
                    && self.last_flags & EXP_CHALLENGE_ACK != 0
                {
                    self.last_flags &= !EXP_CHALLENGE_ACK;
                    return TcpOutcome::Ignore {
                        reason: CHALLENGE_ACK_IGNORED,
                    };
                }
                TcpConntrack::TimeWait
            }
            Next::To(TcpConntrack::SynSent2) => {
                // The table cannot express simultaneous open alone.
                self.last_flags |= SIMULTANEOUS_OPEN;
                TcpConntrack::SynSent2
            }
            Next::To(TcpConntrack::SynRecv) => {
                if dir == Dir::Reply
                    && index == PacketClass::Ack
                    && self.last_flags & SIMULTANEOUS_OPEN != 0
                {
                    TcpConntrack::Established
                } else {
                    TcpConntrack::SynRecv
                }
            }
            Next::To(TcpConntrack::Close) if index == PacketClass::Rst => {
                match self.rst_check(dir, seg, old_state, seen_reply, assured, sysctl) {
                    RstCheck::Invalid => {
                        return TcpOutcome::Invalid {
                            reason: INVALID_RST,
                        }
                    }
                    RstCheck::SkipWindow(state) => {
                        skip_window = true;
                        state
                    }
                    RstCheck::Window(state) => state,
                }
            }
            Next::To(state) => state,
        };

        if !skip_window {
            match self.in_window(dir, index, seg, sysctl) {
                WindowVerdict::Accept => {}
                WindowVerdict::Ignore(reason) => return TcpOutcome::Ignore { reason },
                WindowVerdict::Invalid(reason) => {
                    return self.handle_invalid(dir, index, reason, assured, sysctl)
                }
            }
        }

        // From here on the packet is in window.
        self.last_index = index;
        self.last_dir = dir;
        self.state = new_state;
        if old_state != new_state && new_state == TcpConntrack::FinWait {
            self.seen[dir as usize].flags |= TcpWindow::CLOSE_INIT;
        }

        let mut timeout = self.timeout(new_state, index, sysctl);
        let t = &sysctl.timeouts;
        if !seen_reply {
            // Only an RST came back: connection refused, forget it at once.
            if seg.rst() {
                return TcpOutcome::AcceptAndDestroy;
            }
            // Do not renew the timeout on SYN retransmissions, else a client
            // or NAT reusing the port keeps the entry alive forever.
            if index == PacketClass::Syn && old_state == TcpConntrack::SynSent {
                return TcpOutcome::AcceptNoRefresh;
            }
            // ESTABLISHED without a reply (loose pickup): no 5-day timeout.
            if new_state == TcpConntrack::Established && timeout > t.unacknowledged {
                timeout = t.unacknowledged;
            }
            TcpOutcome::Accept {
                timeout,
                assured: false,
            }
        } else {
            // A valid ACK in ESTABLISHED after SYN_RECV, or a valid answer in
            // a picked-up connection.
            let assure = !assured
                && matches!(old_state, TcpConntrack::SynRecv | TcpConntrack::Established)
                && new_state == TcpConntrack::Established;
            TcpOutcome::Accept {
                timeout,
                assured: assure,
            }
        }
    }

    /// The IGNORE path of `nf_conntrack_tcp_packet()`: remember the packet so
    /// that an answering SYN/ACK (resync) or RST can be understood, and let
    /// it through unchanged.
    fn ignore(
        &mut self,
        dir: Dir,
        index: PacketClass,
        seg: &TcpSegment,
        old_state: TcpConntrack,
    ) -> TcpOutcome {
        self.last_index = index;
        self.last_dir = dir;
        self.last_seq = Seq(seg.seq);
        self.last_end = Seq(seg.end());
        self.last_win = seg.window;

        // A SYN in ORIGINAL: client and server may be in sync while we are
        // not. Keep its options; if it is valid the server's SYN/ACK puts us
        // back in sync, else it may answer with a challenge ACK.
        if index == PacketClass::Syn && dir == Dir::Original {
            let mut opts = TcpWindow::default();
            apply_options(&mut opts, seg);
            self.last_flags = 0;
            self.last_wscale = 0;
            if opts.flags & TcpWindow::WINDOW_SCALE != 0 {
                self.last_flags |= TcpWindow::WINDOW_SCALE;
                self.last_wscale = opts.scale;
            }
            if opts.flags & TcpWindow::SACK_PERM != 0 {
                self.last_flags |= TcpWindow::SACK_PERM;
            }
            // In LAST_ACK a challenge ACK would look like the last ACK.
            if old_state == TcpConntrack::LastAck {
                self.last_flags |= EXP_CHALLENGE_ACK;
            }
        }

        // Possibly a challenge ACK answering our SYN.
        if old_state == TcpConntrack::SynSent && index == PacketClass::Ack && dir == Dir::Reply {
            self.last_ack = Seq(seg.ack);
        }

        TcpOutcome::Ignore {
            reason: table::ignored_text(dir, index, old_state),
        }
    }

    /// Resynchronise after a SYN/ACK that acknowledges the SYN we ignored:
    /// the SYN's side gets the remembered values, this side starts afresh
    /// (`nf_ct_tcp_state_reset()`), as in SYN_SENT.
    fn resync_from_ignored_syn(&mut self, dir: Dir) {
        let last = self.last_dir as usize;
        let syn_side = &mut self.seen[last];
        syn_side.end = self.last_end;
        syn_side.maxend = self.last_end;
        syn_side.maxwin = u32::from(self.last_win).max(1);
        syn_side.scale = self.last_wscale;
        self.last_flags &= !EXP_CHALLENGE_ACK;
        syn_side.flags = self.last_flags;

        let this = &mut self.seen[dir as usize];
        this.end = Seq(0);
        this.maxend = Seq(0);
        this.maxwin = 0;
        this.maxack = Seq(0);
        this.scale = 0;
        this.flags &= TcpWindow::BE_LIBERAL;
    }

    /// The RST rules of the CLOSE case in `nf_conntrack_tcp_packet()`.
    fn rst_check(
        &self,
        dir: Dir,
        seg: &TcpSegment,
        old_state: TcpConntrack,
        seen_reply: bool,
        assured: bool,
        sysctl: &TcpSysctl,
    ) -> RstCheck {
        let close = TcpConntrack::Close;
        // Closing already: the tuple may have been reused and our sequence
        // data may be stale, so accept the RST without any check.
        if old_state.can_early_drop() {
            return RstCheck::SkipWindow(close);
        }

        let peer = self.seen[dir.opposite() as usize];
        let seq = Seq(seg.seq);
        let established = old_state == TcpConntrack::Established && assured;
        let mut new_state = close;
        // td_maxack may be stale if a SYN went through (ignored) last.
        'seq_rules: {
            if peer.flags & TcpWindow::MAXACK_SET == 0 || self.last_index == PacketClass::Syn {
                break 'seq_rules;
            }
            // Not established and seq 0: most likely the answer to a SYN we
            // let through.
            if seq == Seq(0) && !established {
                break 'seq_rules;
            }
            if seq.before(peer.maxack) && !sysctl.ignore_invalid_rst {
                return RstCheck::Invalid;
            }
            if !established || seq == peer.maxack {
                break 'seq_rules;
            }
            // Part of a train: data, then an RST right after it.
            if self.last_index == PacketClass::Ack && self.last_dir == dir && seq == self.last_end {
                break 'seq_rules;
            }
            // The sequence number does not match exactly: keep the state so
            // that a challenge ACK can follow (the RST still passes).
            new_state = old_state;
        }

        let ack = Seq(seg.ack);
        if ((seen_reply && self.last_index == PacketClass::Syn)
            || (!assured && self.last_index == PacketClass::Ack))
            && ack == self.last_end
        {
            // RST answering a SYN we ignored, or the ACK of a half-open
            // connection we let through: skip the window check, it may
            // acknowledge what we never tracked.
            return RstCheck::SkipWindow(new_state);
        }

        // RST answering a challenge ACK we let through in SYN_SENT.
        if old_state == TcpConntrack::SynSent
            && self.last_index == PacketClass::Ack
            && self.last_dir == Dir::Reply
            && seq == self.last_ack
        {
            return RstCheck::SkipWindow(new_state);
        }

        RstCheck::Window(new_state)
    }

    /// `nf_tcp_handle_invalid()`: an ASSURED connection whose out-of-window
    /// FIN/RST answers a FIN/RST of the other direction is probably dead;
    /// shorten its timeout. Otherwise remember this FIN/RST.
    fn handle_invalid(
        &mut self,
        dir: Dir,
        index: PacketClass,
        reason: &'static str,
        assured: bool,
        sysctl: &TcpSysctl,
    ) -> TcpOutcome {
        // (IPS_FIXED_TIMEOUT also returns early here in Linux; the caller
        // owns that bit and skips the shortening, see TcpOutcome.)
        if !assured || !matches!(index, PacketClass::Rst | PacketClass::Fin) {
            return TcpOutcome::Invalid { reason };
        }
        if self.last_dir != dir && matches!(self.last_index, PacketClass::Fin | PacketClass::Rst) {
            TcpOutcome::InvalidLowerTimeout {
                reason,
                timeout: sysctl.timeouts.unacknowledged,
            }
        } else {
            self.last_index = index;
            self.last_dir = dir;
            TcpOutcome::Invalid { reason }
        }
    }

    /// The timeout choice at the end of `nf_conntrack_tcp_packet()`.
    fn timeout(&self, new_state: TcpConntrack, index: PacketClass, sysctl: &TcpSysctl) -> Duration {
        let t = &sysctl.timeouts;
        let for_state = t.for_state(new_state);
        let unacked =
            (self.seen[0].flags | self.seen[1].flags) & TcpWindow::DATA_UNACKNOWLEDGED != 0;
        if u32::from(self.retrans) >= sysctl.max_retrans && for_state > t.retrans {
            t.retrans
        } else if index == PacketClass::Rst {
            t.close
        } else if unacked && for_state > t.unacknowledged {
            t.unacknowledged
        } else if self.last_win == 0 && for_state > t.retrans {
            // The last ACK-class packet advertised a zero window.
            t.retrans
        } else {
            for_state
        }
    }
}

/// How the RST rules let an RST continue.
enum RstCheck {
    /// "invalid rst".
    Invalid,
    /// Go to the commit without the window check, with this new state.
    SkipWindow(TcpConntrack),
    /// Run the window check, then move to this state.
    Window(TcpConntrack),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole conntrack entry must stay within 256 bytes; the kernel's
    /// `struct ip_ct_tcp` is 60 bytes too.
    #[test]
    fn private_state_is_small() {
        assert_eq!(std::mem::size_of::<TcpWindow>(), 20);
        assert_eq!(std::mem::size_of::<Tcp>(), 60);
    }
}
