//! The router's connection tracking: the calls into `ctsim-conntrack` at the
//! hook points, the events and kernel messages it emits, and its timers.
//!
//! Each function takes the router's `Option<Ct>`; with `None` (conntrack
//! off) they do nothing and every packet goes on untracked and unmarked.
//! Timers: after every input the router asks the table for its next
//! deadline (`poll_timeout`) and keeps one background wake-up scheduled at
//! the earliest one; when it fires, `handle_timeout` expires what is due.
//! Nothing runs per tick, and the wake-ups do not keep a run alive.

use ctsim_conntrack::{time, Conntrack, CtHook, EntryRef, Event, Verdict, Zone};

use crate::node::{Cx, BACKGROUND};
use crate::time::Instant;
use crate::trace::{CtNote, What};

/// What a [`Probe`] reads when it fires: the table and the instant, giving
/// (stdout, stderr) as the conntrack tool would print them.
pub type Look = Box<dyn FnOnce(&Conntrack, time::Instant) -> (String, String)>;

/// The hook whose last step (conntrack's confirmation) a probe stops at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmHook {
    /// The end of POSTROUTING: forwarded packets and the router's own.
    PostRouting,
    /// The end of INPUT: packets for the router.
    Input,
}

impl ConfirmHook {
    /// The hook's name as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            ConfirmHook::PostRouting => "POSTROUTING",
            ConfirmHook::Input => "INPUT",
        }
    }
}

/// A probe armed on a router (`ctsim conntrack --during`): the first packet
/// at or after `from` matching `filter` that reaches the point where
/// conntrack confirms it
/// (the end of POSTROUTING or INPUT) is held there while `look` reads the
/// table, its own entry still unconfirmed. It fires once. A matching packet
/// dropped before that point (TTL exceeded, no route) does not fire it.
pub struct Probe {
    pub from: Instant,
    pub filter: ctsim_packet::Filter,
    pub look: Look,
}

/// What a probe saw when it fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    pub at: Instant,
    pub hook: ConfirmHook,
    /// The packet, as it was at that point (TTL already decremented when
    /// forwarded).
    pub packet: Vec<u8>,
    /// What `look` returned: (stdout, stderr).
    pub out: (String, String),
}

/// The wake token of the conntrack timer, as the router receives it.
pub const CT_TIMER: u64 = BACKGROUND | 1;

/// A router's conntrack table and what the router keeps about it.
pub(super) struct Ct {
    pub table: Conntrack,
    /// Every event so far, when kept (for `ctsim conntrack -E`).
    pub events: Vec<Event>,
    /// Every expectation event so far, when kept (`-E expect`).
    pub expect_events: Vec<ctsim_conntrack::ExpectEvent>,
    keep_events: bool,
    /// The earliest timer wake-up pending in the queue.
    wake: Option<Instant>,
}

impl Ct {
    pub fn new(table: Conntrack, keep_events: bool) -> Self {
        Ct {
            table,
            events: Vec::new(),
            expect_events: Vec::new(),
            keep_events,
            wake: None,
        }
    }
}

/// What conntrack made of a packet at PREROUTING or OUTPUT.
pub(super) struct Tracked {
    /// The packet's reference to its entry: confirm or release it.
    pub r: Option<EntryRef>,
    /// Its state for the trace (`None` when not tracked).
    pub note: Option<CtNote>,
    /// Conntrack dropped the packet (table full).
    pub dropped: bool,
}

impl Tracked {
    /// Nothing known: conntrack has not run (or does not exist).
    pub fn none() -> Self {
        Tracked {
            r: None,
            note: None,
            dropped: false,
        }
    }

    /// `CT --notrack` in the raw table: UNTRACKED, no entry.
    pub fn untracked() -> Self {
        Tracked {
            r: None,
            note: Some(CtNote {
                state: ctsim_conntrack::CtState::Untracked,
                invalid: None,
            }),
            dropped: false,
        }
    }

    /// Whether the packet is UNTRACKED.
    pub fn is_untracked(&self) -> bool {
        self.note
            .is_some_and(|n| n.state == ctsim_conntrack::CtState::Untracked)
    }

    /// A packet already attached to an entry (`nf_ct_attach()`): conntrack
    /// leaves it alone at OUTPUT.
    pub fn attached(r: EntryRef) -> Self {
        Tracked {
            note: Some(CtNote {
                state: r.ctinfo().state(),
                invalid: None,
            }),
            r: Some(r),
            dropped: false,
        }
    }
}

/// `nf_ct_attach()`: a reference to the entry of packet `r` for a packet
/// the router makes about it (an ICMP error), which travels the other way:
/// RELATED_REPLY about an original-direction packet, RELATED about a reply.
pub(super) fn attach(ct: &mut Option<Ct>, r: Option<&EntryRef>) -> Option<EntryRef> {
    let (c, r) = (ct.as_mut()?, r?);
    let ctinfo = match r.dir() {
        ctsim_conntrack::Dir::Original => ctsim_conntrack::CtInfo::RelatedReply,
        ctsim_conntrack::Dir::Reply => ctsim_conntrack::CtInfo::Related,
    };
    Some(c.table.attach(r, ctinfo))
}

fn now(cx: &Cx<'_>) -> time::Instant {
    time::Instant(cx.now.nanos())
}

/// Conntrack at priority -200 of PREROUTING or OUTPUT, in `zone` (0
/// unless a CT template set one).
pub(super) fn track(
    ct: &mut Option<Ct>,
    cx: &Cx<'_>,
    packet: &[u8],
    hook: CtHook,
    zone: Zone,
) -> Tracked {
    let Some(c) = ct else {
        return Tracked::none();
    };
    let res = c.table.handle_packet(packet, hook, zone, now(cx));
    if let Verdict::Drop { .. } = res.verdict {
        return Tracked {
            r: None,
            note: None,
            dropped: true,
        };
    }
    let note = CtNote {
        state: res.state(),
        invalid: res.invalid_reason(),
    };
    Tracked {
        r: res.ct,
        note: Some(note),
        dropped: false,
    }
}

/// The conntrack helper and sequence adjustment, just before confirmation
/// (`nf_confirm()`): the entry's helper parses the payload and expects
/// related connections, its NAT half rewrites addresses in the payload
/// (the packet may grow), and TCP sequence numbers are adjusted. `false`:
/// the helper dropped the packet (logged as the kernel logs it).
pub(super) fn help(
    ct: &mut Option<Ct>,
    cx: &mut Cx<'_>,
    r: Option<&EntryRef>,
    packet: &mut Vec<u8>,
    ctx: &ctsim_conntrack::helper::HelpCtx,
) -> bool {
    let (Some(c), Some(r)) = (ct.as_mut(), r) else {
        return true;
    };
    let now = now(cx);
    let rng = &mut *cx.rng;
    let mut rand = || rng.next_u32();
    match ctsim_netfilter::helper::confirm_hook(&mut c.table, r, packet, ctx, now, &mut rand) {
        Verdict::Accept => true,
        Verdict::Drop { reason } => {
            // Conntrack's own message (e.g. the expectation table being
            // full) comes first, then the helper's, which nf_ct_helper_log()
            // writes in LOG's format with empty device names.
            while let Some(log) = c.table.poll_log() {
                if cx.tracing() {
                    cx.record_text(What::Kernel, log.text);
                }
            }
            if cx.tracing() {
                let name = c.table.get(r.key()).and_then(|e| e.helper()).unwrap_or("?");
                let prefix = format!("nf_ct_{name}: dropping packet: {reason} ");
                let line = ctsim_netfilter::log_line(&prefix, packet, "", "")
                    .unwrap_or_else(|| prefix.trim_end().to_string());
                cx.record_text(What::Kernel, line);
            }
            false
        }
    }
}

/// Makes the NAT bindings of an expected connection follow its master's,
/// as NAT helpers arrange (`nf_nat_follow_master`), right after conntrack
/// created it.
pub(super) fn follow_master(ct: &mut Option<Ct>, cx: &mut Cx<'_>, r: Option<&EntryRef>) {
    if let (Some(c), Some(r)) = (ct.as_mut(), r) {
        let rng = &mut *cx.rng;
        let mut rand = || rng.next_u32();
        let _ = ctsim_netfilter::nat::follow_master(&mut c.table, r, &mut rand);
    }
}

/// Confirmation, the last step of POSTROUTING or INPUT. `false`: conntrack
/// dropped the packet (a clash it could not resolve).
pub(super) fn confirm(ct: &mut Option<Ct>, cx: &Cx<'_>, r: Option<EntryRef>) -> bool {
    match (ct, r) {
        (Some(c), Some(r)) => c.table.confirm(r, now(cx)).verdict == Verdict::Accept,
        _ => true,
    }
}

/// The packet was dropped before confirmation: give its reference back.
pub(super) fn release(ct: &mut Option<Ct>, cx: &mut Cx<'_>, r: Option<EntryRef>) {
    if let (Some(c), Some(r)) = (ct.as_mut(), r) {
        c.table.release(r);
    }
    flush(ct, cx);
}

/// Moves the table's pending events and kernel messages into the trace
/// (and the kept event list).
pub(super) fn flush(ct: &mut Option<Ct>, cx: &mut Cx<'_>) {
    let Some(c) = ct else { return };
    while let Some(ev) = c.table.poll_event() {
        if cx.tracing() {
            cx.record_text(What::Conntrack, ev.to_string());
        }
        if c.keep_events {
            c.events.push(ev);
        }
    }
    // Expectation events (`conntrack -E expect`), in the same stream.
    while let Some(ev) = c.table.poll_expect_event() {
        if cx.tracing() {
            cx.record_text(What::Conntrack, ev.line());
        }
        if c.keep_events {
            c.expect_events.push(ev);
        }
    }
    while let Some(log) = c.table.poll_log() {
        if cx.tracing() {
            cx.record_text(What::Kernel, log.text);
        }
    }
}

/// Keeps one wake-up scheduled at the table's next deadline.
pub(super) fn schedule(ct: &mut Option<Ct>, cx: &mut Cx<'_>) {
    let Some(c) = ct else { return };
    if let Some(next) = c.table.poll_timeout() {
        let at = Instant::from_nanos(next.0).max(cx.now);
        if c.wake.is_none_or(|w| at < w) {
            cx.wake_background(at, CT_TIMER);
            c.wake = Some(at);
        }
    }
}

/// A timer wake-up: expire what is due, report it, schedule the next one.
pub(super) fn timer(ct: &mut Option<Ct>, cx: &mut Cx<'_>) {
    let Some(c) = ct else { return };
    if c.wake.is_some_and(|w| w <= cx.now) {
        c.wake = None;
    }
    c.table.handle_timeout(now(cx));
    flush(ct, cx);
    schedule(ct, cx);
}
