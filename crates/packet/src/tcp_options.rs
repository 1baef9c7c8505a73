//! TCP options: the `[mss 1460, sackOK, ts val 100 ecr 0, nop, wscale 7]`
//! list of a TCP literal.
//!
//! Decoded by hand rather than with smoltcp's `TcpOption`, which rejects
//! or drops what a literal must be able to show: a fourth SACK block, an
//! MSS option of the wrong length, bytes after an end-of-list.

use std::fmt;

use crate::error::Result;
use crate::model::OptionBytes;
use crate::payload::Hex;
use crate::token::{Token, Tokens};
use crate::value;

const EOL: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;
const WSCALE: u8 = 3;
const SACK_OK: u8 = 4;
const SACK: u8 = 5;
const TIMESTAMP: u8 = 8;

/// One option as found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpOption<'a> {
    Eol,
    Nop,
    Mss(u16),
    Wscale(u8),
    SackOk,
    /// SACK blocks, 8 bytes each.
    Sack(&'a [u8]),
    Timestamp {
        val: u32,
        ecr: u32,
    },
    /// Any other kind, or a known kind with a length it should not have.
    Other {
        kind: u8,
        data: &'a [u8],
    },
}

fn be32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |n, &b| n << 8 | u32::from(b))
}

/// Splits the first option off `bytes`; `None` if its length byte is
/// missing or runs past the end, so the bytes are not an option list.
fn next(bytes: &[u8]) -> Option<(TcpOption<'_>, &[u8])> {
    let (&kind, rest) = bytes.split_first()?;
    match kind {
        EOL => return Some((TcpOption::Eol, rest)),
        NOP => return Some((TcpOption::Nop, rest)),
        _ => {}
    }
    let len = usize::from(*rest.first()?);
    let data = bytes.get(2..len)?;
    let rest = &bytes[len..];
    let option = match (kind, data.len()) {
        (MSS, 2) => TcpOption::Mss(be32(data) as u16),
        (WSCALE, 1) => TcpOption::Wscale(data[0]),
        (SACK_OK, 0) => TcpOption::SackOk,
        (SACK, n) if n > 0 && n.is_multiple_of(8) => TcpOption::Sack(data),
        (TIMESTAMP, 8) => TcpOption::Timestamp {
            val: be32(&data[..4]),
            ecr: be32(&data[4..]),
        },
        _ => TcpOption::Other { kind, data },
    };
    Some((option, rest))
}

/// Whether `bytes` split cleanly into options, so they can be printed as
/// a list.
pub(crate) fn is_list(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match next(bytes) {
            Some((_, rest)) => bytes = rest,
            None => return false,
        }
    }
    true
}

impl fmt::Display for TcpOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Mss(mss) => write!(f, "mss {mss}"),
            TcpOption::Wscale(shift) => write!(f, "wscale {shift}"),
            TcpOption::SackOk => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                f.write_str("sack")?;
                blocks
                    .chunks(8)
                    .try_for_each(|b| write!(f, " {}:{}", be32(&b[..4]), be32(&b[4..])))
            }
            TcpOption::Timestamp { val, ecr } => write!(f, "ts val {val} ecr {ecr}"),
            TcpOption::Other { kind, data } => write!(f, "opt {kind} hex={}", Hex(data)),
        }
    }
}

/// An option list as printed: `[a, b, c]`. Trailing end-of-list bytes that
/// only pad to a multiple of 4 are left out, since parsing pads again.
/// Only for bytes where [`is_list`] holds.
pub(crate) struct OptionList<'a>(pub &'a [u8]);

impl fmt::Display for OptionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.len();
        let mut rest = self.0;
        let mut content_end = 0;
        while let Some((option, after)) = next(rest) {
            rest = after;
            if option != TcpOption::Eol {
                content_end = total - rest.len();
            }
        }
        let shown_end = content_end.max(total.saturating_sub(3));
        f.write_str("[")?;
        let mut rest = self.0;
        let mut separator = "";
        while total - rest.len() < shown_end {
            let Some((option, after)) = next(rest) else {
                break;
            };
            write!(f, "{separator}{option}")?;
            separator = ", ";
            rest = after;
        }
        f.write_str("]")
    }
}

/// Parses an option list token `[…]` into header bytes padded to a
/// multiple of 4.
pub(crate) fn parse(token: Token<'_>) -> Result<OptionBytes> {
    let inner = token.inside('[', ']').ok_or_else(|| {
        token.error(format!(
            "expected a TCP option list like [mss 1460, nop], found `{}`",
            token.text
        ))
    })?;
    let mut options = OptionBytes::default();
    if inner.text.trim().is_empty() {
        return Ok(options);
    }
    let mut at = 0;
    for item_text in inner.text.split(',') {
        let item = inner.from(at).until(item_text.len());
        at += item_text.len() + 1;
        let mut encoded = [0u8; OptionBytes::MAX];
        let len = encode(item, &mut encoded)?;
        if !options.push(&encoded[..len]) {
            return Err(item.error(format!(
                "TCP options do not fit in {} bytes",
                OptionBytes::MAX
            )));
        }
    }
    if !options.pad() {
        return Err(token.error(format!(
            "TCP options do not fit in {} bytes once padded to a multiple of 4",
            OptionBytes::MAX
        )));
    }
    Ok(options)
}

/// Writes one option's bytes into `out`, returning their length.
fn encode(item: Token<'_>, out: &mut [u8; OptionBytes::MAX]) -> Result<usize> {
    let mut words = Tokens::new(item.text, item.start, "option")?;
    let name = words.expect("a TCP option (mss, wscale, sackOK, sack, ts, nop, eol, opt)")?;
    let (kind, data_len) = match name.text {
        "eol" => (EOL, None),
        "nop" => (NOP, None),
        "mss" => {
            let mss: u16 = value::number(words.expect("an MSS after `mss`")?, "an MSS")?;
            out[2..4].copy_from_slice(&mss.to_be_bytes());
            (MSS, Some(2))
        }
        "wscale" => {
            out[2] = value::number(
                words.expect("a shift count after `wscale`")?,
                "a shift count",
            )?;
            (WSCALE, Some(1))
        }
        "sackOK" => (SACK_OK, Some(0)),
        "sack" => {
            let mut len = 0;
            for block in words.by_ref() {
                let (left, right) = block.split_once(':').ok_or_else(|| {
                    block.error(format!(
                        "expected a SACK block like 1000:2000, found `{}`",
                        block.text
                    ))
                })?;
                let room = out
                    .get_mut(2 + len..10 + len)
                    .ok_or_else(|| block.error("at most 4 SACK blocks fit in the TCP options"))?;
                room[..4].copy_from_slice(
                    &value::number::<u32>(left, "a sequence number")?.to_be_bytes(),
                );
                room[4..].copy_from_slice(
                    &value::number::<u32>(right, "a sequence number")?.to_be_bytes(),
                );
                len += 8;
            }
            if len == 0 {
                return Err(name.error("expected SACK blocks like 1000:2000 after `sack`"));
            }
            (SACK, Some(len))
        }
        "ts" => {
            for (field, at) in [("val", 2), ("ecr", 6)] {
                let label = words.expect(&format!("`{field}` in the `ts` option"))?;
                if label.text != field {
                    return Err(label.error(format!("expected `{field}`, found `{}`", label.text)));
                }
                let stamp: u32 = value::number(
                    words.expect(&format!("a timestamp after `{field}`"))?,
                    "a timestamp",
                )?;
                out[at..at + 4].copy_from_slice(&stamp.to_be_bytes());
            }
            (TIMESTAMP, Some(8))
        }
        "opt" => {
            let kind_token = words.expect("an option kind after `opt`")?;
            let kind: u8 = value::number(kind_token, "an option kind")?;
            if kind <= NOP {
                return Err(kind_token.error("use `eol` or `nop` for option kinds 0 and 1"));
            }
            let (key, hex) = words.expect("`hex=` with the option's data")?.key_value();
            if key.text != "hex" {
                return Err(key.error(format!(
                    "expected `hex=` with the option's data, found `{}`",
                    key.text
                )));
            }
            let data = value::hex(value::required(key, hex)?)?;
            let room = out
                .get_mut(2..2 + data.len())
                .ok_or_else(|| key.error("the option's data does not fit in the TCP options"))?;
            room.copy_from_slice(&data);
            (kind, Some(data.len()))
        }
        other => {
            return Err(name.error(format!(
            "expected a TCP option (mss, wscale, sackOK, sack, ts, nop, eol, opt), found `{other}`"
        )))
        }
    };
    if let Some(extra) = words.next() {
        return Err(extra.error(format!(
            "unexpected `{}` in the `{}` option",
            extra.text, name.text
        )));
    }
    out[0] = kind;
    Ok(match data_len {
        None => 1,
        Some(len) => {
            out[1] = (len + 2) as u8;
            len + 2
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<u8>> {
        parse(Token { text, start: 0 }).map(|o| o.as_slice().to_vec())
    }

    fn print(bytes: &[u8]) -> String {
        assert!(is_list(bytes));
        OptionList(bytes).to_string()
    }

    #[test]
    fn encodes_every_option() {
        assert_eq!(parse_str("[]").unwrap(), b"");
        assert_eq!(parse_str("[mss 1460]").unwrap(), [2, 4, 0x05, 0xb4]);
        assert_eq!(parse_str("[wscale 7]").unwrap(), [3, 3, 7, 0]);
        assert_eq!(parse_str("[sackOK, nop, nop]").unwrap(), [4, 2, 1, 1]);
        assert_eq!(
            parse_str("[sack 1:2]").unwrap(),
            [5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]
        );
        assert_eq!(
            parse_str("[ts val 1 ecr 2, nop, nop]").unwrap(),
            [8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]
        );
        assert_eq!(
            parse_str("[opt 254 hex=f989]").unwrap(),
            [254, 4, 0xf9, 0x89]
        );
        assert_eq!(parse_str("[eol]").unwrap(), [0, 0, 0, 0]);
        assert!(parse_str("[sack 1:2 3:4 5:6 7:8]").is_ok());
        assert!(parse_str("[sack 1:2 3:4 5:6 7:8 9:10]").is_err());
        assert!(parse_str(&format!("[opt 9 hex={}]", "00".repeat(38))).is_ok());
        assert!(parse_str(&format!("[opt 9 hex={}]", "00".repeat(39))).is_err());
        assert!(parse_str("[ts ecr 1 val 2]").is_err());
        assert!(parse_str("[opt 9 data=00]").is_err());
        assert!(parse_str("[mss 1460,]").is_err());
        assert!(parse_str("mss 1460").is_err());
    }

    #[test]
    fn prints_lists_without_implied_padding() {
        assert_eq!(print(&[2, 4, 0x05, 0xb4]), "[mss 1460]");
        assert_eq!(print(&[3, 3, 7, 0]), "[wscale 7]");
        assert_eq!(print(&[0, 0, 0, 0]), "[eol]");
        assert_eq!(
            print(&[1, 0, 0, 0, 0, 0, 0, 0]),
            "[nop, eol, eol, eol, eol]"
        );
        // The zeros ending a timestamp are data, not padding.
        assert_eq!(
            print(&[8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            "[ts val 1 ecr 0]"
        );
        assert_eq!(
            print(&[5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]),
            "[sack 1:2, nop, nop]"
        );
        assert_eq!(print(&[2, 3, 5, 0]), "[opt 2 hex=05]");
        assert_eq!(print(&[5, 2, 1, 1]), "[opt 5 hex=, nop, nop]");
    }

    #[test]
    fn rejects_bytes_that_are_not_a_list() {
        assert!(!is_list(&[2]));
        assert!(!is_list(&[2, 1, 0, 0]));
        assert!(!is_list(&[2, 9, 0, 0]));
        assert!(is_list(&[]));
    }
}
