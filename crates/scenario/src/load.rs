//! Reading a scenario: YAML → [`ScenarioFile`] (serde-saphyr, with limits against hostile input)
//! → [`Scenario`] (kinds, defaults) → validation. Every problem found is reported at once.

use std::sync::Arc;

use crate::diag::{from_yaml_error, Diagnostic, Report, Source, Span, Spanned};
use crate::model::file::{
    AppFile, AppRun, CheckFile, CommandFile, DccSendFile, EventFile, FileContent, KindKeys,
    LinkFile, NamedMap, PacketFile, ScenarioFile, ServerModeName, CHECK_KINDS, CHECK_SELECTORS,
};
use crate::model::values::{Probability, Target};
use crate::model::{
    AdminCommand, App, AppKind, Check, CheckKind, CountRange, CtStat, CtTable, DccOffer, Event,
    FileTransfer, FtpMode, Host, Interface, Link, LinkEnd, LinkParams, Packet, PacketKind, Payload,
    Route, Router, Scenario, ServedFile, ServerMode, Switch, TableAssert, Tool, Which,
};
use crate::validate;

/// Largest scenario file accepted.
pub const MAX_FILE_BYTES: usize = 16 << 20;

/// serde-saphyr settings: YAML 1.2 booleans, duplicate keys rejected, and budgets far above any
/// real scenario but low enough that hostile input (deep nesting, alias bombs) is cut off early.
/// Node and event counts are bounded by the file size anyway; they allow generated scenarios
/// such as a 10,000-flow dumbbell (about 300,000 nodes).
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 40,
            max_nodes: 4_000_000,
            max_events: 16_000_000,
            max_aliases: 2_000,
            max_anchors: 2_000,
            max_documents: 2,
            max_total_scalar_bytes: MAX_FILE_BYTES,
            max_recorded_anchor_events: 200_000,
            max_recorded_anchor_bytes: 4 << 20,
            max_merge_keys: 2_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 200_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 2_000,
        },
        strict_booleans: true,
        with_snippet: false,
        emit_comments: false,
    }
}

/// Parses, builds and validates a scenario. `name` is the file name shown in diagnostics.
pub fn load(name: &str, text: &str) -> Result<Scenario, Report> {
    load_source(Arc::new(Source::new(name, text)))
}

/// Like [`load`], for bytes read from a file (reports invalid UTF-8 with its position).
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<Scenario, Report> {
    load_source(source_from_bytes(name, bytes)?)
}

/// The file's text, or a report pointing at its first byte that is not UTF-8.
pub fn source_from_bytes(name: &str, bytes: &[u8]) -> Result<Arc<Source>, Report> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Arc::new(Source::new(name, text))),
        Err(e) => {
            let good = e.valid_up_to();
            let text = String::from_utf8_lossy(bytes).into_owned();
            // The lossy text equals the input up to the first bad byte.
            let source = Arc::new(Source::new(name, text));
            let span = source.span(good..good + 1);
            let d = Diagnostic::new("the file is not valid UTF-8")
                .label(span, "this byte")
                .help("scenario files are UTF-8 text");
            Err(Report::new(source, vec![d]))
        }
    }
}

/// Parses, builds and validates a scenario held in a [`Source`].
pub fn load_source(source: Arc<Source>) -> Result<Scenario, Report> {
    let file = match parse(&source) {
        Ok(f) => f,
        Err(d) => return Err(Report::new(source, vec![d])),
    };
    let mut errors = Vec::new();
    let scenario = build(&source, file, &mut errors);
    errors.extend(validate::validate(&source, &scenario));
    if errors.is_empty() {
        Ok(scenario)
    } else {
        Err(Report::new(source, errors))
    }
}

/// YAML → file model. Stops at the first syntax or type error (serde cannot go on after one).
pub fn parse(source: &Source) -> Result<ScenarioFile, Diagnostic> {
    if source.text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(format!(
            "the file is too large ({} bytes; at most {MAX_FILE_BYTES})",
            source.text.len()
        ))
        .label(source.span(0..0), "file starts here"));
    }
    if source.text.trim().is_empty() {
        return Err(Diagnostic::new("the file is empty")
            .label(source.span(0..0), "expected a scenario here")
            .help("a scenario has at least `name:` and some `hosts:`"));
    }
    serde_saphyr::from_str_with_options::<ScenarioFile>(&source.text, options())
        .map_err(|e| from_yaml_error(source, &e))
}

/// File model → scenario: resolves defaults and kinds, reporting what does not fit.
pub fn build(source: &Source, f: ScenarioFile, errors: &mut Vec<Diagnostic>) -> Scenario {
    let mut b = Builder { errors };

    let hosts: Vec<Host> = f
        .hosts
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, h)| {
            let mut interfaces: Vec<Interface> = Vec::new();
            match (h.addr, h.interfaces) {
                (Some(addr), other) => {
                    if let Some(map) = other {
                        let at = map.0.first().map_or(addr.span, |(n, _)| n.span);
                        b.err(
                            Diagnostic::new(format!(
                                "host `{}` has both `addr:` and `interfaces:`",
                                name.value
                            ))
                            .label(at, "second way to give addresses")
                            .label(addr.span, "first way")
                            .help("use `addr:` for a host with one interface (eth0), `interfaces:` for several"),
                        );
                    }
                    interfaces.push(Interface {
                        name: Spanned::new("eth0".to_string(), addr.span),
                        addr,
                    });
                }
                (None, Some(map)) => {
                    interfaces.extend(
                        map.0
                            .into_iter()
                            .map(|(n, addr)| Interface { name: n, addr }),
                    );
                }
                (None, None) => {}
            }
            if interfaces.is_empty() {
                b.err(
                    Diagnostic::new(format!("host `{}` has no interface", name.value))
                        .label(name.span, "no `addr:` or `interfaces:`")
                        .help("add `addr: 192.0.2.2/24` (one interface, eth0) or `interfaces: { eth0: 192.0.2.2/24, eth1: … }`"),
                );
            }
            Host {
                name,
                stack: h.stack.map(|s| s.value).unwrap_or_default(),
                interfaces,
                gateway: h.gateway.map(|g| g.map(|ip| ip.0)),
            }
        })
        .collect();

    let routers: Vec<Router> = f
        .routers
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, r)| {
            if r.interfaces.0.is_empty() {
                b.err(
                    Diagnostic::new(format!("router `{}` has no interface", name.value))
                        .label(name.span, "empty `interfaces:`")
                        .help("give its interfaces: `interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24 }`"),
                );
            }
            Router {
                name,
                interfaces: r
                    .interfaces
                    .0
                    .into_iter()
                    .map(|(n, addr)| Interface { name: n, addr })
                    .collect(),
                routes: r
                    .routes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|rt| Route {
                        to: rt.value.to.map(|d| d.0),
                        via: rt.value.via.map(|ip| ip.0),
                    })
                    .collect(),
                ruleset: r.ruleset,
                conntrack: r.conntrack.map_or_else(
                    || Spanned::unspanned(true),
                    |c| c.map(|v| v == crate::model::file::Switch::On),
                ),
                sysctl: r
                    .sysctl
                    .unwrap_or_default()
                    .0
                    .into_iter()
                    .map(|(k, v)| (k, v.map(|t| t.0)))
                    .collect(),
            }
        })
        .collect();

    let switches: Vec<Switch> = f
        .switches
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, sw)| {
            let n = sw.ports.value;
            if !(2..=64).contains(&n) {
                b.err(
                    Diagnostic::new(format!("a switch has 2 to 64 ports, not {n}"))
                        .label(sw.ports.span, "out of range")
                        .help("`ports: 4` gives ports p0 to p3"),
                );
            }
            let ports = (0..n.min(64))
                .map(|i| Spanned::new(format!("p{i}"), sw.ports.span))
                .collect();
            Switch { name, ports }
        })
        .collect();
    let nodes = validate::Nodes::new(&hosts, &routers, &switches);
    let links = f
        .links
        .unwrap_or_default()
        .into_iter()
        .map(|l| b.link(source, &nodes, l))
        .collect();
    let packets = f
        .packets
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| b.packet(source, &nodes, p))
        .collect();
    drop(nodes);
    let mut events = Vec::new();
    let mut commands = Vec::new();
    for e in f.events.unwrap_or_default() {
        match b.event(e) {
            Some(Ok(e)) => events.push(e),
            Some(Err(c)) => commands.push(c),
            None => {}
        }
    }
    Scenario {
        name: f.name,
        description: f.description,
        seed: f.seed.map_or(0, |s| s.value),
        until: f.until,
        hosts,
        routers,
        switches,
        links,
        apps: f
            .apps
            .unwrap_or_default()
            .into_iter()
            .map(|a| b.app(a))
            .collect(),
        packets,
        events,
        commands,
        checks: f
            .checks
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| b.check(c))
            .collect(),
    }
}

/// The keys that make one FTP or TFTP transfer.
struct TransferKeys<'a> {
    get: &'a Option<Spanned<String>>,
    put: &'a Option<Spanned<String>>,
    list: &'a Option<Spanned<bool>>,
    expect: &'a Option<Spanned<u64>>,
    size: &'a Option<Spanned<u32>>,
    text: &'a Option<Spanned<String>>,
}

impl TransferKeys<'_> {
    fn first_span(&self) -> Option<Span> {
        [
            self.get.as_ref().map(|x| x.span),
            self.put.as_ref().map(|x| x.span),
            self.list.as_ref().map(|x| x.span),
            self.expect.as_ref().map(|x| x.span),
            self.size.as_ref().map(|x| x.span),
            self.text.as_ref().map(|x| x.span),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|s| s.start)
    }
}

struct Builder<'e> {
    errors: &'e mut Vec<Diagnostic>,
}

impl Builder<'_> {
    fn err(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    fn probability(&mut self, p: &Option<Spanned<Probability>>, key: &str) -> Option<f64> {
        let p = p.as_ref()?;
        if let Some(d) = validate::probability(p, key) {
            self.err(d);
        }
        Some(p.value.0)
    }

    fn mtu(&mut self, m: &Option<Spanned<u32>>) -> Option<u16> {
        let m = m.as_ref()?;
        if let Some(d) = validate::mtu(m) {
            self.err(d);
        }
        Some(u16::try_from(m.value).unwrap_or(u16::MAX))
    }

    fn queue(&mut self, q: &Option<Spanned<u32>>) -> Option<u32> {
        let q = q.as_ref()?;
        if q.value == 0 {
            self.err(
                Diagnostic::new("a queue must hold at least one packet")
                    .label(q.span, "0 would drop every packet")
                    .help("the default is 1000 packets; to cut a link, use an event with `down: true`"),
            );
        }
        Some(q.value)
    }

    fn link(&mut self, source: &Source, nodes: &validate::Nodes<'_>, l: Spanned<LinkFile>) -> Link {
        let span = l.span;
        let l = l.value;
        if l.ends.value.len() != 2 {
            self.err(
                Diagnostic::new(format!(
                    "a link has exactly two ends, found {}",
                    l.ends.value.len()
                ))
                .label(l.ends.span, "here")
                .help("write `ends: [client, r1.lan0]`"),
            );
        }
        let mut written = l.ends.value.iter().cloned();
        let mut end = || {
            written
                .next()
                .map(|w| {
                    validate::resolve_end(source, nodes, &w).unwrap_or_else(|_| placeholder_end(w))
                })
                .unwrap_or_else(|| placeholder_end(Spanned::unspanned(String::new())))
        };
        let ends = [end(), end()];
        let named = l.name.is_some();
        let name = l.name.unwrap_or_else(|| {
            Spanned::new(format!("{}-{}", ends[0].node, ends[1].node), l.ends.span)
        });
        let d = LinkParams::default();
        let params = LinkParams {
            delay: l.delay.map_or(d.delay, |v| v.value),
            bandwidth: l.bandwidth.map_or(d.bandwidth, |v| v.value),
            queue: self.queue(&l.queue).unwrap_or(d.queue),
            loss: self.probability(&l.loss, "loss").unwrap_or(d.loss),
            duplicate: self
                .probability(&l.duplicate, "duplicate")
                .unwrap_or(d.duplicate),
            reorder: self.probability(&l.reorder, "reorder").unwrap_or(d.reorder),
            reorder_delay: l.reorder_delay.map_or(d.reorder_delay, |v| v.value),
            mtu: self.mtu(&l.mtu).unwrap_or(d.mtu),
        };
        Link {
            name,
            named,
            ends,
            params,
            span,
        }
    }

    /// Reports keys that do not belong to this kind, and required keys that are missing.
    fn kind_keys(
        &mut self,
        keys: &KindKeys,
        kind_text: &str,
        kind_span: Span,
        present: &[(&'static str, Span)],
    ) {
        for &(key, span) in present {
            if !keys.allows(key) {
                self.err(
                    Diagnostic::new(format!("`{key}` does not apply to {kind_text}"))
                        .label(span, format!("`{key}` is not used by {kind_text}"))
                        .help(format!("{kind_text} takes {}", keys.list())),
                );
            }
        }
        for &req in keys.required {
            if !present.iter().any(|&(k, _)| k == req) {
                self.err(
                    Diagnostic::new(format!("{kind_text} needs `{req}:`"))
                        .label(kind_span, format!("`{req}:` is missing"))
                        .help(format!("{kind_text} takes {}", keys.list())),
                );
            }
        }
    }

    /// `files:` of a server: names that a client can ask for, each once.
    fn served_files(
        &mut self,
        files: &Option<Spanned<NamedMap<Spanned<FileContent>>>>,
    ) -> Vec<ServedFile> {
        let Some(Spanned { value: files, .. }) = files else {
            return Vec::new();
        };
        let mut out: Vec<ServedFile> = Vec::new();
        for (i, (name, content)) in files.0.iter().enumerate() {
            let n = &name.value;
            if n.is_empty() || n.contains('/') || n.chars().any(char::is_control) {
                self.err(
                    Diagnostic::new(format!("`{n}` cannot be a file name here"))
                        .label(name.span, "a name, not a path")
                        .help("servers keep their files in one directory: give a plain name such as `hello.txt`"),
                );
            }
            if let Some((first, _)) = files.0[..i].iter().find(|(m, _)| m.value == *n) {
                self.err(
                    Diagnostic::new(format!("two files are named `{n}`"))
                        .label(name.span, "second file of this name")
                        .label(first.span, "first one"),
                );
            }
            out.push(ServedFile {
                name: n.clone(),
                content: match &content.value {
                    FileContent::Text(t) => Payload::Text(t.clone()),
                    FileContent::Size(b) => Payload::Bytes(*b),
                },
            });
        }
        out
    }

    /// `pasv-ports: LOW-HIGH`.
    fn port_range(&mut self, p: &Spanned<String>) -> (u16, u16) {
        let parsed = p.value.split_once('-').and_then(|(lo, hi)| {
            let lo: u16 = lo.trim().parse().ok()?;
            let hi: u16 = hi.trim().parse().ok()?;
            (lo >= 1 && lo <= hi).then_some((lo, hi))
        });
        parsed.unwrap_or_else(|| {
            self.err(
                Diagnostic::new(format!("`{}` is not a port range", p.value))
                    .label(p.span, "expected LOW-HIGH")
                    .help("write two ports from 1 to 65535, the lower first: `50000-50100`"),
            );
            (1024, 65535)
        })
    }

    /// A client's `to:`: an address, with `default` as the port when none is given.
    fn server(&mut self, to: &Option<Spanned<Target>>, default: u16) -> std::net::SocketAddrV4 {
        match to {
            Some(Spanned {
                value: Target::Socket(s),
                span,
            }) => {
                if s.port() == 0 {
                    self.err(
                        Diagnostic::new("port 0 cannot be used")
                            .label(*span, "here")
                            .help(format!("leave the port out for the usual one, {default}")),
                    );
                }
                *s
            }
            Some(Spanned {
                value: Target::Ip(ip),
                ..
            }) => std::net::SocketAddrV4::new(*ip, default),
            None => std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, default),
        }
    }

    /// One transfer from its keys (`get`, `put` or `list`, with `expect`, `size`, `text`).
    fn transfer(&mut self, k: &TransferKeys<'_>, at: Span, what: &str) -> FileTransfer {
        let list = k.list.as_ref().filter(|l| l.value);
        let picked: Vec<(&str, Span)> = [
            k.get.as_ref().map(|g| ("get", g.span)),
            k.put.as_ref().map(|p| ("put", p.span)),
            list.map(|l| ("list", l.span)),
        ]
        .into_iter()
        .flatten()
        .collect();
        match picked.as_slice() {
            [] => {
                let span = k.list.as_ref().map_or(at, |l| l.span);
                self.err(
                    Diagnostic::new(format!("{what} needs `get:`, `put:` or `list: true`"))
                        .label(span, "no transfer")
                        .help("`get: NAME` downloads, `put: NAME` with `size:` or `text:` uploads, `list: true` lists"),
                );
            }
            [_] => {}
            [(first, s1), (second, s2), ..] => self.err(
                Diagnostic::new(format!("give one of `{first}:` and `{second}:`"))
                    .label(*s2, "second transfer")
                    .label(*s1, "first transfer")
                    .help("one transfer per app, or several in `commands:` (ftp-client)"),
            ),
        }
        let misplaced = |b: &mut Self, key: &str, span: Span, goes: &str| {
            b.err(
                Diagnostic::new(format!("`{key}:` goes with `{goes}:`"))
                    .label(span, "not used by this transfer")
                    .help(format!("remove `{key}:`, or use it with `{goes}:`")),
            );
        };
        let name = |n: &Spanned<String>, b: &mut Self| {
            if n.value.is_empty() {
                b.err(
                    Diagnostic::new("a file name cannot be empty")
                        .label(n.span, "no name")
                        .help("name the file: `get: hello.txt`"),
                );
            }
            n.value.clone()
        };
        if let Some(g) = k.get {
            if let Some(s) = k.size {
                misplaced(self, "size", s.span, "put");
            }
            let expect = match (k.expect, k.text) {
                (Some(e), Some(t)) => {
                    self.err(
                        Diagnostic::new("give either `expect:` or `text:`, not both")
                            .label(t.span, "second expectation")
                            .label(e.span, "first expectation")
                            .help("`expect: N` checks N bytes of the pattern; `text: \"…\"` checks the text"),
                    );
                    Some(Payload::Bytes(e.value))
                }
                (Some(e), None) => Some(Payload::Bytes(e.value)),
                (None, Some(t)) => Some(Payload::Text(t.value.clone())),
                (None, None) => None,
            };
            return FileTransfer::Get {
                name: name(g, self),
                expect,
            };
        }
        if let Some(p) = k.put {
            if let Some(e) = k.expect {
                misplaced(self, "expect", e.span, "get");
            }
            let content = match (k.size, k.text) {
                (Some(n), Some(t)) => {
                    self.err(
                        Diagnostic::new("give either `size:` or `text:`, not both")
                            .label(t.span, "second content")
                            .label(n.span, "first content")
                            .help("`size: N` uploads N bytes of the pattern; `text: \"…\"` uploads the text"),
                    );
                    Payload::Bytes(u64::from(n.value))
                }
                (Some(n), None) => Payload::Bytes(u64::from(n.value)),
                (None, Some(t)) => Payload::Text(t.value.clone()),
                (None, None) => {
                    self.err(
                        Diagnostic::new("`put:` needs `size:` or `text:`")
                            .label(p.span, "what is in this file?")
                            .help("add e.g. `size: 100000` or `text: \"hello\\n\"`"),
                    );
                    Payload::Bytes(0)
                }
            };
            return FileTransfer::Put {
                name: name(p, self),
                content,
            };
        }
        for (key, span) in [
            ("expect", k.expect.as_ref().map(|e| e.span)),
            ("size", k.size.as_ref().map(|s| s.span)),
            ("text", k.text.as_ref().map(|t| t.span)),
        ] {
            if let (Some(span), true) = (span, list.is_some()) {
                misplaced(self, key, span, if key == "size" { "put" } else { "get" });
            }
        }
        FileTransfer::List
    }

    /// `community:`, default `public`: printable ASCII, as snmpd's configuration takes it.
    fn community(&mut self, c: &Option<Spanned<String>>) -> String {
        let Some(c) = c else {
            return "public".into();
        };
        if c.value.is_empty() || !c.value.bytes().all(|b| b.is_ascii_graphic()) {
            self.err(
                Diagnostic::new(format!("`{}` cannot be a community", c.value))
                    .label(c.span, "empty, or not printable ASCII")
                    .help("write a word such as `public` (no spaces)"),
            );
        }
        c.value.clone()
    }

    /// An IRC nickname (RFC 2812).
    fn nick(&mut self, n: &Spanned<String>) -> String {
        if !ctsim_engine::host::valid_nick(&n.value) {
            self.err(
                Diagnostic::new(format!("`{}` is not an IRC nickname", n.value))
                    .label(n.span, "not a nickname")
                    .help("a letter or one of []\\`_^{|} first, then letters, digits, those or `-`; at most 30"),
            );
        }
        n.value.clone()
    }

    /// `dcc-send: { to, file, size }` of the client `nick`.
    fn dcc_offer(&mut self, d: &DccSendFile, nick: &str) -> DccOffer {
        let to = self.nick(&d.to);
        if to.eq_ignore_ascii_case(nick) {
            self.err(
                Diagnostic::new(format!("`{nick}` cannot offer a file to itself"))
                    .label(d.to.span, "the client's own nick")
                    .help("name the nick of the irc-client that has `accept-dcc: true`"),
            );
        }
        let f = &d.file;
        let bad = f.value.is_empty()
            || f.value.contains(['/', ' ', '"'])
            || f.value.chars().any(char::is_control);
        if bad {
            self.err(
                Diagnostic::new(format!("`{}` cannot be a DCC file name", f.value))
                    .label(
                        f.span,
                        "empty, or with a space, quote, slash or control character",
                    )
                    .help("give a plain name such as `report.pdf`"),
            );
        }
        DccOffer {
            to,
            file: f.value.clone(),
            size: d.size.value,
        }
    }

    /// `rtp-port:`, default 16384: even, as RFC 3550 wants (RTCP takes the odd one above).
    fn rtp_port(&mut self, p: &Option<Spanned<u16>>) -> u16 {
        let Some(p) = p else { return 16384 };
        if p.value == 0 || p.value % 2 == 1 {
            self.err(
                Diagnostic::new(format!("RTP cannot use port {}", p.value))
                    .label(p.span, "zero or odd")
                    .help("RTP takes an even port (RFC 3550), RTCP the odd one above it: e.g. `16384`"),
            );
        }
        p.value
    }

    fn app(&mut self, a: Spanned<AppFile>) -> App {
        let span = a.span;
        let a = a.value;
        let run = a.run.value;
        let keys = run.keys();
        let kind_text = format!("`run: {}`", run.as_str());
        self.kind_keys(keys, &kind_text, a.run.span, &a.present());
        if let Some(m) = &a.mode {
            let ftp = matches!(
                m.value,
                ServerModeName::Active
                    | ServerModeName::Passive
                    | ServerModeName::Eprt
                    | ServerModeName::Epsv
            );
            let takes = match run {
                AppRun::TcpServer if ftp => Some("`echo`, `discard` or `send`"),
                AppRun::FtpClient if !ftp => Some("`passive`, `active`, `epsv` or `eprt`"),
                _ => None,
            };
            if let Some(takes) = takes {
                self.err(
                    Diagnostic::new(format!(
                        "`mode: {}` does not apply to {kind_text}",
                        m.value.as_str()
                    ))
                    .label(m.span, "not a mode of this program")
                    .help(format!("{kind_text} takes `mode:` {takes}")),
                );
            }
        }

        let port = |b: &mut Self| -> u16 {
            match &a.port {
                Some(p) if p.value == 0 => {
                    b.err(
                        Diagnostic::new("port 0 cannot be used")
                            .label(p.span, "here")
                            .help("a port is a number from 1 to 65535"),
                    );
                    0
                }
                Some(p) => p.value,
                None => 0,
            }
        };
        let socket = |b: &mut Self| match &a.to {
            Some(Spanned {
                value: Target::Socket(s),
                ..
            }) => *s,
            Some(Spanned {
                value: Target::Ip(ip),
                span,
            }) => {
                b.err(
                    Diagnostic::new(format!("{kind_text} needs a port in `to:`"))
                        .label(*span, "no port")
                        .help(format!("write the address and the port, e.g. `{ip}:5001`")),
                );
                std::net::SocketAddrV4::new(*ip, 0)
            }
            None => std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
        };
        let count = |b: &mut Self| match &a.count {
            Some(c) if c.value == 0 => {
                b.err(
                    Diagnostic::new("`count` must be at least 1")
                        .label(c.span, "nothing would be sent")
                        .help("leave the app out if it should send nothing"),
                );
                0
            }
            Some(c) => c.value,
            None => 1,
        };
        let size = |b: &mut Self, default: u32| match &a.size {
            Some(s) if s.value > 65_507 => {
                b.err(
                    Diagnostic::new(format!(
                        "a payload of {} bytes does not fit in an IPv4 packet",
                        s.value
                    ))
                    .label(s.span, "too large")
                    .help("at most 65507 bytes (65535 minus the IP and UDP/ICMP headers)"),
                );
                s.value
            }
            Some(s) => s.value,
            None => default,
        };
        let interval = a
            .interval
            .as_ref()
            .map_or(crate::model::Duration::from_secs(1), |i| i.value);

        let kind = match run {
            AppRun::TcpServer => {
                let mode = match (a.mode.as_ref().map(|m| m.value), &a.bytes) {
                    (Some(ServerModeName::Send), Some(bytes)) => {
                        ServerMode::Send { bytes: bytes.value }
                    }
                    (Some(ServerModeName::Send), None) => {
                        let at = a.mode.as_ref().map_or(a.run.span, |m| m.span);
                        self.err(
                            Diagnostic::new("`mode: send` needs `bytes:`")
                                .label(at, "how many bytes?")
                                .help("add e.g. `bytes: 100000`"),
                        );
                        ServerMode::Send { bytes: 0 }
                    }
                    (m, Some(bytes)) => {
                        self.err(
                            Diagnostic::new("`bytes:` goes with `mode: send`")
                                .label(bytes.span, "only used by `mode: send`")
                                .help("add `mode: send`, or remove `bytes:`"),
                        );
                        match m {
                            Some(ServerModeName::Discard) => ServerMode::Discard,
                            _ => ServerMode::Echo,
                        }
                    }
                    (Some(ServerModeName::Discard), None) => ServerMode::Discard,
                    (_, None) => ServerMode::Echo,
                };
                AppKind::TcpServer {
                    port: port(self),
                    mode,
                }
            }
            AppRun::TcpClient => {
                let send = match (&a.send, &a.text) {
                    (Some(n), Some(t)) => {
                        self.err(
                            Diagnostic::new("give either `send:` or `text:`, not both")
                                .label(t.span, "second payload")
                                .label(n.span, "first payload")
                                .help("`send: N` sends N bytes; `text: \"…\"` sends the text"),
                        );
                        Payload::Bytes(n.value)
                    }
                    (Some(n), None) => Payload::Bytes(n.value),
                    (None, Some(t)) => Payload::Text(t.value.clone()),
                    (None, None) => Payload::Nothing,
                };
                AppKind::TcpClient {
                    to: socket(self),
                    send,
                    expect: a.expect.as_ref().map(|e| e.value),
                    close: a.close.as_ref().map(|c| c.value).unwrap_or_default(),
                    timeout: a.timeout.as_ref().map(|t| t.value),
                }
            }
            AppRun::UdpEcho => AppKind::UdpEcho { port: port(self) },
            AppRun::UdpSender => AppKind::UdpSender {
                to: socket(self),
                count: count(self),
                size: size(self, 64),
                interval,
            },
            AppRun::Ping => {
                let to = match &a.to {
                    Some(Spanned {
                        value: Target::Ip(ip),
                        ..
                    }) => *ip,
                    Some(Spanned {
                        value: Target::Socket(s),
                        span,
                    }) => {
                        self.err(
                            Diagnostic::new("ping takes an address without a port")
                                .label(*span, "has a port")
                                .help(format!("write `to: {}`", s.ip())),
                        );
                        *s.ip()
                    }
                    None => std::net::Ipv4Addr::UNSPECIFIED,
                };
                AppKind::Ping {
                    to,
                    count: count(self),
                    interval,
                    size: size(self, 56),
                    ttl: a.ttl.as_ref().map_or(64, |t| t.value),
                }
            }
            AppRun::FtpServer => AppKind::FtpServer {
                port: if a.port.is_some() { port(self) } else { 21 },
                files: self.served_files(&a.files),
                pasv_ports: a.pasv_ports.as_ref().map(|p| self.port_range(p)),
                timeout: a.timeout.as_ref().map(|t| t.value),
            },
            AppRun::TftpServer => AppKind::TftpServer {
                port: if a.port.is_some() { port(self) } else { 69 },
                files: self.served_files(&a.files),
            },
            AppRun::FtpClient => {
                let single = TransferKeys {
                    get: &a.get,
                    put: &a.put,
                    list: &a.list,
                    expect: &a.expect,
                    size: &a.size,
                    text: &a.text,
                };
                let commands = match &a.commands {
                    Some(list) => {
                        if let Some(span) = single.first_span() {
                            self.err(
                                Diagnostic::new("give either `commands:` or one transfer, not both")
                                    .label(span, "a transfer outside `commands:`")
                                    .label(list.span, "the commands")
                                    .help("move it into `commands:` as `{ get: … }`, `{ put: … }` or `{ list: true }`"),
                            );
                        }
                        if list.value.is_empty() {
                            self.err(
                                Diagnostic::new("`commands:` is empty")
                                    .label(list.span, "no transfer")
                                    .help("give at least one `{ get: NAME }`, `{ put: NAME, size: N }` or `{ list: true }`"),
                            );
                        }
                        list.value
                            .iter()
                            .map(|c| {
                                let CommandFile {
                                    get,
                                    put,
                                    list,
                                    expect,
                                    size,
                                    text,
                                } = &c.value;
                                let keys = TransferKeys {
                                    get,
                                    put,
                                    list,
                                    expect,
                                    size,
                                    text,
                                };
                                self.transfer(&keys, c.span, "a command")
                            })
                            .collect()
                    }
                    None => vec![self.transfer(&single, a.run.span, &kind_text)],
                };
                AppKind::FtpClient {
                    to: self.server(&a.to, 21),
                    user: a
                        .user
                        .as_ref()
                        .map_or("anonymous".into(), |u| u.value.clone()),
                    password: a
                        .password
                        .as_ref()
                        .map_or("anonymous@".into(), |p| p.value.clone()),
                    mode: match a.mode.as_ref().map(|m| m.value) {
                        Some(ServerModeName::Active) => FtpMode::Active,
                        Some(ServerModeName::Eprt) => FtpMode::Eprt,
                        Some(ServerModeName::Epsv) => FtpMode::Epsv,
                        _ => FtpMode::Passive,
                    },
                    commands,
                    timeout: a.timeout.as_ref().map(|t| t.value),
                }
            }
            AppRun::TftpClient => {
                let keys = TransferKeys {
                    get: &a.get,
                    put: &a.put,
                    list: &None,
                    expect: &a.expect,
                    size: &a.size,
                    text: &a.text,
                };
                AppKind::TftpClient {
                    to: self.server(&a.to, 69),
                    transfer: self.transfer(&keys, a.run.span, &kind_text),
                    timeout: a.timeout.as_ref().map(|t| t.value),
                }
            }
            AppRun::SnmpManager => AppKind::SnmpManager {
                to: self.server(&a.to, 161),
                community: self.community(&a.community),
                timeout: a.timeout.as_ref().map(|t| t.value),
            },
            AppRun::SnmpAgent => AppKind::SnmpAgent {
                port: if a.port.is_some() { port(self) } else { 161 },
                community: self.community(&a.community),
            },
            AppRun::IrcServer => AppKind::IrcServer {
                port: if a.port.is_some() { port(self) } else { 6667 },
            },
            AppRun::IrcClient => {
                let nick = a.nick.as_ref().map_or(String::new(), |n| self.nick(n));
                let dcc_send = a.dcc_send.as_ref().map(|d| self.dcc_offer(&d.value, &nick));
                AppKind::IrcClient {
                    to: self.server(&a.to, 6667),
                    nick,
                    dcc_send,
                    accept_dcc: a.accept_dcc.as_ref().is_some_and(|b| b.value),
                    timeout: a.timeout.as_ref().map(|t| t.value),
                }
            }
            AppRun::SipCaller => {
                let duration = match &a.duration {
                    Some(d) if d.value == crate::model::Duration::ZERO => {
                        self.err(
                            Diagnostic::new("a call of 0s sends no RTP")
                                .label(d.span, "no time to talk")
                                .help("give the call a length, e.g. `duration: 2s`"),
                        );
                        d.value
                    }
                    Some(d) => d.value,
                    None => crate::model::Duration::from_secs(2),
                };
                AppKind::SipCaller {
                    to: self.server(&a.to, 5060),
                    rtp_port: self.rtp_port(&a.rtp_port),
                    duration,
                }
            }
            AppRun::SipCallee => AppKind::SipCallee {
                port: if a.port.is_some() { port(self) } else { 5060 },
                rtp_port: self.rtp_port(&a.rtp_port),
            },
        };
        App {
            name: a.name,
            at: a.at.map_or(crate::model::Duration::ZERO, |t| t.value),
            on: a.on,
            kind,
            span,
        }
    }

    fn packet(
        &mut self,
        source: &Source,
        nodes: &validate::Nodes<'_>,
        p: Spanned<PacketFile>,
    ) -> Option<Packet> {
        let span = p.span;
        let p = p.value;
        let literals: Vec<(PacketKind, &'static str, Spanned<String>)> = [
            (PacketKind::Tcp, "tcp", p.tcp),
            (PacketKind::Udp, "udp", p.udp),
            (PacketKind::Icmp, "icmp", p.icmp),
            (PacketKind::Full, "packet", p.packet),
        ]
        .into_iter()
        .filter_map(|(k, key, v)| v.map(|v| (k, key, v)))
        .collect();
        let help = "write one of `tcp: \"…\"`, `udp: \"…\"`, `icmp: \"…\"` or `packet: \"ip …\"`";
        if literals.len() > 1 {
            self.err(
                Diagnostic::new(format!(
                    "a packet entry holds one packet, found `{}:` and `{}:`",
                    literals[0].1, literals[1].1
                ))
                .label(literals[1].2.span, "second packet")
                .label(literals[0].2.span, "first packet")
                .help("write one entry per packet"),
            );
        }
        let Some((kind, _, literal)) = literals.into_iter().next() else {
            self.err(
                Diagnostic::new("a packet entry needs the packet")
                    .label(p.from.span, "which packet does this host send?")
                    .help(help),
            );
            return None;
        };
        let count = match &p.count {
            Some(c) if c.value == 0 => {
                self.err(
                    Diagnostic::new("`count` must be at least 1")
                        .label(c.span, "nothing would be sent")
                        .help("leave the packet out if it should not be sent"),
                );
                0
            }
            Some(c) => c.value,
            None => 1,
        };
        let from = validate::resolve_end(source, nodes, &p.from)
            .unwrap_or_else(|_| placeholder_end(p.from));
        Some(Packet {
            name: p.name,
            at: p.at.map_or(crate::model::Duration::ZERO, |t| t.value),
            from,
            kind,
            literal,
            count,
            interval: p.interval.map_or(crate::model::Duration::ZERO, |t| t.value),
            span,
        })
    }

    /// A link change, or a command on a router (`on:` with `iptables:` or `conntrack:`).
    fn event(&mut self, e: Spanned<EventFile>) -> Option<Result<Event, AdminCommand>> {
        let span = e.span;
        let e = e.value;
        let tools = [
            e.iptables.clone().map(|a| (Tool::Iptables, a)),
            e.conntrack.clone().map(|a| (Tool::Conntrack, a)),
        ];
        let mut tools = tools.into_iter().flatten();
        let tool = tools.next();
        if let Some((_, second)) = tools.next() {
            self.err(
                Diagnostic::new("an event runs one command")
                    .label(second.span, "second command")
                    .help("write two events"),
            );
        }
        let link_keys = [
            e.down.as_ref().map(|v| v.span),
            e.delay.as_ref().map(|v| v.span),
            e.bandwidth.as_ref().map(|v| v.span),
            e.queue.as_ref().map(|v| v.span),
            e.loss.as_ref().map(|v| v.span),
            e.duplicate.as_ref().map(|v| v.span),
            e.reorder.as_ref().map(|v| v.span),
            e.reorder_delay.as_ref().map(|v| v.span),
            e.mtu.as_ref().map(|v| v.span),
            e.link.as_ref().map(|v| v.span),
        ];
        if let Some((tool, args)) = tool {
            if let Some(stray) = link_keys.iter().flatten().next() {
                self.err(
                    Diagnostic::new("an event either changes a link or runs a command")
                        .label(*stray, "a link setting in a command event")
                        .label(args.span, "the command")
                        .help("write two events"),
                );
            }
            let Some(on) = e.on else {
                self.err(
                    Diagnostic::new(format!("which router runs this `{}` command?", tool.name()))
                        .label(args.span, "no `on:`")
                        .help("add `on: ROUTER`"),
                );
                return None;
            };
            return Some(Err(AdminCommand {
                at: e.at.value,
                on,
                tool,
                args,
                span,
            }));
        }
        if let Some(on) = &e.on {
            self.err(
                Diagnostic::new("`on:` names the router of a command")
                    .label(on.span, "no `iptables:` or `conntrack:` in this event")
                    .help("add `iptables: \"-A …\"` or `conntrack: \"-F\"`, or remove `on:`"),
            );
            return None;
        }
        let Some(link) = e.link else {
            self.err(
                Diagnostic::new("what does this event change?")
                    .label(e.at.span, "no `link:`, `iptables:` or `conntrack:`")
                    .help("write `{ at: 2s, link: NAME, down: true }` or `{ at: 2s, on: ROUTER, iptables: \"-F\" }`"),
            );
            return None;
        };
        let event = Event {
            at: e.at.value,
            down: e.down.as_ref().map(|d| d.value),
            delay: e.delay.as_ref().map(|d| d.value),
            bandwidth: e.bandwidth.as_ref().map(|d| d.value),
            queue: self.queue(&e.queue),
            loss: self.probability(&e.loss, "loss"),
            duplicate: self.probability(&e.duplicate, "duplicate"),
            reorder: self.probability(&e.reorder, "reorder"),
            reorder_delay: e.reorder_delay.as_ref().map(|d| d.value),
            mtu: self.mtu(&e.mtu),
            link,
            span,
        };
        let changes = event.down.is_some()
            || event.delay.is_some()
            || event.bandwidth.is_some()
            || event.queue.is_some()
            || event.loss.is_some()
            || event.duplicate.is_some()
            || event.reorder.is_some()
            || event.reorder_delay.is_some()
            || event.mtu.is_some();
        if !changes {
            self.err(
                Diagnostic::new("this event changes nothing")
                    .label(event.link.span, "no change given for this link")
                    .help("add `down: true`/`false` or a link parameter (`delay`, `bandwidth`, `queue`, `loss`, `duplicate`, `reorder`, `reorder-delay`, `mtu`)"),
            );
        }
        Some(Ok(event))
    }

    fn check(&mut self, c: Spanned<CheckFile>) -> Option<Check> {
        let span = c.span;
        let c = c.value;
        let present = c.present();
        let selectors: Vec<(&'static str, Span)> = present
            .iter()
            .copied()
            .filter(|(k, _)| CHECK_SELECTORS.contains(k))
            .collect();
        let Some(&(kind, kind_span)) = selectors.first() else {
            let at = present.first().map_or(span, |&(_, s)| s);
            self.err(
                Diagnostic::new("what does this check test?")
                    .label(at, "no `app:`, `received:`, `dropped:`, `seen:`, `table:`, `packet:`, `stat:`, `rules:` or `log:`")
                    .help("a check is one of `{ app: NAME, state: closed }`, `{ on: NODE, received: \"udp\" }`, `{ link: NAME, dropped: 0 }`, `{ on: NODE, seen: \"icmp\" }`, `{ on: ROUTER, table: conntrack, count: 1 }`, `{ on: ROUTER, packet: \"tcp\", ctstate: NEW }`, `{ on: ROUTER, stat: invalid, value: 0 }`"),
            );
            return None;
        };
        if let Some(&(second, second_span)) = selectors.get(1) {
            self.err(
                Diagnostic::new(format!(
                    "a check tests one thing: `{kind}:` and `{second}:` cannot be combined"
                ))
                .label(second_span, "second kind of check")
                .label(kind_span, "first kind")
                .help("write two checks"),
            );
            return None;
        }
        let keys = CHECK_KINDS.iter().find(|k| k.kind == kind)?;
        let kind_text = format!("a `{kind}:` check");
        self.kind_keys(keys, &kind_text, kind_span, &present);

        let count = |b: &mut Self| {
            let (count, min, max) = (&c.count, &c.min, &c.max);
            if let (Some(n), Some(other)) = (count, min.as_ref().or(max.as_ref())) {
                b.err(
                    Diagnostic::new("give either `count:` or `min:`/`max:`")
                        .label(other.span, "conflicts with `count:`")
                        .label(n.span, "exact count")
                        .help("`count: N` means exactly N, the same as `min: N, max: N`"),
                );
            }
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo.value > hi.value {
                    b.err(
                        Diagnostic::new(format!(
                            "`min: {}` is more than `max: {}`",
                            lo.value, hi.value
                        ))
                        .label(lo.span, "min")
                        .label(hi.span, "max")
                        .help("no count can satisfy both"),
                    );
                }
            }
            match (count, min, max) {
                (Some(n), _, _) => CountRange {
                    min: n.value,
                    max: Some(n.value),
                },
                (None, None, None) => CountRange { min: 1, max: None },
                (None, lo, hi) => CountRange {
                    min: lo.as_ref().map_or(0, |v| v.value),
                    max: hi.as_ref().map(|v| v.value),
                },
            }
        };
        // Missing keys were reported above; an unspanned placeholder is skipped by validation.
        let missing = || Spanned::unspanned(String::new());

        let kind = match kind {
            "app" => {
                let asserts = c.bytes_sent.is_some()
                    || c.bytes_received.is_some()
                    || c.state.is_some()
                    || c.replies.is_some()
                    || c.error.is_some();
                if !asserts {
                    self.err(
                        Diagnostic::new("this check asserts nothing about the app")
                            .label(kind_span, "what should hold for this app?")
                            .help("add one or more of `bytes-sent`, `bytes-received`, `state`, `replies`, `error`"),
                    );
                }
                CheckKind::App {
                    app: c.app.clone().unwrap_or_else(missing),
                    bytes_sent: c.bytes_sent.as_ref().map(|v| v.value),
                    bytes_received: c.bytes_received.as_ref().map(|v| v.value),
                    state: c.state.as_ref().map(|v| v.value),
                    replies: c.replies.as_ref().map(|v| v.value),
                    error: c.error.as_ref().map(|v| v.value.clone()),
                }
            }
            "received" => CheckKind::Received {
                on: c.on.clone().unwrap_or_else(missing),
                filter: c.received.clone().filter(|f| !f.value.trim().is_empty()),
                count: count(self),
            },
            "dropped" => CheckKind::Dropped {
                link: c.link.clone().unwrap_or_else(missing),
                count: c.dropped.as_ref().map_or(0, |v| v.value),
                reason: c.reason.as_ref().map(|v| v.value),
            },
            "seen" => CheckKind::Seen {
                on: c.on.clone().unwrap_or_else(missing),
                filter: c.seen.clone().unwrap_or_else(missing),
                count: count(self),
            },
            "table" | "rules" => {
                let counted = c.count.is_some() || c.min.is_some() || c.max.is_some();
                let asserts = [
                    c.contains.as_ref().map(|v| ("contains", v.span)),
                    c.does_not_contain
                        .as_ref()
                        .map(|v| ("does-not-contain", v.span)),
                    c.count
                        .as_ref()
                        .or(c.min.as_ref())
                        .or(c.max.as_ref())
                        .map(|v| ("count", v.span)),
                ];
                let mut given: Vec<(&str, Span)> = asserts.into_iter().flatten().collect();
                given.sort_by_key(|(_, span)| span.start);
                let help = "write one of `contains: \"ESTABLISHED src=192.0.2.2\"`, `does-not-contain: \"udp\"` or `count: 1`";
                match given.as_slice() {
                    [] => self.err(
                        Diagnostic::new("this check asserts nothing about the table")
                            .label(kind_span, "what should hold for this table?")
                            .help(help),
                    ),
                    [_] => {}
                    [(first, first_span), (second, second_span), ..] => self.err(
                        Diagnostic::new(format!(
                            "a table check tests one thing: `{first}` and `{second}` cannot be combined"
                        ))
                        .label(*second_span, "second assertion")
                        .label(*first_span, "first one")
                        .help("write two checks"),
                    ),
                }
                let assert = if let Some(p) = &c.contains {
                    TableAssert::Contains(p.clone())
                } else if let Some(p) = &c.does_not_contain {
                    TableAssert::DoesNotContain(p.clone())
                } else if counted {
                    TableAssert::Count(count(self))
                } else {
                    TableAssert::Count(CountRange { min: 0, max: None })
                };
                match &c.rules {
                    Some(table) => CheckKind::Rules {
                        on: c.on.clone().unwrap_or_else(missing),
                        table: table.clone(),
                        assert,
                    },
                    None => CheckKind::Table {
                        on: c.on.clone().unwrap_or_else(missing),
                        table: c.table.as_ref().map_or(CtTable::Conntrack, |t| t.value),
                        assert,
                    },
                }
            }
            "packet" => {
                let on = c.on.clone().unwrap_or_else(missing);
                let filter = c.packet.clone().unwrap_or_else(missing);
                let all = c.which.as_ref().is_some_and(|w| w.value == Which::All);
                match (&c.ctstate, &c.verdict) {
                    (Some(_), Some(v)) => {
                        self.err(
                            Diagnostic::new(
                                "a packet check tests one thing: `ctstate` or `verdict`",
                            )
                            .label(v.span, "second assertion")
                            .help("write two checks"),
                        );
                        return None;
                    }
                    (None, Some(v)) => CheckKind::Verdict {
                        on,
                        filter,
                        verdict: v.value,
                        all,
                    },
                    (Some(st), None) => CheckKind::CtState {
                        on,
                        filter,
                        state: st.value,
                        all,
                    },
                    (None, None) => {
                        self.err(
                            Diagnostic::new("this check asserts nothing about the packet")
                                .label(kind_span, "what should hold for this packet?")
                                .help("add `ctstate: NEW` (its conntrack state) or `verdict: DROP` (what netfilter decided)"),
                        );
                        return None;
                    }
                }
            }
            "log" => CheckKind::Log {
                on: c.on.clone().unwrap_or_else(missing),
                pattern: c.log.clone().unwrap_or_else(missing),
                count: count(self),
            },
            _ => CheckKind::Stat {
                on: c.on.clone().unwrap_or_else(missing),
                stat: c.stat.as_ref().map_or(CtStat::Invalid, |v| v.value),
                value: c.value.as_ref().map_or(0, |v| v.value),
            },
        };
        Some(Check {
            at: c.at,
            kind,
            span,
        })
    }
}

/// A link end that could not be resolved (validation reports why): the text split at the dot.
fn placeholder_end(written: Spanned<String>) -> LinkEnd {
    let (node, iface) = match written.value.split_once('.') {
        Some((n, i)) => (n.to_string(), i.to_string()),
        None => (written.value.clone(), String::new()),
    };
    LinkEnd {
        node,
        iface,
        written,
    }
}
