//! The little packet parsing conntrack does: the IPv4 header
//! (`ipv4_get_l4proto()`), the L4 "ports" (`nf_ct_get_tuple()`), and
//! Internet checksums (`nf_ip_checksum()`). Everything is a bounds-checked
//! view over the caller's bytes; nothing allocates.

use std::net::Ipv4Addr;

use crate::tuple::{Tuple, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

/// A checked view of an IPv4 datagram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ipv4<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    /// The whole datagram up to the total length (`skb->len`).
    pub len: usize,
    /// Everything after the header, up to the total length.
    pub l4: &'a [u8],
}

/// Why the IPv4 layer gave up. Linux says nothing (pr_debug only); these
/// texts are ours.
pub(crate) const L3_SHORT: &str = "truncated IPv4 header";
pub(crate) const L3_NOT_V4: &str = "not an IPv4 packet";
pub(crate) const L3_FRAGMENT: &str = "IPv4 fragment with non-zero offset";
pub(crate) const L3_BOGUS: &str = "bogus IPv4 header length";

/// Parses the outer IPv4 header of a datagram (what `ip_rcv()` and
/// `ipv4_get_l4proto()` check before conntrack sees it). A datagram longer
/// than its total length is trimmed to it, as `ip_rcv()` does.
pub(crate) fn parse_ipv4(pkt: &[u8]) -> Result<Ipv4<'_>, &'static str> {
    if pkt.len() < 20 {
        return Err(L3_SHORT);
    }
    if pkt[0] >> 4 != 4 {
        return Err(L3_NOT_V4);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || tot < ihl || tot > pkt.len() {
        return Err(L3_BOGUS);
    }
    // Conntrack defragments; a fragment other than the first cannot be
    // tracked (`iph->frag_off & htons(IP_OFFSET)`).
    if u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff != 0 {
        return Err(L3_FRAGMENT);
    }
    Ok(Ipv4 {
        src: addr(&pkt[12..16]),
        dst: addr(&pkt[16..20]),
        proto: pkt[9],
        len: tot,
        l4: &pkt[ihl..tot],
    })
}

#[inline]
fn addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// `nf_ct_get_tuple()`: the tuple of a packet. TCP and UDP need the 4 port
/// bytes, ICMP the 8-byte header; other protocols only the addresses.
/// `None` when those bytes are missing (the packet is INVALID).
#[inline]
pub(crate) fn packet_tuple(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Option<Tuple> {
    match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let p = l4.get(..4)?;
            Some(Tuple::with_ports(
                proto,
                src,
                u16::from_be_bytes([p[0], p[1]]),
                dst,
                u16::from_be_bytes([p[2], p[3]]),
            ))
        }
        IPPROTO_ICMP => {
            let h = l4.get(..8)?;
            Some(Tuple::icmp(
                src,
                dst,
                u16::from_be_bytes([h[4], h[5]]),
                h[0],
                h[1],
            ))
        }
        IPPROTO_GRE => gre_tuple(src, dst, l4),
        _ => Some(Tuple::generic(proto, src, dst)),
    }
}

/// `gre_pkt_to_tuple()`: GRE other than version 1 (PPTP's enhanced GRE)
/// is tracked like the generic protocol, with both keys 0; version 1
/// carries PPP (`None`, untracked, otherwise) and its call id is the
/// destination key. The source key would come from the PPTP helper's
/// keymap, which is not modelled: it stays 0.
fn gre_tuple(src: Ipv4Addr, dst: Ipv4Addr, l4: &[u8]) -> Option<Tuple> {
    const GRE_VERSION_1: u8 = 1;
    const GRE_PROTO_PPP: u16 = 0x880b;
    let mut t = Tuple::generic(IPPROTO_GRE, src, dst);
    let Some(h) = l4.get(..4).filter(|h| h[1] & 0x07 == GRE_VERSION_1) else {
        return Some(t);
    };
    let Some(call) = l4.get(6..8) else {
        return Some(t);
    };
    if u16::from_be_bytes([h[2], h[3]]) != GRE_PROTO_PPP {
        return None;
    }
    t.dst_u = u16::from_be_bytes([call[0], call[1]]);
    Some(t)
}

/// `nf_ct_get_tuplepr()` on the packet an ICMP error quotes: its IPv4
/// header, then its ports. Linux checks the quoted header only for a
/// fragment offset and that its data offset lies within the outer packet.
pub(crate) fn quoted_tuple(quoted: &[u8]) -> Option<Tuple> {
    let h = quoted.get(..20)?;
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let l4 = quoted.get(ihl..)?;
    packet_tuple(addr(&h[12..16]), addr(&h[16..20]), h[9], l4)
}

/// Sum of 16-bit big-endian words (RFC 1071), not yet folded.
#[inline]
fn sum_words(data: &[u8]) -> u64 {
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        sum += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        sum += u64::from(rest[i]) << 8;
    }
    sum
}

#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// True if the TCP or UDP segment `l4` (all of the L3 payload) checksums
/// to zero with its pseudo-header.
pub(crate) fn l4_checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> bool {
    let pseudo =
        u64::from(u32::from(src)) + u64::from(u32::from(dst)) + u64::from(proto) + l4.len() as u64;
    fold(pseudo + sum_words(l4)) == 0xffff
}

/// True if the ICMP message `l4` checksums to zero.
pub(crate) fn icmp_checksum_ok(l4: &[u8]) -> bool {
    fold(sum_words(l4)) == 0xffff
}

#[cfg(test)]
pub(crate) mod build {
    //! Test helpers that build valid IPv4 datagrams.
    use super::*;

    fn checksum(data: &[u8], pseudo: u64) -> u16 {
        !fold(pseudo + sum_words(data))
    }

    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
        let tot = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (tot >> 8) as u8,
            tot as u8,
            0,
            1,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let c = checksum(&p, 0);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn l4_fix(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &mut [u8], at: usize) {
        let pseudo = u64::from(u32::from(src))
            + u64::from(u32::from(dst))
            + u64::from(proto)
            + seg.len() as u64;
        let mut c = checksum(seg, pseudo);
        if c == 0 && proto == IPPROTO_UDP {
            c = 0xffff;
        }
        seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }

    pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
        let len = 8 + data.len();
        let mut u = Vec::with_capacity(len);
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&(len as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        l4_fix(src, dst, IPPROTO_UDP, &mut u, 6);
        ipv4(src, dst, IPPROTO_UDP, &u)
    }

    pub fn icmp(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        data: &[u8],
    ) -> Vec<u8> {
        let mut m = vec![icmp_type, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(data);
        let c = checksum(&m, 0);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        ipv4(src, dst, IPPROTO_ICMP, &m)
    }

    pub fn echo(src: Ipv4Addr, dst: Ipv4Addr, icmp_type: u8, id: u16, seq: u16) -> Vec<u8> {
        let mut rest = [0; 4];
        rest[..2].copy_from_slice(&id.to_be_bytes());
        rest[2..].copy_from_slice(&seq.to_be_bytes());
        icmp(src, dst, icmp_type, 0, rest, &[0x78; 56])
    }

    /// An ICMP error from `from` to `to` quoting the first 28 bytes of `quoted`.
    pub fn icmp_error(
        from: Ipv4Addr,
        to: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        quoted: &[u8],
    ) -> Vec<u8> {
        icmp(
            from,
            to,
            icmp_type,
            code,
            [0; 4],
            &quoted[..quoted.len().min(28)],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

    #[test]
    fn parses_udp_and_checks_sums() {
        let p = udp(A, 40002, B, 5000, b"abcd");
        let ip = parse_ipv4(&p).unwrap();
        assert_eq!((ip.src, ip.dst, ip.proto, ip.len), (A, B, 17, 32));
        assert!(l4_checksum_ok(ip.src, ip.dst, ip.proto, ip.l4));
        assert_eq!(
            packet_tuple(ip.src, ip.dst, ip.proto, ip.l4),
            Some(Tuple::udp(A, 40002, B, 5000))
        );
        let mut bad = p.clone();
        bad[31] ^= 1;
        let ip = parse_ipv4(&bad).unwrap();
        assert!(!l4_checksum_ok(ip.src, ip.dst, ip.proto, ip.l4));
    }

    #[test]
    fn rejects_bad_headers_and_fragments() {
        assert_eq!(parse_ipv4(&[0x45; 10]).unwrap_err(), L3_SHORT);
        let mut p = udp(A, 1, B, 2, b"");
        p[0] = 0x65;
        assert_eq!(parse_ipv4(&p).unwrap_err(), L3_NOT_V4);
        let mut p = udp(A, 1, B, 2, b"");
        p[6] = 0x20;
        p[7] = 0x01;
        assert_eq!(parse_ipv4(&p).unwrap_err(), L3_FRAGMENT);
        let mut p = udp(A, 1, B, 2, b"");
        p[3] = 200;
        assert_eq!(parse_ipv4(&p).unwrap_err(), L3_BOGUS);
        // Trailing bytes beyond the total length are ignored.
        let mut p = udp(A, 1, B, 2, b"xy");
        p.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ipv4(&p).unwrap().len, 30);
    }

    #[test]
    fn icmp_tuple_and_quoted_tuple() {
        let e = echo(A, B, 8, 7003, 1);
        let ip = parse_ipv4(&e).unwrap();
        assert!(icmp_checksum_ok(ip.l4));
        assert_eq!(
            packet_tuple(ip.src, ip.dst, ip.proto, ip.l4),
            Some(Tuple::icmp(A, B, 7003, 8, 0))
        );
        let q = udp(A, 39422, B, 5353, b"q");
        let err = icmp_error(B, A, 3, 3, &q);
        let ip = parse_ipv4(&err).unwrap();
        assert_eq!(
            quoted_tuple(&ip.l4[8..]),
            Some(Tuple::udp(A, 39422, B, 5353))
        );
        assert_eq!(quoted_tuple(&ip.l4[8..22]), None);
    }
}
