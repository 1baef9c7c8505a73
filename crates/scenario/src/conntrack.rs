//! A router's conntrack as a user looks at it: `ctsim conntrack` (the
//! table, statistics and events at an instant, printed as conntrack-tools
//! 1.4.7 prints them) and the checks on tables, packet states and counters.

use ctsim_engine::router::conntrack::{self as ct, Conntrack, Filter, FormatOpts, Stats};
use ctsim_engine::router::{Probe, Router};
use ctsim_engine::{Instant, Place, Sim};

use crate::model::{CtStat, CtTable};
use crate::run::Prepared;

/// What `ctsim conntrack` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `-L [table]`.
    List(CtTable),
    /// `-S`.
    Stats,
    /// `-C`.
    Count,
    /// `-E`: every event up to the instant.
    Events,
    /// `-E expect`: every expectation event up to the instant.
    ExpectEvents,
}

/// Why a query cannot be answered (bad input: exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    UnknownNode(String),
    NotARouter(String),
    ConntrackOff(String),
    /// `-E` with `--during`: events are read between packets.
    EventsDuring,
    /// A `--during` filter that does not parse: (filter, error).
    BadFilter(String, String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::UnknownNode(n) => write!(f, "unknown node `{n}`"),
            QueryError::NotARouter(n) => {
                write!(f, "`{n}` is a host; conntrack runs on routers")
            }
            QueryError::ConntrackOff(n) => {
                write!(f, "router `{n}` tracks no connections (`conntrack: off`)")
            }
            QueryError::EventsDuring => write!(
                f,
                "-E lists the events up to an instant and cannot stop inside a packet's walk: \
                 give -L, -S or -C with --during"
            ),
            QueryError::BadFilter(text, e) => write!(f, "bad --during filter `{text}`: {e}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// The router named `node` and its table.
pub fn router<'a>(sim: &'a Sim, node: &str) -> Result<(&'a Router, &'a Conntrack), QueryError> {
    let id = sim
        .node_id(node)
        .ok_or_else(|| QueryError::UnknownNode(node.to_string()))?;
    let r = sim
        .node(id)
        .as_any()
        .downcast_ref::<Router>()
        .ok_or_else(|| QueryError::NotARouter(node.to_string()))?;
    let table = r
        .conntrack()
        .ok_or_else(|| QueryError::ConntrackOff(node.to_string()))?;
    Ok((r, table))
}

fn now(at: Instant) -> ct::time::Instant {
    ct::time::Instant(at.nanos())
}

fn table_of(t: CtTable) -> ct::Table {
    match t {
        CtTable::Conntrack => ct::Table::Conntrack,
        CtTable::Expect => ct::Table::Expect,
        CtTable::Dying => ct::Table::Dying,
        CtTable::Unconfirmed => ct::Table::Unconfirmed,
    }
}

/// (stdout, stderr) of `conntrack` run on router `node` at `at` (the run
/// must stand at `at`).
pub fn query(
    sim: &Sim,
    node: &str,
    at: Instant,
    q: Query,
    extended: bool,
) -> Result<(String, String), QueryError> {
    let (r, table) = router(sim, node)?;
    let opts = format_opts(extended);
    Ok(match q {
        Query::Events => {
            let mut out = String::new();
            let mut n = 0;
            for ev in r.conntrack_events().iter().filter(|e| e.at <= now(at)) {
                out.push_str(&ev.line(opts));
                out.push('\n');
                n += 1;
            }
            let err =
                format!("conntrack v1.4.7 (conntrack-tools): {n} flow events have been shown.\n");
            (out, err)
        }
        Query::ExpectEvents => {
            let mut out = String::new();
            let mut n = 0;
            for ev in r.expect_events().iter().filter(|e| e.at <= now(at)) {
                out.push_str(&ev.line());
                out.push('\n');
                n += 1;
            }
            let err = format!(
                "conntrack v1.4.7 (conntrack-tools): {n} expectation events have been shown.\n"
            );
            (out, err)
        }
        _ => read_table(table, q, opts, now(at)),
    })
}

fn format_opts(extended: bool) -> FormatOpts {
    FormatOpts {
        extended,
        id: false,
    }
}

/// -L, -S or -C on `table` at `now` (`-E` reads the router's event log).
fn read_table(
    table: &Conntrack,
    q: Query,
    opts: FormatOpts,
    now: ct::time::Instant,
) -> (String, String) {
    match q {
        Query::List(t) => table.conntrack_l(table_of(t), &Filter::default(), opts, now),
        Query::Stats => (table.stats().conntrack_s(), String::new()),
        Query::Count => (table.conntrack_c(), String::new()),
        Query::Events | Query::ExpectEvents => (String::new(), String::new()),
    }
}

/// Where `ctsim conntrack --during` stopped, and what it printed there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct During {
    /// The instant of the packet's walk.
    pub at: Instant,
    /// `POSTROUTING` or `INPUT`: the hook whose end (conntrack's
    /// confirmation) the packet was stopped at.
    pub hook: &'static str,
    /// The packet, in the literal notation.
    pub packet: String,
    pub stdout: String,
    pub stderr: String,
}

/// What came of `ctsim conntrack --during`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DuringOutcome {
    /// A packet matched and the query was answered inside its walk.
    Stopped(During),
    /// No matching packet reached confirmation before the run ended at
    /// this instant.
    NoMatch { end: Instant },
}

/// `ctsim conntrack --at AT --during FILTER`: arms a probe on router
/// `node` and runs: the first packet at or after `at` matching `filter` (a
/// [`ctsim_packet::Filter`] expression)
/// that reaches conntrack's confirmation (the end of POSTROUTING or INPUT)
/// is stopped just before it, and `q` is answered from the table there.
/// `-E` cannot be asked this way.
pub fn query_during(
    prepared: Prepared<'_>,
    node: &str,
    at: Instant,
    filter: &str,
    q: Query,
    extended: bool,
) -> Result<DuringOutcome, QueryError> {
    if matches!(q, Query::Events | Query::ExpectEvents) {
        return Err(QueryError::EventsDuring);
    }
    let filter = ctsim_packet::Filter::parse(filter)
        .map_err(|e| QueryError::BadFilter(filter.to_string(), e.to_string()))?;
    let opts = format_opts(extended);
    let arm = |sim: &mut Sim| {
        router(sim, node)?;
        let id = sim.node_id(node).expect("checked by router()");
        let r = sim.node_mut(id).as_any_mut().downcast_mut::<Router>();
        r.expect("checked by router()").arm_probe(Probe {
            from: at,
            filter,
            look: Box::new(move |table, now| read_table(table, q, opts, now)),
        });
        Ok(())
    };
    let probed = |sim: &Sim| {
        router(sim, node)
            .ok()
            .and_then(|(r, _)| r.probed())
            .cloned()
    };
    let (sim, end) = prepared.run_probe(at, arm, |sim| probed(sim).is_some())?;
    Ok(match probed(&sim) {
        Some(p) => DuringOutcome::Stopped(During {
            at: p.at,
            hook: p.hook.name(),
            packet: ctsim_packet::show(&p.packet),
            stdout: p.out.0,
            stderr: p.out.1,
        }),
        None => DuringOutcome::NoMatch { end },
    })
}

/// The lines `conntrack -L TABLE` prints at `at`.
pub fn lines(table: &Conntrack, t: CtTable, at: Instant) -> Vec<String> {
    let (out, _) = table.conntrack_l(
        table_of(t),
        &Filter::default(),
        FormatOpts::default(),
        now(at),
    );
    out.lines().map(str::to_string).collect()
}

/// Whether `line` contains `pattern`, where `*` in the pattern matches any
/// run of characters.
pub fn matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(start) = line.find(first) else {
        return false;
    };
    let mut rest = &line[start + first.len()..];
    for p in parts {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// A `conntrack -S` counter by its name.
pub fn stat(s: &Stats, which: CtStat) -> u64 {
    u64::from(match which {
        CtStat::Found => s.found,
        CtStat::Invalid => s.invalid,
        CtStat::Insert => s.insert,
        CtStat::InsertFailed => s.insert_failed,
        CtStat::Drop => s.drop,
        CtStat::EarlyDrop => s.early_drop,
        CtStat::Error => s.error,
        CtStat::SearchRestart => s.search_restart,
        CtStat::ClashResolve => s.clash_resolve,
        CtStat::Chaintoolong => s.chaintoolong,
        CtStat::ExpectNew => s.expect_new,
        CtStat::ExpectCreate => s.expect_create,
        CtStat::ExpectDelete => s.expect_delete,
    })
}

/// The name `conntrack -S` prints for a counter.
pub fn stat_name(which: CtStat) -> &'static str {
    match which {
        CtStat::Found => "found",
        CtStat::Invalid => "invalid",
        CtStat::Insert => "insert",
        CtStat::InsertFailed => "insert_failed",
        CtStat::Drop => "drop",
        CtStat::EarlyDrop => "early_drop",
        CtStat::Error => "error",
        CtStat::SearchRestart => "search_restart",
        CtStat::ClashResolve => "clash_resolve",
        CtStat::Chaintoolong => "chaintoolong",
        CtStat::ExpectNew => "expect_new",
        CtStat::ExpectCreate => "expect_create",
        CtStat::ExpectDelete => "expect_delete",
    }
}

/// The table's name as `conntrack -L` takes it.
pub fn table_name(t: CtTable) -> &'static str {
    match t {
        CtTable::Conntrack => "conntrack",
        CtTable::Expect => "expect",
        CtTable::Dying => "dying",
        CtTable::Unconfirmed => "unconfirmed",
    }
}

/// The conntrack states (`NEW`, `INVALID: reason`, …) that packets
/// matching `filter` had at router `node` up to `at`, in order.
pub fn packet_states(
    sim: &Sim,
    node: &str,
    at: Instant,
    filter: &ctsim_packet::Filter,
) -> Vec<String> {
    let Some(id) = sim.node_id(node) else {
        return Vec::new();
    };
    sim.records()
        .iter()
        .filter(|r| r.time <= at)
        .filter(|r| matches!(r.place, Place::Node { node, .. } if node == id))
        .filter(|r| r.matches(filter))
        .map(|r| match r.ct {
            Some(n) => n.to_string().trim_matches(['[', ']']).to_string(),
            None => "untracked by this router".to_string(),
        })
        .collect()
}
