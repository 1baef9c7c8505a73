//! Parsing the scalar values that appear in literals and filters: numbers,
//! addresses and hex byte strings, each with an error that names what was
//! expected.

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::token::Token;

/// The unsigned integer widths header fields come in.
pub(crate) trait Unsigned: TryFrom<u64> {
    const MAX: u64;
}

impl Unsigned for u8 {
    const MAX: u64 = u8::MAX as u64;
}
impl Unsigned for u16 {
    const MAX: u64 = u16::MAX as u64;
}
impl Unsigned for u32 {
    const MAX: u64 = u32::MAX as u64;
}

/// A decimal or `0x`-prefixed hex number no larger than `T::MAX`. `what`
/// names the value in the error, e.g. "a port".
pub(crate) fn number<T: Unsigned>(token: Token<'_>, what: &str) -> Result<T> {
    let text = token.text;
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    Some(digits)
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(radix)))
        .and_then(|d| u64::from_str_radix(d, radix).ok())
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            token.error(format!(
                "expected {what} from 0 to {}, found `{text}`",
                T::MAX
            ))
        })
}

/// A dotted-quad IPv4 address.
pub(crate) fn address(token: Token<'_>) -> Result<Ipv4Addr> {
    token.text.parse().map_err(|_| {
        token.error(format!(
            "expected an IPv4 address like 192.0.2.1, found `{}`",
            token.text
        ))
    })
}

/// Bytes written as pairs of hex digits, e.g. `0a0b`.
pub(crate) fn hex(token: Token<'_>) -> Result<Vec<u8>> {
    let digits = token.text.as_bytes();
    let error = || {
        token.error(format!(
            "expected pairs of hex digits, found `{}`",
            token.text
        ))
    };
    if !digits.len().is_multiple_of(2) {
        return Err(error());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| error())?;
            u8::from_str_radix(text, 16).map_err(|_| error())
        })
        .collect()
}

/// The value of a `key=value` field, or an error if the key came bare.
pub(crate) fn required<'t>(key: Token<'t>, value: Option<Token<'t>>) -> Result<Token<'t>> {
    value.ok_or_else(|| key.error(format!("expected `{}=` and a value", key.text)))
}

/// Stores a field's value, refusing a second one for the same field.
pub(crate) fn set_once<T>(slot: &mut Option<T>, key: Token<'_>, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(key.error(format!("`{}` given twice", key.text)));
    }
    *slot = Some(value);
    Ok(())
}

/// Stores a numeric field's value, refusing a bare key or a second value.
pub(crate) fn set_number<T: Unsigned>(
    slot: &mut Option<T>,
    key: Token<'_>,
    value: Option<Token<'_>>,
    what: &str,
) -> Result<()> {
    let number = number(required(key, value)?, what)?;
    set_once(slot, key, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Token<'_> {
        Token { text, start: 0 }
    }

    #[test]
    fn numbers_are_decimal_or_hex_and_range_checked() {
        assert_eq!(number::<u8>(token("255"), "a TTL"), Ok(255));
        assert_eq!(number::<u16>(token("0x10"), "x"), Ok(16));
        assert_eq!(
            number::<u8>(token("256"), "a TTL").unwrap_err().message,
            "expected a TTL from 0 to 255, found `256`"
        );
        assert!(number::<u32>(token("+1"), "x").is_err());
        assert!(number::<u32>(token(""), "x").is_err());
        assert!(number::<u16>(token("0x+1"), "x").is_err());
        assert!(number::<u16>(token("0x"), "x").is_err());
    }

    #[test]
    fn hex_needs_whole_bytes() {
        assert_eq!(hex(token("0aFF")), Ok(vec![0x0a, 0xff]));
        assert_eq!(hex(token("")), Ok(vec![]));
        assert!(hex(token("abc")).is_err());
        assert!(hex(token("zz")).is_err());
        assert!(hex(token("é0")).is_err());
    }
}
