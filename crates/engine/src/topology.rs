//! Identifiers and addressing shared by every part of the engine.

use std::fmt;
use std::net::Ipv4Addr;

/// Index of a node in the order the scenario declared it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(pub u32);

/// Index of a link in the order the scenario declared it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LinkId(pub u32);

/// An interface address with its prefix length, as `ip addr` shows it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, len: u8) -> Self {
        Cidr {
            addr,
            len: len.min(32),
        }
    }

    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The directed broadcast address (none for /31 and /32, as Linux has none there).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.len < 31).then(|| Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One interface of a node, as the engine sees it.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub addr: Option<Cidr>,
    /// The link attached here and the direction packets sent from here take.
    pub link: Option<(LinkId, u8)>,
    pub mtu: u32,
    /// Address of the interface at the other end of the link.
    pub peer: Option<Ipv4Addr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_and_broadcast() {
        let c = Cidr::new(Ipv4Addr::new(192, 0, 2, 1), 24);
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(192, 0, 3, 1)));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(Cidr::new(Ipv4Addr::new(192, 0, 2, 1), 31).broadcast(), None);
        assert!(Cidr::new(Ipv4Addr::UNSPECIFIED, 0).contains(Ipv4Addr::new(8, 8, 8, 8)));
    }
}
