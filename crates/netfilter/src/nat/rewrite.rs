//! Rewriting packets by their entry's binding: `nf_nat_packet()`,
//! `nf_nat_ipv4_manip_pkt()` with the per-protocol `*_manip_pkt()`, and
//! `nf_nat_icmp_reply_translation()` (reference/nat.md "Packet rewriting",
//! §5). Everything works in place on the caller's bytes; nothing
//! allocates. Checksums are updated incrementally as Linux does (RFC 1624
//! eqn. 3, `csum_replace4()`), so a packet that arrived with a wrong
//! checksum leaves with one, and only an ICMP error's checksum is computed
//! afresh.

use ctsim_conntrack::tuple::{icmp_is_error, icmp_type, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
use ctsim_conntrack::{Conntrack, CtInfo, Dir, Entry, EntryRef, Manip, Status, Tuple};

/// Whether `pkt` is an IPv4 datagram carrying ICMP.
pub(super) fn is_icmp(pkt: &[u8]) -> bool {
    pkt.len() >= 20 && pkt[0] >> 4 == 4 && pkt[9] == IPPROTO_ICMP
}

/// `nf_nat_ipv4_fn()` after the binding: rewrite `pkt`, a packet of the
/// entry `r` refers to, at a hook doing `manip` (SRC: POST_ROUTING and
/// LOCAL_IN; DST: PRE_ROUTING and LOCAL_OUT). The packet's direction and
/// the entry's status bits decide what changes: at a DST hook an
/// ORIGINAL packet is DNATed if IPS_DST_NAT, a REPLY packet un-SNATed if
/// IPS_SRC_NAT; at a SRC hook an ORIGINAL packet is SNATed if IPS_SRC_NAT,
/// a REPLY packet un-DNATed if IPS_DST_NAT. The manipulated half becomes
/// that of the other direction's tuple inverted.
///
/// An ICMP error RELATED to the entry has its quoted packet rewritten the
/// opposite way, its ICMP checksum recomputed, then its outer header
/// rewritten like a packet of that direction (nat.md §5).
///
/// Returns `false` when Linux would drop the packet: headers too short to
/// rewrite, a RELATED ICMP error with a bad checksum or cut before the
/// quoted IP header, or a redirect about a NATed connection. Never panics,
/// whatever the bytes.
pub fn packet(ct: &Conntrack, r: &EntryRef, manip: Manip, pkt: &mut [u8]) -> bool {
    let Some(e) = ct.get(r.key()) else {
        return true;
    };
    let Some(len) = datagram_len(pkt) else {
        return true; // not IPv4: conntrack gave it no entry either
    };
    let pkt = &mut pkt[..len];
    let dir = r.dir();
    if matches!(r.ctinfo(), CtInfo::Related | CtInfo::RelatedReply) && is_icmp(pkt) {
        return icmp_reply_translation(e, dir, manip, pkt);
    }
    if !e.status().intersects(status_bit(manip, dir)) {
        return true;
    }
    match e.tuple(other(dir)).invert() {
        Some(target) => manip_pkt(pkt, 0, &target, manip),
        None => true,
    }
}

/// The status bit that makes a `manip` hook rewrite a packet going `dir`.
fn status_bit(manip: Manip, dir: Dir) -> Status {
    match dir {
        Dir::Original => manip.nat_bit(),
        Dir::Reply => manip.opposite().nat_bit(),
    }
}

fn other(dir: Dir) -> Dir {
    match dir {
        Dir::Original => Dir::Reply,
        Dir::Reply => Dir::Original,
    }
}

/// The datagram's length (`skb->len`): its total length, or the bytes
/// given if fewer. `None` if this is no IPv4 header.
fn datagram_len(pkt: &[u8]) -> Option<usize> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    Some(tot.clamp(20, pkt.len()))
}

/// `nf_nat_icmp_reply_translation()`.
fn icmp_reply_translation(e: &Entry, dir: Dir, manip: Manip, pkt: &mut [u8]) -> bool {
    let hdrlen = usize::from(pkt[0] & 0x0f) * 4;
    // The ICMP header and the quoted IP header must be there.
    if hdrlen < 20 || pkt.len() < hdrlen + 8 + 20 {
        return false;
    }
    if ones_sum(&pkt[hdrlen..]) != 0xffff {
        return false;
    }
    let status = e.status();
    let kind = pkt[hdrlen];
    if kind == icmp_type::REDIRECT
        && (!status.contains(Status::NAT_DONE_MASK) || status.intersects(Status::NAT_MASK))
    {
        return false;
    }
    if !icmp_is_error(kind) || !status.intersects(status_bit(manip, dir)) {
        return true;
    }
    // The quoted packet went the other way: make it look like what the
    // error's receiver sent.
    let quoted = *e.tuple(other(dir));
    if !manip_pkt(pkt, hdrlen + 8, &quoted, manip.opposite()) {
        return false;
    }
    pkt[hdrlen + 2..hdrlen + 4].fill(0);
    let sum = !ones_sum(&pkt[hdrlen..]);
    pkt[hdrlen + 2..hdrlen + 4].copy_from_slice(&sum.to_be_bytes());
    // The outer header: like a packet of this direction, ICMP itself.
    let Some(mut target) = quoted.invert() else {
        return true;
    };
    target.proto = IPPROTO_ICMP;
    manip_pkt(pkt, 0, &target, manip)
}

/// `nf_nat_ipv4_manip_pkt()`: give the IPv4 header at `at` (and its L4
/// header) the `manip` half of `target`. `pkt` ends where the outer
/// datagram ends. A fragment other than the first gets its address only.
fn manip_pkt(pkt: &mut [u8], at: usize, target: &Tuple, manip: Manip) -> bool {
    let Some(ip) = pkt.get(at..at + 20) else {
        return false;
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    if ihl < 20 {
        return false;
    }
    let addr_at = at + if manip == Manip::Src { 12 } else { 16 };
    let old = read32(pkt, addr_at);
    let new = u32::from(match manip {
        Manip::Src => target.src,
        Manip::Dst => target.dst,
    });
    if !later_fragment && !l4_manip(pkt, at + ihl, target, manip, old, new) {
        return false;
    }
    let sum = replace32(read16(pkt, at + 10), old, new);
    pkt[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
    pkt[addr_at..addr_at + 4].copy_from_slice(&new.to_be_bytes());
    true
}

/// `l4proto_manip_pkt()` for the L4 header at `hdr`; `old`/`new` is the
/// address change the pseudo-header sees. Dispatches on the target's
/// protocol, as Linux does (an ICMP error's outer target is ICMP).
fn l4_manip(pkt: &mut [u8], hdr: usize, target: &Tuple, manip: Manip, old: u32, new: u32) -> bool {
    let have = pkt.len().saturating_sub(hdr);
    let port_at = hdr + if manip == Manip::Src { 0 } else { 2 };
    let port = if manip == Manip::Src {
        target.src_u
    } else {
        target.dst_u
    };
    match target.proto {
        IPPROTO_TCP => {
            if have < 8 {
                return false;
            }
            // A quoted header may stop before the checksum (8 bytes are
            // all an ICMP error must carry): then ports only.
            if have >= 20 {
                let sum = replace32(read16(pkt, hdr + 16), old, new);
                let sum = replace16(sum, read16(pkt, port_at), port);
                pkt[hdr + 16..hdr + 18].copy_from_slice(&sum.to_be_bytes());
            }
            pkt[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
        }
        IPPROTO_UDP => {
            if have < 8 {
                return false;
            }
            let sum = read16(pkt, hdr + 6);
            // A zero UDP checksum means "none" and stays so; a computed
            // zero is sent as 0xffff (CSUM_MANGLED_0).
            if sum != 0 {
                let sum = replace16(replace32(sum, old, new), read16(pkt, port_at), port);
                let sum = if sum == 0 { 0xffff } else { sum };
                pkt[hdr + 6..hdr + 8].copy_from_slice(&sum.to_be_bytes());
            }
            pkt[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
        }
        IPPROTO_ICMP => {
            if have < 8 {
                return false;
            }
            // Only queries and replies carry an id; both manips set it.
            if icmp_is_error(pkt[hdr])
                || ctsim_conntrack::tuple::icmp_invert_type(pkt[hdr]).is_none()
            {
                return true;
            }
            let sum = replace16(read16(pkt, hdr + 2), read16(pkt, hdr + 4), target.src_u);
            pkt[hdr + 2..hdr + 4].copy_from_slice(&sum.to_be_bytes());
            pkt[hdr + 4..hdr + 6].copy_from_slice(&target.src_u.to_be_bytes());
        }
        _ => {}
    }
    true
}

/// The folded one's complement sum of `data` in 16-bit big-endian words
/// (RFC 1071), not complemented: 0xffff for a message whose checksum is
/// right.
pub(crate) fn ones_sum(data: &[u8]) -> u16 {
    let mut words = data.chunks_exact(2);
    let mut s: u64 = words
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = words.remainder() {
        s += u64::from(*last) << 8;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn read16(pkt: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([pkt[at], pkt[at + 1]])
}

fn read32(pkt: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([pkt[at], pkt[at + 1], pkt[at + 2], pkt[at + 3]])
}

/// RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, for one 16-bit word: what
/// Linux's `csum_replace2()` computes, bit for bit.
pub fn replace16(check: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!check) + u32::from(!old) + u32::from(new);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// [`replace16`] for a 32-bit word (`csum_replace4()`).
fn replace32(check: u16, old: u32, new: u32) -> u16 {
    let hi = replace16(check, (old >> 16) as u16, (new >> 16) as u16);
    replace16(hi, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1624 §4's example: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives
    /// 0x0000 by eqn. 3.
    #[test]
    fn incremental_update_follows_rfc1624() {
        assert_eq!(replace16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(replace32(0x1234, 0xdead_beef, 0xdead_beef), 0x1234);
    }
}
