//! Printing a literal into a formatter and matching a filter must not
//! allocate: both run once per packet in traces and checks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write;

use ctsim_packet::{parse, Filter, Literal};

/// Counts this thread's allocations (tests run on several threads).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A writer into a fixed buffer.
struct Buffer {
    bytes: [u8; 4096],
    len: usize,
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self
            .bytes
            .get_mut(self.len..self.len + s.len())
            .ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

const LITERALS: [&str; 4] = [
    "tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240 [mss 1460, sackOK, ts val 100 ecr 0, nop, wscale 7]",
    "icmp 198.51.100.1 > 192.0.2.2 port-unreachable quote=(udp 192.0.2.2:1 > 198.51.100.2:2 payload=\"hello\")/30",
    "icmp 198.51.100.1 > 192.0.2.2 time-exceeded quote=(tcp 192.0.2.2:40000 > 198.51.100.2:22 . seq=1 ack=1 win=9 len=1460)",
    "ip 192.0.2.2 > 198.51.100.2 proto=6 frag=8 hex=0102",
];

#[test]
fn literal_display_does_not_allocate() {
    for literal in LITERALS {
        let bytes = parse(literal, &|_| None).unwrap();
        let mut buffer = Buffer {
            bytes: [0; 4096],
            len: 0,
        };
        assert_eq!(
            allocations(|| write!(buffer, "{}", Literal(&bytes)).unwrap()),
            0,
            "{literal}"
        );
    }
}

#[test]
fn filter_matching_does_not_allocate() {
    let filter = Filter::parse("(tcp and dport 22 and tcp-flags S) or (icmp-type port-unreachable and not net 10.0.0.0/8) or len 40").unwrap();
    for literal in LITERALS {
        let bytes = parse(literal, &|_| None).unwrap();
        assert_eq!(
            allocations(|| {
                std::hint::black_box(filter.matches(&bytes));
            }),
            0
        );
    }
}
