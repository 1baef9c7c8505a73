//! The event queue: a binary heap ordered by (time, insertion sequence).
//!
//! The sequence number makes equal-time events run in the order they were
//! scheduled, which is what makes a run a pure function of its inputs.

use std::cmp::Ordering;
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

/// What the heap orders: 24 bytes, so sifting moves little. The event
/// itself waits in a slab slot until it is popped.
#[derive(PartialEq, Eq)]
struct Key {
    time: Instant,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Reversed, so the std max-heap pops the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// Pending events of one run.
#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<Event>>,
    free: Vec<u32>,
    seq: u64,
}

impl Queue {
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
        self.heap.push(Key {
            time,
            seq: self.seq,
            slot,
        });
    }

    /// The earliest event if it is due at or before `until`.
    pub fn pop_until(&mut self, until: Instant) -> Option<(Instant, Event)> {
        if self.heap.peek()?.time > until {
            return None;
        }
        let key = self.heap.pop()?;
        self.free.push(key.slot);
        let event = self.slots[key.slot as usize].take()?;
        Some((key.time, event))
    }

    pub fn next_time(&self) -> Option<Instant> {
        self.heap.peek().map(|k| k.time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
    fn pop_until_leaves_later_events() {
        let mut q = Queue::default();
        q.push(Instant::from_nanos(10), Event::Action(0));
        assert!(q.pop_until(Instant::from_nanos(9)).is_none());
        assert_eq!(q.len(), 1);
    }
}
