//! Splitting a literal into whitespace-separated tokens.
//!
//! A token may contain whitespace inside a `"string"`, a `(quoted literal)`
//! or a `[TCP option list]`, so `payload="a b"`, `quote=(udp ...)/28` and
//! `[mss 1460, nop]` each stay one token. Every token remembers where it
//! starts in the whole text, so errors can point at it even inside a quote.

use std::ops::Range;

use crate::error::{LiteralError, Result};

/// A piece of the literal and its byte offset in the whole text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'t> {
    pub text: &'t str,
    pub start: usize,
}

impl<'t> Token<'t> {
    pub fn span(&self) -> Range<usize> {
        self.start..self.start + self.text.len()
    }

    /// The part of this token from byte `at` on (callers split at ASCII
    /// characters, so `at` is a character boundary).
    pub fn from(&self, at: usize) -> Token<'t> {
        Token {
            text: self.text.get(at..).unwrap_or(""),
            start: self.start + at.min(self.text.len()),
        }
    }

    /// The part of this token before byte `at`.
    pub fn until(&self, at: usize) -> Token<'t> {
        Token {
            text: self.text.get(..at).unwrap_or(self.text),
            start: self.start,
        }
    }

    /// Splits `key=value` at the first `=`; a bare word has no value.
    pub fn key_value(&self) -> (Token<'t>, Option<Token<'t>>) {
        match self.text.find('=') {
            Some(at) => (self.until(at), Some(self.from(at + 1))),
            None => (*self, None),
        }
    }

    /// Splits at the first `sep`, e.g. an address from its port.
    pub fn split_once(&self, sep: char) -> Option<(Token<'t>, Token<'t>)> {
        let at = self.text.find(sep)?;
        Some((self.until(at), self.from(at + sep.len_utf8())))
    }

    /// The inside of a token wrapped in `open`..`close`, e.g. `(…)`.
    pub fn inside(&self, open: char, close: char) -> Option<Token<'t>> {
        let inner = self.text.strip_prefix(open)?.strip_suffix(close)?;
        Some(Token {
            text: inner,
            start: self.start + open.len_utf8(),
        })
    }

    /// An error pointing at this token.
    pub fn error(&self, message: impl Into<String>) -> LiteralError {
        LiteralError::new(self.span(), message)
    }
}

/// The tokens of one literal, consumed front to back.
pub(crate) struct Tokens<'t> {
    tokens: std::vec::IntoIter<Token<'t>>,
    /// Offset just past the text, where "found end of …" points.
    end: usize,
    /// What the text is, for "found end of …": "literal", "option".
    what: &'static str,
}

impl<'t> Tokens<'t> {
    /// Tokenizes `text`, which starts at byte `base` of the whole literal;
    /// `what` names the text in errors ("literal", "option").
    pub fn new(text: &'t str, base: usize, what: &'static str) -> Result<Self> {
        let mut tokens = Vec::new();
        let mut open: Vec<(char, usize)> = Vec::new();
        let mut string_start = None;
        let mut token_start = None;
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            if string_start.is_some() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => string_start = None,
                    _ => {}
                }
                continue;
            }
            if c.is_whitespace() && open.is_empty() {
                if let Some(start) = token_start.take() {
                    tokens.push(Token {
                        text: &text[start..i],
                        start: base + start,
                    });
                }
                continue;
            }
            token_start.get_or_insert(i);
            match c {
                '"' => string_start = Some(i),
                '(' => open.push((')', i)),
                '[' => open.push((']', i)),
                ')' | ']' => match open.pop() {
                    Some((close, _)) if close == c => {}
                    Some((close, _)) => {
                        return Err(LiteralError::new(
                            base + i..base + i + 1,
                            format!("expected `{close}`, found `{c}`"),
                        ))
                    }
                    None => {
                        return Err(LiteralError::new(
                            base + i..base + i + 1,
                            format!("unmatched `{c}`"),
                        ))
                    }
                },
                _ => {}
            }
        }
        if let Some(at) = string_start {
            return Err(LiteralError::new(base + at..base + at + 1, "unclosed `\"`"));
        }
        if let Some(&(close, at)) = open.last() {
            let opener = if close == ')' { '(' } else { '[' };
            return Err(LiteralError::new(
                base + at..base + at + 1,
                format!("unclosed `{opener}`"),
            ));
        }
        if let Some(start) = token_start {
            tokens.push(Token {
                text: &text[start..],
                start: base + start,
            });
        }
        Ok(Tokens {
            tokens: tokens.into_iter(),
            end: base + text.len(),
            what,
        })
    }

    /// The next token, or an error saying `what` was expected instead of
    /// the end of the literal.
    pub fn expect(&mut self, what: &str) -> Result<Token<'t>> {
        self.tokens.next().ok_or_else(|| {
            LiteralError::new(
                self.end..self.end,
                format!("expected {what}, found end of {}", self.what),
            )
        })
    }
}

impl<'t> Iterator for Tokens<'t> {
    type Item = Token<'t>;

    fn next(&mut self) -> Option<Token<'t>> {
        self.tokens.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<&str> {
        Tokens::new(text, 0, "test")
            .unwrap()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn keeps_strings_parentheses_and_brackets_whole() {
        assert_eq!(
            texts(r#" a  payload="x \" y" quote=(b [c, d] ")")/8 [e f]"#),
            [
                "a",
                r#"payload="x \" y""#,
                r#"quote=(b [c, d] ")")/8"#,
                "[e f]"
            ]
        );
    }

    #[test]
    fn reports_unbalanced_delimiters() {
        let err = |t| Tokens::new(t, 0, "test").err().unwrap();
        assert_eq!(err("a (b").span, 2..3);
        assert_eq!(err("a (b").message, "unclosed `(`");
        assert_eq!(err("a b)").message, "unmatched `)`");
        assert_eq!(err("[a)").message, "expected `]`, found `)`");
        assert_eq!(err("x=\"ab").message, "unclosed `\"`");
    }
}
