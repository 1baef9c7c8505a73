//! The FTP control-channel parser of `nf_conntrack_ftp.c`
//! (reference/helpers-and-expectations.md §5): `PORT` and `EPRT` from the
//! client (ORIGINAL direction), `227` and `229` replies from the server
//! (REPLY direction), each recognised only at the very start of a segment.
//!
//! Linux's parsing is deliberately reproduced quirk for quirk, because
//! what it accepts decides whether a data connection is RELATED:
//! - the command word is matched case-insensitively; a segment shorter
//!   than the word but equal to its beginning is a *partial match*, and so
//!   is a command word whose numbers cannot be read: the helper then
//!   **drops** the packet (the sender retransmits, maybe with the rest);
//! - numbers are accumulated in 32 bits without a range check
//!   (`PORT 1,2,3,256,0,21` gives address 1.2.4.0) and ports wrap at 16
//!   bits;
//! - `PORT`/`EPRT` must end in `\r` right after the numbers; a `227` reply
//!   is scanned for its first digit (RFC 1123 §4.1.2.6) and may end in
//!   anything; a `229` reply's port sits between `(|||` and `|`.

use std::net::Ipv4Addr;

use super::FtpType;
use crate::tcp::Dir;

/// A well-formed command or reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FtpMatch {
    pub kind: FtpType,
    /// The address in the text; `None` for `229`, which gives none (the
    /// sender's address is meant).
    pub addr: Option<Ipv4Addr>,
    pub port: u16,
    /// Offset of the number text in the payload (what NAT replaces).
    pub off: usize,
    /// Its length.
    pub len: usize,
}

/// `find_pattern()`'s three answers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Found {
    /// Not a command this direction looks for.
    None,
    /// A command word whose numbers are cut off or malformed: the text is
    /// the helper's log message; the packet is dropped.
    Partial(&'static str),
    Match(FtpMatch),
}

/// One entry of `search[dir][]`.
struct Pattern {
    word: &'static [u8],
    /// Skip to just after this byte before the numbers (0: don't).
    skip: u8,
    /// The byte that must follow the numbers (0: any).
    term: u8,
    kind: FtpType,
    partial: &'static str,
}

const ORIGINAL: [Pattern; 2] = [
    Pattern {
        word: b"PORT",
        skip: b' ',
        term: b'\r',
        kind: FtpType::Port,
        partial: "partial matching of `PORT'",
    },
    Pattern {
        word: b"EPRT",
        skip: b' ',
        term: b'\r',
        kind: FtpType::Eprt,
        partial: "partial matching of `EPRT'",
    },
];

const REPLY: [Pattern; 2] = [
    Pattern {
        word: b"227 ",
        skip: 0,
        term: 0,
        kind: FtpType::Pasv,
        partial: "partial matching of `227 '",
    },
    Pattern {
        word: b"229 ",
        skip: b'(',
        term: b')',
        kind: FtpType::Epsv,
        partial: "partial matching of `229 '",
    },
];

/// Looks for the commands of direction `dir` at the start of `data` (one
/// segment's payload), in Linux's order: PORT then EPRT, or 227 then 229.
pub fn find(data: &[u8], dir: Dir) -> Found {
    let list = match dir {
        Dir::Original => &ORIGINAL,
        Dir::Reply => &REPLY,
    };
    for p in list {
        match find_pattern(data, p) {
            Found::None => continue,
            other => return other,
        }
    }
    Found::None
}

/// `find_pattern()`.
fn find_pattern(data: &[u8], p: &Pattern) -> Found {
    let plen = p.word.len();
    let dlen = data.len();
    if dlen <= plen {
        // Short packet: the start of a command counts as a partial match.
        return if data.eq_ignore_ascii_case(&p.word[..dlen]) {
            Found::Partial(p.partial)
        } else {
            Found::None
        };
    }
    if !data[..plen].eq_ignore_ascii_case(p.word) {
        return Found::None;
    }
    let mut i = plen;
    if p.skip != 0 {
        while data[i] != p.skip {
            if i == dlen - 1 {
                return Found::Partial(p.partial);
            }
            i += 1;
        }
        i += 1;
    }
    let rest = &data[i..];
    let got = match p.kind {
        FtpType::Port => try_rfc959(rest, p.term).map(|(len, a, port)| (0, len, Some(a), port)),
        FtpType::Pasv => try_rfc1123(rest),
        FtpType::Eprt => try_eprt(rest).map(|(len, a, port)| (0, len, Some(a), port)),
        FtpType::Epsv => try_epsv(rest).map(|(len, port)| (0, len, None, port)),
    };
    match got {
        Some((skip, len, addr, port)) => Found::Match(FtpMatch {
            kind: p.kind,
            addr,
            port,
            off: i + skip,
            len,
        }),
        None => Found::Partial(p.partial),
    }
}

/// `try_number()`: `n` decimal numbers separated by `sep`, the last one
/// followed by `term` (or by anything when `term` is 0). Returns the
/// length of the text and the numbers (32-bit, wrapping like the C).
fn try_number(data: &[u8], n: usize, sep: u8, term: u8) -> Option<(usize, [u32; 6])> {
    let mut nums = [0u32; 6];
    let mut i = 0;
    for (len, &c) in data.iter().enumerate() {
        if i >= n {
            break;
        }
        if c.is_ascii_digit() {
            nums[i] = nums[i].wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
        } else if c == sep {
            i += 1;
        } else {
            return ((c == term || term == 0) && i == n - 1 && len > 0).then_some((len, nums));
        }
    }
    None
}

fn addr_of(n: &[u32; 6]) -> Ipv4Addr {
    Ipv4Addr::from(n[0] << 24 | n[1] << 16 | n[2] << 8 | n[3])
}

/// `try_rfc959()`: `a,b,c,d,p1,p2`.
fn try_rfc959(data: &[u8], term: u8) -> Option<(usize, Ipv4Addr, u16)> {
    let (len, n) = try_number(data, 6, b',', term)?;
    Some((len, addr_of(&n), (n[4] << 8 | n[5]) as u16))
}

/// `try_rfc1123()`: the numbers start at the first digit.
fn try_rfc1123(data: &[u8]) -> Option<(usize, usize, Option<Ipv4Addr>, u16)> {
    let first = data.iter().position(u8::is_ascii_digit)?;
    let (len, a, port) = try_rfc959(&data[first..], 0)?;
    Some((first, len, Some(a), port))
}

/// `get_port()`: digits from `start` up to `delim`; the index after the
/// delimiter. A zero port is refused.
fn get_port(data: &[u8], start: usize, delim: u8) -> Option<(usize, u16)> {
    let mut port: u16 = 0;
    for (i, &c) in data.iter().enumerate().skip(start) {
        if c == delim {
            return (port != 0).then_some((i + 1, port));
        }
        if !c.is_ascii_digit() {
            return None;
        }
        port = port.wrapping_mul(10).wrapping_add(u16::from(c - b'0'));
    }
    None
}

/// The delimiter rule of EPRT and EPSV (RFC 2428): printable, not a digit.
fn bad_delim(d: u8) -> bool {
    d.is_ascii_digit() || !(33..=126).contains(&d)
}

/// `try_eprt()` on an IPv4 connection: `|1|a.b.c.d|port|`.
fn try_eprt(data: &[u8]) -> Option<(usize, Ipv4Addr, u16)> {
    if data.len() <= 3 {
        return None;
    }
    let d = data[0];
    if bad_delim(d) || data[2] != d || data[1] != b'1' {
        return None;
    }
    let (len, n) = try_number(&data[3..], 4, b'.', d)?;
    let (end, port) = get_port(data, 3 + len + 1, d)?;
    Some((end, addr_of(&n), port))
}

/// `try_epsv_response()`: `|||port|`.
fn try_epsv(data: &[u8]) -> Option<(usize, u16)> {
    if data.len() <= 3 {
        return None;
    }
    let d = data[0];
    if bad_delim(d) || data[1] != d || data[2] != d {
        return None;
    }
    get_port(data, 3, d)
}

/// The text `nf_nat_ftp` writes in place of the numbers
/// (`nf_nat_ftp_fmt_cmd()`).
pub fn format(kind: FtpType, addr: Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = addr.octets();
    match kind {
        FtpType::Port | FtpType::Pasv => {
            format!("{a},{b},{c},{d},{},{}", port >> 8, port & 0xff)
        }
        FtpType::Eprt => format!("|1|{addr}|{port}|"),
        FtpType::Epsv => format!("|||{port}|"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(data: &str, dir: Dir) -> FtpMatch {
        match find(data.as_bytes(), dir) {
            Found::Match(m) => m,
            other => panic!("{data:?}: {other:?}"),
        }
    }

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Option<Ipv4Addr> {
        Some(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn port_as_curl_and_lftp_send_it() {
        // curl -P - and lftp (set ftp:passive-mode off) send this form.
        let x = m("PORT 192,0,2,2,195,80\r\n", Dir::Original);
        assert_eq!(
            (x.kind, x.addr, x.port),
            (FtpType::Port, ip(192, 0, 2, 2), 50000)
        );
        assert_eq!((x.off, x.len), (5, 16));
        // Case-insensitive command word (RFC 959 §5.3).
        assert_eq!(m("port 192,0,2,2,0,20\r\n", Dir::Original).port, 20);
        // No range check: 256 is OR-ed into the byte before, as in the kernel.
        assert_eq!(
            m("PORT 1,2,4,256,0,21\r\n", Dir::Original).addr,
            ip(1, 2, 5, 0)
        );
    }

    #[test]
    fn eprt_rfc2428_examples() {
        // RFC 2428 §2: "EPRT |1|132.235.1.2|6275|".
        let x = m("EPRT |1|132.235.1.2|6275|\r\n", Dir::Original);
        assert_eq!(
            (x.kind, x.addr, x.port),
            (FtpType::Eprt, ip(132, 235, 1, 2), 6275)
        );
        assert_eq!((x.off, x.len), (5, 20));
        // Any printable non-digit delimiter.
        assert_eq!(m("EPRT !1!192.0.2.2!50002!\r\n", Dir::Original).port, 50002);
        // IPv6 on an IPv4 connection, or a digit as delimiter: partial.
        for bad in [
            "EPRT |2|1080::8:800:200C:417A|5282|\r\n",
            "EPRT 313.2.3.4313\r\n",
        ] {
            assert_eq!(
                find(bad.as_bytes(), Dir::Original),
                Found::Partial("partial matching of `EPRT'")
            );
        }
    }

    #[test]
    fn pasv_reply_styles() {
        // vsftpd.
        let x = m(
            "227 Entering Passive Mode (192,0,2,2,195,80).\r\n",
            Dir::Reply,
        );
        assert_eq!(
            (x.kind, x.addr, x.port),
            (FtpType::Pasv, ip(192, 0, 2, 2), 50000)
        );
        assert_eq!((x.off, x.len), (27, 16));
        // pure-ftpd and proftpd.
        assert_eq!(
            m(
                "227 Entering Passive Mode (198,51,100,2,117,48)\r\n",
                Dir::Reply
            )
            .port,
            30000
        );
        // RFC 1123 §4.1.2.6: no parentheses at all.
        assert_eq!(m("227 =198,51,100,2,117,49\r\n", Dir::Reply).port, 30001);
    }

    #[test]
    fn epsv_reply() {
        // RFC 2428 §3 / vsftpd: "229 Entering Extended Passive Mode (|||50000|)".
        let x = m(
            "229 Entering Extended Passive Mode (|||50000|)\r\n",
            Dir::Reply,
        );
        assert_eq!((x.kind, x.addr, x.port), (FtpType::Epsv, None, 50000));
        assert_eq!(
            &"229 Entering Extended Passive Mode (|||50000|)"[x.off..x.off + x.len],
            "|||50000|"
        );
    }

    #[test]
    fn direction_matters() {
        // A PORT text from the server, or a 227 from the client, is nothing.
        assert_eq!(find(b"PORT 192,0,2,2,195,80\r\n", Dir::Reply), Found::None);
        assert_eq!(
            find(
                b"227 Entering Passive Mode (1,2,3,4,5,6)\r\n",
                Dir::Original
            ),
            Found::None
        );
        // Other commands and replies.
        assert_eq!(find(b"USER anonymous\r\n", Dir::Original), Found::None);
        assert_eq!(find(b"230 Login successful.\r\n", Dir::Reply), Found::None);
        assert_eq!(find(b"PASV\r\n", Dir::Original), Found::None);
    }

    #[test]
    fn partial_and_malformed_commands_drop() {
        let p = Found::Partial("partial matching of `PORT'");
        // A command split before its numbers end.
        assert_eq!(find(b"PORT 192,0,2,2,19", Dir::Original), p);
        assert_eq!(find(b"POR", Dir::Original), p);
        assert_eq!(find(b"PORT", Dir::Original), p);
        // A bare \n instead of \r\n, too few numbers, garbage.
        assert_eq!(find(b"PORT 192,0,2,2,195,80\n", Dir::Original), p);
        assert_eq!(find(b"PORT 192,0,2,2,195\r\n", Dir::Original), p);
        assert_eq!(find(b"PORT x\r\n", Dir::Original), p);
        // No space after the word anywhere in the segment.
        assert_eq!(find(b"PORTAL\r\n", Dir::Original), p);
        // A reply cut short; "2" is the start of "227 ".
        assert_eq!(
            find(b"2", Dir::Reply),
            Found::Partial("partial matching of `227 '")
        );
        assert_eq!(
            find(
                b"229 Entering Extended Passive Mode (|||0|)\r\n",
                Dir::Reply
            ),
            Found::Partial("partial matching of `229 '")
        );
        assert_eq!(
            find(b"227 Entering Passive Mode\r\n", Dir::Reply),
            Found::Partial("partial matching of `227 '")
        );
    }

    #[test]
    fn format_matches_nf_nat_ftp() {
        let a = Ipv4Addr::new(198, 51, 100, 1);
        assert_eq!(format(FtpType::Port, a, 50000), "198,51,100,1,195,80");
        assert_eq!(format(FtpType::Eprt, a, 50002), "|1|198.51.100.1|50002|");
        assert_eq!(format(FtpType::Epsv, a, 30001), "|||30001|");
    }
}
