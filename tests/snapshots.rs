//! Snapshots of what `ctsim run` prints for every scenario under
//! `scenarios/` (timeline, apps, links, checks), and of the JSON lines of
//! one. Every scenario's own checks must pass.
//!
//! A new scenario gets its snapshot with `INSTA_UPDATE=always cargo test -p
//! ctsim-tests --test snapshots` (or `cargo insta review`); read it before
//! committing it. Snapshot names are `text@<dir>__<file>` below `scenarios/`,
//! fixed by us rather than by `glob!` (whose names change when a scenario in
//! a new directory moves the files' common prefix).

use ctsim_scenario::report;
use ctsim_tests::{cli_options, failed_checks, run_file, scenario_key, scenarios_dir};

#[test]
fn every_scenario_report() {
    let mut failures = Vec::new();
    let mut without_checks = Vec::new();
    insta::glob!("../scenarios", "**/*.yaml", |path| {
        let out = run_file(path, &cli_options());
        let text = report::text(&out, true);
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
