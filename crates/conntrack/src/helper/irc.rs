//! The IRC DCC parser of `nf_conntrack_irc.c`
//! (reference/helpers-and-expectations.md §9): in client→server data it
//! looks for `PRIVMSG <target> :\1DCC <type> <arg> <ip> <port>` (CTCP DCC,
//! types SEND, CHAT, MOVE, TSEND, SCHAT), the ip as one decimal 32-bit
//! number.
//!
//! As in Linux: only the first 4095 bytes of a segment are searched
//! (`MAX_SEARCH_SIZE`); leading blanks are skipped; a segment longer than
//! ten bytes must start with `PRIVMSG ` (any case); the text after the
//! first ` :` must be `\1DCC `, else the search stops; a DCC whose numbers
//! cannot be read, or whose address is neither the sender's nor its NAT
//! address (`accept` decides), is skipped and the search goes on. Numbers
//! are read like `simple_strtoul()`: decimal digits, wrapping.

/// `MAX_SEARCH_SIZE`.
const MAX_SEARCH: usize = 4095;
/// `MINMATCHLEN`.
const MIN_MATCH: isize = 5;
/// `dccprotos[]`.
const DCC_TYPES: [&[u8]; 5] = [b"SEND ", b"CHAT ", b"MOVE ", b"TSEND ", b"SCHAT "];

/// A DCC offer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Dcc {
    /// The offered address (host order).
    pub ip: u32,
    pub port: u16,
    /// Offset of the `ip port` text in the payload (what NAT replaces).
    pub off: usize,
    /// Its length.
    pub len: usize,
}

/// `simple_strtoul(s, &end, 10)`: the value (wrapping) and the index after
/// the digits.
fn strtoul(b: &[u8], mut p: usize) -> (u64, usize) {
    let mut v: u64 = 0;
    while let Some(c) = b.get(p).filter(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        p += 1;
    }
    (v, p)
}

/// `parse_dcc()`: from `p` (after the DCC type), skip the argument up to
/// its space, require a newline further on, then read `ip port`.
fn parse_dcc(b: &[u8], mut p: usize, lim: usize) -> Option<Dcc> {
    loop {
        let c = *b.get(p)?;
        p += 1;
        if c == b' ' {
            break;
        }
        if p as isize > lim as isize - 12 {
            return None;
        }
    }
    // simple_strtoul parses until the first invalid character, so Linux
    // insists on a newline inside the data.
    b.get(p..lim)?.iter().position(|&c| c == b'\n')?;
    let beg = p;
    let (ip, mut p) = strtoul(b, p);
    while b.get(p) == Some(&b' ') {
        if p >= lim {
            return None;
        }
        p += 1;
    }
    let (port, end) = strtoul(b, p);
    Some(Dcc {
        ip: ip as u32,
        port: port as u16,
        off: beg,
        len: end - beg,
    })
}

/// Finds the first acceptable DCC offer in one client→server segment.
/// `accept(ip, port)` is Linux's forgery check (address is the sender's or
/// its NAT address, port not 0); a refused offer is skipped.
pub fn find(payload: &[u8], mut accept: impl FnMut(u32, u16) -> bool) -> Option<Dcc> {
    let lim = payload.len().min(MAX_SEARCH);
    let b = &payload[..lim];
    let end = lim as isize;
    let mut p = 0usize;
    while (p as isize) < end - 10 && matches!(b[p], b' ' | b'\r' | b'\n') {
        p += 1;
    }
    if (p as isize) < end - 10 {
        if !b[p..p + 8].eq_ignore_ascii_case(b"PRIVMSG ") {
            return None;
        }
        p += 8;
    }
    while (p as isize) < end - (22 + MIN_MATCH) {
        if &b[p..p + 2] != b" :" {
            p += 1;
            continue;
        }
        p += 2;
        if b.get(p..p + 5)? != b"\x01DCC " {
            return None;
        }
        p += 5;
        for t in DCC_TYPES {
            if b.get(p..p + t.len()) != Some(t) {
                continue;
            }
            p += t.len();
            let Some(d) = parse_dcc(b, p, lim) else {
                continue;
            };
            if !accept(d.ip, d.port) {
                continue;
            }
            return Some(d);
        }
    }
    None
}

/// The text `nf_nat_irc` writes in place of `ip port`.
pub fn format(ip: u32, port: u16) -> String {
    format!("{ip} {port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: u32 = 0xc000_0202; // 192.0.2.2 = 3221225986

    #[test]
    fn dcc_send_and_chat_as_irssi_sends_them() {
        let s = b"PRIVMSG bob :\x01DCC SEND notes.txt 3221225986 5000 1234\x01\r\n";
        let d = find(s, |_, _| true).unwrap();
        assert_eq!((d.ip, d.port), (C, 5000));
        assert_eq!(&s[d.off..d.off + d.len], b"3221225986 5000");
        let c = b"PRIVMSG bob :\x01DCC CHAT chat 3221225986 5001\x01\r\n";
        assert_eq!(find(c, |_, _| true).map(|d| d.port), Some(5001));
        // Any case for PRIVMSG, leading blank lines skipped.
        let l = b"\r\nprivmsg bob :\x01DCC CHAT chat 3221225986 5001\x01\r\n";
        assert_eq!(find(l, |_, _| true).map(|d| d.port), Some(5001));
    }

    #[test]
    fn refused_and_malformed_offers() {
        let s = b"PRIVMSG bob :\x01DCC SEND notes.txt 3221225986 5000 1234\x01\r\n";
        // The forgery check refuses: nothing.
        assert_eq!(find(s, |ip, _| ip != C), None);
        // No newline in the segment (split command): nothing.
        let cut = b"PRIVMSG bob :\x01DCC SEND notes.txt 3221225986 5000 1234\x01";
        assert_eq!(find(cut, |_, _| true), None);
        // Not PRIVMSG, not DCC, unknown type.
        assert_eq!(
            find(
                b"NOTICE bob :\x01DCC SEND a 3221225986 5000 1\x01\r\n",
                |_, _| true
            ),
            None
        );
        assert_eq!(
            find(
                b"PRIVMSG bob :hello there, how are you today?\r\n",
                |_, _| true
            ),
            None
        );
        assert_eq!(
            find(
                b"PRIVMSG bob :\x01DCC RESUME a 3221225986 5000 1\x01\r\n",
                |_, _| true
            ),
            None
        );
    }

    #[test]
    fn numbers_wrap() {
        // 2^32 + 1 reads as 1; port 65537 as 1.
        let s = b"PRIVMSG bob :\x01DCC CHAT chat 4294967297 65537\x01\r\n";
        let d = find(s, |_, _| true).unwrap();
        assert_eq!((d.ip, d.port), (1, 1));
    }
}
