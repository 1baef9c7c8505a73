//! ICMP errors and the datagrams they quote: how much Linux quotes, and
//! building the error a router sends.

use std::net::Ipv4Addr;
use std::ops::Range;

use smoltcp::wire::Ipv4Packet;

use crate::checksum::Checksum;
use crate::icmp::{self, IcmpError, IcmpMessage};
use crate::model::{Datagram, Icmp, IpHeader, Transport, ICMP_HEADER_LEN, IPV4_HEADER_LEN};
use crate::payload::Payload;
use crate::token::{Token, Tokens};

/// RFC 1812 caps an ICMP error at 576 bytes, and Linux's `icmp_send`
/// quotes as much of the offending datagram as fits under that cap.
const MAX_ERROR_LEN: usize = 576;

/// How many quotes may nest inside one another in a literal; deeper
/// quotes print as hex. Keeps parsing and printing recursion shallow.
pub(crate) const MAX_DEPTH: usize = 4;

/// How many bytes of a `whole`-byte datagram an ICMP error whose IP header
/// is `header_len` bytes quotes by default: all of it, as long as the
/// error stays within 576 bytes.
pub(crate) fn default_len(header_len: usize, whole: usize) -> usize {
    whole.min(MAX_ERROR_LEN.saturating_sub(header_len + ICMP_HEADER_LEN))
}

/// IPTOS_PREC_INTERNETCONTROL: the precedence Linux gives its ICMP errors.
const INTERNETWORK_CONTROL: u8 = 0xc0;
/// RT_TOS(): the TOS bits Linux carries over from the offending datagram.
const RT_TOS_MASK: u8 = 0x1e;

/// Builds the ICMP error a router at `src` sends about `offending` (the
/// datagram as it was received), the way Linux's `icmp_send` does: to the
/// offending datagram's source, quoting as much of it as fits in 576
/// bytes. The IP header has DF clear, TTL 64 and IP ID 0 (Linux picks a
/// varying ID; a fixed one keeps runs deterministic).
///
/// Whether to send an error at all is the caller's call: Linux sends none
/// about ICMP errors (see [`is_icmp_error`]), non-first fragments, or
/// broadcast and multicast datagrams. Bytes too short to hold a source
/// address get an error addressed to 0.0.0.0.
///
/// ```
/// use std::net::Ipv4Addr;
/// use ctsim_packet::{icmp_error, parse, show, IcmpError};
///
/// let syn = parse("tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1 win=1024", &|_| None).unwrap();
/// let error = icmp_error(Ipv4Addr::new(203, 0, 113, 1), IcmpError::TimeExceeded, &syn);
/// assert_eq!(
///     show(&error),
///     "icmp 203.0.113.1 > 192.0.2.2 time-exceeded tos=0xc0 nodf \
///      quote=(tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1 win=1024)"
/// );
/// ```
pub fn icmp_error(src: Ipv4Addr, kind: IcmpError, offending: &[u8]) -> Vec<u8> {
    let dst = offending
        .get(..IPV4_HEADER_LEN)
        .map_or(Ipv4Addr::UNSPECIFIED, |header| {
            Ipv4Packet::new_unchecked(header).src_addr()
        });
    let mut ip = IpHeader::new(src, dst);
    // As icmp_send() does (checked on Linux 6.x in a namespace): DF clear,
    // and precedence "internetwork control" plus the offender's TOS bits.
    ip.dont_frag = false;
    let offender_tos = offending.get(..IPV4_HEADER_LEN).map_or(0, |h| h[1]);
    ip.tos = INTERNETWORK_CONTROL | (offender_tos & RT_TOS_MASK);
    let kept = default_len(ip.header_len(), offending.len());
    let error = Datagram {
        transport: Transport::Icmp(Icmp {
            message: IcmpMessage::Error(kind),
            checksum: Checksum::Correct,
            body: Payload::new(&offending[..kept], kept),
        }),
        ip,
    };
    crate::emit::emit(&error)
}

/// Whether `bytes` is an ICMP error message (destination unreachable,
/// source quench, redirect, time exceeded, parameter problem). Routers
/// send no ICMP error about one of these.
pub fn is_icmp_error(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..IPV4_HEADER_LEN) else {
        return false;
    };
    let packet = Ipv4Packet::new_unchecked(header);
    let header_len = usize::from(packet.header_len());
    packet.version() == 4
        && u8::from(packet.next_header()) == crate::ICMP
        && packet.frag_offset() == 0
        && header_len >= IPV4_HEADER_LEN
        && bytes
            .get(header_len)
            .is_some_and(|&icmp_type| icmp::is_error_type(icmp_type))
}

/// Splits a `quote=` value into its target (a name or `(LITERAL)`) and
/// the `/N` length after it, if any.
pub(crate) fn split_length(value: Token<'_>) -> (Token<'_>, Option<Token<'_>>) {
    match value.text.rfind('/') {
        Some(at) if !value.text[at..].contains(')') => (value.until(at), Some(value.from(at + 1))),
        _ => (value, None),
    }
}

/// Where a literal names other packets: the byte ranges of `NAME` in its
/// `quote=NAME` and `quote=NAME/N` fields (an inline `quote=(…)` names
/// none). It uses the parser's own tokenizer, so text inside a
/// `payload="…"` string is never taken for a field. A literal that does
/// not tokenize names nothing here; parsing it reports why.
///
/// ```
/// let text = "icmp 192.0.2.1 > 192.0.2.2 port-unreachable quote=syn/28";
/// let names = ctsim_packet::quoted_names(text);
/// assert_eq!(names.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>(), ["syn"]);
/// assert!(ctsim_packet::quoted_names("udp 192.0.2.1:1 > 192.0.2.2:2 payload=\"quote=x\"").is_empty());
/// ```
pub fn quoted_names(text: &str) -> Vec<Range<usize>> {
    let Ok(tokens) = Tokens::new(text, 0, "literal") else {
        return Vec::new();
    };
    tokens
        .filter_map(|token| match token.key_value() {
            (key, Some(value)) if key.text == "quote" => Some(split_length(value).0),
            _ => None,
        })
        .filter(|target| !target.text.is_empty() && !target.text.starts_with('('))
        .map(|target| target.span())
        .collect()
}
