//! Internet checksums: the value a header should carry, and how a literal
//! asks for it (correct, deliberately wrong, or an exact value).

use std::net::Ipv4Addr;

use smoltcp::wire::{checksum, IpProtocol};

/// How a checksum field is filled in, or how an existing one reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checksum {
    /// The correct value (the default).
    Correct,
    /// Deliberately wrong: `csum=bad`.
    Bad,
    /// Exactly this value: `csum=0xNNNN`; also how a wrong field prints.
    Value(u16),
}

impl Checksum {
    /// The value to write, given the correct one. `Bad` is off by one and
    /// never zero, so a UDP checksum stays "present but wrong".
    pub fn resolve(self, correct: u16) -> u16 {
        match self {
            Checksum::Correct => correct,
            Checksum::Bad => correct.wrapping_add(1).max(1),
            Checksum::Value(value) => value,
        }
    }

    /// How a field holding `field` reads back when `correct` is right.
    pub fn classify(field: u16, correct: u16) -> Self {
        if field == correct {
            Checksum::Correct
        } else {
            Checksum::Value(field)
        }
    }
}

/// The correct checksum of `bytes`, whose checksum field is the two bytes
/// at even offset `field`; the field's current contents are skipped, so
/// the same function serves building and checking.
fn over(bytes: &[u8], field: usize, pseudo_header: u16) -> u16 {
    let before = bytes.get(..field).unwrap_or(bytes);
    let after = bytes.get(field + 2..).unwrap_or(&[]);
    !checksum::combine(&[pseudo_header, checksum::data(before), checksum::data(after)])
}

/// Offset of the IPv4 header checksum.
pub(crate) const IPV4_FIELD: usize = 10;

/// The correct IPv4 header checksum of `header` (options included).
pub(crate) fn ipv4_header(header: &[u8]) -> u16 {
    over(header, IPV4_FIELD, 0)
}

/// Where the checksum field of `protocol`'s header sits and its correct
/// value for an IP payload of `len` bytes that starts with `segment` and
/// continues with zeros (zeros add nothing to the sum, so a quote cut short
/// is checked as if its missing bytes were zero). `None` for protocols
/// without a checksum this crate knows.
///
/// TCP and UDP sum a pseudo-header whose length is the IP payload length,
/// as Linux (and conntrack's checksum check) does even when a UDP header's
/// own length field says otherwise.
pub(crate) fn transport(
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    segment: &[u8],
    len: usize,
) -> Option<(usize, u16)> {
    let pseudo = || checksum::pseudo_header_v4(&src, &dst, IpProtocol::from(protocol), len as u32);
    match protocol {
        crate::ICMP => Some((2, over(segment, 2, 0))),
        crate::TCP => Some((16, over(segment, 16, pseudo()))),
        // RFC 768: a computed zero is sent as all ones, zero meaning "none".
        crate::UDP => match over(segment, 6, pseudo()) {
            0 => Some((6, 0xffff)),
            sum => Some((6, sum)),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_differs_and_is_never_zero() {
        for correct in [0, 1, 0x1234, 0xfffe, 0xffff] {
            let bad = Checksum::Bad.resolve(correct);
            assert_ne!(bad, correct);
            assert_ne!(bad, 0);
        }
        assert_eq!(Checksum::Value(7).resolve(9), 7);
        assert_eq!(Checksum::classify(9, 9), Checksum::Correct);
        assert_eq!(Checksum::classify(7, 9), Checksum::Value(7));
    }

    #[test]
    fn udp_never_sends_zero() {
        let (src, dst) = (Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(0, 0, 0, 0));
        // Pseudo-header 0x0011 + 0x000a, length field 0x000a: a first word
        // of 0xffda makes the sum 0xffff, whose complement would be zero.
        let segment = [0xff, 0xda, 0, 0, 0, 0x0a, 0, 0, 0, 0];
        assert_eq!(
            transport(crate::UDP, src, dst, &segment, segment.len()),
            Some((6, 0xffff))
        );
        assert_eq!(transport(47, src, dst, &segment, segment.len()), None);
    }

    #[test]
    fn missing_tail_counts_as_zeros() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        let whole = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0];
        let cut = &whole[..9];
        assert_eq!(
            transport(crate::UDP, src, dst, cut, whole.len()),
            transport(crate::UDP, src, dst, &whole, whole.len())
        );
    }
}
