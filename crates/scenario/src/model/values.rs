//! Scalar value types written by hand in scenarios (durations, addresses, bandwidths,
//! probabilities), each with a parser whose errors say what was expected.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::diag::expected;

/// A parse error: what went wrong, and what was expected (the help line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    pub message: String,
    pub help: String,
}

impl ValueError {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        ValueError {
            message: message.into(),
            help: help.into(),
        }
    }
    fn into_de<E: de::Error>(self) -> E {
        E::custom(expected(self.message, self.help))
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.help)
    }
}

impl std::error::Error for ValueError {}

/// Shows a user's text in a message, shortened and with odd characters escaped.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_default).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("`{out}`")
}

/// Splits `12.5ms` into (`12.5`, `ms`); spaces between the number and the unit are allowed.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

enum ScaleError {
    Syntax,
    TooPrecise,
    Overflow,
}

/// `digits[.digits]` times `mult`, exactly, as a u64.
fn scale(number: &str, mult: u64) -> Result<u64, ScaleError> {
    let number: String = number.chars().filter(|&c| c != '_').collect();
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ScaleError::Syntax);
    }
    let int = int.trim_start_matches('0');
    if int.len() > 30 {
        return Err(ScaleError::Overflow);
    }
    let int_value: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| ScaleError::Overflow)?
    };
    let frac = frac.trim_end_matches('0');
    let mut total = int_value
        .checked_mul(u128::from(mult))
        .ok_or(ScaleError::Overflow)?;
    if !frac.is_empty() {
        if frac.len() > 20 {
            return Err(ScaleError::TooPrecise);
        }
        let f: u128 = frac.parse().map_err(|_| ScaleError::Syntax)?;
        let denom = 10u128.pow(frac.len() as u32);
        let scaled = f * u128::from(mult);
        if !scaled.is_multiple_of(denom) {
            return Err(ScaleError::TooPrecise);
        }
        total += scaled / denom;
    }
    u64::try_from(total).map_err(|_| ScaleError::Overflow)
}

// ---------------------------------------------------------------- Duration

/// A span of simulated time in nanoseconds, written with a unit: `10ms`, `2.5s`, `100us`, `1m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Duration(pub u64);

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const fn from_nanos(ns: u64) -> Self {
        Duration(ns)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1_000_000_000)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
}

const DURATION_HELP: &str =
    "write a number and a unit: ns, us, ms, s, m (minutes) or h, e.g. `10ms` or `2.5s`";

impl FromStr for Duration {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        let bad = || {
            ValueError::new(
                format!(
                    "expected a duration like `10ms` or `2.5s`, found {}",
                    shown(text)
                ),
                DURATION_HELP,
            )
        };
        if s.starts_with('-') {
            return Err(ValueError::new(
                format!("a duration cannot be negative, found {}", shown(text)),
                DURATION_HELP,
            ));
        }
        let (number, unit) = split_number(s.strip_prefix('+').unwrap_or(s));
        let mult: u64 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" if !number.is_empty() => {
                if number.trim_matches(|c| c == '0' || c == '.').is_empty() {
                    return Ok(Duration(0));
                }
                return Err(ValueError::new(
                    format!("the duration {} has no unit", shown(text)),
                    format!("{DURATION_HELP}; for example `{number}ms`"),
                ));
            }
            _ => return Err(bad()),
        };
        match scale(number, mult) {
            Ok(ns) => Ok(Duration(ns)),
            Err(ScaleError::Syntax) => Err(bad()),
            Err(ScaleError::TooPrecise) => Err(ValueError::new(
                format!("the duration {} is finer than a nanosecond", shown(text)),
                "simulated time counts whole nanoseconds",
            )),
            Err(ScaleError::Overflow) => Err(ValueError::new(
                format!("the duration {} is too long", shown(text)),
                "durations are at most 18446744073709551615ns (about 584 years)",
            )),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            f.write_str("0s")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// Implements `Deserialize` through `FromStr`, with a hook for YAML numbers.
macro_rules! deserialize_via_str {
    ($ty:ty, $expecting:expr, |$n:ident| $from_number:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse::<$ty>().map_err(ValueError::into_de)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        let $n = v.to_string();
                        $from_number.map_err(ValueError::into_de)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        let $n = v.to_string();
                        $from_number.map_err(ValueError::into_de)
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        let $n = v.to_string();
                        $from_number.map_err(ValueError::into_de)
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<$ty, E> {
                        v.to_string().parse::<$ty>().map_err(ValueError::into_de)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

deserialize_via_str!(Duration, "a duration like `10ms` or `2.5s`", |n| n
    .parse::<Duration>());

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h), e.g. `10ms`, `2.5s`; `0` needs no unit.",
            "anyOf": [
                { "type": "string", "pattern": "^\\s*\\+?[0-9_]*(\\.[0-9_]*)?\\s*(ns|us|µs|ms|s|m|min|h)\\s*$" },
                { "const": 0 }
            ],
            "examples": ["10ms", "2.5s", "100us"]
        })
    }
}

// ---------------------------------------------------------------- Cidr

/// An IPv4 interface address with its prefix length, as `ip addr` shows it: `192.0.2.2/24`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub const DEFAULT_ROUTE: Cidr = Cidr {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len.min(32)))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `ip` lies in this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// Whether the address has no host bits set (as a route destination must).
    pub fn is_network(&self) -> bool {
        self.network() == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn parse_ip(text: &str, what: &str, example: &str) -> Result<Ipv4Addr, ValueError> {
    let s = text.trim();
    s.parse::<Ipv4Addr>().map_err(|_| {
        if s.contains(':') && s.parse::<std::net::Ipv6Addr>().is_ok() {
            ValueError::new(
                format!("IPv6 is not supported yet, found {}", shown(text)),
                format!("write an IPv4 {what} like `{example}`"),
            )
        } else {
            ValueError::new(
                format!(
                    "expected an IPv4 {what} like `{example}`, found {}",
                    shown(text)
                ),
                "four numbers from 0 to 255 separated by dots",
            )
        }
    })
}

impl FromStr for Cidr {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        let Some((ip, len)) = s.split_once('/') else {
            parse_ip(s, "address with a prefix length", "192.0.2.2/24")?;
            return Err(ValueError::new(
                format!("the address {} has no prefix length", shown(text)),
                format!("write it with its prefix length, e.g. `{s}/24`"),
            ));
        };
        let addr = parse_ip(ip, "address with a prefix length", "192.0.2.2/24")?;
        let len = match len.trim().parse::<u8>() {
            Ok(l) if l <= 32 => l,
            _ => {
                return Err(ValueError::new(
                    format!("bad prefix length in {}", shown(text)),
                    "the prefix length is a number from 0 to 32, e.g. `192.0.2.2/24`",
                ))
            }
        };
        Ok(Cidr { addr, len })
    }
}

deserialize_via_str!(
    Cidr,
    "an address with a prefix length like `192.0.2.2/24`",
    |n| n.parse::<Cidr>()
);

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An IPv4 address with its prefix length, e.g. `192.0.2.2/24`.",
            "type": "string",
            "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$",
            "examples": ["192.0.2.2/24"]
        })
    }
}

/// A route destination: `default` or a network such as `203.0.113.0/24`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RouteDest(pub Cidr);

impl FromStr for RouteDest {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        if text.trim() == "default" {
            return Ok(RouteDest(Cidr::DEFAULT_ROUTE));
        }
        text.parse::<Cidr>().map(RouteDest).map_err(|e| {
            ValueError::new(
                e.message,
                format!(
                    "write `default` or a network like `203.0.113.0/24` ({})",
                    e.help
                ),
            )
        })
    }
}

deserialize_via_str!(
    RouteDest,
    "`default` or a network like `203.0.113.0/24`",
    |n| n.parse::<RouteDest>()
);

impl JsonSchema for RouteDest {
    fn schema_name() -> Cow<'static, str> {
        "RouteDest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`default`, or a destination network with its prefix length, e.g. `203.0.113.0/24`.",
            "anyOf": [
                { "const": "default" },
                { "type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$" }
            ]
        })
    }
}

// ---------------------------------------------------------------- addresses

/// An IPv4 address (`192.0.2.1`), read with a clear error message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ip(pub Ipv4Addr);

impl FromStr for Ip {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        if text.contains('/') {
            return Err(ValueError::new(
                format!(
                    "expected an address without a prefix length, found {}",
                    shown(text)
                ),
                "write only the address, e.g. `192.0.2.1`",
            ));
        }
        parse_ip(text, "address", "192.0.2.1").map(Ip)
    }
}

deserialize_via_str!(Ip, "an IPv4 address like `192.0.2.1`", |n| n.parse::<Ip>());

impl JsonSchema for Ip {
    fn schema_name() -> Cow<'static, str> {
        "Ipv4Addr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "ipv4", "examples": ["192.0.2.1"] })
    }
}

/// Where an app sends to: an address (`ping`) or an address and port (`198.51.100.2:5001`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Target {
    Ip(Ipv4Addr),
    Socket(SocketAddrV4),
}

impl FromStr for Target {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        match s.rsplit_once(':') {
            Some((ip, port)) if !ip.contains(':') => {
                let ip = parse_ip(ip, "address and port", "198.51.100.2:5001")?;
                match port.trim().parse::<u16>() {
                    Ok(p) if p != 0 => Ok(Target::Socket(SocketAddrV4::new(ip, p))),
                    _ => Err(ValueError::new(
                        format!("bad port in {}", shown(text)),
                        "a port is a number from 1 to 65535, e.g. `198.51.100.2:5001`",
                    )),
                }
            }
            _ => parse_ip(s, "address", "198.51.100.2").map(Target::Ip),
        }
    }
}

deserialize_via_str!(
    Target,
    "an address like `198.51.100.2` or `198.51.100.2:5001`",
    |n| n.parse::<Target>()
);

impl JsonSchema for Target {
    fn schema_name() -> Cow<'static, str> {
        "Target".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An IPv4 address (`198.51.100.2`, for ping) or address and port (`198.51.100.2:5001`).",
            "type": "string",
            "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}(:[0-9]{1,5})?$"
        })
    }
}

// ---------------------------------------------------------------- Bandwidth

/// A link rate: `unlimited` or bits per second written with a unit (`bps`, `kbps`, `Mbps`,
/// `Gbps`, `Tbps`; decimal prefixes), e.g. `100Mbps`, `1.5Gbps`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Bandwidth {
    #[default]
    Unlimited,
    BitsPerSec(u64),
}

const BANDWIDTH_HELP: &str =
    "write a number and a unit: bps, kbps, Mbps, Gbps or Tbps (e.g. `100Mbps`), or `unlimited`";

impl FromStr for Bandwidth {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        if s == "unlimited" {
            return Ok(Bandwidth::Unlimited);
        }
        let bad = || {
            ValueError::new(
                format!(
                    "expected a bandwidth like `100Mbps` or `1Gbps`, found {}",
                    shown(text)
                ),
                BANDWIDTH_HELP,
            )
        };
        if s.starts_with('-') {
            return Err(ValueError::new(
                format!("a bandwidth cannot be negative, found {}", shown(text)),
                BANDWIDTH_HELP,
            ));
        }
        let (number, unit) = split_number(s);
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "bps" | "bit/s" => 1,
            "kbps" | "kbit/s" => 1_000,
            "mbps" | "mbit/s" => 1_000_000,
            "gbps" | "gbit/s" => 1_000_000_000,
            "tbps" | "tbit/s" => 1_000_000_000_000,
            "" if !number.is_empty() => {
                return Err(ValueError::new(
                    format!("the bandwidth {} has no unit", shown(text)),
                    format!("{BANDWIDTH_HELP}; for example `{number}Mbps`"),
                ))
            }
            _ => return Err(bad()),
        };
        match scale(number, mult) {
            Ok(0) => Err(ValueError::new(
                "a bandwidth must be more than 0",
                "to cut a link, use an event with `down: true`",
            )),
            Ok(bps) => Ok(Bandwidth::BitsPerSec(bps)),
            Err(ScaleError::Syntax) => Err(bad()),
            Err(ScaleError::TooPrecise) => Err(ValueError::new(
                format!(
                    "the bandwidth {} is finer than 1 bit per second",
                    shown(text)
                ),
                BANDWIDTH_HELP,
            )),
            Err(ScaleError::Overflow) => Err(ValueError::new(
                format!("the bandwidth {} is too large", shown(text)),
                "at most 18446744073709551615bps",
            )),
        }
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bandwidth::Unlimited => f.write_str("unlimited"),
            Bandwidth::BitsPerSec(b) if b % 1_000_000_000 == 0 => {
                write!(f, "{}Gbps", b / 1_000_000_000)
            }
            Bandwidth::BitsPerSec(b) if b % 1_000_000 == 0 => write!(f, "{}Mbps", b / 1_000_000),
            Bandwidth::BitsPerSec(b) if b % 1_000 == 0 => write!(f, "{}kbps", b / 1_000),
            Bandwidth::BitsPerSec(b) => write!(f, "{b}bps"),
        }
    }
}

deserialize_via_str!(Bandwidth, "a bandwidth like `100Mbps`", |n| n
    .parse::<Bandwidth>());

impl JsonSchema for Bandwidth {
    fn schema_name() -> Cow<'static, str> {
        "Bandwidth".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A rate in bits per second with a unit (bps, kbps, Mbps, Gbps, Tbps), e.g. `100Mbps`; or `unlimited`.",
            "anyOf": [
                { "const": "unlimited" },
                { "type": "string", "pattern": "^\\s*[0-9_]*(\\.[0-9_]*)?\\s*([kKmMgGtT]?bps|[kKmMgGtT]?bit/s)\\s*$" }
            ],
            "examples": ["100Mbps", "1Gbps"]
        })
    }
}

// ---------------------------------------------------------------- Probability

/// A probability from 0 to 1, written as a number (`0.01`) or a percentage (`1%`).
/// The range is checked by validation, so that every error is reported at once.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct Probability(pub f64);

impl FromStr for Probability {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, ValueError> {
        let s = text.trim();
        let bad = || {
            ValueError::new(
                format!(
                    "expected a probability like `0.01` or `1%`, found {}",
                    shown(text)
                ),
                "a number from 0 to 1, or a percentage from 0% to 100%",
            )
        };
        let (number, divisor) = match s.strip_suffix('%') {
            Some(n) => (n.trim_end(), 100.0),
            None => (s, 1.0),
        };
        if number.is_empty()
            || !number
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        {
            return Err(bad());
        }
        number
            .parse::<f64>()
            .map(|v| Probability(v / divisor))
            .map_err(|_| bad())
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probability;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a probability like `0.01` or `1%`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Probability, E> {
                v.parse().map_err(ValueError::into_de)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Probability, E> {
                Ok(Probability(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Probability, E> {
                Ok(Probability(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Probability, E> {
                Ok(Probability(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Probability {
    fn schema_name() -> Cow<'static, str> {
        "Probability".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A probability: a number from 0 to 1 (`0.01`) or a percentage (`1%`).",
            "anyOf": [
                { "type": "number", "minimum": 0, "maximum": 1 },
                { "type": "string", "pattern": "^\\s*[0-9.]+\\s*%$" }
            ]
        })
    }
}

// ---------------------------------------------------------------- any scalar as text

/// Any YAML scalar (string, number, boolean), kept as its text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ScalarText {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("10ms".parse::<Duration>().unwrap(), Duration(10_000_000));
        assert_eq!("2.5s".parse::<Duration>().unwrap(), Duration(2_500_000_000));
        assert_eq!("1m".parse::<Duration>().unwrap(), Duration(60_000_000_000));
        assert_eq!("0".parse::<Duration>().unwrap(), Duration(0));
        assert_eq!("1.5us".parse::<Duration>().unwrap(), Duration(1_500));
        assert!("1.5ns".parse::<Duration>().is_err());
        assert!("-1s".parse::<Duration>().is_err());
        assert!("5".parse::<Duration>().is_err());
        assert!("99999999999999999999999s".parse::<Duration>().is_err());
        assert!(".s".parse::<Duration>().is_err());
        assert!("s".parse::<Duration>().is_err());
        assert_eq!(Duration(2_500_000_000).to_string(), "2500ms");
    }

    #[test]
    fn others() {
        let c: Cidr = "192.0.2.2/24".parse().unwrap();
        assert!(c.contains("192.0.2.200".parse().unwrap()));
        assert!(!c.contains("192.0.3.1".parse().unwrap()));
        assert!("192.0.2.2".parse::<Cidr>().is_err());
        assert!("192.0.2.2/33".parse::<Cidr>().is_err());
        assert_eq!(
            "1.5Gbps".parse::<Bandwidth>().unwrap(),
            Bandwidth::BitsPerSec(1_500_000_000)
        );
        assert_eq!("1%".parse::<Probability>().unwrap(), Probability(0.01));
        assert!(matches!(
            "1.2.3.4:80".parse::<Target>(),
            Ok(Target::Socket(_))
        ));
        assert!(matches!("1.2.3.4".parse::<Target>(), Ok(Target::Ip(_))));
        assert!("1.2.3.4:0".parse::<Target>().is_err());
    }
}
