//! Running a scenario: lower it, drive the engine to each check's instant,
//! judge the checks there, and collect what the report shows.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use ctsim_engine::{AppOutcome, DropReason, Instant, LinkStats, Place, Sim, What};

use crate::diag::{Report, Source};
use crate::lower::{self, Lowered};
use crate::model::{self, CheckKind, CountRange, Scenario};
use crate::report::{self, Row};
use ctsim_engine::router::netfilter::TableKind;

/// Runs without `until` stop when no event is left, or at this cap.
pub const RUN_CAP: Instant = Instant::from_nanos(3_600 * 1_000_000_000);

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Replaces the scenario's seed.
    pub seed: Option<u64>,
    /// Replaces the scenario's end time.
    pub until: Option<Instant>,
    /// Keep the per-packet timeline (checks on packets turn it on anyway).
    pub timeline: bool,
    /// Capture every link, for pcap files.
    pub capture: bool,
}

/// A check's verdict, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The check as the user wrote it, e.g. `link wan dropped (loss) = 2`.
    pub what: String,
    pub passed: bool,
    /// What was found, and what was expected when it differs.
    pub detail: String,
}

/// A link's counters with its ends' node names.
pub struct LinkReport {
    pub name: String,
    pub ends: [String; 2],
    pub stats: [LinkStats; 2],
}

/// Everything a finished run reports.
pub struct RunOutput {
    pub name: String,
    pub seed: u64,
    pub end: Instant,
    pub end_reason: &'static str,
    pub rows: Vec<Row>,
    pub apps: Vec<AppOutcome>,
    pub links: Vec<LinkReport>,
    pub checks: Vec<CheckResult>,
    pub sim: Sim,
}

impl RunOutput {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| !c.passed)
    }

    /// Writes `<link>.pcap` into `dir` for every link (needs `capture`).
    pub fn write_pcaps(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for l in self.sim.links() {
            let file = std::fs::File::create(dir.join(format!("{}.pcap", l.name)))?;
            ctsim_engine::pcap::write_link(l, std::io::BufWriter::new(file))
                .map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// Loads and validates a scenario file's text.
pub fn load(name: &str, text: &str) -> Result<(Scenario, Arc<Source>), Report> {
    load_source(Arc::new(Source::new(name, text)))
}

/// Loads and validates a scenario file's bytes (invalid UTF-8 is reported).
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<(Scenario, Arc<Source>), Report> {
    load_source(crate::load::source_from_bytes(name, bytes)?)
}

fn load_source(source: Arc<Source>) -> Result<(Scenario, Arc<Source>), Report> {
    let scenario = crate::load::load_source(source.clone())?;
    // Packet literals, filters and sysctls are parsed by lowering: report
    // their errors now, before anything runs.
    lower::check(&scenario, &source)?;
    Ok((scenario, source))
}

/// For `--timing`: each router's forwarded packets per second of wall time.
pub fn router_rates(out: &RunOutput, wall_seconds: f64) -> Vec<String> {
    (0..out.sim.node_count())
        .map(|i| ctsim_engine::NodeId(i as u32))
        .filter_map(|id| {
            let r = out
                .sim
                .node(id)
                .as_any()
                .downcast_ref::<ctsim_engine::router::Router>()?;
            let n = r.stats.forwarded;
            Some(format!(
                "router {}: forwarded {n} packets, {:.0} per second of wall time",
                out.sim.node_name(id),
                n as f64 / wall_seconds
            ))
        })
        .collect()
}

/// Lowers and runs `s`. Errors are input errors found while lowering (bad
/// packet literals or filters); failed checks are in the output.
pub fn run(s: &Scenario, source: &Arc<Source>, opts: &RunOptions) -> Result<RunOutput, Report> {
    Ok(prepare(s, source, opts)?.execute())
}

/// A scenario lowered and built, ready to run (`--timing` measures the two
/// steps apart).
pub struct Prepared<'a> {
    scenario: &'a Scenario,
    opts: RunOptions,
    seed: u64,
    sim: Sim,
    filters: std::collections::BTreeMap<usize, ctsim_packet::Filter>,
}

/// Lowers and builds `s`; errors are bad packet literals or filters.
pub fn prepare<'a>(
    s: &'a Scenario,
    source: &Arc<Source>,
    opts: &RunOptions,
) -> Result<Prepared<'a>, Report> {
    let seed = opts.seed.unwrap_or(s.seed);
    let needs_records = s.checks.iter().any(|c| {
        matches!(
            c.kind,
            CheckKind::Received { .. } | CheckKind::Seen { .. } | CheckKind::CtState { .. }
        )
    });
    let lowered = lower::lower(s, source, seed, opts.timeline || needs_records)?;
    let Lowered {
        builder, filters, ..
    } = lowered;
    let mut sim = builder.build();
    if opts.capture {
        sim.capture_links();
    }
    Ok(Prepared {
        scenario: s,
        opts: opts.clone(),
        seed,
        sim,
        filters,
    })
}

impl Prepared<'_> {
    /// Runs every event due at or before `at` and hands the run over there
    /// (for `ctsim conntrack --at`); checks are not judged.
    pub fn run_to(self, at: Instant) -> Sim {
        let mut sim = self.sim;
        sim.run_until(at);
        sim
    }

    /// For `ctsim conntrack --during`: lets `arm` arm a probe on the run,
    /// runs every event before `from`, then one instant at a time until
    /// `fired` says the probe fired or the run is over (at its end time;
    /// without one, when only background wake-ups are left). Gives the run,
    /// standing at the instant it stopped, and the instant the run ends at
    /// (or ended at, when the probe did not fire). Checks are not judged.
    pub fn run_probe<E>(
        self,
        from: Instant,
        arm: impl FnOnce(&mut Sim) -> Result<(), E>,
        fired: impl Fn(&Sim) -> bool,
    ) -> Result<(Sim, Instant), E> {
        let until = self.opts.until.or(self
            .scenario
            .until
            .as_ref()
            .map(|u| lower::instant(u.value)));
        let end = until.unwrap_or(RUN_CAP);
        let mut sim = self.sim;
        arm(&mut sim)?;
        // Also starts the nodes (time 0 is run only when `from` is 0).
        sim.run_until(Instant::from_nanos(from.nanos().saturating_sub(1)).min(end));
        while !fired(&sim) {
            if until.is_none() && sim.idle() {
                break;
            }
            match sim.next_event() {
                Some(t) if t <= end => sim.run_until(t),
                _ => break,
            }
        }
        let ended = until.unwrap_or_else(|| sim.now());
        Ok((sim, ended))
    }

    /// The run being prepared (to tap a node before it starts).
    pub fn sim_mut(&mut self) -> &mut Sim {
        &mut self.sim
    }

    /// Runs to the end, judging each check at its instant.
    pub fn execute(self) -> RunOutput {
        self.execute_observing(|_, _| {})
    }

    /// Like [`execute`](Self::execute), calling `observe` with the run
    /// standing at each check instant (once per instant, in time order) and
    /// at the end (`ctsim linux-diff` reads the router's tables there).
    pub fn execute_observing(self, mut observe: impl FnMut(&Sim, Instant)) -> RunOutput {
        let Prepared {
            scenario: s,
            opts,
            seed,
            mut sim,
            filters,
        } = self;
        let until = opts
            .until
            .or(s.until.as_ref().map(|u| lower::instant(u.value)));
        let end = until.unwrap_or(RUN_CAP);

        // Checks with an instant are judged when the run reaches it.
        let mut order: Vec<usize> = (0..s.checks.len()).collect();
        let instant_of = |i: usize| {
            s.checks[i]
                .at
                .as_ref()
                .map_or(Instant::MAX, |a| lower::instant(a.value))
        };
        order.sort_by_key(|&i| instant_of(i));
        let mut results: Vec<Option<CheckResult>> = vec![None; s.checks.len()];
        // The latest instant a check made the run reach (conntrack timers
        // may have run up to it even when nothing else happened).
        let mut reached = Instant::ZERO;
        let mut observed = None;
        for &i in &order {
            let at = instant_of(i);
            if at != Instant::MAX {
                sim.run_until(at.min(end));
                reached = reached.max(at.min(end));
                if observed != Some(at.min(end)) {
                    observed = Some(at.min(end));
                    observe(&sim, at.min(end));
                }
                results[i] = Some(judge(&sim, s, i, at, &filters));
            }
        }
        match until {
            Some(end) => sim.run_until(end),
            // Conntrack timers alone do not keep a run going.
            None => sim.run_while_busy(end),
        }
        let (end, end_reason) = match until {
            Some(u) => (u, "until reached"),
            // The last event may have been a host's timer that sent
            // nothing (smoltcp's TIME_WAIT): the run still went on to it,
            // and conntrack's timers with it, so that is where it ended.
            None if sim.idle() => (sim.now().max(reached), "no events left"),
            None => (sim.now(), "stopped at the 1-hour cap with events pending"),
        };
        if observed != Some(end) {
            observe(&sim, end);
        }
        for &i in &order {
            if results[i].is_none() {
                results[i] = Some(judge(&sim, s, i, end, &filters));
            }
        }
        let rows = if opts.timeline {
            sim.records().iter().map(|r| report::row(&sim, r)).collect()
        } else {
            Vec::new()
        };
        let links = sim
            .links()
            .iter()
            .map(|l| LinkReport {
                name: l.name.clone(),
                ends: l.ends.map(|(n, _)| sim.node_name(n).to_string()),
                stats: l.stats.clone(),
            })
            .collect();
        RunOutput {
            name: s.name.value.clone(),
            seed,
            end,
            end_reason,
            rows,
            apps: sim.outcomes(),
            links,
            checks: results.into_iter().flatten().collect(),
            sim,
        }
    }
}

fn count_words(c: &CountRange) -> String {
    match c.max {
        Some(max) if max == c.min => format!("= {max}"),
        Some(max) => format!("in {}..={max}", c.min),
        None => format!(">= {}", c.min),
    }
}

fn engine_reason(r: model::DropReason) -> DropReason {
    match r {
        model::DropReason::Loss => DropReason::Loss,
        model::DropReason::Queue => DropReason::QueueFull,
        model::DropReason::Mtu => DropReason::Mtu,
        model::DropReason::Down => DropReason::LinkDown,
    }
}

/// Judges check `i` against the run as it stands at `at`.
fn judge(
    sim: &Sim,
    s: &Scenario,
    i: usize,
    at: Instant,
    filters: &std::collections::BTreeMap<usize, ctsim_packet::Filter>,
) -> CheckResult {
    let check = &s.checks[i];
    let when = check
        .at
        .as_ref()
        .map(|a| format!(" at {}", lower::instant(a.value)))
        .unwrap_or_default();
    let count_at = |node: &str, pred: &dyn Fn(What) -> bool| -> u64 {
        let Some(id) = sim.node_id(node) else {
            return 0;
        };
        sim.records()
            .iter()
            .filter(|r| r.time <= at)
            .filter(|r| matches!(r.place, Place::Node { node, .. } if node == id))
            .filter(|r| pred(r.what))
            .filter(|r| filters.get(&i).is_none_or(|f| r.matches(f)))
            .count() as u64
    };
    let counted = |what: String, n: u64, range: &CountRange| CheckResult {
        passed: range.contains(n),
        detail: format!("{n} (expected {})", count_words(range)),
        what,
    };
    match &check.kind {
        CheckKind::App {
            app,
            bytes_sent,
            bytes_received,
            state,
            replies,
            error,
        } => {
            let names = lower::app_names(s);
            let outcome = names
                .iter()
                .position(|n| *n == app.value)
                .and_then(|_| sim.outcomes().into_iter().find(|o| o.name == app.value));
            let what = format!("app {}{when}", app.value);
            let Some(o) = outcome else {
                return CheckResult {
                    what,
                    passed: false,
                    detail: "no such app ran".into(),
                };
            };
            let mut wrong = Vec::new();
            let mut expect = |field: &str, got: String, want: Option<String>| {
                if let Some(want) = want.filter(|w| *w != got) {
                    wrong.push(format!("{field} {got} (expected {want})"));
                }
            };
            expect(
                "state",
                o.state.clone(),
                state.map(|s| s.name().to_string()),
            );
            expect(
                "bytes-sent",
                o.bytes_sent.to_string(),
                bytes_sent.map(|b| b.to_string()),
            );
            expect(
                "bytes-received",
                o.bytes_received.to_string(),
                bytes_received.map(|b| b.to_string()),
            );
            expect(
                "replies",
                o.replies.to_string(),
                replies.map(|b| b.to_string()),
            );
            if let Some(e) = error {
                let got = o.error.clone().unwrap_or_default();
                if !got.contains(e.as_str()) {
                    wrong.push(format!("error {got:?} (expected it to contain {e:?})"));
                }
            }
            let mut detail = format!(
                "{}, sent {} B, received {} B",
                o.state, o.bytes_sent, o.bytes_received
            );
            if o.requests > 0 {
                let (replies, requests) = (
                    report::counted(o.replies, "reply"),
                    report::counted(o.requests, "request"),
                );
                let _ = write!(detail, ", {replies} to {requests}");
            }
            if !wrong.is_empty() {
                detail = wrong.join("; ");
            }
            CheckResult {
                what,
                passed: wrong.is_empty(),
                detail,
            }
        }
        CheckKind::Received { on, filter, count } => {
            let f = filter
                .as_ref()
                .map(|f| format!(" {:?}", f.value))
                .unwrap_or_default();
            let n = count_at(&on.value, &|w| w == What::Received);
            counted(format!("{} received{f}{when}", on.value), n, count)
        }
        CheckKind::Seen { on, filter, count } => {
            let n = count_at(&on.value, &|_| true);
            counted(
                format!("{} saw {:?}{when}", on.value, filter.value),
                n,
                count,
            )
        }
        CheckKind::Dropped {
            link,
            count,
            reason,
        } => {
            let stats = sim
                .links()
                .iter()
                .find(|l| l.name == link.value)
                .map(|l| l.stats.clone())
                .unwrap_or_default();
            let n: u64 = stats
                .iter()
                .map(|st| reason.map_or(st.total_drops(), |r| st.drops(engine_reason(r))))
                .sum();
            let why = reason
                .map(|r| format!(" ({})", engine_reason(r).keyword()))
                .unwrap_or_default();
            CheckResult {
                what: format!("link {} dropped{why}{when}", link.value),
                passed: n == *count,
                detail: format!("{n} (expected {count})"),
            }
        }
        CheckKind::Table { on, table, assert } => {
            let name = crate::conntrack::table_name(*table);
            let what = format!("{} {name} table", on.value);
            match crate::conntrack::router(sim, &on.value) {
                Ok((_, t)) => {
                    let lines = crate::conntrack::lines(t, *table, at);
                    lines_check(&what, "the table", &lines, assert, &when)
                }
                Err(e) => CheckResult {
                    what: format!("{what}{when}"),
                    passed: false,
                    detail: e.to_string(),
                },
            }
        }
        CheckKind::Rules { on, table, assert } => {
            let what = format!("{} {} rules", on.value, table.value);
            let kind = TableKind::from_name(&table.value);
            match (crate::netfilter::router(sim, &on.value), kind) {
                (Ok(r), Some(kind)) => {
                    let lines = crate::netfilter::table_lines(r.ruleset(), kind);
                    lines_check(&what, "iptables-save -c", &lines, assert, &when)
                }
                (Err(e), _) => CheckResult {
                    what: format!("{what}{when}"),
                    passed: false,
                    detail: e,
                },
                (_, None) => CheckResult {
                    what: format!("{what}{when}"),
                    passed: false,
                    detail: "no such table".into(),
                },
            }
        }
        CheckKind::Verdict {
            on,
            filter,
            verdict,
            all,
        } => {
            let what = format!(
                "{} verdict on {}{:?} is {}{when}",
                on.value,
                if *all { "every " } else { "" },
                filter.value,
                verdict.name()
            );
            let got = filters
                .get(&i)
                .map(|f| crate::netfilter::verdicts(sim, &on.value, at, f))
                .unwrap_or_default();
            let want = verdict.name();
            states_check(what, &got, want, *all, |s| s == want)
        }
        CheckKind::Log { on, pattern, count } => {
            let lines = crate::netfilter::log_lines(sim, &on.value, at);
            let n = lines
                .iter()
                .filter(|l| crate::conntrack::matches(&pattern.value, l))
                .count() as u64;
            counted(
                format!("{} logged {:?}{when}", on.value, pattern.value),
                n,
                count,
            )
        }
        CheckKind::CtState {
            on,
            filter,
            state,
            all,
        } => {
            let what = format!(
                "{} ctstate of {}{:?} is {}{when}",
                on.value,
                if *all { "every " } else { "" },
                filter.value,
                state.name()
            );
            let states = filters
                .get(&i)
                .map(|f| crate::conntrack::packet_states(sim, &on.value, at, f))
                .unwrap_or_default();
            let want = state.name();
            states_check(what, &states, want, *all, |s| {
                s == want || s.starts_with(&format!("{want}:"))
            })
        }
        CheckKind::Stat { on, stat, value } => {
            let name = crate::conntrack::stat_name(*stat);
            let what = format!("{} conntrack -S {name}{when}", on.value);
            match crate::conntrack::router(sim, &on.value) {
                Ok((_, t)) => {
                    let n = crate::conntrack::stat(t.stats(), *stat);
                    CheckResult {
                        what,
                        passed: n == *value,
                        detail: format!("{n} (expected {value})"),
                    }
                }
                Err(e) => CheckResult {
                    what,
                    passed: false,
                    detail: e.to_string(),
                },
            }
        }
    }
}

/// A check on the lines of a listing (a conntrack table, an iptables
/// table): one contains the pattern, none does, or how many there are.
fn lines_check(
    what: &str,
    source: &str,
    lines: &[String],
    assert: &model::TableAssert,
    when: &str,
) -> CheckResult {
    let listing = || {
        if lines.is_empty() {
            format!("{source} is empty")
        } else {
            format!("{source} holds:\n      {}", lines.join("\n      "))
        }
    };
    let find = |p: &str| {
        lines
            .iter()
            .find(|l| crate::conntrack::matches(p, l))
            .cloned()
    };
    match assert {
        model::TableAssert::Contains(p) => {
            let found = find(&p.value);
            CheckResult {
                what: format!("{what} contains {:?}{when}", p.value),
                passed: found.is_some(),
                detail: found.unwrap_or_else(listing),
            }
        }
        model::TableAssert::DoesNotContain(p) => {
            let found = find(&p.value);
            CheckResult {
                what: format!("{what} does not contain {:?}{when}", p.value),
                passed: found.is_none(),
                detail: found.map_or_else(
                    || format!("no line matches ({})", counted_lines(lines.len())),
                    |l| format!("found: {l}"),
                ),
            }
        }
        model::TableAssert::Count(range) => {
            let n = lines.len() as u64;
            let passed = range.contains(n);
            let mut detail = format!(
                "{} (expected {})",
                counted_lines(lines.len()),
                count_words(range)
            );
            if !passed {
                let _ = write!(detail, "; {}", listing());
            }
            CheckResult {
                what: format!("{what}{when}"),
                passed,
                detail,
            }
        }
    }
}

/// A check on what each matching packet had (a ctstate, a verdict): the
/// first one, or `all` of them, must satisfy `is`.
fn states_check(
    what: String,
    states: &[String],
    want: &str,
    all: bool,
    is: impl Fn(&String) -> bool,
) -> CheckResult {
    let (passed, detail) = match states.first() {
        None => (false, "no packet matched at this router".to_string()),
        Some(first) if !all => (is(first), first.clone()),
        Some(_) => {
            let bad: Vec<&String> = states.iter().filter(|s| !is(s)).collect();
            let packets = report::counted(states.len() as u64, "packet");
            match bad.first() {
                None => (true, format!("{want} of {packets}")),
                Some(b) => (false, format!("{} of {packets} were {b}", bad.len())),
            }
        }
    };
    CheckResult {
        what,
        passed,
        detail,
    }
}

fn counted_lines(n: usize) -> String {
    report::counted(n as u64, "line")
}
