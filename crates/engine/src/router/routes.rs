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
    /// A Bloom filter over `local`'s addresses (two bits each, about eight
    /// bits per address): most forwarded packets learn they are not for the
    /// router from these few kilobytes, which stay in cache, instead of
    /// probing the map, which a router of 20,000 interfaces (40,000 local
    /// addresses) cannot keep there.
    local_bits: Vec<u64>,
}

/// What kind of entry of the `local` table an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// One of the router's own addresses.
    Unicast,
    /// A directed broadcast of one of its networks.
    Broadcast,
}

/// The two bits of `addr` in a filter of `len` words (a power of two).
fn filter_bits(addr: u32, len: usize) -> [usize; 2] {
    let bits = (len * 64).trailing_zeros();
    let h1 = u64::from(addr).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits);
    let h2 = u64::from(addr ^ 0x5BD1_E995).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) >> (64 - bits);
    [h1 as usize, h2 as usize]
}

impl Routes {
    /// Adds an entry to the local table; an address already there keeps its kind.
    pub fn add_local(&mut self, addr: Ipv4Addr, kind: Local) {
        let addr = u32::from(addr);
        self.local.entry(addr).or_insert(kind);
        if self.local.len() * 8 > self.local_bits.len() * 64 {
            // Grown past eight bits an address: rebuild twice as large
            // (the filter's bits do not depend on the order of the keys).
            let words = (self.local.len() * 8).div_ceil(64).next_power_of_two();
            self.local_bits = vec![0; words];
            let keys: Vec<u32> = self.local.keys().copied().collect();
            keys.into_iter().for_each(|a| self.set_local_bits(a));
        } else {
            self.set_local_bits(addr);
        }
    }

    fn set_local_bits(&mut self, addr: u32) {
        for b in filter_bits(addr, self.local_bits.len()) {
            self.local_bits[b / 64] |= 1 << (b % 64);
        }
    }

    pub fn local(&self, addr: Ipv4Addr) -> Option<Local> {
        let addr = u32::from(addr);
        let maybe = !self.local_bits.is_empty()
            && filter_bits(addr, self.local_bits.len())
                .iter()
                .all(|&b| self.local_bits[b / 64] & (1 << (b % 64)) != 0);
        if !maybe {
            return None;
        }
        self.local.get(&addr).copied()
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
    fn local_addresses_pass_the_filter_and_others_mostly_do_not() {
        let mut r = Routes::default();
        let addr = |i: u32| Ipv4Addr::from(0xC612_0000 + 4 * i + 1);
        for i in 0..10_000 {
            r.add_local(addr(i), Local::Unicast);
        }
        assert!((0..10_000).all(|i| r.local(addr(i)) == Some(Local::Unicast)));
        let others = (0..10_000).map(|i| Ipv4Addr::from(0xC612_0000 + 4 * i + 2));
        let passed = others
            .filter(|&a| {
                let [b1, b2] = filter_bits(u32::from(a), r.local_bits.len());
                let set = |b: usize| r.local_bits[b / 64] & (1 << (b % 64)) != 0;
                assert_eq!(r.local(a), None);
                set(b1) && set(b2)
            })
            .count();
        assert!(passed < 1_000, "{passed} false positives in 10,000");
    }

    #[test]
    fn no_default_no_route() {
        let mut r = Routes::default();
        r.add(cidr("198.51.100.0/24"), Route { port: 1, via: None });
        assert_eq!(r.lookup("203.0.113.9".parse().unwrap()), None);
    }
}
