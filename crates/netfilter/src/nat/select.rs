//! Choosing the tuple of a binding: `get_unique_tuple()`,
//! `find_best_ips_proto()` and `nf_nat_l4proto_unique_tuple()` of
//! nf_nat_core.c (reference/nat.md §3–§4).

use std::net::Ipv4Addr;

use ctsim_conntrack::tuple::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
use ctsim_conntrack::{Conntrack, EntryKey, Manip, Tuple, Zone};

use crate::model::NatRange;

/// `NF_NAT_MAX_ATTEMPTS`: tuples tried per round of the port search.
const MAX_ATTEMPTS: u32 = 128;
/// The port search stops halving its window below this many attempts.
const MIN_ATTEMPTS: u32 = 16;

/// A range as `nf_nat_range2` flags see it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Range {
    /// `NF_NAT_RANGE_MAP_IPS`: min and max address, host order.
    ips: Option<(u32, u32)>,
    /// `NF_NAT_RANGE_PROTO_SPECIFIED`: min and max port (or ICMP id).
    ports: Option<(u16, u16)>,
    /// `NF_NAT_RANGE_PROTO_RANDOM_ALL` (`--random` or `--random-fully`):
    /// no "keep what the packet has", and a random search offset.
    random: bool,
    /// `NF_NAT_RANGE_PERSISTENT`: the address depends on the source only.
    persistent: bool,
}

impl From<&NatRange> for Range {
    fn from(r: &NatRange) -> Range {
        Range {
            ips: r.addrs.map(|(a, b)| (u32::from(a), u32::from(b))),
            ports: r.ports,
            random: r.random || r.random_fully,
            persistent: r.persistent,
        }
    }
}

impl Range {
    /// `nf_nat_alloc_null_binding()`: the address the packet has (taken
    /// from the REPLY tuple, which holds earlier manips), any port.
    pub(super) fn null(manip: Manip, reply: &Tuple) -> Range {
        let a = u32::from(match manip {
            Manip::Src => reply.dst,
            Manip::Dst => reply.src,
        });
        Range {
            ips: Some((a, a)),
            ports: None,
            random: false,
            persistent: false,
        }
    }
}

/// `get_unique_tuple()`: the tuple the connection's ORIGINAL packets will
/// carry after `manip`, starting from `orig` (what they carry now). If no
/// free tuple is found the last one tried is returned; confirm will then
/// refuse the entry.
pub(super) fn unique_tuple(
    ct: &mut Conntrack,
    me: EntryKey,
    zone: Zone,
    orig: &Tuple,
    range: &Range,
    manip: Manip,
    rand: &mut dyn FnMut() -> u32,
) -> Tuple {
    // 1) Source NAT keeps the packet's own source, or reuses the mapping
    //    of an earlier connection from the same source.
    if manip == Manip::Src && !range.random {
        if in_range(orig, range) {
            if !ct.tuple_taken_new(orig, me) {
                return *orig;
            }
        } else if let Some(t) = ct.find_nat_source(orig, zone, |t| in_range(t, range)) {
            if !ct.tuple_taken(&t, me) {
                return t;
            }
        }
    }
    // 2) An address from the range.
    let mut t = *orig;
    best_ip(&mut t, zone, range, manip);
    // 3) Keep the port if it fits and is free, else search.
    if !range.random {
        let fits = match range.ports {
            Some((lo, hi)) => {
                l4_in_range(&t, manip, lo, hi) && (lo == hi || !ct.tuple_taken(&t, me))
            }
            None => !ct.tuple_taken(&t, me),
        };
        if fits {
            return t;
        }
    }
    unique_l4(ct, me, &mut t, range, manip, rand);
    t
}

/// `nf_in_range()`: would a source mapped to `t` satisfy the range?
fn in_range(t: &Tuple, range: &Range) -> bool {
    if let Some((lo, hi)) = range.ips {
        if !(lo..=hi).contains(&u32::from(t.src)) {
            return false;
        }
    }
    match range.ports {
        Some((lo, hi)) => l4_in_range(t, Manip::Src, lo, hi),
        None => true,
    }
}

/// `l4proto_in_range()`: the manipulated port (ICMP: the id) is within
/// `[lo, hi]`; protocols without ports always fit.
fn l4_in_range(t: &Tuple, manip: Manip, lo: u16, hi: u16) -> bool {
    let v = match (t.proto, manip) {
        (IPPROTO_ICMP, _) | (IPPROTO_TCP | IPPROTO_UDP, Manip::Src) => t.src_u,
        (IPPROTO_TCP | IPPROTO_UDP, Manip::Dst) => t.dst_u,
        _ => return true,
    };
    lo <= v && v <= hi
}

/// `find_best_ips_proto()`: with an address range, pick one address by
/// hashing the source address with, unless PERSISTENT, the destination
/// address and zone as the seed. Linux's hash here is `jhash2()` with no
/// random key, so the choice is the kernel's own (for a little-endian
/// host, which reads the address bytes as a native u32): the same client
/// gets the same address across runs and reboots.
fn best_ip(t: &mut Tuple, zone: Zone, range: &Range, manip: Manip) {
    let Some((lo, hi)) = range.ips else {
        return;
    };
    let pick = if lo == hi {
        lo
    } else {
        let seed = if range.persistent {
            0
        } else {
            u32::from_le_bytes(t.dst.octets()) ^ u32::from(zone.0)
        };
        let j = jhash_addr(u32::from_le_bytes(t.src.octets()), seed);
        let dist = hi.wrapping_sub(lo).wrapping_add(1);
        lo.wrapping_add(((u64::from(j) * u64::from(dist)) >> 32) as u32)
    };
    let a = Ipv4Addr::from(pick);
    match manip {
        Manip::Src => t.src = a,
        Manip::Dst => t.dst = a,
    }
}

/// `jhash2(k, 4, initval)` (Bob Jenkins' lookup3) over an IPv4 address
/// as the kernel stores it: a 16-byte `nf_inet_addr` whose last 12 bytes
/// are zero.
fn jhash_addr(addr: u32, initval: u32) -> u32 {
    let init = 0xdead_beef_u32.wrapping_add(16).wrapping_add(initval);
    let mut w = [init.wrapping_add(addr), init, init];
    // __jhash_mix(): (word x, word y, rotation): x -= y; x ^= y <<< r;
    // y += the third word. a=0 b=1 c=2.
    for (x, y, r) in [
        (0, 2, 4),
        (1, 0, 6),
        (2, 1, 8),
        (0, 2, 16),
        (1, 0, 19),
        (2, 1, 4),
    ] {
        w[x] = w[x].wrapping_sub(w[y]) ^ w[y].rotate_left(r);
        w[y] = w[y].wrapping_add(w[3 - x - y]);
    }
    // The fourth (zero) word adds nothing; __jhash_final().
    for (x, y, r) in [
        (2, 1, 14),
        (0, 2, 11),
        (1, 0, 25),
        (2, 1, 16),
        (0, 2, 4),
        (1, 0, 14),
        (2, 1, 24),
    ] {
        w[x] ^= w[y];
        w[x] = w[x].wrapping_sub(w[y].rotate_left(r));
    }
    w[2]
}

/// `nf_nat_l4proto_unique_tuple()`: search the port (ICMP: the id) for a
/// free tuple. TCP/UDP source ports stay in their class (1–511, 600–1023,
/// 1024–65535) unless a port range is given; destination ports change
/// only with a range. The search starts at a random offset (offset 0 for
/// a destination manip without `--random`), tries min(range, 128) values,
/// then halves the window at a new random offset while it is at least 16.
fn unique_l4(
    ct: &mut Conntrack,
    me: EntryKey,
    t: &mut Tuple,
    range: &Range,
    manip: Manip,
    rand: &mut dyn FnMut() -> u32,
) {
    let src_half = match (t.proto, manip) {
        (IPPROTO_ICMP, _) | (IPPROTO_TCP | IPPROTO_UDP, Manip::Src) => true,
        (IPPROTO_TCP | IPPROTO_UDP, Manip::Dst) => false,
        _ => return,
    };
    let current = if src_half { t.src_u } else { t.dst_u };
    let (min, size): (u32, u32) = match range.ports {
        // ICMP: a reversed range wraps as the kernel's unsigned size does.
        Some((lo, hi)) if t.proto == IPPROTO_ICMP => (
            lo.into(),
            u32::from(hi).wrapping_sub(lo.into()).wrapping_add(1),
        ),
        Some((lo, hi)) => {
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            (lo.into(), u32::from(hi - lo) + 1)
        }
        None if t.proto == IPPROTO_ICMP => (0, 65536),
        None if manip == Manip::Dst => return,
        None => match current {
            0..=511 => (1, 511),
            512..=1023 => (600, 424),
            _ => (1024, 64512),
        },
    };
    let mut off: u16 = if range.random || manip == Manip::Src {
        rand() as u16
    } else {
        0
    };
    let mut attempts = size.min(MAX_ATTEMPTS);
    loop {
        for i in 0..attempts {
            let v = min.wrapping_add(u32::from(off) % size) as u16;
            if src_half {
                t.src_u = v;
            } else {
                t.dst_u = v;
            }
            if !ct.tuple_taken_harder(t, me, attempts - i) {
                return;
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < MIN_ATTEMPTS {
            return;
        }
        attempts /= 2;
        off = rand() as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(src: [u8; 4], dst: [u8; 4], persistent: bool) -> u8 {
        let mut t = Tuple::udp(src.into(), 41000, dst.into(), 5000);
        let range = Range {
            ips: Some((
                u32::from(Ipv4Addr::new(203, 0, 113, 1)),
                u32::from(Ipv4Addr::new(203, 0, 113, 10)),
            )),
            ports: None,
            random: false,
            persistent,
        };
        best_ip(&mut t, Zone(0), &range, Manip::Src);
        t.src.octets()[3]
    }

    /// Linux 6.18 (x86-64, netns lab): `SNAT --to-source
    /// 203.0.113.1-203.0.113.10`, one UDP flow per (client, server) with a
    /// fresh source port each (so no by-source reuse); the address each
    /// got, from `conntrack -L`. With `--persistent` only the client counts.
    #[test]
    fn address_choice_is_the_kernels() {
        let got: Vec<u8> = [2, 3]
            .iter()
            .flat_map(|&c| (2..=6).map(move |s| pick([192, 0, 2, c], [198, 51, 100, s], false)))
            .collect();
        assert_eq!(got, [6, 5, 2, 8, 10, 8, 5, 3, 1, 10]);
        for s in 2..=6 {
            assert_eq!(pick([192, 0, 2, 2], [198, 51, 100, s], true), 1);
            assert_eq!(pick([192, 0, 2, 3], [198, 51, 100, s], true), 7);
        }
    }
}
