//! Parsing rule options (`-s 192.0.2.0/24 -p tcp --dport 22 -j ACCEPT`) as
//! iptables and iptables-restore accept them.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::model::*;

/// A ruleset or command error, at a line and column (1-based).
#[derive(Clone, PartialEq, Eq, Debug, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// Line (1 for a single command).
    pub line: usize,
    /// Column of the offending token.
    pub column: usize,
    /// What is wrong, and what is accepted.
    pub message: String,
}

/// A word of a line with the column it starts at.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub text: String,
    pub col: usize,
}

/// Splits a line into words the way iptables-restore does
/// (`add_param_to_argv`): blanks separate, double quotes group, and inside
/// them a backslash takes the next character literally. With
/// `single_quotes` (an `iptables` command line, written as for a shell),
/// single quotes also group, literally.
pub(crate) fn tokenize(
    line: &str,
    lineno: usize,
    single_quotes: bool,
) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let col = i + 1;
        let mut text = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match quote {
                Some('"') if c == '\\' && i + 1 < chars.len() => {
                    text.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                Some(q) if c == q => quote = None,
                Some(_) => text.push(c),
                None if c == '"' || (single_quotes && c == '\'') => quote = Some(c),
                None if c.is_whitespace() => break,
                None => text.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(ParseError {
                line: lineno,
                column: col,
                message: "unterminated quote".into(),
            });
        }
        out.push(Token { text, col });
    }
    Ok(out)
}

pub(crate) struct Cursor<'a> {
    pub toks: &'a [Token],
    pub pos: usize,
    pub line: usize,
    pub end_col: usize,
}

impl<'a> Cursor<'a> {
    pub fn err_at(&self, col: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: col,
            message: message.into(),
        }
    }
    pub fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }
    pub fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }
    /// The value of option `opt`.
    pub fn value(&mut self, opt: &Token) -> Result<&'a Token, ParseError> {
        match self.next() {
            Some(t) => Ok(t),
            None => Err(self.err_at(
                self.end_col,
                format!("option \"{}\" requires an argument", opt.text),
            )),
        }
    }
}

fn bad(t: &Token, line: usize, what: &str) -> ParseError {
    ParseError {
        line,
        column: t.col,
        message: format!("invalid {what} \"{}\"", t.text),
    }
}

/// Parses `a.b.c.d[/len|/mask]`.
pub(crate) fn parse_net(s: &str) -> Option<Net> {
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let addr: Ipv4Addr = a.parse().ok()?;
    let prefix = match m {
        None => 32,
        Some(m) if m.contains('.') => {
            let mask = u32::from(m.parse::<Ipv4Addr>().ok()?);
            let p = mask.leading_ones();
            if mask.checked_shl(p).unwrap_or(0) != 0 {
                return None;
            }
            p as u8
        }
        Some(m) => {
            let p: u8 = m.parse().ok()?;
            if p > 32 {
                return None;
            }
            p
        }
    };
    Some(Net::new(addr, prefix))
}

fn parse_port(s: &str) -> Option<u16> {
    match s {
        "ssh" => Some(22),
        "http" => Some(80),
        "https" => Some(443),
        "domain" => Some(53),
        "ftp" => Some(21),
        "smtp" => Some(25),
        _ => s.parse().ok(),
    }
}

/// `p`, `p:q`, `:q`, `p:` (iptables fills 0 and 65535).
pub(crate) fn parse_ports(s: &str, sep: char) -> Option<Ports> {
    match s.split_once(sep) {
        None => parse_port(s).map(|p| Ports { lo: p, hi: p }),
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { parse_port(a)? };
            let hi = if b.is_empty() { 65535 } else { parse_port(b)? };
            (lo <= hi).then_some(Ports { lo, hi })
        }
    }
}

/// Protocol name or number.
pub(crate) fn parse_proto(s: &str) -> Option<u8> {
    let l = s.to_ascii_lowercase();
    PROTOS
        .iter()
        .find(|(n, _)| *n == l)
        .map(|(_, p)| *p)
        .or_else(|| s.parse().ok())
}

/// Protocol names `iptables-save` prints.
pub(crate) const PROTOS: [(&str, u8); 8] = [
    ("tcp", 6),
    ("udp", 17),
    ("icmp", 1),
    ("udplite", 136),
    ("sctp", 132),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
];

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `value[/mask]`, mask defaulting to all ones.
fn parse_mark(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((v, m)) => Some((parse_u32(v)?, parse_u32(m)?)),
        None => Some((parse_u32(s)?, u32::MAX)),
    }
}

pub(crate) const STATE_NAMES: [(&str, u32); 7] = [
    ("INVALID", 1),
    ("NEW", 8),
    ("RELATED", 4),
    ("ESTABLISHED", 2),
    ("UNTRACKED", 64),
    ("SNAT", CTSTATE_SNAT),
    ("DNAT", CTSTATE_DNAT),
];

pub(crate) const STATUS_NAMES: [(&str, u32); 4] = [
    ("EXPECTED", 1),
    ("SEEN_REPLY", 2),
    ("ASSURED", 4),
    ("CONFIRMED", 8),
];

pub(crate) const TCP_FLAGS: [(&str, u8); 6] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
];

pub(crate) const ADDR_TYPES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

const ICMP_NAMES: [(&str, u8, u8, u8); 14] = [
    ("any", 255, 0, 255),
    ("echo-reply", 0, 0, 255),
    ("destination-unreachable", 3, 0, 255),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-quench", 4, 0, 255),
    ("redirect", 5, 0, 255),
    ("echo-request", 8, 0, 255),
    ("time-exceeded", 11, 0, 255),
    ("parameter-problem", 12, 0, 255),
    ("timestamp-request", 13, 0, 255),
];

fn parse_list(s: &str, names: &[(&str, u32)]) -> Option<u32> {
    let mut m = 0;
    for w in s.split(',') {
        m |= names.iter().find(|(n, _)| n.eq_ignore_ascii_case(w))?.1;
    }
    Some(m)
}

fn parse_icmp(s: &str) -> Option<(u8, u8, u8)> {
    if let Some(&(_, t, lo, hi)) = ICMP_NAMES.iter().find(|e| e.0 == s) {
        return Some((t, lo, hi));
    }
    match s.split_once('/') {
        Some((t, c)) => {
            let c: u8 = c.parse().ok()?;
            Some((t.parse().ok()?, c, c))
        }
        None => Some((s.parse().ok()?, 0, 255)),
    }
}

/// `--limit 3/min` to `avg` (`XT_LIMIT_SCALE` = 10000 per second).
fn parse_rate(s: &str) -> Option<u32> {
    let (n, unit) = s.split_once('/').unwrap_or((s, "sec"));
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86400,
        _ => return None,
    };
    if n == 0 || n > 10000 * mult {
        return None;
    }
    Some((10000 * mult / n) as u32)
}

fn parse_addr_range(s: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let a = s.parse().ok()?;
            Some((a, a))
        }
    }
}

/// `A[-B][:p[-q]]` for `--to-source`/`--to-destination`.
fn parse_nat_range(s: &str) -> Option<NatRange> {
    let mut r = NatRange::default();
    let (a, p) = match s.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    if !a.is_empty() {
        r.addrs = Some(parse_addr_range(a)?);
    }
    if let Some(p) = p {
        r.ports = Some(parse_port_dash(p)?);
    }
    Some(r)
}

fn parse_port_dash(p: &str) -> Option<(u16, u16)> {
    let pr = parse_ports(p, '-')?;
    Some((pr.lo, pr.hi))
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

const BASE_OPTS: [&str; 16] = [
    "-s",
    "--source",
    "-d",
    "--destination",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-p",
    "--protocol",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
];

const MATCHES: [&str; 14] = [
    "tcp",
    "udp",
    "icmp",
    "multiport",
    "state",
    "conntrack",
    "mark",
    "connmark",
    "helper",
    "iprange",
    "comment",
    "limit",
    "connlimit",
    "addrtype",
];

const TARGETS: [&str; 16] = [
    "ACCEPT",
    "DROP",
    "RETURN",
    "REJECT",
    "LOG",
    "MARK",
    "CONNMARK",
    "CT",
    "NOTRACK",
    "SNAT",
    "DNAT",
    "MASQUERADE",
    "REDIRECT",
    "TRACE",
    "QUEUE",
    "NFQUEUE",
];

fn match_opts(name: &str) -> &'static [&'static str] {
    match name {
        "tcp" => &[
            "--sport",
            "--source-port",
            "--dport",
            "--destination-port",
            "--tcp-flags",
            "--syn",
        ],
        "udp" => &["--sport", "--source-port", "--dport", "--destination-port"],
        "icmp" => &["--icmp-type"],
        "multiport" => &[
            "--sports",
            "--source-ports",
            "--dports",
            "--destination-ports",
            "--ports",
        ],
        "state" => &["--state"],
        "conntrack" => &[
            "--ctstate",
            "--ctproto",
            "--ctorigsrc",
            "--ctorigdst",
            "--ctreplsrc",
            "--ctrepldst",
            "--ctorigsrcport",
            "--ctorigdstport",
            "--ctreplsrcport",
            "--ctrepldstport",
            "--ctstatus",
            "--ctdir",
        ],
        "mark" | "connmark" => &["--mark"],
        "helper" => &["--helper"],
        "iprange" => &["--src-range", "--dst-range"],
        "comment" => &["--comment"],
        "limit" => &["--limit", "--limit-burst"],
        "connlimit" => &[
            "--connlimit-upto",
            "--connlimit-above",
            "--connlimit-mask",
            "--connlimit-saddr",
            "--connlimit-daddr",
        ],
        "addrtype" => &[
            "--src-type",
            "--dst-type",
            "--limit-iface-in",
            "--limit-iface-out",
        ],
        _ => &[],
    }
}

fn target_opts(name: &str) -> &'static [&'static str] {
    match name {
        "REJECT" => &["--reject-with"],
        "LOG" => &[
            "--log-prefix",
            "--log-level",
            "--log-tcp-sequence",
            "--log-tcp-options",
            "--log-ip-options",
            "--log-uid",
            "--log-macdecode",
        ],
        "MARK" => &[
            "--set-mark",
            "--set-xmark",
            "--and-mark",
            "--or-mark",
            "--xor-mark",
        ],
        "CONNMARK" => &[
            "--set-mark",
            "--set-xmark",
            "--and-mark",
            "--or-mark",
            "--xor-mark",
            "--save-mark",
            "--restore-mark",
            "--mask",
            "--nfmask",
            "--ctmask",
        ],
        "CT" => &["--notrack", "--helper", "--zone"],
        "SNAT" => &["--to-source", "--random", "--random-fully", "--persistent"],
        "DNAT" => &["--to-destination", "--random", "--persistent"],
        "MASQUERADE" => &["--to-ports", "--random", "--random-fully"],
        "REDIRECT" => &["--to-ports", "--random"],
        _ => &[],
    }
}

fn empty_match(name: &str) -> Option<Match> {
    Some(match name {
        "tcp" => Match::Tcp {
            sport: None,
            dport: None,
            flags: None,
        },
        "udp" => Match::Udp {
            sport: None,
            dport: None,
        },
        "icmp" => Match::Icmp(Inv {
            v: (255, 0, 255),
            inv: false,
        }),
        "multiport" => Match::Multiport {
            dir: MultiportDir::Both,
            ports: Vec::new(),
            inv: false,
        },
        "state" => Match::State(Inv { v: 0, inv: false }),
        "conntrack" => Match::Conntrack(Box::default()),
        "mark" => Match::Mark(Inv {
            v: (0, u32::MAX),
            inv: false,
        }),
        "connmark" => Match::Connmark(Inv {
            v: (0, u32::MAX),
            inv: false,
        }),
        "helper" => Match::Helper(Inv {
            v: String::new(),
            inv: false,
        }),
        "iprange" => Match::Iprange {
            src: None,
            dst: None,
        },
        "comment" => Match::Comment(String::new()),
        "limit" => Match::Limit(LimitSpec {
            avg: 10000 * 3600 / 3,
            burst: 5,
        }),
        "connlimit" => Match::Connlimit {
            limit: 0,
            above: true,
            mask: 32,
            daddr: false,
        },
        "addrtype" => Match::Addrtype {
            src: None,
            dst: None,
            limit_in: false,
            limit_out: false,
        },
        _ => return None,
    })
}

fn empty_target(name: &str) -> Target {
    match name {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        "REJECT" => Target::Reject(RejectWith::PortUnreachable),
        "LOG" => Target::Log(LogSpec {
            prefix: String::new(),
            level: 4,
            flags: 0,
        }),
        "MARK" => Target::Mark { value: 0, mask: 0 },
        "CONNMARK" => Target::Connmark(ConnmarkOp::Set { value: 0, mask: 0 }),
        "CT" => Target::Ct(CtSpec::default()),
        "NOTRACK" => Target::Notrack,
        "SNAT" => Target::Snat(NatRange::default()),
        "DNAT" => Target::Dnat(NatRange::default()),
        "MASQUERADE" => Target::Masquerade(NatRange::default()),
        "REDIRECT" => Target::Redirect(NatRange::default()),
        "TRACE" => Target::Trace,
        other => Target::Jump(other.to_string()),
    }
}

const LOG_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

/// Parses rule options from the cursor to the end. `-A CHAIN` etc. have
/// been consumed by the caller.
pub(crate) fn parse_rule(c: &mut Cursor<'_>) -> Result<RuleSpec, ParseError> {
    let mut spec = RuleSpec::default();
    let mut inv = false;
    let mut inv_col = 0;
    let line = c.line;
    // Index into spec.matches of the matches accepting options, latest last.
    let mut target_name: Option<String> = None;
    let mut target_set = false;
    let mut target_opts_seen = false;
    while let Some(t) = c.next() {
        let o = t.text.as_str();
        if o == "!" {
            if inv {
                return Err(c.err_at(t.col, "multiple \"!\" flags not allowed"));
            }
            inv = true;
            inv_col = t.col;
            continue;
        }
        let was_inv = std::mem::take(&mut inv);
        match o {
            "-s" | "--source" | "-d" | "--destination" => {
                let v = c.value(t)?;
                let net = parse_net(&v.text).ok_or_else(|| bad(v, line, "address"))?;
                let slot = if o.starts_with("-s") || o == "--source" {
                    &mut spec.src
                } else {
                    &mut spec.dst
                };
                // iptables stores no address match for 0.0.0.0/0.
                *slot = (net.prefix != 0 || was_inv).then_some(Inv {
                    v: net,
                    inv: was_inv,
                });
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let v = c.value(t)?;
                if v.text.is_empty() || v.text.len() > 15 {
                    return Err(bad(v, line, "interface name"));
                }
                let slot = if o == "-i" || o == "--in-interface" {
                    &mut spec.in_iface
                } else {
                    &mut spec.out_iface
                };
                *slot = Some(Inv {
                    v: Iface(v.text.clone()),
                    inv: was_inv,
                });
            }
            "-p" | "--protocol" => {
                let v = c.value(t)?;
                if v.text == "all" || v.text == "0" {
                    spec.proto = None;
                } else {
                    let p = parse_proto(&v.text).ok_or_else(|| {
                        c.err_at(
                            v.col,
                            format!(
                                "unknown protocol \"{}\" (accepted: all, tcp, udp, icmp, udplite, sctp, gre, esp, ah or a number)",
                                v.text
                            ),
                        )
                    })?;
                    spec.proto = Some(Inv { v: p, inv: was_inv });
                }
            }
            "-m" | "--match" => {
                let v = c.value(t)?;
                let m = empty_match(&v.text).ok_or_else(|| {
                    c.err_at(
                        v.col,
                        format!(
                            "unknown match \"{}\" (accepted: {})",
                            v.text,
                            names(&MATCHES)
                        ),
                    )
                })?;
                spec.matches.push(m);
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let v = c.value(t)?;
                if target_set {
                    return Err(c.err_at(t.col, "multiple targets (-j/-g) not allowed"));
                }
                target_set = true;
                if o == "-g" || o == "--goto" {
                    spec.target = Target::Goto(v.text.clone());
                } else {
                    if matches!(v.text.as_str(), "QUEUE" | "NFQUEUE") {
                        return Err(
                            c.err_at(v.col, format!("target \"{}\" is not simulated", v.text))
                        );
                    }
                    spec.target = empty_target(&v.text);
                    target_name = Some(v.text.clone());
                }
            }
            _ if o.starts_with('-') => {
                let tname = target_name.as_deref().unwrap_or("");
                if target_opts(tname).contains(&o) {
                    target_opts_seen = true;
                    target_option(c, t, was_inv, &mut spec.target)?;
                    continue;
                }
                // The latest loaded match accepting the option, else an
                // implicit protocol match (iptables loads `-p tcp`'s `tcp`).
                let pos = spec
                    .matches
                    .iter()
                    .rposition(|m| match_opts(m.name()).contains(&o));
                let idx = match pos {
                    Some(i) => i,
                    None => {
                        let pname = match spec.proto.as_ref().map(|p| p.v) {
                            Some(6) => "tcp",
                            Some(17) => "udp",
                            Some(1) => "icmp",
                            _ => "",
                        };
                        if !pname.is_empty() && match_opts(pname).contains(&o) {
                            spec.matches.push(empty_match(pname).expect("known match"));
                            spec.matches.len() - 1
                        } else {
                            return Err(unknown_option(c, t, &spec, tname));
                        }
                    }
                };
                match_option(c, t, was_inv, &mut spec.matches[idx])?;
            }
            _ => {
                return Err(c.err_at(
                    t.col,
                    format!("unexpected argument \"{}\" (options start with -)", t.text),
                ));
            }
        }
    }
    if inv {
        return Err(c.err_at(inv_col, "\"!\" not followed by an option"));
    }
    validate(c, &spec, target_opts_seen)?;
    Ok(spec)
}

fn unknown_option(c: &Cursor<'_>, t: &Token, spec: &RuleSpec, target: &str) -> ParseError {
    let mut accepted: Vec<&str> = BASE_OPTS.to_vec();
    for m in &spec.matches {
        accepted.extend_from_slice(match_opts(m.name()));
    }
    accepted.extend_from_slice(target_opts(target));
    let mut dedup: Vec<&str> = Vec::new();
    for a in accepted {
        if !dedup.contains(&a) {
            dedup.push(a);
        }
    }
    c.err_at(
        t.col,
        format!(
            "unknown option \"{}\" (accepted here: {}; a match's options need its -m first)",
            t.text,
            names(&dedup)
        ),
    )
}

/// Column of the first token among `names` followed by `arg` (any when
/// `None`), else of the rule's first token.
pub(crate) fn col_of(c: &Cursor<'_>, names: &[&str], arg: Option<&str>) -> usize {
    c.toks
        .windows(2)
        .find(|w| names.contains(&w[0].text.as_str()) && arg.is_none_or(|a| w[1].text == a))
        .map_or_else(|| c.toks.first().map_or(1, |t| t.col), |w| w[0].col)
}

fn validate(c: &Cursor<'_>, spec: &RuleSpec, target_opts_seen: bool) -> Result<(), ParseError> {
    let proto = spec.proto.as_ref().filter(|p| !p.inv).map(|p| p.v);
    let tcol = col_of(c, &["-j", "--jump", "-g", "--goto"], None);
    for m in &spec.matches {
        let col = col_of(c, &["-m", "--match"], Some(m.name()));
        let col = if col == c.toks.first().map_or(1, |t| t.col) {
            col_of(c, &["-p", "--protocol"], None)
        } else {
            col
        };
        let need = match m {
            Match::Tcp { .. } => Some((6, "tcp")),
            Match::Udp { .. } => Some((17, "udp")),
            Match::Icmp(_) => Some((1, "icmp")),
            _ => None,
        };
        if let Some((p, n)) = need {
            if proto != Some(p) {
                return Err(c.err_at(col, format!("-m {n} needs -p {n}")));
            }
        }
        if let Match::Multiport { ports, .. } = m {
            if !matches!(proto, Some(6 | 17 | 132 | 136 | 33)) {
                return Err(c.err_at(
                    col,
                    "multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'",
                ));
            }
            if ports.is_empty() {
                return Err(c.err_at(col, "multiport needs --sports, --dports or --ports"));
            }
        }
    }
    let col = tcol;
    let needs_ports =
        |r: &NatRange| r.ports.is_some() && !matches!(proto, Some(6 | 17 | 132 | 136 | 33));
    match &spec.target {
        Target::Snat(r) | Target::Dnat(r) if r.addrs.is_none() && r.ports.is_none() => {
            return Err(c.err_at(
                col,
                format!("{} needs --to-source/--to-destination", spec.target.name()),
            ));
        }
        Target::Snat(r) | Target::Dnat(r) | Target::Masquerade(r) | Target::Redirect(r)
            if needs_ports(r) =>
        {
            return Err(c.err_at(col, "Need TCP, UDP, SCTP or DCCP with port specification"));
        }
        Target::Reject(RejectWith::TcpReset) if proto != Some(6) => {
            return Err(c.err_at(col, "REJECT --reject-with tcp-reset needs -p tcp"));
        }
        Target::Mark { .. } | Target::Connmark(_) if !target_opts_seen => {
            return Err(c.err_at(col, format!("{} target: an operation (--set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark{}) is required", spec.target.name(), if matches!(spec.target, Target::Connmark(_)) { ", --save-mark, --restore-mark" } else { "" })));
        }
        _ => {}
    }
    Ok(())
}

fn match_option(c: &mut Cursor<'_>, t: &Token, inv: bool, m: &mut Match) -> Result<(), ParseError> {
    let o = t.text.as_str();
    let line = c.line;
    let flag_opts = [
        "--syn",
        "--connlimit-saddr",
        "--connlimit-daddr",
        "--limit-iface-in",
        "--limit-iface-out",
    ];
    let v = if flag_opts.contains(&o) {
        None
    } else {
        Some(c.value(t)?)
    };
    let val = || v.expect("value");
    let ports =
        |v: &Token| parse_ports(&v.text, ':').ok_or_else(|| bad(v, line, "port/port range"));
    match m {
        Match::Tcp {
            sport,
            dport,
            flags,
        } => match o {
            "--sport" | "--source-port" => {
                *sport = Some(Inv {
                    v: ports(val())?,
                    inv,
                })
            }
            "--dport" | "--destination-port" => {
                *dport = Some(Inv {
                    v: ports(val())?,
                    inv,
                })
            }
            "--syn" => {
                *flags = Some(Inv {
                    v: (0x17, 0x02),
                    inv,
                })
            }
            _ => {
                let mask_t = val();
                let cmp_t = c.value(t)?;
                let f = |s: &Token| -> Result<u8, ParseError> {
                    let mut m = 0;
                    for w in s.text.split(',') {
                        m |= match w {
                            "ALL" => 0x3f,
                            "NONE" => 0,
                            _ => TCP_FLAGS
                                .iter()
                                .find(|(n, _)| *n == w)
                                .ok_or_else(|| bad(s, line, "TCP flag (accepted: FIN, SYN, RST, PSH, ACK, URG, ALL, NONE)"))?
                                .1,
                        };
                    }
                    Ok(m)
                };
                *flags = Some(Inv {
                    v: (f(mask_t)?, f(cmp_t)?),
                    inv,
                });
            }
        },
        Match::Udp { sport, dport } => match o {
            "--sport" | "--source-port" => {
                *sport = Some(Inv {
                    v: ports(val())?,
                    inv,
                })
            }
            _ => {
                *dport = Some(Inv {
                    v: ports(val())?,
                    inv,
                })
            }
        },
        Match::Icmp(x) => {
            let mut t = parse_icmp(&val().text).ok_or_else(|| bad(val(), line, "ICMP type"))?;
            // Type 255 ("any") matches every code; iptables-save prints it
            // as `any` without a code, so keep no code either.
            if t.0 == 255 {
                t = (255, 0, 255);
            }
            *x = Inv { v: t, inv };
        }
        Match::Multiport {
            dir,
            ports: list,
            inv: minv,
        } => {
            *dir = match o {
                "--sports" | "--source-ports" => MultiportDir::Src,
                "--dports" | "--destination-ports" => MultiportDir::Dst,
                _ => MultiportDir::Both,
            };
            *minv = inv;
            list.clear();
            let mut n = 0;
            for w in val().text.split(',') {
                let p = parse_ports(w, ':').ok_or_else(|| bad(val(), line, "port list"))?;
                n += if p.lo == p.hi { 1 } else { 2 };
                list.push(p);
            }
            if n > 15 {
                return Err(c.err_at(val().col, "too many ports specified (at most 15)"));
            }
        }
        Match::State(s) => {
            let mask = parse_list(&val().text, &STATE_NAMES[..5]).ok_or_else(|| {
                bad(
                    val(),
                    line,
                    "state (accepted: INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED)",
                )
            })?;
            *s = Inv { v: mask, inv };
        }
        Match::Conntrack(ct) => {
            let net = |v: &Token| parse_net(&v.text).ok_or_else(|| bad(v, line, "address"));
            match o {
                "--ctstate" => {
                    ct.state = Some(Inv {
                        v: parse_list(&val().text, &STATE_NAMES).ok_or_else(|| {
                            bad(val(), line, "ctstate (accepted: INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED, SNAT, DNAT)")
                        })?,
                        inv,
                    })
                }
                "--ctproto" => {
                    ct.proto = Some(Inv { v: parse_proto(&val().text).ok_or_else(|| bad(val(), line, "protocol"))?, inv })
                }
                "--ctorigsrc" => ct.orig_src = Some(Inv { v: net(val())?, inv }),
                "--ctorigdst" => ct.orig_dst = Some(Inv { v: net(val())?, inv }),
                "--ctreplsrc" => ct.repl_src = Some(Inv { v: net(val())?, inv }),
                "--ctrepldst" => ct.repl_dst = Some(Inv { v: net(val())?, inv }),
                "--ctorigsrcport" => ct.orig_sport = Some(Inv { v: ports(val())?, inv }),
                "--ctorigdstport" => ct.orig_dport = Some(Inv { v: ports(val())?, inv }),
                "--ctreplsrcport" => ct.repl_sport = Some(Inv { v: ports(val())?, inv }),
                "--ctrepldstport" => ct.repl_dport = Some(Inv { v: ports(val())?, inv }),
                "--ctstatus" => {
                    let mut names: Vec<(&str, u32)> = vec![("NONE", 0)];
                    names.extend_from_slice(&STATUS_NAMES);
                    ct.status = Some(Inv {
                        v: parse_list(&val().text, &names).ok_or_else(|| {
                            bad(val(), line, "ctstatus (accepted: NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)")
                        })?,
                        inv,
                    })
                }
                _ => {
                    ct.dir_reply = Some(match val().text.as_str() {
                        "ORIGINAL" => false,
                        "REPLY" => true,
                        _ => return Err(bad(val(), line, "ctdir (accepted: ORIGINAL, REPLY)")),
                    })
                }
            }
        }
        Match::Mark(x) | Match::Connmark(x) => {
            *x = Inv {
                v: parse_mark(&val().text).ok_or_else(|| bad(val(), line, "mark"))?,
                inv,
            };
        }
        Match::Helper(h) => {
            *h = Inv {
                v: val().text.clone(),
                inv,
            }
        }
        Match::Iprange { src, dst } => {
            let r =
                parse_addr_range(&val().text).ok_or_else(|| bad(val(), line, "address range"))?;
            if o == "--src-range" {
                *src = Some(Inv { v: r, inv });
            } else {
                *dst = Some(Inv { v: r, inv });
            }
        }
        Match::Comment(s) => {
            if val().text.len() > 255 {
                return Err(c.err_at(val().col, "comment too long (at most 255 characters)"));
            }
            *s = val().text.clone();
        }
        Match::Limit(l) => match o {
            "--limit" => {
                l.avg = parse_rate(&val().text).ok_or_else(|| {
                    bad(val(), line, "rate (e.g. 3/min; units sec, min, hour, day)")
                })?
            }
            _ => {
                l.burst = val()
                    .text
                    .parse()
                    .ok()
                    .filter(|b| (1..=10000).contains(b))
                    .ok_or_else(|| bad(val(), line, "burst (1-10000)"))?
            }
        },
        Match::Connlimit {
            limit,
            above,
            mask,
            daddr,
        } => match o {
            "--connlimit-upto" | "--connlimit-above" => {
                *limit = val().text.parse().map_err(|_| bad(val(), line, "number"))?;
                *above = (o == "--connlimit-above") != inv;
            }
            "--connlimit-mask" => {
                *mask = val()
                    .text
                    .parse()
                    .ok()
                    .filter(|m| *m <= 32)
                    .ok_or_else(|| bad(val(), line, "mask"))?
            }
            "--connlimit-saddr" => *daddr = false,
            _ => *daddr = true,
        },
        Match::Addrtype {
            src,
            dst,
            limit_in,
            limit_out,
        } => match o {
            "--limit-iface-in" => *limit_in = true,
            "--limit-iface-out" => *limit_out = true,
            _ => {
                let mut m = 0u16;
                for w in val().text.split(',') {
                    let i = ADDR_TYPES.iter().position(|n| n.eq_ignore_ascii_case(w)).ok_or_else(|| {
                        bad(val(), line, "address type (accepted: UNSPEC, UNICAST, LOCAL, BROADCAST, ANYCAST, MULTICAST, BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT, XRESOLVE)")
                    })?;
                    m |= 1 << i;
                }
                if o == "--src-type" {
                    *src = Some(Inv { v: m, inv });
                } else {
                    *dst = Some(Inv { v: m, inv });
                }
            }
        },
    }
    Ok(())
}

fn target_option(
    c: &mut Cursor<'_>,
    t: &Token,
    inv: bool,
    target: &mut Target,
) -> Result<(), ParseError> {
    let o = t.text.as_str();
    let line = c.line;
    if inv {
        return Err(c.err_at(t.col, format!("option \"{o}\" cannot be inverted")));
    }
    let flag_opts = [
        "--log-tcp-sequence",
        "--log-tcp-options",
        "--log-ip-options",
        "--log-uid",
        "--log-macdecode",
        "--save-mark",
        "--restore-mark",
        "--notrack",
        "--random",
        "--random-fully",
        "--persistent",
    ];
    let v = if flag_opts.contains(&o) {
        None
    } else {
        Some(c.value(t)?)
    };
    let val = || v.expect("value");
    let mark = |v: &Token| parse_mark(&v.text).ok_or_else(|| bad(v, line, "mark"));
    let num = |v: &Token| parse_u32(&v.text).ok_or_else(|| bad(v, line, "value"));
    match target {
        Target::Reject(w) => {
            *w = RejectWith::ALL
                .iter()
                .find(|(_, n)| *n == val().text || n.strip_prefix("icmp-") == Some(&val().text))
                .map(|(k, _)| *k)
                .ok_or_else(|| {
                    let all: Vec<&str> = RejectWith::ALL.iter().map(|(_, n)| *n).collect();
                    c.err_at(
                        val().col,
                        format!(
                            "unknown reject type \"{}\" (accepted: {})",
                            val().text,
                            all.join(", ")
                        ),
                    )
                })?;
        }
        Target::Log(l) => match o {
            "--log-prefix" => {
                if val().text.len() > 29 {
                    return Err(c.err_at(val().col, "maximum prefix length 29 for --log-prefix"));
                }
                l.prefix = val().text.clone();
            }
            "--log-level" => {
                l.level = LOG_LEVELS
                    .iter()
                    .position(|n| *n == val().text)
                    .map(|p| p as u8)
                    .or_else(|| val().text.parse().ok().filter(|n| *n <= 7))
                    .ok_or_else(|| bad(val(), line, "log level"))?
            }
            "--log-tcp-sequence" => l.flags |= 1,
            "--log-tcp-options" => l.flags |= 2,
            "--log-ip-options" => l.flags |= 4,
            "--log-uid" => l.flags |= 8,
            _ => l.flags |= 0x20,
        },
        Target::Mark { value, mask } => {
            let (v, m) = match o {
                "--set-xmark" => mark(val())?,
                "--set-mark" => {
                    let (v, m) = mark(val())?;
                    (v, m | v)
                }
                "--and-mark" => (0, !num(val())?),
                "--or-mark" => {
                    let n = num(val())?;
                    (n, n)
                }
                _ => (num(val())?, 0),
            };
            *value = v;
            *mask = m;
        }
        Target::Connmark(op) => match o {
            "--set-xmark" => {
                let (v, m) = mark(val())?;
                *op = ConnmarkOp::Set { value: v, mask: m };
            }
            "--set-mark" => {
                let (v, m) = mark(val())?;
                *op = ConnmarkOp::Set {
                    value: v,
                    mask: m | v,
                };
            }
            "--and-mark" => {
                *op = ConnmarkOp::Set {
                    value: 0,
                    mask: !num(val())?,
                }
            }
            "--or-mark" => {
                let n = num(val())?;
                *op = ConnmarkOp::Set { value: n, mask: n };
            }
            "--xor-mark" => {
                *op = ConnmarkOp::Set {
                    value: num(val())?,
                    mask: 0,
                }
            }
            "--save-mark" => {
                *op = ConnmarkOp::Save {
                    nfmask: u32::MAX,
                    ctmask: u32::MAX,
                }
            }
            "--restore-mark" => {
                *op = ConnmarkOp::Restore {
                    nfmask: u32::MAX,
                    ctmask: u32::MAX,
                }
            }
            _ => {
                let n = num(val())?;
                match op {
                    ConnmarkOp::Save { nfmask, ctmask }
                    | ConnmarkOp::Restore { nfmask, ctmask } => match o {
                        "--mask" => {
                            *nfmask = n;
                            *ctmask = n;
                        }
                        "--nfmask" => *nfmask = n,
                        _ => *ctmask = n,
                    },
                    ConnmarkOp::Set { .. } => {
                        return Err(c.err_at(
                            t.col,
                            format!("{o} needs --save-mark or --restore-mark first"),
                        ));
                    }
                }
            }
        },
        Target::Ct(ct) => match o {
            "--notrack" => ct.notrack = true,
            "--helper" => ct.helper = Some(val().text.clone()),
            _ => ct.zone = Some(val().text.parse().map_err(|_| bad(val(), line, "zone"))?),
        },
        Target::Snat(r) | Target::Dnat(r) | Target::Masquerade(r) | Target::Redirect(r) => {
            match o {
                "--random" => r.random = true,
                "--random-fully" => r.random_fully = true,
                "--persistent" => r.persistent = true,
                "--to-ports" => {
                    r.ports = Some(
                        parse_port_dash(&val().text)
                            .ok_or_else(|| bad(val(), line, "port range"))?,
                    )
                }
                _ => {
                    let n = parse_nat_range(&val().text)
                        .ok_or_else(|| bad(val(), line, "address[-address][:port[-port]]"))?;
                    r.addrs = n.addrs;
                    r.ports = n.ports;
                }
            }
        }
        _ => return Err(c.err_at(t.col, format!("unknown option \"{o}\""))),
    }
    Ok(())
}

/// Whether `name` is a built-in target name (not a chain).
pub fn is_target_name(name: &str) -> bool {
    TARGETS.contains(&name)
}
