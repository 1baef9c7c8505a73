//! The event queue, ordered by (time, insertion sequence).
//!
//! The sequence number makes equal-time events run in the order they were
//! scheduled, which is what makes a run a pure function of its inputs.
//!
//! It is a calendar queue: the next [`WINDOW`] of simulated time is cut into
//! buckets of [`WIDTH`] nanoseconds with an occupancy bitmap, and only the
//! bucket being drained is kept sorted, earliest first, with a read index:
//! popping is O(1), and so is adding a key later than every other, the
//! common case (10,000 flows starting within a few microseconds used to cost
//! O(n) each when the bucket was kept latest-first). Events further ahead wait in a heap
//! and move into the calendar as it advances. Pushing and popping cost about
//! the same whether ten or ten thousand events are pending, where a heap's
//! cost grows with its depth (one pending timer per flow made the heap the
//! top cost of the 10,000-flow benchmark).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::time::Instant;
use crate::topology::{LinkId, NodeId};

/// What happens when an event comes due.
#[derive(Debug)]
pub enum Event {
    /// A packet finishes crossing a link in direction `dir` (0: ends[0] → ends[1]).
    Deliver {
        link: LinkId,
        dir: u8,
        packet: Vec<u8>,
    },
    /// A node asked to be woken with this token.
    Wake { node: NodeId, token: u64 },
    /// A scripted change to the world (an index into the run's action list).
    Action(usize),
}

/// Width of one calendar bucket, in nanoseconds.
const WIDTH: u64 = 1 << 14;
/// Buckets in the calendar (a power of two); WIDTH × BUCKETS ≈ 268 ms.
const BUCKETS: usize = 1 << 14;
/// How far ahead the calendar reaches.
pub const WINDOW: u64 = WIDTH * BUCKETS as u64;

/// What the calendar orders: 24 bytes; the event itself waits in a slab.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    time: Instant,
    seq: u64,
    slot: u32,
}

impl Key {
    fn bucket(&self) -> u64 {
        self.time.nanos() / WIDTH
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// Pending events of one run.
pub struct Queue {
    /// The bucket being drained, sorted latest first (pop from the end).
    current: Vec<Key>,
    /// Index of the next key to pop in `current`.
    head: usize,
    /// Absolute number of the current bucket (time / WIDTH).
    cursor: u64,
    /// Buckets cursor+1 .. cursor+BUCKETS, by absolute number mod BUCKETS.
    buckets: Vec<Vec<Key>>,
    occupied: Vec<u64>,
    /// Events at or beyond cursor + BUCKETS.
    far: BinaryHeap<Reverse<Key>>,
    slots: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
    len: usize,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            current: Vec::new(),
            head: 0,
            cursor: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: vec![0; BUCKETS / 64],
            far: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            len: 0,
        }
    }
}

impl Queue {
    /// Inlined, and `place` taking the key's fields as scalars, so that the
    /// event and the key are written straight into their slots: built on
    /// the stack field by field and copied 16 bytes at a time, they stalled
    /// each push on store forwarding.
    #[inline(always)]
    pub fn push(&mut self, time: Instant, event: Event) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.len += 1;
        self.place(time, self.seq, slot);
    }

    /// Files a key where it belongs: the sorted current bucket, a calendar
    /// bucket, or the far heap.
    fn place(&mut self, time: Instant, seq: u64, slot: u32) {
        let key = Key { time, seq, slot };
        let b = key.bucket();
        if b <= self.cursor {
            if self.current.last().is_none_or(|last| *last < key) {
                self.current.push(key);
            } else {
                let at = self.head + self.current[self.head..].partition_point(|k| *k < key);
                self.current.insert(at, key);
            }
        } else if b < self.cursor + BUCKETS as u64 {
            let i = (b % BUCKETS as u64) as usize;
            self.buckets[i].push(key);
            self.occupied[i / 64] |= 1 << (i % 64);
        } else {
            self.far.push(Reverse(key));
        }
    }

    /// The earliest event if it is due at or before `until`.
    pub fn pop_until(&mut self, until: Instant) -> Option<(Instant, Event)> {
        if self.head == self.current.len() && !self.advance() {
            return None;
        }
        let key = *self.current.get(self.head)?;
        if key.time > until {
            return None;
        }
        self.head += 1;
        if self.head == self.current.len() {
            self.current.clear();
            self.head = 0;
        }
        self.len -= 1;
        self.free.push(key.slot);
        let event = self.slots[key.slot as usize].take()?;
        Some((key.time, event))
    }

    /// Moves the cursor to the next bucket holding events and makes it the
    /// current one; false when nothing is pending.
    fn advance(&mut self) -> bool {
        let next = match (self.next_occupied(), self.far.peek()) {
            (Some(b), _) => b,
            (None, Some(Reverse(k))) => k.bucket(),
            (None, None) => return false,
        };
        self.cursor = next;
        let i = (next % BUCKETS as u64) as usize;
        self.occupied[i / 64] &= !(1 << (i % 64));
        self.current.clear();
        self.head = 0;
        std::mem::swap(&mut self.current, &mut self.buckets[i]);
        while let Some(Reverse(k)) = self.far.peek().copied() {
            if k.bucket() >= self.cursor + BUCKETS as u64 {
                break;
            }
            self.far.pop();
            if k.bucket() == self.cursor {
                self.current.push(k);
            } else {
                self.place(k.time, k.seq, k.slot);
            }
        }
        self.current.sort_unstable();
        true
    }

    /// The absolute number of the first occupied calendar bucket after the
    /// cursor, scanning the bitmap a word at a time.
    fn next_occupied(&self) -> Option<u64> {
        let start = ((self.cursor + 1) % BUCKETS as u64) as usize;
        let words = self.occupied.len();
        for step in 0..=words {
            let w = (start / 64 + step) % words;
            let mut bits = self.occupied[w];
            if step == 0 {
                bits &= u64::MAX << (start % 64);
            }
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                let ahead = (i + BUCKETS - start) % BUCKETS;
                return Some(self.cursor + 1 + ahead as u64);
            }
        }
        None
    }

    /// When the next event is due (scans the calendar; not for hot paths).
    pub fn next_time(&self) -> Option<Instant> {
        if let Some(k) = self.current.get(self.head) {
            return Some(k.time);
        }
        let in_calendar = self.next_occupied().and_then(|b| {
            let i = (b % BUCKETS as u64) as usize;
            self.buckets[i].iter().map(|k| k.time).min()
        });
        in_calendar.or_else(|| self.far.peek().map(|Reverse(k)| k.time))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut q = Queue::default();
        let t = Instant::from_nanos(5);
        for token in 0..4 {
            q.push(
                t,
                Event::Wake {
                    node: NodeId(0),
                    token,
                },
            );
        }
        q.push(Instant::from_nanos(1), Event::Action(9));
        assert!(matches!(
            q.pop_until(Instant::MAX),
            Some((_, Event::Action(9)))
        ));
        let tokens: Vec<u64> = std::iter::from_fn(|| q.pop_until(Instant::MAX))
            .map(|(_, e)| match e {
                Event::Wake { token, .. } => token,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(tokens, [0, 1, 2, 3]);
    }

    #[test]
    fn pops_in_time_then_insertion_order() {
        // A pseudo-random mix of times, many equal, against a sorted copy.
        let mut q = Queue::default();
        let mut expected = Vec::new();
        let mut x: u64 = 12345;
        for token in 0..2000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let t = Instant::from_nanos((x >> 33) % 50);
            q.push(
                t,
                Event::Wake {
                    node: NodeId(0),
                    token,
                },
            );
            expected.push((t, token));
        }
        expected.sort_by_key(|&(t, token)| (t, token));
        let got: Vec<(Instant, u64)> = std::iter::from_fn(|| q.pop_until(Instant::MAX))
            .map(|(t, e)| match e {
                Event::Wake { token, .. } => (t, token),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn spans_the_calendar_and_the_far_heap() {
        // Times from nanoseconds to hours, pushed out of order and while
        // popping, come out in (time, insertion) order.
        let mut q = Queue::default();
        let mut expected = Vec::new();
        let mut x: u64 = 99;
        let mut token = 0;
        let mut now = 0;
        let mut got = Vec::new();
        for round in 0..200 {
            for _ in 0..20 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let scale = [1, 1_000, WIDTH, WINDOW, 3_600_000_000_000][(x >> 60) as usize % 5];
                let t = Instant::from_nanos(now + (x >> 20) % (scale * 3));
                q.push(
                    t,
                    Event::Wake {
                        node: NodeId(0),
                        token,
                    },
                );
                expected.push((t, token));
                token += 1;
            }
            for _ in 0..(round % 30) {
                if let Some((t, Event::Wake { token, .. })) = q.pop_until(Instant::MAX) {
                    now = t.nanos();
                    got.push((t, token));
                }
            }
        }
        while let Some((t, Event::Wake { token, .. })) = q.pop_until(Instant::MAX) {
            got.push((t, token));
        }
        expected.sort();
        assert_eq!(got, expected);
        assert!(q.is_empty());
    }

    #[test]
    fn pop_until_leaves_later_events() {
        let mut q = Queue::default();
        q.push(Instant::from_nanos(10), Event::Action(0));
        assert!(q.pop_until(Instant::from_nanos(9)).is_none());
        assert_eq!(q.len(), 1);
    }
}
