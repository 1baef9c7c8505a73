//! ICMP message kinds and their names in literals and filters.
//!
//! Queries (echo, timestamp, information, address mask) carry an id and a
//! sequence number; errors quote the datagram they are about and are
//! [`IcmpError`]s; anything else is written as `type=N code=M`.

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::token::Token;
use crate::value;

/// An ICMP error message, as a router or host sends it about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// Destination unreachable, code 0: `net-unreachable`.
    NetUnreachable,
    /// Destination unreachable, code 1: `host-unreachable`.
    HostUnreachable,
    /// Destination unreachable, code 2: `proto-unreachable`.
    ProtoUnreachable,
    /// Destination unreachable, code 3: `port-unreachable`.
    PortUnreachable,
    /// Destination unreachable, code 4, with the next hop's MTU:
    /// `frag-needed mtu=N`.
    FragNeeded { mtu: u16 },
    /// Destination unreachable, code 9: `net-prohibited`.
    NetProhibited,
    /// Destination unreachable, code 10: `host-prohibited`.
    HostProhibited,
    /// Destination unreachable, code 13 (what an iptables `REJECT
    /// --reject-with icmp-admin-prohibited` sends): `admin-prohibited`.
    AdminProhibited,
    /// Source quench (type 4): `source-quench`.
    SourceQuench,
    /// Host redirect (type 5, code 1) to `gateway`: `redirect gw=A`.
    Redirect { gateway: Ipv4Addr },
    /// TTL exceeded in transit (type 11, code 0): `time-exceeded`.
    TimeExceeded,
    /// Fragment reassembly time exceeded (type 11, code 1):
    /// `reassembly-time-exceeded`.
    ReassemblyTimeExceeded,
    /// Parameter problem (type 12, code 0) at byte `pointer` of the quoted
    /// header: `param-problem ptr=N`.
    ParamProblem { pointer: u8 },
}

/// Every error kind, parameters zero.
const ERRORS: [IcmpError; 13] = [
    IcmpError::NetUnreachable,
    IcmpError::HostUnreachable,
    IcmpError::ProtoUnreachable,
    IcmpError::PortUnreachable,
    IcmpError::FragNeeded { mtu: 0 },
    IcmpError::NetProhibited,
    IcmpError::HostProhibited,
    IcmpError::AdminProhibited,
    IcmpError::SourceQuench,
    IcmpError::Redirect {
        gateway: Ipv4Addr::UNSPECIFIED,
    },
    IcmpError::TimeExceeded,
    IcmpError::ReassemblyTimeExceeded,
    IcmpError::ParamProblem { pointer: 0 },
];

impl IcmpError {
    /// Name, type and code.
    fn wire(self) -> (&'static str, u8, u8) {
        match self {
            IcmpError::NetUnreachable => ("net-unreachable", 3, 0),
            IcmpError::HostUnreachable => ("host-unreachable", 3, 1),
            IcmpError::ProtoUnreachable => ("proto-unreachable", 3, 2),
            IcmpError::PortUnreachable => ("port-unreachable", 3, 3),
            IcmpError::FragNeeded { .. } => ("frag-needed", 3, 4),
            IcmpError::NetProhibited => ("net-prohibited", 3, 9),
            IcmpError::HostProhibited => ("host-prohibited", 3, 10),
            IcmpError::AdminProhibited => ("admin-prohibited", 3, 13),
            IcmpError::SourceQuench => ("source-quench", 4, 0),
            IcmpError::Redirect { .. } => ("redirect", 5, 1),
            IcmpError::TimeExceeded => ("time-exceeded", 11, 0),
            IcmpError::ReassemblyTimeExceeded => ("reassembly-time-exceeded", 11, 1),
            IcmpError::ParamProblem { .. } => ("param-problem", 12, 0),
        }
    }

    /// The name used in literals and filters, e.g. `port-unreachable`.
    pub fn name(self) -> &'static str {
        self.wire().0
    }

    /// The ICMP type.
    pub fn icmp_type(self) -> u8 {
        self.wire().1
    }

    /// The ICMP code.
    pub fn code(self) -> u8 {
        self.wire().2
    }

    /// The four header bytes after the checksum, as a big-endian word.
    pub(crate) fn rest(self) -> u32 {
        match self {
            IcmpError::FragNeeded { mtu } => mtu.into(),
            IcmpError::Redirect { gateway } => gateway.into(),
            IcmpError::ParamProblem { pointer } => u32::from(pointer) << 24,
            _ => 0,
        }
    }

    fn with_rest(self, rest: u32) -> Self {
        match self {
            IcmpError::FragNeeded { .. } => IcmpError::FragNeeded { mtu: rest as u16 },
            IcmpError::Redirect { .. } => IcmpError::Redirect {
                gateway: rest.into(),
            },
            IcmpError::ParamProblem { .. } => IcmpError::ParamProblem {
                pointer: (rest >> 24) as u8,
            },
            other => other,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        ERRORS.into_iter().find(|e| e.name() == name)
    }

    /// The error a header stands for, if its unused bits are all zero.
    fn from_wire(icmp_type: u8, code: u8, rest: u32) -> Option<Self> {
        let kind = ERRORS
            .into_iter()
            .find(|e| e.icmp_type() == icmp_type && e.code() == code)?
            .with_rest(rest);
        (kind.rest() == rest).then_some(kind)
    }

    /// The key of the field that carries this kind's parameter.
    pub(crate) fn param_key(self) -> Option<&'static str> {
        match self {
            IcmpError::FragNeeded { .. } => Some("mtu"),
            IcmpError::Redirect { .. } => Some("gw"),
            IcmpError::ParamProblem { .. } => Some("ptr"),
            _ => None,
        }
    }

    /// Sets the parameter from the value of its field.
    pub(crate) fn set_param(&mut self, value: Token<'_>) -> Result<()> {
        *self = match *self {
            IcmpError::FragNeeded { .. } => IcmpError::FragNeeded {
                mtu: value::number(value, "an MTU")?,
            },
            IcmpError::Redirect { .. } => IcmpError::Redirect {
                gateway: value::address(value)?,
            },
            IcmpError::ParamProblem { .. } => IcmpError::ParamProblem {
                pointer: value::number(value, "a byte offset")?,
            },
            other => other,
        };
        Ok(())
    }

    /// The parameter field as printed, with a leading space.
    pub(crate) fn write_param(self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IcmpError::FragNeeded { mtu } => write!(f, " mtu={mtu}"),
            IcmpError::Redirect { gateway } => write!(f, " gw={gateway}"),
            IcmpError::ParamProblem { pointer } => write!(f, " ptr={pointer}"),
            _ => Ok(()),
        }
    }
}

/// Whether messages of this type are errors, which quote a datagram.
pub(crate) fn is_error_type(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// A query message kind: requests and replies carrying an id and a
/// sequence number, some with fixed 32-bit fields after the header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QueryKind {
    pub name: &'static str,
    pub icmp_type: u8,
    /// The fixed fields' keys; `mask` holds an address.
    pub fields: &'static [&'static str],
}

const TIMESTAMPS: &[&str] = &["orig", "recv", "xmit"];

pub(crate) const QUERIES: [QueryKind; 8] = [
    QueryKind {
        name: "echo-reply",
        icmp_type: 0,
        fields: &[],
    },
    QueryKind {
        name: "echo-request",
        icmp_type: 8,
        fields: &[],
    },
    QueryKind {
        name: "timestamp-request",
        icmp_type: 13,
        fields: TIMESTAMPS,
    },
    QueryKind {
        name: "timestamp-reply",
        icmp_type: 14,
        fields: TIMESTAMPS,
    },
    QueryKind {
        name: "info-request",
        icmp_type: 15,
        fields: &[],
    },
    QueryKind {
        name: "info-reply",
        icmp_type: 16,
        fields: &[],
    },
    QueryKind {
        name: "mask-request",
        icmp_type: 17,
        fields: &["mask"],
    },
    QueryKind {
        name: "mask-reply",
        icmp_type: 18,
        fields: &["mask"],
    },
];

/// A query message's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Query {
    pub kind: &'static QueryKind,
    pub id: u16,
    pub seq: u16,
    /// Values of `kind.fields`, in order; unused ones are zero.
    pub fields: [u32; 3],
}

/// What an ICMP header says, apart from its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpMessage {
    Query(Query),
    Error(IcmpError),
    /// `type=N code=M rest=0xNNNNNNNN`: anything else.
    Raw {
        icmp_type: u8,
        code: u8,
        rest: u32,
    },
}

impl IcmpMessage {
    /// Reads a message from its header and the start of its body.
    /// `body_len` is the body's full length; `body` holds its first bytes
    /// (zeros where unknown).
    pub fn decode(icmp_type: u8, code: u8, rest: u32, body: [u8; 12], body_len: usize) -> Self {
        let query = QUERIES
            .iter()
            .find(|q| q.icmp_type == icmp_type && code == 0 && body_len >= 4 * q.fields.len());
        if let Some(kind) = query {
            let mut fields = [0; 3];
            for (field, bytes) in fields
                .iter_mut()
                .zip(body.chunks(4))
                .take(kind.fields.len())
            {
                *field = bytes.iter().fold(0, |n, &b| n << 8 | u32::from(b));
            }
            return IcmpMessage::Query(Query {
                kind,
                id: (rest >> 16) as u16,
                seq: rest as u16,
                fields,
            });
        }
        match IcmpError::from_wire(icmp_type, code, rest) {
            Some(error) => IcmpMessage::Error(error),
            None => IcmpMessage::Raw {
                icmp_type,
                code,
                rest,
            },
        }
    }

    pub fn icmp_type(&self) -> u8 {
        match self {
            IcmpMessage::Query(query) => query.kind.icmp_type,
            IcmpMessage::Error(error) => error.icmp_type(),
            IcmpMessage::Raw { icmp_type, .. } => *icmp_type,
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            IcmpMessage::Query(_) => 0,
            IcmpMessage::Error(error) => error.code(),
            IcmpMessage::Raw { code, .. } => *code,
        }
    }

    /// The four header bytes after the checksum, as a big-endian word.
    pub fn rest(&self) -> u32 {
        match self {
            IcmpMessage::Query(query) => u32::from(query.id) << 16 | u32::from(query.seq),
            IcmpMessage::Error(error) => error.rest(),
            IcmpMessage::Raw { rest, .. } => *rest,
        }
    }

    /// The fixed 32-bit fields between the header and the body.
    pub fn fixed(&self) -> &[u32] {
        match self {
            IcmpMessage::Query(query) => &query.fields[..query.kind.fields.len()],
            _ => &[],
        }
    }
}

/// The type, and the code if the name fixes one, that `name` stands for
/// (for filters: a query name matches any code).
pub(crate) fn type_and_code(name: &str) -> Option<(u8, Option<u8>)> {
    if let Some(query) = QUERIES.iter().find(|q| q.name == name) {
        return Some((query.icmp_type, None));
    }
    IcmpError::from_name(name).map(|e| (e.icmp_type(), Some(e.code())))
}

/// All names, for error messages.
pub(crate) fn names() -> String {
    QUERIES
        .iter()
        .map(|q| q.name)
        .chain(ERRORS.iter().map(|e| e.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_the_wire() {
        for error in ERRORS {
            assert_eq!(IcmpError::from_name(error.name()), Some(error));
            assert_eq!(
                IcmpError::from_wire(error.icmp_type(), error.code(), error.rest()),
                Some(error)
            );
            assert!(is_error_type(error.icmp_type()));
        }
        let frag = IcmpError::FragNeeded { mtu: 1400 };
        assert_eq!(IcmpError::from_wire(3, 4, 1400), Some(frag));
        // Unused bits set: not a well-formed frag-needed.
        assert_eq!(IcmpError::from_wire(3, 4, 0x0001_0578), None);
        assert_eq!(IcmpError::from_wire(3, 3, 1), None);
    }

    #[test]
    fn queries_need_room_for_their_fixed_fields() {
        let echo = IcmpMessage::decode(8, 0, 0x0007_0001, [0; 12], 0);
        assert_eq!(echo.rest(), 0x0007_0001);
        assert!(matches!(echo, IcmpMessage::Query(q) if q.id == 7 && q.seq == 1));
        assert!(matches!(
            IcmpMessage::decode(13, 0, 0, [0; 12], 11),
            IcmpMessage::Raw { .. }
        ));
        assert!(matches!(
            IcmpMessage::decode(8, 1, 0, [0; 12], 0),
            IcmpMessage::Raw { .. }
        ));
        let mask = IcmpMessage::decode(18, 0, 0, [255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4);
        assert_eq!(mask.fixed(), &[0xffff_ff00]);
    }
}
