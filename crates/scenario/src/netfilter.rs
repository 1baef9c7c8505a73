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
    let Some(rs) = rules else {
        return Vec::new();
    };
    rs.save_table(table, &SaveHeader::at_secs(0))
        .lines()
        .filter(|l| !l.starts_with(['#', '*']) && *l != "COMMIT")
        .map(str::to_string)
        .collect()
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

/// How `ctsim ruleset` prints a router's ruleset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RulesetView {
    /// `iptables-save -c` (one table with `Some`).
    Save(Option<TableKind>),
    /// `iptables -t TABLE -L -v -n`, with `-x` exact counters when `true`.
    List(TableKind, bool),
}

/// What `ctsim ruleset` prints for router `node` at `at`. A table the
/// router does not have prints as iptables prints it then: nothing for
/// `iptables-save`, the empty built-in chains for `-L`.
pub fn show_ruleset(
    sim: &Sim,
    node: &str,
    at: Instant,
    view: RulesetView,
) -> Result<String, String> {
    let r = router(sim, node)?;
    let empty = Ruleset::new();
    let rs = r.ruleset().unwrap_or(&empty);
    Ok(match view {
        RulesetView::Save(None) => rs.save(&header(at)),
        RulesetView::Save(Some(t)) => rs.save_table(t, &header(at)),
        RulesetView::List(t, false) => rs.list(t),
        RulesetView::List(t, true) => rs.list_exact(t),
    })
}

/// `ctsim trace`: the walk of one packet through every router it crossed,
/// set out on its own. `what` names a raw packet of the scenario (its
/// `name:`) or is a filter (`tcp dport 22 and tcp-flags S`); `nth` picks
/// the nth matching packet (1-based) when a filter matches several.
pub fn trace(
    sim: &Sim,
    s: &crate::model::Scenario,
    what: &str,
    nth: usize,
) -> Result<String, String> {
    let records = sim.records();
    let by_name = s
        .packets
        .iter()
        .find(|p| p.name.as_ref().is_some_and(|n| n.value == what));
    // The packet as first seen: its sender's record (by name), or the
    // nth router record the filter matches.
    let is_router = |r: &Record| match r.place {
        Place::Node { node, .. } => sim.node(node).as_any().is::<Router>(),
        _ => false,
    };
    let key: Vec<u8> = match by_name {
        Some(p) => {
            let at = crate::lower::instant(p.at);
            let from = sim.node_id(&p.from.node);
            records
                .iter()
                .find(|r| {
                    r.time == at
                        && r.what == What::Sent
                        && matches!(r.place, Place::Node { node, .. } if Some(node) == from)
                })
                .map(|r| r.packet.to_vec())
                .ok_or_else(|| format!("packet `{what}` was not sent before the run ended"))?
        }
        None => {
            let filter = ctsim_packet::Filter::parse(what).map_err(|e| {
                format!(
                    "`{what}` is neither a packet's name nor a filter: {}",
                    e.message
                )
            })?;
            records
                .iter()
                .filter(|r| is_router(r) && r.matches(&filter))
                .nth(nth.saturating_sub(1))
                .map(|r| r.before.as_deref().unwrap_or(&r.packet).to_vec())
                .ok_or_else(|| match nth {
                    1 => format!("no packet at a router matches `{what}`"),
                    n => format!("fewer than {n} packets at routers match `{what}`"),
                })?
        }
    };
    // Where it came from: the first record of a node sending it.
    let origin = records
        .iter()
        .find(|r| r.what == What::Sent && same_packet(&r.packet, &key));
    let mut out = match origin {
        Some(r) => {
            let row = crate::report::row(sim, r);
            format!("{}  {}  sent  {}\n", row.time, row.place, row.packet)
        }
        None => format!("{}\n", ctsim_packet::Literal(&key)),
    };
    let mut found = false;
    for (i, r) in records.iter().enumerate() {
        let seen = r.before.as_deref().unwrap_or(&r.packet);
        if r.text.is_some() || !is_router(r) || !same_packet(seen, &key) {
            continue;
        }
        found = true;
        let row = crate::report::row(sim, r);
        out.push_str(&format!("\n{}  {}  {}\n", row.time, row.place, row.event));
        let walk = records[i + 1..]
            .iter()
            .take_while(|w| matches!(w.what, What::Walk { .. }) && w.place == r.place);
        for w in walk {
            let (What::Walk { hook, step }, Some(text)) = (w.what, w.text.as_deref()) else {
                continue;
            };
            out.push_str(&format!("  {hook:<12} {step:<10} {text}\n"));
        }
        let how = match r.what {
            What::Dropped(_) => "dropped as",
            What::Received => "delivered as",
            _ => "leaves as",
        };
        out.push_str(&format!("  {how:<12} {:<10} {}\n", "", row.detail()));
    }
    if !found {
        return Err(format!("packet `{what}` reached no router"));
    }
    Ok(out)
}

/// Whether two datagrams are the same packet at different places: same
/// protocol, addresses and transport bytes, whatever the TTL and the
/// header checksum.
fn same_packet(a: &[u8], b: &[u8]) -> bool {
    fn l4(p: &[u8]) -> Option<&[u8]> {
        p.get(usize::from(p.first().copied().unwrap_or(0) & 0x0f) * 4..)
    }
    a.len() == b.len() && a.len() >= 20 && a[9] == b[9] && a[12..20] == b[12..20] && l4(a) == l4(b)
}
