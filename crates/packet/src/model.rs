//! The structured form of a datagram that sits between text and bytes:
//! the parser builds it from a literal, the decoder builds it from bytes,
//! the printer writes it as a literal and the emitter writes it as bytes.
//!
//! It holds every bit of the datagram (a checksum that is wrong is kept as
//! its value), so bytes → model → bytes is exact. Payloads borrow from the
//! decoded bytes and options sit inline, so printing never allocates.

use std::net::Ipv4Addr;

use crate::checksum::Checksum;
use crate::icmp::IcmpMessage;
use crate::payload::Payload;

/// The IPv4 header without the fields derived from the rest (version,
/// header length, total length, protocol).
#[derive(Debug, Clone)]
pub(crate) struct IpHeader {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// The reserved flag bit (RFC 3514's "evil bit").
    pub reserved_flag: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    pub options: OptionBytes,
    pub checksum: Checksum,
}

/// The defaults a literal starts from: TTL 64, DF set, everything else 0.
pub(crate) const DEFAULT_TTL: u8 = 64;

impl IpHeader {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        IpHeader {
            src,
            dst,
            ttl: DEFAULT_TTL,
            tos: 0,
            id: 0,
            dont_frag: true,
            more_frags: false,
            reserved_flag: false,
            frag_offset: 0,
            options: OptionBytes::default(),
            checksum: Checksum::Correct,
        }
    }

    pub fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + self.options.as_slice().len()
    }
}

pub(crate) const IPV4_HEADER_LEN: usize = 20;
pub(crate) const TCP_HEADER_LEN: usize = 20;
pub(crate) const UDP_HEADER_LEN: usize = 8;
pub(crate) const ICMP_HEADER_LEN: usize = 8;

/// One IPv4 datagram.
#[derive(Debug, Clone)]
pub(crate) struct Datagram<'a> {
    pub ip: IpHeader,
    pub transport: Transport<'a>,
}

impl Datagram<'_> {
    /// Length in bytes, as the IPv4 total length field will say.
    pub fn len(&self) -> usize {
        self.ip.header_len() + self.transport.len()
    }
}

/// What the IP payload holds.
#[derive(Debug, Clone)]
pub(crate) enum Transport<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    Icmp(Icmp<'a>),
    /// Any other protocol, and TCP/UDP/ICMP that cannot be shown field by
    /// field (non-first fragments, malformed headers): raw payload bytes.
    Other {
        protocol: u8,
        payload: Payload<'a>,
    },
}

impl Transport<'_> {
    pub fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => crate::TCP,
            Transport::Udp(_) => crate::UDP,
            Transport::Icmp(_) => crate::ICMP,
            Transport::Other { protocol, .. } => *protocol,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Transport::Tcp(tcp) => TCP_HEADER_LEN + tcp.options.as_slice().len() + tcp.payload.len,
            Transport::Udp(udp) => UDP_HEADER_LEN + udp.payload.len,
            Transport::Icmp(icmp) => {
                ICMP_HEADER_LEN + 4 * icmp.message.fixed().len() + icmp.body.len
            }
            Transport::Other { payload, .. } => payload.len,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// The nine flag bits, see [`crate::tcp_flags`].
    pub flags: u16,
    pub window: u16,
    pub urgent: u16,
    pub checksum: Checksum,
    /// Options, already padded to a multiple of 4 bytes.
    pub options: OptionBytes,
    pub payload: Payload<'a>,
}

#[derive(Debug, Clone)]
pub(crate) struct Udp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    /// The header's length field when it disagrees with the datagram
    /// (`ulen=N`); `None` means 8 + payload length.
    pub length: Option<u16>,
    pub checksum: Checksum,
    pub payload: Payload<'a>,
}

#[derive(Debug, Clone)]
pub(crate) struct Icmp<'a> {
    pub message: IcmpMessage,
    pub checksum: Checksum,
    /// Everything after the header and the message's fixed fields: echo
    /// data, or the quoted datagram of an error.
    pub body: Payload<'a>,
}

/// Up to 40 bytes of IP or TCP options, inline so decoding never
/// allocates. Always a multiple of 4 bytes long: whatever fills it pads
/// with zero (end-of-list) bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptionBytes {
    bytes: [u8; Self::MAX],
    len: usize,
}

impl OptionBytes {
    /// Options fill at most 40 bytes in both IPv4 and TCP headers.
    pub const MAX: usize = 40;

    /// Copies `bytes` and pads them to a multiple of 4, or `None` if the
    /// padded length exceeds 40.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut options = OptionBytes::default();
        (options.push(bytes) && options.pad()).then_some(options)
    }

    /// Appends unpadded bytes; false if they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        match self.bytes.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
                true
            }
            None => false,
        }
    }

    /// Pads with zero bytes to a multiple of 4; false if that overflows.
    pub fn pad(&mut self) -> bool {
        let padded = self.len.next_multiple_of(4);
        self.len = padded.min(Self::MAX);
        padded <= Self::MAX
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for OptionBytes {
    fn default() -> Self {
        OptionBytes {
            bytes: [0; Self::MAX],
            len: 0,
        }
    }
}

impl std::fmt::Debug for OptionBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OptionBytes({:02x?})", self.as_slice())
    }
}
