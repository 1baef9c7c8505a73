//! Applying sequence adjustment to packets (`nf_ct_seq_adjust()` and
//! `nf_ct_sack_adjust()`; reference/nat.md §6). After a NAT helper changed
//! the length of a TCP payload, every later segment of the connection is
//! shifted: its sequence number by its own direction's offset, its
//! acknowledgement and SACK blocks back by the other direction's, so that
//! both ends see a consistent byte stream. The offsets live in the
//! conntrack entry ([`ctsim_conntrack::seqadj::SeqAdj`]).

use ctsim_conntrack::seqadj::SeqAdj;
use ctsim_conntrack::tuple::IPPROTO_TCP;
use ctsim_conntrack::{Conntrack, EntryRef};

/// TCP option kinds.
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_SACK: u8 = 5;

/// Shifts the TCP segment in `pkt` (an IPv4 datagram of the entry `r`
/// refers to) by the entry's offsets and fixes the TCP checksum
/// incrementally. Returns `false` when Linux drops the packet: a TCP
/// option list that ends inside an option. Anything that is not a whole
/// TCP header passes unchanged.
pub fn adjust(ct: &Conntrack, r: &EntryRef, pkt: &mut [u8]) -> bool {
    let Some(h) = ct.help_ext(r.key()) else {
        return true;
    };
    let d = r.dir() as usize;
    adjust_segment(&h.seqadj[d], &h.seqadj[1 - d], pkt)
}

/// [`adjust`] with the two directions' records given: `this` for the
/// packet's own direction, `other` for the one it acknowledges.
pub fn adjust_segment(this: &SeqAdj, other: &SeqAdj, pkt: &mut [u8]) -> bool {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != IPPROTO_TCP {
        return true;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < 20 || pkt.len() < ihl + 20 {
        return true;
    }
    let tcp = &mut pkt[ihl..];
    let mut check = u16::from_be_bytes([tcp[16], tcp[17]]);
    let seq = read32(tcp, 4);
    let new_seq = this.adjust_seq(seq);
    check = replace32(check, seq, new_seq);
    tcp[4..8].copy_from_slice(&new_seq.to_be_bytes());
    let mut ok = true;
    if tcp[13] & 0x10 != 0 {
        let ack = read32(tcp, 8);
        let new_ack = other.adjust_ack(ack);
        check = replace32(check, ack, new_ack);
        tcp[8..12].copy_from_slice(&new_ack.to_be_bytes());
        ok = sack_adjust(tcp, other, &mut check);
    }
    tcp[16..18].copy_from_slice(&check.to_be_bytes());
    ok
}

/// `nf_ct_sack_adjust()`: walk the options, shifting each SACK block's
/// edges like an ack. A malformed option list stops the walk (`false`).
fn sack_adjust(tcp: &mut [u8], other: &SeqAdj, check: &mut u16) -> bool {
    let end = (usize::from(tcp[12] >> 4) * 4).min(tcp.len());
    let mut off = 20;
    while off < end {
        match tcp[off] {
            TCPOPT_EOL => return true,
            TCPOPT_NOP => off += 1,
            kind => {
                let Some(&len) = tcp.get(off + 1).filter(|_| off + 1 < end) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || off + len > end {
                    return false;
                }
                if kind == TCPOPT_SACK && len >= 10 && (len - 2) % 8 == 0 {
                    let mut b = off + 2;
                    while b < off + len {
                        let edge = read32(tcp, b);
                        let new = other.adjust_ack(edge);
                        *check = replace32(*check, edge, new);
                        tcp[b..b + 4].copy_from_slice(&new.to_be_bytes());
                        b += 4;
                    }
                }
                off += len;
            }
        }
    }
    true
}

fn read32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `inet_proto_csum_replace4()` on a TCP checksum (RFC 1624 eqn. 3 over
/// the two 16-bit halves).
fn replace32(check: u16, old: u32, new: u32) -> u16 {
    let mut s = u32::from(!check)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> Vec<u8> {
        ctsim_packet::parse(text, &|_| None).unwrap()
    }

    #[test]
    fn seq_ack_and_sack_shift_with_valid_checksum() {
        let mut mine = SeqAdj::default();
        mine.record(1000, 3);
        let mut theirs = SeqAdj::default();
        theirs.record(5000, -2);
        let mut p = lit(
            "tcp 192.0.2.2:40000 > 198.51.100.2:21 P. seq=1026 ack=6000 win=502 \
             [nop, nop, sack 6000:6100] payload=\"LIST\\r\\n\"",
        );
        assert!(adjust_segment(&mine, &theirs, &mut p));
        // The printer shows `csum=` only for a wrong checksum.
        assert_eq!(
            ctsim_packet::show(&p),
            "tcp 192.0.2.2:40000 > 198.51.100.2:21 P. seq=1029 ack=6002 win=502 \
             [nop, nop, sack 6002:6102] payload=\"LIST\\r\\n\""
        );
    }

    #[test]
    fn broken_options_drop() {
        let mine = SeqAdj::default();
        let mut p = lit("tcp 192.0.2.2:40000 > 198.51.100.2:21 . seq=1 ack=1 [opt 8 hex=0000]");
        p[20 + 21] = 12; // the option claims 12 bytes in a 4-byte list
        assert!(!adjust_segment(&mine, &mine, &mut p));
    }
}
