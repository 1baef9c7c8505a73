//! TCP flags in tcpdump's letters: `S`, `S.`, `.`, `P.`, `F.`, `R`, `R.`,
//! plus `U` (URG), `E` (ECE), `W` (CWR) and `e` (AE, the former NS bit);
//! `none` when no flag is set. Shared by literals and filters.

use std::fmt;

use crate::error::Result;
use crate::token::Token;

pub(crate) const FIN: u16 = 0x001;
pub(crate) const SYN: u16 = 0x002;
pub(crate) const RST: u16 = 0x004;
pub(crate) const ACK: u16 = 0x010;

/// Every flag bit with its letter, in tcpdump's printing order.
const LETTERS: [(char, u16); 9] = [
    ('F', FIN),
    ('S', SYN),
    ('R', RST),
    ('P', 0x008),
    ('.', ACK),
    ('U', 0x020),
    ('E', 0x040),
    ('W', 0x080),
    ('e', 0x100),
];

/// All bits a flag letter can name; the three reserved bits above them
/// have no letter.
pub(crate) const MASK: u16 = 0x1ff;

/// Parses flag letters (any order, each at most once) or `none`.
pub(crate) fn parse(token: Token<'_>) -> Result<u16> {
    let error = || {
        token.error(format!(
            "expected TCP flags (S, S., ., P., F., R, R.; letters F S R P . U E W e; or none), found `{}`",
            token.text
        ))
    };
    if token.text == "none" {
        return Ok(0);
    }
    if token.text.is_empty() {
        return Err(error());
    }
    token.text.chars().try_fold(0, |flags, c| {
        match LETTERS.iter().find(|&&(letter, _)| letter == c) {
            Some(&(_, bit)) if flags & bit == 0 => Ok(flags | bit),
            _ => Err(error()),
        }
    })
}

/// Flags printed in canonical order, `none` for no flags.
pub(crate) struct Flags(pub u16);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & MASK == 0 {
            return f.write_str("none");
        }
        for (letter, bit) in LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<u16> {
        parse(Token { text, start: 0 })
    }

    #[test]
    fn letters_round_trip_in_canonical_order() {
        assert_eq!(parse_str("S.").unwrap(), SYN | ACK);
        assert_eq!(Flags(parse_str(".S").unwrap()).to_string(), "S.");
        assert_eq!(Flags(parse_str("WES").unwrap()).to_string(), "SEW");
        assert_eq!(Flags(parse_str("none").unwrap()).to_string(), "none");
        assert_eq!(Flags(MASK).to_string(), "FSRP.UEWe");
    }

    #[test]
    fn rejects_unknown_repeated_or_missing_letters() {
        for bad in ["", "X", "SS", "s", "S.."] {
            assert!(parse_str(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_str("X").unwrap_err().message,
            "expected TCP flags (S, S., ., P., F., R, R.; letters F S R P . U E W e; or none), found `X`"
        );
    }
}
