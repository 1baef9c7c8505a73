//! The IP header fields every literal takes.

use std::net::Ipv4Addr;

use super::{checksum, flag};
use crate::checksum::Checksum;
use crate::error::Result;
use crate::model::{IpHeader, OptionBytes};
use crate::token::Token;
use crate::value::{self, required, set_number, set_once};

#[derive(Default)]
pub(super) struct IpFields {
    ttl: Option<u8>,
    tos: Option<u8>,
    id: Option<u16>,
    no_df: Option<()>,
    more_frags: Option<()>,
    reserved_flag: Option<()>,
    frag_offset: Option<u16>,
    options: Option<OptionBytes>,
    checksum: Option<Checksum>,
}

impl IpFields {
    pub const KEYS: &'static str = "ttl, tos, ipid, nodf, mf, rf, frag, ipopts, ipcsum";

    pub fn take(&mut self, key: Token<'_>, value: Option<Token<'_>>) -> Result<bool> {
        match key.text {
            "ttl" => set_number(&mut self.ttl, key, value, "a TTL")?,
            "tos" => set_number(&mut self.tos, key, value, "a TOS byte")?,
            "ipid" => set_number(&mut self.id, key, value, "an IP ID")?,
            "nodf" => set_once(&mut self.no_df, key, flag(key, value)?)?,
            "mf" => set_once(&mut self.more_frags, key, flag(key, value)?)?,
            "rf" => set_once(&mut self.reserved_flag, key, flag(key, value)?)?,
            "frag" => {
                let value = required(key, value)?;
                let offset: u16 = value::number(value, "a fragment offset in bytes")?;
                if !offset.is_multiple_of(8) {
                    return Err(value.error(format!(
                        "expected a fragment offset in bytes, a multiple of 8, found `{offset}`"
                    )));
                }
                set_once(&mut self.frag_offset, key, offset)?;
            }
            "ipopts" => {
                let value = required(key, value)?;
                let options = OptionBytes::new(&value::hex(value)?).ok_or_else(|| {
                    value.error("IP options do not fit in 40 bytes once padded to a multiple of 4")
                })?;
                set_once(&mut self.options, key, options)?;
            }
            "ipcsum" => set_once(&mut self.checksum, key, checksum(key, value)?)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn finish(self, src: Ipv4Addr, dst: Ipv4Addr) -> IpHeader {
        let defaults = IpHeader::new(src, dst);
        IpHeader {
            ttl: self.ttl.unwrap_or(defaults.ttl),
            tos: self.tos.unwrap_or(defaults.tos),
            id: self.id.unwrap_or(defaults.id),
            dont_frag: self.no_df.is_none(),
            more_frags: self.more_frags.is_some(),
            reserved_flag: self.reserved_flag.is_some(),
            frag_offset: self.frag_offset.unwrap_or(defaults.frag_offset),
            options: self.options.unwrap_or(defaults.options),
            checksum: self.checksum.unwrap_or(defaults.checksum),
            ..defaults
        }
    }
}
