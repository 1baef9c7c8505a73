//! The fidelity suite: scenarios replayed through a real Linux router with
//! `ctsim linux-diff`'s machinery; each must agree with the kernel, packet
//! by packet and table by table (see `crates/scenario/src/linux_diff`).
//!
//! It needs root, iproute2, iptables, nftables, conntrack and ethtool.
//! Without them the suite skips with one loud line, unless
//! `CTSIM_LINUX=required` (as `.ci/run` sets), under which it fails.
//! Scenarios replay on the wall clock, all at once (each in namespaces of
//! its own; those that change a setting of the initial namespace take an
//! exclusive lock), so the suite lasts about as long as its longest
//! scenario.
//!
//! Scenarios with a known, explained difference are not here: they are in
//! the book's "Differences from Linux" page (`book/src/linux-diff.md`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ctsim_scenario::linux_diff::{linux_diff, DiffOptions};
use ctsim_tests::{load_file, root};

/// Scenarios replayed at once.
const WORKERS: usize = 10;

/// (file under the workspace, the router to compare when there are several),
/// the longest first.
const SUITE: &[(&str, Option<&str>)] = &[
    ("scenarios/conntrack/udp-stream.yaml", None),
    ("scenarios/conntrack/tcp-fin-teardown.yaml", None),
    ("scenarios/helpers/ftp-active-no-helper.yaml", None),
    ("scenarios/conntrack/timeouts-dying.yaml", None),
    // Forwarding, ICMP errors, MTU, loss and reordering.
    ("scenarios/basics/tcp-transfer.yaml", None),
    ("scenarios/basics/udp-and-ping.yaml", None),
    ("scenarios/basics/mtu.yaml", None),
    ("scenarios/basics/lossy-reordering.yaml", None),
    ("scenarios/basics/partition.yaml", None),
    ("scenarios/basics/traceroute.yaml", Some("r1")),
    ("scenarios/basics/traceroute.yaml", Some("r2")),
    ("scenarios/basics/two-routers.yaml", Some("r2")),
    // TCP states and INVALID, UDP, ICMP and RELATED errors, the table limit.
    ("scenarios/conntrack/tcp-handshake.yaml", None),
    ("scenarios/conntrack/tcp-rst.yaml", None),
    ("scenarios/conntrack/tcp-reopen.yaml", None),
    ("scenarios/conntrack/tcp-out-of-window.yaml", None),
    ("scenarios/conntrack/tcp-loose.yaml", Some("r1")),
    ("scenarios/conntrack/tcp-loose.yaml", Some("r2")),
    ("scenarios/conntrack/conntrack-off.yaml", Some("r1")),
    ("scenarios/conntrack/conntrack-off.yaml", Some("r2")),
    ("scenarios/conntrack/ping.yaml", None),
    ("scenarios/conntrack/icmp-related.yaml", None),
    ("scenarios/conntrack/table-full-drop.yaml", None),
    ("tests/linux/gre-tracking.yaml", None),
    // Rulesets: the seed's firewall rule, stateful filtering, REJECT,
    // NOTRACK, LOG/TRACE, connlimit.
    ("scenarios/netfilter/ssh-input-policy-drop.yaml", None),
    ("scenarios/netfilter/stateful-forward.yaml", None),
    ("scenarios/netfilter/reject.yaml", None),
    ("scenarios/netfilter/notrack.yaml", None),
    ("scenarios/netfilter/log-and-trace.yaml", None),
    ("scenarios/netfilter/connlimit.yaml", None),
    // NAT: SNAT, MASQUERADE, DNAT, REDIRECT, clashes, hairpin.
    ("scenarios/nat/masquerade-home.yaml", None),
    ("scenarios/nat/snat-port-clash.yaml", None),
    ("scenarios/nat/dnat-port-forward.yaml", None),
    ("scenarios/nat/hairpin.yaml", None),
    ("scenarios/nat/binding-before-rule.yaml", None),
    ("tests/linux/redirect-closed-port.yaml", None),
    // Helpers: FTP (every mode, with and without NAT), TFTP, IRC, SIP,
    // expectations' limits.
    ("scenarios/helpers/ftp-active-related.yaml", None),
    ("scenarios/helpers/ftp-passive.yaml", None),
    ("scenarios/helpers/ftp-epsv.yaml", None),
    ("scenarios/helpers/ftp-eprt.yaml", None),
    ("scenarios/helpers/ftp-masquerade.yaml", None),
    ("scenarios/helpers/ftp-masquerade-no-helper.yaml", None),
    ("scenarios/helpers/ftp-port-raw.yaml", None),
    ("scenarios/helpers/ftp-port-masquerade-raw.yaml", None),
    ("scenarios/helpers/expect-evict-oldest.yaml", None),
    ("scenarios/helpers/expect-table-full.yaml", None),
    ("scenarios/helpers/tftp-strict-firewall.yaml", None),
    ("scenarios/helpers/irc-dcc.yaml", None),
    ("scenarios/helpers/sip-call.yaml", None),
    ("scenarios/helpers/sip-nat.yaml", None),
];

fn path(file: &str) -> PathBuf {
    root().join(file)
}

/// (index in [`SUITE`], what was run, the comparison's outcome).
type Outcome = (usize, String, Result<(), String>);

/// Runs one comparison; `Err` holds the report's differing lines.
fn compare(file: &Path, router: Option<&str>) -> Result<(), String> {
    let (scenario, source) = load_file(file);
    let opts = DiffOptions {
        router: router.map(str::to_string),
        seed: None,
    };
    let d = linux_diff(&scenario, &source, &opts).map_err(|e| e.to_string())?;
    if d.agrees() {
        return Ok(());
    }
    let report = d.render();
    let lines: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with('!') || l.starts_with("  0") || l.starts_with("tables at"))
        .collect();
    Err(lines.join("\n"))
}

#[test]
fn every_suite_scenario_agrees_with_the_kernel() {
    let required = std::env::var("CTSIM_LINUX").is_ok_and(|v| v == "required");
    if let Some(why) = ctsim_linux::unavailable() {
        assert!(
            !required,
            "CTSIM_LINUX=required, but the kernel side cannot run: {why}"
        );
        // Straight to the process's stderr: the test harness captures
        // `eprintln!` of a passing test, and this line must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: the Linux fidelity suite ({} scenarios) did not run: {why}. \
             Set CTSIM_LINUX=required to make this a failure. ***\n",
            SUITE.len()
        );
        return;
    }
    // A pool of workers, longest scenarios first (they are listed first):
    // enough at once to overlap the waiting, few enough that no replay
    // falls behind its clock on a 2-core machine.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(file, router)) = SUITE.get(i) else {
                    return;
                };
                let name = match router {
                    Some(r) => format!("{file} --router {r}"),
                    None => file.to_string(),
                };
                let r = std::panic::catch_unwind(|| compare(&path(file), router))
                    .unwrap_or_else(|_| Err("panicked".to_string()));
                results.lock().unwrap().push((i, name, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _, _)| *i);
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(_, name, r)| r.as_ref().err().map(|e| format!("== {name}\n{e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} scenarios differ from Linux:\n{}",
        failed.len(),
        SUITE.len(),
        failed.join("\n")
    );
}

#[test]
fn the_suite_covers_at_least_thirty_scenarios_that_exist() {
    let mut files: Vec<&str> = SUITE.iter().map(|(f, _)| *f).collect();
    files.dedup();
    assert!(files.len() >= 30, "only {} scenario files", files.len());
    for f in files {
        assert!(path(f).exists(), "{f} does not exist");
    }
}
