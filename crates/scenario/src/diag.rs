//! Source positions, diagnostics and their rendering.
//!
//! Every value read from a scenario carries a [`Span`]: the byte range of the YAML node in the file,
//! plus the 1-based line and column of its first character. A [`Diagnostic`] points at one or more
//! spans; a [`Report`] holds every diagnostic of one file and renders them with miette (source
//! snippet, the offending text underlined, a help line saying what was expected).

use std::fmt;
use std::io::IsTerminal;
use std::ops::Range;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A scenario file: its name (as shown in diagnostics) and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset; offsets past the end or inside a
    /// character are clamped.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = floor_char_boundary(&self.text, offset);
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (sat_u32(line), sat_u32(col))
    }

    /// A span for a byte range of this file (clamped to the text).
    pub fn span(&self, range: Range<usize>) -> Span {
        let start = floor_char_boundary(&self.text, range.start);
        let end = floor_char_boundary(&self.text, range.end.max(start));
        let (line, column) = self.line_col(start);
        Span {
            start,
            end,
            line,
            column,
        }
    }

    /// Byte offset of a 1-based line and character column (clamped to the text).
    pub fn offset_of(&self, line: u64, column: u64) -> usize {
        let mut offset = 0;
        for _ in 1..line {
            match self.text[offset..].find('\n') {
                Some(i) => offset += i + 1,
                None => return self.text.len(),
            }
        }
        let rest = &self.text[offset..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let col = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
        offset
            + rest[..line_end]
                .char_indices()
                .nth(col)
                .map_or(line_end, |(i, _)| i)
    }

    /// The text a span covers, if the span lies in this file.
    pub fn slice(&self, span: Span) -> Option<&str> {
        if span.is_known() {
            self.text.get(span.start..span.end)
        } else {
            None
        }
    }

    /// The span of the word at 1-based `line` and character `column` of a string's value (an
    /// error position from the iptables parser). Exact for one-line scalars (see
    /// [`sub_span`](Self::sub_span)) and for block scalars (`|`), whose value lines are the file's
    /// lines after the indicator, less the block's indentation; otherwise the whole scalar.
    pub fn text_span(&self, string: &Spanned<String>, line: usize, column: usize) -> Span {
        let whole = string.span;
        let Some(value_line) = string.value.lines().nth(line.saturating_sub(1)) else {
            return whole;
        };
        let start = value_line
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(value_line.len(), |(i, _)| i);
        let len = value_line[start..]
            .find(char::is_whitespace)
            .unwrap_or(value_line.len() - start)
            .max(1);
        if !string.value.trim_end_matches('\n').contains('\n') {
            let line_start = string
                .value
                .lines()
                .next()
                .map_or(0, |l| l.as_ptr() as usize - string.value.as_ptr() as usize);
            let at = line_start + start;
            return self.sub_span(string, at..(at + len).min(string.value.len()));
        }
        let Some(written) = self.slice(whole) else {
            return whole;
        };
        if !written.starts_with('|') {
            return whole;
        }
        let header = u64::from(whole.line);
        // The block's indentation: that of its first non-blank line.
        let indent = written
            .lines()
            .skip(1)
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
        let col = indent as u64 + column as u64;
        let offset = self.offset_of(header + line as u64, col);
        let end = offset
            + value_line[start..]
                .chars()
                .take(len)
                .map(char::len_utf8)
                .sum::<usize>();
        self.span(offset..end)
    }

    /// The span of `range` (a byte range of `string.value`) in the file.
    ///
    /// Exact when the scalar is written on one line either plain or in quotes without escapes
    /// (then the text in the file is the value itself, possibly between quotes). Otherwise (block
    /// scalars, folded lines, escapes) the mapping cannot be exact and the whole scalar is returned.
    pub fn sub_span(&self, string: &Spanned<String>, range: Range<usize>) -> Span {
        let whole = string.span;
        let Some(written) = self.slice(whole) else {
            return whole;
        };
        let value = string.value.as_str();
        let inner = if written == value {
            Some(whole.start)
        } else if written.len() == value.len() + 2
            && (written.starts_with('"') && written.ends_with('"')
                || written.starts_with('\'') && written.ends_with('\''))
            && &written[1..written.len() - 1] == value
        {
            Some(whole.start + 1)
        } else {
            None
        };
        match inner {
            Some(start)
                if range.start <= range.end
                    && range.end <= value.len()
                    && value.is_char_boundary(range.start)
                    && value.is_char_boundary(range.end) =>
            {
                // An exact mapping means a one-line scalar: count columns from its start.
                let lead = &self.text[whole.start..start + range.start];
                Span {
                    start: start + range.start,
                    end: start + range.end,
                    line: whole.line,
                    column: whole.column.saturating_add(sat_u32(lead.chars().count())),
                }
            }
            _ => whole,
        }
    }
}

fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where a value was written: a byte range of the file and the 1-based line and column (in
/// characters) of its first character. For a YAML alias (`*name`) this is the alias, not the anchor.
/// For a block mapping or sequence it is an empty range at its first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub column: u32,
}

impl Span {
    /// No position (a default, or a value built in code).
    pub const UNKNOWN: Span = Span {
        start: usize::MAX,
        end: usize::MAX,
        line: 0,
        column: 0,
    };

    pub fn is_known(&self) -> bool {
        self.line != 0 && self.start != usize::MAX
    }

    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    fn from_location(loc: serde_saphyr::Location) -> Span {
        if loc == serde_saphyr::Location::UNKNOWN || loc.line() == 0 {
            return Span::UNKNOWN;
        }
        let s = loc.span();
        let (start, len) = match (s.byte_offset(), s.byte_len()) {
            (Some(o), Some(l)) => (o, l),
            // Reader sources have no byte offsets; the character offset is right for ASCII.
            _ => (s.offset(), s.len()),
        };
        let start = usize::try_from(start).unwrap_or(usize::MAX - 1);
        let len = usize::try_from(len).unwrap_or(0);
        Span {
            start,
            end: start.saturating_add(len),
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

impl Default for Span {
    fn default() -> Self {
        Span::UNKNOWN
    }
}

/// A value and where it was written. Deserializes through serde-saphyr's `Spanned`, and describes
/// itself in the JSON Schema exactly as `T` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    /// A value with no position (a default filled in by the loader).
    pub fn unspanned(value: T) -> Self {
        Spanned {
            value,
            span: Span::UNKNOWN,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }

    pub fn as_ref(&self) -> Spanned<&T> {
        Spanned {
            value: &self.value,
            span: self.span,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Spanned {
            value: s.value,
            span: Span::from_location(s.referenced),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// One text placed under a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One problem in a scenario: a message, labels under the offending text (the first is the
/// primary one, whose position is reported as `file:line:column`), and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    /// Adds a label (the first one added is the primary one).
    #[must_use]
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Position of the primary label.
    pub fn span(&self) -> Span {
        self.labels.first().map_or(Span::UNKNOWN, |l| l.span)
    }

    fn sort_key(&self) -> (usize, usize) {
        let s = self.span();
        if s.is_known() {
            (s.start, s.end)
        } else {
            (usize::MAX, usize::MAX)
        }
    }
}

/// Maps an error found in a packet literal or filter string (a byte range within the string's
/// value, and a message) onto the file. See [`Source::sub_span`] for when this is exact; when it is
/// not, the whole scalar is underlined and the help says which part of the string is wrong.
pub fn literal_error(
    source: &Source,
    string: &Spanned<String>,
    range: Range<usize>,
    message: &str,
) -> Diagnostic {
    let span = source.sub_span(string, range.clone());
    let d = Diagnostic::new(message.to_string());
    if span == string.span && range.start < range.end {
        let part = string.value.get(range.clone()).unwrap_or("");
        d.label(span, "in this string").help(format!(
            "the problem is at `{part}` (bytes {}..{} of the string)",
            range.start, range.end
        ))
    } else {
        d.label(span, message.to_string())
    }
}

/// At most this many diagnostics are rendered (all stay in [`Report::diagnostics`]).
pub const MAX_RENDERED: usize = 50;

/// Every diagnostic of one file, sorted by position. Its `Display` renders them all (graphical,
/// colored only when stderr is a terminal and `NO_COLOR` is unset).
#[derive(Clone, Debug)]
pub struct Report {
    source: Arc<Source>,
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn new(source: Arc<Source>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(Diagnostic::sort_key);
        Report {
            source,
            diagnostics,
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Whether rendering to stderr should use colors.
    pub fn color_default() -> bool {
        std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
    }

    /// Renders every diagnostic; `color: false` gives plain text (tests, pipes).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_links(false)
            .with_wrap_lines(false)
            .with_context_lines(1);
        let named = Arc::new(NamedSource::new(
            sanitize(&self.source.name),
            sanitize_source(&self.source.text),
        ));
        let mut out = String::new();
        for d in self.diagnostics.iter().take(MAX_RENDERED) {
            let md = MietteDiagnostic::new(d, &self.source, named.clone());
            if handler.render_report(&mut out, &md).is_err() {
                out.push_str(&md.message);
                out.push('\n');
            }
        }
        if self.diagnostics.len() > MAX_RENDERED {
            out.push_str(&format!(
                "… and {} more errors\n",
                self.diagnostics.len() - MAX_RENDERED
            ));
        }
        if self.diagnostics.len() > 1 {
            out.push_str(&format!(
                "{} errors in {}\n",
                self.diagnostics.len(),
                sanitize(&self.source.name)
            ));
        }
        out
    }

    /// One miette report whose related diagnostics are the individual problems.
    pub fn into_miette(self) -> miette::Report {
        let named = Arc::new(NamedSource::new(
            sanitize(&self.source.name),
            sanitize_source(&self.source.text),
        ));
        let n = self.diagnostics.len();
        let related: Vec<MietteDiagnostic> = self
            .diagnostics
            .iter()
            .take(MAX_RENDERED)
            .map(|d| MietteDiagnostic::new(d, &self.source, named.clone()))
            .collect();
        miette::Report::new(Collected {
            message: format!(
                "{n} error{} in {}",
                if n == 1 { "" } else { "s" },
                sanitize(&self.source.name)
            ),
            related,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Report::color_default()))
    }
}

impl std::error::Error for Report {}

#[derive(Debug)]
struct Collected {
    message: String,
    related: Vec<MietteDiagnostic>,
}

impl fmt::Display for Collected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Collected {}
impl miette::Diagnostic for Collected {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(
            self.related.iter().map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}

#[derive(Debug)]
struct MietteDiagnostic {
    message: String,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Arc<NamedSource<String>>,
}

impl MietteDiagnostic {
    fn new(d: &Diagnostic, src: &Source, named: Arc<NamedSource<String>>) -> Self {
        let len = src.text.len();
        let labels: Vec<LabeledSpan> = d
            .labels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.span.is_known() && l.span.start <= len)
            .map(|(i, l)| {
                let start = l.span.start;
                let end = l.span.end.clamp(start, len);
                let text = (!l.text.is_empty()).then(|| sanitize(&l.text));
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, start..end)
                } else {
                    LabeledSpan::new_with_span(text, start..end)
                }
            })
            .collect();
        let mut message = sanitize(&d.message);
        if labels.is_empty() {
            let primary = d.span();
            if primary.is_known() {
                message = format!(
                    "{message} (at {}:{}:{})",
                    sanitize(&src.name),
                    primary.line,
                    primary.column
                );
            } else {
                message = format!("{message} (in {})", sanitize(&src.name));
            }
        }
        MietteDiagnostic {
            message,
            help: d.help.as_deref().map(sanitize),
            labels,
            source: named,
        }
    }
}

impl fmt::Display for MietteDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for MietteDiagnostic {}
impl miette::Diagnostic for MietteDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.labels.is_empty() {
            None
        } else {
            Some(&self.source)
        }
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// Escapes control and bidi characters so that text from the file cannot drive the terminal.
pub fn sanitize(s: &str) -> String {
    if !s.chars().any(is_dangerous) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The file as shown in snippets: dangerous characters replaced by `?` bytes, keeping every byte
/// offset (so spans stay valid).
fn sanitize_source(s: &str) -> String {
    if !s.chars().any(|c| is_dangerous(c) && c != '\t' && c != '\r') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_dangerous(c) && c != '\t' && c != '\r' {
            for _ in 0..c.len_utf8() {
                out.push('?');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Converts a serde-saphyr error (syntax, unknown key, wrong type, a value our visitors rejected)
/// into a diagnostic pointing at its location.
pub(crate) fn from_yaml_error(source: &Source, err: &serde_saphyr::Error) -> Diagnostic {
    let inner = unwrap_yaml_error(err);
    let mut span = Span::UNKNOWN;
    if let Some(loc) = err.location().or_else(|| inner.location()) {
        span = Span::from_location(loc);
        if span.is_known() && span.start > source.text.len() {
            span = Span::UNKNOWN;
        }
        if !span.is_known() && loc.line() > 0 {
            let start = source.offset_of(loc.line(), loc.column());
            span = source.span(start..start);
        } else if span.is_known() {
            span = source.span(span.range());
        }
    }
    let found = source.slice(span).unwrap_or("");
    let top = span.is_known()
        && source.text.get(..span.start).is_some_and(|before| {
            before.lines().all(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with('#') || l.starts_with('%') || l == "---"
            })
        });
    let (message, label, help) = describe(inner, found, top);
    let mut d = Diagnostic::new(message);
    if span.is_known() {
        d = d.label(span, label);
    }
    if let Some(help) = help {
        d = d.help(help);
    }
    d
}

fn unwrap_yaml_error(err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    let mut e = err;
    for _ in 0..8 {
        match e {
            serde_saphyr::Error::WithSnippet { error, .. } => e = error,
            serde_saphyr::Error::AliasError { error, .. } => e = error,
            _ => break,
        }
    }
    e
}

fn choices(expected: &[&str]) -> String {
    expected
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a type name means to someone writing YAML.
fn human_type(ty: &str) -> String {
    match ty {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" => "a whole number from 0 to 18446744073709551615".into(),
        "i64" | "i32" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "bool" => "`true` or `false`".into(),
        "string" | "str" => "a string".into(),
        t if t.starts_with("struct ") => "a mapping of `key: value` pairs".into(),
        t => t.to_string(),
    }
}

/// Message, label and help for a serde-saphyr error.
fn describe(err: &serde_saphyr::Error, found: &str, top: bool) -> (String, String, Option<String>) {
    use serde_saphyr::{DefaultMessageFormatter, Error as E, MessageFormatter};
    match err {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let mut help = String::new();
            if let Some(k) = closest(field, expected.iter().copied()) {
                help = format!("did you mean `{k}`? ");
            }
            help.push_str(&format!("this mapping takes {}", choices(expected)));
            (
                format!("unknown key `{field}`"),
                "unknown key".into(),
                Some(help),
            )
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let mut help = String::new();
            if let Some(k) = closest(variant, expected.iter().copied()) {
                help = format!("did you mean `{k}`? ");
            }
            help.push_str(&format!("expected one of {}", choices(expected)));
            (
                format!("unknown value `{variant}`"),
                "not one of the choices".into(),
                Some(help),
            )
        }
        E::Unexpected { expected, .. } => {
            let what = match *expected {
                "mapping start" => "a mapping of `key: value` pairs",
                "sequence start" => "a list",
                "string scalar" => "a string",
                other => other,
            };
            let found = found.trim();
            (
                if found.is_empty() {
                    format!("expected {what}")
                } else {
                    format!("expected {what}, found `{}`", found.chars().take(40).collect::<String>())
                },
                format!("expected {what}"),
                (top && *expected == "mapping start").then(|| {
                    "a scenario is a mapping such as `name: demo`, `hosts: { … }`, `links: [ … ]`".to_string()
                }),
            )
        }
        E::InvalidBooleanStrict { .. } => (
            format!("expected `true` or `false`, found `{}`", found.trim()),
            "not a boolean".into(),
            Some("YAML 1.1 spellings such as `yes`, `no`, `on`, `off` are not booleans here".into()),
        ),
        E::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            format!("`{field}:` is missing from this mapping"),
            Some(format!("add `{field}: …`")),
        ),
        E::InvalidScalar { ty, .. } => (
            format!("expected {}, found `{}`", human_type(ty), found.trim()),
            format!("not {}", human_type(ty)),
            None,
        ),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!("wrong type: found {unexpected}, expected {}", human_type(expected)),
            "wrong type".into(),
            None,
        ),
        E::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".into(),
            },
            "second occurrence".into(),
            Some("each key may appear only once in a mapping".into()),
        ),
        E::Budget { .. } => (
            DefaultMessageFormatter.format_message(err).into_owned(),
            "here".into(),
            Some("scenario files are small: this one is too deep, too large, or expands too many aliases".into()),
        ),
        E::MultipleDocuments { .. } => (
            DefaultMessageFormatter.format_message(err).into_owned(),
            "second document".into(),
            Some("a scenario file holds one YAML document".into()),
        ),
        _ => {
            let raw = DefaultMessageFormatter.format_message(err).into_owned();
            match raw.split_once(HELP_SEP) {
                Some((msg, help)) => (msg.to_string(), "invalid value".into(), Some(help.to_string())),
                None => (raw, "here".into(), None),
            }
        }
    }
}

/// The closest name to `name` among `known`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (distance(k, name), k))
        .filter(|&(dist, k)| {
            dist <= 2.max(k.chars().count() / 3) && dist < k.chars().count().max(1)
        })
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance (of the first 64 characters).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Separates the message from the help text in errors raised by our own visitors.
pub(crate) const HELP_SEP: char = '\u{1f}';

/// An error message with help, for `serde::de::Error::custom` in our visitors.
pub(crate) fn expected(message: impl fmt::Display, help: impl fmt::Display) -> String {
    format!("{message}{HELP_SEP}{help}")
}
