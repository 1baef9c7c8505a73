//! Traversal: a packet through the tables of one hook, rule by rule.

use std::fmt::Write;
use std::net::Ipv4Addr;

use ctsim_conntrack::{time::Instant, CtInfo, Status, Tuple};

use crate::model::*;
use crate::ruleset::Ruleset;

/// What the caller knows about the packet's connection (filled from
/// ctsim-conntrack by the router) and about its own addresses. Every method
/// has a default describing an untracked-free "no conntrack" world.
pub trait ConnView {
    /// The packet's ctinfo; `None` means no conntrack (INVALID).
    fn ctinfo(&self) -> Option<CtInfo> {
        None
    }
    /// The entry's status bits.
    fn status(&self) -> Status {
        Status(0)
    }
    /// ORIGINAL and REPLY tuples.
    fn tuples(&self) -> Option<(Tuple, Tuple)> {
        None
    }
    /// The entry's mark (`ct->mark`).
    fn mark(&self) -> u32 {
        0
    }
    /// For `-m helper`: the helper name of the entry's *master* (set when
    /// the packet's connection was created from an expectation).
    fn master_helper(&self) -> Option<&str> {
        None
    }
    /// `-m connlimit`: connections whose source (or destination, when
    /// `daddr`) address masked to `prefix` bits equals `key`, counting the
    /// packet's own connection.
    fn connections(&self, _key: Ipv4Addr, _prefix: u8, _daddr: bool) -> u32 {
        0
    }
    /// `-m addrtype`: `1 << RTN_*` of `addr` (as `inet_addr_type`), seen
    /// from `iface` when given. The default knows only broadcast, multicast
    /// and unicast.
    fn addr_type(&self, addr: Ipv4Addr, _iface: Option<&str>) -> u16 {
        // inet_addr_type(): 0.0.0.0/8 and 255.255.255.255 are BROADCAST.
        if addr.is_broadcast() || addr.octets()[0] == 0 {
            1 << 3
        } else if addr.is_multicast() {
            1 << 5
        } else {
            1 << 1
        }
    }
    /// Source address of a REJECT ICMP error about a packet sent to `dst`
    /// that arrived on `in_iface`; defaults to `dst` (right for INPUT).
    fn reject_source(&self, dst: Ipv4Addr, _in_iface: &str) -> Ipv4Addr {
        dst
    }
}

/// A plain [`ConnView`] for tests and simple callers.
#[derive(Clone, Debug, Default)]
pub struct CtSnapshot {
    /// `None` = INVALID.
    pub ctinfo: Option<CtInfo>,
    /// Status bits.
    pub status: Status,
    /// ORIGINAL and REPLY tuples.
    pub tuples: Option<(Tuple, Tuple)>,
    /// `ct->mark`.
    pub mark: u32,
    /// The master connection's helper name (`-m helper`).
    pub master_helper: Option<String>,
    /// Answer of [`ConnView::connections`].
    pub connections: u32,
    /// Local addresses (type LOCAL).
    pub local: Vec<Ipv4Addr>,
}

impl ConnView for CtSnapshot {
    fn ctinfo(&self) -> Option<CtInfo> {
        self.ctinfo
    }
    fn status(&self) -> Status {
        self.status
    }
    fn tuples(&self) -> Option<(Tuple, Tuple)> {
        self.tuples
    }
    fn mark(&self) -> u32 {
        self.mark
    }
    fn master_helper(&self) -> Option<&str> {
        self.master_helper.as_deref()
    }
    fn connections(&self, _: Ipv4Addr, _: u8, _: bool) -> u32 {
        self.connections
    }
    fn addr_type(&self, addr: Ipv4Addr, _: Option<&str>) -> u16 {
        if self.local.contains(&addr) {
            1 << 2
        } else if addr.is_broadcast() || addr.octets()[0] == 0 {
            1 << 3
        } else if addr.is_multicast() {
            1 << 5
        } else {
            1 << 1
        }
    }
}

/// The packet state that travels with it between hooks (`skb->mark`,
/// `skb->nf_trace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// `skb->mark`; MARK changes it in place.
    pub mark: u32,
    /// Set by `-j TRACE`.
    pub trace: bool,
}

/// One call's inputs.
#[derive(Clone, Copy, Debug)]
pub struct HookInput<'a> {
    /// The hook.
    pub hook: Hook,
    /// The IPv4 datagram.
    pub packet: &'a [u8],
    /// Input interface (`""` in OUTPUT/POSTROUTING of local packets).
    pub in_iface: &'a str,
    /// Output interface (`""` in PREROUTING/INPUT).
    pub out_iface: &'a str,
    /// Simulated time.
    pub now: Instant,
}

/// The verdict of a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Continue (`NF_ACCEPT`).
    Accept,
    /// Drop (`NF_DROP`); REJECT also drops, with a reply in [`Outcome`].
    Drop,
}

/// A NAT binding the caller must set up with conntrack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatRequest {
    /// `SNAT`.
    Snat(NatRange),
    /// `DNAT`.
    Dnat(NatRange),
    /// `MASQUERADE`: the outgoing interface's address.
    Masquerade(NatRange),
    /// `REDIRECT`: the incoming interface's first address (127.0.0.1 in OUTPUT).
    Redirect(NatRange),
}

/// How a table or chain walk step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// A rule matched (`rule` is its number).
    Rule,
    /// End of a user chain (implicit return).
    Return,
    /// The built-in chain's policy.
    Policy,
    /// The nat table was not consulted: not a connection's first packet, or
    /// its binding for this manip is already made (hooks.md §7); `rule` is 0.
    NatSkipped,
}

/// One line of the walk: a matched rule, a return or a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// Table.
    pub table: TableKind,
    /// Chain index in the table (name: [`Ruleset::chain_name`]).
    pub chain: usize,
    /// 1-based rule number (for `Policy`/`Return`: rules + 1, as TRACE).
    pub rule: usize,
    /// What happened.
    pub kind: StepKind,
}

/// A log line from LOG or TRACE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Syslog level (TRACE: 4).
    pub level: u8,
    /// The kernel's text, without its trailing space.
    pub text: String,
}

/// Everything besides the decision that the caller must act on. Reuse one
/// `Outcome` across packets: [`Outcome::clear`] keeps the allocations.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Record the walk into `walk` (off by default).
    pub record_walk: bool,
    /// Matched rules, returns and policies, in order.
    pub walk: Vec<WalkStep>,
    /// The table, chain index and rule number that decided (rule 0 = policy).
    pub decided_by: Option<(TableKind, usize, usize)>,
    /// New connection mark (CONNMARK), if changed.
    pub ct_mark: Option<u32>,
    /// `CT --notrack` / `NOTRACK`.
    pub notrack: bool,
    /// `CT --helper`.
    pub ct_helper: Option<String>,
    /// `CT --zone`.
    pub ct_zone: Option<u16>,
    /// A NAT binding to set up.
    pub nat: Option<NatRequest>,
    /// A REJECT reply to send (an IPv4 datagram).
    pub reject: Option<Vec<u8>>,
    /// LOG and TRACE lines.
    pub logs: Vec<LogLine>,
}

impl Outcome {
    /// Empties everything but keeps `record_walk` and the buffers.
    pub fn clear(&mut self) {
        self.walk.clear();
        self.decided_by = None;
        self.ct_mark = None;
        self.notrack = false;
        self.ct_helper = None;
        self.ct_zone = None;
        self.nat = None;
        self.reject = None;
        self.logs.clear();
    }
}

/// Header fields the matches need, parsed once per call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pkt {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub len: u16,
    pub tos: u8,
    pub ttl: u8,
    pub id: u16,
    pub frag: u16,
    pub ihl: usize,
    /// Whether L4 fields are present (first fragment, long enough).
    pub l4: bool,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Pkt {
    pub fn parse(b: &[u8]) -> Option<Pkt> {
        if b.len() < 20 || b[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(b[0] & 0xf) * 4;
        if ihl < 20 || b.len() < ihl {
            return None;
        }
        let mut p = Pkt {
            src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
            dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
            proto: b[9],
            len: u16::from_be_bytes([b[2], b[3]]),
            tos: b[1],
            ttl: b[8],
            id: u16::from_be_bytes([b[4], b[5]]),
            frag: u16::from_be_bytes([b[6], b[7]]),
            ihl,
            l4: false,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
        };
        let l4 = &b[ihl..];
        if p.frag & 0x1fff == 0 {
            match p.proto {
                6 if l4.len() >= 20 => {
                    p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                    p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                    p.tcp_flags = l4[13];
                    p.l4 = true;
                }
                17 | 136 | 132 if l4.len() >= 8 => {
                    p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                    p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                    p.l4 = true;
                }
                1 if l4.len() >= 4 => {
                    p.icmp_type = l4[0];
                    p.icmp_code = l4[1];
                    p.l4 = true;
                }
                _ => {}
            }
        }
        Some(p)
    }
}

/// `xt_limit`: HZ and credits as the kernel computes them (HZ = 1000).
const HZ: u64 = 1000;
/// `CREDITS_PER_JIFFY` = POW2_BELOW32(0xFFFFFFFF / (HZ*60*60*24)) = 32.
const CREDITS_PER_JIFFY: u64 = 32;
const LIMIT_SCALE: u64 = 10000;

fn user2credits(user: u64) -> u64 {
    if user > 0xFFFF_FFFF / (HZ * CREDITS_PER_JIFFY) {
        (user / LIMIT_SCALE) * HZ * CREDITS_PER_JIFFY
    } else {
        (user * HZ * CREDITS_PER_JIFFY) / LIMIT_SCALE
    }
}

/// `limit_mt`: refill by elapsed jiffies, then spend `cost` if enough.
fn limit_check(spec: LimitSpec, b: &mut Bucket, now: Instant) -> bool {
    let jiffies = now.0 / (1_000_000_000 / HZ);
    let cap = user2credits(u64::from(spec.avg) * u64::from(spec.burst));
    let cost = user2credits(u64::from(spec.avg));
    match b.prev {
        None => b.credit = cap,
        Some(prev) => {
            b.credit = b
                .credit
                .saturating_add(jiffies.saturating_sub(prev) * CREDITS_PER_JIFFY);
            b.credit = b.credit.min(cap);
        }
    }
    b.prev = Some(jiffies);
    if b.credit >= cost {
        b.credit -= cost;
        true
    } else {
        false
    }
}

fn ports_ok(p: &Option<Inv<Ports>>, v: u16) -> bool {
    p.as_ref().is_none_or(|p| p.v.contains(v) != p.inv)
}

fn net_ok(n: &Option<Inv<Net>>, a: Ipv4Addr) -> bool {
    n.as_ref().is_none_or(|n| n.v.contains(a) != n.inv)
}

fn range_ok(r: &Option<Inv<(Ipv4Addr, Ipv4Addr)>>, a: Ipv4Addr) -> bool {
    r.as_ref()
        .is_none_or(|r| (r.v.0 <= a && a <= r.v.1) != r.inv)
}

/// The `--state`/`--ctstate` bit of the packet.
fn state_bit(ct: &dyn ConnView) -> u32 {
    match ct.ctinfo() {
        None => 1,
        Some(i) => i.state().mask(),
    }
}

struct Ctx<'a> {
    p: &'a Pkt,
    input: &'a HookInput<'a>,
    ct: &'a dyn ConnView,
    ctmark: u32,
    mark: u32,
}

fn match_one(m: &Match, cx: &Ctx<'_>, bucket: Option<&mut Bucket>) -> bool {
    let p = cx.p;
    match m {
        Match::Tcp {
            sport,
            dport,
            flags,
        } => {
            p.l4 && p.proto == 6
                && ports_ok(sport, p.sport)
                && ports_ok(dport, p.dport)
                && flags
                    .as_ref()
                    .is_none_or(|f| ((p.tcp_flags & f.v.0) == f.v.1) != f.inv)
        }
        Match::Udp { sport, dport } => p.l4 && ports_ok(sport, p.sport) && ports_ok(dport, p.dport),
        Match::Icmp(i) => {
            let (t, lo, hi) = i.v;
            p.l4 && p.proto == 1
                && ((t == 255 || (p.icmp_type == t && lo <= p.icmp_code && p.icmp_code <= hi))
                    != i.inv)
        }
        Match::Multiport { dir, ports, inv } => {
            if !p.l4 {
                return false;
            }
            let hit = ports.iter().any(|r| match dir {
                MultiportDir::Src => r.contains(p.sport),
                MultiportDir::Dst => r.contains(p.dport),
                MultiportDir::Both => r.contains(p.sport) || r.contains(p.dport),
            });
            hit != *inv
        }
        Match::State(s) => (state_bit(cx.ct) & s.v != 0) != s.inv,
        Match::Conntrack(c) => conntrack_match(c, cx),
        Match::Mark(x) => ((cx.mark & x.v.1) == x.v.0) != x.inv,
        Match::Connmark(x) => ((cx.ctmark & x.v.1) == x.v.0) != x.inv,
        Match::Helper(h) => {
            // xt_helper matches on the helper of the connection's *master*
            // (an expected connection); without one the result is the
            // inversion flag. The name compares over the helper's length
            // (`strncmp(helper->name, info->name, strlen(helper->name))`).
            match cx.ct.master_helper() {
                None => h.inv,
                Some(_) if h.v.is_empty() => !h.inv,
                Some(name) => h.v.starts_with(name) != h.inv,
            }
        }
        Match::Iprange { src, dst } => range_ok(src, p.src) && range_ok(dst, p.dst),
        Match::Comment(_) => true,
        Match::Limit(l) => match bucket {
            Some(b) => limit_check(*l, b, cx.input.now),
            None => true,
        },
        Match::Connlimit {
            limit,
            above,
            mask,
            daddr,
        } => {
            // xt_connlimit counts by the packet's tuple even without a
            // conntrack (a count of 0 is the kernel's allocation failure).
            let addr = if *daddr { p.dst } else { p.src };
            let key = Net::new(addr, *mask).addr;
            let n = cx.ct.connections(key, *mask, *daddr);
            if *above {
                n > *limit
            } else {
                n <= *limit
            }
        }
        Match::Addrtype {
            src,
            dst,
            limit_in,
            limit_out,
        } => {
            let iface = if *limit_in {
                Some(cx.input.in_iface)
            } else if *limit_out {
                Some(cx.input.out_iface)
            } else {
                None
            };
            src.as_ref()
                .is_none_or(|s| (cx.ct.addr_type(p.src, iface) & s.v != 0) != s.inv)
                && dst
                    .as_ref()
                    .is_none_or(|s| (cx.ct.addr_type(p.dst, iface) & s.v != 0) != s.inv)
        }
    }
}

fn conntrack_match(c: &CtMatch, cx: &Ctx<'_>) -> bool {
    let ct = cx.ct;
    if let Some(s) = &c.state {
        let mut bits = state_bit(ct);
        let status = ct.status();
        if ct.ctinfo().is_some_and(|i| i != CtInfo::Untracked) {
            if status.contains(Status::SRC_NAT) {
                bits |= CTSTATE_SNAT;
            }
            if status.contains(Status::DST_NAT) {
                bits |= CTSTATE_DNAT;
            }
        }
        if (bits & s.v != 0) == s.inv {
            return false;
        }
    }
    // conntrack_mt(): without a conntrack the match is true only when
    // --ctstate was given (and passed above).
    if !ct.ctinfo().is_some_and(|i| i != CtInfo::Untracked) {
        return c.state.is_some();
    }
    if let Some(d) = c.dir_reply {
        let reply = ct
            .ctinfo()
            .is_some_and(|i| i.dir() == ctsim_conntrack::Dir::Reply);
        if reply != d {
            return false;
        }
    }
    if let Some(s) = &c.status {
        if ((ct.status().0 & s.v) != 0) == s.inv {
            return false;
        }
    }
    let tuple_opts = c.proto.is_some()
        || c.orig_src.is_some()
        || c.orig_dst.is_some()
        || c.repl_src.is_some()
        || c.repl_dst.is_some()
        || c.orig_sport.is_some()
        || c.orig_dport.is_some()
        || c.repl_sport.is_some()
        || c.repl_dport.is_some();
    if !tuple_opts {
        return true;
    }
    let Some((o, r)) = ct.tuples() else {
        return false;
    };
    if let Some(p) = &c.proto {
        if (o.proto == p.v) == p.inv {
            return false;
        }
    }
    let nets = [
        (&c.orig_src, o.src),
        (&c.orig_dst, o.dst),
        (&c.repl_src, r.src),
        (&c.repl_dst, r.dst),
    ];
    if !nets.iter().all(|(n, a)| net_ok(n, *a)) {
        return false;
    }
    let ports = [
        (&c.orig_sport, o.src_u),
        (&c.orig_dport, o.dst_u),
        (&c.repl_sport, r.src_u),
        (&c.repl_dport, r.dst_u),
    ];
    if !ports.iter().all(|(p, v)| ports_ok(p, *v)) {
        return false;
    }
    true
}

/// Whether the rule matches; updates limit buckets.
fn eval_rule(rule: &mut Rule, cx: &Ctx<'_>) -> bool {
    let s = &rule.spec;
    let p = cx.p;
    if !net_ok(&s.src, p.src) || !net_ok(&s.dst, p.dst) {
        return false;
    }
    if let Some(i) = &s.in_iface {
        if i.v.matches(cx.input.in_iface) == i.inv {
            return false;
        }
    }
    if let Some(i) = &s.out_iface {
        if i.v.matches(cx.input.out_iface) == i.inv {
            return false;
        }
    }
    if let Some(pr) = &s.proto {
        if (p.proto == pr.v) == pr.inv {
            return false;
        }
    }
    let mut b = 0;
    for m in &s.matches {
        let ok = match m {
            Match::Limit(_) => {
                let bucket = rule.buckets.get_mut(b);
                b += 1;
                match_one(m, cx, bucket)
            }
            _ => match_one(m, cx, None),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Chains nested deeper than this are a loop (the kernel refuses loops at
/// load time; we stop and drop).
const MAX_DEPTH: usize = 32;

impl Ruleset {
    /// The text of rule `rule` (1-based) of chain `chain` of `table`, as
    /// `iptables -S` prints it; for rule 0 (the policy) `-P CHAIN POLICY`.
    pub fn rule_text(&self, table: TableKind, chain: usize, rule: usize) -> String {
        let Some(ch) = self.table(table).chains.get(chain) else {
            return String::new();
        };
        match rule.checked_sub(1).and_then(|i| ch.rules.get(i)) {
            Some(r) => crate::print::rule_text(&ch.name, &r.spec),
            None => format!(
                "-P {} {}",
                ch.name,
                ch.policy.map_or("RETURN", |p| p.name())
            ),
        }
    }

    /// The name of chain `idx` of `table`.
    pub fn chain_name(&self, table: TableKind, idx: usize) -> &str {
        self.table(table)
            .chains
            .get(idx)
            .map_or("", |c| c.name.as_str())
    }

    /// Runs the tables of `input.hook` whose priority is in `prio`
    /// (e.g. `..Priority::CONNTRACK` for raw only, `Priority::CONNTRACK..`
    /// for the rest), in priority order.
    pub fn hook_range(
        &mut self,
        input: &HookInput<'_>,
        prio: std::ops::Range<i32>,
        meta: &mut PacketMeta,
        ct: &dyn ConnView,
        out: &mut Outcome,
    ) -> Decision {
        let Some(pkt) = Pkt::parse(input.packet) else {
            // Not IPv4: the kernel's ip_tables never sees it; pass.
            return Decision::Accept;
        };
        let mut ctmark = ct.mark();
        for &kind in input.hook.tables() {
            if !prio.contains(&kind.priority(input.hook)) {
                continue;
            }
            // A table nobody loaded is not registered (iptables-nft
            // creates tables on first use).
            if !self.tables[kind as usize].present {
                continue;
            }
            if kind == TableKind::Nat && !nat_wanted(input.hook, ct, &pkt) {
                if out.record_walk {
                    let chain = self.tables[kind as usize]
                        .chain_index(input.hook.name())
                        .unwrap_or(0);
                    out.walk.push(WalkStep {
                        table: kind,
                        chain,
                        rule: 0,
                        kind: StepKind::NatSkipped,
                    });
                }
                continue;
            }
            let d = self.run_table(kind, &pkt, input, meta, ct, &mut ctmark, out);
            if d == Decision::Drop {
                return Decision::Drop;
            }
        }
        Decision::Accept
    }

    /// Runs all tables of `input.hook` (see [`Ruleset::hook_range`]).
    pub fn hook(
        &mut self,
        input: &HookInput<'_>,
        meta: &mut PacketMeta,
        ct: &dyn ConnView,
        out: &mut Outcome,
    ) -> Decision {
        self.hook_range(input, i32::MIN..i32::MAX, meta, ct, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_table(
        &mut self,
        kind: TableKind,
        pkt: &Pkt,
        input: &HookInput<'_>,
        meta: &mut PacketMeta,
        ct: &dyn ConnView,
        ctmark: &mut u32,
        out: &mut Outcome,
    ) -> Decision {
        let table = &mut self.tables[kind as usize];
        let Some(base) = table
            .chains
            .iter()
            .position(|c| c.name == input.hook.name())
        else {
            return Decision::Accept;
        };
        let len = usize::from(pkt.len);
        let mut stack = [(0usize, 0usize); MAX_DEPTH];
        let mut depth = 0;
        let (mut ci, mut ri) = (base, 0);
        loop {
            let chain_len = table.chains[ci].rules.len();
            if ri >= chain_len {
                if depth == 0 {
                    return policy(table, kind, base, input, pkt, meta, out, len);
                }
                trace_step(
                    table,
                    kind,
                    ci,
                    chain_len + 1,
                    StepKind::Return,
                    input,
                    pkt,
                    meta,
                    out,
                );
                depth -= 1;
                (ci, ri) = stack[depth];
                continue;
            }
            let cx = Ctx {
                p: pkt,
                input,
                ct,
                ctmark: *ctmark,
                mark: meta.mark,
            };
            let rule = &mut table.chains[ci].rules[ri];
            if !eval_rule(rule, &cx) {
                ri += 1;
                continue;
            }
            rule.counters.add(len);
            let jump = rule.jump;
            trace_step(
                table,
                kind,
                ci,
                ri + 1,
                StepKind::Rule,
                input,
                pkt,
                meta,
                out,
            );
            let decided = |out: &mut Outcome| out.decided_by = Some((kind, ci, ri + 1));
            let rule = &table.chains[ci].rules[ri];
            match &rule.spec.target {
                Target::None => ri += 1,
                Target::Accept => {
                    decided(out);
                    return Decision::Accept;
                }
                Target::Drop => {
                    decided(out);
                    return Decision::Drop;
                }
                Target::Return => {
                    if depth == 0 {
                        return policy(table, kind, base, input, pkt, meta, out, len);
                    }
                    depth -= 1;
                    (ci, ri) = stack[depth];
                }
                Target::Jump(_) | Target::Goto(_) => {
                    if jump == usize::MAX {
                        ri += 1;
                        continue;
                    }
                    if matches!(rule.spec.target, Target::Jump(_)) {
                        if depth == MAX_DEPTH {
                            decided(out);
                            return Decision::Drop;
                        }
                        stack[depth] = (ci, ri + 1);
                        depth += 1;
                    }
                    (ci, ri) = (jump, 0);
                }
                Target::Reject(with) => {
                    decided(out);
                    out.reject = reject(*with, pkt, input, ct);
                    return Decision::Drop;
                }
                Target::Log(l) => {
                    let mut text = String::new();
                    text.push_str(&l.prefix);
                    dump_packet(&mut text, input, pkt, meta.mark, l.flags);
                    out.logs.push(LogLine {
                        level: l.level,
                        text,
                    });
                    ri += 1;
                }
                Target::Mark { value, mask } => {
                    meta.mark = (meta.mark & !mask) ^ value;
                    ri += 1;
                }
                Target::Connmark(op) => {
                    match *op {
                        ConnmarkOp::Set { value, mask } => {
                            *ctmark = (*ctmark & !mask) ^ value;
                            out.ct_mark = Some(*ctmark);
                        }
                        ConnmarkOp::Save { nfmask, ctmask } => {
                            *ctmark = (*ctmark & !ctmask) ^ (meta.mark & nfmask);
                            out.ct_mark = Some(*ctmark);
                        }
                        ConnmarkOp::Restore { nfmask, ctmask } => {
                            meta.mark = (meta.mark & !nfmask) ^ (*ctmark & ctmask);
                        }
                    }
                    ri += 1;
                }
                Target::Ct(spec) => {
                    // xt_CT returns XT_CONTINUE.
                    if spec.notrack {
                        out.notrack = true;
                    }
                    if spec.helper.is_some() {
                        out.ct_helper.clone_from(&spec.helper);
                    }
                    if spec.zone.is_some() {
                        out.ct_zone = spec.zone;
                    }
                    ri += 1;
                }
                Target::Notrack => {
                    out.notrack = true;
                    ri += 1;
                }
                Target::Trace => {
                    meta.trace = true;
                    ri += 1;
                }
                Target::Snat(r) | Target::Dnat(r) | Target::Masquerade(r) | Target::Redirect(r) => {
                    let r = *r;
                    out.nat = Some(match rule.spec.target {
                        Target::Snat(_) => NatRequest::Snat(r),
                        Target::Dnat(_) => NatRequest::Dnat(r),
                        Target::Masquerade(_) => NatRequest::Masquerade(r),
                        _ => NatRequest::Redirect(r),
                    });
                    decided(out);
                    return Decision::Accept;
                }
            }
        }
    }
}

/// hooks.md §7: the nat chains run only for NEW/RELATED/RELATED_REPLY
/// packets whose manip is not done yet.
fn nat_wanted(hook: Hook, ct: &dyn ConnView, pkt: &Pkt) -> bool {
    let Some(info) = ct.ctinfo() else {
        return false;
    };
    if !matches!(info, CtInfo::New | CtInfo::Related | CtInfo::RelatedReply) {
        return false;
    }
    // An ICMP error RELATED to a connection is only translated, never bound
    // (nf_nat_ipv4_fn).
    if pkt.proto == 1 && pkt.l4 && ctsim_conntrack::tuple::icmp_is_error(pkt.icmp_type) {
        return false;
    }
    let done = match hook.manip() {
        Manip::Src => Status::SRC_NAT_DONE,
        Manip::Dst => Status::DST_NAT_DONE,
    };
    !ct.status().contains(done)
}

#[allow(clippy::too_many_arguments)]
fn policy(
    table: &mut Table,
    kind: TableKind,
    base: usize,
    input: &HookInput<'_>,
    pkt: &Pkt,
    meta: &mut PacketMeta,
    out: &mut Outcome,
    len: usize,
) -> Decision {
    let n = table.chains[base].rules.len();
    trace_step(
        table,
        kind,
        base,
        n + 1,
        StepKind::Policy,
        input,
        pkt,
        meta,
        out,
    );
    let ch = &mut table.chains[base];
    ch.counters.add(len);
    out.decided_by = Some((kind, base, 0));
    match ch.policy {
        Some(Policy::Drop) => Decision::Drop,
        _ => Decision::Accept,
    }
}

#[allow(clippy::too_many_arguments)]
fn trace_step(
    table: &Table,
    kind: TableKind,
    chain: usize,
    rule: usize,
    step: StepKind,
    input: &HookInput<'_>,
    pkt: &Pkt,
    meta: &PacketMeta,
    out: &mut Outcome,
) {
    if out.record_walk {
        out.walk.push(WalkStep {
            table: kind,
            chain,
            rule,
            kind: step,
        });
    }
    if meta.trace {
        let mut text = String::new();
        let _ = write!(
            text,
            "TRACE: {}:{}:{}:{} ",
            kind.name(),
            table.chains[chain].name,
            match step {
                StepKind::Rule => "rule",
                StepKind::Return => "return",
                StepKind::Policy => "policy",
                StepKind::NatSkipped => return,
            },
            rule
        );
        dump_packet(&mut text, input, pkt, meta.mark, 0);
        out.logs.push(LogLine { level: 4, text });
    }
}

/// `nf_log_dump_packet` for IPv4 (net/netfilter/nf_log_syslog.c), without
/// `MAC=` (ctsim links carry no Ethernet header) and without the final
/// space.
/// A kernel log line about `packet` as `nf_log_packet()` writes it with
/// Linux's default flags (TCP sequence, TCP and IP options): `prefix`,
/// then `IN= OUT= SRC=…`. Conntrack helpers log the packets they drop
/// this way (`nf_ct_helper_log()`). `None` for a datagram too short to
/// describe.
pub fn log_line(prefix: &str, packet: &[u8], in_iface: &str, out_iface: &str) -> Option<String> {
    let p = Pkt::parse(packet)?;
    let input = HookInput {
        hook: Hook::Postrouting,
        packet,
        in_iface,
        out_iface,
        now: Instant(0),
    };
    let mut o = String::from(prefix);
    dump_packet(&mut o, &input, &p, 0, 1 | 2 | 4);
    Some(o)
}

fn dump_packet(o: &mut String, input: &HookInput<'_>, p: &Pkt, mark: u32, flags: u8) {
    let _ = write!(o, "IN={} OUT={} ", input.in_iface, input.out_iface);
    dump_ip(o, input.packet, p, flags);
    if mark != 0 {
        let _ = write!(o, "MARK={mark:#x} ");
    }
    if o.ends_with(' ') {
        o.pop();
    }
}

fn dump_ip(o: &mut String, b: &[u8], p: &Pkt, flags: u8) {
    let _ = write!(
        o,
        "SRC={} DST={} LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        p.src,
        p.dst,
        p.len,
        p.tos & 0x1e,
        p.tos & 0xe0,
        p.ttl,
        p.id
    );
    if p.frag & 0x8000 != 0 {
        o.push_str("CE ");
    }
    if p.frag & 0x4000 != 0 {
        o.push_str("DF ");
    }
    if p.frag & 0x2000 != 0 {
        o.push_str("MF ");
    }
    let off = p.frag & 0x1fff;
    if off != 0 {
        let _ = write!(o, "FRAG:{off} ");
    }
    let l4 = &b[p.ihl.min(b.len())..];
    match p.proto {
        6 => {
            o.push_str("PROTO=TCP ");
            if off != 0 {
                return;
            }
            if l4.len() < 20 {
                let _ = write!(o, "INCOMPLETE [{} bytes] ", l4.len());
                return;
            }
            let _ = write!(o, "SPT={} DPT={} ", p.sport, p.dport);
            if flags & 1 != 0 {
                // --log-tcp-sequence
                let _ = write!(
                    o,
                    "SEQ={} ACK={} ",
                    u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                    u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]])
                );
            }
            let _ = write!(o, "WINDOW={} ", u16::from_be_bytes([l4[14], l4[15]]));
            let _ = write!(o, "RES=0x{:02x} ", l4[12] & 0x0f);
            for (bit, n) in [
                (0x80, "CWR"),
                (0x40, "ECE"),
                (0x20, "URG"),
                (0x10, "ACK"),
                (0x08, "PSH"),
                (0x04, "RST"),
                (0x02, "SYN"),
                (0x01, "FIN"),
            ] {
                if l4[13] & bit != 0 {
                    let _ = write!(o, "{n} ");
                }
            }
            let _ = write!(o, "URGP={} ", u16::from_be_bytes([l4[18], l4[19]]));
        }
        17 => {
            o.push_str("PROTO=UDP ");
            if off != 0 {
                return;
            }
            if l4.len() < 8 {
                let _ = write!(o, "INCOMPLETE [{} bytes] ", l4.len());
                return;
            }
            let _ = write!(
                o,
                "SPT={} DPT={} LEN={} ",
                p.sport,
                p.dport,
                u16::from_be_bytes([l4[4], l4[5]])
            );
        }
        1 => {
            o.push_str("PROTO=ICMP ");
            if off != 0 {
                return;
            }
            if l4.len() < 4 {
                let _ = write!(o, "INCOMPLETE [{} bytes] ", l4.len());
                return;
            }
            let _ = write!(o, "TYPE={} CODE={} ", l4[0], l4[1]);
            match l4[0] {
                0 | 8 if l4.len() >= 8 => {
                    let _ = write!(
                        o,
                        "ID={} SEQ={} ",
                        u16::from_be_bytes([l4[4], l4[5]]),
                        u16::from_be_bytes([l4[6], l4[7]])
                    );
                }
                12 if l4.len() >= 8 => {
                    let _ = write!(o, "PARAMETER={} ", l4[4]);
                }
                5 if l4.len() >= 8 => {
                    let _ = write!(o, "GATEWAY={} ", Ipv4Addr::new(l4[4], l4[5], l4[6], l4[7]));
                }
                3 | 4 | 11 if l4.len() >= 8 => {
                    // The quoted packet, in brackets (one level only).
                    let inner = &l4[8..];
                    if let Some(ip) = Pkt::parse(inner) {
                        o.push('[');
                        dump_ip(o, inner, &ip, flags);
                        if o.ends_with(' ') {
                            o.pop();
                        }
                        o.push_str("] ");
                    }
                    if l4[0] == 3 && l4[1] == 4 {
                        let _ = write!(o, "MTU={} ", u16::from_be_bytes([l4[6], l4[7]]));
                    }
                }
                _ => {}
            }
        }
        n => {
            let _ = write!(o, "PROTO={n} ");
        }
    }
}

/// `nf_send_unreach` / `nf_send_reset`: the reply REJECT sends, if any.
fn reject(with: RejectWith, p: &Pkt, input: &HookInput<'_>, ct: &dyn ConnView) -> Option<Vec<u8>> {
    use ctsim_packet::IcmpError as E;
    let b = input.packet;
    let kind = match with {
        RejectWith::TcpReset => return tcp_reset(p, b),
        RejectWith::NetUnreachable => E::NetUnreachable,
        RejectWith::HostUnreachable => E::HostUnreachable,
        RejectWith::PortUnreachable => E::PortUnreachable,
        RejectWith::ProtoUnreachable => E::ProtoUnreachable,
        RejectWith::NetProhibited => E::NetProhibited,
        RejectWith::HostProhibited => E::HostProhibited,
        RejectWith::AdminProhibited => E::AdminProhibited,
    };
    // icmp_send(): never about an ICMP error, a non-first fragment, or a
    // broadcast/multicast packet.
    if ctsim_packet::is_icmp_error(b)
        || p.frag & 0x1fff != 0
        || p.dst.is_broadcast()
        || p.dst.is_multicast()
        || p.src.is_unspecified()
    {
        return None;
    }
    let src = ct.reject_source(p.dst, input.in_iface);
    Some(ctsim_packet::icmp_error(src, kind, b))
}

fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    for ch in data.chunks(2) {
        let w = if ch.len() == 2 {
            u16::from_be_bytes([ch[0], ch[1]])
        } else {
            u16::from(ch[0]) << 8
        };
        sum += u32::from(w);
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `nf_send_reset` (net/ipv4/netfilter/nf_reject_ipv4.c): no RST for a RST
/// or a fragment; seq from the ACK, else ACK of seq + SYN + FIN + payload.
fn tcp_reset(p: &Pkt, b: &[u8]) -> Option<Vec<u8>> {
    if p.proto != 6 || !p.l4 || p.tcp_flags & 0x04 != 0 {
        return None;
    }
    if p.dst.is_broadcast() || p.dst.is_multicast() {
        return None;
    }
    let t = &b[p.ihl..];
    let doff = usize::from(t[12] >> 4) * 4;
    let ip_len = usize::from(p.len).min(b.len());
    let payload = ip_len.saturating_sub(p.ihl + doff) as u32;
    let seq_in = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let ack_in = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    let (seq, ack, flags) = if p.tcp_flags & 0x10 != 0 {
        (ack_in, 0, 0x04u8)
    } else {
        let ack = seq_in
            .wrapping_add(u32::from(p.tcp_flags & 0x02 != 0))
            .wrapping_add(u32::from(p.tcp_flags & 0x01 != 0))
            .wrapping_add(payload);
        (0, ack, 0x14u8)
    };
    let mut out = vec![0u8; 40];
    // IP header: nf_reject_iphdr_put: TOS 0, ID 0, DF, TTL 64 (default
    // ip4_dst_hoplimit).
    out[0] = 0x45;
    out[2..4].copy_from_slice(&40u16.to_be_bytes());
    out[6] = 0x40;
    out[8] = 64;
    out[9] = 6;
    out[12..16].copy_from_slice(&p.dst.octets());
    out[16..20].copy_from_slice(&p.src.octets());
    let ipsum = csum_fold(csum_add(0, &out[..20]));
    out[10..12].copy_from_slice(&ipsum.to_be_bytes());
    let tcp = &mut out[20..];
    tcp[0..2].copy_from_slice(&p.dport.to_be_bytes());
    tcp[2..4].copy_from_slice(&p.sport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&p.dst.octets());
    pseudo[4..8].copy_from_slice(&p.src.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let sum = csum_fold(csum_add(csum_add(0, &pseudo), &out[20..40]));
    out[36..38].copy_from_slice(&sum.to_be_bytes());
    Some(out)
}
