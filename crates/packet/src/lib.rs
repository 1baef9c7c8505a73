//! The packet literal notation: one-line, tcpdump/packetdrill-like
//! descriptions of IPv4 datagrams. [`parse()`] turns a literal into the
//! datagram's bytes; [`show`] (or [`Literal`]) turns any bytes back into
//! a literal. For every byte string, parsing what [`show`] prints gives
//! the same bytes back.
//!
//! # Examples
//!
//! ```text
//! tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240 [mss 1460, sackOK, ts val 100 ecr 0, nop, wscale 7]
//! tcp 192.0.2.2:40000 > 198.51.100.2:22 . seq=1001 ack=5001 win=502 len=100
//! tcp 192.0.2.2:40000 > 198.51.100.2:22 R seq=1001 win=0 csum=bad ttl=3
//! udp 192.0.2.2:5000 > 198.51.100.2:53 payload="hi\r\n"
//! icmp 192.0.2.2 > 198.51.100.2 echo-request id=7 seq=1 len=56
//! icmp 198.51.100.1 > 192.0.2.2 frag-needed mtu=1400 nodf quote=(tcp 192.0.2.2:40000 > 198.51.100.2:22 . seq=1 ack=1 win=502 len=1460)/548
//! icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=syn/28
//! ip 192.0.2.2 > 198.51.100.2 proto=47 mf ipid=9 hex=0000086500
//! malformed (IP version 6) hex=6000
//! ```
//!
//! # Grammar
//!
//! ```text
//! literal  = "tcp"  ADDR:PORT ">" ADDR:PORT FLAGS field*
//!          | "udp"  ADDR:PORT ">" ADDR:PORT field*
//!          | "icmp" ADDR ">" ADDR KIND field*
//!          | "ip"   ADDR ">" ADDR "proto=" N field*
//!          | "malformed" ["(" reason ")"] "hex=" HEX
//! ```
//!
//! Fields come in any order, each at most once. Numbers are decimal or
//! `0x` hex. The printer writes fields in a fixed order (transport fields,
//! TCP options, IP fields, then payload or quote) and only those that
//! differ from the defaults.
//!
//! * **IP fields** (any literal): `ttl=N` (default 64), `tos=N` (default
//!   0), `ipid=N` (default 0), `nodf` (DF is set unless this is given),
//!   `mf`, `rf` (the reserved flag bit), `frag=OFFSET` (bytes, a multiple
//!   of 8), `ipopts=HEX` (zero-padded to a multiple of 4), and
//!   `ipcsum=bad|N` (the header checksum is correct unless given).
//! * **Payload** (TCP, UDP, ICMP queries, `ip`): `len=N` zero bytes,
//!   `payload="text"` (escapes `\r \n \t \" \\ \xNN`) or `hex=0a0b…`.
//!   Bytes and `len` combine: `hex=0a len=4` is `0a000000`. The printer
//!   writes `len=N` alone for all-zero payloads, text when the bytes are
//!   printable (`\r \n \t` included), hex otherwise, and leaves a run of
//!   8 or more trailing zeros to `len`.
//! * **Transport checksum**: `csum=bad` (deliberately wrong) or `csum=N`;
//!   correct when not given. A wrong checksum prints as `csum=0xNNNN`.
//! * **TCP**: FLAGS are tcpdump's letters in any order, printed as
//!   `F S R P . U E W e` (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE), so
//!   `S`, `S.`, `.`, `P.`, `F.`, `R`, `R.`; `none` for no flags. Fields
//!   `seq=N` (default 0), `ack=N` (default 0), `win=N` (default 65535),
//!   `urg=N`, and an option list `[mss N, wscale N, sackOK, sack L:R …,
//!   ts val N ecr N, nop, eol, opt KIND hex=HEX]`, zero-padded to a
//!   multiple of 4 bytes. Printing always shows seq and win, and ack when
//!   the ACK flag is set (or the field is not zero).
//! * **UDP**: `ulen=N` when the header's length field should disagree
//!   with the datagram.
//! * **ICMP queries**: KIND is `echo-request`, `echo-reply`,
//!   `timestamp-request`, `timestamp-reply` (fields `orig=`, `recv=`,
//!   `xmit=`), `info-request`, `info-reply`, `mask-request` or
//!   `mask-reply` (field `mask=ADDR`); all take `id=N seq=N` (default 0,
//!   always printed).
//! * **ICMP errors**: KIND is an [`IcmpError`] name: `net-unreachable`,
//!   `host-unreachable`, `proto-unreachable`, `port-unreachable`,
//!   `frag-needed mtu=N`, `net-prohibited`, `host-prohibited`,
//!   `admin-prohibited`, `source-quench`, `redirect gw=ADDR`,
//!   `time-exceeded`, `reassembly-time-exceeded`, `param-problem ptr=N`.
//!   Any other message is `type=N` with `code=N` and `rest=N` (the four
//!   header bytes after the checksum). An error quotes a datagram with
//!   `quote=NAME` (looked up by the caller's resolver) or
//!   `quote=(LITERAL)`; `/N` after either keeps only its first N bytes.
//!   Without `/N`, as much is kept as Linux's `icmp_send` would: all of
//!   it, as long as the error stays within 576 bytes. The printer writes
//!   a quote inline, with `/N` whenever it was cut short (or is longer
//!   than the default). A cut quote prints as the whole datagram its IP
//!   header describes, the missing bytes taken as zero (a TCP header cut
//!   before its data offset prints without options); its checksums print
//!   as values unless they match that zero-filled datagram, so the
//!   literal cut to `/N` gives back the same bytes.
//! * **Fragments and odd headers**: a non-first fragment, or a TCP, UDP or
//!   ICMP header that cannot be written field by field (TCP reserved bits,
//!   a bad data offset, a truncated option), prints as `ip … proto=N`
//!   with the raw payload.
//! * **`malformed`**: bytes that are not an IPv4 datagram (wrong version,
//!   lengths that disagree) print as `malformed (reason) hex=…`, which
//!   parses back to the same bytes.
//!
//! [`Filter`] selects datagrams with a tcpdump-like expression using the
//! same names.

mod checksum;
mod decode;
mod emit;
mod error;
mod filter;
mod icmp;
mod model;
mod parse;
mod payload;
mod print;
mod quote;
mod tcp_flags;
mod tcp_options;
mod token;
mod value;

use std::fmt;

pub use error::LiteralError;
pub use filter::Filter;
pub use icmp::IcmpError;
pub use quote::{icmp_error, is_icmp_error, quoted_names};

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// Parses a literal into the bytes of the IPv4 datagram it describes.
/// `quotes` resolves `quote=NAME` to the bytes of a packet named earlier;
/// pass `&|_| None` when there are none.
///
/// ```
/// let syn = ctsim_packet::parse("tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240", &|_| None).unwrap();
/// assert_eq!(syn.len(), 40);
/// let reply = ctsim_packet::parse(
///     "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=syn/28",
///     &|name| (name == "syn").then(|| syn.clone()),
/// )
/// .unwrap();
/// assert_eq!(reply.len(), 20 + 8 + 28);
/// ```
pub fn parse(
    text: &str,
    quotes: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, LiteralError> {
    parse::literal(text, 0, quotes, 0)
}

/// The canonical literal for `bytes`. Never fails: bytes that are not an
/// IPv4 datagram print as `malformed (reason) hex=…`.
pub fn show(bytes: &[u8]) -> String {
    Literal(bytes).to_string()
}

/// Displays bytes as their canonical literal, writing straight into the
/// formatter without allocating.
///
/// ```
/// use ctsim_packet::{parse, Literal};
/// let bytes = parse("udp 192.0.2.2:5000 > 198.51.100.2:53 len=32", &|_| None).unwrap();
/// assert_eq!(format!("{}", Literal(&bytes)), "udp 192.0.2.2:5000 > 198.51.100.2:53 len=32");
/// ```
///
/// The alternate form (`{:#}`) is a summary for timelines: payloads show as
/// `len=N` unless they are short printable text. It may not parse back to
/// the same bytes.
///
/// ```
/// use ctsim_packet::{parse, Literal};
/// let bytes = parse("udp 192.0.2.2:5000 > 198.51.100.2:53 hex=0102", &|_| None).unwrap();
/// assert_eq!(format!("{:#}", Literal(&bytes)), "udp 192.0.2.2:5000 > 198.51.100.2:53 len=2");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Literal<'a>(pub &'a [u8]);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match decode::datagram(self.0) {
            Ok(datagram) => print::datagram(f, &datagram, 0),
            Err(reason) => write!(f, "malformed ({reason}) hex={}", payload::Hex(self.0)),
        }
    }
}
