//! Point-to-point links between two interfaces, with the impairments netem
//! would give them: delay, rate with a bounded queue, loss, duplication,
//! reordering, an MTU, and a switch to take the link down.

use std::collections::VecDeque;

use crate::queue::{Event, Queue};
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::topology::{LinkId, NodeId};
use crate::trace::{DropReason, Place, Trace, What};

/// A link's settings. Everything here may change during a run.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkParams {
    pub delay: Duration,
    /// Bits per second; `None` means packets take no time to serialise.
    pub bandwidth: Option<u64>,
    /// Packets waiting for the wire at most (Linux's default txqueuelen is 1000).
    pub queue: usize,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a packet is held back by a random extra delay.
    pub reorder: f64,
    /// The largest extra delay a reordered packet gets.
    pub reorder_delay: Duration,
    pub mtu: u32,
    pub up: bool,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::ZERO,
            bandwidth: None,
            queue: 1000,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
            up: true,
        }
    }
}

/// A scripted change: each field that is `Some` replaces the current value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkChange {
    pub delay: Option<Duration>,
    pub bandwidth: Option<Option<u64>>,
    pub queue: Option<usize>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    pub reorder: Option<f64>,
    pub reorder_delay: Option<Duration>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
}

impl LinkChange {
    pub fn apply(&self, p: &mut LinkParams) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut p.delay, &self.delay);
        set(&mut p.bandwidth, &self.bandwidth);
        set(&mut p.queue, &self.queue);
        set(&mut p.loss, &self.loss);
        set(&mut p.duplicate, &self.duplicate);
        set(&mut p.reorder, &self.reorder);
        set(&mut p.reorder_delay, &self.reorder_delay);
        set(&mut p.mtu, &self.mtu);
        set(&mut p.up, &self.up);
    }
}

/// Counters of one direction of a link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub delivered: u64,
    pub duplicated: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub mtu_drops: u64,
    pub down_drops: u64,
}

impl LinkStats {
    pub fn drops(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Loss => self.lost,
            DropReason::QueueFull => self.queue_drops,
            DropReason::Mtu => self.mtu_drops,
            DropReason::LinkDown => self.down_drops,
            _ => 0,
        }
    }

    pub fn total_drops(&self) -> u64 {
        self.lost + self.queue_drops + self.mtu_drops + self.down_drops
    }
}

/// One direction's transmitter: when the wire frees up and who is waiting.
#[derive(Default)]
struct Transmitter {
    /// Times at which queued packets finish serialising, oldest first.
    departures: VecDeque<Instant>,
    busy_until: Instant,
}

/// A link: two ends, its settings, its own random stream and counters.
pub struct Link {
    pub id: LinkId,
    pub name: String,
    /// (node, port) at each end.
    pub ends: [(NodeId, u16); 2],
    pub params: LinkParams,
    pub stats: [LinkStats; 2],
    rng: Rng,
    tx: [Transmitter; 2],
    /// Packets as they entered the link, for pcap files, when asked for.
    capture: Option<Vec<(Instant, Box<[u8]>)>>,
}

impl Link {
    pub fn new(
        id: LinkId,
        name: String,
        ends: [(NodeId, u16); 2],
        params: LinkParams,
        rng: Rng,
    ) -> Self {
        // A link with a rate queues packets: its departure list is sized up
        // front, like a NIC's ring, so the first packets do not allocate.
        let ring = || Transmitter {
            departures: VecDeque::with_capacity(if params.bandwidth.is_some() { 8 } else { 0 }),
            busy_until: Instant::ZERO,
        };
        Link {
            id,
            name,
            ends,
            tx: [ring(), ring()],
            params,
            stats: Default::default(),
            rng,
            capture: None,
        }
    }

    pub fn enable_capture(&mut self) {
        self.capture.get_or_insert_with(Vec::new);
    }

    pub fn captured(&self) -> &[(Instant, Box<[u8]>)] {
        self.capture.as_deref().unwrap_or(&[])
    }

    /// Puts `packet` on the wire in direction `dir` at `now`: either schedules
    /// its delivery (and maybe a duplicate's) or drops it, counted and traced.
    pub fn send(
        &mut self,
        now: Instant,
        dir: u8,
        packet: Vec<u8>,
        queue: &mut Queue,
        trace: &mut Trace,
    ) {
        let d = usize::from(dir);
        self.stats[d].sent += 1;
        if let Some(cap) = &mut self.capture {
            cap.push((now, packet.as_slice().into()));
        }
        let drop = if !self.params.up {
            Some(DropReason::LinkDown)
        } else if packet.len() > self.params.mtu as usize {
            Some(DropReason::Mtu)
        } else if self.rng.chance(self.params.loss) {
            Some(DropReason::Loss)
        } else {
            None
        };
        if let Some(reason) = drop {
            return self.drop(now, dir, reason, &packet, trace);
        }
        let Some(on_wire) = self.serialise(now, d, packet.len()) else {
            return self.drop(now, dir, DropReason::QueueFull, &packet, trace);
        };
        let mut arrival = on_wire + self.params.delay;
        if self.rng.chance(self.params.reorder) {
            arrival += Duration::from_nanos(self.rng.below(self.params.reorder_delay.nanos() + 1));
        }
        if self.rng.chance(self.params.duplicate) {
            self.stats[d].duplicated += 1;
            let copy = packet.clone();
            queue.push(
                arrival,
                Event::Deliver {
                    link: self.id,
                    dir,
                    packet: copy,
                },
            );
        }
        queue.push(
            arrival,
            Event::Deliver {
                link: self.id,
                dir,
                packet,
            },
        );
    }

    /// When the last bit of a `len`-byte packet leaves the sender, or `None`
    /// when the transmit queue is full.
    fn serialise(&mut self, now: Instant, d: usize, len: usize) -> Option<Instant> {
        let Some(bps) = self.params.bandwidth.filter(|&b| b > 0) else {
            return Some(now);
        };
        let tx = &mut self.tx[d];
        while tx.departures.front().is_some_and(|&t| t <= now) {
            tx.departures.pop_front();
        }
        if tx.departures.len() >= self.params.queue.max(1) {
            return None;
        }
        let wire_time = Duration::from_nanos((len as u64 * 8 * 1_000_000_000).div_ceil(bps));
        let done = tx.busy_until.max(now) + wire_time;
        tx.busy_until = done;
        tx.departures.push_back(done);
        Some(done)
    }

    /// A packet arrives at the far end; `false` when the link went down
    /// while it was in flight (it is then dropped and counted here).
    pub fn arrive(&mut self, now: Instant, dir: u8, packet: &[u8], trace: &mut Trace) -> bool {
        if !self.params.up {
            self.drop(now, dir, DropReason::LinkDown, packet, trace);
            return false;
        }
        self.stats[usize::from(dir)].delivered += 1;
        true
    }

    fn drop(
        &mut self,
        now: Instant,
        dir: u8,
        reason: DropReason,
        packet: &[u8],
        trace: &mut Trace,
    ) {
        let s = &mut self.stats[usize::from(dir)];
        match reason {
            DropReason::Loss => s.lost += 1,
            DropReason::QueueFull => s.queue_drops += 1,
            DropReason::Mtu => s.mtu_drops += 1,
            _ => s.down_drops += 1,
        }
        trace.record(
            now,
            Place::Link { link: self.id, dir },
            What::Dropped(reason),
            packet,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(params: LinkParams) -> Link {
        Link::new(
            LinkId(0),
            "l".into(),
            [(NodeId(0), 0), (NodeId(1), 0)],
            params,
            Rng::from_seed(1),
        )
    }

    fn arrivals(q: &mut Queue) -> Vec<u64> {
        std::iter::from_fn(|| q.pop_until(Instant::MAX))
            .map(|(t, _)| t.nanos())
            .collect()
    }

    #[test]
    fn delay_and_serialisation_add_up() {
        // 1000 bytes at 8 Mbit/s take 1 ms on the wire; two back to back queue.
        let mut l = link(LinkParams {
            delay: Duration::from_millis(5),
            bandwidth: Some(8_000_000),
            ..Default::default()
        });
        let (mut q, mut t) = (Queue::default(), Trace::new(true));
        l.send(Instant::ZERO, 0, vec![0; 1000], &mut q, &mut t);
        l.send(Instant::ZERO, 0, vec![0; 1000], &mut q, &mut t);
        assert_eq!(arrivals(&mut q), [6_000_000, 7_000_000]);
    }

    #[test]
    fn full_queue_tail_drops() {
        let mut l = link(LinkParams {
            bandwidth: Some(8_000),
            queue: 2,
            ..Default::default()
        });
        let (mut q, mut t) = (Queue::default(), Trace::new(true));
        for _ in 0..3 {
            l.send(Instant::ZERO, 0, vec![0; 100], &mut q, &mut t);
        }
        assert_eq!(l.stats[0].queue_drops, 1);
        assert_eq!(q.len(), 2);
        assert_eq!(t.records()[0].what, What::Dropped(DropReason::QueueFull));
    }

    #[test]
    fn oversized_and_down_are_dropped_and_counted() {
        let mut l = link(LinkParams {
            mtu: 100,
            ..Default::default()
        });
        let (mut q, mut t) = (Queue::default(), Trace::new(false));
        l.send(Instant::ZERO, 1, vec![0; 101], &mut q, &mut t);
        LinkChange {
            up: Some(false),
            ..Default::default()
        }
        .apply(&mut l.params);
        l.send(Instant::ZERO, 1, vec![0; 10], &mut q, &mut t);
        assert_eq!((l.stats[1].mtu_drops, l.stats[1].down_drops), (1, 1));
        assert!(q.is_empty());
    }

    #[test]
    fn loss_rate_is_roughly_the_probability() {
        let mut l = link(LinkParams {
            loss: 0.2,
            ..Default::default()
        });
        let (mut q, mut t) = (Queue::default(), Trace::new(false));
        for _ in 0..10_000 {
            l.send(Instant::ZERO, 0, vec![0; 10], &mut q, &mut t);
        }
        assert!(
            (1_800..2_200).contains(&l.stats[0].lost),
            "{}",
            l.stats[0].lost
        );
    }

    #[test]
    fn duplicates_arrive_twice() {
        let mut l = link(LinkParams {
            duplicate: 1.0,
            ..Default::default()
        });
        let (mut q, mut t) = (Queue::default(), Trace::new(false));
        l.send(Instant::ZERO, 0, vec![0; 10], &mut q, &mut t);
        assert_eq!(q.len(), 2);
    }
}
