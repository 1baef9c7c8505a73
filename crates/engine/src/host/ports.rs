//! Local ports: the listening ports apps ask for and the ephemeral ports the
//! host picks for its clients, TCP and UDP each in their own space.
//!
//! Ephemeral ports come from Linux's default `ip_local_port_range`
//! (32768–60999). The first candidate is drawn from the host's random stream
//! when it starts; later ones follow on from the last one handed out, skipping
//! ports in use, so a run is reproducible and another seed picks other ports.

use crate::rng::Rng;

pub(crate) const EPHEMERAL_LOW: u16 = 32768;
pub(crate) const EPHEMERAL_HIGH: u16 = 60999;
const RANGE: u32 = (EPHEMERAL_HIGH - EPHEMERAL_LOW) as u32 + 1;

/// The transport a port belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

struct Bitmap(Box<[u64; 1024]>);

impl Bitmap {
    fn new() -> Self {
        Bitmap(Box::new([0; 1024]))
    }
    fn get(&self, p: u16) -> bool {
        self.0[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }
    fn set(&mut self, p: u16, on: bool) {
        let word = &mut self.0[usize::from(p >> 6)];
        if on {
            *word |= 1 << (p & 63);
        } else {
            *word &= !(1 << (p & 63));
        }
    }
}

pub(crate) struct Ports {
    next: u32,
    tcp: Bitmap,
    udp: Bitmap,
}

impl Ports {
    pub(crate) fn new() -> Self {
        Ports {
            next: 0,
            tcp: Bitmap::new(),
            udp: Bitmap::new(),
        }
    }

    /// Draws where the search for ephemeral ports starts.
    pub(crate) fn seed(&mut self, rng: &mut Rng) {
        self.next = rng.below(u64::from(RANGE)) as u32;
    }

    fn map(&mut self, proto: Proto) -> &mut Bitmap {
        match proto {
            Proto::Tcp => &mut self.tcp,
            Proto::Udp => &mut self.udp,
        }
    }

    /// Claims `port` (a listening port); false when it is already taken.
    pub(crate) fn reserve(&mut self, proto: Proto, port: u16) -> bool {
        let map = self.map(proto);
        if map.get(port) {
            return false;
        }
        map.set(port, true);
        true
    }

    /// The next free ephemeral port, or `None` when the range is exhausted.
    pub(crate) fn ephemeral(&mut self, proto: Proto) -> Option<u16> {
        for k in 0..RANGE {
            let offset = (self.next + k) % RANGE;
            let port = EPHEMERAL_LOW + offset as u16;
            let map = self.map(proto);
            if !map.get(port) {
                map.set(port, true);
                self.next = (offset + 1) % RANGE;
                return Some(port);
            }
        }
        None
    }

    pub(crate) fn free(&mut self, proto: Proto, port: u16) {
        self.map(proto).set(port, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_ports_skip_used_and_stay_in_range() {
        let mut ports = Ports::new();
        ports.seed(&mut Rng::from_seed(3));
        let a = ports.ephemeral(Proto::Tcp).unwrap();
        assert!((EPHEMERAL_LOW..=EPHEMERAL_HIGH).contains(&a));
        let next = if a == EPHEMERAL_HIGH {
            EPHEMERAL_LOW
        } else {
            a + 1
        };
        assert!(ports.reserve(Proto::Tcp, next));
        let b = ports.ephemeral(Proto::Tcp).unwrap();
        assert_ne!(b, next);
        assert!(!ports.reserve(Proto::Tcp, a));
        ports.free(Proto::Tcp, a);
        assert!(ports.reserve(Proto::Tcp, a));
        // UDP is its own space.
        assert!(ports.reserve(Proto::Udp, a));
    }

    #[test]
    fn seeds_pick_different_first_ports() {
        let first = |seed| {
            let mut ports = Ports::new();
            ports.seed(&mut Rng::from_seed(seed));
            ports.ephemeral(Proto::Tcp)
        };
        assert_ne!(first(1), first(2));
    }
}
