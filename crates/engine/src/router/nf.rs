//! The router's netfilter: its iptables ruleset, run at the hook points
//! around conntrack, NAT, and the walk each packet leaves in the trace.
//!
//! `ctsim-netfilter` does the rule matching; this module feeds it what the
//! router knows (interfaces, the packet's conntrack entry, local
//! addresses) and carries out what it asks for: connection marks, CT
//! templates, NAT bindings and rewrites, LOG and TRACE lines. REJECT's
//! answers are handed back to the router, which sends them like its own
//! ICMP errors (attached to the rejected packet's entry).
//!
//! A router without a ruleset has no `Nf` at all, so forwarding pays
//! nothing for it.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::ops::Range;

use ctsim_conntrack::{CtInfo, EntryRef, Status};
use ctsim_netfilter::{
    nat, ConnView, Decision, EntryView, Hook, HookInput, Manip, NatRange, NatRequest, Outcome,
    PacketMeta, Priority, Ruleset, StepKind, TableKind,
};

use super::ct::Ct;
use crate::node::Cx;
use crate::topology::Cidr;
use crate::trace::What;

/// A ruleset and the scratch space its calls reuse.
pub(super) struct Nf {
    pub rules: Ruleset,
    out: Outcome,
}

impl Nf {
    pub fn new(rules: Ruleset) -> Nf {
        Nf {
            rules,
            out: Outcome::default(),
        }
    }

    /// Whether the nat table is registered: only then does a new
    /// connection get bindings (null ones when no rule matches), as in a
    /// namespace where iptables-nft created the nat table.
    fn nat_table(&self) -> bool {
        self.rules.table(TableKind::Nat).present
    }

    /// `CT --notrack` / `NOTRACK` in the last raw traversal.
    pub fn notrack(&self) -> bool {
        self.out.notrack
    }

    /// The CT template of the last raw traversal: zone and helper.
    pub fn template(&self) -> (Option<u16>, Option<&str>) {
        (self.out.ct_zone, self.out.ct_helper.as_deref())
    }

    /// What decided the last traversal: `filter INPUT rule 2`, `filter
    /// INPUT policy`.
    pub fn decided_by(&self) -> String {
        match self.out.decided_by {
            Some((table, chain, 0)) => format!(
                "{} {} policy",
                table.name(),
                self.rules.chain_name(table, chain)
            ),
            Some((table, chain, rule)) => format!(
                "{} {} rule {rule}",
                table.name(),
                self.rules.chain_name(table, chain)
            ),
            None => "netfilter".into(),
        }
    }

    /// The REJECT answer of the last traversal, if any.
    pub fn take_reject(&mut self) -> Option<Vec<u8>> {
        self.out.reject.take()
    }
}

/// The walk of the packet in flight: lines waiting for the packet's own
/// record, then written just after it. Only filled while tracing.
#[derive(Default)]
pub(super) struct Walk {
    lines: Vec<(&'static str, &'static str, String)>,
    /// The packet as received, once NAT changed it.
    before: Option<Vec<u8>>,
}

impl Walk {
    pub fn push(&mut self, cx: &Cx<'_>, hook: &'static str, step: &'static str, text: String) {
        if cx.tracing() {
            self.lines.push((hook, step, text));
        }
    }

    /// Keeps `packet` as it was before NAT's first rewrite.
    fn keep_before(&mut self, cx: &Cx<'_>, packet: &[u8]) {
        if cx.tracing() && self.before.is_none() {
            self.before = Some(packet.to_vec());
        }
    }

    /// The packet before NAT, if NAT changed it (taken).
    pub fn take_before(&mut self) -> Option<Vec<u8>> {
        self.before.take()
    }

    /// Writes the lines as records at `port`, in order, and empties the walk.
    pub fn flush(&mut self, cx: &mut Cx<'_>, port: u16) {
        for (hook, step, text) in self.lines.drain(..) {
            cx.record_text_at(port, What::Walk { hook, step }, text);
        }
    }
}

/// What the router knows that the rules may ask: the packet's entry (via
/// [`EntryView`]) plus the source a REJECT's ICMP error takes.
struct View<'a> {
    entry: EntryView<'a>,
    ports: &'a [crate::topology::Port],
    addrs: &'a [Option<Cidr>],
    /// The table, for `-m connlimit`'s count.
    table: Option<&'a ctsim_conntrack::Conntrack>,
    /// The packet's L4 protocol.
    proto: u8,
    now: ctsim_conntrack::time::Instant,
}

impl ConnView for View<'_> {
    fn ctinfo(&self) -> Option<CtInfo> {
        self.entry.ctinfo()
    }
    fn status(&self) -> Status {
        self.entry.status()
    }
    fn tuples(&self) -> Option<(ctsim_conntrack::Tuple, ctsim_conntrack::Tuple)> {
        self.entry.tuples()
    }
    fn mark(&self) -> u32 {
        self.entry.mark()
    }
    fn master_helper(&self) -> Option<&str> {
        self.entry.master_helper()
    }
    /// `-m connlimit`: the open connections of the packet's protocol from
    /// the same source (or to the same destination) under `prefix`, the
    /// packet's own included. Linux's nf_conncount keeps such a list per
    /// rule, of the connections that matched it; ctsim counts the whole
    /// table (see the book's differences). TCP connections in TIME_WAIT or
    /// CLOSE are over and not counted, as nf_conncount does.
    fn connections(&self, key: Ipv4Addr, prefix: u8, daddr: bool) -> u32 {
        use ctsim_conntrack::tcp::TcpConntrack;
        let Some(t) = self.table else {
            return 0;
        };
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        let counts = |e: &ctsim_conntrack::Entry| {
            let o = e.orig();
            let a = if daddr { o.dst } else { o.src };
            o.proto == self.proto
                && u32::from(a) & mask == u32::from(key) & mask
                && !matches!(
                    e.tcp_state(),
                    Some(TcpConntrack::TimeWait | TcpConntrack::Close)
                )
        };
        let confirmed = t
            .keys(ctsim_conntrack::Table::Conntrack, self.now)
            .into_iter()
            .filter_map(|k| t.get(k))
            .filter(|e| counts(e))
            .count();
        let own = self
            .entry
            .entry
            .is_some_and(|e| !e.is_confirmed() && counts(e));
        u32::try_from(confirmed).unwrap_or(u32::MAX) + u32::from(own)
    }
    fn addr_type(&self, addr: Ipv4Addr, iface: Option<&str>) -> u16 {
        self.entry.addr_type(addr, iface)
    }
    /// icmp_send's source: the address the packet was sent to when it was
    /// for the router, else the address of the interface it came in on
    /// (the one the error leaves through on a point-to-point link).
    fn reject_source(&self, dst: Ipv4Addr, in_iface: &str) -> Ipv4Addr {
        if self.entry.local.contains(&dst) {
            return dst;
        }
        self.ports
            .iter()
            .zip(self.addrs)
            .find(|(p, _)| p.name == in_iface)
            .and_then(|(_, a)| a.map(|c| c.addr))
            .unwrap_or(dst)
    }
}

/// Where a hook runs: the packet's interfaces, the router's addresses.
pub(super) struct At<'a> {
    pub hook: Hook,
    pub in_iface: &'a str,
    pub out_iface: &'a str,
    pub local: &'a [Ipv4Addr],
    pub addrs: &'a [Option<Cidr>],
    pub ports: &'a [crate::topology::Port],
}

/// Runs the tables of `at.hook` whose priority is in `prio` and acts on
/// what they asked: connmark, log lines, the walk. The REJECT answer, CT
/// template and NAT request stay in `nf` for the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    nf: &mut Nf,
    ct: &mut Option<Ct>,
    cx: &mut Cx<'_>,
    walk: &mut Walk,
    at: &At<'_>,
    prio: Range<i32>,
    packet: &[u8],
    meta: &mut PacketMeta,
    r: Option<&EntryRef>,
    untracked: bool,
) -> Decision {
    nf.out.clear();
    nf.out.record_walk = cx.tracing();
    let entry = match (ct.as_ref(), r) {
        (Some(c), Some(r)) => c.table.get(r.key()),
        _ => None,
    };
    let view = View {
        entry: EntryView {
            ctinfo: match r {
                Some(r) => Some(r.ctinfo()),
                None => untracked.then_some(CtInfo::Untracked),
            },
            entry,
            master: match (ct.as_ref(), r) {
                (Some(c), Some(r)) => c.table.master_of(r.key()).and_then(|m| c.table.get(m)),
                _ => None,
            },
            mark: None,
            connections: 0,
            local: at.local,
        },
        ports: at.ports,
        addrs: at.addrs,
        table: ct.as_ref().map(|c| &c.table),
        proto: packet.get(9).copied().unwrap_or(0),
        now: ctsim_conntrack::time::Instant(cx.now.nanos()),
    };
    let input = HookInput {
        hook: at.hook,
        packet,
        in_iface: at.in_iface,
        out_iface: at.out_iface,
        now: ctsim_conntrack::time::Instant(cx.now.nanos()),
    };
    let d = nf.rules.hook_range(&input, prio, meta, &view, &mut nf.out);
    if let (Some(mark), Some(c), Some(r)) = (nf.out.ct_mark, ct.as_mut(), r) {
        c.table.set_mark(r.key(), mark);
    }
    for log in nf.out.logs.drain(..) {
        if cx.tracing() {
            cx.record_text(What::Kernel, log.text);
        }
    }
    if cx.tracing() {
        for step in &nf.out.walk {
            let chain = nf.rules.chain_name(step.table, step.chain);
            let text = match step.kind {
                StepKind::Rule => format!(
                    "rule {}: {}",
                    step.rule,
                    nf.rules.rule_text(step.table, step.chain, step.rule)
                ),
                StepKind::Return => format!("end of chain {chain}: return"),
                StepKind::Policy => nf.rules.rule_text(step.table, step.chain, 0),
                StepKind::NatSkipped => match r.map(EntryRef::ctinfo) {
                    Some(CtInfo::New | CtInfo::Related | CtInfo::RelatedReply) => {
                        "not consulted: the connection's binding is already made".into()
                    }
                    Some(_) => "not consulted: not a connection's first packet".into(),
                    None => "not consulted: no connection (INVALID or UNTRACKED)".into(),
                },
            };
            walk.push(cx, at.hook.name(), step.table.name(), text);
        }
    }
    d
}

/// The priorities a hook's tables run at before conntrack (raw).
pub(super) const BEFORE_CT: Range<i32> = i32::MIN..Priority::CONNTRACK;
/// Everything after conntrack, up to and including the nat table of a
/// destination hook (PREROUTING, OUTPUT: mangle, nat).
pub(super) const TO_DNAT: Range<i32> = Priority::CONNTRACK..Priority::NAT_DST + 1;
/// After destination NAT: filter and security (OUTPUT).
pub(super) const AFTER_DNAT: Range<i32> = Priority::NAT_DST + 1..i32::MAX;
/// Every table of a hook (FORWARD).
pub(super) const ALL: Range<i32> = i32::MIN..i32::MAX;
/// Every table of a source hook, up to and including nat (INPUT,
/// POSTROUTING), or all of FORWARD.
pub(super) const TO_SNAT: Range<i32> = i32::MIN..Priority::NAT_SRC + 1;

/// The NAT step of a hook (priority -100 for destination hooks, 100 for
/// source hooks): make the binding if the connection's first packet needs
/// one, then rewrite the packet as the entry's bindings say. `false`: the
/// packet must be dropped (MASQUERADE or REDIRECT found no address).
#[allow(clippy::too_many_arguments)]
pub(super) fn nat_step(
    nf: &mut Nf,
    ct: &mut Option<Ct>,
    cx: &mut Cx<'_>,
    walk: &mut Walk,
    at: &At<'_>,
    packet: &mut [u8],
    r: Option<&EntryRef>,
) -> bool {
    let (Some(c), Some(r)) = (ct.as_mut(), r) else {
        return true;
    };
    let manip = at.hook.manip();
    let hook = at.hook.name();
    if nf.nat_table() && nat::needs_binding(&c.table, r, manip, packet) {
        let range = match nf.out.nat.take() {
            None => None,
            Some(req) => match resolve(req, at) {
                Some(range) => Some(range),
                None => {
                    walk.push(cx, hook, "nat", "no address to map to: drop".into());
                    return false;
                }
            },
        };
        let rng = &mut *cx.rng;
        let mut rand = || rng.next_u32();
        let bound = nat::setup(&mut c.table, r, manip, range.as_ref(), &mut rand);
        if cx.tracing() {
            let text = match bound {
                Ok(b) if b.changed => match manip {
                    Manip::Src => format!("binding: source becomes {}", endpoint(&b.tuple, true)),
                    Manip::Dst => {
                        format!("binding: destination becomes {}", endpoint(&b.tuple, false))
                    }
                },
                Ok(_) => "null binding: nothing to change".into(),
                Err(e) => format!("no binding: {e:?}"),
            };
            walk.push(cx, hook, "nat", text);
        }
    }
    let before = cx.tracing().then(|| (header(packet), packet.to_vec()));
    if !nat::packet(&c.table, r, manip, packet) {
        walk.push(cx, hook, "nat", "cannot rewrite the packet: drop".into());
        return false;
    }
    if let Some((before, bytes)) = before {
        let after = header(packet);
        if after != before {
            walk.keep_before(cx, &bytes);
            let step = match manip {
                Manip::Src => "snat",
                Manip::Dst => "dnat",
            };
            walk.push(cx, hook, step, format!("{before} -> {after}"));
        }
    }
    true
}

/// The range a NAT request maps into: MASQUERADE takes the outgoing
/// interface's address, REDIRECT the incoming one's (127.0.0.1 for the
/// router's own packets). `None` when that interface has no address.
fn resolve(req: NatRequest, at: &At<'_>) -> Option<NatRange> {
    match req {
        NatRequest::Snat(r) | NatRequest::Dnat(r) => Some(r),
        NatRequest::Masquerade(r) => {
            let a = at.iface_addr(at.out_iface)?;
            Some(NatRange {
                addrs: Some((a, a)),
                ..r
            })
        }
        NatRequest::Redirect(r) => {
            let a = if at.hook == Hook::Output {
                Ipv4Addr::LOCALHOST
            } else {
                at.iface_addr(at.in_iface)?
            };
            Some(NatRange {
                addrs: Some((a, a)),
                ..r
            })
        }
    }
}

impl<'a> At<'a> {
    /// `hook` with the packet's input and output interfaces (port numbers,
    /// where known) among the router's `ports`.
    pub fn new(
        hook: Hook,
        (input, output): (Option<u16>, Option<u16>),
        ports: &'a [crate::topology::Port],
        local: &'a [Ipv4Addr],
        addrs: &'a [Option<Cidr>],
    ) -> At<'a> {
        let name = |p: Option<u16>| p.map_or("", |p| ports[usize::from(p)].name.as_str());
        At {
            hook,
            in_iface: name(input),
            out_iface: name(output),
            local,
            addrs,
            ports,
        }
    }

    /// The address of the interface named `name`.
    fn iface_addr(&self, name: &str) -> Option<Ipv4Addr> {
        let i = self.ports.iter().position(|p| p.name == name)?;
        self.addrs.get(i).copied().flatten().map(|c| c.addr)
    }
}

/// The conntrack helpers Linux 6.x has, by the name `CT --helper` takes
/// (the entry keeps a `'static` name).
pub(super) fn helper_name(name: &str) -> Option<&'static str> {
    const HELPERS: [&str; 11] = [
        "amanda",
        "ftp",
        "h323",
        "irc",
        "netbios-ns",
        "pptp",
        "sane",
        "sip",
        "snmp",
        "snmp_trap",
        "tftp",
    ];
    HELPERS.iter().copied().find(|h| *h == name)
}

/// `addr:port` (or `addr` for protocols without ports) of one end of `t`.
fn endpoint(t: &ctsim_conntrack::Tuple, src: bool) -> String {
    let (a, p) = if src {
        (t.src, t.has_ports().then(|| t.sport()))
    } else {
        (t.dst, t.has_ports().then(|| t.dport()))
    };
    match p {
        Some(p) => format!("{a}:{p}"),
        None => a.to_string(),
    }
}

/// `src > dst` of a datagram, with ports for TCP and UDP, for the walk's
/// NAT lines.
fn header(packet: &[u8]) -> String {
    let mut s = String::new();
    if packet.len() < 20 {
        return s;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let l4 = packet
        .get(ihl..ihl + 4)
        .filter(|_| matches!(packet[9], 6 | 17));
    match l4 {
        Some(p) => {
            let sp = u16::from_be_bytes([p[0], p[1]]);
            let dp = u16::from_be_bytes([p[2], p[3]]);
            let _ = write!(s, "{src}:{sp} > {dst}:{dp}");
        }
        None => {
            let _ = write!(s, "{src} > {dst}");
        }
    }
    s
}
