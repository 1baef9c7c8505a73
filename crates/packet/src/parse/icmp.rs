//! The fields of ICMP literals, quotes included.

use super::{checksum, literal, Context, TransportFields};
use crate::checksum::Checksum;
use crate::error::{LiteralError, Result};
use crate::icmp::{self, IcmpError, IcmpMessage, Query, QueryKind, QUERIES};
use crate::model::{Icmp, Transport};
use crate::payload::{Payload, PayloadFields};
use crate::quote;
use crate::token::Token;
use crate::value::{self, required, set_number, set_once};

/// The word after the addresses of an ICMP literal.
#[derive(Clone, Copy)]
pub(super) enum IcmpKind {
    Query(&'static QueryKind),
    Error(IcmpError),
    Raw(u8),
}

pub(super) fn icmp_kind(token: Token<'_>) -> Result<IcmpKind> {
    if let Some(kind) = QUERIES.iter().find(|q| q.name == token.text) {
        return Ok(IcmpKind::Query(kind));
    }
    if let Some(error) = IcmpError::from_name(token.text) {
        return Ok(IcmpKind::Error(error));
    }
    match token.key_value() {
        (key, Some(value)) if key.text == "type" => {
            Ok(IcmpKind::Raw(value::number(value, "an ICMP type")?))
        }
        _ => Err(token.error(format!(
            "expected an ICMP message ({}, or type=N), found `{}`",
            icmp::names(),
            token.text
        ))),
    }
}

/// A `quote=` field: the quoted datagram, how much of it to keep, and
/// where the field was (for the error if a payload is given too).
struct QuoteField {
    bytes: Vec<u8>,
    keep: Option<usize>,
    key: std::ops::Range<usize>,
}

pub(super) struct IcmpFields<'c, 'q> {
    kind: IcmpKind,
    context: &'c Context<'q>,
    id: Option<u16>,
    seq: Option<u16>,
    fixed: [Option<u32>; 3],
    param: Option<IcmpError>,
    code: Option<u8>,
    rest: Option<u32>,
    checksum: Option<Checksum>,
    quote: Option<QuoteField>,
}

impl<'c, 'q> IcmpFields<'c, 'q> {
    pub fn new(kind: IcmpKind, context: &'c Context<'q>) -> Self {
        IcmpFields {
            kind,
            context,
            id: None,
            seq: None,
            fixed: [None; 3],
            param: None,
            code: None,
            rest: None,
            checksum: None,
            quote: None,
        }
    }

    /// `quote=NAME[/N]` or `quote=(LITERAL)[/N]`.
    fn quote(&self, value: Token<'_>) -> Result<(Vec<u8>, Option<usize>)> {
        let (target, keep) = match quote::split_length(value) {
            (target, Some(n)) => {
                let keep: u16 = value::number(n, "a quote length in bytes")?;
                (target, Some(usize::from(keep)))
            }
            (target, None) => (target, None),
        };
        let bytes = if target.text.starts_with('(') {
            let inner = target.inside('(', ')').ok_or_else(|| {
                target.error("expected `quote=(LITERAL)` with an optional `/N` after it")
            })?;
            if self.context.depth >= quote::MAX_DEPTH {
                return Err(inner.error(format!("quotes nest at most {} deep", quote::MAX_DEPTH)));
            }
            literal(
                inner.text,
                inner.start,
                self.context.quotes,
                self.context.depth + 1,
            )?
        } else {
            (self.context.quotes)(target.text)
                .ok_or_else(|| target.error(format!("no packet named `{}`", target.text)))?
        };
        Ok((bytes, keep))
    }
}

impl TransportFields for IcmpFields<'_, '_> {
    fn keys(&self) -> String {
        match self.kind {
            IcmpKind::Query(kind) => ["id", "seq"]
                .iter()
                .chain(kind.fields)
                .chain(&["csum"])
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
            IcmpKind::Error(error) => match error.param_key() {
                Some(param) => format!("{param}, csum, quote"),
                None => "csum, quote".into(),
            },
            IcmpKind::Raw(_) => "code, rest, csum, quote".into(),
        }
    }

    fn take(&mut self, token: Token<'_>) -> Result<bool> {
        let (key, value) = token.key_value();
        match (self.kind, key.text) {
            (_, "csum") => set_once(&mut self.checksum, key, checksum(key, value)?)?,
            (IcmpKind::Query(_), "id") => set_number(&mut self.id, key, value, "an ICMP id")?,
            (IcmpKind::Query(_), "seq") => {
                set_number(&mut self.seq, key, value, "an ICMP sequence number")?
            }
            (IcmpKind::Query(kind), name) if kind.fields.contains(&name) => {
                let value = required(key, value)?;
                let number = match name {
                    "mask" => value::address(value)?.into(),
                    _ => value::number(value, "a timestamp")?,
                };
                let at = kind.fields.iter().position(|&f| f == name).unwrap_or(0);
                set_once(&mut self.fixed[at], key, number)?;
            }
            (IcmpKind::Error(error), name) if error.param_key() == Some(name) => {
                let mut error = error;
                error.set_param(required(key, value)?)?;
                set_once(&mut self.param, key, error)?;
            }
            (IcmpKind::Raw(_), "code") => set_number(&mut self.code, key, value, "an ICMP code")?,
            (IcmpKind::Raw(_), "rest") => set_number(&mut self.rest, key, value, "a 32-bit value")?,
            (IcmpKind::Error(_) | IcmpKind::Raw(_), "quote") => {
                let (bytes, keep) = self.quote(required(key, value)?)?;
                let field = QuoteField {
                    bytes,
                    keep,
                    key: key.span(),
                };
                set_once(&mut self.quote, key, field)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(self, payload: PayloadFields, header_len: usize) -> Result<Transport<'static>> {
        let message = match self.kind {
            IcmpKind::Query(kind) => IcmpMessage::Query(Query {
                kind,
                id: self.id.unwrap_or(0),
                seq: self.seq.unwrap_or(0),
                fields: self.fixed.map(|field| field.unwrap_or(0)),
            }),
            IcmpKind::Error(error) => IcmpMessage::Error(self.param.unwrap_or(error)),
            IcmpKind::Raw(icmp_type) => IcmpMessage::Raw {
                icmp_type,
                code: self.code.unwrap_or(0),
                rest: self.rest.unwrap_or(0),
            },
        };
        let body = match self.quote {
            None => payload.finish()?,
            Some(quote) if payload.is_empty() => {
                let keep = quote
                    .keep
                    .unwrap_or_else(|| quote::default_len(header_len, quote.bytes.len()));
                let mut bytes = quote.bytes;
                bytes.truncate(keep);
                let len = bytes.len();
                Payload::new(bytes, len)
            }
            Some(quote) => {
                return Err(LiteralError::new(
                    quote.key,
                    "give either `quote=` or a payload, not both",
                ))
            }
        };
        Ok(Transport::Icmp(Icmp {
            message,
            checksum: self.checksum.unwrap_or(Checksum::Correct),
            body,
        }))
    }
}
