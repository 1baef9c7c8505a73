//! Tuples (`struct nf_conntrack_tuple`), zones and protocol numbers
//! (reference/conntrack-core.md §1, udp-icmp.md §2).
//!
//! A tuple keeps the kernel's layout: two addresses, a protocol number and
//! two 16-bit "port" halves whose meaning depends on the protocol. TCP and
//! UDP put the ports there; ICMP puts the identifier in the source half and
//! type/code in the destination half; the generic tracker leaves both 0.
//! Typed constructors and accessors keep callers from mixing them up.

use std::fmt;
use std::net::Ipv4Addr;

/// `IPPROTO_ICMP`.
pub const IPPROTO_ICMP: u8 = 1;
/// `IPPROTO_GRE`: its tracker keeps PPTP call ids as keys in the tuple.
pub const IPPROTO_GRE: u8 = 47;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u8 = 17;

/// ICMP types (RFC 792), as far as conntrack cares.
pub mod icmp_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
    pub const INFO_REQUEST: u8 = 15;
    pub const INFO_REPLY: u8 = 16;
    pub const ADDRESS: u8 = 17;
    pub const ADDRESS_REPLY: u8 = 18;
    /// `NR_ICMP_TYPES`: the highest type Linux knows; anything above is INVALID.
    pub const NR_ICMP_TYPES: u8 = 18;
}

/// `icmp_is_err()`: the error types whose payload quotes another packet.
#[inline]
pub const fn icmp_is_error(t: u8) -> bool {
    use icmp_type::*;
    matches!(
        t,
        DEST_UNREACH | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
    )
}

/// `invmap[]` of nf_conntrack_proto_icmp.c: the type a reply (or, read the
/// other way, the request) carries. `None` for types that cannot be inverted
/// and therefore never get an entry.
#[inline]
pub const fn icmp_invert_type(t: u8) -> Option<u8> {
    use icmp_type::*;
    match t {
        ECHO => Some(ECHO_REPLY),
        ECHO_REPLY => Some(ECHO),
        TIMESTAMP => Some(TIMESTAMP_REPLY),
        TIMESTAMP_REPLY => Some(TIMESTAMP),
        INFO_REQUEST => Some(INFO_REPLY),
        INFO_REPLY => Some(INFO_REQUEST),
        ADDRESS => Some(ADDRESS_REPLY),
        ADDRESS_REPLY => Some(ADDRESS),
        _ => None,
    }
}

/// `valid_new[]` of `nf_conntrack_icmp_packet()`: the request types that may
/// create an entry.
#[inline]
pub const fn icmp_valid_new(t: u8) -> bool {
    use icmp_type::*;
    matches!(t, ECHO | TIMESTAMP | INFO_REQUEST | ADDRESS)
}

/// A conntrack zone (`struct nf_conntrack_zone`, id only: the zone applies to
/// both directions). Zone 0 is the default; identical tuples in different
/// zones are different connections.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Zone(pub u16);

impl Zone {
    /// `NF_CT_DEFAULT_ZONE_ID`.
    pub const DEFAULT: Zone = Zone(0);
}

/// One direction's tuple (`struct nf_conntrack_tuple`, IPv4 only).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tuple {
    /// `src.u3`.
    pub src: Ipv4Addr,
    /// `dst.u3`.
    pub dst: Ipv4Addr,
    /// `src.u`: source port (TCP/UDP), identifier (ICMP), key (GRE), 0
    /// (generic).
    pub src_u: u16,
    /// `dst.u`: destination port (TCP/UDP), `type << 8 | code` (ICMP), key
    /// (GRE), 0 (generic).
    pub dst_u: u16,
    /// `dst.protonum`.
    pub proto: u8,
}

impl Tuple {
    /// A TCP or UDP tuple (or any protocol with 16-bit ports).
    pub const fn with_ports(
        proto: u8,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
    ) -> Tuple {
        Tuple {
            src,
            dst,
            src_u: sport,
            dst_u: dport,
            proto,
        }
    }

    /// A TCP tuple.
    pub const fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Tuple {
        Tuple::with_ports(IPPROTO_TCP, src, sport, dst, dport)
    }

    /// A UDP tuple.
    pub const fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Tuple {
        Tuple::with_ports(IPPROTO_UDP, src, sport, dst, dport)
    }

    /// An ICMP tuple: the identifier is the "port".
    pub const fn icmp(src: Ipv4Addr, dst: Ipv4Addr, id: u16, icmp_type: u8, code: u8) -> Tuple {
        Tuple {
            src,
            dst,
            src_u: id,
            dst_u: (icmp_type as u16) << 8 | code as u16,
            proto: IPPROTO_ICMP,
        }
    }

    /// A tuple of the generic tracker: addresses and protocol only.
    pub const fn generic(proto: u8, src: Ipv4Addr, dst: Ipv4Addr) -> Tuple {
        Tuple {
            src,
            dst,
            src_u: 0,
            dst_u: 0,
            proto,
        }
    }

    /// Source port (TCP/UDP).
    #[inline]
    pub const fn sport(&self) -> u16 {
        self.src_u
    }
    /// Destination port (TCP/UDP).
    #[inline]
    pub const fn dport(&self) -> u16 {
        self.dst_u
    }
    /// ICMP identifier.
    #[inline]
    pub const fn icmp_id(&self) -> u16 {
        self.src_u
    }
    /// ICMP type.
    #[inline]
    pub const fn icmp_type(&self) -> u8 {
        (self.dst_u >> 8) as u8
    }
    /// ICMP code.
    #[inline]
    pub const fn icmp_code(&self) -> u8 {
        self.dst_u as u8
    }

    /// Whether the protocol has ports in the tuple (TCP, UDP).
    #[inline]
    pub const fn has_ports(&self) -> bool {
        matches!(self.proto, IPPROTO_TCP | IPPROTO_UDP)
    }

    /// `nf_ct_invert_tuple()`: what a reply looks like. Addresses and
    /// ports swap; ICMP keeps id and code and maps the type (`None` if the
    /// type has no counterpart, e.g. an error or router advertisement).
    #[inline]
    pub const fn invert(&self) -> Option<Tuple> {
        if self.proto == IPPROTO_ICMP {
            match icmp_invert_type(self.icmp_type()) {
                Some(t) => Some(Tuple::icmp(
                    self.dst,
                    self.src,
                    self.icmp_id(),
                    t,
                    self.icmp_code(),
                )),
                None => None,
            }
        } else {
            Some(Tuple {
                src: self.dst,
                dst: self.src,
                src_u: self.dst_u,
                dst_u: self.src_u,
                proto: self.proto,
            })
        }
    }
}

/// Prints the tuple as conntrack-tools does inside a line, without the
/// trailing space: `src=A dst=B` then `sport=N dport=M` (TCP, UDP) or
/// `type=T code=C id=I` (ICMP), nothing more for other protocols
/// (libnetfilter_conntrack `__snprintf_address` + `__snprintf_proto`).
impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "src={} dst={}", self.src, self.dst)?;
        match self.proto {
            IPPROTO_TCP | IPPROTO_UDP | PROTO_UDPLITE | PROTO_SCTP | PROTO_DCCP => {
                write!(f, " sport={} dport={}", self.src_u, self.dst_u)
            }
            IPPROTO_ICMP => write!(
                f,
                " type={} code={} id={}",
                self.icmp_type(),
                self.icmp_code(),
                self.src_u
            ),
            // libnetfilter_conntrack prints GRE keys in hex.
            IPPROTO_GRE => write!(f, " srckey={:#x} dstkey={:#x}", self.src_u, self.dst_u),
            _ => Ok(()),
        }
    }
}

const PROTO_DCCP: u8 = 33;
const PROTO_SCTP: u8 = 132;
const PROTO_UDPLITE: u8 = 136;

/// libnetfilter_conntrack's `proto2str[]`: the L4 name `conntrack` prints,
/// `unknown` for protocols it has no name for.
pub const fn proto_name(proto: u8) -> &'static str {
    match proto {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_ICMP => "icmp",
        PROTO_UDPLITE => "udplite",
        PROTO_SCTP => "sctp",
        PROTO_DCCP => "dccp",
        47 => "gre",
        58 => "icmpv6",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

    #[test]
    fn udp_tuple_inverts_by_swapping() {
        let t = Tuple::udp(A, 40002, B, 5000);
        let r = t.invert().unwrap();
        assert_eq!(r, Tuple::udp(B, 5000, A, 40002));
        assert_eq!(r.invert(), Some(t));
    }

    #[test]
    fn icmp_echo_inverts_to_echo_reply_keeping_id_and_code() {
        let t = Tuple::icmp(A, B, 7003, icmp_type::ECHO, 0);
        let r = t.invert().unwrap();
        assert_eq!(
            (r.src, r.dst, r.icmp_id(), r.icmp_type(), r.icmp_code()),
            (B, A, 7003, 0, 0)
        );
        for (q, a) in [(8, 0), (13, 14), (15, 16), (17, 18)] {
            assert_eq!(icmp_invert_type(q), Some(a));
            assert_eq!(icmp_invert_type(a), Some(q));
        }
    }

    #[test]
    fn icmp_errors_do_not_invert() {
        for t in [3, 4, 5, 9, 10, 11, 12, 19] {
            assert_eq!(Tuple::icmp(A, B, 1, t, 0).invert(), None, "type {t}");
        }
    }

    #[test]
    fn display_matches_conntrack_tools() {
        assert_eq!(
            Tuple::tcp(A, 34100, B, 8080).to_string(),
            "src=192.0.2.2 dst=198.51.100.2 sport=34100 dport=8080"
        );
        assert_eq!(
            Tuple::icmp(A, B, 7003, 8, 0).to_string(),
            "src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=7003"
        );
        assert_eq!(
            Tuple::generic(99, A, B).to_string(),
            "src=192.0.2.2 dst=198.51.100.2"
        );
    }
}
