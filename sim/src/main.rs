//! `ctsim`: the command line. Parses arguments, reads files, calls the
//! scenario crate, prints, and turns results into exit codes: 0 all good,
//! 1 a check failed, 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ctsim_scenario::model::Duration;
use ctsim_scenario::{report, Report, RunOptions};

#[derive(Parser)]
#[command(
    name = "ctsim",
    version,
    about = "A deterministic network simulator whose routers behave as Linux does"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and print its timeline, apps, links and checks.
    Run {
        file: PathBuf,
        /// Use this seed instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Stop at this simulated time (e.g. `2.5s`) instead of the scenario's `until`.
        #[arg(long)]
        until: Option<Duration>,
        /// Write one pcap file per link into this directory.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// Leave the per-packet timeline out (apps, links and checks remain).
        #[arg(long)]
        quiet: bool,
        /// Under each packet at a router, show its walk: every hook and table
        /// it passed, the rule that decided, its conntrack state, the NAT
        /// done, the routing decision and the verdict (always in --json).
        #[arg(long, conflicts_with = "quiet")]
        walk: bool,
        /// Also print wall-clock time and events per second on stderr.
        #[arg(long)]
        timing: bool,
    },
    /// Run a scenario to an instant and print a router's conntrack tables,
    /// statistics or events there, as conntrack-tools 1.4.7 prints them.
    Conntrack {
        file: PathBuf,
        /// The router.
        #[arg(long)]
        node: String,
        /// The instant (e.g. `1.5s`): the run stops there.
        #[arg(long)]
        at: Duration,
        /// List a table: `conntrack` (default), `expect`, `dying` or `unconfirmed`.
        #[arg(short = 'L', long = "dump", num_args = 0..=1, default_missing_value = "conntrack",
              value_name = "TABLE")]
        list: Option<String>,
        /// Output format: `extended` adds the layer-3 prefix (`ipv4     2 `).
        #[arg(short = 'o', long = "output", value_name = "FORMAT")]
        output: Option<String>,
        /// Statistics (`conntrack -S`).
        #[arg(short = 'S', long = "stats")]
        stats: bool,
        /// Number of entries (`conntrack -C`).
        #[arg(short = 'C', long = "count")]
        count: bool,
        /// Every event up to the instant (`conntrack -E`); `-E expect` for
        /// the expectation events (`conntrack -E expect`).
        #[arg(short = 'E', long = "event", num_args = 0..=1,
              default_missing_value = "conntrack", value_name = "TABLE")]
        events: Option<String>,
        /// Stop inside a packet's walk: the first packet matching FILTER at or
        /// after `--at` that reaches conntrack's confirmation on the router.
        ///
        /// Between events the unconfirmed table is empty (and so, nearly always,
        /// is the dying one): entries are unconfirmed, or dying while a packet
        /// still holds them, only inside a packet's walk through the hooks. With
        /// `--during`, the run goes on from `--at` until a packet matching FILTER
        /// (the filter notation of checks, e.g. `tcp dport 22`, `udp and src
        /// 192.0.2.2`, `rst`) reaches the last step of POSTROUTING (forwarded
        /// packets and the router's own) or of INPUT (packets for the router) on
        /// the router: the point where conntrack confirms its entry. The packet
        /// is stopped just before that, `-L [TABLE]`, `-S` or `-C` (with `-o
        /// extended`) is answered from the table as it is then, the run stops and
        /// it is printed; stderr names the packet, the instant and the hook
        /// first. A matching packet dropped before that point (TTL exceeded, no
        /// route) does not count. `-E` cannot be combined with it. If no packet
        /// matches before the run ends (its `until`, or no events left), exit
        /// status 1.
        ///
        /// Example: `ctsim conntrack FILE --node r1 --at 1s --during "tcp dport
        /// 22" -L unconfirmed` shows the entry a SYN created, not yet confirmed.
        #[arg(long, value_name = "FILTER")]
        during: Option<String>,
    },
    /// Run a scenario to an instant and print a router's iptables ruleset with
    /// its counters there: as `iptables-save -c` prints it, or with `-L` as
    /// `iptables -L -v -n` does.
    Ruleset {
        file: PathBuf,
        /// The router.
        #[arg(long)]
        node: String,
        /// The instant (e.g. `1.5s`): the run stops there.
        #[arg(long)]
        at: Duration,
        /// One table: filter, nat, mangle, raw or security (`-L` lists
        /// filter without it).
        #[arg(short = 't', long = "table")]
        table: Option<String>,
        /// List the table as `iptables -t TABLE -L -v -n` prints it.
        #[arg(short = 'L', long = "list")]
        list: bool,
        /// Accepted for `-L -v -n` as typed for iptables (always on).
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Accepted for `-L -v -n` as typed for iptables (always on).
        #[arg(short = 'n', long = "numeric")]
        numeric: bool,
        /// Exact packet and byte counts (`-L -v -n -x`).
        #[arg(short = 'x', long = "exact")]
        exact: bool,
    },
    /// Run a scenario and show one packet's walk through every router it
    /// crossed: each hook and table, the rule that decided, its conntrack
    /// state, the NAT done, the routing decision and the verdict.
    Trace {
        file: PathBuf,
        /// A packet's `name:` in the scenario, or a filter such as `tcp dport
        /// 22 and tcp-flags S` (the first packet at a router it matches).
        #[arg(long)]
        packet: String,
        /// With a filter: the Nth packet it matches at a router (1 = first).
        #[arg(long, default_value_t = 1)]
        nth: usize,
        /// Use this seed instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a scenario, then replay the packets that reached one router
    /// through a real Linux router built in network namespaces (needs root,
    /// iproute2, iptables, nftables, conntrack and ethtool), and show where
    /// the two differ: packet by packet, and the tables (conntrack -L,
    /// -L expect, -S, iptables-save -c) at every check instant. Exit 0 when
    /// they agree, 1 when they differ, 2 when the kernel side cannot be
    /// built or the scenario cannot be replayed.
    LinuxDiff {
        file: PathBuf,
        /// The router to compare (needed when the scenario has several).
        #[arg(long)]
        router: Option<String>,
        /// Use this seed instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Validate scenario files without running them.
    Check { files: Vec<PathBuf> },
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Print a scenario's topology as Graphviz DOT.
    Graph { file: PathBuf },
    /// Print the benchmark scenario: N UDP flows through one router.
    /// Measure it with `ctsim run --quiet --timing FILE`.
    Dumbbell {
        #[arg(long, default_value_t = 100)]
        flows: u32,
        /// Datagrams per flow.
        #[arg(long, default_value_t = 2000)]
        packets: u64,
        /// Let the router track connections (off by default, as in the
        /// criterion benchmark, which measures forwarding alone).
        #[arg(long)]
        conntrack: bool,
    },
}

/// Writes to stdout; a reader that went away (`ctsim run … | head`) is not
/// an error worth a panic, so the rest of the output is dropped quietly.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Exit code for bad input.
const BAD_INPUT: u8 = 2;

fn read(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", path.display());
        ExitCode::from(BAD_INPUT)
    })
}

fn bad(report: &Report) -> ExitCode {
    eprint!("{}", report.render(Report::color_default()));
    ExitCode::from(BAD_INPUT)
}

fn load(
    path: &Path,
) -> Result<
    (
        ctsim_scenario::model::Scenario,
        std::sync::Arc<ctsim_scenario::diag::Source>,
    ),
    ExitCode,
> {
    let bytes = read(path)?;
    ctsim_scenario::load_bytes(&path.display().to_string(), &bytes).map_err(|r| bad(&r))
}

/// `ctsim conntrack`: one of -L, -S, -C, -E (default -L).
#[allow(clippy::too_many_arguments)]
fn conntrack(
    file: &Path,
    node: &str,
    at: Duration,
    list: Option<String>,
    output: Option<String>,
    stats: bool,
    count: bool,
    events: Option<String>,
    during: Option<String>,
) -> ExitCode {
    use ctsim_scenario::conntrack::{query, Query};
    use ctsim_scenario::model::CtTable;
    let modes = usize::from(list.is_some())
        + usize::from(stats)
        + usize::from(count)
        + usize::from(events.is_some());
    if modes > 1 {
        eprintln!("error: give one of -L, -S, -C and -E");
        return ExitCode::from(BAD_INPUT);
    }
    let extended = match output.as_deref() {
        None => false,
        Some("extended") => true,
        Some(other) => {
            eprintln!("error: unknown output format `{other}` (ctsim prints `-o extended`)");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let q = if stats {
        Query::Stats
    } else if count {
        Query::Count
    } else if let Some(t) = events.as_deref() {
        match t {
            "conntrack" => Query::Events,
            "expect" => Query::ExpectEvents,
            other => {
                eprintln!("error: unknown event table `{other}`: conntrack or expect");
                return ExitCode::from(BAD_INPUT);
            }
        }
    } else {
        match list.as_deref().unwrap_or("conntrack") {
            "conntrack" => Query::List(CtTable::Conntrack),
            "expect" => Query::List(CtTable::Expect),
            "dying" => Query::List(CtTable::Dying),
            "unconfirmed" => Query::List(CtTable::Unconfirmed),
            other => {
                eprintln!(
                    "error: unknown table `{other}`: conntrack, expect, dying or unconfirmed"
                );
                return ExitCode::from(BAD_INPUT);
            }
        }
    };
    let (scenario, source) = match load(file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let at = ctsim_scenario::lower::instant(at);
    if let Some(filter) = during {
        return conntrack_during(&scenario, &source, node, at, &filter, q, extended);
    }
    let opts = RunOptions {
        until: Some(at),
        timeline: matches!(q, Query::Events | Query::ExpectEvents),
        ..RunOptions::default()
    };
    let prepared = match ctsim_scenario::run::prepare(&scenario, &source, &opts) {
        Ok(p) => p,
        Err(r) => return bad(&r),
    };
    let sim = prepared.run_to(at);
    match query(&sim, node, at, q, extended) {
        Ok((stdout, stderr)) => {
            out(&stdout);
            eprint!("{stderr}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// `ctsim conntrack --during FILTER`: the query answered inside the walk
/// of the first matching packet at or after `at`.
/// `ctsim ruleset`: `iptables-save -c` or `iptables -L -v -n` at an instant.
fn ruleset(
    file: &Path,
    node: &str,
    at: Duration,
    table: Option<&str>,
    list: bool,
    exact: bool,
) -> ExitCode {
    use ctsim_engine::router::netfilter::TableKind;
    use ctsim_scenario::netfilter::{show_ruleset, RulesetView};
    let table = match table.map(|t| (t, TableKind::from_name(t))) {
        None => None,
        Some((_, Some(k))) => Some(k),
        Some((t, None)) => {
            eprintln!("error: unknown table `{t}`: filter, nat, mangle, raw or security");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let view = if list {
        RulesetView::List(table.unwrap_or(TableKind::Filter), exact)
    } else {
        RulesetView::Save(table)
    };
    let (scenario, source) = match load(file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let at = ctsim_scenario::lower::instant(at);
    let opts = RunOptions {
        until: Some(at),
        ..RunOptions::default()
    };
    let prepared = match ctsim_scenario::run::prepare(&scenario, &source, &opts) {
        Ok(p) => p,
        Err(r) => return bad(&r),
    };
    let sim = prepared.run_to(at);
    match show_ruleset(&sim, node, at, view) {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// `ctsim trace`: one packet's walk through the routers.
fn trace(file: &Path, packet: &str, nth: usize, seed: Option<u64>) -> ExitCode {
    let (scenario, source) = match load(file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = RunOptions {
        seed,
        timeline: true,
        ..RunOptions::default()
    };
    let result = match ctsim_scenario::run(&scenario, &source, &opts) {
        Ok(r) => r,
        Err(r) => return bad(&r),
    };
    match ctsim_scenario::netfilter::trace(&result.sim, &scenario, packet, nth) {
        Ok(text) => {
            out(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn conntrack_during(
    scenario: &ctsim_scenario::model::Scenario,
    source: &std::sync::Arc<ctsim_scenario::diag::Source>,
    node: &str,
    at: ctsim_engine::Instant,
    filter: &str,
    q: ctsim_scenario::conntrack::Query,
    extended: bool,
) -> ExitCode {
    use ctsim_scenario::conntrack::{query_during, DuringOutcome};
    let prepared = match ctsim_scenario::run::prepare(scenario, source, &RunOptions::default()) {
        Ok(p) => p,
        Err(r) => return bad(&r),
    };
    match query_during(prepared, node, at, filter, q, extended) {
        Ok(DuringOutcome::Stopped(d)) => {
            out(&d.stdout);
            eprintln!(
                "ctsim: stopped `{}` at {}s on {node}, at the end of {}, just before conntrack confirms it",
                d.packet, d.at, d.hook
            );
            eprint!("{}", d.stderr);
            ExitCode::SUCCESS
        }
        Ok(DuringOutcome::NoMatch { end }) => {
            eprintln!(
                "error: no packet matching `{filter}` reached conntrack's confirmation on {node} \
                 between {at}s and the end of the run at {end}s"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn linux_diff(file: &std::path::Path, router: Option<String>, seed: Option<u64>) -> ExitCode {
    use ctsim_scenario::linux_diff::{self, DiffError, DiffOptions};
    let (scenario, source) = match load(file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match linux_diff::linux_diff(&scenario, &source, &DiffOptions { router, seed }) {
        Ok(d) => {
            out(&d.render());
            ExitCode::from(u8::from(!d.agrees()))
        }
        Err(DiffError::Input(r)) => bad(&r),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            seed,
            until,
            pcap,
            json,
            quiet,
            walk,
            timing,
        } => {
            let (scenario, source) = match load(&file) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let opts = RunOptions {
                seed,
                until: until.map(ctsim_scenario::lower::instant),
                timeline: !quiet,
                capture: pcap.is_some(),
            };
            let prepare_started = std::time::Instant::now();
            let prepared = match ctsim_scenario::run::prepare(&scenario, &source, &opts) {
                Ok(p) => p,
                Err(r) => return bad(&r),
            };
            let run_started = std::time::Instant::now();
            let result = prepared.execute();
            if timing {
                let (build, wall) = (run_started - prepare_started, run_started.elapsed());
                let wall = wall.as_secs_f64();
                let events = result.sim.events();
                eprintln!(
                    "build {:.3}s; run {wall:.3}s, {events} events, {:.0} events/s",
                    build.as_secs_f64(),
                    events as f64 / wall
                );
                for line in ctsim_scenario::run::router_rates(&result, wall) {
                    eprintln!("{line}");
                }
            }
            if json {
                out(&report::json_lines(&result));
            } else {
                let detail = report::Detail::from_flags(quiet, walk);
                out(&report::text(&result, detail));
            }
            if let Some(dir) = pcap {
                if let Err(e) = result.write_pcaps(&dir) {
                    eprintln!("error: writing pcap files into {}: {e}", dir.display());
                    return ExitCode::from(BAD_INPUT);
                }
            }
            ExitCode::from(u8::from(result.failed()))
        }
        Command::Conntrack {
            file,
            node,
            at,
            list,
            output,
            stats,
            count,
            events,
            during,
        } => conntrack(&file, &node, at, list, output, stats, count, events, during),
        Command::Ruleset {
            file,
            node,
            at,
            table,
            list,
            exact,
            ..
        } => ruleset(&file, &node, at, table.as_deref(), list, exact),
        Command::Trace {
            file,
            packet,
            nth,
            seed,
        } => trace(&file, &packet, nth, seed),
        Command::LinuxDiff { file, router, seed } => linux_diff(&file, router, seed),
        Command::Check { files } => {
            let mut code = ExitCode::SUCCESS;
            for file in files {
                match load(&file) {
                    Ok(_) => out(&format!("{}: ok\n", file.display())),
                    Err(c) => code = c,
                }
            }
            code
        }
        Command::Schema => {
            let schema = ctsim_scenario::model::json_schema();
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            ));
            ExitCode::SUCCESS
        }
        Command::Dumbbell {
            flows,
            packets,
            conntrack,
        } => {
            out(&ctsim_scenario::generate::dumbbell(
                flows, packets, conntrack,
            ));
            ExitCode::SUCCESS
        }
        Command::Graph { file } => match load(&file) {
            Ok((s, _)) => {
                out(&ctsim_scenario::graph::dot(&s));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}
