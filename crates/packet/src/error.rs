//! The error every parser in this crate returns: a message plus the byte
//! range of the token it is about, so a caller can point at it.

use std::fmt;
use std::ops::Range;

/// A literal or filter that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    /// Byte range of the offending token in the parsed text.
    pub span: Range<usize>,
    /// What was expected and what was found.
    pub message: String,
}

impl LiteralError {
    pub(crate) fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        LiteralError {
            span,
            message: message.into(),
        }
    }

    /// Renders the error for a terminal: `text` on one line (control
    /// characters shown as spaces so the caret stays aligned), a line of
    /// carets under the span, then the message.
    ///
    /// ```
    /// let text = "udp 192.0.2.2:5000 > 198.51.100.2:99999";
    /// let err = ctsim_packet::parse(text, &|_| None).unwrap_err();
    /// assert_eq!(
    ///     err.render(text),
    ///     [
    ///         "udp 192.0.2.2:5000 > 198.51.100.2:99999",
    ///         "                                  ^^^^^",
    ///         "expected a port from 0 to 65535, found `99999`",
    ///     ]
    ///     .join("\n")
    /// );
    /// ```
    pub fn render(&self, text: &str) -> String {
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = text.get(..self.span.start).map_or(0, |s| s.chars().count());
        let width = text.get(self.span.clone()).map_or(0, |s| s.chars().count());
        format!(
            "{line}\n{}{}\n{}",
            " ".repeat(column),
            "^".repeat(width.max(1)),
            self.message
        )
    }
}

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at bytes {}..{})",
            self.message, self.span.start, self.span.end
        )
    }
}

impl std::error::Error for LiteralError {}

/// Shorthand used by every parser in the crate.
pub(crate) type Result<T> = std::result::Result<T, LiteralError>;
