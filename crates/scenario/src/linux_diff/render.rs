//! The report: every packet that reached the router with what each side
//! sent for it, the NAT ports reconciled, the commands, and the tables at
//! each check instant. Lines that differ start with `!`.

use std::fmt::Write;

use super::tables::TableDiff;
use super::Diff;

pub(super) fn render(d: &Diff) -> String {
    let mut o = String::new();
    let k = &d.kernel;
    let _ = writeln!(o, "linux-diff {} (router {})", d.scenario, d.router);
    let _ = writeln!(o, "linux: {}, {}, {}", k.release, k.iptables, k.conntrack);
    let _ = writeln!(
        o,
        "replayed on the wall clock (scale 1), at most {} ms late; timeouts compared within ±{} s; \
         the IP ID of packets the router makes itself is the kernel's to choose",
        d.max_lag.as_millis(),
        d.tolerance
    );
    for (name, old) in &d.globals {
        let _ = writeln!(
            o,
            "set for the run in the initial namespace and restored: {name} (was {old})"
        );
    }
    packets(&mut o, d);
    for c in &d.commands {
        let _ = writeln!(o, "\ncommand at {}: {}", c.time, c.line);
        let mark = if c.ctsim.trim() == c.linux.trim() {
            ' '
        } else {
            '!'
        };
        for (side, text) in [("ctsim", &c.ctsim), ("linux", &c.linux)] {
            for line in text.lines() {
                let _ = writeln!(o, "{mark} {side}  {line}");
            }
        }
    }
    for p in &d.probes {
        let _ = writeln!(o, "\ntables at {}:", p.at);
        table(&mut o, "conntrack -L", &p.conntrack, "entries", d.tolerance);
        table(
            &mut o,
            "conntrack -L expect",
            &p.expect,
            "expectations",
            d.tolerance,
        );
        if p.stats.is_empty() {
            let all: Vec<String> = p
                .ctsim
                .stats
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let shown = if all.is_empty() {
                "all 0".to_string()
            } else {
                all.join(" ")
            };
            let _ = writeln!(o, "  conntrack -S: same ({shown})");
        } else {
            let _ = writeln!(o, "! conntrack -S differs (summed over CPUs):");
            for (name, a, b) in &p.stats {
                let n = |v: &Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
                let _ = writeln!(o, "!   {name}: ctsim {}, linux {}", n(a), n(b));
            }
        }
        table(&mut o, "iptables-save -c", &p.rules, "lines", d.tolerance);
    }
    let verdict = if d.agrees() {
        "ctsim and Linux agree"
    } else {
        "ctsim and Linux differ (lines starting with !)"
    };
    let _ = writeln!(o, "\n{verdict}");
    o
}

fn packets(o: &mut String, d: &Diff) {
    let m = &d.matcher;
    let port = |p: u16| d.interfaces.get(usize::from(p)).map_or("?", String::as_str);
    let _ = writeln!(
        o,
        "\npackets: {} reached {}; ctsim sent {}, Linux sent {}",
        d.inputs.len(),
        d.router,
        m.expected.len(),
        m.seen.len()
    );
    // The input each side's packets belong to (`None`: sent on its own).
    let ours_of = |i: Option<usize>| m.expected.iter().filter(move |e| e.input == i);
    let theirs_of = |i: Option<usize>| {
        m.seen
            .iter()
            .filter(move |s| s.matched.is_none() && s.after_input == i)
    };
    let emit = |o: &mut String, i: Option<usize>| {
        let mut any = false;
        for e in ours_of(i) {
            any = true;
            let text = ctsim_packet::show(&e.packet);
            match e.matched {
                Some(_) => {
                    let _ = writeln!(o, "      both  → {} {text}", port(e.port));
                }
                None => {
                    let _ = writeln!(
                        o,
                        "!     ctsim → {} {text}   (Linux sent no such packet)",
                        port(e.port)
                    );
                }
            }
        }
        for s in theirs_of(i) {
            any = true;
            let text = ctsim_packet::show(&s.packet);
            let _ = writeln!(
                o,
                "!     linux → {} {text}   (ctsim sent no such packet)",
                port(s.port)
            );
        }
        if !any && i.is_some() {
            let _ = writeln!(o, "      both  nothing sent");
        }
    };
    for (i, input) in d.inputs.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {} {} {}   [ctsim: {}]",
            input.time,
            port(input.port),
            ctsim_packet::show(&input.packet),
            input.fate
        );
        emit(o, Some(i));
    }
    if ours_of(None).next().is_some() || theirs_of(None).next().is_some() {
        let _ = writeln!(o, "  sent without a packet in:");
        emit(o, None);
    }
    for ((proto, addr, ours), theirs) in m.ports.learnt() {
        let p = if *proto == 6 { "tcp" } else { "udp" };
        let _ = writeln!(
            o,
            "  NAT: for {p} {addr}:{ours} Linux chose port {theirs} (both had to pick one; \
             Linux starts its search at a random offset)"
        );
    }
}

fn table(o: &mut String, name: &str, t: &TableDiff, things: &str, tolerance: u64) {
    let edge = |o: &mut String| {
        for (side, l) in &t.expiring {
            let _ = writeln!(
                o,
                "    on {side}'s side only, within ±{tolerance} s of expiring: {l}"
            );
        }
    };
    if t.agrees() {
        let _ = writeln!(o, "  {name}: same ({} {things})", t.same.len());
        return edge(o);
    }
    edge(o);
    let _ = writeln!(o, "! {name} differs ({} the same):", t.same.len());
    for l in &t.only_ctsim {
        let _ = writeln!(o, "!   ctsim only: {l}");
    }
    for l in &t.only_linux {
        let _ = writeln!(o, "!   linux only: {l}");
    }
    for (a, b) in &t.timeout {
        let _ = writeln!(
            o,
            "!   timeout beyond ±{tolerance} s:\n!     ctsim: {a}\n!     linux: {b}"
        );
    }
}
