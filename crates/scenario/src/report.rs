//! What a run prints: the timeline, the apps' outcomes, the links' counters
//! and the checks' verdicts, as aligned text or as JSON lines.

use std::fmt::Write;

use ctsim_engine::{LinkStats, Place, Record, Sim, What};
use serde_json::json;

use crate::run::{CheckResult, RunOutput};

/// One timeline line, its columns already in words.
pub struct Row {
    pub time: String,
    pub time_ns: u64,
    /// `client eth0`, `r1 lan0`, or `link wan r1>server`.
    pub place: String,
    /// `sent`, `received`, `forwarded wan0`, `dropped (loss)`; `conntrack`
    /// for a conntrack event, `kernel` for a kernel message.
    pub event: String,
    /// The packet, or the line of a conntrack event or kernel message.
    pub packet: String,
    /// At a router that tracks connections: the packet's state (`NEW`,
    /// `ESTABLISHED`, `RELATED`, `INVALID`, `UNTRACKED`).
    pub ctstate: Option<&'static str>,
    /// Why the packet is INVALID, in the kernel's words.
    pub invalid: Option<&'static str>,
    /// For a packet NAT rewrote at this router: what changed (`(src was
    /// 192.0.2.2:40000)`) and the packet as it came in.
    pub nat: Option<(String, String)>,
    /// For a line of a packet's walk: its hook and step (`PREROUTING`,
    /// `nat`); `packet` holds what happened there.
    pub walk: Option<(&'static str, &'static str)>,
}

impl Row {
    /// The last column of the text timeline: `[NEW] tcp …` for a packet at
    /// a tracking router, the line itself for events and messages.
    pub fn detail(&self) -> String {
        let mut s = match (self.ctstate, self.invalid) {
            (Some(st), Some(why)) => format!("[{st}: {why}] {}", self.packet),
            (Some(st), None) => format!("[{st}] {}", self.packet),
            _ => self.packet.clone(),
        };
        if let Some((note, _)) = &self.nat {
            s.push(' ');
            s.push_str(note);
        }
        s
    }
}

/// The words for one record.
pub fn row(sim: &Sim, r: &Record) -> Row {
    let place = match r.place {
        Place::Node { node, port } => {
            let iface = sim
                .ports(node)
                .get(usize::from(port))
                .map_or("?", |p| p.name.as_str());
            format!("{} {iface}", sim.node_name(node))
        }
        Place::Inside { node } => sim.node_name(node).to_string(),
        Place::Link { link, dir } => {
            let l = &sim.links()[link.0 as usize];
            let (from, to) = (l.ends[usize::from(dir)].0, l.ends[1 - usize::from(dir)].0);
            format!(
                "link {} {}>{}",
                l.name,
                sim.node_name(from),
                sim.node_name(to)
            )
        }
    };
    let event = match r.what {
        What::Sent => "sent".to_string(),
        What::Received => "received".to_string(),
        What::Forwarded { to } => {
            let node = match r.place {
                Place::Node { node, .. } | Place::Inside { node } => Some(node),
                Place::Link { .. } => None,
            };
            let out = node
                .and_then(|n| sim.ports(n).get(usize::from(to)))
                .map_or("?", |p| p.name.as_str());
            format!("forwarded {out}")
        }
        What::Dropped(reason) => format!("dropped ({reason})"),
        What::Conntrack => "conntrack".to_string(),
        What::Kernel => "kernel".to_string(),
        What::Command => "command".to_string(),
        What::Walk { hook, .. } => format!("  {hook}"),
    };
    let packet = match &r.text {
        Some(t) => t.to_string(),
        None => format!("{:#}", ctsim_packet::Literal(&r.packet)),
    };
    Row {
        time: r.time.to_string(),
        time_ns: r.time.nanos(),
        place,
        event,
        packet,
        ctstate: r.ct.map(|c| c.state.name()),
        invalid: r.ct.and_then(|c| c.invalid),
        nat: r.before.as_deref().map(|b| {
            (
                nat_note(b, &r.packet),
                format!("{:#}", ctsim_packet::Literal(b)),
            )
        }),
        walk: match r.what {
            What::Walk { hook, step } => Some((hook, step)),
            _ => None,
        },
    }
}

/// What NAT changed, as `(src was 192.0.2.2:40000)` / `(dst was
/// 198.51.100.1:8080)`: the ends of `before` that differ in `after`.
fn nat_note(before: &[u8], after: &[u8]) -> String {
    let (b, a) = (ends(before), ends(after));
    let mut parts = Vec::new();
    if b.0 != a.0 {
        parts.push(format!("src was {}", b.0));
    }
    if b.1 != a.1 {
        parts.push(format!("dst was {}", b.1));
    }
    format!("({})", parts.join(", "))
}

/// `addr[:port]` of a datagram's source and destination (ports for TCP and
/// UDP, the echo id for ICMP echo as `addr id N`).
fn ends(p: &[u8]) -> (String, String) {
    if p.len() < 20 {
        return (String::new(), String::new());
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let src = std::net::Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = std::net::Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let word = |i: usize| {
        p.get(ihl + i..ihl + i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match (p[9], word(0), word(2), word(4)) {
        (6 | 17, Some(sp), Some(dp), _) => (format!("{src}:{sp}"), format!("{dst}:{dp}")),
        (1, _, _, Some(id)) if matches!(p.get(ihl), Some(0 | 8)) => {
            (format!("{src} id {id}"), format!("{dst} id {id}"))
        }
        _ => (src.to_string(), dst.to_string()),
    }
}

/// How much of the run the text report shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Apps, links and checks.
    Summary,
    /// And the timeline of packets.
    Timeline,
    /// And, under each packet at a router, its walk through the hooks.
    Walk,
}

impl Detail {
    /// What `ctsim run --quiet` / `--walk` ask for.
    pub fn from_flags(quiet: bool, walk: bool) -> Detail {
        match (quiet, walk) {
            (true, _) => Detail::Summary,
            (false, true) => Detail::Walk,
            (false, false) => Detail::Timeline,
        }
    }
}

/// The whole report as text.
pub fn text(out: &RunOutput, detail: Detail) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario {} (seed {})", out.name, out.seed);
    if detail != Detail::Summary {
        let walk = detail == Detail::Walk;
        let rows: Vec<&Row> = out
            .rows
            .iter()
            .filter(|r| walk || r.walk.is_none())
            .collect();
        let w_place = rows.iter().map(|r| r.place.len()).max().unwrap_or(0);
        let w_event = rows.iter().map(|r| r.event.len()).max().unwrap_or(0);
        for r in rows {
            let text = match r.walk {
                Some((_, "")) | None => r.detail(),
                Some((_, step)) => format!("{step:<9} {}", r.packet),
            };
            // A command's output continues under its first line.
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("");
            let _ = writeln!(
                s,
                "{}  {:w_place$}  {:w_event$}  {first}",
                r.time, r.place, r.event,
            );
            for more in lines {
                let _ = writeln!(
                    s,
                    "{:w$}  {more}",
                    "",
                    w = r.time.len() + w_place + w_event + 4
                );
            }
        }
    }
    let _ = writeln!(s, "ended at {} ({})", out.end, out.end_reason);
    if !out.apps.is_empty() {
        let _ = writeln!(s, "\napps:");
        for a in &out.apps {
            let _ = writeln!(s, "  {}", app_line(a));
        }
    }
    if !out.links.is_empty() {
        let _ = writeln!(s, "\nlinks:");
        for l in &out.links {
            for (dir, st) in l.stats.iter().enumerate() {
                let (from, to) = (&l.ends[dir], &l.ends[1 - dir]);
                let _ = writeln!(s, "  {} {from}>{to}: {}", l.name, stats_line(st));
            }
        }
    }
    if !out.checks.is_empty() {
        let _ = writeln!(s, "\nchecks:");
        for c in &out.checks {
            let verdict = if c.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(s, "  {verdict} {}: {}", c.what, c.detail);
        }
        let failed = out.checks.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            s,
            "{}, {failed} failed",
            counted(out.checks.len() as u64, "check")
        );
    }
    s
}

fn app_line(a: &ctsim_engine::AppOutcome) -> String {
    let mut s = format!(
        "{} ({}): {}, sent {} B, received {} B",
        a.name, a.kind, a.state, a.bytes_sent, a.bytes_received
    );
    if a.kind == "tcp-server" {
        let _ = write!(s, ", {}", counted(a.requests, "connection"));
    } else if a.requests > 0 || a.replies > 0 {
        let _ = write!(
            s,
            ", {}, {}",
            counted(a.requests, "request"),
            counted(a.replies, "reply")
        );
    }
    if let Some(e) = &a.error {
        let _ = write!(s, "; {e}");
    }
    s
}

/// `1 reply`, `2 replies`, `0 connections`.
pub fn counted(n: u64, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

fn stats_line(st: &LinkStats) -> String {
    let mut s = format!("sent {}, delivered {}", st.sent, st.delivered);
    for (n, what) in [
        (st.duplicated, "duplicated"),
        (st.lost, "lost"),
        (st.queue_drops, "queue drops"),
        (st.mtu_drops, "mtu drops"),
        (st.down_drops, "down drops"),
    ] {
        if n > 0 {
            let _ = write!(s, ", {what} {n}");
        }
    }
    s
}

/// The whole report as JSON lines: one object per timeline event, then one
/// per app, link direction and check, then a summary.
pub fn json_lines(out: &RunOutput) -> String {
    let mut s = String::new();
    let mut line = |v: serde_json::Value| {
        s.push_str(&v.to_string());
        s.push('\n');
    };
    for r in &out.rows {
        let v = match r.event.as_str() {
            // A conntrack event or kernel message: its text in `line`.
            "conntrack" | "kernel" | "command" => json!({"type": "event", "time": r.time,
                    "time_ns": r.time_ns, "place": r.place, "event": r.event, "line": r.packet}),
            _ if r.walk.is_some() => {
                let (hook, step) = r.walk.unwrap_or_default();
                json!({"type": "walk", "time": r.time, "time_ns": r.time_ns, "place": r.place,
                    "hook": hook, "step": step, "text": r.packet})
            }
            _ => {
                let mut v = json!({"type": "event", "time": r.time, "time_ns": r.time_ns,
                        "place": r.place, "event": r.event, "packet": r.packet});
                if let Some(st) = r.ctstate {
                    v["ctstate"] = json!(st);
                }
                if let Some(why) = r.invalid {
                    v["invalid"] = json!(why);
                }
                if let Some((_, before)) = &r.nat {
                    v["before_nat"] = json!(before);
                }
                v
            }
        };
        line(v);
    }
    for a in &out.apps {
        line(
            json!({"type": "app", "name": a.name, "kind": a.kind, "state": a.state,
                    "bytes_sent": a.bytes_sent, "bytes_received": a.bytes_received,
                    "requests": a.requests, "replies": a.replies, "error": a.error}),
        );
    }
    for l in &out.links {
        for (dir, st) in l.stats.iter().enumerate() {
            line(
                json!({"type": "link", "name": l.name, "from": l.ends[dir], "to": l.ends[1 - dir],
                        "sent": st.sent, "delivered": st.delivered, "duplicated": st.duplicated,
                        "lost": st.lost, "queue_drops": st.queue_drops, "mtu_drops": st.mtu_drops,
                        "down_drops": st.down_drops}),
            );
        }
    }
    for CheckResult {
        what,
        passed,
        detail,
    } in &out.checks
    {
        line(json!({"type": "check", "check": what, "passed": passed, "detail": detail}));
    }
    line(
        json!({"type": "summary", "scenario": out.name, "seed": out.seed, "end": out.end.to_string(),
                "end_reason": out.end_reason, "checks": out.checks.len(),
                "failed": out.checks.iter().filter(|c| !c.passed).count()}),
    );
    s
}
