//! `ctsim linux-diff`: the scenario run in ctsim, then the same router
//! built in a real Linux network namespace and fed exactly the packets that
//! reached it in the simulation, at the same instants; what each side sent,
//! and its tables at every check instant, compared.
//!
//! The parts: [`plan`] turns the scenario's router into a
//! [`RouterSpec`](ctsim_linux::RouterSpec) and refuses what cannot be
//! replayed; [`ctsim_side`] runs the scenario with the router tapped;
//! `replay` drives the kernel (`ctsim_linux::Lab`) on the wall clock;
//! `packets` pairs the packets; `tables` compares the tables; `render`
//! prints the side-by-side report.

mod packets;
mod render;
mod replay;
pub mod tables;

use std::sync::Arc;

use ctsim_engine::{Instant, Place, Sim, What};
use ctsim_linux::{BuildError, KernelInfo, RouterSpec};

use crate::conntrack::{query, Query};
use crate::diag::{Report, Source};
use crate::model::{CtTable, Scenario, Tool};
use crate::netfilter::{show_ruleset, RulesetView};
use crate::run::{prepare, RunOptions};
use packets::Expected;
use tables::{Snapshot, TableDiff};

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// The router to build; may be left out when the scenario has one.
    pub router: Option<String>,
    pub seed: Option<u64>,
}

/// Why no comparison could be made.
#[derive(Debug)]
pub enum DiffError {
    /// The scenario itself is bad (exit 2, printed as a diagnostic).
    Input(Report),
    /// The scenario uses something the kernel side cannot reproduce.
    Unsupported(String),
    /// The kernel side could not be built or run.
    Kernel(BuildError),
}

impl std::fmt::Display for DiffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffError::Input(r) => write!(f, "{r}"),
            DiffError::Unsupported(why) => write!(f, "cannot replay this scenario: {why}"),
            DiffError::Kernel(e) => write!(f, "cannot build the kernel side: {e}"),
        }
    }
}

impl std::error::Error for DiffError {}

/// A packet that reached the router in the simulation.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    pub time: Instant,
    pub port: u16,
    pub packet: Box<[u8]>,
    /// What ctsim's router did with it, in the timeline's words.
    pub fate: String,
}

/// A command the scenario runs on the router, and what each side printed.
#[derive(Clone, Debug)]
pub struct CommandRun {
    pub time: Instant,
    pub line: String,
    pub ctsim: String,
    pub linux: String,
}

/// One check instant: both sides' tables and how they compare.
#[derive(Clone, Debug)]
pub struct Probe {
    pub at: Instant,
    pub ctsim: Snapshot,
    pub linux: Snapshot,
    pub conntrack: TableDiff,
    pub expect: TableDiff,
    /// Counters that differ: (name, ctsim, linux).
    pub stats: Vec<(String, Option<u64>, Option<u64>)>,
    pub rules: TableDiff,
}

impl Probe {
    pub fn agrees(&self) -> bool {
        self.conntrack.agrees()
            && self.expect.agrees()
            && self.stats.is_empty()
            && self.rules.agrees()
    }
}

/// The whole comparison.
pub struct Diff {
    pub scenario: String,
    pub router: String,
    /// The router's interface names, by port.
    pub interfaces: Vec<String>,
    pub kernel: KernelInfo,
    /// Initial-namespace settings the run changed (and restored).
    pub globals: Vec<(String, String)>,
    /// How late the replay ran against the scenario's instants, at most.
    pub max_lag: std::time::Duration,
    /// Seconds the timeouts may differ by (2, plus the lag).
    pub tolerance: u64,
    pub(crate) inputs: Vec<Input>,
    pub(crate) matcher: packets::Matcher,
    pub probes: Vec<Probe>,
    pub commands: Vec<CommandRun>,
}

impl Diff {
    /// Every packet paired and every table the same.
    pub fn agrees(&self) -> bool {
        self.packets_agree() && self.probes.iter().all(Probe::agrees)
    }

    pub fn packets_agree(&self) -> bool {
        self.matcher.expected.iter().all(|e| e.matched.is_some())
            && self.matcher.seen.iter().all(|s| s.matched.is_some())
    }

    /// The side-by-side report.
    pub fn render(&self) -> String {
        render::render(self)
    }
}

/// Runs the comparison for `s` (loaded from `source`).
pub fn linux_diff(
    s: &Scenario,
    source: &Arc<Source>,
    opts: &DiffOptions,
) -> Result<Diff, DiffError> {
    let router = pick_router(s, opts.router.as_deref())?;
    let spec = plan(s, &router)?;
    let ctsim = ctsim_side(s, source, &router, opts.seed)?;
    let kernel = replay::replay(&spec, &ctsim).map_err(DiffError::Kernel)?;
    let replay::KernelSide {
        matcher,
        snapshots,
        commands,
        info,
        globals,
        max_lag,
    } = kernel;
    let tolerance = tables::tolerance(max_lag);
    let probes = ctsim
        .snapshots
        .iter()
        .zip(snapshots)
        .map(|((at, ours), theirs)| {
            let ports = &matcher.ports;
            Probe {
                at: *at,
                conntrack: tables::compare(
                    &ours.conntrack,
                    &theirs.conntrack,
                    tables::TimeoutField::Third,
                    ports,
                    tolerance,
                ),
                expect: tables::compare(
                    &ours.expect,
                    &theirs.expect,
                    tables::TimeoutField::First,
                    ports,
                    tolerance,
                ),
                stats: tables::compare_stats(&ours.stats, &theirs.stats),
                rules: tables::compare_ordered(&ours.rules, &theirs.rules),
                ctsim: ours.clone(),
                linux: theirs,
            }
        })
        .collect();
    Ok(Diff {
        scenario: s.name.value.clone(),
        router,
        interfaces: spec.interfaces.iter().map(|i| i.name.clone()).collect(),
        kernel: info,
        globals,
        max_lag,
        tolerance,
        inputs: ctsim.inputs,
        matcher,
        probes,
        commands,
    })
}

fn pick_router(s: &Scenario, asked: Option<&str>) -> Result<String, DiffError> {
    let names: Vec<&str> = s.routers.iter().map(|r| r.name.value.as_str()).collect();
    match (asked, names.as_slice()) {
        (Some(r), _) if names.contains(&r) => Ok(r.to_string()),
        (Some(r), []) => Err(DiffError::Unsupported(format!(
            "the scenario has no routers (asked for `{r}`)"
        ))),
        (Some(r), _) => Err(DiffError::Unsupported(format!(
            "no router `{r}` (routers: {})",
            names.join(", ")
        ))),
        (None, [one]) => Ok(one.to_string()),
        (None, []) => Err(DiffError::Unsupported(
            "the scenario has no router to compare".into(),
        )),
        (None, many) => Err(DiffError::Unsupported(format!(
            "the scenario has {} routers: name one with --router ({})",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// The kernel side's router, or why the scenario cannot be replayed.
pub fn plan(s: &Scenario, router: &str) -> Result<RouterSpec, DiffError> {
    let unsupported = |why: String| Err(DiffError::Unsupported(why));
    let Some(r) = s.router(router) else {
        return unsupported(format!("no router `{router}`"));
    };
    if let Some(app) = s.apps.iter().find(|a| a.on.value == router) {
        return unsupported(format!(
            "app `{}` runs on router `{router}`: linux-diff replays the packets that reach the \
             router, and cannot replay what the router's own programs send",
            app.name.as_ref().map_or("(unnamed)", |n| n.value.as_str())
        ));
    }
    let router_links: Vec<&crate::model::Link> = s
        .links
        .iter()
        .filter(|l| l.ends.iter().any(|e| e.node == router))
        .collect();
    if let Some(e) = s
        .events
        .iter()
        .find(|e| e.mtu.is_some() && router_links.iter().any(|l| l.name.value == e.link.value))
    {
        return unsupported(format!(
            "the event at {} changes the MTU of link `{}`, one of the router's",
            e.at, e.link.value
        ));
    }
    let mut interfaces = Vec::new();
    for itf in &r.interfaces {
        let name = &itf.name.value;
        if name.len() > 15 || name == "lo" {
            return unsupported(format!(
                "interface `{name}`: Linux interface names have at most 15 bytes and `lo` is taken"
            ));
        }
        let link = router_links
            .iter()
            .find(|l| l.ends.iter().any(|e| e.node == router && e.iface == *name));
        let mtu = link.map_or(1500, |l| l.params.mtu);
        let neighbour = link.and_then(|l| {
            let far = l
                .ends
                .iter()
                .find(|e| !(e.node == router && e.iface == *name))?;
            address_of(s, &far.node, &far.iface)
        });
        interfaces.push(ctsim_linux::Interface {
            name: name.clone(),
            addr: itf.addr.value.addr,
            prefix: itf.addr.value.len,
            mtu,
            neighbour,
        });
    }
    let routes = r
        .routes
        .iter()
        .map(|rt| ctsim_linux::StaticRoute {
            dst: rt.to.value.addr,
            prefix: rt.to.value.len,
            via: rt.via.value,
        })
        .collect();
    Ok(RouterSpec {
        interfaces,
        routes,
        sysctls: r
            .sysctl
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        ruleset: r.ruleset.as_ref().map(|t| t.value.clone()),
        track: r.conntrack.value,
    })
}

/// The address of a host's or router's interface (`None` for a switch).
fn address_of(s: &Scenario, node: &str, iface: &str) -> Option<std::net::Ipv4Addr> {
    let interfaces = s
        .host(node)
        .map(|h| &h.interfaces)
        .or_else(|| s.router(node).map(|r| &r.interfaces))?;
    interfaces
        .iter()
        .find(|i| i.name.value == iface)
        .map(|i| i.addr.value.addr)
}

/// What the simulation gives the replay: the packets in, the packets out,
/// the tables at each check instant, and the commands.
pub(crate) struct CtsimSide {
    pub inputs: Vec<Input>,
    pub expected: Vec<Expected>,
    pub snapshots: Vec<(Instant, Snapshot)>,
    /// (time, tool, arguments) of the scenario's commands on the router.
    pub commands: Vec<(Instant, &'static str, String, String)>,
}

fn ctsim_side(
    s: &Scenario,
    source: &Arc<Source>,
    router: &str,
    seed: Option<u64>,
) -> Result<CtsimSide, DiffError> {
    let opts = RunOptions {
        seed,
        timeline: true,
        ..Default::default()
    };
    let mut prepared = prepare(s, source, &opts).map_err(DiffError::Input)?;
    let id = prepared
        .sim_mut()
        .node_id(router)
        .ok_or_else(|| DiffError::Unsupported(format!("no node `{router}`")))?;
    prepared.sim_mut().tap(id);
    let mut snapshots = Vec::new();
    let out = prepared.execute_observing(|sim, at| snapshots.push((at, snapshot(sim, router, at))));
    let sim = &out.sim;
    let (inputs, expected) = packets_of(sim, id);
    let commands = s
        .commands
        .iter()
        .filter(|c| c.on.value == router)
        .map(|c| {
            let tool = match c.tool {
                Tool::Iptables => "iptables",
                Tool::Conntrack => "conntrack",
            };
            let at = crate::lower::instant(c.at);
            let printed = command_output(sim, id, at, tool, &c.args.value);
            (at, tool, c.args.value.clone(), printed)
        })
        .collect();
    Ok(CtsimSide {
        inputs,
        expected,
        snapshots,
        commands,
    })
}

/// What ctsim printed for the command, from its timeline record.
fn command_output(
    sim: &Sim,
    id: ctsim_engine::NodeId,
    at: Instant,
    tool: &str,
    args: &str,
) -> String {
    let line = format!("{tool} {args}");
    sim.records()
        .iter()
        .filter(|r| r.time == at && r.what == What::Command)
        .filter(
            |r| matches!(r.place, Place::Node { node, .. } | Place::Inside { node } if node == id),
        )
        .filter_map(|r| r.text.as_deref())
        .find(|t| t.lines().next().is_some_and(|l| l.trim() == line.trim()))
        .map(|t| t.lines().skip(1).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// The router's tables as ctsim prints them.
fn snapshot(sim: &Sim, router: &str, at: Instant) -> Snapshot {
    let text = |q| {
        query(sim, router, at, q, false)
            .map(|(o, _)| o)
            .unwrap_or_default()
    };
    Snapshot {
        conntrack: Snapshot::lines(&text(Query::List(CtTable::Conntrack))),
        expect: Snapshot::lines(&text(Query::List(CtTable::Expect))),
        stats: Snapshot::stats(&text(Query::Stats)),
        rules: Snapshot::rules(
            &show_ruleset(sim, router, at, RulesetView::Save(None)).unwrap_or_default(),
        ),
    }
}

/// The tapped router's packets: what reached it (with its fate) and what
/// it sent (made by itself or not, re-NATed or not, and for which input).
fn packets_of(sim: &Sim, id: ctsim_engine::NodeId) -> (Vec<Input>, Vec<Expected>) {
    let at_router: Vec<&ctsim_engine::Record> = sim
        .records()
        .iter()
        .filter(|r| matches!(r.place, Place::Node { node, .. } if node == id))
        .collect();
    let mut inputs: Vec<Input> = Vec::new();
    let mut expected = Vec::new();
    // Each packet in leaves one record of its fate at its interface, in
    // the order they came (a fragmented one leaves one per fragment).
    let (mut next_fate, mut next_out) = (0, 0);
    for t in sim.tapped() {
        if t.inbound {
            let found = (next_fate..at_router.len()).find(|&k| {
                let r = at_router[k];
                r.time == t.time
                    && matches!(r.place, Place::Node { port, .. } if port == t.port)
                    && matches!(
                        r.what,
                        What::Forwarded { .. } | What::Dropped(_) | What::Received
                    )
            });
            if let Some(k) = found {
                next_fate = k + 1;
            }
            let fate = found.map_or_else(
                || "no record".to_string(),
                |k| fate_of(sim, id, at_router[k]),
            );
            inputs.push(Input {
                time: t.time,
                port: t.port,
                packet: t.packet.clone(),
                fate,
            });
            continue;
        }
        // Each packet out left its record just before it was sent, in order.
        let found = (next_out..at_router.len()).find(|&k| {
            let r = at_router[k];
            r.time == t.time
                && matches!(r.what, What::Sent | What::Forwarded { .. })
                && r.packet == t.packet
        });
        if let Some(k) = found {
            next_out = k + 1;
        }
        let rec = found.map(|k| at_router[k]);
        let originated = rec.is_some_and(|r| r.what == What::Sent);
        let renat = rec
            .and_then(|r| r.before.as_deref())
            .is_some_and(|before| ports_of(before) != ports_of(&t.packet));
        let input = inputs
            .last()
            .filter(|i| i.time == t.time)
            .map(|_| inputs.len() - 1);
        expected.push(Expected {
            time: t.time,
            port: t.port,
            packet: t.packet.clone(),
            originated,
            renat,
            input,
            matched: None,
        });
    }
    (inputs, expected)
}

fn fate_of(sim: &Sim, id: ctsim_engine::NodeId, r: &ctsim_engine::Record) -> String {
    match r.what {
        What::Forwarded { to } => {
            let name = sim
                .ports(id)
                .get(usize::from(to))
                .map_or("?", |p| p.name.as_str());
            format!("forwarded to {name}")
        }
        What::Received => "taken in (INPUT)".to_string(),
        What::Dropped(reason) => format!("dropped ({reason})"),
        _ => String::new(),
    }
}

/// A TCP or UDP datagram's ports.
fn ports_of(p: &[u8]) -> Option<(u16, u16)> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    if !matches!(p.get(9)?, 6 | 17) || p.len() < ihl + 4 {
        return None;
    }
    Some((
        u16::from_be_bytes([p[ihl], p[ihl + 1]]),
        u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Scenario {
        crate::run::load("t.yaml", text).expect("loads").0
    }

    const TWO_ROUTERS: &str = "
name: t
hosts:
  a: { stack: none, addr: 192.0.2.2/24 }
  b: { stack: none, addr: 203.0.113.2/24 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, core0: 198.51.100.1/24 }
    routes: [ { to: 203.0.113.0/24, via: 198.51.100.2 } ]
  r2:
    interfaces: { core0: 198.51.100.2/24, wan0: 203.0.113.1/24 }
    routes: [ { to: 192.0.2.0/24, via: 198.51.100.1 } ]
    sysctl: { net.netfilter.nf_conntrack_max: 10 }
switches:
  sw: { ports: 2 }
links:
  - { ends: [a, r1.lan0], mtu: 1400 }
  - { ends: [r1.core0, r2.core0] }
  - { ends: [r2.wan0, sw.p0] }
  - { ends: [b, sw.p1] }
";

    #[test]
    fn several_routers_need_a_name() {
        let s = load(TWO_ROUTERS);
        let e = pick_router(&s, None).unwrap_err().to_string();
        assert!(e.contains("name one with --router (r1, r2)"), "{e}");
        assert!(pick_router(&s, Some("r3")).is_err());
        assert_eq!(pick_router(&s, Some("r2")).unwrap(), "r2");
    }

    /// Point-to-point links give the far end as the one neighbour (a host or
    /// a router); a switch gives none (ARP off: any address answers).
    #[test]
    fn the_plan_follows_the_links() {
        let s = load(TWO_ROUTERS);
        let r1 = plan(&s, "r1").unwrap();
        assert_eq!(r1.interfaces[0].name, "lan0");
        assert_eq!(r1.interfaces[0].mtu, 1400);
        assert_eq!(
            r1.interfaces[0].neighbour,
            Some("192.0.2.2".parse().unwrap())
        );
        assert_eq!(
            r1.interfaces[1].neighbour,
            Some("198.51.100.2".parse().unwrap())
        );
        assert_eq!(
            r1.routes[0].via,
            "198.51.100.2".parse::<std::net::Ipv4Addr>().unwrap()
        );
        assert!(r1.track && !r1.needs_global_sysctls());
        let r2 = plan(&s, "r2").unwrap();
        assert_eq!(r2.interfaces[1].neighbour, None, "behind a switch");
        assert!(r2.needs_global_sysctls());
    }

    #[test]
    fn apps_on_the_router_cannot_be_replayed() {
        let s = load(&format!(
            "{TWO_ROUTERS}apps:\n  - {{ on: r1, run: udp-echo, port: 7 }}\n"
        ));
        let e = plan(&s, "r1").unwrap_err().to_string();
        assert!(e.contains("runs on router `r1`"), "{e}");
        assert!(plan(&s, "r2").is_ok());
    }

    /// The tap gives what reached the router and what it sent; NAT's own
    /// port choice (the clash) is marked so the kernel's may differ.
    #[test]
    fn the_ctsim_side_of_a_port_clash() {
        let text = include_str!("../../../../scenarios/nat/snat-port-clash.yaml");
        let (s, source) = crate::run::load("snat-port-clash.yaml", text).unwrap();
        let side = ctsim_side(&s, &source, "gw", None).unwrap();
        assert_eq!(side.inputs.len(), 3);
        assert!(side.inputs.iter().all(|i| i.fate == "forwarded to wan0"));
        let renat: Vec<bool> = side.expected.iter().map(|e| e.renat).collect();
        assert_eq!(renat, [false, true, true]);
        assert_eq!(
            side.expected.iter().map(|e| e.input).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        // One snapshot: the end of the run (no check names an instant).
        assert_eq!(side.snapshots.len(), 1);
        assert_eq!(side.snapshots[0].1.conntrack.len(), 2);
        assert_eq!(side.snapshots[0].1.stats["found"], 1);
    }
}
