//! Lowering: a validated [`Scenario`] becomes an engine [`Builder`], with
//! every packet literal and filter parsed on the way (their errors are
//! reported against the file like any other). After this step nothing about
//! the scenario can be wrong any more; only checks can fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use ctsim_engine::host::{self, Host, HostConfig, Nic};
use ctsim_engine::raw::{RawHost, RawSend};
use ctsim_engine::router::conntrack::sysctl::KEYS;
use ctsim_engine::router::conntrack::{Conntrack, Sysctls};
use ctsim_engine::router::netfilter::Ruleset;
use ctsim_engine::router::{CtCommand, Router, StaticRoute};
use ctsim_engine::{
    Builder, Cidr, Command, Instant, LinkChange, LinkId, LinkParams, NodeId, PortSpec,
};
use ctsim_packet::Filter;

use crate::diag::{literal_error, Diagnostic, Report, Source};
use crate::model::{self, Bandwidth, Scenario};

/// A scenario ready to run: the engine world and what the checks need.
pub struct Lowered {
    pub builder: Builder,
    /// Apps' names as outcomes report them, in scenario order.
    pub app_names: Vec<String>,
    /// Filters of the checks, by check index.
    pub filters: BTreeMap<usize, Filter>,
    pub nodes: BTreeMap<String, NodeId>,
    pub links: BTreeMap<String, LinkId>,
}

pub fn instant(d: model::Duration) -> Instant {
    Instant::from_nanos(d.0)
}

pub fn duration(d: model::Duration) -> ctsim_engine::Duration {
    ctsim_engine::Duration::from_nanos(d.0)
}

fn cidr(c: model::Cidr) -> Cidr {
    Cidr::new(c.addr, c.len)
}

fn bandwidth(b: Bandwidth) -> Option<u64> {
    match b {
        Bandwidth::Unlimited => None,
        Bandwidth::BitsPerSec(bps) => Some(bps),
    }
}

fn link_params(p: &model::LinkParams) -> LinkParams {
    LinkParams {
        delay: duration(p.delay),
        bandwidth: bandwidth(p.bandwidth),
        queue: p.queue as usize,
        loss: p.loss,
        duplicate: p.duplicate,
        reorder: p.reorder,
        reorder_delay: duration(p.reorder_delay),
        mtu: u32::from(p.mtu),
        up: true,
    }
}

fn link_change(e: &model::Event) -> LinkChange {
    LinkChange {
        delay: e.delay.map(duration),
        bandwidth: e.bandwidth.map(bandwidth),
        queue: e.queue.map(|q| q as usize),
        loss: e.loss,
        duplicate: e.duplicate,
        reorder: e.reorder,
        reorder_delay: e.reorder_delay.map(duration),
        mtu: e.mtu.map(u32::from),
        up: e.down.map(|d| !d),
    }
}

/// The name an app's outcome is reported under: its own, or `node:kind`
/// (numbered `#2`, `#3`… when a node runs several of a kind).
pub fn app_names(s: &Scenario) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    s.apps
        .iter()
        .map(|a| match &a.name {
            Some(n) => n.value.clone(),
            None => {
                let base = format!("{}:{}", a.on.value, a.kind.run_name());
                let n = seen.entry(base.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    base
                } else {
                    format!("{base}#{n}")
                }
            }
        })
        .collect()
}

/// The engine's app for `k`, running on the node named `node`.
fn app_kind(k: &model::AppKind, node: &str) -> host::AppKind {
    use model::AppKind as M;
    match k {
        M::TcpServer { port, mode } => host::AppKind::TcpServer {
            port: *port,
            mode: match mode {
                model::ServerMode::Echo => host::ServerMode::Echo,
                model::ServerMode::Discard => host::ServerMode::Discard,
                model::ServerMode::Send { bytes } => host::ServerMode::Send(*bytes),
            },
        },
        M::TcpClient {
            to,
            send,
            expect,
            close,
            timeout,
        } => host::AppKind::TcpClient {
            to: *to,
            send: payload(send),
            expect: *expect,
            close: match close {
                model::CloseMode::Close => host::CloseMode::Close,
                model::CloseMode::Abort => host::CloseMode::Abort,
                model::CloseMode::None => host::CloseMode::None,
            },
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(60), duration),
        },
        M::UdpEcho { port } => host::AppKind::UdpEcho { port: *port },
        M::UdpSender {
            to,
            count,
            size,
            interval,
        } => host::AppKind::UdpSender {
            to: *to,
            count: u64::from(*count),
            size: *size as usize,
            interval: duration(*interval),
        },
        M::Ping {
            to,
            count,
            interval,
            size,
            ttl,
        } => host::AppKind::Ping {
            to: *to,
            count: u64::from(*count),
            interval: duration(*interval),
            size: *size as usize,
            ttl: *ttl,
        },
        M::FtpServer {
            port,
            files,
            pasv_ports,
            timeout,
        } => host::AppKind::FtpServer {
            port: *port,
            files: served_files(files),
            pasv_ports: *pasv_ports,
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(60), duration),
        },
        M::FtpClient {
            to,
            user,
            password,
            mode,
            commands,
            timeout,
        } => host::AppKind::FtpClient {
            to: *to,
            user: user.clone(),
            password: password.clone(),
            mode: match mode {
                model::FtpMode::Active => host::FtpMode::Active,
                model::FtpMode::Passive => host::FtpMode::Passive,
                model::FtpMode::Eprt => host::FtpMode::Eprt,
                model::FtpMode::Epsv => host::FtpMode::Epsv,
            },
            commands: commands.iter().map(transfer).collect(),
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(300), duration),
        },
        M::TftpServer { port, files } => host::AppKind::TftpServer {
            port: *port,
            files: served_files(files),
        },
        M::TftpClient {
            to,
            transfer: t,
            timeout,
        } => host::AppKind::TftpClient {
            to: *to,
            transfer: transfer(t),
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(300), duration),
        },
        M::SnmpManager {
            to,
            community,
            timeout,
        } => host::AppKind::SnmpManager {
            to: *to,
            community: community.clone(),
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(3), duration),
        },
        M::SnmpAgent { port, community } => host::AppKind::SnmpAgent {
            port: *port,
            community: community.clone(),
            sys_name: node.to_string(),
        },
        M::IrcServer { port } => host::AppKind::IrcServer { port: *port },
        M::IrcClient {
            to,
            nick,
            dcc_send,
            accept_dcc,
            timeout,
        } => host::AppKind::IrcClient {
            to: *to,
            nick: nick.clone(),
            dcc_send: dcc_send.as_ref().map(|d| host::DccSend {
                to: d.to.clone(),
                file: d.file.clone(),
                size: d.size,
            }),
            accept_dcc: *accept_dcc,
            timeout: timeout.map_or(ctsim_engine::Duration::from_secs(60), duration),
        },
        M::SipCaller {
            to,
            rtp_port,
            duration: d,
        } => host::AppKind::SipCaller {
            to: *to,
            rtp_port: *rtp_port,
            duration: duration(*d),
        },
        M::SipCallee { port, rtp_port } => host::AppKind::SipCallee {
            port: *port,
            rtp_port: *rtp_port,
        },
    }
}

fn payload(p: &model::Payload) -> host::Payload {
    match p {
        model::Payload::Nothing => host::Payload::Bytes(0),
        model::Payload::Bytes(n) => host::Payload::Bytes(*n),
        model::Payload::Text(t) => host::Payload::Text(t.clone()),
    }
}

fn served_files(files: &[model::ServedFile]) -> Vec<host::File> {
    files
        .iter()
        .map(|f| host::File {
            name: f.name.clone(),
            content: payload(&f.content),
        })
        .collect()
}

fn transfer(t: &model::FileTransfer) -> host::Transfer {
    match t {
        model::FileTransfer::Get { name, expect } => host::Transfer::Get {
            name: name.clone(),
            expect: expect.as_ref().map(payload),
        },
        model::FileTransfer::Put { name, content } => host::Transfer::Put {
            name: name.clone(),
            content: payload(content),
        },
        model::FileTransfer::List => host::Transfer::List,
    }
}

/// Parses the raw hosts' packets; `quote=NAME` may name any packet sent
/// earlier, and an unknown or later one is an error at the name.
fn raw_sends(
    s: &Scenario,
    source: &Source,
    ports: &PortIndex<'_>,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Vec<RawSend>> {
    let mut named: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut sends: BTreeMap<String, Vec<RawSend>> = BTreeMap::new();
    // In sending order, so `quote=NAME` finds exactly the packets sent
    // before this one (at the same instant: those written before it).
    let mut order: Vec<&model::Packet> = s.packets.iter().collect();
    order.sort_by_key(|p| p.at);
    for p in order {
        let (text, prefix) = p.full_literal();
        let bytes = match ctsim_packet::parse(&text, &|name| named.get(name).cloned()) {
            Ok(b) => b,
            Err(e) => {
                let start = e.span.start.saturating_sub(prefix);
                let end = e.span.end.saturating_sub(prefix).max(start);
                errors.push(literal_error(source, &p.literal, start..end, &e.message));
                continue;
            }
        };
        if let Some(n) = &p.name {
            named.insert(n.value.clone(), bytes.clone());
        }
        let port = ports
            .get(&(p.from.node.as_str(), p.from.iface.as_str()))
            .copied();
        sends.entry(p.from.node.clone()).or_default().push(RawSend {
            at: instant(p.at),
            packet: bytes,
            count: u64::from(p.count.max(1)),
            interval: duration(p.interval),
            port,
        });
    }
    sends
}

/// Each router's iptables ruleset (`None` without `ruleset:` and
/// commands), parsed as iptables-restore reads it, and every `iptables`
/// command of the scenario applied in time order to a copy, so that a
/// command that would fail during the run (a typo, a rule `-D` cannot
/// find) is an error at its place in the file. Conntrack commands are
/// parsed too.
fn rulesets(s: &Scenario, source: &Source, errors: &mut Vec<Diagnostic>) -> Vec<Option<Ruleset>> {
    let mut commands: Vec<&model::AdminCommand> = s.commands.iter().collect();
    commands.sort_by_key(|c| c.at);
    s.routers
        .iter()
        .map(|r| {
            let rules = r.ruleset.as_ref().and_then(|text| {
                Ruleset::parse(&text.value)
                    .map_err(|e| {
                        let span = source.text_span(text, e.line, e.column);
                        errors.push(
                            Diagnostic::new(format!("bad ruleset: {}", e.message))
                                .label(span, "here")
                                .help("the ruleset is iptables-restore input, as `iptables-save` prints it"),
                        );
                    })
                    .ok()
            });
            let mine = commands.iter().filter(|c| c.on.value == r.name.value);
            let mut scratch = rules.clone();
            for c in mine {
                match c.tool {
                    model::Tool::Iptables => {
                        let rs = scratch.get_or_insert_with(Ruleset::new);
                        if let Err(e) = rs.command(&c.args.value) {
                            let span = source.text_span(&c.args, e.line, e.column);
                            errors.push(
                                Diagnostic::new(format!("iptables would fail: {}", e.message))
                                    .label(span, "here")
                                    .help("commands are applied in time order to the router's ruleset as `iptables` applies them"),
                            );
                        }
                    }
                    model::Tool::Conntrack => {
                        if let Err(e) = CtCommand::parse(&c.args.value) {
                            errors.push(
                                Diagnostic::new(format!("conntrack would fail: {e}"))
                                    .label(c.args.span, "this command")
                                    .help("ctsim runs `conntrack -F`, `-D [filters]` and `-U [filters] --mark N`"),
                            );
                        }
                    }
                }
            }
            // With commands alone the router starts with no tables, as a
            // namespace where nothing loaded iptables yet.
            rules
        })
        .collect()
}

/// Each router's conntrack table (`None` with `conntrack: off`), its
/// `sysctl:` settings applied as `sysctl -w` would apply them; a setting
/// Linux would refuse is an error at its key.
fn conntrack_tables(s: &Scenario, errors: &mut Vec<Diagnostic>) -> Vec<Option<Conntrack>> {
    s.routers
        .iter()
        .map(|r| {
            if !r.conntrack.value {
                if let Some((name, _)) = r.sysctl.first() {
                    errors.push(
                        Diagnostic::new(format!(
                            "router `{}` has `conntrack: off` but sets conntrack sysctls",
                            r.name.value
                        ))
                        .label(name.span, "would be ignored")
                        .label(r.conntrack.span, "conntrack is off here")
                        .help("remove `sysctl:` or `conntrack: off`"),
                    );
                }
                return None;
            }
            let mut ct = Conntrack::new(Sysctls::default());
            for (name, value) in &r.sysctl {
                if let Err(e) = ct.set_sysctl(&name.value, &value.value) {
                    let unknown = e.contains("No such file");
                    let short = name
                        .value
                        .rsplit(['.', '/'])
                        .next()
                        .unwrap_or(&name.value);
                    let help = match crate::diag::closest(short, KEYS.iter().copied()) {
                        Some(k) if unknown => format!("did you mean `net.netfilter.{k}`?"),
                        _ if unknown => "conntrack's sysctls are `net.netfilter.nf_conntrack_*` as Linux names them, e.g. `net.netfilter.nf_conntrack_max`, `net.netfilter.nf_conntrack_tcp_loose`, `net.netfilter.nf_conntrack_udp_timeout`".to_string(),
                        _ => "values are integers as /proc/sys takes them: 0 or 1 for switches, seconds for timeouts".to_string(),
                    };
                    let (span, label) = if unknown {
                        (name.span, "no such setting")
                    } else {
                        (value.span, "refused")
                    };
                    errors.push(Diagnostic::new(e).label(span, label).help(help));
                }
            }
            Some(ct)
        })
        .collect()
}

fn check_filters(
    s: &Scenario,
    source: &Source,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<usize, Filter> {
    let mut filters = BTreeMap::new();
    for (i, c) in s.checks.iter().enumerate() {
        let text = match &c.kind {
            model::CheckKind::Received {
                filter: Some(f), ..
            }
            | model::CheckKind::Seen { filter: f, .. }
            | model::CheckKind::CtState { filter: f, .. }
            | model::CheckKind::Verdict { filter: f, .. } => f,
            _ => continue,
        };
        match Filter::parse(&text.value) {
            Ok(f) => {
                filters.insert(i, f);
            }
            Err(e) => errors.push(literal_error(source, text, e.span.clone(), &e.message)),
        }
    }
    filters
}

/// The apps that run on node `name` (a host, or a router's own stack).
fn node_apps(s: &Scenario, names: &[String], name: &str) -> Vec<host::App> {
    s.apps
        .iter()
        .zip(names)
        .filter(|(a, _)| a.on.value == name)
        .map(|(a, n)| host::App {
            name: n.clone(),
            at: instant(a.at),
            kind: app_kind(&a.kind, &a.on.value),
        })
        .collect()
}

/// A node's interfaces as a stack's NICs.
fn nics(interfaces: &[model::Interface]) -> Vec<Nic> {
    interfaces
        .iter()
        .map(|i| Nic {
            name: i.name.value.clone(),
            addr: cidr(i.addr.value),
        })
        .collect()
}

/// Each node's interfaces by (node, interface) name → position, built once
/// so that lowering stays linear in the size of the scenario.
type PortIndex<'a> = BTreeMap<(&'a str, &'a str), u16>;

fn port_index(s: &Scenario) -> PortIndex<'_> {
    let hosts = s.hosts.iter().map(|h| (&h.name.value, &h.interfaces));
    let routers = s.routers.iter().map(|r| (&r.name.value, &r.interfaces));
    let switch_ports = s.switches.iter().flat_map(|sw| {
        sw.ports
            .iter()
            .enumerate()
            .map(move |(i, p)| ((sw.name.value.as_str(), p.value.as_str()), i as u16))
    });
    hosts
        .chain(routers)
        .flat_map(|(node, ifs)| {
            ifs.iter()
                .enumerate()
                .map(move |(i, iface)| ((node.as_str(), iface.name.value.as_str()), i as u16))
        })
        .chain(switch_ports)
        .collect()
}

/// What lowering parses out of the scenario's strings and settings.
struct Parsed {
    sends: BTreeMap<String, Vec<RawSend>>,
    filters: BTreeMap<usize, Filter>,
    tables: Vec<Option<Conntrack>>,
    rulesets: Vec<Option<Ruleset>>,
}

/// Parses packet literals, check filters and router sysctls, reporting every
/// error against the file; builds nothing.
fn parse(s: &Scenario, source: &Arc<Source>, index: &PortIndex<'_>) -> Result<Parsed, Report> {
    let mut errors = Vec::new();
    let sends = raw_sends(s, source, index, &mut errors);
    let filters = check_filters(s, source, &mut errors);
    let rulesets = rulesets(s, source, &mut errors);
    let tables = conntrack_tables(s, &mut errors);
    if errors.is_empty() {
        Ok(Parsed {
            sends,
            filters,
            tables,
            rulesets,
        })
    } else {
        Err(Report::new(source.clone(), errors))
    }
}

/// Reports the errors lowering would find, without building the world
/// (`ctsim check`, and loading before a run).
pub fn check(s: &Scenario, source: &Arc<Source>) -> Result<(), Report> {
    parse(s, source, &port_index(s)).map(|_| ())
}

/// Lowers `s` for a run with `seed`; `trace` keeps per-packet records.
pub fn lower(
    s: &Scenario,
    source: &Arc<Source>,
    seed: u64,
    trace: bool,
) -> Result<Lowered, Report> {
    let index = port_index(s);
    let Parsed {
        mut sends,
        filters,
        tables,
        rulesets,
    } = parse(s, source, &index)?;
    let mut tables = tables.into_iter();
    let mut rulesets = rulesets.into_iter();
    let names = app_names(s);
    let mut b = Builder::new(seed);
    b.trace(trace);
    let mut nodes = BTreeMap::new();
    let ports = |ifs: &[model::Interface]| -> Vec<PortSpec> {
        ifs.iter()
            .map(|i| PortSpec {
                name: i.name.value.clone(),
                addr: Some(cidr(i.addr.value)),
            })
            .collect()
    };
    for h in &s.hosts {
        let name = &h.name.value;
        let node: Box<dyn ctsim_engine::Node> = if h.is_raw() {
            Box::new(RawHost::new(sends.remove(name).unwrap_or_default()))
        } else {
            let apps = node_apps(s, &names, name);
            let nics = nics(&h.interfaces);
            Box::new(Host::new(HostConfig {
                nics,
                gateway: h.gateway.as_ref().map(|g| g.value),
                apps,
            }))
        };
        nodes.insert(name.clone(), b.add_node(name, ports(&h.interfaces), node));
    }
    for r in &s.routers {
        let addrs = r
            .interfaces
            .iter()
            .map(|i| Some(cidr(i.addr.value)))
            .collect();
        let routes: Vec<StaticRoute> = r
            .routes
            .iter()
            .map(|rt| StaticRoute {
                to: cidr(rt.to.value),
                via: rt.via.value,
            })
            .collect();
        let table = tables.next().flatten();
        let rules = rulesets.next().flatten();
        let node = Box::new(
            Router::new(addrs, &routes)
                .with_conntrack(table, trace)
                .with_ruleset(rules)
                .with_apps(nics(&r.interfaces), node_apps(s, &names, &r.name.value)),
        );
        nodes.insert(
            r.name.value.clone(),
            b.add_node(&r.name.value, ports(&r.interfaces), node),
        );
    }
    for sw in &s.switches {
        let ports = sw
            .ports
            .iter()
            .map(|p| PortSpec {
                name: p.value.clone(),
                addr: None,
            })
            .collect();
        let node = Box::new(ctsim_engine::switch::Switch::new());
        nodes.insert(
            sw.name.value.clone(),
            b.add_node(&sw.name.value, ports, node),
        );
    }
    let port_of = |end: &model::LinkEnd| -> Option<(NodeId, u16)> {
        let port = index.get(&(end.node.as_str(), end.iface.as_str()))?;
        Some((*nodes.get(&end.node)?, *port))
    };
    let mut links = BTreeMap::new();
    let mut build_errors = Vec::new();
    for l in &s.links {
        let (Some(a), Some(z)) = (port_of(&l.ends[0]), port_of(&l.ends[1])) else {
            build_errors.push(Diagnostic::new("link end names no interface").label(l.span, "here"));
            continue;
        };
        match b.add_link(&l.name.value, a, z, link_params(&l.params)) {
            Ok(id) => {
                links.insert(l.name.value.clone(), id);
            }
            Err(e) => build_errors.push(Diagnostic::new(e.to_string()).label(l.span, "this link")),
        }
    }
    for e in &s.events {
        if let Some(&link) = links.get(&e.link.value) {
            b.schedule(
                instant(e.at),
                ctsim_engine::Action::Link {
                    link,
                    change: link_change(e),
                },
            );
        }
    }
    for c in &s.commands {
        if let Some(&node) = nodes.get(&c.on.value) {
            let args = c.args.value.clone();
            let command = match c.tool {
                model::Tool::Iptables => Command::Iptables(args),
                model::Tool::Conntrack => Command::Conntrack(args),
            };
            b.schedule(
                instant(c.at),
                ctsim_engine::Action::Command { node, command },
            );
        }
    }
    if !build_errors.is_empty() {
        return Err(Report::new(source.clone(), build_errors));
    }
    Ok(Lowered {
        builder: b,
        app_names: names,
        filters,
        nodes,
        links,
    })
}
