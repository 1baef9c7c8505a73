//! Reading bytes into a [`Datagram`], choosing for each layer the most
//! specific form that still reproduces every byte: a TCP header with
//! reserved bits set, say, falls back to `ip … proto=6 hex=…`.
//!
//! Quoted datagrams (inside ICMP errors) are often cut short. They decode
//! as the whole datagram their IP header describes, with the missing bytes
//! taken as zero, so the printed literal re-creates the quote once cut to
//! the same length. A TCP header cut before its data offset is shown
//! without options.

use std::fmt;

use smoltcp::wire::{Icmpv4Packet, Ipv4Packet, TcpPacket, UdpPacket};

use crate::checksum::{self, Checksum};
use crate::icmp::IcmpMessage;
use crate::model::{
    Datagram, Icmp, IpHeader, OptionBytes, Tcp, Transport, Udp, ICMP_HEADER_LEN, IPV4_HEADER_LEN,
    TCP_HEADER_LEN, UDP_HEADER_LEN,
};
use crate::payload::Payload;
use crate::{tcp_flags, tcp_options};

/// Why bytes are not a well-formed IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    TooShort { len: usize },
    Version(u8),
    HeaderTooShort { header_len: usize },
    HeaderPastEnd { header_len: usize, len: usize },
    TotalBelowHeader { total_len: usize, header_len: usize },
    TotalMismatch { total_len: usize, len: usize },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Malformed::TooShort { len } => {
                write!(f, "{len} bytes, shorter than an IPv4 header")
            }
            Malformed::Version(version) => write!(f, "IP version {version}"),
            Malformed::HeaderTooShort { header_len } => {
                write!(f, "header length {header_len} is less than 20")
            }
            Malformed::HeaderPastEnd { header_len, len } => {
                write!(f, "header length {header_len} but only {len} bytes")
            }
            Malformed::TotalBelowHeader {
                total_len,
                header_len,
            } => write!(
                f,
                "total length {total_len} is less than header length {header_len}"
            ),
            Malformed::TotalMismatch { total_len, len } => {
                write!(f, "total length {total_len} but {len} bytes")
            }
        }
    }
}

/// Checks the IPv4 header and returns its header and total lengths.
fn lengths(bytes: &[u8]) -> Result<(usize, usize), Malformed> {
    let len = bytes.len();
    if len < IPV4_HEADER_LEN {
        return Err(Malformed::TooShort { len });
    }
    let packet = Ipv4Packet::new_unchecked(bytes);
    if packet.version() != 4 {
        return Err(Malformed::Version(packet.version()));
    }
    let header_len = usize::from(packet.header_len());
    let total_len = usize::from(packet.total_len());
    if header_len < IPV4_HEADER_LEN {
        Err(Malformed::HeaderTooShort { header_len })
    } else if header_len > len {
        Err(Malformed::HeaderPastEnd { header_len, len })
    } else if total_len < header_len {
        Err(Malformed::TotalBelowHeader {
            total_len,
            header_len,
        })
    } else {
        Ok((header_len, total_len))
    }
}

/// A complete datagram.
pub(crate) fn datagram(bytes: &[u8]) -> Result<Datagram<'_>, Malformed> {
    let (header_len, total_len) = lengths(bytes)?;
    if total_len != bytes.len() {
        return Err(Malformed::TotalMismatch {
            total_len,
            len: bytes.len(),
        });
    }
    Ok(read(bytes, header_len, total_len))
}

/// The datagram an ICMP error's body quotes: the body must be a prefix of
/// it (body bytes known so far, and the body's full length).
pub(crate) fn quoted<'a>(body: &'a Payload<'_>) -> Option<Datagram<'a>> {
    let (header_len, total_len) = lengths(&body.bytes).ok()?;
    (total_len >= body.len).then(|| read(&body.bytes, header_len, total_len))
}

/// Reads a datagram of `total_len` bytes whose first bytes are `known`
/// (at least its whole header).
fn read(known: &[u8], header_len: usize, total_len: usize) -> Datagram<'_> {
    let packet = Ipv4Packet::new_unchecked(known);
    let header = &known[..header_len];
    let ip = IpHeader {
        src: packet.src_addr(),
        dst: packet.dst_addr(),
        ttl: packet.hop_limit(),
        tos: header[1],
        id: packet.ident(),
        dont_frag: packet.dont_frag(),
        more_frags: packet.more_frags(),
        reserved_flag: header[6] & 0x80 != 0,
        frag_offset: packet.frag_offset(),
        options: OptionBytes::new(&header[IPV4_HEADER_LEN..]).unwrap_or_default(),
        checksum: Checksum::classify(packet.checksum(), checksum::ipv4_header(header)),
    };
    let segment = Segment {
        known: &known[header_len..],
        len: total_len - header_len,
    };
    let protocol = u8::from(packet.next_header());
    let transport = if ip.frag_offset != 0 {
        None
    } else {
        match protocol {
            crate::TCP => tcp(segment, &ip).map(Transport::Tcp),
            crate::UDP => udp(segment, &ip).map(Transport::Udp),
            crate::ICMP => icmp(segment, &ip).map(Transport::Icmp),
            _ => None,
        }
    };
    let transport = transport.unwrap_or_else(|| Transport::Other {
        protocol,
        payload: segment.rest(0),
    });
    Datagram { ip, transport }
}

/// The IP payload: `len` bytes of which the first ones are `known`.
#[derive(Clone, Copy)]
struct Segment<'a> {
    known: &'a [u8],
    len: usize,
}

impl<'a> Segment<'a> {
    fn is_truncated(&self) -> bool {
        self.known.len() < self.len
    }

    /// Whether a header of `header_len` bytes can be shown field by field:
    /// it fits, and if the segment is cut short, at least the first 8
    /// bytes (ports, or ICMP type and code) are there, as RFC 792 quotes.
    fn holds(&self, header_len: usize) -> bool {
        self.len >= header_len && (!self.is_truncated() || self.known.len() >= 8)
    }

    /// The first `N` bytes, zero where unknown.
    fn header<const N: usize>(&self) -> [u8; N] {
        let mut header = [0; N];
        for (out, byte) in header.iter_mut().zip(self.known) {
            *out = *byte;
        }
        header
    }

    /// Everything from byte `at` on.
    fn rest(&self, at: usize) -> Payload<'a> {
        Payload::new(
            self.known.get(at..).unwrap_or_default(),
            self.len.saturating_sub(at),
        )
    }

    /// The transport checksum as a literal gives it: correct when it
    /// matches the segment with its missing bytes taken as zero (which is
    /// what parsing the printed literal rebuilds), else its value. A field
    /// that is cut off entirely reads as correct: parsing fills in some
    /// value and the cut drops it again.
    fn checksum(&self, protocol: u8, ip: &IpHeader) -> Checksum {
        let Some((at, correct)) =
            checksum::transport(protocol, ip.src, ip.dst, self.known, self.len)
        else {
            return Checksum::Correct;
        };
        match self.known.get(at..) {
            Some([high, low, ..]) => Checksum::classify(u16::from_be_bytes([*high, *low]), correct),
            Some([high]) => Checksum::classify(u16::from_be_bytes([*high, 0]), correct),
            _ => Checksum::Correct,
        }
    }
}

fn tcp<'a>(segment: Segment<'a>, ip: &IpHeader) -> Option<Tcp<'a>> {
    const MAX_HEADER_LEN: usize = TCP_HEADER_LEN + OptionBytes::MAX;
    if !segment.holds(TCP_HEADER_LEN) {
        return None;
    }
    let mut header: [u8; MAX_HEADER_LEN] = segment.header();
    if segment.known.len() <= 12 {
        // The data offset was cut off: show the header without options.
        header[12] = 0x50;
    }
    let packet = TcpPacket::new_unchecked(&header[..]);
    let header_len = usize::from(packet.header_len());
    let reserved_bits = header[12] & 0x0e;
    if header_len < TCP_HEADER_LEN || header_len > segment.len || reserved_bits != 0 {
        return None;
    }
    let options = &header[TCP_HEADER_LEN..header_len];
    if !tcp_options::is_list(options) {
        return None;
    }
    Some(Tcp {
        src_port: packet.src_port(),
        dst_port: packet.dst_port(),
        seq: packet.seq_number().0 as u32,
        ack: packet.ack_number().0 as u32,
        flags: u16::from_be_bytes([header[12], header[13]]) & tcp_flags::MASK,
        window: packet.window_len(),
        urgent: packet.urgent_at(),
        checksum: segment.checksum(crate::TCP, ip),
        options: OptionBytes::new(options)?,
        payload: segment.rest(header_len),
    })
}

fn udp<'a>(segment: Segment<'a>, ip: &IpHeader) -> Option<Udp<'a>> {
    if !segment.holds(UDP_HEADER_LEN) {
        return None;
    }
    let header: [u8; UDP_HEADER_LEN] = segment.header();
    let packet = UdpPacket::new_unchecked(&header[..]);
    Some(Udp {
        src_port: packet.src_port(),
        dst_port: packet.dst_port(),
        length: Some(packet.len()).filter(|&len| usize::from(len) != segment.len),
        checksum: segment.checksum(crate::UDP, ip),
        payload: segment.rest(UDP_HEADER_LEN),
    })
}

fn icmp<'a>(segment: Segment<'a>, ip: &IpHeader) -> Option<Icmp<'a>> {
    if !segment.holds(ICMP_HEADER_LEN) {
        return None;
    }
    let header: [u8; ICMP_HEADER_LEN + 12] = segment.header();
    let packet = Icmpv4Packet::new_unchecked(&header[..]);
    let rest = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let mut fixed = [0; 12];
    fixed.copy_from_slice(&header[ICMP_HEADER_LEN..]);
    let message = IcmpMessage::decode(
        packet.msg_type().into(),
        packet.msg_code(),
        rest,
        fixed,
        segment.len - ICMP_HEADER_LEN,
    );
    let body_at = ICMP_HEADER_LEN + 4 * message.fixed().len();
    Some(Icmp {
        message,
        checksum: segment.checksum(crate::ICMP, ip),
        body: segment.rest(body_at),
    })
}
