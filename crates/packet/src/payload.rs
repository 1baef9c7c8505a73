//! Payload bytes and their spellings in a literal: `len=N` (N zero bytes),
//! `payload="text"` and `hex=0a0b…`. Bytes and a length combine as "these
//! bytes, then zeros up to `len`", which keeps mostly-zero payloads short
//! and lets a truncated quote stand for the datagram it came from.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::error::{LiteralError, Result};
use crate::token::Token;
use crate::value;

/// Payload bytes followed by zeros up to `len`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Payload<'a> {
    pub bytes: Cow<'a, [u8]>,
    /// Total length; never less than `bytes.len()`.
    pub len: usize,
}

impl<'a> Payload<'a> {
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>, len: usize) -> Self {
        let bytes = bytes.into();
        let len = len.max(bytes.len());
        Payload { bytes, len }
    }

    /// Copies the bytes into `out`, which the caller has zeroed.
    pub fn write_to(&self, out: &mut [u8]) {
        for (out, byte) in out.iter_mut().zip(self.bytes.iter()) {
            *out = *byte;
        }
    }

    /// The bytes worth writing out, and how many of the zeros after them
    /// to write out too. Long runs of trailing zeros are left to `len=`.
    fn shown(&self) -> (&[u8], usize) {
        let end = self
            .bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        let zeros = self.len.saturating_sub(end);
        let written_zeros = if end == 0 || zeros >= MIN_ZERO_RUN {
            0
        } else {
            zeros
        };
        (&self.bytes[..end], written_zeros)
    }
}

/// Text payloads up to this long show in full in the summary form.
const SUMMARY_TEXT: usize = 120;

impl Payload<'_> {
    /// The summary form: ` payload="…"` for short printable text (a
    /// protocol command is what a reader wants to see), else ` len=N`.
    pub fn summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.len == self.bytes.len()
            && self.len <= SUMMARY_TEXT
            && self.bytes.iter().all(|&b| is_text(b));
        match self.len {
            0 => Ok(()),
            _ if text => write!(f, " payload=\"{}\"", Text(&self.bytes)),
            len => write!(f, " len={len}"),
        }
    }
}

/// Trailing zeros shorter than this are written out with the bytes.
const MIN_ZERO_RUN: usize = 8;

/// Prints the payload fields, each with a leading space: the bytes as
/// text if they are printable, else as hex, then `len=` if zeros follow.
impl fmt::Display for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, zeros) = self.shown();
        if !shown.is_empty() {
            if zeros == 0 && shown.iter().all(|&b| is_text(b)) {
                write!(f, " payload=\"{}\"", Text(shown))?;
            } else {
                write!(f, " hex={}", Hex(shown))?;
                (0..zeros).try_for_each(|_| f.write_str("00"))?;
            }
        }
        if self.len > shown.len() + zeros {
            write!(f, " len={}", self.len)?;
        }
        Ok(())
    }
}

fn is_text(byte: u8) -> bool {
    matches!(byte, b' '..=b'~' | b'\r' | b'\n' | b'\t')
}

/// Bytes as lowercase hex digit pairs.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Printable bytes with `"` and `\` escaped and \r \n \t spelled out.
struct Text<'a>(&'a [u8]);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|&b| match b {
            b'"' => f.write_str("\\\""),
            b'\\' => f.write_str("\\\\"),
            b'\r' => f.write_str("\\r"),
            b'\n' => f.write_str("\\n"),
            b'\t' => f.write_str("\\t"),
            _ => write!(f, "{}", char::from(b)),
        })
    }
}

/// Parses a `"…"` string with the escapes \r \n \t \" \\ and \xNN; other
/// characters stand for their UTF-8 bytes.
fn text(token: Token<'_>) -> Result<Vec<u8>> {
    let inner = token.inside('"', '"').ok_or_else(|| {
        token.error(format!(
            "expected a double-quoted string, found `{}`",
            token.text
        ))
    })?;
    let mut bytes = Vec::with_capacity(inner.text.len());
    let mut chars = inner.text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '"' {
            return Err(inner
                .from(at)
                .until(1)
                .error("expected `\\\"` for a quote inside a string"));
        }
        if c != '\\' {
            let mut utf8 = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        let escape = match chars.next() {
            Some((_, 'r')) => b'\r',
            Some((_, 'n')) => b'\n',
            Some((_, 't')) => b'\t',
            Some((_, '"')) => b'"',
            Some((_, '\\')) => b'\\',
            Some((_, 'x')) => {
                let digits = inner.from(at + 2).until(2);
                let byte = chars
                    .next()
                    .zip(chars.next())
                    .filter(|_| digits.text.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|_| u8::from_str_radix(digits.text, 16).ok());
                byte.ok_or_else(|| digits.error("expected two hex digits after `\\x`".to_string()))?
            }
            _ => {
                return Err(inner
                    .from(at)
                    .until(2)
                    .error("expected an escape: \\r \\n \\t \\\" \\\\ or \\xNN"))
            }
        };
        bytes.push(escape);
    }
    Ok(bytes)
}

/// The payload fields of a literal as they are parsed, in any order.
#[derive(Default)]
pub(crate) struct PayloadFields {
    bytes: Option<Vec<u8>>,
    len: Option<(usize, Range<usize>)>,
}

impl PayloadFields {
    /// The keys [`PayloadFields::take`] accepts, for error messages.
    pub const KEYS: &'static str = "len, payload, hex";

    /// Takes `len=`, `payload=` or `hex=`; `Ok(false)` for any other key.
    pub fn take(&mut self, key: Token<'_>, value: Option<Token<'_>>) -> Result<bool> {
        let bytes = match key.text {
            "len" => {
                let value = value::required(key, value)?;
                let len = value::number::<u16>(value, "a payload length")?;
                value::set_once(&mut self.len, key, (len.into(), value.span()))?;
                return Ok(true);
            }
            "payload" => text(value::required(key, value)?)?,
            "hex" => value::hex(value::required(key, value)?)?,
            _ => return Ok(false),
        };
        if self.bytes.is_some() {
            return Err(key.error("the payload is already given"));
        }
        self.bytes = Some(bytes);
        Ok(true)
    }

    /// Whether no payload field was given.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_none() && self.len.is_none()
    }

    /// The payload: the given bytes padded with zeros to `len`.
    pub fn finish(self) -> Result<Payload<'static>> {
        let bytes = self.bytes.unwrap_or_default();
        match self.len {
            Some((len, span)) if len < bytes.len() => Err(LiteralError::new(
                span,
                format!(
                    "len={len} is shorter than the {} payload bytes given",
                    bytes.len()
                ),
            )),
            Some((len, _)) => Ok(Payload::new(bytes, len)),
            None => {
                let len = bytes.len();
                Ok(Payload::new(bytes, len))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<u8>> {
        super::text(Token { text, start: 0 })
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(
            parse_text(r#""a\r\n\t\"\\\x00é""#).unwrap(),
            b"a\r\n\t\"\\\0\xc3\xa9"
        );
        assert_eq!(parse_text(r#""""#).unwrap(), b"");
        for bad in [
            r#""\q""#,
            r#""\x4""#,
            r#""\xzz""#,
            r#""\x+1""#,
            "abc",
            r#""abc"#,
            r#""\""#,
            r#""a"b""#,
        ] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_text(r#""ab\q""#).unwrap_err().span, 3..5);
    }

    #[test]
    fn prints_text_hex_and_zero_padding() {
        let show = |bytes: &[u8], len| Payload::new(bytes.to_vec(), len).to_string();
        assert_eq!(show(b"", 0), "");
        assert_eq!(show(b"", 5), " len=5");
        assert_eq!(show(b"\0\0", 2), " len=2");
        assert_eq!(show(b"GET /\r\n", 7), " payload=\"GET /\\r\\n\"");
        assert_eq!(show(b"a\"\\", 11), " payload=\"a\\\"\\\\\" len=11");
        assert_eq!(show(b"a\"\\", 5), " hex=61225c0000");
        assert_eq!(show(b"\x01\x00\x02\x00", 4), " hex=01000200");
        assert_eq!(show(b"\x01", 9), " hex=01 len=9");
    }
}
