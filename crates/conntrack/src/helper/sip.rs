//! SIP and SDP parsing as `nf_conntrack_sip.c` does it
//! (reference/helpers-and-expectations.md §7): the header finder with its
//! compact forms and continuation lines, the URI address/port matchers,
//! header parameters, and the SDP line finder. Every function works on
//! one message (`msg`, the bytes from the start of the SIP message to
//! the end of it) and returns offsets into it, like Linux's `matchoff` /
//! `matchlen`, so the NAT half (ctsim-netfilter `helper::sip`) can
//! rewrite exactly what was matched. The processing of requests and
//! responses (expectations) lives in `table/sip.rs`; the quirks of the
//! kernel's parser are kept on purpose (a needle that ends exactly at the
//! end of the message is not found, a hex letter right after an address
//! makes it unparsable, and so on), since they decide what gets an
//! expectation.
//!
//! Nothing here panics on any input: every read is bounds-checked, and a
//! read past the end behaves as a byte that matches nothing.

use std::net::Ipv4Addr;

/// The SIP port (`SIP_PORT`).
pub const SIP_PORT: u16 = 5060;
/// `sip_timeout`: the signalling connection's timeout, refreshed on every
/// packet with payload.
pub const SIP_TIMEOUT_SECS: u64 = 3600;

/// Expectation classes (`enum sip_expectation_classes`).
pub const SIP_EXPECT_SIGNALLING: u8 = 0;
pub const SIP_EXPECT_AUDIO: u8 = 1;
pub const SIP_EXPECT_VIDEO: u8 = 2;
pub const SIP_EXPECT_IMAGE: u8 = 3;

/// The headers the helper reads (`enum sip_header_types`; Call-ID is
/// never used by the processing and is left out).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Header {
    CSeq,
    From,
    To,
    Contact,
    ViaUdp,
    ViaTcp,
    Expires,
    ContentLength,
}

#[derive(Clone, Copy)]
enum MatchLen {
    Digits,
    /// `skp_epaddr_len`: skip a user part up to `@`, then address[:port].
    SkipUserAddr,
    /// `epaddr_len`: address[:port].
    Addr,
}

struct HeaderDef {
    name: &'static [u8],
    cname: Option<&'static [u8]>,
    search: Option<&'static [u8]>,
    len: MatchLen,
}

fn def(h: Header) -> HeaderDef {
    let d = |name, cname, search, len| HeaderDef {
        name,
        cname,
        search,
        len,
    };
    match h {
        Header::CSeq => d(b"CSeq", None, None, MatchLen::Digits),
        Header::From => d(b"From", Some(b"f"), Some(b"sip:"), MatchLen::SkipUserAddr),
        Header::To => d(b"To", Some(b"t"), Some(b"sip:"), MatchLen::SkipUserAddr),
        Header::Contact => d(
            b"Contact",
            Some(b"m"),
            Some(b"sip:"),
            MatchLen::SkipUserAddr,
        ),
        Header::ViaUdp => d(b"Via", Some(b"v"), Some(b"UDP "), MatchLen::Addr),
        Header::ViaTcp => d(b"Via", Some(b"v"), Some(b"TCP "), MatchLen::Addr),
        Header::Expires => d(b"Expires", None, None, MatchLen::Digits),
        Header::ContentLength => d(b"Content-Length", Some(b"l"), None, MatchLen::Digits),
    }
}

/// The SDP lines the helper reads (`enum sdp_header_types`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SdpHeader {
    /// `SDP_HDR_UNSPEC`: as a terminator, none.
    Unspec,
    /// `v=`: the start of the session description.
    Version,
    /// `o=... IN IP4 addr`.
    Owner,
    /// `c=IN IP4 addr`.
    Connection,
    /// `m=type port ...`.
    Media,
}

/// A match: offset and length in the message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Match {
    pub off: usize,
    pub len: usize,
}

/// A URI match with its address and port (5060 when none is written).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UriMatch {
    pub m: Match,
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Offset just after the address (and port): where a walk over
    /// several headers continues.
    pub end: usize,
}

/// What a finder says: `Found`, nothing (`0` in Linux), or a header or
/// line that is there but cannot be parsed (`-1`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Found<T> {
    Yes(T),
    No,
    Bad,
}

#[inline]
fn at(msg: &[u8], i: usize) -> u8 {
    msg.get(i).copied().unwrap_or(0)
}

fn starts_with_ci(msg: &[u8], i: usize, needle: &[u8]) -> bool {
    msg.get(i..i + needle.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(needle))
}

fn count(msg: &[u8], mut i: usize, limit: usize, f: impl Fn(u8) -> bool) -> usize {
    let start = i;
    while i < limit && f(at(msg, i)) {
        i += 1;
    }
    i - start
}

/// `digits_len()`.
fn digits_len(msg: &[u8], i: usize, limit: usize) -> usize {
    count(msg, i, limit, |c| c.is_ascii_digit())
}

/// `string_len()`: letters.
fn string_len(msg: &[u8], i: usize, limit: usize) -> usize {
    count(msg, i, limit, |c| c.is_ascii_alphabetic())
}

/// `simple_strtoul(s, &end, 10)` truncated to `unsigned int`: the value
/// and the end of the digits.
pub fn strtoul10(msg: &[u8], i: usize) -> (u32, usize) {
    let mut v: u64 = 0;
    let mut j = i;
    while at(msg, j).is_ascii_digit() {
        v = v
            .wrapping_mul(10)
            .wrapping_add(u64::from(at(msg, j) - b'0'));
        j += 1;
    }
    (v as u32, j)
}

/// `simple_strtoul(s, &end, 0)`: `0x` hexadecimal, a leading `0` octal,
/// otherwise decimal.
fn strtoul0(msg: &[u8], i: usize) -> (u32, usize) {
    let (base, mut j) = if at(msg, i) == b'0'
        && at(msg, i + 1).eq_ignore_ascii_case(&b'x')
        && at(msg, i + 2).is_ascii_hexdigit()
    {
        (16u64, i + 2)
    } else if at(msg, i) == b'0' {
        (8, i)
    } else {
        (10, i)
    };
    let mut v: u64 = 0;
    while let Some(d) = (at(msg, j) as char).to_digit(base as u32) {
        v = v.wrapping_mul(base).wrapping_add(u64::from(d));
        j += 1;
    }
    (v as u32, j)
}

/// `in4_pton(cp, limit - cp, dst, -1, &end)`: a dotted quad ended by any
/// byte that is not a hex digit or a dot (or by the limit); a hex letter
/// right after a number, an empty or >255 part, or a fifth part make it
/// fail. Returns the address and the offset of the terminator.
pub fn in4_pton(msg: &[u8], mut i: usize, limit: usize) -> Option<(Ipv4Addr, usize)> {
    let mut parts = [0u8; 4];
    let mut n = 0;
    let mut w: Option<u32> = None;
    loop {
        let c = if i < limit { at(msg, i) } else { 0 };
        let is_dot = c == b'.';
        let is_delim = !c.is_ascii_hexdigit() && !is_dot;
        if c.is_ascii_hexdigit() && !c.is_ascii_digit() {
            return None;
        }
        if is_dot || is_delim {
            let v = w.take()?;
            parts[n] = v as u8;
            n += 1;
            if is_delim {
                return (n == 4).then_some((Ipv4Addr::from(parts), i));
            }
            if n >= 4 {
                return None;
            }
        } else {
            let v = w.unwrap_or(0) * 10 + u32::from(c - b'0');
            if v > 255 {
                return None;
            }
            w = Some(v);
        }
        i += 1;
    }
}

/// `epaddr_len()`: an address, then `:digits` if a colon follows.
fn epaddr_len(msg: &[u8], i: usize, limit: usize) -> usize {
    let Some((_, mut end)) = in4_pton(msg, i, limit) else {
        return 0;
    };
    if at(msg, end) == b':' {
        end += 1;
        end += digits_len(msg, end, limit);
    }
    end - i
}

/// `skp_epaddr_len()`: skip a user part ending in `@` on this line, then
/// `epaddr_len()`. Returns (shift, len).
fn skp_epaddr_len(msg: &[u8], i: usize, limit: usize) -> (usize, usize) {
    let mut j = i;
    while j < limit && !matches!(at(msg, j), b'@' | b'\r' | b'\n') {
        j += 1;
    }
    let start = if j < limit && at(msg, j) == b'@' {
        j + 1
    } else {
        i
    };
    (start - i, epaddr_len(msg, start, limit))
}

/// `sip_follow_continuation()`: `i` is at a CR or LF.
fn follow_continuation(msg: &[u8], mut i: usize, limit: usize) -> Option<usize> {
    i += 1;
    if i >= limit {
        return None;
    }
    if at(msg, i - 1) == b'\r' && at(msg, i) == b'\n' {
        i += 1;
        if i >= limit {
            return None;
        }
    }
    if !matches!(at(msg, i), b' ' | b'\t') {
        return None;
    }
    while i < limit && matches!(at(msg, i), b' ' | b'\t') {
        i += 1;
    }
    Some(i)
}

/// The start of the line after the CR, LF or CRLF at `i` (`None` at the
/// end of the message), as the header and SDP finders step over it.
fn line_start(msg: &[u8], mut i: usize, limit: usize) -> Option<usize> {
    i += 1;
    if i >= limit {
        return None;
    }
    if at(msg, i - 1) == b'\r' && at(msg, i) == b'\n' {
        i += 1;
        if i >= limit {
            return None;
        }
    }
    Some(i)
}

/// `sip_skip_whitespace()`.
fn skip_whitespace(msg: &[u8], mut i: usize, limit: usize) -> Option<usize> {
    while i < limit {
        match at(msg, i) {
            b' ' | b'\t' => i += 1,
            b'\r' | b'\n' => return follow_continuation(msg, i, limit),
            _ => break,
        }
    }
    Some(i)
}

/// `ct_sip_header_search()`: a case-insensitive needle inside one header
/// value (continuation lines included). The needle must end before the
/// last byte of the message, as in Linux (`limit -= len; dptr < limit`).
fn header_search(msg: &[u8], mut i: usize, limit: usize, needle: &[u8]) -> Option<usize> {
    let limit = limit.checked_sub(needle.len())?;
    while i < limit {
        if matches!(at(msg, i), b'\r' | b'\n') {
            i = follow_continuation(msg, i, limit)?;
        } else if starts_with_ci(msg, i, needle) {
            return Some(i);
        }
        // The for loop's increment also skips the first byte after a
        // continuation.
        i += 1;
    }
    None
}

fn match_len(kind: MatchLen, msg: &[u8], i: usize, limit: usize) -> (usize, usize) {
    match kind {
        MatchLen::Digits => (0, digits_len(msg, i, limit)),
        MatchLen::Addr => (0, epaddr_len(msg, i, limit)),
        MatchLen::SkipUserAddr => skp_epaddr_len(msg, i, limit),
    }
}

/// `ct_sip_get_header()`: the first header of type `h` starting after
/// `dataoff` (a header must start a line, so the request or status line
/// never counts); the match is its value (digits) or the address in its
/// URI. `Bad` carries where the search may go on (Linux's `matchoff`).
pub fn get_header(msg: &[u8], dataoff: usize, h: Header) -> (Found<Match>, usize) {
    let d = def(h);
    let limit = msg.len();
    let mut i = dataoff;
    while i < limit {
        if !matches!(at(msg, i), b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let Some(j) = line_start(msg, i, limit) else {
            break;
        };
        i = j;
        // Continuation lines.
        if matches!(at(msg, i), b' ' | b'\t') {
            i += 1;
            continue;
        }
        // Compact headers must be followed by a non-alphabetic byte.
        if limit - i >= d.name.len() && starts_with_ci(msg, i, d.name) {
            i += d.name.len();
        } else if let Some(c) = d.cname.filter(|c| {
            limit - i > c.len()
                && starts_with_ci(msg, i, c)
                && !at(msg, i + c.len()).is_ascii_alphabetic()
        }) {
            i += c.len();
        } else {
            i += 1;
            continue;
        }
        let Some(j) = skip_whitespace(msg, i, limit) else {
            break;
        };
        i = j;
        if at(msg, i) != b':' || i >= limit {
            break;
        }
        i += 1;
        if i >= limit {
            break;
        }
        let Some(j) = skip_whitespace(msg, i, limit) else {
            break;
        };
        i = j;
        let value = i;
        if let Some(s) = d.search {
            let Some(j) = header_search(msg, i, limit, s) else {
                return (Found::Bad, value);
            };
            i = j + s.len();
        }
        let (shift, len) = match_len(d.len, msg, i, limit);
        if len == 0 {
            return (Found::Bad, value);
        }
        let off = i + shift;
        return (Found::Yes(Match { off, len }), off);
    }
    (Found::No, 0)
}

/// `ct_sip_next_header()`: the next comma-separated value of a header.
fn next_header(msg: &[u8], dataoff: usize, h: Header) -> (Found<Match>, usize) {
    let d = def(h);
    let limit = msg.len();
    let Some(i) = header_search(msg, dataoff, limit, b",") else {
        return (Found::No, 0);
    };
    let Some(s) = d.search else {
        return (Found::No, 0);
    };
    let Some(i) = header_search(msg, i, limit, s) else {
        return (Found::No, 0);
    };
    let i = i + s.len();
    let (shift, len) = match_len(d.len, msg, i, limit);
    if len == 0 {
        return (Found::Bad, i);
    }
    (
        Found::Yes(Match {
            off: i + shift,
            len,
        }),
        i + shift,
    )
}

/// `ct_sip_walk_headers()`: the next parsable header of type `h` from
/// `dataoff`, first among the comma-separated values of the header we are
/// in (`in_header`), then in later headers.
fn walk_headers(
    msg: &[u8],
    mut dataoff: usize,
    h: Header,
    in_header: Option<&mut bool>,
) -> Option<Match> {
    let mut in_header = in_header;
    if let Some(flag) = in_header.as_deref_mut() {
        if *flag {
            loop {
                match next_header(msg, dataoff, h) {
                    (Found::Yes(m), _) => return Some(m),
                    (Found::No, _) => break,
                    (Found::Bad, at) => dataoff = at,
                }
            }
            *flag = false;
        }
    }
    loop {
        match get_header(msg, dataoff, h) {
            (Found::Yes(m), _) => {
                if let Some(flag) = in_header {
                    *flag = true;
                }
                return Some(m);
            }
            (Found::No, _) => return None,
            (Found::Bad, at) => dataoff = at,
        }
    }
}

/// Parses `:port` after an address at `c`: `Bad` unless 1024..=65535;
/// 5060 when absent.
fn uri_port(msg: &[u8], c: usize) -> Found<(u16, usize)> {
    if at(msg, c) == b':' {
        let (p, end) = strtoul10(msg, c + 1);
        if !(1024..=65535).contains(&p) {
            return Found::Bad;
        }
        Found::Yes((p as u16, end))
    } else {
        Found::Yes((SIP_PORT, c))
    }
}

/// `ct_sip_parse_header_uri()`: the address and port of the URI in the
/// next header of type `h` from `dataoff`. For a walk over all Contact
/// values, pass the previous result's `end` and the same `in_header`.
pub fn parse_header_uri(
    msg: &[u8],
    dataoff: usize,
    h: Header,
    in_header: Option<&mut bool>,
) -> Found<UriMatch> {
    let Some(m) = walk_headers(msg, dataoff, h, in_header) else {
        return Found::No;
    };
    let Some((addr, c)) = in4_pton(msg, m.off, msg.len()) else {
        return Found::Bad;
    };
    match uri_port(msg, c) {
        Found::Yes((port, end)) => Found::Yes(UriMatch { m, addr, port, end }),
        _ => Found::Bad,
    }
}

/// `ct_sip_parse_request()`: the address in the Request-URI (after
/// `sip:` and any user part).
pub fn parse_request(msg: &[u8]) -> Found<UriMatch> {
    let limit = msg.len();
    let mlen = string_len(msg, 0, limit);
    if mlen == 0 {
        return Found::No;
    }
    let mut i = mlen + 1;
    if i >= limit {
        return Found::No;
    }
    while i + 4 < limit {
        if matches!(at(msg, i), b'\r' | b'\n') {
            return Found::Bad;
        }
        if starts_with_ci(msg, i, b"sip:") {
            i += 4;
            break;
        }
        i += 1;
    }
    let (shift, len) = skp_epaddr_len(msg, i, limit);
    if len == 0 {
        return Found::No;
    }
    i += shift;
    let Some((addr, c)) = in4_pton(msg, i, limit) else {
        return Found::Bad;
    };
    let Found::Yes((port, end)) = uri_port(msg, c) else {
        return Found::Bad;
    };
    if end == i {
        return Found::No;
    }
    Found::Yes(UriMatch {
        m: Match {
            off: i,
            len: end - i,
        },
        addr,
        port,
        end,
    })
}

/// The value range of a header parameter search: from `dataoff` to the
/// next comma of the header, or the end of the message.
fn param_limit(msg: &[u8], dataoff: usize) -> usize {
    header_search(msg, dataoff, msg.len(), b",").unwrap_or(msg.len())
}

/// `ct_sip_parse_param()`: the value of `name` (e.g. `transport=`) up to
/// the next `;` or the end of this value.
pub fn parse_param(msg: &[u8], dataoff: usize, name: &[u8]) -> Option<Match> {
    let limit = param_limit(msg, dataoff);
    let start = header_search(msg, dataoff, limit, name)? + name.len();
    let end = header_search(msg, start, limit, b";").unwrap_or(limit);
    Some(Match {
        off: start,
        len: end.saturating_sub(start),
    })
}

/// `ct_sip_parse_address_param()` (IPv4: the `delim` brackets are an IPv6
/// matter): the address after `name` (`maddr=`, `received=`).
pub fn parse_address_param(msg: &[u8], dataoff: usize, name: &[u8]) -> Option<(Match, Ipv4Addr)> {
    let limit = param_limit(msg, dataoff);
    let start = header_search(msg, dataoff, limit, name)? + name.len();
    let (addr, end) = in4_pton(msg, start, limit)?;
    Some((
        Match {
            off: start,
            len: end - start,
        },
        addr,
    ))
}

/// `ct_sip_parse_numerical_param()`: the number after `name` (`expires=`,
/// `rport=`), read by `simple_strtoul(.., 0)`. `Bad` when no digit
/// follows the name.
pub fn parse_numerical_param(msg: &[u8], dataoff: usize, name: &[u8]) -> Found<(Match, u32)> {
    let limit = param_limit(msg, dataoff);
    let Some(start) = header_search(msg, dataoff, limit, name) else {
        return Found::No;
    };
    let start = start + name.len();
    let (v, end) = strtoul0(msg, start);
    if end == start {
        return Found::Bad;
    }
    Found::Yes((
        Match {
            off: start,
            len: end - start,
        },
        v,
    ))
}

/// `ct_sip_parse_transport()`: the `transport=` parameter must name the
/// connection's protocol (`proto`, 6 or 17); absent means `proto`.
pub fn parse_transport(msg: &[u8], dataoff: usize, proto: u8) -> Option<u8> {
    let Some(m) = parse_param(msg, dataoff, b"transport=") else {
        return Some(proto);
    };
    let p = if starts_with_ci(msg, m.off, b"TCP") {
        crate::tuple::IPPROTO_TCP
    } else if starts_with_ci(msg, m.off, b"UDP") {
        crate::tuple::IPPROTO_UDP
    } else {
        return None;
    };
    (p == proto).then_some(p)
}

fn sdp_def(h: SdpHeader) -> Option<(&'static [u8], Option<&'static [u8]>)> {
    match h {
        SdpHeader::Unspec => None,
        SdpHeader::Version => Some((b"v=", None)),
        SdpHeader::Owner => Some((b"o=", Some(b"IN IP4 "))),
        SdpHeader::Connection => Some((b"c=", Some(b"IN IP4 "))),
        SdpHeader::Media => Some((b"m=", None)),
    }
}

/// `ct_sdp_header_search()`: a case-sensitive needle on this line.
fn sdp_header_search(msg: &[u8], mut i: usize, limit: usize, needle: &[u8]) -> Option<usize> {
    let limit = limit.checked_sub(needle.len())?;
    while i < limit {
        if matches!(at(msg, i), b'\r' | b'\n') {
            return None;
        }
        if msg.get(i..i + needle.len()) == Some(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `media_len()`: `type port`.
fn media_len(msg: &[u8], i: usize, limit: usize) -> usize {
    let len = string_len(msg, i, limit);
    let j = i + len;
    if j >= limit || at(msg, j) != b' ' {
        return 0;
    }
    len + 1 + digits_len(msg, j + 1, limit)
}

/// `ct_sip_get_sdp_header()`: the first line of type `h` starting after
/// `dataoff`, stopping at a line of type `term`. The match is the
/// version digits, the address of `o=`/`c=`, or `type port` of `m=`.
pub fn get_sdp_header(msg: &[u8], dataoff: usize, h: SdpHeader, term: SdpHeader) -> Found<Match> {
    let Some((name, search)) = sdp_def(h) else {
        return Found::No;
    };
    let term = sdp_def(term).map(|t| t.0);
    let limit = msg.len();
    let mut i = dataoff;
    while i < limit {
        if !matches!(at(msg, i), b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let Some(j) = line_start(msg, i, limit) else {
            break;
        };
        i = j;
        if term.is_some_and(|t| limit - i >= t.len() && starts_with_ci(msg, i, t)) {
            break;
        }
        if limit - i >= name.len() && starts_with_ci(msg, i, name) {
            i += name.len();
        } else {
            i += 1;
            continue;
        }
        if let Some(s) = search {
            let Some(j) = sdp_header_search(msg, i, limit, s) else {
                return Found::Bad;
            };
            i = j + s.len();
        }
        let len = match h {
            SdpHeader::Version => digits_len(msg, i, limit),
            SdpHeader::Media => media_len(msg, i, limit),
            _ => in4_pton(msg, i, limit).map_or(0, |(_, end)| end - i),
        };
        if len == 0 {
            return Found::Bad;
        }
        return Found::Yes(Match { off: i, len });
    }
    Found::No
}

/// `ct_sip_parse_sdp_addr()`: an `o=`/`c=` line's address.
pub fn parse_sdp_addr(
    msg: &[u8],
    dataoff: usize,
    h: SdpHeader,
    term: SdpHeader,
) -> Found<(Match, Ipv4Addr)> {
    match get_sdp_header(msg, dataoff, h, term) {
        Found::Yes(m) => match in4_pton(msg, m.off, m.off + m.len) {
            Some((a, _)) => Found::Yes((m, a)),
            None => Found::Bad,
        },
        Found::No => Found::No,
        Found::Bad => Found::Bad,
    }
}

/// `sdp_media_types[]`: the media an `m=` line may open, with their
/// expectation class.
pub fn media_type(msg: &[u8], m: Match) -> Option<(usize, u8)> {
    const TYPES: [(&[u8], u8); 3] = [
        (b"audio ", SIP_EXPECT_AUDIO),
        (b"video ", SIP_EXPECT_VIDEO),
        (b"image ", SIP_EXPECT_IMAGE),
    ];
    TYPES
        .iter()
        .find(|(name, _)| m.len >= name.len() && msg.get(m.off..m.off + name.len()) == Some(*name))
        .map(|(name, class)| (name.len(), *class))
}

/// The datagram a SIP helper run works on: read-only when nothing will be
/// rewritten (no NAT), writable for the NAT hooks.
pub enum Pkt<'a> {
    Ro(&'a [u8]),
    Rw(&'a mut Vec<u8>),
}

impl Pkt<'_> {
    /// The datagram's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Pkt::Ro(b) => b,
            Pkt::Rw(v) => v,
        }
    }
    /// The datagram, if it may be rewritten.
    pub fn vec_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Pkt::Ro(_) => None,
            Pkt::Rw(v) => Some(v),
        }
    }
}

/// One SIP message being processed (Linux's `skb`, `ct`, `ctinfo`,
/// `dataoff`, `dptr` and `datalen`): hooks that rewrite the message
/// update `datalen`.
pub struct SipCx<'a> {
    pub ct: &'a mut crate::Conntrack,
    pub r: &'a crate::EntryRef,
    pub pkt: Pkt<'a>,
    /// Offset of the message in the datagram.
    pub dataoff: usize,
    /// Length of the message.
    pub datalen: usize,
    pub now: crate::time::Instant,
    /// The entry has IPS_SRC_NAT or IPS_DST_NAT: the hooks run.
    pub nat: bool,
}

impl SipCx<'_> {
    /// The message's bytes.
    pub fn msg(&self) -> &[u8] {
        let b = self.pkt.bytes();
        let end = (self.dataoff + self.datalen).min(b.len());
        b.get(self.dataoff..end).unwrap_or(&[])
    }
}

/// `struct nf_nat_sip_hooks`: what `nf_nat_sip` does for the connection
/// tracking helper while it parses a NATed connection's messages. Offsets
/// are in the message ([`SipCx::msg`]). Implemented by ctsim-netfilter's
/// `helper::sip`. `Err` carries the `nf_ct_helper_log()` text of a drop.
pub trait SipNatHooks {
    /// `nf_nat_sip()`: rewrite the Request-URI, the topmost Via (with its
    /// `maddr=`, `received=`, `rport=`), Contact, From and To.
    fn msg(&mut self, cx: &mut SipCx<'_>) -> Result<(), &'static str>;
    /// `nf_nat_sip_seq_adjust()`: a TCP segment changed length by `off`.
    fn seq_adjust(&mut self, cx: &mut SipCx<'_>, off: i32);
    /// `nf_nat_sip_expect()`: a REGISTER's signalling expectation, whose
    /// Contact address is at `m`.
    fn expect(
        &mut self,
        cx: &mut SipCx<'_>,
        exp: crate::expect::NewExpectation,
        m: Match,
    ) -> Result<(), &'static str>;
    /// `nf_nat_sdp_addr()`: the first `ty` line from `sdpoff` (stopping at
    /// `term`) gets `addr`; then Content-Length. `false`: drop.
    fn sdp_addr(
        &mut self,
        cx: &mut SipCx<'_>,
        sdpoff: usize,
        ty: SdpHeader,
        term: SdpHeader,
        addr: Ipv4Addr,
    ) -> bool;
    /// `nf_nat_sdp_port()`: the media port at `m` becomes `port`; then
    /// Content-Length.
    fn sdp_port(&mut self, cx: &mut SipCx<'_>, m: Match, port: u16) -> bool;
    /// `nf_nat_sdp_session()`: the session's `o=` and `c=` get `addr`.
    fn sdp_session(&mut self, cx: &mut SipCx<'_>, sdpoff: usize, addr: Ipv4Addr) -> bool;
    /// `nf_nat_sdp_media()`: insert the RTP/RTCP pair for the NAT side,
    /// moving to a free pair of ports if needed, and set `rtp_addr` to the
    /// address the SDP must now name.
    fn sdp_media(
        &mut self,
        cx: &mut SipCx<'_>,
        rtp: crate::expect::NewExpectation,
        rtcp: crate::expect::NewExpectation,
        media: Match,
        rtp_addr: &mut Ipv4Addr,
    ) -> Result<(), &'static str>;
}

/// Whether the message starts with `prefix`, case-insensitively.
pub fn has_prefix(msg: &[u8], prefix: &[u8]) -> bool {
    starts_with_ci(msg, 0, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@198.51.100.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@198.51.100.2>\r\n\
From: Alice <sip:alice@192.0.2.2>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@192.0.2.2\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.2>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 132\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.2\r\n\
s=-\r\n\
c=IN IP4 192.0.2.2\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    fn text(msg: &[u8], m: Match) -> &str {
        std::str::from_utf8(&msg[m.off..m.off + m.len]).unwrap()
    }

    #[test]
    fn dotted_quads_as_in4_pton() {
        let a = |s: &str| in4_pton(s.as_bytes(), 0, s.len()).map(|(a, e)| (a.to_string(), e));
        assert_eq!(a("192.0.2.2"), Some(("192.0.2.2".into(), 9)));
        assert_eq!(a("192.0.2.2:5060"), Some(("192.0.2.2".into(), 9)));
        assert_eq!(a("192.0.2.2>"), Some(("192.0.2.2".into(), 9)));
        assert_eq!(a("192.0.2.256"), None);
        assert_eq!(a("192.0.2"), None);
        assert_eq!(a("192.0.2.2."), None);
        assert_eq!(a("192..2.2"), None);
        // A hex letter is neither digit nor delimiter.
        assert_eq!(a("192.0.2.2a"), None);
        assert_eq!(a("192.0.2.2x"), Some(("192.0.2.2".into(), 9)));
        assert_eq!(a(""), None);
    }

    #[test]
    fn headers_of_the_rfc_3261_invite() {
        let m = INVITE.as_bytes();
        let (cseq, _) = get_header(m, 0, Header::CSeq);
        let Found::Yes(cseq) = cseq else { panic!() };
        assert_eq!(text(m, cseq), "314159");
        let Found::Yes(via) = parse_header_uri(m, 0, Header::ViaUdp, None) else {
            panic!()
        };
        assert_eq!(text(m, via.m), "192.0.2.2:5060");
        assert_eq!((via.addr, via.port), (Ipv4Addr::new(192, 0, 2, 2), 5060));
        // A Via of the other transport is skipped like any unparsable one.
        assert_eq!(parse_header_uri(m, 0, Header::ViaTcp, None), Found::No);
        let Found::Yes(from) = parse_header_uri(m, 0, Header::From, None) else {
            panic!()
        };
        assert_eq!(text(m, from.m), "192.0.2.2");
        let Found::Yes(contact) = parse_header_uri(m, 0, Header::Contact, None) else {
            panic!()
        };
        assert_eq!(text(m, contact.m), "192.0.2.2");
        let Found::Yes(req) = parse_request(m) else {
            panic!()
        };
        assert_eq!(text(m, req.m), "198.51.100.2");
        let (cl, _) = get_header(m, 0, Header::ContentLength);
        let Found::Yes(cl) = cl else { panic!() };
        assert_eq!(text(m, cl), "132");
        // The body is 132 bytes from "v=0".
        let Found::Yes(v) = get_sdp_header(m, 0, SdpHeader::Version, SdpHeader::Unspec) else {
            panic!()
        };
        assert_eq!(m.len() - v.off + 2, 132);
    }

    #[test]
    fn sdp_lines() {
        let m = INVITE.as_bytes();
        let Found::Yes(v) = get_sdp_header(m, 0, SdpHeader::Version, SdpHeader::Unspec) else {
            panic!()
        };
        let Found::Yes((c, a)) = parse_sdp_addr(m, v.off, SdpHeader::Connection, SdpHeader::Media)
        else {
            panic!()
        };
        assert_eq!((text(m, c), a), ("192.0.2.2", Ipv4Addr::new(192, 0, 2, 2)));
        let Found::Yes(o) = get_sdp_header(m, v.off, SdpHeader::Owner, SdpHeader::Media) else {
            panic!()
        };
        assert_eq!(text(m, o), "192.0.2.2");
        let Found::Yes(media) = get_sdp_header(m, v.off, SdpHeader::Media, SdpHeader::Unspec)
        else {
            panic!()
        };
        assert_eq!(text(m, media), "audio 49170");
        assert_eq!(media_type(m, media), Some((6, SIP_EXPECT_AUDIO)));
        // No media-level c= after the only m= line.
        assert_eq!(
            parse_sdp_addr(m, media.off, SdpHeader::Connection, SdpHeader::Media),
            Found::No
        );
    }

    #[test]
    fn compact_forms_and_continuations() {
        let m = b"INVITE sip:bob@198.51.100.2 SIP/2.0\r\nv:\r\n  SIP/2.0/UDP 192.0.2.9:5070\r\nm: <sip:a@192.0.2.9:5070>, <sip:b@192.0.2.10>\r\nl: 0\r\n\r\n";
        let Found::Yes(via) = parse_header_uri(m, 0, Header::ViaUdp, None) else {
            panic!()
        };
        assert_eq!((via.addr, via.port), (Ipv4Addr::new(192, 0, 2, 9), 5070));
        let mut in_h = false;
        let Found::Yes(c1) = parse_header_uri(m, 0, Header::Contact, Some(&mut in_h)) else {
            panic!()
        };
        assert_eq!(text(m, c1.m), "192.0.2.9:5070");
        let Found::Yes(c2) = parse_header_uri(m, c1.end, Header::Contact, Some(&mut in_h)) else {
            panic!()
        };
        assert_eq!(text(m, c2.m), "192.0.2.10");
        assert_eq!(
            parse_header_uri(m, c2.end, Header::Contact, Some(&mut in_h)),
            Found::No
        );
        // "Max-Forwards" is not the compact Contact "m".
        let m2 = b"ACK sip:x@192.0.2.1 SIP/2.0\r\nMax-Forwards: 70\r\n\r\n";
        assert_eq!(parse_header_uri(m2, 0, Header::Contact, None), Found::No);
    }

    #[test]
    fn params() {
        let m = b"REGISTER sip:r SIP/2.0\r\nContact: <sip:a@192.0.2.2>;expires=0x10;transport=udp, <sip:b@192.0.2.3>;expires=5\r\n";
        let Found::Yes(c) = parse_header_uri(m, 0, Header::Contact, None) else {
            panic!()
        };
        let Found::Yes((_, e)) = parse_numerical_param(m, c.end, b"expires=") else {
            panic!()
        };
        assert_eq!(e, 16);
        assert_eq!(parse_transport(m, c.end, 17), Some(17));
        assert_eq!(parse_transport(m, c.end, 6), None);
        let bad = b"X\r\nContact: <sip:a@192.0.2.2>;expires=x\r\n";
        assert_eq!(parse_numerical_param(bad, 20, b"expires="), Found::Bad);
    }

    #[test]
    fn truncations_never_panic() {
        let m = INVITE.as_bytes();
        for n in 0..m.len() {
            let t = &m[..n];
            let _ = parse_request(t);
            for h in [
                Header::CSeq,
                Header::From,
                Header::To,
                Header::Contact,
                Header::ViaUdp,
                Header::Expires,
                Header::ContentLength,
            ] {
                let _ = get_header(t, 0, h);
                let _ = parse_header_uri(t, 0, h, Some(&mut true));
            }
            for h in [
                SdpHeader::Version,
                SdpHeader::Owner,
                SdpHeader::Connection,
                SdpHeader::Media,
            ] {
                let _ = get_sdp_header(t, 0, h, SdpHeader::Media);
            }
            let _ = parse_numerical_param(t, 0, b"expires=");
            let _ = parse_address_param(t, 0, b"received=");
        }
    }
}
