//! What NAT needs from the table: the uniqueness checks of `nf_nat_core.c`
//! (`nf_nat_used_tuple()` and its `_new`/`_harder` variants over
//! `nf_conntrack_tuple_taken()`), the by-source index of source bindings
//! (`nf_nat_bysource`), and the binding itself (`nf_conntrack_alter_reply()`
//! plus the status bits of `nf_nat_setup_info()`). Reference:
//! reference/nat.md §2–§4.
//!
//! The choice of a tuple (ranges, hashing, the port search) is the NAT
//! layer's (ctsim-netfilter `nat`); this module only answers "is it free?"
//! and records the answer, because both need the table's private chains.
//!
//! # The by-source index
//!
//! Linux links every entry with a source binding (null bindings included)
//! into a hash keyed by its ORIGINAL source address, source port, protocol
//! and zone, at `nf_nat_setup_info()` time (unconfirmed entries included),
//! and unlinks it only when the entry is freed (`remove_nat_bysrc` from
//! `nf_conntrack_free()`), so a dying entry still held by a packet stays
//! findable. We do the same with an intrusive chain (`Entry::src_next`):
//! binding and freeing allocate nothing. New links go to the chain's head,
//! as `hlist_add_head_rcu()` does, so the newest mapping is found first.
//! The head array is allocated at the first source binding, with as many
//! heads as the table has buckets then, and never resized (Linux sizes
//! `nf_nat_bysource` once, at module load).

use super::{allows_clash, hash_raw, scale, Conntrack, EntryKey, Stage, Status, Tuple, Zone, NIL};
use crate::tcp::{Dir, TcpConntrack};
use crate::tuple::IPPROTO_TCP;
use std::net::Ipv4Addr;

/// A NAT manip type (`enum nf_nat_manip_type`): which half of the
/// ORIGINAL tuple a binding rewrites.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Manip {
    /// Source NAT (SNAT, MASQUERADE; hooks POST_ROUTING and LOCAL_IN).
    Src,
    /// Destination NAT (DNAT, REDIRECT; hooks PRE_ROUTING and LOCAL_OUT).
    Dst,
}

impl Manip {
    /// `IPS_SRC_NAT` / `IPS_DST_NAT`: the reply tuple was altered.
    pub const fn nat_bit(self) -> Status {
        match self {
            Manip::Src => Status::SRC_NAT,
            Manip::Dst => Status::DST_NAT,
        }
    }
    /// `IPS_SRC_NAT_DONE` / `IPS_DST_NAT_DONE`: the binding is made.
    pub const fn done_bit(self) -> Status {
        match self {
            Manip::Src => Status::SRC_NAT_DONE,
            Manip::Dst => Status::DST_NAT_DONE,
        }
    }
    /// The other manip (`!manip`: an ICMP error's quoted packet is
    /// rewritten with the manip opposite to the outer header's).
    pub const fn opposite(self) -> Manip {
        match self {
            Manip::Src => Manip::Dst,
            Manip::Dst => Manip::Src,
        }
    }
}

/// Why [`Conntrack::nat_bind`] made no binding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BindError {
    /// The key names no live entry.
    Gone,
    /// The entry is already in the table: bindings are made only for a
    /// connection's first packet (Linux returns NF_ACCEPT and does nothing).
    Confirmed,
    /// This manip already has a binding (Linux WARNs and drops the packet).
    AlreadyBound,
}

/// `NF_NAT_HARDER_THRESH`: in its last 32 attempts the port search may
/// evict a TIME_WAIT entry (see [`Conntrack::tuple_taken_harder`]).
pub const HARDER_THRESH: u32 = 32;

/// `IPS_NAT_MASK | IPS_SEQ_ADJUST`: an entry "subject to NAT".
const USES_NAT: Status = Status(Status::NAT_MASK.0 | Status::SEQ_ADJUST.0);

/// The by-source chain of an ORIGINAL tuple: its source half, protocol and
/// zone, through the table's fixed-key hash (Linux: siphash with a random
/// key; only the chain's length depends on it, never a result).
fn src_bucket(orig: &Tuple, zone: Zone, n: usize) -> usize {
    let key = Tuple::with_ports(orig.proto, orig.src, orig.src_u, Ipv4Addr::UNSPECIFIED, 0);
    scale(hash_raw(&key, zone), n)
}

impl Conntrack {
    /// `nf_nat_used_tuple()`: would a connection whose packets look like
    /// `candidate` after NAT (an ORIGINAL-direction tuple) be ambiguous?
    /// True when its replies, `candidate` inverted, already belong to a
    /// confirmed, unexpired entry (as that entry's ORIGINAL or REPLY tuple)
    /// in the zone of `ignore`. Not counted: `ignore` itself (our own
    /// unconfirmed entry) and entries whose ORIGINAL tuple equals ours —
    /// the same flow racing itself, left to confirm's clash handling.
    ///
    /// Like `nf_conntrack_tuple_taken()`, a hit counts `found` in
    /// `conntrack -S`, and expired entries met on the way are reaped (with
    /// their DESTROY event) at the time of the latest packet.
    pub fn tuple_taken(&mut self, candidate: &Tuple, ignore: EntryKey) -> bool {
        let (Some(reply), Some(me)) = (candidate.invert(), self.get(ignore)) else {
            return false;
        };
        let (zone, my_orig) = (me.zone, me.tuple[0]);
        let now = self.last_now;
        let b = scale(hash_raw(&reply, zone), self.buckets.len());
        let mut node = self.buckets[b];
        while node != NIL {
            let idx = node >> 1;
            let e = &self.slots[idx as usize];
            let next = e.next[(node & 1) as usize];
            if idx != ignore.idx {
                if e.expired(now) {
                    self.kill(idx, None, now);
                    node = self.buckets[b];
                    continue;
                }
                if e.tuple[(node & 1) as usize] == reply && e.zone == zone && e.tuple[0] != my_orig
                {
                    self.stats.found += 1;
                    return true;
                }
            }
            node = next;
        }
        false
    }

    /// `nf_nat_used_tuple_new()`: [`tuple_taken`](Self::tuple_taken) for
    /// the unaltered tuple (a binding that would keep the packet as it
    /// is), except that for protocols allowing clashes (UDP, ICMP) a clash
    /// with the exact reverse flow is tolerated when neither entry is
    /// subject to NAT: both directions' first packets crossed, and confirm
    /// resolves it. Without this the "reply" would get a new source port.
    pub fn tuple_taken_new(&mut self, candidate: &Tuple, ignore: EntryKey) -> bool {
        if !self.tuple_taken(candidate, ignore) {
            return false;
        }
        let me = &self.slots[ignore.idx as usize];
        if !allows_clash(me.tuple[0].proto) || me.status.intersects(USES_NAT) {
            return true;
        }
        let (zone, my_reply, now) = (me.zone, me.tuple[1], self.last_now);
        let hit = self
            .lookup(candidate, zone, now)
            .or_else(|| candidate.invert().and_then(|r| self.lookup(&r, zone, now)));
        let Some((other, _)) = hit else {
            return false; // the clashing entry went away
        };
        let other = &self.slots[other.idx as usize];
        other.status.intersects(USES_NAT) || other.tuple[0] != my_reply
    }

    /// `nf_nat_used_tuple_harder()`: [`tuple_taken`](Self::tuple_taken)
    /// for the port search, which in its last [`HARDER_THRESH`] attempts
    /// for a TCP SYN may reclaim a port: if the clash is the REPLY tuple of
    /// a source-NATed TCP entry in TIME_WAIT or later (not dying, no fixed
    /// timeout) and our SYN's sequence is beyond what that connection's
    /// originator sent, the old entry is deleted (DESTROY event) and the
    /// tuple is free — unless the old entry was offloaded.
    pub fn tuple_taken_harder(
        &mut self,
        candidate: &Tuple,
        ignore: EntryKey,
        attempts_left: u32,
    ) -> bool {
        let Some(me) = self.get(ignore) else {
            return false;
        };
        let syn_sent = me.tcp_state() == Some(TcpConntrack::SynSent);
        if attempts_left > HARDER_THRESH || candidate.proto != IPPROTO_TCP || !syn_sent {
            return self.tuple_taken(candidate, ignore);
        }
        let my_end = me.tcp().map_or(0, |t| t.window(Dir::Original).end.0);
        let (Some(reply), zone, now) = (candidate.invert(), me.zone, self.last_now) else {
            return false;
        };
        let Some((idx, dir)) = self.find(&reply, zone, hash_raw(&reply, zone), now) else {
            return false;
        };
        if dir == Dir::Original || idx == ignore.idx {
            return true;
        }
        let old = &self.slots[idx as usize];
        let flags = old.status;
        let may_kill = old
            .tcp_state()
            .is_some_and(|s| s as u8 >= TcpConntrack::TimeWait as u8)
            && !flags.intersects(Status::FIXED_TIMEOUT | Status::DYING)
            && flags.contains(Status::SRC_NAT);
        let old_end = old.tcp().map_or(0, |t| t.window(Dir::Original).end.0);
        if !may_kill || (my_end.wrapping_sub(old_end) as i32) <= 0 {
            return true;
        }
        if self.kill(idx, None, now) {
            flags.intersects(Status::OFFLOAD | Status::HW_OFFLOAD)
        } else {
            true
        }
    }

    /// `find_appropriate_src()`: the mappings other entries from the same
    /// ORIGINAL source (address, port, protocol, zone) got, newest first,
    /// each as the tuple our packets would carry with it (its source half
    /// from that entry's REPLY tuple inverted, our destination half); the
    /// first one `accept` takes (the NAT layer's range check) is returned.
    pub fn find_nat_source(
        &self,
        orig: &Tuple,
        zone: Zone,
        mut accept: impl FnMut(&Tuple) -> bool,
    ) -> Option<Tuple> {
        if self.by_src.is_empty() {
            return None;
        }
        let mut idx = self.by_src[src_bucket(orig, zone, self.by_src.len())];
        while idx != NIL {
            let e = &self.slots[idx as usize];
            let o = &e.tuple[0];
            if o.proto == orig.proto && o.src == orig.src && o.src_u == orig.src_u && e.zone == zone
            {
                if let Some(mut t) = e.tuple[1].invert() {
                    t.dst = orig.dst;
                    t.dst_u = orig.dst_u;
                    if accept(&t) {
                        return Some(t);
                    }
                }
            }
            idx = e.src_next;
        }
        None
    }

    /// The binding part of `nf_nat_setup_info()`, for an unconfirmed
    /// entry: `new` is what the connection's ORIGINAL packets will look
    /// like after this manip. If that differs from the current view
    /// (the REPLY tuple inverted, i.e. the ORIGINAL tuple with earlier
    /// manips applied), the REPLY tuple becomes `new` inverted and
    /// IPS_SRC_NAT/IPS_DST_NAT is set; a source binding links the entry
    /// into the by-source index; the manip's *_DONE bit is set in every
    /// case, a null binding included. Returns whether the tuple changed.
    ///
    /// Confirm then hashes the new REPLY tuple and refuses the entry if
    /// another one holds it (`insert_failed`), as Linux does.
    pub fn nat_bind(
        &mut self,
        key: EntryKey,
        manip: Manip,
        new: &Tuple,
    ) -> Result<bool, BindError> {
        let e = self.get(key).ok_or(BindError::Gone)?;
        if e.stage != Stage::Unconfirmed || e.is_confirmed() {
            return Err(BindError::Confirmed);
        }
        if e.status.contains(manip.done_bit()) {
            return Err(BindError::AlreadyBound);
        }
        let reply = new.invert().filter(|r| *r != e.tuple[1]);
        let e = &mut self.slots[key.idx as usize];
        if let Some(r) = reply {
            e.tuple[1] = r;
            e.status.insert(manip.nat_bit());
        }
        // nf_conntrack_alter_reply() before 6.0 looked the helper up again
        // by the new REPLY tuple (DNAT to another port changes it).
        if reply.is_some() && self.sysctl.auto_helper {
            self.auto_assign_helper(key.idx);
        }
        if manip == Manip::Src {
            self.link_src(key.idx);
        }
        self.slots[key.idx as usize].status.insert(manip.done_bit());
        Ok(reply.is_some())
    }

    fn link_src(&mut self, idx: u32) {
        if self.by_src.is_empty() {
            self.by_src = vec![NIL; self.buckets.len().max(1)];
        }
        let e = &self.slots[idx as usize];
        let b = src_bucket(&e.tuple[0], e.zone, self.by_src.len());
        self.slots[idx as usize].src_next = self.by_src[b];
        self.by_src[b] = idx;
    }

    /// Takes a freed entry out of the by-source index.
    pub(super) fn unlink_src(&mut self, idx: u32) {
        let e = &self.slots[idx as usize];
        let b = src_bucket(&e.tuple[0], e.zone, self.by_src.len());
        let after = e.src_next;
        if self.by_src[b] == idx {
            self.by_src[b] = after;
        } else {
            let mut cur = self.by_src[b];
            while cur != NIL {
                let next = self.slots[cur as usize].src_next;
                if next == idx {
                    self.slots[cur as usize].src_next = after;
                    break;
                }
                cur = next;
            }
            debug_assert!(cur != NIL, "by-source node not in its chain");
        }
        self.slots[idx as usize].src_next = NIL;
    }
}
