//! A router's netfilter as a user looks at it: its ruleset with counters
//! (`ctsim ruleset`, the `rules:` check), the verdicts packets got (the
//! `verdict:` check), its kernel log (the `log:` check) and one packet's
//! walk (`ctsim trace`).

use ctsim_engine::router::netfilter::{Ruleset, SaveHeader, TableKind};
use ctsim_engine::router::Router;
use ctsim_engine::{DropReason, Instant, Place, Record, Sim, What};

/// The router named `node`, or why there is none.
pub fn router<'a>(sim: &'a Sim, node: &str) -> Result<&'a Router, String> {
    let id = sim
        .node_id(node)
        .ok_or_else(|| format!("unknown node `{node}`"))?;
    sim.node(id)
        .as_any()
        .downcast_ref::<Router>()
        .ok_or_else(|| format!("`{node}` is a host; rulesets run on routers"))
}

/// The `iptables-save -c` header at simulated instant `at` (the run
/// starts at the Unix epoch).
pub fn header(at: Instant) -> SaveHeader {
    SaveHeader::at_secs(at.nanos() / 1_000_000_000)
}

/// The lines of one table in `iptables-save -c` (chain lines and rules,
/// without the `*table`, `COMMIT` and comment lines). A router without the
/// table has none.
pub fn table_lines(rules: Option<&Ruleset>, table: TableKind) -> Vec<String> {
    let Some(rs) = rules.filter(|rs| rs.table(table).present) else {
        return Vec::new();
    };
    let text = rs.save(&SaveHeader::at_secs(0));
    let mut lines = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if let Some(name) = l.strip_prefix('*') {
            inside = name == table.name();
        } else if l == "COMMIT" {
            inside = false;
        } else if inside && !l.starts_with('#') {
            lines.push(l.to_string());
        }
    }
    lines
}

/// The netfilter verdict of each packet record at `node` matching
/// `filter` up to `at`: `ACCEPT`, `DROP`, or `dropped (reason)` for a
/// packet the router dropped for another reason (TTL, no route).
pub fn verdicts(sim: &Sim, node: &str, at: Instant, filter: &ctsim_packet::Filter) -> Vec<String> {
    packet_records(sim, node, at)
        .filter(|r| r.matches(filter))
        .map(|r| match r.what {
            What::Dropped(DropReason::Netfilter) => "DROP".to_string(),
            What::Dropped(reason) => format!("dropped ({reason})"),
            _ => "ACCEPT".to_string(),
        })
        .collect()
}

/// The kernel log lines of `node` up to `at` (LOG and TRACE lines,
/// conntrack's messages).
pub fn log_lines<'a>(sim: &'a Sim, node: &str, at: Instant) -> Vec<&'a str> {
    let Some(id) = sim.node_id(node) else {
        return Vec::new();
    };
    sim.records()
        .iter()
        .filter(|r| r.time <= at && r.what == What::Kernel)
        .filter(|r| matches!(r.place, Place::Inside { node } if node == id))
        .filter_map(|r| r.text.as_deref())
        .collect()
}

/// The records of packets at `node` (not walk lines, events or messages).
fn packet_records<'a>(sim: &'a Sim, node: &str, at: Instant) -> impl Iterator<Item = &'a Record> {
    let id = sim.node_id(node);
    sim.records()
        .iter()
        .filter(move |r| r.time <= at && r.text.is_none())
        .filter(move |r| matches!(r.place, Place::Node { node, .. } if Some(node) == id))
}
