//! NAT (`nf_nat`) as Linux 6.x does it, without I/O: choosing a binding
//! for a connection's first packet ([`setup`], `nf_nat_setup_info()`) and
//! rewriting every packet by it ([`packet`], `nf_nat_packet()` and
//! `nf_nat_icmp_reply_translation()`). Reference: reference/nat.md,
//! hooks.md §7.
//!
//! A binding lives in the conntrack entry: its REPLY tuple (what replies
//! will look like) and the status bits IPS_SRC_NAT/IPS_DST_NAT (tuple
//! changed) and IPS_*_NAT_DONE (binding made). Everything here reads or
//! writes those through ctsim-conntrack ([`Conntrack::nat_bind`],
//! [`Conntrack::tuple_taken`]); this module holds no state.
//!
//! # Calling it from a router
//!
//! At each NAT hook (DST manip: PRE_ROUTING and LOCAL_OUT at -100, after
//! conntrack's `handle_packet` at -200 and mangle; SRC manip: POST_ROUTING
//! and LOCAL_IN at +100, before `confirm` at INT_MAX), for a packet with a
//! conntrack reference `r` (none: INVALID or UNTRACKED, nothing to do):
//!
//! 1. If [`needs_binding`]: walk the nat chain (`Ruleset::hook_range`
//!    over the nat priority). A SNAT/DNAT request gives the range; resolve
//!    MASQUERADE (the outgoing interface's address) and REDIRECT (the
//!    incoming interface's first address, 127.0.0.1 at LOCAL_OUT) into a
//!    single-address [`NatRange`] first. Then call [`setup`] with
//!    `Some(range)`, or with `None` (null binding) when no rule matched.
//!    `rand` must be the router's seeded RNG.
//! 2. Always: [`packet`]; `false` means drop (Linux's NF_DROP).
//! 3. After DNAT at PRE_ROUTING route by the new destination; after DNAT at
//!    LOCAL_OUT re-route if the destination changed.
//!
//! A binding whose tuple is still taken is not an error here: `confirm`
//! refuses the entry (`insert_failed`) and the packet is dropped, as on
//! Linux. Call these only in a namespace that has NAT (a nat table):
//! Linux registers its NAT hooks only then, and [`packet`] drops a RELATED
//! ICMP error with a bad checksum even when nothing is translated.
//!
//! # Where it differs from Linux
//!
//! - Random numbers (port search offsets) come from the caller's `rand`:
//!   one call per `get_random_u16()`, low 16 bits.
//! - MASQUERADE's output-interface bookkeeping (entries deleted when the
//!   interface goes down, `nf_nat_oif_changed`) is the router's.
//! - Protocols ctsim's conntrack tracks generically (SCTP, UDPLITE, DCCP,
//!   GRE) have no ports in their tuples: NAT changes their addresses only.
//! - No PROTO_OFFSET/NETMAP ranges. NAT helpers are in `crate::helper`;
//!   expected connections are bound by [`follow_master`].

mod follow;
mod rewrite;
mod select;

use ctsim_conntrack::{BindError, Conntrack, CtInfo, EntryRef, Tuple};

pub use crate::model::NatRange;
pub use ctsim_conntrack::Manip;
pub use follow::follow_master;
pub(crate) use rewrite::ones_sum;
pub use rewrite::{packet, replace16};

/// The binding [`setup`] made.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Binding {
    /// What the connection's ORIGINAL packets look like after this manip
    /// (the REPLY tuple is its inverse).
    pub tuple: Tuple,
    /// The tuple differs from before (IPS_SRC_NAT/IPS_DST_NAT was set).
    pub changed: bool,
}

/// Whether the nat chain must run for this packet and a binding be made
/// (`nf_nat_inet_fn()`): the packet is NEW, RELATED or RELATED_REPLY, its
/// entry has no binding for `manip` yet, and it is not an ICMP error
/// (those are only translated, `nf_nat_ipv4_fn()`).
pub fn needs_binding(ct: &Conntrack, r: &EntryRef, manip: Manip, pkt: &[u8]) -> bool {
    let Some(e) = ct.get(r.key()) else {
        return false;
    };
    match r.ctinfo() {
        CtInfo::New => {}
        CtInfo::Related | CtInfo::RelatedReply if !rewrite::is_icmp(pkt) => {}
        _ => return false,
    }
    !e.status().contains(manip.done_bit())
}

/// `nf_nat_setup_info()`: bind the unconfirmed entry of `r` for `manip`
/// into `range`, or make a null binding (`nf_nat_alloc_null_binding()`:
/// the address the packet already has, any port) when `range` is `None`.
///
/// The new tuple is chosen as `get_unique_tuple()` does (nat.md §3–§4):
/// for a source manip, the packet's own source if it is in range and free,
/// else the mapping an earlier connection from the same source got; then
/// an address from the range (hashed from the addresses, see
/// `select.rs`) and the packet's own port if free, else the port search.
/// `rand` stands for the kernel's `get_random_u16()`.
///
/// Errors: the entry is gone, already confirmed, or already bound for
/// this manip; nothing is changed then.
pub fn setup(
    ct: &mut Conntrack,
    r: &EntryRef,
    manip: Manip,
    range: Option<&NatRange>,
    rand: &mut dyn FnMut() -> u32,
) -> Result<Binding, BindError> {
    let key = r.key();
    let e = ct.get(key).ok_or(BindError::Gone)?;
    if e.is_confirmed() {
        return Err(BindError::Confirmed);
    }
    if e.status().contains(manip.done_bit()) {
        return Err(BindError::AlreadyBound);
    }
    // What we have looks like the inverse of the reply: the ORIGINAL
    // tuple with earlier manips (e.g. DNAT before SNAT) applied.
    let current = e.reply().invert().unwrap_or(*e.orig());
    let zone = e.zone();
    let range = match range {
        Some(r) => select::Range::from(r),
        None => select::Range::null(manip, e.reply()),
    };
    let tuple = select::unique_tuple(ct, key, zone, &current, &range, manip, rand);
    let changed = ct.nat_bind(key, manip, &tuple)?;
    Ok(Binding { tuple, changed })
}
