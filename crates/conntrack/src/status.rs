//! Status bits, ctinfo, iptables states and event bits, numbered as in
//! Linux (include/uapi/linux/netfilter/nf_conntrack_common.h;
//! reference/conntrack-core.md §2–3).

use std::fmt;

use crate::tcp::Dir;

/// `ct->status`: a flag set because `conntrack` prints it, with Linux's bit
/// numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Status(pub u32);

impl Status {
    /// Bit 0: created from an expectation.
    pub const EXPECTED: Status = Status(1 << 0);
    /// Bit 1: a packet was seen in the REPLY direction.
    pub const SEEN_REPLY: Status = Status(1 << 1);
    /// Bit 2: never early-dropped; set by the L4 tracker.
    pub const ASSURED: Status = Status(1 << 2);
    /// Bit 3: inserted into the hash table.
    pub const CONFIRMED: Status = Status(1 << 3);
    /// Bit 4: reply tuple altered by a source manip.
    pub const SRC_NAT: Status = Status(1 << 4);
    /// Bit 5: reply tuple altered by a destination manip.
    pub const DST_NAT: Status = Status(1 << 5);
    /// Bit 6: TCP sequence numbers need adjusting.
    pub const SEQ_ADJUST: Status = Status(1 << 6);
    /// Bit 7: source-manip binding set up.
    pub const SRC_NAT_DONE: Status = Status(1 << 7);
    /// Bit 8: destination-manip binding set up.
    pub const DST_NAT_DONE: Status = Status(1 << 8);
    /// Bit 9: being deleted.
    pub const DYING: Status = Status(1 << 9);
    /// Bit 10: the timeout must not be refreshed.
    pub const FIXED_TIMEOUT: Status = Status(1 << 10);
    /// Bit 11: a template (CT target), not a connection.
    pub const TEMPLATE: Status = Status(1 << 11);
    /// Bit 12: IPS_UNTRACKED in the uapi, re-used in-kernel as
    /// IPS_NAT_CLASH (entry inserted by its reply tuple only after a clash).
    pub const NAT_CLASH: Status = Status(1 << 12);
    /// Bit 12 under its uapi name.
    pub const UNTRACKED: Status = Status::NAT_CLASH;
    /// Bit 13: helper assigned explicitly.
    pub const HELPER: Status = Status(1 << 13);
    /// Bit 14: in the flowtable fast path.
    pub const OFFLOAD: Status = Status(1 << 14);
    /// Bit 15: offloaded to hardware.
    pub const HW_OFFLOAD: Status = Status(1 << 15);

    /// `IPS_NAT_MASK`.
    pub const NAT_MASK: Status = Status(Status::SRC_NAT.0 | Status::DST_NAT.0);
    /// `IPS_NAT_DONE_MASK`.
    pub const NAT_DONE_MASK: Status = Status(Status::SRC_NAT_DONE.0 | Status::DST_NAT_DONE.0);

    const NAMES: [&'static str; 16] = [
        "EXPECTED",
        "SEEN_REPLY",
        "ASSURED",
        "CONFIRMED",
        "SRC_NAT",
        "DST_NAT",
        "SEQ_ADJUST",
        "SRC_NAT_DONE",
        "DST_NAT_DONE",
        "DYING",
        "FIXED_TIMEOUT",
        "TEMPLATE",
        "NAT_CLASH",
        "HELPER",
        "OFFLOAD",
        "HW_OFFLOAD",
    ];

    /// All bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: Status) -> bool {
        self.0 & other.0 == other.0
    }
    /// Any bit of `other` is set.
    #[inline]
    pub const fn intersects(self, other: Status) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the bits of `other`.
    #[inline]
    pub fn insert(&mut self, other: Status) {
        self.0 |= other.0;
    }
    /// Clears the bits of `other`.
    #[inline]
    pub fn remove(&mut self, other: Status) {
        self.0 &= !other.0;
    }
}

impl std::ops::BitOr for Status {
    type Output = Status;
    fn bitor(self, rhs: Status) -> Status {
        Status(self.0 | rhs.0)
    }
}

/// `EXPECTED|SEEN_REPLY|...` in bit order; `0` when empty.
impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut first = true;
        for (bit, name) in Status::NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let rest = self.0 & !0xffff;
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// `enum ip_conntrack_info`: what a packet is to its entry. The value
/// travels with the packet (`skb->_nfct`'s low bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CtInfo {
    /// ORIGINAL-direction packet of an entry that has seen a reply.
    Established = 0,
    /// ORIGINAL-direction packet of an expected entry before any reply, or
    /// an ICMP error about a connection travelling in ORIGINAL direction.
    Related = 1,
    /// ORIGINAL-direction packet, no reply seen yet, not expected.
    New = 2,
    /// Any REPLY-direction packet of a normal lookup (`IP_CT_IS_REPLY`).
    EstablishedReply = 3,
    /// ICMP error whose quoted packet matches the REPLY tuple.
    RelatedReply = 4,
    /// Packet marked notrack (`IP_CT_UNTRACKED`); has no entry.
    Untracked = 7,
}

impl CtInfo {
    /// `IP_CT_IS_REPLY`.
    pub const IS_REPLY: u8 = 3;

    /// `CTINFO2DIR()`.
    #[inline]
    pub const fn dir(self) -> Dir {
        match self {
            CtInfo::EstablishedReply | CtInfo::RelatedReply => Dir::Reply,
            _ => Dir::Original,
        }
    }

    /// The iptables state this ctinfo matches (`--state`/`--ctstate`).
    #[inline]
    pub const fn state(self) -> CtState {
        match self {
            CtInfo::Established | CtInfo::EstablishedReply => CtState::Established,
            CtInfo::Related | CtInfo::RelatedReply => CtState::Related,
            CtInfo::New => CtState::New,
            CtInfo::Untracked => CtState::Untracked,
        }
    }

    /// Kernel name, e.g. `IP_CT_ESTABLISHED_REPLY`.
    pub const fn name(self) -> &'static str {
        match self {
            CtInfo::Established => "IP_CT_ESTABLISHED",
            CtInfo::Related => "IP_CT_RELATED",
            CtInfo::New => "IP_CT_NEW",
            CtInfo::EstablishedReply => "IP_CT_ESTABLISHED_REPLY",
            CtInfo::RelatedReply => "IP_CT_RELATED_REPLY",
            CtInfo::Untracked => "IP_CT_UNTRACKED",
        }
    }
}

/// The `-m state`/`-m conntrack --ctstate` states of a packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CtState {
    /// No conntrack and not untracked.
    Invalid,
    Established,
    Related,
    New,
    Untracked,
}

impl CtState {
    /// `XT_STATE_BIT()` mask value: INVALID 1, ESTABLISHED 2, RELATED 4, NEW
    /// 8, UNTRACKED 64.
    pub const fn mask(self) -> u32 {
        match self {
            CtState::Invalid => 1,
            CtState::Established => 2,
            CtState::Related => 4,
            CtState::New => 8,
            CtState::Untracked => 64,
        }
    }

    /// The iptables spelling.
    pub const fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "INVALID",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::New => "NEW",
            CtState::Untracked => "UNTRACKED",
        }
    }
}

impl fmt::Display for CtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Conntrack event bits (`enum ip_conntrack_events`, `IPCT_*`), cached on
/// an entry while a packet is in the hooks and delivered at confirm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventMask(pub u16);

impl EventMask {
    pub const NEW: EventMask = EventMask(1 << 0);
    pub const RELATED: EventMask = EventMask(1 << 1);
    pub const DESTROY: EventMask = EventMask(1 << 2);
    pub const REPLY: EventMask = EventMask(1 << 3);
    pub const ASSURED: EventMask = EventMask(1 << 4);
    /// TCP state change.
    pub const PROTOINFO: EventMask = EventMask(1 << 5);
    pub const HELPER: EventMask = EventMask(1 << 6);
    pub const MARK: EventMask = EventMask(1 << 7);
    pub const SEQADJ: EventMask = EventMask(1 << 8);
    pub const SECMARK: EventMask = EventMask(1 << 9);
    pub const LABEL: EventMask = EventMask(1 << 10);
    pub const SYNPROXY: EventMask = EventMask(1 << 11);

    const NAMES: [&'static str; 12] = [
        "NEW",
        "RELATED",
        "DESTROY",
        "REPLY",
        "ASSURED",
        "PROTOINFO",
        "HELPER",
        "MARK",
        "SEQADJ",
        "SECMARK",
        "LABEL",
        "SYNPROXY",
    ];

    /// Any bit of `other` is set.
    #[inline]
    pub const fn intersects(self, other: EventMask) -> bool {
        self.0 & other.0 != 0
    }
    /// Nothing set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for EventMask {
    type Output = EventMask;
    fn bitor(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for EventMask {
    fn bitor_assign(&mut self, rhs: EventMask) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..12)
            .filter(|b| self.0 & (1 << b) != 0)
            .map(|b| EventMask::NAMES[b])
            .collect();
        if names.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bits_have_linux_numbers() {
        let bits = [
            (Status::EXPECTED, 0),
            (Status::SEEN_REPLY, 1),
            (Status::ASSURED, 2),
            (Status::CONFIRMED, 3),
            (Status::SRC_NAT, 4),
            (Status::DST_NAT, 5),
            (Status::SEQ_ADJUST, 6),
            (Status::SRC_NAT_DONE, 7),
            (Status::DST_NAT_DONE, 8),
            (Status::DYING, 9),
            (Status::FIXED_TIMEOUT, 10),
            (Status::TEMPLATE, 11),
            (Status::NAT_CLASH, 12),
            (Status::HELPER, 13),
            (Status::OFFLOAD, 14),
            (Status::HW_OFFLOAD, 15),
        ];
        for (s, n) in bits {
            assert_eq!(s.0, 1 << n);
        }
        assert_eq!(Status::NAT_MASK.0, 0x30);
        assert_eq!(Status::NAT_DONE_MASK.0, 0x180);
        assert_eq!(
            format!("{:?}", Status::SEEN_REPLY | Status::ASSURED),
            "SEEN_REPLY|ASSURED"
        );
    }

    #[test]
    fn ctinfo_values_and_states() {
        assert_eq!(CtInfo::Established as u8, 0);
        assert_eq!(CtInfo::Related as u8, 1);
        assert_eq!(CtInfo::New as u8, 2);
        assert_eq!(CtInfo::EstablishedReply as u8, CtInfo::IS_REPLY);
        assert_eq!(CtInfo::RelatedReply as u8, 4);
        assert_eq!(CtInfo::Untracked as u8, 7);
        assert_eq!(CtInfo::RelatedReply.dir(), Dir::Reply);
        assert_eq!(CtInfo::Related.state(), CtState::Related);
        assert_eq!(CtInfo::EstablishedReply.state().to_string(), "ESTABLISHED");
        assert_eq!(CtState::Untracked.mask(), 64);
    }
}
