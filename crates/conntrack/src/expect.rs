//! Expectations (`struct nf_conntrack_expect`;
//! reference/helpers-and-expectations.md §1–3). Helpers are not written
//! yet: this module holds the table, its limits, expiry, matching of new
//! connections, and the `conntrack -L expect` format, so that helpers only
//! have to call [`crate::Conntrack::expect_related`].

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::helper::FollowMaster;
use crate::time::{Duration, Instant};
use crate::tuple::{Tuple, Zone};
use crate::EntryKey;

/// `NF_CT_EXPECT_PERMANENT`: not removed when matched.
pub const PERMANENT: u8 = 0x1;
/// `NF_CT_EXPECT_INACTIVE`: ignored by lookups.
pub const INACTIVE: u8 = 0x2;
/// `NF_CT_EXPECT_USERSPACE`: created through ctnetlink.
pub const USERSPACE: u8 = 0x4;

/// Which source parts of the expected tuple must match (destination
/// address, port and protocol always match exactly).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ExpectMask {
    /// Source address mask: 255.255.255.255 (given) or 0.0.0.0 (any).
    pub src: Ipv4Addr,
    /// Source port mask: 0xffff (given) or 0 (any).
    pub src_port: u16,
}

/// What a helper asks for (`nf_ct_expect_init()` + policy).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NewExpectation {
    /// Expected ORIGINAL tuple of the future connection.
    pub tuple: Tuple,
    pub mask: ExpectMask,
    /// The connection that creates it (must be a live entry).
    pub master: EntryKey,
    /// Policy class (index into the helper's policies).
    pub class: u8,
    /// `PERMANENT` / `INACTIVE` / `USERSPACE` bits.
    pub flags: u8,
    /// Helper name printed as `helper=`.
    pub helper: &'static str,
    /// Helper to attach to the expected connection, if any.
    pub child_helper: Option<&'static str>,
    /// `policy[class].timeout`.
    pub timeout: Duration,
    /// `policy[class].max_expected` (0 = unlimited).
    pub max_expected: u32,
    /// Set by NAT helpers (`expectfn = nf_nat_follow_master`): the
    /// expected connection's NAT bindings follow the master's.
    pub nat: Option<FollowMaster>,
}

/// Why `expect_related()` refused (the kernel's errno).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ExpectError {
    /// The master is gone or dying.
    NoMaster,
    /// `-EALREADY`: an identical expectation of another master/class exists.
    Already,
    /// `-EBUSY`: an overlapping expectation exists.
    Busy,
    /// `-EMFILE`: per-master limit or `nf_conntrack_expect_max` reached.
    TooMany,
}

impl std::fmt::Display for ExpectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExpectError::NoMaster => "master connection is gone",
            ExpectError::Already => "expectation already exists",
            ExpectError::Busy => "overlapping expectation exists",
            ExpectError::TooMany => "too many expectations",
        })
    }
}

impl std::error::Error for ExpectError {}

/// A live expectation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Expectation {
    pub tuple: Tuple,
    pub mask: ExpectMask,
    pub master: EntryKey,
    /// The master's original tuple (printed as `master-src=`…).
    pub master_tuple: Tuple,
    pub zone: Zone,
    pub class: u8,
    pub flags: u8,
    pub helper: &'static str,
    pub child_helper: Option<&'static str>,
    /// NAT to follow (see [`NewExpectation::nat`]).
    pub nat: Option<FollowMaster>,
    /// Absolute expiry.
    pub expires: Instant,
    /// Creation order (listing order).
    pub seq: u64,
}

impl Expectation {
    /// `nf_ct_tuple_mask_cmp()` plus zone: does a new connection with
    /// original tuple `t` in `zone` match?
    pub fn matches(&self, t: &Tuple, zone: Zone) -> bool {
        let m = u32::from(self.mask.src);
        t.proto == self.tuple.proto
            && t.dst == self.tuple.dst
            && t.dst_u == self.tuple.dst_u
            && u32::from(t.src) & m == u32::from(self.tuple.src) & m
            && t.src_u & self.mask.src_port == self.tuple.src_u & self.mask.src_port
            && zone == self.zone
    }

    /// Same tuple and mask (`expect_matches()`).
    pub(crate) fn same_as(&self, other: &Expectation) -> bool {
        self.tuple == other.tuple && self.mask == other.mask && self.zone == other.zone
    }

    /// Overlap under the intersection of both masks (`expect_clash()`).
    pub(crate) fn clashes(&self, other: &Expectation) -> bool {
        let m = u32::from(self.mask.src) & u32::from(other.mask.src);
        let pm = self.mask.src_port & other.mask.src_port;
        self.tuple.proto == other.tuple.proto
            && self.tuple.dst == other.tuple.dst
            && self.tuple.dst_u == other.tuple.dst_u
            && u32::from(self.tuple.src) & m == u32::from(other.tuple.src) & m
            && self.tuple.src_u & pm == other.tuple.src_u & pm
            && self.zone == other.zone
    }

    /// The `conntrack -L expect` line (without newline) at `now`.
    pub fn line(&self, now: Instant) -> String {
        let mut s = String::with_capacity(220);
        let left = self.expires - now;
        let _ = write!(s, "{} proto={} ", left.as_secs(), self.tuple.proto);
        let _ = write!(s, "{} ", self.tuple);
        // ctnetlink_exp_dump_mask(): destination parts all ones.
        let _ = write!(s, "mask-src={} mask-dst=255.255.255.255 ", self.mask.src);
        if self.tuple.has_ports() {
            let _ = write!(s, "sport={} dport=65535 ", self.mask.src_port);
        }
        let m = &self.master_tuple;
        let _ = write!(s, "master-src={} master-dst={} ", m.src, m.dst);
        if m.has_ports() {
            let _ = write!(s, "sport={} dport={} ", m.sport(), m.dport());
        }
        if self.zone != Zone::DEFAULT {
            let _ = write!(s, "zone={} ", self.zone.0);
        }
        // conntrack-tools joins the flags with commas (Linux 6.18 with
        // conntrack v1.4.7: `PERMANENT,INACTIVE class=0 helper=sip`).
        let mut sep = "";
        for (bit, name) in [
            (PERMANENT, "PERMANENT"),
            (INACTIVE, "INACTIVE"),
            (USERSPACE, "USERSPACE"),
        ] {
            if self.flags & bit != 0 {
                s.push_str(sep);
                s.push_str(name);
                sep = ",";
            }
        }
        if !sep.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "class={} helper={}", self.class, self.helper);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_line_matches_linux() {
        // conntrack-tool-formats.md §6, captured on Linux 6.18 (FTP, no NAT
        // on the expected tuple).
        let c = Ipv4Addr::new(192, 0, 2, 2);
        let s = Ipv4Addr::new(198, 51, 100, 2);
        let e = Expectation {
            tuple: Tuple::tcp(c, 0, s, 30000),
            mask: ExpectMask {
                src: Ipv4Addr::BROADCAST,
                src_port: 0,
            },
            master: EntryKey { idx: 0, gen: 0 },
            master_tuple: Tuple::tcp(c, 35006, s, 21),
            zone: Zone::DEFAULT,
            class: 0,
            flags: 0,
            helper: "ftp",
            child_helper: None,
            nat: None,
            expires: Instant(298_500_000_000),
            seq: 0,
        };
        assert_eq!(
            e.line(Instant(0)),
            "298 proto=6 src=192.0.2.2 dst=198.51.100.2 sport=0 dport=30000 mask-src=255.255.255.255 \
             mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
             sport=35006 dport=21 class=0 helper=ftp"
        );
        assert!(e.matches(&Tuple::tcp(c, 20, s, 30000), Zone::DEFAULT));
        assert!(!e.matches(&Tuple::tcp(s, 20, s, 30000), Zone::DEFAULT));
        assert!(!e.matches(&Tuple::tcp(c, 20, s, 30000), Zone(1)));
        let snmp = Expectation {
            tuple: Tuple::udp(Ipv4Addr::new(192, 0, 2, 255), 161, c, 42161),
            mask: ExpectMask {
                src: Ipv4Addr::new(255, 255, 255, 0),
                src_port: 0xffff,
            },
            master_tuple: Tuple::udp(c, 42161, Ipv4Addr::new(192, 0, 2, 255), 161),
            flags: PERMANENT,
            helper: "snmp",
            expires: Instant(29_200_000_000),
            ..e
        };
        assert_eq!(
            snmp.line(Instant(0)),
            "29 proto=17 src=192.0.2.255 dst=192.0.2.2 sport=161 dport=42161 mask-src=255.255.255.0 \
             mask-dst=255.255.255.255 sport=65535 dport=65535 master-src=192.0.2.2 master-dst=192.0.2.255 \
             sport=42161 dport=161 PERMANENT class=0 helper=snmp"
        );
        // A SIP REGISTER's expectation before the registrar's 200 OK
        // (Linux 6.18, conntrack v1.4.7): flags joined by commas.
        let reg = Expectation {
            tuple: Tuple::udp(s, 0, c, 5060),
            mask: ExpectMask {
                src: Ipv4Addr::BROADCAST,
                src_port: 0,
            },
            master_tuple: Tuple::udp(c, 5060, s, 5060),
            flags: PERMANENT | INACTIVE,
            helper: "sip",
            expires: Instant(179_500_000_000),
            ..e
        };
        assert_eq!(
            reg.line(Instant(0)),
            "179 proto=17 src=198.51.100.2 dst=192.0.2.2 sport=0 dport=5060 mask-src=255.255.255.255 \
             mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.2 master-dst=198.51.100.2 \
             sport=5060 dport=5060 PERMANENT,INACTIVE class=0 helper=sip"
        );
    }
}
