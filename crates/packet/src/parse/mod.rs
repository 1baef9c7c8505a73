//! Parsing a literal into bytes: tokens → [`Datagram`] → [`emit`].
//!
//! After the protocol, the addresses and (for TCP and ICMP) the flags or
//! message kind, fields may come in any order; each at most once. Each
//! protocol's fields live in their own module; the IP and payload fields
//! are common to all.

mod icmp;
mod ip;
mod transport;

use std::net::Ipv4Addr;

use crate::checksum::Checksum;
use crate::emit::emit;
use crate::error::{LiteralError, Result};
use crate::model::{Datagram, Transport};
use crate::payload::PayloadFields;
use crate::tcp_flags;
use crate::token::{Token, Tokens};
use crate::value::{self, required};
use icmp::{icmp_kind, IcmpFields};
use ip::IpFields;
use transport::{OtherFields, TcpFields, UdpFields};

/// Looks up the bytes of a packet named in `quote=NAME`.
pub(crate) type Quotes<'q> = &'q dyn Fn(&str) -> Option<Vec<u8>>;

/// Parses the literal `text`, which starts at byte `base` of the whole
/// text and sits inside `depth` quotes.
pub(crate) fn literal(
    text: &str,
    base: usize,
    quotes: Quotes<'_>,
    depth: usize,
) -> Result<Vec<u8>> {
    let mut tokens = Tokens::new(text, base, "literal")?;
    let protocol = tokens.expect("a protocol (tcp, udp, icmp, ip)")?;
    let with_ports = match protocol.text {
        "malformed" => return malformed(tokens),
        "tcp" | "udp" => true,
        "icmp" | "ip" => false,
        other => {
            return Err(protocol.error(format!(
                "expected a protocol (tcp, udp, icmp, ip, malformed), found `{other}`"
            )))
        }
    };
    let (src, src_port) = endpoint(&mut tokens, "a source", with_ports)?;
    let arrow = tokens.expect("`>`")?;
    if arrow.text != ">" {
        return Err(arrow.error(format!(
            "expected `>` between source and destination, found `{}`",
            arrow.text
        )));
    }
    let (dst, dst_port) = endpoint(&mut tokens, "a destination", with_ports)?;
    let ports = (src_port, dst_port);
    let context = Context { quotes, depth };
    let datagram = match protocol.text {
        "tcp" => {
            let flags = tcp_flags::parse(tokens.expect("TCP flags (S, S., ., P., F., R, R.)")?)?;
            fields(tokens, "tcp", TcpFields::new(ports, flags), src, dst)?
        }
        "udp" => fields(tokens, "udp", UdpFields::new(ports), src, dst)?,
        "icmp" => {
            let kind = icmp_kind(tokens.expect("an ICMP message kind")?)?;
            fields(tokens, "icmp", IcmpFields::new(kind, &context), src, dst)?
        }
        _ => fields(tokens, "ip", OtherFields::new(protocol), src, dst)?,
    };
    if datagram.len() > usize::from(u16::MAX) {
        return Err(LiteralError::new(
            base..base + text.len(),
            format!(
                "the datagram would be {} bytes; IPv4 allows at most 65535",
                datagram.len()
            ),
        ));
    }
    Ok(emit(&datagram))
}

/// `malformed [(reason)] hex=…`: bytes exactly as given.
fn malformed(mut tokens: Tokens<'_>) -> Result<Vec<u8>> {
    const WHAT: &str = "`hex=` with the bytes";
    let mut token = tokens.expect(WHAT)?;
    if token.text.starts_with('(') {
        token = tokens.expect(WHAT)?;
    }
    let (key, value) = token.key_value();
    if key.text != "hex" {
        return Err(key.error(format!("expected {WHAT}, found `{}`", token.text)));
    }
    let bytes = value::hex(required(key, value)?)?;
    match tokens.next() {
        Some(extra) => Err(extra.error(format!(
            "unexpected `{}` after the bytes of a malformed literal",
            extra.text
        ))),
        None => Ok(bytes),
    }
}

/// `ADDRESS` or `ADDRESS:PORT`.
fn endpoint(tokens: &mut Tokens<'_>, what: &str, with_port: bool) -> Result<(Ipv4Addr, u16)> {
    if !with_port {
        let token = tokens.expect(&format!("{what} address"))?;
        return Ok((value::address(token)?, 0));
    }
    let token = tokens.expect(&format!("{what} address and port"))?;
    let (address, port) = token.split_once(':').ok_or_else(|| {
        token.error(format!(
            "expected ADDRESS:PORT like 192.0.2.1:80, found `{}`",
            token.text
        ))
    })?;
    Ok((value::address(address)?, value::number(port, "a port")?))
}

/// What quotes inside this literal need.
struct Context<'q> {
    quotes: Quotes<'q>,
    depth: usize,
}

/// The fields one protocol takes besides the IP and payload fields.
trait TransportFields {
    /// The keys it takes, for the "unknown field" error.
    fn keys(&self) -> String;
    /// Takes a field it knows; `Ok(false)` for any other.
    fn take(&mut self, token: Token<'_>) -> Result<bool>;
    /// Builds the transport part; `header_len` is the IP header's length.
    fn finish(self, payload: PayloadFields, header_len: usize) -> Result<Transport<'static>>;
}

/// Reads the remaining tokens as fields and builds the datagram.
fn fields(
    tokens: Tokens<'_>,
    protocol: &str,
    mut transport: impl TransportFields,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<Datagram<'static>> {
    let mut ip = IpFields::default();
    let mut payload = PayloadFields::default();
    for token in tokens {
        let (key, value) = token.key_value();
        let taken = transport.take(token)? || ip.take(key, value)? || payload.take(key, value)?;
        if !taken {
            return Err(key.error(format!(
                "unknown field `{}` for {protocol} literals; expected one of {}, {}, {}",
                key.text,
                transport.keys(),
                IpFields::KEYS,
                PayloadFields::KEYS
            )));
        }
    }
    let ip = ip.finish(src, dst);
    let transport = transport.finish(payload, ip.header_len())?;
    Ok(Datagram { ip, transport })
}

/// `csum=bad` or `csum=0xNNNN`.
fn checksum(key: Token<'_>, value: Option<Token<'_>>) -> Result<Checksum> {
    let value = required(key, value)?;
    if value.text == "bad" {
        return Ok(Checksum::Bad);
    }
    value::number(value, "`bad` or a checksum").map(Checksum::Value)
}

/// A bare word such as `nodf`, which takes no value.
fn flag(key: Token<'_>, value: Option<Token<'_>>) -> Result<()> {
    match value {
        Some(_) => Err(key.error(format!("`{}` takes no value", key.text))),
        None => Ok(()),
    }
}
