//! What the tracker needs from one TCP segment, and the header sanity check
//! of `tcp_error()` (net/netfilter/nf_conntrack_proto_tcp.c).
//!
//! Parsing is kept apart from meaning: [`TcpSegment::parse`] turns bytes
//! into a checked, simplified representation; [`super::Tcp`] never looks at
//! bytes.

use super::seq::Seq;
use super::table::PacketClass;

/// Log text of `tcp_error()` for a header that is cut short or whose data
/// offset is below 5 words or beyond the segment.
pub const TRUNCATED: &str = "truncated packet";
/// Log text of `tcp_error()` for a checksum failure (PRE_ROUTING only, with
/// `nf_conntrack_checksum=1`; the caller decides, see
/// [`TcpSegment::parse_with_checksum`]).
pub const BAD_CHECKSUM: &str = "bad checksum";
/// Log text of `tcp_error()` for a flag combination outside its table.
pub const BAD_FLAGS: &str = "invalid tcp flag combination";

/// The TCP flag byte (header byte 13).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// All bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `tcp_error()`'s table of valid combinations: PSH, ECE and CWR are
    /// always allowed; of the rest only SYN, SYN+URG, SYN+ACK, RST, RST+ACK,
    /// FIN+ACK, FIN+ACK+URG, ACK and ACK+URG pass.
    pub const fn is_valid_combination(self) -> bool {
        const F: u8 = TcpFlags::FIN.0;
        const S: u8 = TcpFlags::SYN.0;
        const R: u8 = TcpFlags::RST.0;
        const A: u8 = TcpFlags::ACK.0;
        const U: u8 = TcpFlags::URG.0;
        const ALWAYS_OK: u8 = TcpFlags::PSH.0 | TcpFlags::ECE.0 | TcpFlags::CWR.0;
        const SU: u8 = S | U;
        const SA: u8 = S | A;
        const RA: u8 = R | A;
        const FA: u8 = F | A;
        const FAU: u8 = F | A | U;
        const AU: u8 = A | U;
        matches!(
            self.0 & !ALWAYS_OK,
            S | SU | SA | R | RA | FA | FAU | A | AU
        )
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// One TCP segment as the tracker sees it (`struct tcphdr` plus the few
/// option values `tcp_options()` and `tcp_sack()` extract).
///
/// Build it with [`TcpSegment::parse`] from the wire, or with
/// [`TcpSegment::new`] and the `with_*` methods in tests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TcpSegment {
    /// The flag byte.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Window field as sent (unscaled).
    pub window: u16,
    /// Payload bytes: L4 length minus the header (`doff * 4`).
    pub data_len: u32,
    /// The header has option bytes (`doff > 5`). `tcp_options()` resets the
    /// sender's scale and option flags only then, so a SYN without options
    /// leaves earlier values alone.
    pub has_options: bool,
    /// Shift of the window-scale option (the last well-formed one), as sent:
    /// the tracker caps it at 14 (`TCP_MAX_WSCALE`).
    pub wscale: Option<u8>,
    /// A well-formed SACK-permitted option is present.
    pub sack_permitted: bool,
    /// `tcp_sack()`'s result: starting from `ack`, the right edge of each
    /// block of the first well-formed SACK option that is `after` the value
    /// so far. Equals `ack` when there is no SACK block. The tracker uses it
    /// only when the receiver allowed SACK.
    pub sack: u32,
    /// NAT sequence adjustment of the other direction
    /// (`nf_ct_seq_offset(ct, !dir, ack - 1)`), subtracted from `ack` and
    /// `sack` before window checks. 0 unless a helper changed payload
    /// lengths under NAT; the caller's seqadj code sets it.
    pub ack_offset: u32,
}

impl TcpSegment {
    /// `tcp_error()` minus the checksum test: the whole header must be
    /// there (`doff >= 5`, `doff * 4 <= l3_payload_len` and present in
    /// `l4`) and the flags must be a valid combination.
    ///
    /// `l4` is the TCP header and whatever follows; `l3_payload_len` is the
    /// L4 length the IP header announces (`skb->len - dataoff`), which fixes
    /// the payload length. Errors carry Linux's log text. A buffer shorter
    /// than 20 bytes also gives "truncated packet" (Linux drops such a
    /// packet as untrackable without that message).
    pub fn parse(l4: &[u8], l3_payload_len: usize) -> Result<TcpSegment, &'static str> {
        Self::parse_with_checksum(l4, l3_payload_len, true)
    }

    /// [`parse`](Self::parse) with the checksum verdict folded in at the
    /// place `tcp_error()` tests it (after the length test, before the flag
    /// test). Pass `checksum_ok = true` when the checksum is not to be
    /// checked (not PRE_ROUTING, or `nf_conntrack_checksum=0`).
    pub fn parse_with_checksum(
        l4: &[u8],
        l3_payload_len: usize,
        checksum_ok: bool,
    ) -> Result<TcpSegment, &'static str> {
        if l4.len() < 20 {
            return Err(TRUNCATED);
        }
        let hdr_len = usize::from(l4[12] >> 4) * 4;
        if hdr_len < 20 || l3_payload_len < hdr_len || l4.len() < hdr_len {
            return Err(TRUNCATED);
        }
        if !checksum_ok {
            return Err(BAD_CHECKSUM);
        }
        let flags = TcpFlags(l4[13]);
        if !flags.is_valid_combination() {
            return Err(BAD_FLAGS);
        }
        let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
        let ack = u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]);
        let window = u16::from_be_bytes([l4[14], l4[15]]);
        let data_len = u32::try_from(l3_payload_len - hdr_len).unwrap_or(u32::MAX);
        let opts = &l4[20..hdr_len];
        let (wscale, sack_permitted) = parse_options(opts);
        Ok(TcpSegment {
            flags,
            seq,
            ack,
            window,
            data_len,
            has_options: !opts.is_empty(),
            wscale,
            sack_permitted,
            sack: highest_sack(opts, ack),
            ack_offset: 0,
        })
    }

    /// A segment without options or payload (for tests and raw hosts).
    pub const fn new(flags: TcpFlags, seq: u32, ack: u32, window: u16) -> TcpSegment {
        TcpSegment {
            flags,
            seq,
            ack,
            window,
            data_len: 0,
            has_options: false,
            wscale: None,
            sack_permitted: false,
            sack: ack,
            ack_offset: 0,
        }
    }

    /// Sets the payload length.
    pub const fn with_len(mut self, data_len: u32) -> TcpSegment {
        self.data_len = data_len;
        self
    }

    /// Adds a window-scale option.
    pub const fn with_wscale(mut self, shift: u8) -> TcpSegment {
        self.wscale = Some(shift);
        self.has_options = true;
        self
    }

    /// Adds a SACK-permitted option.
    pub const fn with_sack_permitted(mut self) -> TcpSegment {
        self.sack_permitted = true;
        self.has_options = true;
        self
    }

    /// Adds a SACK option whose highest right edge is `right_edge` (applied
    /// with `tcp_sack()`'s rule: kept only if after `ack`).
    pub fn with_sack_edge(mut self, right_edge: u32) -> TcpSegment {
        if Seq(right_edge).after(Seq(self.sack)) {
            self.sack = right_edge;
        }
        self.has_options = true;
        self
    }

    /// The packet class of `get_conntrack_index()`: RST, then SYN(+ACK),
    /// then FIN, then ACK, else NONE.
    #[inline]
    pub const fn class(&self) -> PacketClass {
        let f = self.flags;
        if f.contains(TcpFlags::RST) {
            PacketClass::Rst
        } else if f.contains(TcpFlags::SYN) {
            if f.contains(TcpFlags::ACK) {
                PacketClass::SynAck
            } else {
                PacketClass::Syn
            }
        } else if f.contains(TcpFlags::FIN) {
            PacketClass::Fin
        } else if f.contains(TcpFlags::ACK) {
            PacketClass::Ack
        } else {
            PacketClass::None
        }
    }

    #[inline]
    pub(crate) const fn syn(&self) -> bool {
        self.flags.contains(TcpFlags::SYN)
    }
    #[inline]
    pub(crate) const fn ack_flag(&self) -> bool {
        self.flags.contains(TcpFlags::ACK)
    }
    #[inline]
    pub(crate) const fn rst(&self) -> bool {
        self.flags.contains(TcpFlags::RST)
    }

    /// `segment_seq_plus_len()`: seq + payload + 1 for SYN + 1 for FIN.
    #[inline]
    pub fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.data_len)
            .wrapping_add(u32::from(self.syn()))
            .wrapping_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }
}

/// Walks TCP options with the loop shared by `tcp_options()` and
/// `tcp_sack()`: EOL stops, NOP is one byte, a kind without room for its
/// length byte, a length below 2 or a length past the end stops the walk.
/// `visit(kind, option_bytes_including_kind_and_len)` returns `false` to
/// stop.
fn walk_options(opts: &[u8], mut visit: impl FnMut(u8, &[u8]) -> bool) {
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => return,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let left = opts.len() - i;
        if left < 2 {
            return;
        }
        let size = usize::from(opts[i + 1]);
        if size < 2 || size > left {
            return;
        }
        if !visit(kind, &opts[i..i + size]) {
            return;
        }
        i += size;
    }
}

/// `tcp_options()`: window scale (kind 3, length 3; the last one wins) and
/// SACK-permitted (kind 4, length 2).
fn parse_options(opts: &[u8]) -> (Option<u8>, bool) {
    let mut wscale = None;
    let mut sack_perm = false;
    walk_options(opts, |kind, opt| {
        match (kind, opt.len()) {
            (4, 2) => sack_perm = true,
            (3, 3) => wscale = Some(opt[2]),
            _ => {}
        }
        true
    });
    (wscale, sack_perm)
}

/// `tcp_sack()`: the highest right edge (by `after`) among the blocks of
/// the first well-formed SACK option, starting from `ack`. A header whose
/// only option is the aligned timestamp (NOP, NOP, TS) is skipped at once,
/// like the kernel's fast path.
fn highest_sack(opts: &[u8], ack: u32) -> u32 {
    let mut sack = Seq(ack);
    if opts.len() == 12 && opts[..4] == [1, 1, 8, 10] {
        return ack;
    }
    walk_options(opts, |kind, opt| {
        let blocks = &opt[2..];
        if kind == 5 && opt.len() >= 10 && blocks.len() % 8 == 0 {
            for block in blocks.chunks_exact(8) {
                let right = Seq(u32::from_be_bytes([block[4], block[5], block[6], block[7]]));
                if right.after(sack) {
                    sack = right;
                }
            }
            return false;
        }
        true
    });
    sack.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, doff: u8, opts: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0..2].copy_from_slice(&40000u16.to_be_bytes());
        h[2..4].copy_from_slice(&80u16.to_be_bytes());
        h[4..8].copy_from_slice(&1000u32.to_be_bytes());
        h[8..12].copy_from_slice(&2000u32.to_be_bytes());
        h[12] = doff << 4;
        h[13] = flags;
        h[14..16].copy_from_slice(&64240u16.to_be_bytes());
        h.extend_from_slice(opts);
        h
    }

    #[test]
    fn parses_syn_with_options() {
        // MSS, SACK-permitted, timestamp, NOP, window scale 7.
        let opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let h = header(0x02, 10, &opts);
        let s = TcpSegment::parse(&h, h.len()).unwrap();
        assert_eq!(s.class(), PacketClass::Syn);
        assert_eq!((s.seq, s.window, s.data_len), (1000, 64240, 0));
        assert_eq!(s.wscale, Some(7));
        assert!(s.sack_permitted && s.has_options);
        assert_eq!(s.end(), 1001);
    }

    #[test]
    fn payload_length_comes_from_l3() {
        let h = header(0x18, 5, &[]);
        let s = TcpSegment::parse(&h, 20 + 100).unwrap();
        assert_eq!(s.data_len, 100);
        assert_eq!(s.end(), 1100);
        assert!(!s.has_options);
    }

    #[test]
    fn truncated_and_bad_offsets() {
        assert_eq!(TcpSegment::parse(&[0; 19], 19), Err(TRUNCATED));
        let h = header(0x10, 4, &[]);
        assert_eq!(TcpSegment::parse(&h, 20), Err(TRUNCATED));
        let h = header(0x10, 6, &[]);
        assert_eq!(TcpSegment::parse(&h, 20), Err(TRUNCATED));
        let h = header(0x10, 5, &[]);
        assert_eq!(TcpSegment::parse(&h, 19), Err(TRUNCATED));
        // Truncation is reported before the checksum, the checksum before flags.
        let h = header(0x03, 5, &[]);
        assert_eq!(
            TcpSegment::parse_with_checksum(&h, 20, false),
            Err(BAD_CHECKSUM)
        );
        assert_eq!(
            TcpSegment::parse_with_checksum(&h, 20, true),
            Err(BAD_FLAGS)
        );
    }

    #[test]
    fn flag_combinations_follow_tcp_error() {
        let valid = [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30];
        for byte in 0..=255u8 {
            let core = byte & 0x37;
            let expect = valid.contains(&core);
            assert_eq!(
                TcpFlags(byte).is_valid_combination(),
                expect,
                "flags {byte:#04x}"
            );
        }
        // A few named ones from reference/tcp-tracking.md §2.
        for bad in [0x01u8, 0x03, 0x06, 0x00, 0x32, 0x15] {
            assert!(!TcpFlags(bad).is_valid_combination(), "{bad:#04x}");
        }
    }

    #[test]
    fn sack_blocks_and_timestamp_fast_path() {
        // NOP NOP SACK with two blocks; the higher right edge wins.
        let mut opts = vec![1, 1, 5, 18];
        for (l, r) in [(2100u32, 2200u32), (2300, 2400)] {
            opts.extend_from_slice(&l.to_be_bytes());
            opts.extend_from_slice(&r.to_be_bytes());
        }
        let h = header(0x10, 10, &opts);
        assert_eq!(TcpSegment::parse(&h, h.len()).unwrap().sack, 2400);
        // A right edge before ack is ignored.
        let mut opts = vec![1, 1, 5, 10];
        opts.extend_from_slice(&1500u32.to_be_bytes());
        opts.extend_from_slice(&1900u32.to_be_bytes());
        let h = header(0x10, 8, &opts);
        assert_eq!(TcpSegment::parse(&h, h.len()).unwrap().sack, 2000);
        // Timestamp only.
        let h = header(0x10, 8, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(TcpSegment::parse(&h, h.len()).unwrap().sack, 2000);
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        // Window scale after an option with length 1: never reached.
        let h = header(0x02, 7, &[8, 1, 0, 0, 3, 3, 7, 0]);
        let s = TcpSegment::parse(&h, h.len()).unwrap();
        assert_eq!(s.wscale, None);
        // Option running past the end.
        let h = header(0x02, 6, &[1, 1, 3, 3]);
        assert_eq!(TcpSegment::parse(&h, h.len()).unwrap().wscale, None);
        // EOL ends it.
        let h = header(0x02, 7, &[0, 0, 0, 0, 3, 3, 7, 0]);
        let s = TcpSegment::parse(&h, h.len()).unwrap();
        assert_eq!(s.wscale, None);
        assert!(s.has_options);
    }
}
