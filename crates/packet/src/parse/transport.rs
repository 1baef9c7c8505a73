//! The fields of TCP, UDP and other-protocol (`ip`) literals.

use super::{checksum, TransportFields};
use crate::checksum::Checksum;
use crate::error::Result;
use crate::model::{OptionBytes, Tcp, Transport, Udp};
use crate::payload::PayloadFields;
use crate::tcp_options;
use crate::token::Token;
use crate::value::{self, required, set_number, set_once};

/// TCP's window when a literal gives none: the largest unscaled window.
const DEFAULT_WINDOW: u16 = u16::MAX;

#[derive(Default)]
pub(super) struct TcpFields {
    ports: (u16, u16),
    flags: u16,
    seq: Option<u32>,
    ack: Option<u32>,
    window: Option<u16>,
    urgent: Option<u16>,
    checksum: Option<Checksum>,
    options: Option<OptionBytes>,
}

impl TcpFields {
    pub fn new(ports: (u16, u16), flags: u16) -> Self {
        TcpFields {
            ports,
            flags,
            ..TcpFields::default()
        }
    }
}

impl TransportFields for TcpFields {
    fn keys(&self) -> String {
        "seq, ack, win, urg, csum, [options]".into()
    }

    fn take(&mut self, token: Token<'_>) -> Result<bool> {
        if token.text.starts_with('[') {
            set_once(
                &mut self.options,
                token.until(1),
                tcp_options::parse(token)?,
            )?;
            return Ok(true);
        }
        let (key, value) = token.key_value();
        match key.text {
            "seq" => set_number(&mut self.seq, key, value, "a sequence number")?,
            "ack" => set_number(&mut self.ack, key, value, "an acknowledgment number")?,
            "win" => set_number(&mut self.window, key, value, "a window")?,
            "urg" => set_number(&mut self.urgent, key, value, "an urgent pointer")?,
            "csum" => set_once(&mut self.checksum, key, checksum(key, value)?)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(self, payload: PayloadFields, _: usize) -> Result<Transport<'static>> {
        Ok(Transport::Tcp(Tcp {
            src_port: self.ports.0,
            dst_port: self.ports.1,
            seq: self.seq.unwrap_or(0),
            ack: self.ack.unwrap_or(0),
            flags: self.flags,
            window: self.window.unwrap_or(DEFAULT_WINDOW),
            urgent: self.urgent.unwrap_or(0),
            checksum: self.checksum.unwrap_or(Checksum::Correct),
            options: self.options.unwrap_or_default(),
            payload: payload.finish()?,
        }))
    }
}

#[derive(Default)]
pub(super) struct UdpFields {
    ports: (u16, u16),
    length: Option<u16>,
    checksum: Option<Checksum>,
}

impl UdpFields {
    pub fn new(ports: (u16, u16)) -> Self {
        UdpFields {
            ports,
            ..UdpFields::default()
        }
    }
}

impl TransportFields for UdpFields {
    fn keys(&self) -> String {
        "ulen, csum".into()
    }

    fn take(&mut self, token: Token<'_>) -> Result<bool> {
        let (key, value) = token.key_value();
        match key.text {
            "ulen" => set_number(&mut self.length, key, value, "a UDP length")?,
            "csum" => set_once(&mut self.checksum, key, checksum(key, value)?)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(self, payload: PayloadFields, _: usize) -> Result<Transport<'static>> {
        Ok(Transport::Udp(Udp {
            src_port: self.ports.0,
            dst_port: self.ports.1,
            length: self.length,
            checksum: self.checksum.unwrap_or(Checksum::Correct),
            payload: payload.finish()?,
        }))
    }
}

/// The `ip` literal's fields: just the protocol number.
pub(super) struct OtherFields<'t> {
    literal: Token<'t>,
    protocol: Option<u8>,
}

impl<'t> OtherFields<'t> {
    pub fn new(literal: Token<'t>) -> Self {
        OtherFields {
            literal,
            protocol: None,
        }
    }
}

impl TransportFields for OtherFields<'_> {
    fn keys(&self) -> String {
        "proto".into()
    }

    fn take(&mut self, token: Token<'_>) -> Result<bool> {
        let (key, value) = token.key_value();
        if key.text != "proto" {
            return Ok(false);
        }
        let protocol = value::number(required(key, value)?, "a protocol number")?;
        set_once(&mut self.protocol, key, protocol)?;
        Ok(true)
    }

    fn finish(self, payload: PayloadFields, _: usize) -> Result<Transport<'static>> {
        let protocol = self
            .protocol
            .ok_or_else(|| self.literal.error("expected `proto=N` in an ip literal"))?;
        Ok(Transport::Other {
            protocol,
            payload: payload.finish()?,
        })
    }
}
