//! The ruleset model: hooks, tables, chains, rules, matches and targets, as
//! iptables stores them after parsing (canonical values, so printing gives
//! what `iptables-save` prints).

use std::net::Ipv4Addr;

/// The five IPv4 netfilter hooks (reference/hooks.md §1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    Prerouting = 0,
    /// `NF_INET_LOCAL_IN`.
    Input = 1,
    /// `NF_INET_FORWARD`.
    Forward = 2,
    /// `NF_INET_LOCAL_OUT`.
    Output = 3,
    /// `NF_INET_POST_ROUTING`.
    Postrouting = 4,
}

impl Hook {
    /// All hooks in kernel numbering order.
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    /// The iptables chain name.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    /// The hook whose built-in chain is called `name`.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The tables registered at this hook, in the order they run (lower
    /// priority first; hooks.md §3). Conntrack (-200) and confirm (INT_MAX)
    /// are the caller's: see [`Priority`].
    pub const fn tables(self) -> &'static [TableKind] {
        use TableKind::*;
        match self {
            Hook::Prerouting => &[Raw, Mangle, Nat],
            Hook::Input => &[Mangle, Filter, Security, Nat],
            Hook::Forward => &[Mangle, Filter, Security],
            Hook::Output => &[Raw, Mangle, Nat, Filter, Security],
            Hook::Postrouting => &[Mangle, Nat],
        }
    }

    /// Which NAT manip this hook's nat chain sets up (hooks.md §7).
    pub const fn manip(self) -> Manip {
        match self {
            Hook::Prerouting | Hook::Output => Manip::Dst,
            Hook::Input | Hook::Postrouting | Hook::Forward => Manip::Src,
        }
    }
}

/// A NAT manip type: ctsim-conntrack's, which the NAT binding records.
pub use ctsim_conntrack::Manip;

/// Linux's `nf_ip_hook_priorities` values (hooks.md §3).
pub struct Priority;

impl Priority {
    /// `NF_IP_PRI_RAW`.
    pub const RAW: i32 = -300;
    /// `NF_IP_PRI_CONNTRACK`: the caller's conntrack lookup.
    pub const CONNTRACK: i32 = -200;
    /// `NF_IP_PRI_MANGLE`.
    pub const MANGLE: i32 = -150;
    /// `NF_IP_PRI_NAT_DST`.
    pub const NAT_DST: i32 = -100;
    /// `NF_IP_PRI_FILTER`.
    pub const FILTER: i32 = 0;
    /// `NF_IP_PRI_SECURITY`.
    pub const SECURITY: i32 = 50;
    /// `NF_IP_PRI_NAT_SRC`.
    pub const NAT_SRC: i32 = 100;
    /// `NF_IP_PRI_CONNTRACK_CONFIRM`: the caller's confirm, last.
    pub const CONFIRM: i32 = i32::MAX;
}

/// The iptables tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum TableKind {
    /// `raw` (-300): PREROUTING, OUTPUT.
    Raw = 0,
    /// `mangle` (-150): all five hooks.
    Mangle = 1,
    /// `nat`: PREROUTING/OUTPUT at -100, INPUT/POSTROUTING at 100.
    Nat = 2,
    /// `filter` (0): INPUT, FORWARD, OUTPUT.
    Filter = 3,
    /// `security` (50): INPUT, FORWARD, OUTPUT.
    Security = 4,
}

impl TableKind {
    /// All tables.
    pub const ALL: [TableKind; 5] = [
        TableKind::Raw,
        TableKind::Mangle,
        TableKind::Nat,
        TableKind::Filter,
        TableKind::Security,
    ];

    /// The order `iptables-save` (nf_tables variant, v1.8.9) prints tables
    /// in: `enum nft_table_type` order (checked in a namespace).
    pub const SAVE_ORDER: [TableKind; 5] = [
        TableKind::Mangle,
        TableKind::Security,
        TableKind::Raw,
        TableKind::Filter,
        TableKind::Nat,
    ];

    /// The table's name.
    pub const fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Mangle => "mangle",
            TableKind::Nat => "nat",
            TableKind::Filter => "filter",
            TableKind::Security => "security",
        }
    }

    /// The table called `name`.
    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Built-in chains, in the order iptables lists them.
    pub const fn builtin(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            TableKind::Raw => &[Prerouting, Output],
            TableKind::Mangle => &[Prerouting, Input, Forward, Output, Postrouting],
            TableKind::Nat => &[Prerouting, Input, Output, Postrouting],
            TableKind::Filter | TableKind::Security => &[Input, Forward, Output],
        }
    }

    /// This table's priority at `hook` (hooks.md §3–4).
    pub const fn priority(self, hook: Hook) -> i32 {
        match self {
            TableKind::Raw => Priority::RAW,
            TableKind::Mangle => Priority::MANGLE,
            TableKind::Nat => match hook.manip() {
                Manip::Dst => Priority::NAT_DST,
                Manip::Src => Priority::NAT_SRC,
            },
            TableKind::Filter => Priority::FILTER,
            TableKind::Security => Priority::SECURITY,
        }
    }
}

/// Packet and byte counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes (IP total length).
    pub bytes: u64,
}

impl Counters {
    /// Counts one packet of `len` bytes.
    #[inline]
    pub fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// A built-in chain's policy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Policy {
    /// `ACCEPT`.
    Accept,
    /// `DROP`.
    Drop,
}

impl Policy {
    /// `ACCEPT` or `DROP`.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// An address with a prefix length (`-s 192.0.2.0/24`); the address is
/// stored masked, as the kernel does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Net {
    /// Network address (masked).
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix: u8,
}

impl Net {
    /// The netmask as an integer.
    #[inline]
    pub const fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    /// A net, masking `addr`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Net {
        let n = Net {
            addr,
            prefix: prefix.min(32),
        };
        Net {
            addr: Ipv4Addr::from(u32::from(addr) & n.mask()),
            prefix: n.prefix,
        }
    }
    /// Whether `a` is inside.
    #[inline]
    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr)
    }
}

/// An optionally inverted value (`! -s ...`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Inv<T> {
    /// The value.
    pub v: T,
    /// Whether `!` was given.
    pub inv: bool,
}

/// An inclusive port range (`1000:2000`; a single port has lo == hi).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ports {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl Ports {
    /// Whether `p` is inside.
    #[inline]
    pub fn contains(self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// `-m multiport` direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MultiportDir {
    /// `--sports`.
    Src,
    /// `--dports`.
    Dst,
    /// `--ports`: source or destination.
    Both,
}

/// `-m limit` parameters, in the kernel's units (`xt_rateinfo`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LimitSpec {
    /// `avg`: period per packet in 1/10000 s (`XT_LIMIT_SCALE`).
    pub avg: u32,
    /// `--limit-burst`.
    pub burst: u32,
}

/// `-m conntrack` options (`xt_conntrack_mtinfo3`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CtMatch {
    /// `--ctstate`: mask of `CtState::mask()` bits plus SNAT 0x100, DNAT 0x200.
    pub state: Option<Inv<u32>>,
    /// `--ctproto`.
    pub proto: Option<Inv<u8>>,
    /// `--ctorigsrc`.
    pub orig_src: Option<Inv<Net>>,
    /// `--ctorigdst`.
    pub orig_dst: Option<Inv<Net>>,
    /// `--ctreplsrc`.
    pub repl_src: Option<Inv<Net>>,
    /// `--ctrepldst`.
    pub repl_dst: Option<Inv<Net>>,
    /// `--ctorigsrcport`.
    pub orig_sport: Option<Inv<Ports>>,
    /// `--ctorigdstport`.
    pub orig_dport: Option<Inv<Ports>>,
    /// `--ctreplsrcport`.
    pub repl_sport: Option<Inv<Ports>>,
    /// `--ctrepldstport`.
    pub repl_dport: Option<Inv<Ports>>,
    /// `--ctstatus`: `Status` bits.
    pub status: Option<Inv<u32>>,
    /// `--ctdir`: true = REPLY.
    pub dir_reply: Option<bool>,
}

/// `--ctstate` extra bits for SNAT/DNAT (`XT_CONNTRACK_STATE_SNAT`/`DNAT`).
pub const CTSTATE_SNAT: u32 = 0x100;
/// See [`CTSTATE_SNAT`].
pub const CTSTATE_DNAT: u32 = 0x200;

/// One match of a rule. `-p tcp --dport 22` creates an implicit `Tcp`
/// match, which `iptables-save` prints as `-m tcp`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Match {
    /// `-m tcp`.
    Tcp {
        /// `--sport`.
        sport: Option<Inv<Ports>>,
        /// `--dport`.
        dport: Option<Inv<Ports>>,
        /// `--tcp-flags mask cmp` (`--syn` is `0x17 0x02`).
        flags: Option<Inv<(u8, u8)>>,
    },
    /// `-m udp`.
    Udp {
        /// `--sport`.
        sport: Option<Inv<Ports>>,
        /// `--dport`.
        dport: Option<Inv<Ports>>,
    },
    /// `-m icmp --icmp-type type[/code]` (`any` is type 255).
    Icmp(Inv<(u8, u8, u8)>),
    /// `-m multiport`.
    Multiport {
        /// Which ports.
        dir: MultiportDir,
        /// The list (at most 15 entries, ranges count twice).
        ports: Vec<Ports>,
        /// `!`.
        inv: bool,
    },
    /// `-m state --state`: `CtState::mask()` bits.
    State(Inv<u32>),
    /// `-m conntrack`.
    Conntrack(Box<CtMatch>),
    /// `-m mark --mark value[/mask]`.
    Mark(Inv<(u32, u32)>),
    /// `-m connmark --mark value[/mask]`.
    Connmark(Inv<(u32, u32)>),
    /// `-m helper --helper name`.
    Helper(Inv<String>),
    /// `-m iprange`.
    Iprange {
        /// `--src-range`.
        src: Option<Inv<(Ipv4Addr, Ipv4Addr)>>,
        /// `--dst-range`.
        dst: Option<Inv<(Ipv4Addr, Ipv4Addr)>>,
    },
    /// `-m comment --comment`.
    Comment(String),
    /// `-m limit`; its bucket lives in the rule.
    Limit(LimitSpec),
    /// `-m connlimit`.
    Connlimit {
        /// The limit.
        limit: u32,
        /// `--connlimit-above` (true) or `--connlimit-upto` (false).
        above: bool,
        /// `--connlimit-mask`.
        mask: u8,
        /// `--connlimit-daddr` (false = saddr).
        daddr: bool,
    },
    /// `-m addrtype`: masks of `1 << RTN_*`.
    Addrtype {
        /// `--src-type`.
        src: Option<Inv<u16>>,
        /// `--dst-type`.
        dst: Option<Inv<u16>>,
        /// `--limit-iface-in`.
        limit_in: bool,
        /// `--limit-iface-out`.
        limit_out: bool,
    },
}

impl Match {
    /// The module name after `-m`.
    pub const fn name(&self) -> &'static str {
        match self {
            Match::Tcp { .. } => "tcp",
            Match::Udp { .. } => "udp",
            Match::Icmp(_) => "icmp",
            Match::Multiport { .. } => "multiport",
            Match::State(_) => "state",
            Match::Conntrack(_) => "conntrack",
            Match::Mark(_) => "mark",
            Match::Connmark(_) => "connmark",
            Match::Helper(_) => "helper",
            Match::Iprange { .. } => "iprange",
            Match::Comment(_) => "comment",
            Match::Limit(_) => "limit",
            Match::Connlimit { .. } => "connlimit",
            Match::Addrtype { .. } => "addrtype",
        }
    }
}

/// `REJECT --reject-with`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RejectWith {
    /// `icmp-net-unreachable`.
    NetUnreachable,
    /// `icmp-host-unreachable`.
    HostUnreachable,
    /// `icmp-port-unreachable` (the default).
    PortUnreachable,
    /// `icmp-proto-unreachable`.
    ProtoUnreachable,
    /// `icmp-net-prohibited`.
    NetProhibited,
    /// `icmp-host-prohibited`.
    HostProhibited,
    /// `icmp-admin-prohibited`.
    AdminProhibited,
    /// `tcp-reset`.
    TcpReset,
}

impl RejectWith {
    /// All kinds with their names.
    pub const ALL: [(RejectWith, &'static str); 8] = [
        (RejectWith::NetUnreachable, "icmp-net-unreachable"),
        (RejectWith::HostUnreachable, "icmp-host-unreachable"),
        (RejectWith::PortUnreachable, "icmp-port-unreachable"),
        (RejectWith::ProtoUnreachable, "icmp-proto-unreachable"),
        (RejectWith::NetProhibited, "icmp-net-prohibited"),
        (RejectWith::HostProhibited, "icmp-host-prohibited"),
        (RejectWith::AdminProhibited, "icmp-admin-prohibited"),
        (RejectWith::TcpReset, "tcp-reset"),
    ];
    /// The name `iptables-save` prints.
    pub fn name(self) -> &'static str {
        RejectWith::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }
}

/// `-j LOG` options.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LogSpec {
    /// `--log-prefix`.
    pub prefix: String,
    /// `--log-level` (syslog level, default 4 = warning).
    pub level: u8,
    /// Flags: 1 tcp-sequence, 2 tcp-options, 4 ip-options, 8 uid, 0x20 macdecode.
    pub flags: u8,
}

/// `-j CONNMARK` operations (revision 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnmarkOp {
    /// `--set-xmark value/mask`: ctmark = (ctmark & !mask) ^ value.
    Set {
        /// Value.
        value: u32,
        /// Mask.
        mask: u32,
    },
    /// `--save-mark`: ctmark = (ctmark & !ctmask) ^ (mark & nfmask).
    Save {
        /// `--nfmask`.
        nfmask: u32,
        /// `--ctmask`.
        ctmask: u32,
    },
    /// `--restore-mark`: mark = (mark & !nfmask) ^ (ctmark & ctmask).
    Restore {
        /// `--nfmask`.
        nfmask: u32,
        /// `--ctmask`.
        ctmask: u32,
    },
}

/// `-j CT` options.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CtSpec {
    /// `--notrack`.
    pub notrack: bool,
    /// `--helper`.
    pub helper: Option<String>,
    /// `--zone`.
    pub zone: Option<u16>,
}

/// A NAT range (`nf_nat_range2`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NatRange {
    /// Address range (`MAP_IPS`), if given.
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Port range (`PROTO_SPECIFIED`), if given.
    pub ports: Option<(u16, u16)>,
    /// `--random` (`PROTO_RANDOM`).
    pub random: bool,
    /// `--random-fully`.
    pub random_fully: bool,
    /// `--persistent`.
    pub persistent: bool,
}

/// What a rule does when it matches.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Target {
    /// No `-j`: only counts.
    None,
    /// `ACCEPT`.
    Accept,
    /// `DROP`.
    Drop,
    /// `RETURN`.
    Return,
    /// `-j CHAIN`.
    Jump(String),
    /// `-g CHAIN`.
    Goto(String),
    /// `REJECT`.
    Reject(RejectWith),
    /// `LOG`.
    Log(LogSpec),
    /// `MARK --set-xmark value/mask`: mark = (mark & !mask) ^ value.
    Mark {
        /// Value.
        value: u32,
        /// Mask.
        mask: u32,
    },
    /// `CONNMARK`.
    Connmark(ConnmarkOp),
    /// `CT`.
    Ct(CtSpec),
    /// `NOTRACK` (old name of `CT --notrack`).
    Notrack,
    /// `SNAT --to-source`.
    Snat(NatRange),
    /// `DNAT --to-destination`.
    Dnat(NatRange),
    /// `MASQUERADE` (only ports and flags are used).
    Masquerade(NatRange),
    /// `REDIRECT` (only ports and flags are used).
    Redirect(NatRange),
    /// `TRACE`.
    Trace,
}

impl Target {
    /// The name printed after `-j` (or in the target column).
    pub fn name(&self) -> &str {
        match self {
            Target::None => "",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => c,
            Target::Reject(_) => "REJECT",
            Target::Log(_) => "LOG",
            Target::Mark { .. } => "MARK",
            Target::Connmark(_) => "CONNMARK",
            Target::Ct(_) => "CT",
            Target::Notrack => "NOTRACK",
            Target::Snat(_) => "SNAT",
            Target::Dnat(_) => "DNAT",
            Target::Masquerade(_) => "MASQUERADE",
            Target::Redirect(_) => "REDIRECT",
            Target::Trace => "TRACE",
        }
    }
}

/// An interface name, `+` at the end matching any suffix.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Iface(pub String);

impl Iface {
    /// Whether `name` matches.
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('+') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }
}

/// What a rule says (everything but its counters and runtime state); two
/// rules with equal specs are the same rule to `iptables -D`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RuleSpec {
    /// `-s`.
    pub src: Option<Inv<Net>>,
    /// `-d`.
    pub dst: Option<Inv<Net>>,
    /// `-i`.
    pub in_iface: Option<Inv<Iface>>,
    /// `-o`.
    pub out_iface: Option<Inv<Iface>>,
    /// `-p` (protocol number; `all` is no option).
    pub proto: Option<Inv<u8>>,
    /// Matches in order.
    pub matches: Vec<Match>,
    /// The target.
    pub target: Target,
}

impl Default for RuleSpec {
    fn default() -> Self {
        RuleSpec {
            src: None,
            dst: None,
            in_iface: None,
            out_iface: None,
            proto: None,
            matches: Vec::new(),
            target: Target::None,
        }
    }
}

/// `-m limit` runtime state (`xt_limit_priv`), in the kernel's credits.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Bucket {
    /// Jiffies of the last update; `None` before the first packet.
    pub prev: Option<u64>,
    /// Credits left.
    pub credit: u64,
}

/// A rule in a chain.
#[derive(Clone, Debug)]
pub struct Rule {
    /// What it says.
    pub spec: RuleSpec,
    /// Its counters.
    pub counters: Counters,
    /// One bucket per `-m limit` in `spec.matches`, in order.
    pub(crate) buckets: Vec<Bucket>,
    /// Index of the jump/goto target chain in the table (resolved).
    pub(crate) jump: usize,
}

impl Rule {
    /// A rule with zero counters.
    pub fn new(spec: RuleSpec) -> Rule {
        let n = spec
            .matches
            .iter()
            .filter(|m| matches!(m, Match::Limit(_)))
            .count();
        Rule {
            spec,
            counters: Counters::default(),
            buckets: vec![Bucket::default(); n],
            jump: usize::MAX,
        }
    }
}

/// A chain: built-in (with a policy) or user-defined.
#[derive(Clone, Debug)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// `Some` for built-in chains.
    pub policy: Option<Policy>,
    /// Policy counters (built-in chains).
    pub counters: Counters,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// One table: built-in chains first (in [`TableKind::builtin`] order), then
/// user chains sorted by name, as iptables lists them.
#[derive(Clone, Debug)]
pub struct Table {
    /// Which table.
    pub kind: TableKind,
    /// Whether the table exists (was loaded or touched by a command);
    /// `iptables-save` prints only those.
    pub present: bool,
    /// Its chains.
    pub chains: Vec<Chain>,
}

impl Table {
    /// An empty table with ACCEPT policies.
    pub fn new(kind: TableKind) -> Table {
        Table {
            kind,
            present: false,
            chains: kind
                .builtin()
                .iter()
                .map(|h| Chain {
                    name: h.name().to_string(),
                    policy: Some(Policy::Accept),
                    counters: Counters::default(),
                    rules: Vec::new(),
                })
                .collect(),
        }
    }

    /// Index of the chain called `name`.
    pub fn chain_index(&self, name: &str) -> Option<usize> {
        self.chains.iter().position(|c| c.name == name)
    }

    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// Number of rules jumping or going to chain `idx`.
    pub fn references(&self, name: &str) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|r| matches!(&r.spec.target, Target::Jump(n) | Target::Goto(n) if n == name))
            .count()
    }

    /// Adds a user chain at its sorted place.
    pub(crate) fn add_user_chain(&mut self, name: &str) {
        let builtin = self.kind.builtin().len();
        let pos = self.chains[builtin..]
            .iter()
            .position(|c| c.name.as_str() > name)
            .map_or(self.chains.len(), |p| p + builtin);
        self.chains.insert(
            pos,
            Chain {
                name: name.to_string(),
                policy: None,
                counters: Counters::default(),
                rules: Vec::new(),
            },
        );
    }

    /// Resolves jump targets to chain indices; `Err` names a missing chain.
    pub(crate) fn relink(&mut self) -> Result<(), (usize, usize, String)> {
        let names: Vec<String> = self.chains.iter().map(|c| c.name.clone()).collect();
        for (ci, chain) in self.chains.iter_mut().enumerate() {
            for (ri, rule) in chain.rules.iter_mut().enumerate() {
                if let Target::Jump(n) | Target::Goto(n) = &rule.spec.target {
                    match names.iter().position(|x| x == n) {
                        Some(i) if i >= self.kind.builtin().len() => rule.jump = i,
                        _ => return Err((ci, ri, n.clone())),
                    }
                }
            }
        }
        Ok(())
    }
}
