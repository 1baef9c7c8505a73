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

/// Counters of one direction of a link. `repr(C)` keeps `sent` and
/// `delivered` first, where [`Link`]'s layout expects them.
#[repr(C)]
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

/// Whether [`Rng::chance`]`(p)` may draw or say yes: not for `p` ≤ 0, so
/// an unimpaired link never reaches its random stream (out of line, in
/// [`Rare`]). Written as a negation so that NaN, which `chance` draws for,
/// still gets there.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn may_happen(p: f64) -> bool {
    !(p <= 0.0)
}

/// What a link needs only when it is impaired, queueing or captured.
struct Rare {
    rng: Rng,
    /// Per direction, the times at which queued packets finish
    /// serialising, oldest first, except the last one (`Link::busy_until`).
    /// Entries already past are dropped lazily, when the wire is next busy.
    backlog: [VecDeque<Instant>; 2],
    /// Packets as they entered the link, for pcap files, when asked for.
    capture: Vec<(Instant, Box<[u8]>)>,
}

/// A link: two ends, its settings, its own random stream and counters.
///
/// Laid out for the forwarding path (`repr(C)`, in field order): a packet
/// reads the settings, its direction's transmitter and counters, and the
/// ends, all in the first 128 bytes for direction 0 (the first 192 for
/// direction 1); the name and what only impaired, queueing or captured
/// links use sit at the end or behind a pointer. In a run of 10,000 flows
/// each link is cold when its packet comes, so the lines it spans are the
/// misses it costs.
#[repr(C, align(128))]
pub struct Link {
    pub params: LinkParams,
    pub id: LinkId,
    /// (node, port) at each end.
    pub ends: [(NodeId, u16); 2],
    /// Whether packets are kept for pcap ([`Link::enable_capture`]).
    capturing: bool,
    /// Per direction, when the wire frees up.
    busy_until: [Instant; 2],
    pub stats: [LinkStats; 2],
    pub name: String,
    rare: Box<Rare>,
}

impl Link {
    pub fn new(
        id: LinkId,
        name: String,
        ends: [(NodeId, u16); 2],
        params: LinkParams,
        rng: Rng,
    ) -> Self {
        // A link with a rate queues packets: its backlog is sized up front,
        // like a NIC's ring, so the first queued packets do not allocate.
        let cap = if params.bandwidth.is_some() { 8 } else { 0 };
        let ring = || VecDeque::with_capacity(cap);
        Link {
            params,
            id,
            ends,
            capturing: false,
            busy_until: [Instant::ZERO; 2],
            stats: Default::default(),
            name,
            rare: Box::new(Rare {
                rng,
                backlog: [ring(), ring()],
                capture: Vec::new(),
            }),
        }
    }

    pub fn enable_capture(&mut self) {
        self.capturing = true;
    }

    pub fn captured(&self) -> &[(Instant, Box<[u8]>)] {
        &self.rare.capture
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
        if self.capturing {
            self.rare.capture.push((now, packet.as_slice().into()));
        }
        let p = &self.params;
        let drop = if !p.up {
            Some(DropReason::LinkDown)
        } else if packet.len() > p.mtu as usize {
            Some(DropReason::Mtu)
        } else if may_happen(p.loss) && self.rare.rng.chance(p.loss) {
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
        if may_happen(self.params.reorder) && self.rare.rng.chance(self.params.reorder) {
            let spread = self.params.reorder_delay.nanos() + 1;
            arrival += Duration::from_nanos(self.rare.rng.below(spread));
        }
        if may_happen(self.params.duplicate) && self.rare.rng.chance(self.params.duplicate) {
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
    ///
    /// The packets waiting are those whose departure is still ahead: the
    /// last one sent (`busy_until`) and the backlog's. A wire that is idle
    /// again has none, whatever the backlog still lists, so an unqueued
    /// packet touches only `busy_until`.
    fn serialise(&mut self, now: Instant, d: usize, len: usize) -> Option<Instant> {
        let Some(bps) = self.params.bandwidth.filter(|&b| b > 0) else {
            return Some(now);
        };
        let busy = self.busy_until[d];
        if busy > now {
            let backlog = &mut self.rare.backlog[d];
            while backlog.front().is_some_and(|&t| t <= now) {
                backlog.pop_front();
            }
            if backlog.len() + 1 >= self.params.queue.max(1) {
                return None;
            }
            backlog.push_back(busy);
        }
        let wire_time = Duration::from_nanos((len as u64 * 8 * 1_000_000_000).div_ceil(bps));
        let done = busy.max(now) + wire_time;
        self.busy_until[d] = done;
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
