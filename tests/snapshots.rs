//! Snapshots of what `ctsim run` prints for every scenario under
//! `scenarios/` (timeline, apps, links, checks), of the JSON lines of one,
//! and of what `ctsim conntrack` prints for some (between events and inside
//! a packet's walk with `--during`). Every scenario's own checks must pass.
//!
//! A new scenario gets its snapshot with `INSTA_UPDATE=always cargo test -p
//! ctsim-tests --test snapshots` (or `cargo insta review`); read it before
//! committing it. Snapshot names are `text@<dir>__<file>` below `scenarios/`
//! (`json@…` and `conntrack@…` for the others),
//! fixed by us rather than by `glob!` (whose names change when a scenario in
//! a new directory moves the files' common prefix).

use ctsim_engine::Instant;
use ctsim_scenario::conntrack::{query, query_during, DuringOutcome, Query};
use ctsim_scenario::model::CtTable;
use ctsim_scenario::{report, RunOptions};
use ctsim_tests::{
    cli_options, display_name, failed_checks, load_file, run_file, scenario_key, scenarios_dir,
};

#[test]
fn every_scenario_report() {
    let mut failures = Vec::new();
    let mut without_checks = Vec::new();
    insta::glob!("../scenarios", "**/*.yaml", |path| {
        let out = run_file(path, &cli_options());
        // Netfilter, NAT and helper scenarios are about each packet's walk.
        let key = scenario_key(path);
        let walked = ["netfilter__", "nat__", "helpers__"];
        let detail = if walked.iter().any(|p| key.starts_with(p)) {
            report::Detail::Walk
        } else {
            report::Detail::Timeline
        };
        let text = report::text(&out, detail);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(scenario_key(path));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!("text", text));
        if out.checks.is_empty() {
            without_checks.push(scenario_key(path));
        }
        for f in failed_checks(&out) {
            failures.push(format!("{}: {f}", scenario_key(path)));
        }
    });
    assert!(
        failures.is_empty(),
        "scenario checks failed:\n  {}",
        failures.join("\n  ")
    );
    assert!(
        without_checks.is_empty(),
        "scenarios without checks (each scenario should check what it shows): {without_checks:?}"
    );
}

#[test]
fn json_lines_of_tcp_transfer() {
    let path = scenarios_dir().join("basics/tcp-transfer.yaml");
    let out = run_file(&path, &cli_options());
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings
        .bind(|| insta::assert_snapshot!("json@basics__tcp-transfer", report::json_lines(&out)));
}

/// One `ctsim conntrack` invocation on router r1: its arguments after
/// `--node r1`, the instant, the `--during` filter, and the query.
struct Ask<'a> {
    args: &'a str,
    at: Instant,
    during: Option<&'a str>,
    q: Query,
    extended: bool,
}

fn ask(args: &'static str, at_ms: u64, during: Option<&'static str>, q: Query) -> Ask<'static> {
    Ask {
        args,
        at: Instant::from_nanos(at_ms * 1_000_000),
        during,
        q,
        extended: args.contains("-o extended"),
    }
}

/// A transcript of `ctsim conntrack` on router r1 of a scenario: each
/// command line, then its stdout and stderr as the binary prints them.
fn conntrack_transcript(path: &std::path::Path, asks: &[Ask<'_>]) -> String {
    let (scenario, source) = load_file(path);
    let mut text = String::new();
    for a in asks {
        text.push_str(&format!(
            "$ ctsim conntrack {} --node r1 {}\n",
            display_name(path),
            a.args
        ));
        match a.during {
            None => {
                let opts = RunOptions {
                    until: Some(a.at),
                    timeline: a.q == Query::Events,
                    ..RunOptions::default()
                };
                let prepared = ctsim_scenario::run::prepare(&scenario, &source, &opts).unwrap();
                let sim = prepared.run_to(a.at);
                let (out, err) = query(&sim, "r1", a.at, a.q, a.extended).unwrap();
                text.push_str(&out);
                text.push_str(&err);
            }
            Some(filter) => {
                let prepared =
                    ctsim_scenario::run::prepare(&scenario, &source, &RunOptions::default())
                        .unwrap();
                match query_during(prepared, "r1", a.at, filter, a.q, a.extended).unwrap() {
                    DuringOutcome::Stopped(d) => {
                        text.push_str(&d.stdout);
                        text.push_str(&format!(
                            "ctsim: stopped `{}` at {}s on r1, at the end of {}, just before \
                             conntrack confirms it\n",
                            d.packet, d.at, d.hook
                        ));
                        text.push_str(&d.stderr);
                    }
                    DuringOutcome::NoMatch { end } => {
                        text.push_str(&format!("no match before the end at {end}s\n"))
                    }
                }
            }
        }
        text.push('\n');
    }
    text
}

#[test]
fn conntrack_outputs() {
    let list = |t| Query::List(t);
    let cases: [(&str, Vec<Ask<'_>>); 2] = [
        (
            "conntrack/tcp-handshake.yaml",
            vec![
                ask("--at 5ms -L", 5, None, list(CtTable::Conntrack)),
                ask(
                    "--at 0s --during 'tcp dport 22' -L unconfirmed",
                    0,
                    Some("tcp dport 22"),
                    list(CtTable::Unconfirmed),
                ),
                ask(
                    "--at 0s --during 'tcp dport 22' -L conntrack",
                    0,
                    Some("tcp dport 22"),
                    list(CtTable::Conntrack),
                ),
                ask(
                    "--at 15ms -L unconfirmed",
                    15,
                    None,
                    list(CtTable::Unconfirmed),
                ),
                ask("--at 15ms -L", 15, None, list(CtTable::Conntrack)),
                ask(
                    "--at 15ms --during 'tcp-flags S.' -L -o extended",
                    15,
                    Some("tcp-flags S."),
                    list(CtTable::Conntrack),
                ),
                ask(
                    "--at 35ms -L -o extended",
                    35,
                    None,
                    list(CtTable::Conntrack),
                ),
                ask("--at 35ms -C", 35, None, Query::Count),
                ask("--at 35ms -E", 35, None, Query::Events),
            ],
        ),
        (
            "conntrack/timeouts-dying.yaml",
            vec![
                ask("--at 1500ms -L", 1500, None, list(CtTable::Conntrack)),
                ask(
                    "--at 2s --during rst -L dying",
                    2000,
                    Some("rst"),
                    list(CtTable::Dying),
                ),
                ask("--at 2s --during rst -C", 2000, Some("rst"), Query::Count),
                ask("--at 2020ms -L dying", 2020, None, list(CtTable::Dying)),
                ask("--at 2020ms -L", 2020, None, list(CtTable::Conntrack)),
                ask("--at 6002ms -L", 6002, None, list(CtTable::Conntrack)),
                ask("--at 35s -L", 35_000, None, list(CtTable::Conntrack)),
                ask("--at 35s -S", 35_000, None, Query::Stats),
                ask("--at 35s -E", 35_000, None, Query::Events),
            ],
        ),
    ];
    for (file, asks) in cases {
        let path = scenarios_dir().join(file);
        let text = conntrack_transcript(&path, &asks);
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_suffix(scenario_key(&path));
        settings.bind(|| insta::assert_snapshot!("conntrack", text));
    }
}
