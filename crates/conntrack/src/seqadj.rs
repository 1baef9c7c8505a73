//! Sequence-number adjustment (`nf_conntrack_seqadj.c`;
//! reference/nat.md §6): the bookkeeping a NAT helper leaves behind when it
//! changes the length of a TCP payload, so that the rest of the connection
//! can be shifted by the same amount in both directions.
//!
//! Each direction keeps the sequence number (as its sender numbers bytes,
//! i.e. *before* adjustment) of the last resized segment and the offsets to
//! apply to sequence numbers at or before it and after it. Two offsets are
//! needed because a retransmission of bytes sent before the resize must
//! keep the old offset.
//!
//! Only the arithmetic lives here; rewriting packets is the NAT layer's
//! (ctsim-netfilter `seqadj`), and the TCP tracker reads
//! [`SeqAdj::offset`] to compensate acknowledgements before its window
//! checks (`nf_ct_seq_offset()` in `tcp_in_window()`).

use crate::tcp::Seq;

/// One direction's adjustment (`struct nf_ct_seqadj`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SeqAdj {
    /// Sequence number (sender's numbering) of the last resized segment.
    pub correction_pos: u32,
    /// Offset for sequence numbers at or before `correction_pos`.
    pub offset_before: i32,
    /// Offset for sequence numbers after `correction_pos`.
    pub offset_after: i32,
}

impl SeqAdj {
    /// `nf_ct_seqadj_set()`: the segment starting at `seq` grew by `off`
    /// bytes (negative: shrank). A second resize of the same or an earlier
    /// segment (a retransmission) is not counted again; Linux applies it
    /// only when nothing was recorded yet (the offsets are equal) or when
    /// the segment lies after the last correction.
    pub fn record(&mut self, seq: u32, off: i32) {
        if off == 0 {
            return;
        }
        if self.offset_before == self.offset_after || Seq(self.correction_pos).before(Seq(seq)) {
            self.correction_pos = seq;
            self.offset_before = self.offset_after;
            self.offset_after = self.offset_after.wrapping_add(off);
        }
    }

    /// `nf_ct_seq_offset()`: the offset this direction's byte `seq`
    /// (sender's numbering) is shifted by.
    pub fn offset(&self, seq: u32) -> i32 {
        if Seq(seq).after(Seq(self.correction_pos)) {
            self.offset_after
        } else {
            self.offset_before
        }
    }

    /// The sequence number a segment of this direction leaves with.
    pub fn adjust_seq(&self, seq: u32) -> u32 {
        seq.wrapping_add(self.offset(seq) as u32)
    }

    /// The acknowledgement (or SACK edge) a segment of the *other*
    /// direction leaves with, when it acknowledges this direction's bytes
    /// as the receiver numbered them (after adjustment). Linux compares
    /// `ack - offset_before` with the correction point.
    pub fn adjust_ack(&self, ack: u32) -> u32 {
        let back = ack.wrapping_sub(self.offset_before as u32);
        let off = if Seq(back).after(Seq(self.correction_pos)) {
            self.offset_after
        } else {
            self.offset_before
        };
        ack.wrapping_sub(off as u32)
    }

    /// Nothing recorded: every number passes unchanged.
    pub fn is_identity(&self) -> bool {
        self.offset_before == 0 && self.offset_after == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nat.md §6's example: PORT `192,0,2,2,195,80` (16 bytes) became
    /// `198,51,100,1,195,80` (19 bytes) in the segment at seq 1000.
    #[test]
    fn port_rewrite_shifts_later_bytes_only() {
        let mut a = SeqAdj::default();
        a.record(1000, 3);
        assert_eq!(
            (a.correction_pos, a.offset_before, a.offset_after),
            (1000, 0, 3)
        );
        // The resized segment itself and earlier bytes keep their numbers.
        assert_eq!(a.adjust_seq(1000), 1000);
        assert_eq!(a.adjust_seq(990), 990);
        // Later bytes move by +3.
        assert_eq!(a.adjust_seq(1026), 1029);
        // The server acknowledges 1029 (after the 26-byte segment grown to
        // 29): the client must see 1026. An ack of the segment's start is
        // unchanged.
        assert_eq!(a.adjust_ack(1029), 1026);
        assert_eq!(a.adjust_ack(1000), 1000);
        // A retransmission of the same segment does not add the delta again.
        a.record(1000, 3);
        assert_eq!(a.offset_after, 3);
        // A later resize accumulates.
        a.record(2000, -2);
        assert_eq!(
            (a.correction_pos, a.offset_before, a.offset_after),
            (2000, 3, 1)
        );
        assert_eq!(a.adjust_seq(1500), 1503);
        assert_eq!(a.adjust_seq(2100), 2101);
        assert_eq!(a.offset(2000), 3);
    }

    #[test]
    fn wraps_around_zero() {
        let mut a = SeqAdj::default();
        a.record(u32::MAX - 5, 4);
        assert_eq!(a.adjust_seq(2), 6);
        assert_eq!(a.adjust_ack(6), 2);
        assert_eq!(a.adjust_seq(u32::MAX - 6), u32::MAX - 6);
    }
}
