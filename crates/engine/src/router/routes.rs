//! The routing table: connected and static routes, longest prefix first.
//!
//! One hash map per prefix length in use, probed from the longest length
//! down, so a lookup costs at most 33 probes whatever the table's size.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

use crate::topology::Cidr;

/// Where a route sends packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Outgoing interface.
    pub port: u16,
    /// Gateway, or `None` for a connected network (the destination is the next hop).
    pub via: Option<Ipv4Addr>,
}

/// A hasher for keys that are already well mixed enough: one multiply.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    }
}

type AddrMap = HashMap<u32, Route, BuildHasherDefault<AddrHasher>>;

/// Routes by prefix, longest match wins; the first route added for a prefix stays.
#[derive(Default)]
pub struct Routes {
    /// (prefix length, networks of that length), longest first.
    by_len: Vec<(u8, AddrMap)>,
    /// Linux's `local` table: the router's own and broadcast addresses,
    /// consulted before the main table.
    local: HashMap<u32, Local, BuildHasherDefault<AddrHasher>>,
}

/// What kind of entry of the `local` table an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// One of the router's own addresses.
    Unicast,
    /// A directed broadcast of one of its networks.
    Broadcast,
}

impl Routes {
    /// Adds an entry to the local table; an address already there keeps its kind.
    pub fn add_local(&mut self, addr: Ipv4Addr, kind: Local) {
        self.local.entry(u32::from(addr)).or_insert(kind);
    }

    pub fn local(&self, addr: Ipv4Addr) -> Option<Local> {
        self.local.get(&u32::from(addr)).copied()
    }

    pub fn add(&mut self, to: Cidr, route: Route) {
        let i = match self.by_len.iter().position(|(len, _)| *len <= to.len) {
            Some(i) if self.by_len[i].0 == to.len => i,
            Some(i) => {
                self.by_len.insert(i, (to.len, AddrMap::default()));
                i
            }
            None => {
                self.by_len.push((to.len, AddrMap::default()));
                self.by_len.len() - 1
            }
        };
        self.by_len[i]
            .1
            .entry(u32::from(to.network()))
            .or_insert(route);
    }

    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Route> {
        let dst = u32::from(dst);
        self.by_len.iter().find_map(|(len, nets)| {
            let net = dst & Cidr::new(Ipv4Addr::UNSPECIFIED, *len).mask();
            nets.get(&net).copied()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        let (a, l) = s.split_once('/').unwrap();
        Cidr::new(a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn longest_prefix_wins() {
        let mut r = Routes::default();
        r.add(
            cidr("0.0.0.0/0"),
            Route {
                port: 0,
                via: Some(Ipv4Addr::new(192, 0, 2, 254)),
            },
        );
        r.add(cidr("198.51.100.0/24"), Route { port: 1, via: None });
        r.add(cidr("198.51.100.128/25"), Route { port: 2, via: None });
        assert_eq!(r.lookup("198.51.100.200".parse().unwrap()).unwrap().port, 2);
        assert_eq!(r.lookup("198.51.100.2".parse().unwrap()).unwrap().port, 1);
        assert_eq!(r.lookup("203.0.113.9".parse().unwrap()).unwrap().port, 0);
    }

    #[test]
    fn no_default_no_route() {
        let mut r = Routes::default();
        r.add(cidr("198.51.100.0/24"), Route { port: 1, via: None });
        assert_eq!(r.lookup("203.0.113.9".parse().unwrap()), None);
    }
}
