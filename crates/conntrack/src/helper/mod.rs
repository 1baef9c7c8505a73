//! Connection tracking helpers (`nf_conntrack_helper`;
//! reference/helpers-and-expectations.md §4–§9): the helpers Linux 6.x
//! ships for IPv4 — `ftp`, `tftp`, `irc`, `sip`, `snmp`, `netbios-ns` —
//! with their ports and expectation policies, and the parsers that read
//! their control channels.
//!
//! A helper is attached to an entry explicitly (`-j CT --helper NAME`,
//! [`crate::Conntrack::set_helper`]), by an expectation (the child gets
//! the expectation's helper), or by port when the teaching sysctl
//! `nf_conntrack_helper` is 1 (removed from Linux in 6.0; see
//! [`crate::Sysctls::auto_helper`]). It runs in the confirm hook through
//! [`crate::Conntrack::help`], which creates the expectations itself when
//! the connection is not NATed, and otherwise hands a [`NatJob`] to the NAT
//! layer (ctsim-netfilter `helper`), which rewrites the payload and inserts
//! the expectation, as `nf_nat_ftp` and friends do.
//!
//! The parsers are pure functions over payload bytes (`ftp`, `irc`, `sip`,
//! `tftp`); the table glue that knows entries lives in `table/help.rs`.

use std::net::Ipv4Addr;

use crate::expect::NewExpectation;
use crate::seqadj::SeqAdj;
use crate::tcp::Dir;
use crate::time::Duration;
use crate::tuple::{IPPROTO_TCP, IPPROTO_UDP};

pub mod ftp;
pub mod irc;
pub mod sip;
pub mod tftp;

/// Which helper function runs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HelperKind {
    /// `nf_conntrack_ftp`.
    Ftp,
    /// `nf_conntrack_tftp`.
    Tftp,
    /// `nf_conntrack_irc`.
    Irc,
    /// `nf_conntrack_sip`.
    Sip,
    /// `nf_conntrack_snmp` (the broadcast helper plus `nf_nat_snmp_basic`).
    Snmp,
    /// `nf_conntrack_netbios_ns` (the broadcast helper).
    NetbiosNs,
}

/// One expectation policy (`struct nf_conntrack_expect_policy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Policy {
    /// `max_expected` per master (0: unlimited).
    pub max_expected: u32,
    /// Expectation lifetime.
    pub timeout: Duration,
    /// The class name `/proc/net/nf_conntrack_expect` prints after `/`
    /// (`sip/audio`); empty for single-policy helpers.
    pub name: &'static str,
}

/// A registered helper (`struct nf_conntrack_helper`, IPv4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HelperDef {
    /// The name `CT --helper` and `conntrack -L` use.
    pub name: &'static str,
    pub kind: HelperKind,
    /// L4 protocol.
    pub proto: u8,
    /// The server port (`tuplehash.tuple.src.u.all`): automatic assignment
    /// matches it against the connection's destination port.
    pub port: u16,
    /// Expectation policies, indexed by class.
    pub policies: &'static [Policy],
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const FTP_POLICY: [Policy; 1] = [Policy {
    max_expected: 1,
    timeout: secs(300),
    name: "",
}];
/// `max_dcc_channels` 8, `dcc_timeout` 300 s.
const IRC_POLICY: [Policy; 1] = [Policy {
    max_expected: 8,
    timeout: secs(300),
    name: "",
}];
/// `nf_conntrack_sip.c`'s `sip_exp_policy[]`.
const SIP_POLICY: [Policy; 4] = [
    Policy {
        max_expected: 1,
        timeout: secs(3 * 60),
        name: "signalling",
    },
    Policy {
        max_expected: 2 * 2,
        timeout: secs(3 * 60),
        name: "audio",
    },
    Policy {
        max_expected: 2 * 2,
        timeout: secs(3 * 60),
        name: "video",
    },
    Policy {
        max_expected: 2,
        timeout: secs(3 * 60),
        name: "image",
    },
];
/// `nf_conntrack_snmp`'s module parameter `timeout` (30 s).
const SNMP_POLICY: [Policy; 1] = [Policy {
    max_expected: 1,
    timeout: secs(30),
    name: "",
}];
const NETBIOS_POLICY: [Policy; 1] = [Policy {
    max_expected: 1,
    timeout: secs(3),
    name: "",
}];

/// Every helper, in registration order (the order automatic assignment
/// finds them; ports never overlap within a protocol).
pub const HELPERS: [HelperDef; 7] = [
    HelperDef {
        name: "ftp",
        kind: HelperKind::Ftp,
        proto: IPPROTO_TCP,
        port: 21,
        policies: &FTP_POLICY,
    },
    HelperDef {
        name: "tftp",
        kind: HelperKind::Tftp,
        proto: IPPROTO_UDP,
        port: 69,
        policies: &FTP_POLICY,
    },
    HelperDef {
        name: "irc",
        kind: HelperKind::Irc,
        proto: IPPROTO_TCP,
        port: 6667,
        policies: &IRC_POLICY,
    },
    HelperDef {
        name: "sip",
        kind: HelperKind::Sip,
        proto: IPPROTO_UDP,
        port: 5060,
        policies: &SIP_POLICY,
    },
    HelperDef {
        name: "sip",
        kind: HelperKind::Sip,
        proto: IPPROTO_TCP,
        port: 5060,
        policies: &SIP_POLICY,
    },
    HelperDef {
        name: "snmp",
        kind: HelperKind::Snmp,
        proto: IPPROTO_UDP,
        port: 161,
        policies: &SNMP_POLICY,
    },
    HelperDef {
        name: "netbios-ns",
        kind: HelperKind::NetbiosNs,
        proto: IPPROTO_UDP,
        port: 137,
        policies: &NETBIOS_POLICY,
    },
];

/// `nf_conntrack_helper_try_module_get()`'s lookup: by name and L4
/// protocol (the CT target's `--helper ftp` on a UDP rule finds nothing).
pub fn by_name(name: &str, proto: u8) -> Option<&'static HelperDef> {
    HELPERS.iter().find(|h| h.name == name && h.proto == proto)
}

/// `__nf_ct_helper_find()`: the helper whose server port is `port` for
/// protocol `proto` (automatic assignment).
pub fn by_port(proto: u8, port: u16) -> Option<&'static HelperDef> {
    HELPERS.iter().find(|h| h.proto == proto && h.port == port)
}

/// What the router knows about a packet that a helper may need
/// (`skb->sk` and `skb_rtable(skb)` in Linux).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct HelpCtx {
    /// The packet was generated by a socket of this node (LOCAL_OUT path).
    pub local: bool,
    /// The packet leaves by a broadcast route: the netmask of the output
    /// device's primary address whose broadcast address equals the
    /// destination (`None`: not a broadcast, or no such address). Only the
    /// broadcast helpers (`snmp`, `netbios-ns`) read it.
    pub broadcast_mask: Option<Ipv4Addr>,
}

/// The FTP command a [`NatJob`] rewrites (`enum nf_ct_ftp_type`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FtpType {
    /// `PORT a,b,c,d,p1,p2`.
    Port,
    /// `227 ... a,b,c,d,p1,p2`.
    Pasv,
    /// `EPRT |1|a.b.c.d|port|`.
    Eprt,
    /// `229 ... (|||port|)`.
    Epsv,
}

/// Which NAT helper must handle a [`NatJob`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NatKind {
    /// `nf_nat_ftp`.
    Ftp(FtpType),
    /// `nf_nat_irc`: the `ip port` text of a DCC offer.
    Irc,
}

/// What a helper asks of the NAT layer on a NATed connection: rewrite
/// `len` payload bytes at `off` (offset from the start of the IP
/// datagram) to name the NAT side, choose the expectation's port
/// (`nf_nat_exp_find_port()`, trying the parsed port first) and insert
/// `exp`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NatJob {
    pub kind: NatKind,
    /// The expectation as the conntrack helper built it (parsed port).
    pub exp: NewExpectation,
    /// Start of the matched text in the datagram.
    pub off: usize,
    /// Length of the matched text.
    pub len: usize,
    /// The packet's direction.
    pub dir: Dir,
}

/// What [`crate::Conntrack::help`] decided.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HelpVerdict {
    /// Nothing (more) to do: the packet goes on.
    Accept,
    /// The helper drops the packet; the text is Linux's
    /// `nf_ct_helper_log()` message (e.g. "partial matching of `PORT'").
    Drop(&'static str),
    /// A NATed connection: the NAT layer must finish (see [`NatJob`]).
    Nat(NatJob),
    /// A NATed SIP connection: the NAT layer runs the SIP helper itself
    /// with its rewriting hooks ([`crate::Conntrack::help_sip_nat`]), as
    /// `nf_conntrack_sip` calls `nf_nat_sip_hooks` while it parses.
    SipNat,
}

/// How an expected connection's NAT follows its master
/// (`exp->dir`, `exp->saved_addr`, `exp->saved_proto` with
/// `expectfn = nf_nat_follow_master`; reference/nat.md §7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FollowMaster {
    /// The master's direction the expected connection goes in.
    pub dir: Dir,
    /// The port the expected connection is DNATed to (what the payload
    /// said before NAT).
    pub saved_port: u16,
    /// Which `expectfn` binds the child.
    pub expectfn: ExpectFn,
}

/// The NAT callback an expectation carries (`exp->expectfn`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ExpectFn {
    /// `nf_nat_follow_master()`: SNAT to where the master sends, DNAT to
    /// the master's peer and `saved_port`.
    FollowMaster,
    /// `nf_nat_sip_expected()`: DNAT to `saved_addr:saved_port`; SNAT as
    /// the paired media expectation says, else like the master when the
    /// connection comes from the master's address.
    Sip {
        /// `exp->saved_addr`: the address the SDP or Contact named.
        saved_addr: Ipv4Addr,
        /// The expectation's class (signalling connections get no pair
        /// search).
        class: u8,
    },
}

/// SIP's per-connection state (`struct nf_ct_sip_master`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SipState {
    /// CSeq of the last REGISTER that created (or would have created) an
    /// expectation.
    pub register_cseq: u32,
    /// CSeq of the last INVITE whose SDP was accepted.
    pub invite_cseq: u32,
    /// The Via port a phone listens on when it sends from another port
    /// (0: none); NAT sends replies there.
    pub forced_dport: u16,
}

/// FTP's per-connection state (`struct nf_ct_ftp_master`): per
/// direction, up to two sequence numbers that directly follow a segment
/// ending in `\n` (`NUM_SEQ_TO_REMEMBER`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FtpState {
    pub seq_aft_nl: [[u32; 2]; 2],
    pub seq_aft_nl_num: [u8; 2],
}

/// Per-entry helper data (the `nf_conn_help` and `nf_conn_seqadj`
/// extensions, and the NAT data an expectation left for its child). Boxed
/// in the entry and allocated only for entries that have a helper, a
/// master with NAT to follow, or a sequence adjustment, so entries without
/// helpers pay one pointer.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct HelpExt {
    /// Per-direction sequence adjustment.
    pub seqadj: [SeqAdj; 2],
    /// FTP's newline tracking.
    pub ftp: FtpState,
    /// SIP's CSeq and forced port.
    pub sip: SipState,
    /// Set on an expected connection whose expectation was made by a NAT
    /// helper: consumed by the NAT layer's `follow_master`.
    pub follow: Option<FollowMaster>,
}

/// The `nf_ct_helper_log()` messages helpers drop packets with.
pub mod msg {
    /// `nf_ct_expect_related()` failed.
    pub const CANNOT_ADD_EXPECTATION: &str = "cannot add expectation";
    /// `nf_nat_exp_find_port()` found no free port.
    pub const ALL_PORTS_IN_USE: &str = "all ports in use";
    /// The NAT helper could not rewrite the payload.
    pub const CANNOT_MANGLE: &str = "cannot mangle packet";
    /// `nf_conntrack_sip`'s messages.
    pub const SIP_CANNOT_GET_CODE: &str = "cannot get code";
    pub const SIP_CANNOT_PARSE_CSEQ: &str = "cannot parse cseq";
    pub const SIP_CANNOT_GET_CSEQ: &str = "cannot get cseq";
    pub const SIP_CANNOT_PARSE_CONTACT: &str = "cannot parse contact";
    pub const SIP_CANNOT_PARSE_EXPIRES: &str = "cannot parse expires";
    /// Linux adds the port: "wrong port %u".
    pub const SIP_WRONG_PORT: &str = "wrong port";
    pub const SIP_CANNOT_PARSE_SDP: &str = "cannot parse SDP message";
    pub const SIP_CANNOT_ADD_VOICE: &str = "cannot add expectation for voice";
    pub const SIP_CANNOT_MANGLE_SDP: &str = "cannot mangle SDP";
    pub const SIP_CANNOT_NAT: &str = "cannot NAT SIP message";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_name_and_port() {
        assert_eq!(by_name("ftp", IPPROTO_TCP).unwrap().port, 21);
        assert!(by_name("ftp", IPPROTO_UDP).is_none());
        assert_eq!(by_name("sip", IPPROTO_TCP).unwrap().kind, HelperKind::Sip);
        assert_eq!(by_port(IPPROTO_UDP, 69).unwrap().name, "tftp");
        assert_eq!(by_port(IPPROTO_UDP, 137).unwrap().name, "netbios-ns");
        assert!(by_port(IPPROTO_TCP, 69).is_none());
        // sip_exp_policy: audio and video 4, image 2, all 180 s.
        let sip = by_name("sip", IPPROTO_UDP).unwrap();
        assert_eq!(sip.policies[1].max_expected, 4);
        assert_eq!(sip.policies[3].timeout, Duration::from_secs(180));
    }
}
