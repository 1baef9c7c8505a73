//! Matching what the kernel sent against what ctsim sent, interface by
//! interface, in order.
//!
//! Two things may differ without either side being wrong, and are
//! reconciled here rather than reported:
//! - the IP ID of a packet the router makes itself (ICMP errors, REJECT's
//!   answers, echo replies): Linux draws it from a per-destination
//!   generator seeded at boot;
//! - a port NAT had to choose because the original one clashed: Linux
//!   starts its search at a random offset (ctsim draws it from the seed).
//!   The first time both sides chose a port for the same packet, the pair
//!   is learnt, and from then on ctsim's port is read as the kernel's in
//!   every packet injected or compared and in every table line.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ctsim_engine::router::netfilter::nat::replace16;
use ctsim_engine::Instant;

/// A port NAT chose on each side: (protocol, address, ctsim's port) → the kernel's.
#[derive(Default, Debug, Clone)]
pub(crate) struct PortMap {
    map: BTreeMap<(u8, Ipv4Addr, u16), u16>,
}

impl PortMap {
    pub(crate) fn get(&self, proto: u8, addr: Ipv4Addr, port: u16) -> Option<u16> {
        self.map.get(&(proto, addr, port)).copied()
    }

    pub(crate) fn learnt(&self) -> impl Iterator<Item = (&(u8, Ipv4Addr, u16), &u16)> {
        self.map.iter()
    }

    /// `packet` with ctsim's chosen ports replaced by the kernel's (in an
    /// ICMP error's quoted header too), checksums kept right.
    pub(crate) fn translate(&self, packet: &[u8]) -> Vec<u8> {
        let mut p = packet.to_vec();
        if self.map.is_empty() {
            return p;
        }
        let Some(l4) = l4_offset(&p) else {
            return p;
        };
        match p[9] {
            6 | 17 => {
                let csum = if p[9] == 6 { 16 } else { 6 };
                self.rewrite_ports(&mut p, 12, l4, Some(l4 + csum));
            }
            1 if p.len() >= l4 + 8 && matches!(p[l4], 3 | 4 | 5 | 11 | 12) => {
                let inner = l4 + 8;
                if let Some(inner_l4) = l4_offset(&p[inner..]).map(|o| inner + o) {
                    if matches!(p[inner + 9], 6 | 17) {
                        let csum = if p[inner + 9] == 6 { 16 } else { 6 };
                        let c = (inner_l4 + csum + 2 <= p.len()).then_some(inner_l4 + csum);
                        // The quote's words are 16-bit aligned in the ICMP
                        // message: its checksum follows each changed word.
                        let before = p.clone();
                        self.rewrite_ports(&mut p, inner + 12, inner_l4, c);
                        for at in (inner_l4..p.len().min(inner_l4 + 18)).step_by(2) {
                            let (old, new) = (read16(&before, at), read16(&p, at));
                            if old != new {
                                let sum = replace16(read16(&p, l4 + 2), old, new);
                                p[l4 + 2..l4 + 4].copy_from_slice(&sum.to_be_bytes());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        p
    }

    /// Rewrites the ports at `l4` whose (address at `addrs`/`addrs+4`) are
    /// mapped, updating the checksum at `csum` incrementally (RFC 1624).
    fn rewrite_ports(&self, p: &mut [u8], addrs: usize, l4: usize, csum: Option<usize>) {
        let proto = p[addrs - 3];
        for side in 0..2 {
            let a = addrs + 4 * side;
            let at = l4 + 2 * side;
            if at + 2 > p.len() {
                return;
            }
            let addr = Ipv4Addr::new(p[a], p[a + 1], p[a + 2], p[a + 3]);
            let old = u16::from_be_bytes([p[at], p[at + 1]]);
            let Some(new) = self.get(proto, addr, old) else {
                continue;
            };
            p[at..at + 2].copy_from_slice(&new.to_be_bytes());
            if let Some(c) = csum {
                let hc = read16(p, c);
                // A UDP checksum of 0 means "none".
                if !(proto == 17 && hc == 0) {
                    p[c..c + 2].copy_from_slice(&replace16(hc, old, new).to_be_bytes());
                }
            }
        }
    }
}

fn read16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], *p.get(at + 1).unwrap_or(&0)])
}

/// Where the IPv4 payload starts, for a whole header.
fn l4_offset(p: &[u8]) -> Option<usize> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    (p.len() >= ihl && ihl >= 20 && p[0] >> 4 == 4).then_some(ihl)
}

/// A packet ctsim's router sent.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub time: Instant,
    pub port: u16,
    pub packet: Box<[u8]>,
    /// The router made it itself (its IP ID is the kernel's to choose).
    pub originated: bool,
    /// NAT gave it a port other than the one it came with.
    pub renat: bool,
    /// The input whose processing sent it.
    pub input: Option<usize>,
    /// The kernel packet it matched (index into [`Matcher::seen`]).
    pub matched: Option<usize>,
}

/// A packet the kernel's router sent.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// When, on the scenario's clock (the replay's clock less its lead).
    pub time: Instant,
    pub port: u16,
    pub packet: Vec<u8>,
    pub matched: Option<usize>,
    /// The last input injected before it.
    pub after_input: Option<usize>,
}

/// How late a kernel packet may be, against ctsim's, and still match.
const SLACK_NANOS: u64 = 2_000_000_000;

#[derive(Default)]
pub(crate) struct Matcher {
    pub expected: Vec<Expected>,
    pub seen: Vec<Seen>,
    pub ports: PortMap,
    /// Per port: expected packets before this index are all matched.
    first_open: BTreeMap<u16, usize>,
}

impl Matcher {
    pub(crate) fn new(expected: Vec<Expected>) -> Matcher {
        Matcher {
            expected,
            ..Default::default()
        }
    }

    /// Takes in one kernel packet and pairs it with the first unmatched
    /// ctsim packet on the same interface that it equals.
    pub(crate) fn see(&mut self, mut s: Seen) {
        let i = self.seen.len();
        let from = *self.first_open.get(&s.port).unwrap_or(&0);
        let candidates: Vec<usize> = (from..self.expected.len())
            .filter(|&e| {
                let x = &self.expected[e];
                x.port == s.port
                    && x.matched.is_none()
                    && x.time.nanos() <= s.time.nanos() + SLACK_NANOS
            })
            .collect();
        let found = candidates
            .iter()
            .copied()
            .find(|&e| self.equal(&self.expected[e], &s.packet))
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .find(|&e| self.learn(e, &s.packet))
            });
        if let Some(e) = found {
            self.expected[e].matched = Some(i);
            s.matched = Some(e);
            let mut open = from;
            while self
                .expected
                .get(open)
                .is_some_and(|x| x.port != s.port || x.matched.is_some())
            {
                open += 1;
            }
            self.first_open.insert(s.port, open);
        }
        self.seen.push(s);
    }

    /// Whether ctsim's packet, in the kernel's ports, is the kernel's.
    fn equal(&self, e: &Expected, kernel: &[u8]) -> bool {
        let mut ours = self.ports.translate(&e.packet);
        if ours.len() != kernel.len() {
            return false;
        }
        if e.originated && ours.len() >= 20 {
            // The IP ID and so the header checksum are the kernel's.
            ours[4..6].copy_from_slice(&kernel[4..6]);
            ours[10..12].copy_from_slice(&kernel[10..12]);
        }
        ours == kernel
    }

    /// When NAT chose a port on both sides and the packets differ only in
    /// it: learns the pair and says so.
    fn learn(&mut self, e: usize, kernel: &[u8]) -> bool {
        let x = &self.expected[e];
        let ours = self.ports.translate(&x.packet);
        let Some(l4) = l4_offset(&ours) else {
            return false;
        };
        if !x.renat || ours.len() != kernel.len() || !matches!(ours[9], 6 | 17) {
            return false;
        }
        if ours.len() < l4 + 8 {
            return false;
        }
        let csum = l4 + if ours[9] == 6 { 16 } else { 6 };
        let volatile = |i: usize| {
            x.originated && ((4..6).contains(&i) || (10..12).contains(&i))
                || (csum..csum + 2).contains(&i)
        };
        let mut learnt = None;
        for side in 0..2 {
            let at = l4 + 2 * side;
            let a = 12 + 4 * side;
            let (o, k) = (
                u16::from_be_bytes([ours[at], ours[at + 1]]),
                u16::from_be_bytes([kernel[at], kernel[at + 1]]),
            );
            if o != k {
                if learnt.is_some() {
                    return false;
                }
                let addr = Ipv4Addr::new(ours[a], ours[a + 1], ours[a + 2], ours[a + 3]);
                learnt = Some(((ours[9], addr, o), k, at));
            }
        }
        let Some((key, kport, at)) = learnt else {
            return false;
        };
        let same_elsewhere = ours
            .iter()
            .zip(kernel)
            .enumerate()
            .all(|(i, (a, b))| a == b || volatile(i) || (at..at + 2).contains(&i));
        if !same_elsewhere {
            return false;
        }
        self.ports.map.insert(key, kport);
        if self.equal(&self.expected[e], kernel) {
            return true;
        }
        self.ports.map.remove(&key);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(sport: u16, dport: u16) -> Vec<u8> {
        let text = format!("udp 198.51.100.1:{sport} > 198.51.100.2:{dport} len=4");
        ctsim_packet::parse(&text, &|_| None).unwrap()
    }

    #[test]
    fn a_learnt_port_translates_with_a_correct_checksum() {
        let mut m = PortMap::default();
        m.map
            .insert((17, Ipv4Addr::new(198, 51, 100, 1), 6990), 57187);
        let got = m.translate(&udp(6990, 53));
        assert_eq!(got, udp(57187, 53));
    }

    #[test]
    fn the_kernel_choosing_another_port_is_learnt_only_after_nat_chose_one() {
        let e = |renat| Expected {
            time: Instant::ZERO,
            port: 1,
            packet: udp(6990, 53).into(),
            originated: false,
            renat,
            input: None,
            matched: None,
        };
        let seen = Seen {
            time: Instant::ZERO,
            port: 1,
            packet: udp(57187, 53),
            matched: None,
            after_input: None,
        };
        let mut m = Matcher::new(vec![e(false)]);
        m.see(seen.clone());
        assert_eq!(
            m.seen[0].matched, None,
            "a port NAT did not choose is a difference"
        );
        let mut m = Matcher::new(vec![e(true)]);
        m.see(seen);
        assert_eq!(m.seen[0].matched, Some(0));
        assert_eq!(
            m.ports.get(17, Ipv4Addr::new(198, 51, 100, 1), 6990),
            Some(57187)
        );
    }

    /// An ICMP error quoting a datagram from a learnt port reads with the
    /// kernel's port, its checksum right (as the builder would make it).
    #[test]
    fn a_quoted_port_translates_too() {
        let error = |sport| {
            let quoted = udp(sport, 53);
            let kind = ctsim_packet::IcmpError::PortUnreachable;
            ctsim_packet::icmp_error(Ipv4Addr::new(198, 51, 100, 2), kind, &quoted)
        };
        let mut m = PortMap::default();
        m.map
            .insert((17, Ipv4Addr::new(198, 51, 100, 1), 6990), 57187);
        assert_eq!(m.translate(&error(6990)), error(57187));
    }
}
