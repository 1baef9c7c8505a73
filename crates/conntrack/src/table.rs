//! The connection table (`struct net`'s conntrack part): the arena of
//! entries, the hash index, the timers, and `nf_conntrack_in()` /
//! `__nf_conntrack_confirm()` around the L4 trackers.
//!
//! # Layout
//!
//! - `slots`: an arena of [`Entry`] (about 200 bytes each, see the size
//!   test), reused through a LIFO free list; an [`EntryKey`] is a slot index
//!   plus a generation so stale keys are detected.
//! - `buckets`: `nf_conntrack_buckets` chain heads. Like Linux's hash, each
//!   confirmed entry is linked twice, by its ORIGINAL and by its REPLY tuple
//!   (node id = slot × 2 + direction); the links live inside the entries, so
//!   inserting allocates nothing. The hash is a fixed-seed 64-bit mix of
//!   tuple and zone (Linux uses a random siphash key; determinism wins),
//!   scaled to the bucket count with `reciprocal_scale()` as Linux does, so
//!   early drop can scan "the next 8 buckets" exactly as Linux.
//! - `timers`: a min-heap of (deadline, slot, generation) with lazy
//!   deletion. A refresh only writes the entry's deadline; the heap node is
//!   re-pushed when it surfaces early (deadline moved later) or pushed anew
//!   when a deadline moves earlier. Each expiry costs O(log n) and nothing
//!   happens per tick, so expiring k of n entries costs O(k log n).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::Ipv4Addr;

use crate::event::{Event, EventKind, ExpectEvent};
use crate::expect::{ExpectError, Expectation, NewExpectation, PERMANENT};
use crate::filter::Filter;
use crate::format::{self, Counter, Flow, FormatOpts};
use crate::helper::HelpExt;
use crate::stats::Stats;
use crate::status::{CtInfo, CtState, EventMask, Status};
use crate::sysctl::Sysctls;
use crate::tcp::{Dir, Tcp, TcpConntrack, TcpOutcome, TcpSegment};
use crate::time::{Duration, Instant};
use crate::tuple::{
    icmp_is_error, icmp_type, icmp_valid_new, Tuple, Zone, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_TCP,
    IPPROTO_UDP,
};
use crate::wire::{self, Ipv4};

mod help;
pub(crate) mod nat;
mod sip;

const NIL: u32 = u32::MAX;
/// Stand-in for Linux's per-insert random chain limit
/// `MIN_CHAINLEN + get_random_u32_below(MAX_CHAINLEN)` (50..=79): fixed so
/// runs are reproducible.
const MAX_CHAINLEN: u32 = 64;
/// `NF_CT_EVICTION_RANGE`: buckets early drop looks at.
const EVICTION_RANGE: usize = 8;
/// `GC_SCAN_INTERVAL_MIN`: when the GC's early-drop sweep runs after a
/// table-full drop (Linux: at the worker's next run, 1–60 s later).
const GC_SCAN_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// High bit of a timer node's slot: an expectation, not an entry.
const EXPECT_TIMER: u32 = 1 << 31;
const NS_PER_SEC: u64 = 1_000_000_000;

/// The kernel message of a table-full drop (`net_warn_ratelimited`).
pub const TABLE_FULL_MSG: &str = "nf_conntrack: table full, dropping packet";
/// The kernel message when `nf_conntrack_expect_max` is reached.
pub const EXPECT_TABLE_FULL_MSG: &str = "nf_conntrack: expectation table full";

// Invalid reasons for which Linux logs nothing (pr_debug at most).
/// Ports or ICMP header missing (`nf_ct_get_tuple()` failed).
pub const NO_TUPLE: &str = "cannot get tuple";
/// The packet's tuple has no inverse (ICMP type that is neither a request
/// nor a reply nor an error).
pub const NO_INVERSE: &str = "cannot invert tuple";
/// `nf_conntrack_icmp_packet()`: a reply or other non-request type without
/// an entry.
pub const ICMP_NOT_NEW: &str = "icmp: can't create new conn";
/// An ICMP error whose quoted packet gives no tuple (fragment, cut short,
/// untrackable type).
pub const ICMP_QUOTE_UNTRACKABLE: &str = "icmp: quoted packet not trackable";
/// An ICMP error whose quoted packet belongs to no connection.
pub const ICMP_NO_MATCH: &str = "icmp: no connection for quoted packet";

/// Where conntrack runs: it looks packets up at -200 in these two hooks.
/// Checksums are verified in PRE_ROUTING only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CtHook {
    /// `NF_INET_PRE_ROUTING`: received packets.
    PreRouting,
    /// `NF_INET_LOCAL_OUT`: locally generated packets.
    LocalOut,
}

/// The four tables `conntrack -L` can list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Table {
    /// Confirmed entries (`conntrack -L`).
    Conntrack,
    /// Entries created by packets still inside the hooks.
    Unconfirmed,
    /// Entries deleted while a packet still held a reference.
    Dying,
    /// Expectations (`conntrack -L expect`).
    Expect,
}

/// A weak handle to an entry: slot and generation. Stays `Copy`; getters
/// return `None` once the entry is gone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EntryKey {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

impl std::fmt::Display for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ct{}.{}", self.idx, self.gen)
    }
}

/// A packet's reference to its entry with the packet's ctinfo (the
/// kernel's `skb->_nfct`). It holds a use count: give it back exactly once,
/// to [`Conntrack::confirm`] when the packet passes the last hook or to
/// [`Conntrack::release`] when it is dropped or consumed elsewhere.
#[derive(PartialEq, Eq, Hash, Debug)]
#[must_use = "a packet reference must be confirmed or released"]
pub struct EntryRef {
    key: EntryKey,
    ctinfo: CtInfo,
}

impl EntryRef {
    /// The entry.
    #[inline]
    pub fn key(&self) -> EntryKey {
        self.key
    }
    /// The packet's ctinfo.
    #[inline]
    pub fn ctinfo(&self) -> CtInfo {
        self.ctinfo
    }
    /// The packet's direction.
    #[inline]
    pub fn dir(&self) -> Dir {
        self.ctinfo.dir()
    }
}

/// Why a packet is INVALID (it leaves conntrack without an entry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Invalid {
    /// L4 protocol number (0 when the IPv4 header was unusable).
    pub proto: u8,
    /// Linux's log text; for cases Linux does not log, a text of ours.
    pub reason: &'static str,
    /// The two addresses of "outer daddr %pI4 != inner %pI4".
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Linux would log it now (`nf_conntrack_log_invalid` is this protocol
    /// or 255, and Linux has a message for this case).
    pub log: bool,
}

impl std::fmt::Display for Invalid {
    /// The `nf_l4proto_log_invalid()` prefix: `nf_ct_proto_17: bad checksum`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addrs {
            Some((outer, inner)) => write!(
                f,
                "nf_ct_proto_{}: {} {} != inner {}",
                self.proto, self.reason, outer, inner
            ),
            None => write!(f, "nf_ct_proto_{}: {}", self.proto, self.reason),
        }
    }
}

/// Conntrack's verdict on a packet. Conntrack itself drops only when it
/// cannot track (table full, unresolved clash); INVALID packets go on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Verdict {
    Accept,
    /// `reason` says why, e.g. "table full".
    Drop {
        reason: &'static str,
    },
}

/// What [`Conntrack::handle_packet`] decided.
#[derive(Debug)]
#[must_use]
pub struct PacketResult {
    /// The packet's reference (`None`: INVALID or dropped).
    pub ct: Option<EntryRef>,
    pub verdict: Verdict,
    /// Set when the packet is INVALID.
    pub invalid: Option<Invalid>,
    /// The TCP tracker accepted the packet without looking at it further
    /// ("ignored" in Linux's debug log); the text says why.
    pub ignored: Option<&'static str>,
}

impl PacketResult {
    fn accepted(r: EntryRef, ignored: Option<&'static str>) -> Self {
        PacketResult {
            ct: Some(r),
            verdict: Verdict::Accept,
            invalid: None,
            ignored,
        }
    }
    fn invalid(inv: Invalid) -> Self {
        PacketResult {
            ct: None,
            verdict: Verdict::Accept,
            invalid: Some(inv),
            ignored: None,
        }
    }
    fn dropped(reason: &'static str) -> Self {
        PacketResult {
            ct: None,
            verdict: Verdict::Drop { reason },
            invalid: None,
            ignored: None,
        }
    }
    /// The packet's ctinfo (`None` when INVALID or dropped).
    pub fn ctinfo(&self) -> Option<CtInfo> {
        self.ct.as_ref().map(|r| r.ctinfo)
    }
    /// The `--ctstate` the packet matches.
    pub fn state(&self) -> CtState {
        self.ctinfo().map_or(CtState::Invalid, CtInfo::state)
    }
    /// The packet's direction, when it has an entry.
    pub fn dir(&self) -> Option<Dir> {
        self.ctinfo().map(CtInfo::dir)
    }
    /// The invalid reason, if INVALID.
    pub fn invalid_reason(&self) -> Option<&'static str> {
        self.invalid.map(|i| i.reason)
    }
}

/// What [`Conntrack::confirm`] decided.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[must_use]
pub struct Confirmed {
    pub verdict: Verdict,
    /// The entry the packet belongs to now (a clash may have merged it into
    /// the entry that won); `None` if dropped.
    pub key: Option<EntryKey>,
}

/// A kernel log line (`dmesg`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KernelLog {
    pub at: Instant,
    pub text: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Free,
    Unconfirmed,
    Confirmed,
    Dying,
}

const EXT_ACCT: u8 = 1;
const EXT_TSTAMP: u8 = 2;
const EXT_ECACHE: u8 = 4;

/// The L4 tracker's private part (`union nf_conntrack_proto`).
#[derive(Clone, Copy, Debug)]
enum L4 {
    Tcp(Tcp),
    /// `stream_ts`: after it, a two-way UDP flow becomes a stream.
    Udp {
        stream_ts: Instant,
    },
    Icmp,
    Generic,
}

/// One connection (`struct nf_conn`).
///
/// `repr(C)` keeps the field order: the first 64-byte line holds what every
/// lookup and refresh touches (tuples, chain links, deadlines, status, use
/// count), the second the bookkeeping and counters, then the tracker state.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Entry {
    tuple: [Tuple; 2],
    /// Hash chain links, per direction.
    next: [u32; 2],
    /// Absolute deadline (ns) once confirmed; relative before.
    timeout: u64,
    /// Deadline of this entry's current timer-heap node (`u64::MAX`: none).
    scheduled: u64,
    status: Status,
    /// `ct_general.use`: 1 for the table while confirmed, 1 per packet in
    /// flight, 1 per expected child.
    use_count: u32,
    zone: Zone,
    /// Cached events, delivered at confirm.
    events: EventMask,
    stage: Stage,
    ext: u8,
    gen: u32,
    mark: u32,
    id: u32,
    /// Slot of the master (expected connections), or `NIL`.
    master: u32,
    /// Next entry in the same NAT by-source chain (`nat_bysource`), or
    /// `NIL`; linked while IPS_SRC_NAT_DONE is set.
    src_next: u32,
    /// Timestamp start (`nf_conntrack_timestamp`), set at confirm.
    start: Instant,
    acct: [Counter; 2],
    helper: Option<&'static str>,
    /// Helper, seqadj and follow-master data; `None` for most entries.
    help: Option<Box<HelpExt>>,
    l4: L4,
}

impl Entry {
    fn vacant() -> Entry {
        Entry {
            tuple: [Tuple::generic(0, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED); 2],
            next: [NIL; 2],
            status: Status::default(),
            mark: 0,
            id: 0,
            use_count: 0,
            gen: 0,
            master: NIL,
            src_next: NIL,
            zone: Zone::DEFAULT,
            events: EventMask::default(),
            stage: Stage::Free,
            ext: 0,
            helper: None,
            help: None,
            timeout: 0,
            scheduled: u64::MAX,
            start: Instant(0),
            acct: [Counter::default(); 2],
            l4: L4::Generic,
        }
    }

    /// The tuple of one direction.
    #[inline]
    pub fn tuple(&self, dir: Dir) -> &Tuple {
        &self.tuple[dir as usize]
    }
    /// The ORIGINAL tuple.
    #[inline]
    pub fn orig(&self) -> &Tuple {
        &self.tuple[0]
    }
    /// The REPLY tuple.
    #[inline]
    pub fn reply(&self) -> &Tuple {
        &self.tuple[1]
    }
    pub fn zone(&self) -> Zone {
        self.zone
    }
    pub fn status(&self) -> Status {
        self.status
    }
    pub fn mark(&self) -> u32 {
        self.mark
    }
    /// The id `conntrack -o id` prints (sequential here; Linux hashes).
    pub fn id(&self) -> u32 {
        self.id
    }
    /// `use=`: the reference count.
    pub fn use_count(&self) -> u32 {
        self.use_count
    }
    pub fn helper(&self) -> Option<&'static str> {
        self.helper
    }
    pub fn is_confirmed(&self) -> bool {
        self.status.contains(Status::CONFIRMED)
    }
    pub fn is_dying(&self) -> bool {
        self.status.contains(Status::DYING)
    }
    /// The TCP state, for TCP entries.
    pub fn tcp_state(&self) -> Option<TcpConntrack> {
        match &self.l4 {
            L4::Tcp(t) => Some(t.state()),
            _ => None,
        }
    }
    /// The TCP tracker's data, for TCP entries.
    pub fn tcp(&self) -> Option<&Tcp> {
        match &self.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        }
    }
    /// Packet/byte counters of one direction, if accounting was on when the
    /// entry was created.
    pub fn counters(&self, dir: Dir) -> Option<Counter> {
        (self.ext & EXT_ACCT != 0).then_some(self.acct[dir as usize])
    }
    /// Time left before expiry (`nf_ct_expires()`); for an unconfirmed
    /// entry, the relative timeout it will start with.
    pub fn expires(&self, now: Instant) -> Duration {
        if self.is_confirmed() {
            Duration(self.timeout.saturating_sub(now.0))
        } else {
            Duration(self.timeout)
        }
    }
    /// Absolute deadline, once confirmed.
    pub fn deadline(&self) -> Option<Instant> {
        self.is_confirmed().then_some(Instant(self.timeout))
    }
    #[inline]
    fn expired(&self, now: Instant) -> bool {
        self.timeout <= now.0
    }
}

/// `net_ratelimit()`: 10 messages per 5 s.
#[derive(Clone, Debug, Default)]
struct RateLimit {
    begin: Option<Instant>,
    printed: u32,
    missed: u32,
}

/// One network namespace's connection tracking (sans-I/O).
///
/// Methods come in the four kinds of style.md §2, used in this order for
/// each input: `handle_packet` (at PRE_ROUTING/LOCAL_OUT -200) then
/// `confirm` or `release` for the packet; `handle_timeout` when
/// `poll_timeout`'s deadline is reached; then drain `poll_event`,
/// `poll_expect_event` and `poll_log`. Mutators (`flush`, `delete`,
/// `set_mark`, `set_sysctl`) act like `conntrack -F/-D` and `sysctl -w`.
/// Time must not go backwards between calls.
pub struct Conntrack {
    sysctl: Sysctls,
    slots: Vec<Entry>,
    free: Vec<u32>,
    buckets: Vec<u32>,
    /// `nf_conntrack_count`: allocated entries (unconfirmed, confirmed and
    /// dying alike, as Linux counts them).
    count: u32,
    confirmed: u32,
    next_id: u32,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    events: VecDeque<Event>,
    expect_events: VecDeque<ExpectEvent>,
    logs: VecDeque<KernelLog>,
    ratelimit: RateLimit,
    stats: Stats,
    /// Set after a table-full drop: the GC's early-drop sweep is due.
    gc_sweep_at: Option<Instant>,
    expects: Vec<Option<(Expectation, u32)>>,
    expect_free: Vec<u32>,
    expect_count: u32,
    expect_seq: u64,
    scratch: Vec<u32>,
    /// NAT's by-source hash heads (`nf_nat_bysource`), allocated at the
    /// first source binding; see `nat.rs`.
    by_src: Vec<u32>,
    portid: u32,
    /// The latest `now` seen (for work done in `release`, which has none).
    last_now: Instant,
}

enum L4Outcome {
    Accept(Option<&'static str>),
    Invalid(Invalid),
    Reopen,
}

enum IcmpError {
    NotError,
    Related(EntryRef),
    Invalid(Invalid),
}

#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `hash_conntrack_raw()` with a fixed key: 32 bits over tuple and zone.
#[inline]
fn hash_raw(t: &Tuple, zone: Zone) -> u32 {
    let a = (u64::from(u32::from(t.src)) << 32) | u64::from(u32::from(t.dst));
    let b = (u64::from(t.src_u) << 48)
        | (u64::from(t.dst_u) << 32)
        | (u64::from(t.proto) << 16)
        | u64::from(zone.0);
    (fmix(fmix(a ^ 0x243f_6a88_85a3_08d3) ^ b) >> 32) as u32
}

/// `l4proto->allow_clash`: the protocols whose racing first packets may be
/// merged at confirm (and whose null bindings tolerate a reverse clash).
#[inline]
pub(crate) fn allows_clash(proto: u8) -> bool {
    matches!(proto, IPPROTO_UDP | IPPROTO_ICMP)
}

/// `reciprocal_scale()`.
#[inline]
fn scale(hash: u32, n: usize) -> usize {
    ((u64::from(hash) * n as u64) >> 32) as usize
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new(Sysctls::default())
    }
}

impl Conntrack {
    /// An empty table with these sysctls.
    pub fn new(sysctl: Sysctls) -> Conntrack {
        let buckets = vec![NIL; sysctl.buckets.max(1) as usize];
        Conntrack {
            sysctl,
            slots: Vec::new(),
            free: Vec::new(),
            buckets,
            count: 0,
            confirmed: 0,
            next_id: 1,
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            expect_events: VecDeque::new(),
            logs: VecDeque::new(),
            ratelimit: RateLimit::default(),
            stats: Stats::default(),
            gc_sweep_at: None,
            expects: Vec::new(),
            expect_free: Vec::new(),
            expect_count: 0,
            expect_seq: 0,
            scratch: Vec::new(),
            by_src: Vec::new(),
            portid: 4_242,
            last_now: Instant(0),
        }
    }

    // ---------------------------------------------------------------- getters

    /// The sysctls in force.
    pub fn sysctls(&self) -> &Sysctls {
        &self.sysctl
    }
    /// `nf_conntrack_count` (what `conntrack -C` prints).
    pub fn count(&self) -> u32 {
        self.count
    }
    /// Entries in the hash table (`conntrack -L` before filtering, without
    /// expired ones not yet reaped).
    pub fn confirmed_count(&self) -> u32 {
        self.confirmed
    }
    /// Live expectations.
    pub fn expect_count(&self) -> u32 {
        self.expect_count
    }
    /// The counters of `conntrack -S`.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The entry behind `key`, if it still exists.
    pub fn get(&self, key: EntryKey) -> Option<&Entry> {
        self.slots
            .get(key.idx as usize)
            .filter(|e| e.gen == key.gen && e.stage != Stage::Free)
    }
    /// The confirmed, unexpired entry a tuple belongs to, and in which
    /// direction (a read-only `nf_conntrack_find_get()`).
    pub fn lookup(&self, tuple: &Tuple, zone: Zone, now: Instant) -> Option<(EntryKey, Dir)> {
        let b = scale(hash_raw(tuple, zone), self.buckets.len());
        let mut node = self.buckets[b];
        while node != NIL {
            let e = &self.slots[(node >> 1) as usize];
            let d = (node & 1) as usize;
            if !e.expired(now) && e.tuple[d] == *tuple && e.zone == zone {
                let dir = if d == 0 { Dir::Original } else { Dir::Reply };
                return Some((
                    EntryKey {
                        idx: node >> 1,
                        gen: e.gen,
                    },
                    dir,
                ));
            }
            node = e.next[d];
        }
        None
    }
    /// Keys of the entries in one table, in creation order (ascending id).
    /// This is the order every listing uses: Linux prints hash order,
    /// which would depend on its random hash key.
    pub fn keys(&self, table: Table, now: Instant) -> Vec<EntryKey> {
        let want = match table {
            Table::Conntrack => Stage::Confirmed,
            Table::Unconfirmed => Stage::Unconfirmed,
            Table::Dying => Stage::Dying,
            Table::Expect => return Vec::new(),
        };
        let mut v: Vec<(u32, EntryKey)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, e)| e.stage == want)
            // Hidden like Linux: expired entries (reaped during a dump) and
            // clash losers inserted by their reply tuple only.
            .filter(|(_, e)| {
                want != Stage::Confirmed
                    || !(e.expired(now) || e.status.contains(Status::NAT_CLASH))
            })
            .map(|(i, e)| {
                (
                    e.id,
                    EntryKey {
                        idx: i as u32,
                        gen: e.gen,
                    },
                )
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, k)| k).collect()
    }
    /// `__nf_ct_expect_find()`: an expectation (INACTIVE ones included)
    /// that a new connection with original tuple `t` in `zone` would
    /// match; the newest first, as Linux's hash chains hold them.
    pub fn find_expectation(&self, t: &Tuple, zone: Zone) -> Option<&Expectation> {
        self.expects
            .iter()
            .flatten()
            .map(|(e, _)| e)
            .filter(|e| e.matches(t, zone))
            .max_by_key(|e| e.seq)
    }

    /// Live expectations in creation order.
    pub fn expectations(&self) -> Vec<&Expectation> {
        let mut v: Vec<&Expectation> = self.expects.iter().flatten().map(|(e, _)| e).collect();
        v.sort_by_key(|e| e.seq);
        v
    }

    // ---------------------------------------------------------------- formats

    /// One `conntrack -L` line (without newline) for an entry.
    pub fn entry_line(&self, key: EntryKey, opts: FormatOpts, now: Instant) -> Option<String> {
        let e = self.get(key)?;
        let mut s = String::with_capacity(220);
        self.listing_flow(e, now).write(&mut s, opts);
        Some(s)
    }

    /// `conntrack -L [table]` with filter and `-o` options: returns
    /// (stdout, stderr). The summary goes to stderr, as conntrack prints it.
    pub fn conntrack_l(
        &self,
        table: Table,
        filter: &Filter,
        opts: FormatOpts,
        now: Instant,
    ) -> (String, String) {
        let mut out = String::new();
        if table == Table::Expect {
            let list = self.expectations();
            for e in &list {
                out.push_str(&e.line(now));
                out.push('\n');
            }
            return (out, format::expectations_shown(list.len()));
        }
        let mut n = 0;
        for k in self.keys(table, now) {
            let e = &self.slots[k.idx as usize];
            if filter.matches(e) {
                self.listing_flow(e, now).write(&mut out, opts);
                out.push('\n');
                n += 1;
            }
        }
        (out, format::flows_shown(n))
    }

    /// The kernel's `/proc/net/nf_conntrack`.
    pub fn proc_nf_conntrack(&self, now: Instant) -> String {
        let mut out = String::new();
        for k in self.keys(Table::Conntrack, now) {
            self.listing_flow(&self.slots[k.idx as usize], now)
                .write_proc(&mut out);
            out.push('\n');
        }
        out
    }

    /// `conntrack -C`.
    pub fn conntrack_c(&self) -> String {
        format!("{}\n", self.count)
    }

    fn listing_flow(&self, e: &Entry, now: Instant) -> Flow {
        let confirmed = e.is_confirmed();
        Flow {
            orig: e.tuple[0],
            reply: e.tuple[1],
            timeout: Some(e.expires(now).as_secs()),
            tcp_state: e.tcp_state(),
            counters: (e.ext & EXT_ACCT != 0).then_some(e.acct),
            status: e.status,
            mark: Some(e.mark),
            zone: e.zone,
            delta_time: (e.ext & EXT_TSTAMP != 0 && confirmed).then(|| delta_secs(e.start, now)),
            helper: e.helper,
            use_count: Some(e.use_count),
            id: e.id,
        }
    }

    fn event_flow(&self, e: &Entry, mask: EventMask, now: Instant) -> Flow {
        let destroy = mask.intersects(EventMask::DESTROY);
        let left = e.expires(now).as_secs();
        Flow {
            orig: e.tuple[0],
            reply: e.tuple[1],
            // ctnetlink_dump_timeout(skip_zero = true).
            timeout: (left != 0).then_some(left),
            tcp_state: e
                .tcp_state()
                .filter(|_| destroy || mask.intersects(EventMask::PROTOINFO)),
            counters: (destroy && e.ext & EXT_ACCT != 0).then_some(e.acct),
            status: e.status,
            mark: (e.mark != 0 || mask.intersects(EventMask::MARK)).then_some(e.mark),
            zone: e.zone,
            delta_time: (destroy && e.ext & EXT_TSTAMP != 0).then(|| delta_secs(e.start, now)),
            helper: e.helper.filter(|_| !destroy),
            use_count: None,
            id: e.id,
        }
    }

    // ---------------------------------------------------------------- handle_*

    /// `nf_conntrack_in()`: track one IPv4 datagram at PRE_ROUTING or
    /// LOCAL_OUT in `zone` (from a CT template, else 0).
    ///
    /// A packet of a known connection gets that entry; the first packet of a
    /// new one creates an unconfirmed entry (not yet in the table) that
    /// [`confirm`](Self::confirm) inserts. ICMP errors quoting a known
    /// connection are RELATED to it. Everything else is INVALID.
    pub fn handle_packet(
        &mut self,
        pkt: &[u8],
        hook: CtHook,
        zone: Zone,
        now: Instant,
    ) -> PacketResult {
        self.last_now = now;
        let ip = match wire::parse_ipv4(pkt) {
            Ok(ip) => ip,
            Err(reason) => {
                self.stats.invalid += 1;
                return PacketResult::invalid(self.invalid(0, reason, false));
            }
        };
        let verify = hook == CtHook::PreRouting && self.sysctl.checksum;
        if ip.proto == IPPROTO_ICMP {
            match self.icmp_error(&ip, verify, zone, now) {
                IcmpError::NotError => {}
                IcmpError::Related(r) => return PacketResult::accepted(r, None),
                IcmpError::Invalid(inv) => {
                    self.stats.error += 1;
                    return PacketResult::invalid(inv);
                }
            }
        }
        let Some(tuple) = wire::packet_tuple(ip.src, ip.dst, ip.proto, ip.l4) else {
            self.stats.invalid += 1;
            return PacketResult::invalid(self.invalid(ip.proto, NO_TUPLE, false));
        };
        let hash = hash_raw(&tuple, zone);
        loop {
            let (idx, dir, fresh) = match self.find(&tuple, zone, hash, now) {
                Some((idx, dir)) => {
                    self.slots[idx as usize].use_count += 1;
                    (idx, dir, false)
                }
                None => match self.init_conntrack(&tuple, zone, hash, now) {
                    Ok(idx) => (idx, Dir::Original, true),
                    Err(None) => {
                        self.stats.invalid += 1;
                        return PacketResult::invalid(self.invalid(ip.proto, NO_INVERSE, false));
                    }
                    Err(Some(reason)) => {
                        self.stats.drop += 1;
                        return PacketResult::dropped(reason);
                    }
                },
            };
            let e = &self.slots[idx as usize];
            let ctinfo = if dir == Dir::Reply {
                CtInfo::EstablishedReply
            } else if e.status.contains(Status::SEEN_REPLY) {
                CtInfo::Established
            } else if e.status.contains(Status::EXPECTED) {
                CtInfo::Related
            } else {
                CtInfo::New
            };
            let outcome = match ip.proto {
                IPPROTO_TCP => self.tcp_packet(idx, dir, fresh, &ip, verify, now),
                IPPROTO_UDP => self.udp_packet(idx, dir, &ip, verify, now),
                IPPROTO_ICMP => self.icmp_packet(idx, dir, &ip, now),
                IPPROTO_GRE => self.gre_packet(idx, dir, &ip, now),
                _ => {
                    let t = self.sysctl.generic_timeout;
                    self.refresh_acct(idx, dir, t, ip.len, now);
                    L4Outcome::Accept(None)
                }
            };
            match outcome {
                L4Outcome::Accept(ignored) => {
                    let e = &mut self.slots[idx as usize];
                    if dir == Dir::Reply && !e.status.contains(Status::SEEN_REPLY) {
                        e.status.insert(Status::SEEN_REPLY);
                        self.cache_event(idx, EventMask::REPLY);
                    }
                    let key = EntryKey {
                        idx,
                        gen: self.slots[idx as usize].gen,
                    };
                    return PacketResult::accepted(EntryRef { key, ctinfo }, ignored);
                }
                L4Outcome::Invalid(inv) => {
                    self.put(idx);
                    self.stats.invalid += 1;
                    return PacketResult::invalid(inv);
                }
                // The tracker killed the old entry; look the packet up again.
                L4Outcome::Reopen => self.put(idx),
            }
        }
    }

    /// The packet passed the last hook (POST_ROUTING or LOCAL_IN at
    /// INT_MAX): `__nf_conntrack_confirm()` for the first packet of a new
    /// entry, then delivery of the entry's cached events. Consumes the
    /// packet's reference.
    pub fn confirm(&mut self, r: EntryRef, now: Instant) -> Confirmed {
        self.last_now = now;
        let mut idx = r.key.idx;
        debug_assert!(self.slots[idx as usize].gen == r.key.gen, "stale EntryRef");
        let mut verdict = Verdict::Accept;
        let e = &self.slots[idx as usize];
        if e.stage == Stage::Unconfirmed && r.ctinfo.dir() == Dir::Original {
            match self.insert(idx, r.ctinfo, now) {
                Ok(winner) => idx = winner,
                Err(reason) => verdict = Verdict::Drop { reason },
            }
        }
        if verdict == Verdict::Accept {
            self.deliver_events(idx, now);
        }
        let key = EntryKey {
            idx,
            gen: self.slots[idx as usize].gen,
        };
        self.put(idx);
        Confirmed {
            verdict,
            key: (verdict == Verdict::Accept).then_some(key),
        }
    }

    /// The packet is gone without passing confirm (dropped by a rule,
    /// consumed). An unconfirmed entry it created vanishes without event.
    pub fn release(&mut self, r: EntryRef) {
        debug_assert!(
            self.slots[r.key.idx as usize].gen == r.key.gen,
            "stale EntryRef"
        );
        self.put(r.key.idx);
    }

    /// Another reference to the same entry for a copy of the packet, or
    /// with another ctinfo (`nf_conntrack_attach()` gives REJECT's answer
    /// RELATED_REPLY / RELATED).
    pub fn attach(&mut self, r: &EntryRef, ctinfo: CtInfo) -> EntryRef {
        self.slots[r.key.idx as usize].use_count += 1;
        EntryRef { key: r.key, ctinfo }
    }

    /// Expire everything due at `now` (entries with DESTROY events,
    /// expectations), and run the GC's early-drop sweep if one is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        while let Some(&Reverse((d, i, g))) = self.timers.peek() {
            if d > now.0 {
                break;
            }
            self.timers.pop();
            if i & EXPECT_TIMER != 0 {
                self.expect_timer(i & !EXPECT_TIMER, g, now);
                continue;
            }
            let e = &mut self.slots[i as usize];
            if e.gen != g || e.stage != Stage::Confirmed || e.scheduled != d {
                continue; // stale node
            }
            if e.timeout <= d {
                e.scheduled = u64::MAX;
                self.kill(i, None, now);
            } else {
                // Refreshed since the node was pushed: re-queue it at its
                // real deadline (even if that is also due), so entries always
                // expire in deadline order whatever polling happened before.
                let t = e.timeout;
                e.scheduled = t;
                self.timers.push(Reverse((t, i, g)));
            }
        }
        if self.gc_sweep_at.is_some_and(|t| t <= now) {
            self.gc_sweep(now);
        }
        // Bound the stale nodes lazy deletion leaves behind.
        if self.timers.len() > 64 + 2 * (self.confirmed + self.expect_count) as usize {
            let slots = &self.slots;
            let expects = &self.expects;
            self.timers.retain(|&Reverse((d, i, g))| {
                if i & EXPECT_TIMER != 0 {
                    matches!(expects.get((i & !EXPECT_TIMER) as usize), Some(Some((x, xg))) if *xg == g && x.expires.0 == d)
                } else {
                    let e = &slots[i as usize];
                    e.gen == g && e.stage == Stage::Confirmed && e.scheduled == d
                }
            });
        }
    }

    // ---------------------------------------------------------------- poll_*

    /// The next instant [`handle_timeout`](Self::handle_timeout) has work:
    /// the earliest entry or expectation expiry, or a GC sweep.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let next = loop {
            let Some(&Reverse((d, i, g))) = self.timers.peek() else {
                break None;
            };
            if i & EXPECT_TIMER != 0 {
                match self.expects.get((i & !EXPECT_TIMER) as usize) {
                    Some(Some((x, xg))) if *xg == g && x.expires.0 == d => break Some(Instant(d)),
                    _ => {
                        self.timers.pop();
                        continue;
                    }
                }
            }
            let e = &mut self.slots[i as usize];
            if e.gen != g || e.stage != Stage::Confirmed || e.scheduled != d {
                self.timers.pop();
                continue;
            }
            if e.timeout > d {
                // Refreshed since: move the node to the real deadline.
                self.timers.pop();
                e.scheduled = e.timeout;
                self.timers.push(Reverse((e.timeout, i, g)));
                continue;
            }
            break Some(Instant(d));
        };
        match (next, self.gc_sweep_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next `conntrack -E` event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next `conntrack -E expect` event.
    pub fn poll_expect_event(&mut self) -> Option<ExpectEvent> {
        self.expect_events.pop_front()
    }

    /// The next kernel log line (e.g. the table-full message).
    pub fn poll_log(&mut self) -> Option<KernelLog> {
        self.logs.pop_front()
    }

    // ---------------------------------------------------------------- mutators

    /// `sysctl -w` for this namespace. Writing `nf_conntrack_buckets`
    /// rehashes the table.
    pub fn set_sysctl(&mut self, name: &str, value: &str) -> Result<(), String> {
        let old = self.sysctl.buckets;
        self.sysctl.set(name, value)?;
        if self.sysctl.buckets != old {
            self.rehash(self.sysctl.buckets);
        }
        Ok(())
    }

    /// Gives the hash table exactly `buckets` buckets (at least 1), below
    /// the 512 Linux allocates at the least: for tests that need every entry
    /// in one chain or inside early drop's 8-bucket window.
    pub fn resize_exact(&mut self, buckets: u32) {
        self.sysctl.buckets = buckets.max(1);
        self.rehash(self.sysctl.buckets);
    }

    /// Reads a sysctl by name (`nf_conntrack_count` included).
    pub fn get_sysctl(&self, name: &str) -> Result<String, String> {
        let v = self.sysctl.get(name)?;
        if name.ends_with("nf_conntrack_count") {
            return Ok(self.count.to_string());
        }
        Ok(v)
    }

    /// The netlink port id printed in `[USERSPACE] portid=` of events
    /// caused by [`flush`](Self::flush) and [`delete`](Self::delete).
    pub fn set_userspace_portid(&mut self, portid: u32) {
        self.portid = portid;
    }

    /// `conntrack -F`: delete every confirmed entry (DESTROY events marked
    /// USERSPACE). Returns how many.
    pub fn flush(&mut self, now: Instant) -> usize {
        self.delete_matching(&Filter::default(), now, true).len()
    }

    /// `conntrack -D` with a filter: returns the `-L`-format lines of the
    /// deleted entries (what conntrack prints to stdout), in id order.
    pub fn delete(&mut self, filter: &Filter, opts: FormatOpts, now: Instant) -> Vec<String> {
        let keys = self.delete_matching(filter, now, false);
        keys.into_iter()
            .filter_map(|(_, line)| line)
            .map(|l| render(&l, opts))
            .collect()
    }

    /// Sets the connmark (CONNMARK target, `ct mark set`): an UPDATE event
    /// at the next confirm if it changed.
    pub fn set_mark(&mut self, key: EntryKey, mark: u32) {
        if let Some(e) = self.get(key) {
            if e.mark != mark {
                self.slots[key.idx as usize].mark = mark;
                self.cache_event(key.idx, EventMask::MARK);
            }
        }
    }

    /// Attaches a helper by name (CT target template, for an entry not yet
    /// confirmed): sets IPS_HELPER; the NEW event carries `helper=`.
    /// Like `init_conntrack()`, a template's helper is not applied to an
    /// expected connection (it keeps the expectation's, or none).
    pub fn set_helper(&mut self, key: EntryKey, name: &'static str) {
        if self
            .get(key)
            .is_some_and(|e| !e.status.contains(Status::EXPECTED))
        {
            let e = &mut self.slots[key.idx as usize];
            e.helper = Some(name);
            e.status.insert(Status::HELPER);
            e.help.get_or_insert_with(Box::default);
        }
    }

    /// `nf_ct_expect_related()`: insert an expectation for `master`.
    pub fn expect_related(&mut self, x: NewExpectation, now: Instant) -> Result<(), ExpectError> {
        self.expect_related_flags(x, now, false)
    }

    /// `nf_ct_expect_related(exp, NF_CT_EXP_F_SKIP_MASTER)` (SIP's media
    /// expectations): an identical expectation of another master is
    /// `Already` instead of `Busy`. Without the flag, only the same
    /// master's identical expectation is replaced; another master's
    /// counts as a clash.
    pub fn expect_related_flags(
        &mut self,
        x: NewExpectation,
        now: Instant,
        skip_master: bool,
    ) -> Result<(), ExpectError> {
        let master = self
            .get(x.master)
            .filter(|m| !m.is_dying())
            .ok_or(ExpectError::NoMaster)?;
        let new = Expectation {
            tuple: x.tuple,
            mask: x.mask,
            master: x.master,
            master_tuple: master.tuple[0],
            zone: master.zone,
            class: x.class,
            flags: x.flags,
            helper: x.helper,
            child_helper: x.child_helper,
            nat: x.nat,
            expires: now + x.timeout,
            seq: self.expect_seq,
        };
        // Identical: replace if same master and class, else refuse;
        // overlapping: refuse (`__nf_ct_expect_check()`).
        let mut replace = None;
        for (i, slot) in self.expects.iter().enumerate() {
            let Some((old, _)) = slot else { continue };
            if (skip_master || old.master == new.master) && old.same_as(&new) {
                if old.master == new.master && old.class == new.class {
                    replace = Some(i);
                } else {
                    return Err(ExpectError::Already);
                }
            } else if old.clashes(&new) {
                return Err(ExpectError::Busy);
            }
        }
        if let Some(i) = replace {
            self.unlink_expect(i as u32, now);
        }
        if x.max_expected != 0 {
            let mut mine: Vec<(u64, u32)> = self
                .expects
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|(e, _)| (e, i)))
                .filter(|(e, _)| e.master == new.master && e.class == new.class)
                .map(|(e, i)| (e.seq, i as u32))
                .collect();
            if mine.len() as u32 >= x.max_expected {
                // Evict this master's oldest of the class.
                mine.sort_unstable();
                self.unlink_expect(mine[0].1, now);
                if mine.len() as u32 > x.max_expected {
                    return Err(ExpectError::TooMany);
                }
            }
        }
        if self.expect_count >= self.sysctl.expect_max {
            self.kernel_log(now, EXPECT_TABLE_FULL_MSG);
            return Err(ExpectError::TooMany);
        }
        self.expect_seq += 1;
        let i = match self.expect_free.pop() {
            Some(i) => i,
            None => {
                self.expects.push(None);
                (self.expects.len() - 1) as u32
            }
        };
        let gen = self.expect_seq as u32;
        self.expects[i as usize] = Some((new, gen));
        self.expect_count += 1;
        self.stats.expect_create += 1;
        self.timers
            .push(Reverse((new.expires.0, i | EXPECT_TIMER, gen)));
        self.expect_events.push_back(ExpectEvent {
            at: now,
            kind: EventKind::New,
            body: new.line(now),
        });
        Ok(())
    }

    // ---------------------------------------------------------------- internals

    fn invalid(&self, proto: u8, reason: &'static str, logged: bool) -> Invalid {
        let l = self.sysctl.log_invalid;
        Invalid {
            proto,
            reason,
            addrs: None,
            log: logged && (l == proto || l == 255),
        }
    }

    fn kernel_log(&mut self, now: Instant, text: &str) {
        let rl = &mut self.ratelimit;
        let begin = *rl.begin.get_or_insert(now);
        if now.0 >= begin.0.saturating_add(5 * NS_PER_SEC) {
            if rl.missed > 0 {
                let missed = rl.missed;
                self.logs.push_back(KernelLog {
                    at: now,
                    text: format!("net_ratelimit: {missed} callbacks suppressed"),
                });
            }
            let rl = &mut self.ratelimit;
            rl.begin = Some(now);
            rl.printed = 0;
            rl.missed = 0;
        }
        let rl = &mut self.ratelimit;
        if rl.printed < 10 {
            rl.printed += 1;
            self.logs.push_back(KernelLog {
                at: now,
                text: text.to_string(),
            });
        } else {
            rl.missed += 1;
        }
    }

    /// `____nf_conntrack_find()`: walks the chain, reaping expired entries
    /// on the way as Linux does.
    #[inline]
    fn find(&mut self, t: &Tuple, zone: Zone, hash: u32, now: Instant) -> Option<(u32, Dir)> {
        let b = scale(hash, self.buckets.len());
        let mut node = self.buckets[b];
        while node != NIL {
            let idx = node >> 1;
            let d = (node & 1) as usize;
            let e = &self.slots[idx as usize];
            if e.expired(now) {
                self.kill(idx, None, now);
                node = self.buckets[b];
                continue;
            }
            if e.tuple[d] == *t && e.zone == zone {
                return Some((idx, if d == 0 { Dir::Original } else { Dir::Reply }));
            }
            node = e.next[d];
        }
        None
    }

    /// `init_conntrack()` + `__nf_conntrack_alloc()`. `Err(None)`: the tuple
    /// cannot be inverted (INVALID, nothing allocated); `Err(Some(_))`:
    /// table full, the packet is dropped.
    fn init_conntrack(
        &mut self,
        tuple: &Tuple,
        zone: Zone,
        hash: u32,
        now: Instant,
    ) -> Result<u32, Option<&'static str>> {
        let reply = tuple.invert().ok_or(None)?;
        self.count += 1;
        if self.sysctl.max != 0 && self.count > self.sysctl.max && !self.early_drop(hash, now) {
            self.count -= 1;
            if self.gc_sweep_at.is_none() {
                self.gc_sweep_at = Some(now + GC_SCAN_INTERVAL_MIN);
            }
            self.kernel_log(now, TABLE_FULL_MSG);
            return Err(Some("table full"));
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Entry::vacant());
                (self.slots.len() - 1) as u32
            }
        };
        let mut ext = 0;
        if self.sysctl.acct {
            ext |= EXT_ACCT;
        }
        if self.sysctl.timestamp {
            ext |= EXT_TSTAMP;
        }
        if self.sysctl.events != 0 {
            ext |= EXT_ECACHE;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let l4 = match tuple.proto {
            IPPROTO_UDP => L4::Udp { stream_ts: now },
            IPPROTO_ICMP => L4::Icmp,
            _ => L4::Generic, // TCP: set once tcp_new() accepted the packet
        };
        let e = &mut self.slots[idx as usize];
        let gen = e.gen;
        *e = Entry {
            tuple: [*tuple, reply],
            id,
            use_count: 1,
            gen,
            zone,
            stage: Stage::Unconfirmed,
            ext,
            l4,
            ..Entry::vacant()
        };
        if self.expect_count > 0 {
            self.use_expectation(idx, tuple, zone, now);
        }
        if self.sysctl.auto_helper && self.slots[idx as usize].master == NIL {
            self.auto_assign_helper(idx);
        }
        Ok(idx)
    }

    /// `nf_ct_find_expectation()` and what `init_conntrack()` does with it.
    fn use_expectation(&mut self, idx: u32, tuple: &Tuple, zone: Zone, now: Instant) {
        let mut best: Option<(u64, u32)> = None;
        for (i, slot) in self.expects.iter().enumerate() {
            let Some((x, _)) = slot else { continue };
            if x.flags & crate::expect::INACTIVE == 0
                && x.matches(tuple, zone)
                && best.is_none_or(|(s, _)| x.seq < s)
            {
                best = Some((x.seq, i as u32));
            }
        }
        let Some((_, xi)) = best else { return };
        let (x, _) = self.expects[xi as usize].expect("live expectation");
        // The master must be confirmed and alive.
        let Some(m) = self
            .get(x.master)
            .filter(|m| m.stage == Stage::Confirmed && !m.is_dying())
        else {
            return;
        };
        let mark = m.mark;
        let midx = x.master.idx;
        self.slots[midx as usize].use_count += 1;
        let e = &mut self.slots[idx as usize];
        e.status.insert(Status::EXPECTED);
        e.master = midx;
        e.mark = mark;
        if let Some(h) = x.child_helper {
            e.helper = Some(h);
        }
        if x.child_helper.is_some() || x.nat.is_some() {
            e.help.get_or_insert_with(Box::default).follow = x.nat;
        }
        self.stats.expect_new += 1;
        if x.flags & PERMANENT == 0 {
            self.unlink_expect(xi, now);
        }
    }

    fn unlink_expect(&mut self, i: u32, now: Instant) {
        if let Some((x, _)) = self.expects[i as usize].take() {
            self.expect_free.push(i);
            self.expect_count -= 1;
            self.stats.expect_delete += 1;
            self.expect_events.push_back(ExpectEvent {
                at: now,
                kind: EventKind::Destroy,
                body: x.line(now),
            });
        }
    }

    fn expect_timer(&mut self, i: u32, gen: u32, now: Instant) {
        if matches!(self.expects.get(i as usize), Some(Some((_, g))) if *g == gen) {
            self.unlink_expect(i, now);
        }
    }

    /// `early_drop()`: look at up to 8 buckets from the new tuple's; in the
    /// first that yields anything, delete every entry that is not ASSURED
    /// (reaping expired ones on the way).
    fn early_drop(&mut self, hash: u32, now: Instant) -> bool {
        let n = self.buckets.len();
        let mut bucket = scale(hash, n);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = false;
        for i in 0..EVICTION_RANGE {
            if i > 0 {
                bucket = (bucket + 1) % n;
            }
            scratch.clear();
            let mut node = self.buckets[bucket];
            while node != NIL {
                scratch.push(node >> 1);
                node = self.slots[(node >> 1) as usize].next[(node & 1) as usize];
            }
            let mut drops = 0;
            for &idx in &scratch {
                let e = &self.slots[idx as usize];
                if e.stage != Stage::Confirmed {
                    continue; // deleted a moment ago through its other tuple
                }
                if e.expired(now) {
                    self.kill(idx, None, now);
                    continue;
                }
                if e.status.intersects(Status::ASSURED | Status::DYING) {
                    continue;
                }
                if self.kill(idx, None, now) {
                    drops += 1;
                }
            }
            if drops > 0 {
                self.stats.early_drop += drops;
                result = true;
                break;
            }
        }
        self.scratch = scratch;
        result
    }

    /// The GC worker's pass in early-drop mode (`gc_worker()` with
    /// `nf_conntrack_max95`): while the table holds at least 95 % of max,
    /// kill entries that are not ASSURED, or ASSURED TCP in a closing state.
    fn gc_sweep(&mut self, now: Instant) {
        self.gc_sweep_at = None;
        let max95 = self.sysctl.max / 100 * 95;
        if max95 == 0 {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        for b in 0..self.buckets.len() {
            scratch.clear();
            let mut node = self.buckets[b];
            while node != NIL {
                scratch.push(node >> 1);
                node = self.slots[(node >> 1) as usize].next[(node & 1) as usize];
            }
            for &idx in &scratch {
                let e = &self.slots[idx as usize];
                if e.stage != Stage::Confirmed || e.is_dying() {
                    continue;
                }
                if e.expired(now) {
                    self.kill(idx, None, now);
                    continue;
                }
                if self.count < max95 {
                    continue;
                }
                let can = if e.status.contains(Status::OFFLOAD) && e.tuple[0].proto != IPPROTO_UDP {
                    false
                } else {
                    !e.status.contains(Status::ASSURED)
                        || e.tcp_state().is_some_and(TcpConntrack::can_early_drop)
                };
                if can {
                    self.kill(idx, None, now);
                }
            }
        }
        self.scratch = scratch;
    }

    /// `nf_ct_delete()`: mark DYING, DESTROY event, unlink, drop the
    /// table's reference. `portid`: deleted from userspace.
    fn kill(&mut self, idx: u32, portid: Option<u32>, now: Instant) -> bool {
        let e = &mut self.slots[idx as usize];
        if e.status.contains(Status::DYING) {
            return false;
        }
        e.status.insert(Status::DYING);
        let confirmed = e.stage == Stage::Confirmed;
        if confirmed && e.ext & EXT_ECACHE != 0 {
            let flow = self.event_flow(&self.slots[idx as usize], EventMask::DESTROY, now);
            let e = &self.slots[idx as usize];
            self.events.push_back(Event {
                at: now,
                kind: EventKind::Destroy,
                mask: EventMask::DESTROY,
                entry: EntryKey { idx, gen: e.gen },
                userspace_portid: portid,
                flow,
            });
        }
        if confirmed {
            let clash = self.slots[idx as usize].status.contains(Status::NAT_CLASH);
            if !clash {
                self.unlink(idx, 0);
            }
            self.unlink(idx, 1);
            self.confirmed -= 1;
            self.slots[idx as usize].stage = Stage::Dying;
            self.remove_expectations(idx, now);
            self.put(idx);
        }
        true
    }

    /// `nf_ct_remove_expectations()`: drop every expectation `idx` is the
    /// master of.
    fn remove_expectations(&mut self, idx: u32, now: Instant) {
        if self.expect_count == 0 {
            return;
        }
        let master = EntryKey {
            idx,
            gen: self.slots[idx as usize].gen,
        };
        let mine: Vec<u32> = (0..self.expects.len() as u32)
            .filter(|&i| matches!(&self.expects[i as usize], Some((x, _)) if x.master == master))
            .collect();
        for i in mine {
            self.unlink_expect(i, now);
        }
    }

    /// `nf_ct_put()`.
    #[inline]
    fn put(&mut self, idx: u32) {
        let e = &mut self.slots[idx as usize];
        debug_assert!(e.use_count > 0);
        e.use_count -= 1;
        if e.use_count == 0 {
            self.free_slot(idx);
        }
    }

    /// `nf_ct_destroy()` + `nf_conntrack_free()`. Expectations of an entry
    /// that never got confirmed (a helper may expect on the first packet)
    /// go with it.
    fn free_slot(&mut self, idx: u32) {
        self.remove_expectations(idx, self.last_now);
        if self.slots[idx as usize]
            .status
            .contains(Status::SRC_NAT_DONE)
        {
            self.unlink_src(idx);
        }
        let e = &mut self.slots[idx as usize];
        let master = e.master;
        let gen = e.gen.wrapping_add(1);
        *e = Entry {
            gen,
            ..Entry::vacant()
        };
        self.free.push(idx);
        self.count -= 1;
        if master != NIL {
            self.put(master);
        }
    }

    fn link(&mut self, idx: u32, d: usize, bucket: usize) {
        self.slots[idx as usize].next[d] = self.buckets[bucket];
        self.buckets[bucket] = idx << 1 | d as u32;
    }

    fn unlink(&mut self, idx: u32, d: usize) {
        let e = &self.slots[idx as usize];
        let b = scale(hash_raw(&e.tuple[d], e.zone), self.buckets.len());
        let target = idx << 1 | d as u32;
        let after = e.next[d];
        if self.buckets[b] == target {
            self.buckets[b] = after;
        } else {
            let mut cur = self.buckets[b];
            while cur != NIL {
                let c = &mut self.slots[(cur >> 1) as usize].next[(cur & 1) as usize];
                if *c == target {
                    *c = after;
                    break;
                }
                cur = *c;
            }
            debug_assert!(cur != NIL, "hash node not in its chain");
        }
        self.slots[idx as usize].next[d] = NIL;
    }

    fn rehash(&mut self, n: u32) {
        self.buckets = vec![NIL; n.max(1) as usize];
        for idx in 0..self.slots.len() as u32 {
            let e = &self.slots[idx as usize];
            if e.stage != Stage::Confirmed {
                continue;
            }
            let clash = e.status.contains(Status::NAT_CLASH);
            for d in 0..2 {
                if d == 0 && clash {
                    continue;
                }
                let e = &self.slots[idx as usize];
                let b = scale(hash_raw(&e.tuple[d], e.zone), self.buckets.len());
                self.link(idx, d, b);
            }
        }
    }

    /// Whether chain `bucket` holds a confirmed entry with `t` in `zone`
    /// (`nf_ct_key_equal()` walk); `Err(())` when the chain is too long.
    fn chain_find(&self, bucket: usize, t: &Tuple, zone: Zone) -> Result<Option<u32>, ()> {
        let mut chainlen = 0;
        let mut node = self.buckets[bucket];
        while node != NIL {
            let e = &self.slots[(node >> 1) as usize];
            let d = (node & 1) as usize;
            if e.tuple[d] == *t && e.zone == zone {
                return Ok(Some(node));
            }
            if chainlen > MAX_CHAINLEN {
                return Err(());
            }
            chainlen += 1;
            node = e.next[d];
        }
        Ok(None)
    }

    /// `__nf_conntrack_confirm()`. Returns the entry the packet belongs to
    /// (itself, or the clash winner it merged into).
    fn insert(&mut self, idx: u32, ctinfo: CtInfo, now: Instant) -> Result<u32, &'static str> {
        let e = &mut self.slots[idx as usize];
        e.status.insert(Status::CONFIRMED);
        if e.status.contains(Status::DYING) {
            self.stats.insert_failed += 1;
            return Err("entry dying");
        }
        let (t0, t1, zone) = (e.tuple[0], e.tuple[1], e.zone);
        let n = self.buckets.len();
        let h0 = scale(hash_raw(&t0, zone), n);
        let h1 = scale(hash_raw(&t1, zone), n);
        let clash = match self.chain_find(h0, &t0, zone) {
            Ok(Some(node)) => Some(node),
            Ok(None) => match self.chain_find(h1, &t1, zone) {
                Ok(c) => c,
                Err(()) => return Err(self.chain_too_long(idx)),
            },
            Err(()) => return Err(self.chain_too_long(idx)),
        };
        if let Some(node) = clash {
            return self.resolve_clash(idx, node >> 1, h1, ctinfo, now);
        }
        let e = &mut self.slots[idx as usize];
        e.timeout = now.0.saturating_add(e.timeout);
        e.use_count += 1; // the table's reference
        e.start = now;
        e.stage = Stage::Confirmed;
        e.scheduled = e.timeout;
        let (t, g, has_master, has_helper) =
            (e.timeout, e.gen, e.master != NIL, e.helper.is_some());
        self.link(idx, 0, h0);
        self.link(idx, 1, h1);
        self.confirmed += 1;
        self.timers.push(Reverse((t, idx, g)));
        if has_helper {
            self.cache_event(idx, EventMask::HELPER);
        }
        self.cache_event(
            idx,
            if has_master {
                EventMask::RELATED
            } else {
                EventMask::NEW
            },
        );
        Ok(idx)
    }

    fn chain_too_long(&mut self, idx: u32) -> &'static str {
        self.slots[idx as usize].status.remove(Status::CONFIRMED);
        self.stats.chaintoolong += 1;
        self.stats.insert_failed += 1;
        "chain too long"
    }

    /// `nf_ct_resolve_clash()`: UDP and ICMP may merge into the entry that
    /// won the race, or be inserted by their reply tuple only.
    fn resolve_clash(
        &mut self,
        loser: u32,
        winner: u32,
        h1: usize,
        ctinfo: CtInfo,
        now: Instant,
    ) -> Result<u32, &'static str> {
        if allows_clash(self.slots[loser as usize].tuple[0].proto) {
            if self.merge_clash(loser, winner, ctinfo) {
                return Ok(winner);
            }
            // nf_ct_resolve_clash_harder().
            let (t1, zone) = (
                self.slots[loser as usize].tuple[1],
                self.slots[loser as usize].zone,
            );
            match self.chain_find(h1, &t1, zone) {
                Ok(Some(node)) => {
                    if self.merge_clash(loser, node >> 1, ctinfo) {
                        return Ok(node >> 1);
                    }
                }
                Ok(None) | Err(()) => {
                    let e = &mut self.slots[loser as usize];
                    e.timeout = now.0.saturating_add(NS_PER_SEC);
                    e.status.insert(Status::FIXED_TIMEOUT | Status::NAT_CLASH);
                    e.use_count += 1;
                    e.start = now;
                    e.stage = Stage::Confirmed;
                    e.scheduled = e.timeout;
                    let (t, g) = (e.timeout, e.gen);
                    self.link(loser, 1, h1);
                    self.confirmed += 1;
                    self.timers.push(Reverse((t, loser, g)));
                    self.stats.clash_resolve += 1;
                    return Ok(loser);
                }
            }
        }
        self.slots[loser as usize].status.remove(Status::CONFIRMED);
        self.stats.drop += 1;
        self.stats.insert_failed += 1;
        Err("insert clash")
    }

    /// `__nf_ct_resolve_clash()`: move the packet to the winner if the two
    /// entries are the same flow.
    fn merge_clash(&mut self, loser: u32, winner: u32, ctinfo: CtInfo) -> bool {
        let w = &self.slots[winner as usize];
        let l = &self.slots[loser as usize];
        if w.is_dying() {
            return false;
        }
        let same = w.tuple == l.tuple && w.zone == l.zone;
        if !w.status.intersects(Status::NAT_DONE_MASK) || same {
            let d = ctinfo.dir() as usize;
            let loser_acct = (l.ext & EXT_ACCT != 0).then_some(l.acct[d].bytes);
            let w = &mut self.slots[winner as usize];
            w.use_count += 1;
            if let (Some(bytes), true) = (loser_acct, w.ext & EXT_ACCT != 0) {
                w.acct[d].packets += 1;
                w.acct[d].bytes += bytes;
            }
            self.slots[loser as usize].status.remove(Status::CONFIRMED);
            self.put(loser);
            self.stats.clash_resolve += 1;
            return true;
        }
        false
    }

    #[inline]
    fn cache_event(&mut self, idx: u32, bits: EventMask) {
        let e = &mut self.slots[idx as usize];
        if e.ext & EXT_ECACHE != 0 {
            e.events |= bits;
        }
    }

    /// `nf_ct_deliver_cached_events()`: only for confirmed, live entries.
    fn deliver_events(&mut self, idx: u32, now: Instant) {
        let e = &mut self.slots[idx as usize];
        if e.events.is_empty() || e.stage != Stage::Confirmed || e.is_dying() {
            return;
        }
        let mask = std::mem::take(&mut e.events);
        let kind = if mask.intersects(EventMask::NEW | EventMask::RELATED) {
            EventKind::New
        } else {
            EventKind::Update
        };
        let flow = self.event_flow(&self.slots[idx as usize], mask, now);
        let gen = self.slots[idx as usize].gen;
        self.events.push_back(Event {
            at: now,
            kind,
            mask,
            entry: EntryKey { idx, gen },
            userspace_portid: None,
            flow,
        });
    }

    /// `nf_ct_refresh_acct()`.
    #[inline]
    fn refresh_acct(&mut self, idx: u32, dir: Dir, extra: Duration, len: usize, now: Instant) {
        let e = &mut self.slots[idx as usize];
        if e.ext & EXT_ACCT != 0 {
            let c = &mut e.acct[dir as usize];
            c.packets += 1;
            c.bytes += len as u64;
        }
        self.refresh(idx, extra, now);
    }

    /// `__nf_ct_refresh_acct()` without the accounting.
    #[inline]
    fn refresh(&mut self, idx: u32, extra: Duration, now: Instant) {
        let e = &mut self.slots[idx as usize];
        if e.status.contains(Status::FIXED_TIMEOUT) {
            return;
        }
        if e.stage == Stage::Confirmed {
            let t = now.0.saturating_add(extra.0);
            e.timeout = t;
            if t < e.scheduled {
                e.scheduled = t;
                self.timers.push(Reverse((t, idx, e.gen)));
            }
        } else {
            e.timeout = extra.0;
        }
    }

    /// `nf_conntrack_tcp_packet()` around the TCP tracker.
    fn tcp_packet(
        &mut self,
        idx: u32,
        dir: Dir,
        fresh: bool,
        ip: &Ipv4<'_>,
        verify: bool,
        now: Instant,
    ) -> L4Outcome {
        let sum_ok = !verify || wire::l4_checksum_ok(ip.src, ip.dst, IPPROTO_TCP, ip.l4);
        let mut seg = match TcpSegment::parse_with_checksum(ip.l4, ip.l4.len(), sum_ok) {
            Ok(s) => s,
            Err(r) => return L4Outcome::Invalid(self.invalid(IPPROTO_TCP, r, true)),
        };
        if fresh {
            match Tcp::new(&seg, &self.sysctl.tcp) {
                Ok(t) => self.slots[idx as usize].l4 = L4::Tcp(t),
                Err(r) => {
                    return L4Outcome::Invalid(self.invalid(
                        IPPROTO_TCP,
                        r,
                        r != crate::tcp::LOOSE_OFF,
                    ))
                }
            }
        }
        let e = &mut self.slots[idx as usize];
        if e.status.contains(Status::SEQ_ADJUST) {
            // tcp_in_window(): acks name the other direction's bytes as
            // the receiver numbered them, after a NAT helper resized some.
            if let Some(h) = &e.help {
                let other = &h.seqadj[dir.opposite() as usize];
                seg.ack_offset = other.offset(seg.ack.wrapping_sub(1)) as u32;
            }
        }
        let (seen_reply, assured) = (
            e.status.contains(Status::SEEN_REPLY),
            e.status.contains(Status::ASSURED),
        );
        let L4::Tcp(tcp) = &mut e.l4 else {
            unreachable!("TCP entry without TCP state")
        };
        let old = tcp.state();
        let out = tcp.packet(dir, &seg, seen_reply, assured, &self.sysctl.tcp);
        let changed = tcp.state() != old;
        if changed && out.is_accepted() {
            self.cache_event(idx, EventMask::PROTOINFO);
        }
        match out {
            TcpOutcome::Accept {
                timeout,
                assured: set,
            } => {
                self.refresh_acct(idx, dir, timeout, ip.len, now);
                let e = &mut self.slots[idx as usize];
                if set && !e.status.contains(Status::ASSURED) {
                    e.status.insert(Status::ASSURED);
                    self.cache_event(idx, EventMask::ASSURED);
                }
                L4Outcome::Accept(None)
            }
            TcpOutcome::AcceptNoRefresh => L4Outcome::Accept(None),
            TcpOutcome::AcceptAndDestroy => {
                // nf_ct_kill_acct().
                let e = &mut self.slots[idx as usize];
                if e.ext & EXT_ACCT != 0 {
                    let c = &mut e.acct[dir as usize];
                    c.packets += 1;
                    c.bytes += ip.len as u64;
                }
                self.kill(idx, None, now);
                L4Outcome::Accept(None)
            }
            TcpOutcome::Invalid { reason } => {
                L4Outcome::Invalid(self.invalid(IPPROTO_TCP, reason, true))
            }
            TcpOutcome::InvalidLowerTimeout { reason, timeout } => {
                // nf_tcp_handle_invalid().
                let e = &self.slots[idx as usize];
                if e.stage == Stage::Confirmed && !e.status.contains(Status::FIXED_TIMEOUT) {
                    let left = e.expires(now);
                    if left >= Duration::from_secs(120) && left > timeout {
                        self.refresh(idx, timeout, now);
                    }
                }
                L4Outcome::Invalid(self.invalid(IPPROTO_TCP, reason, true))
            }
            TcpOutcome::Reopen => {
                self.kill(idx, None, now);
                L4Outcome::Reopen
            }
            TcpOutcome::Ignore { reason } => L4Outcome::Accept(Some(reason)),
        }
    }

    /// `nf_conntrack_udp_packet()` with `udp_error()`.
    fn udp_packet(
        &mut self,
        idx: u32,
        dir: Dir,
        ip: &Ipv4<'_>,
        verify: bool,
        now: Instant,
    ) -> L4Outcome {
        let l4 = ip.l4;
        if l4.len() < 8 {
            return L4Outcome::Invalid(self.invalid(IPPROTO_UDP, "short packet", true));
        }
        let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
        if ulen > l4.len() || ulen < 8 {
            return L4Outcome::Invalid(self.invalid(
                IPPROTO_UDP,
                "truncated/malformed packet",
                true,
            ));
        }
        if verify && (l4[6] | l4[7]) != 0 && !wire::l4_checksum_ok(ip.src, ip.dst, IPPROTO_UDP, l4)
        {
            return L4Outcome::Invalid(self.invalid(IPPROTO_UDP, "bad checksum", true));
        }
        let (unreplied, stream) = (self.sysctl.udp_timeout, self.sysctl.udp_timeout_stream);
        let e = &mut self.slots[idx as usize];
        let status = e.status;
        let L4::Udp { stream_ts } = &mut e.l4 else {
            unreachable!("UDP entry without UDP state")
        };
        if !status.contains(Status::CONFIRMED) {
            *stream_ts = now + Duration::from_secs(2);
        }
        if status.contains(Status::SEEN_REPLY) {
            // Still active two seconds after the first packet: a stream.
            let (extra, make_assured) = if now > *stream_ts {
                (stream, !status.contains(Status::ASSURED))
            } else {
                (unreplied, false)
            };
            self.refresh_acct(idx, dir, extra, ip.len, now);
            // Never ASSURED for IPS_NAT_CLASH: they time out soon.
            if make_assured && !status.contains(Status::NAT_CLASH) {
                self.slots[idx as usize].status.insert(Status::ASSURED);
                self.cache_event(idx, EventMask::ASSURED);
            }
        } else {
            self.refresh_acct(idx, dir, unreplied, ip.len, now);
        }
        L4Outcome::Accept(None)
    }

    /// `gre_packet()`: 30 s until traffic was seen both ways (the reply
    /// that shows it still gets 30 s: SEEN_REPLY is set after the
    /// tracker ran), then 180 s and [ASSURED].
    fn gre_packet(&mut self, idx: u32, dir: Dir, ip: &Ipv4<'_>, now: Instant) -> L4Outcome {
        let status = self.slots[idx as usize].status;
        if status.contains(Status::SEEN_REPLY) {
            let t = self.sysctl.gre_timeout_stream;
            self.refresh_acct(idx, dir, t, ip.len, now);
            if !status.intersects(Status::ASSURED | Status::NAT_CLASH) {
                self.slots[idx as usize].status.insert(Status::ASSURED);
                self.cache_event(idx, EventMask::ASSURED);
            }
        } else {
            let t = self.sysctl.gre_timeout;
            self.refresh_acct(idx, dir, t, ip.len, now);
        }
        L4Outcome::Accept(None)
    }

    /// `nf_conntrack_icmp_packet()`: queries and their replies.
    fn icmp_packet(&mut self, idx: u32, dir: Dir, ip: &Ipv4<'_>, now: Instant) -> L4Outcome {
        if !icmp_valid_new(self.slots[idx as usize].tuple[0].icmp_type()) {
            return L4Outcome::Invalid(self.invalid(IPPROTO_ICMP, ICMP_NOT_NEW, false));
        }
        let t = self.sysctl.icmp_timeout;
        self.refresh_acct(idx, dir, t, ip.len, now);
        L4Outcome::Accept(None)
    }

    /// `nf_conntrack_icmpv4_error()` + `nf_conntrack_inet_error()`.
    fn icmp_error(&mut self, ip: &Ipv4<'_>, verify: bool, zone: Zone, now: Instant) -> IcmpError {
        let l4 = ip.l4;
        if l4.len() < 8 {
            return IcmpError::Invalid(self.invalid(IPPROTO_ICMP, "short packet", true));
        }
        if verify && !wire::icmp_checksum_ok(l4) {
            return IcmpError::Invalid(self.invalid(IPPROTO_ICMP, "bad hw icmp checksum", true));
        }
        // RFC 1122 3.2.2: unknown types must be silently discarded.
        if l4[0] > icmp_type::NR_ICMP_TYPES {
            return IcmpError::Invalid(self.invalid(IPPROTO_ICMP, "invalid icmp type", true));
        }
        if !icmp_is_error(l4[0]) {
            return IcmpError::NotError;
        }
        // Are they talking about one of our connections?
        let Some(inner) = wire::quoted_tuple(&l4[8..]).and_then(|t| t.invert()) else {
            return IcmpError::Invalid(self.invalid(IPPROTO_ICMP, ICMP_QUOTE_UNTRACKABLE, false));
        };
        let Some((idx, dir)) = self.find(&inner, zone, hash_raw(&inner, zone), now) else {
            return IcmpError::Invalid(self.invalid(IPPROTO_ICMP, ICMP_NO_MATCH, false));
        };
        let e = &mut self.slots[idx as usize];
        let ct_daddr = e.tuple[dir as usize].dst;
        if ip.dst != ct_daddr {
            let mut inv = self.invalid(IPPROTO_ICMP, "outer daddr", true);
            inv.addrs = Some((ip.dst, ct_daddr));
            return IcmpError::Invalid(inv);
        }
        e.use_count += 1;
        let ctinfo = if dir == Dir::Reply {
            CtInfo::RelatedReply
        } else {
            CtInfo::Related
        };
        IcmpError::Related(EntryRef {
            key: EntryKey { idx, gen: e.gen },
            ctinfo,
        })
    }

    /// Deletes matching confirmed entries as ctnetlink does (DESTROY with
    /// `[USERSPACE]`); returns their keys and listing lines, in id order.
    fn delete_matching(
        &mut self,
        filter: &Filter,
        now: Instant,
        flush: bool,
    ) -> Vec<(EntryKey, Option<Flow>)> {
        let keys: Vec<EntryKey> = self
            .keys(Table::Conntrack, now)
            .into_iter()
            .filter(|k| filter.matches(&self.slots[k.idx as usize]))
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let line = (!flush).then(|| self.listing_flow(&self.slots[k.idx as usize], now));
            let portid = self.portid;
            if self.kill(k.idx, Some(portid), now) {
                out.push((k, line));
            }
        }
        out
    }
}

fn render(f: &Flow, opts: FormatOpts) -> String {
    let mut s = String::new();
    f.write(&mut s, opts);
    s
}

/// libnetfilter_conntrack's `delta-time`: whole seconds of stop minus whole
/// seconds of start (the run starts at a whole second).
fn delta_secs(start: Instant, stop: Instant) -> u64 {
    (stop.0 / NS_PER_SEC).saturating_sub(start.0 / NS_PER_SEC)
}
