//! Shared helpers of the whole-run test suites: finding the scenarios under
//! `scenarios/`, loading and running them through the library the way
//! `ctsim run` does, looking into recorded packets, and scratch directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ctsim_engine::{Place, Record, What};
use ctsim_scenario::diag::Source;
use ctsim_scenario::model::{AppKind, Scenario};
use ctsim_scenario::{RunOptions, RunOutput};

/// The workspace root (the parent of this package).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `scenarios/` in the workspace.
pub fn scenarios_dir() -> PathBuf {
    root().join("scenarios")
}

/// Every `scenarios/**/*.yaml`, sorted, so new scenarios are picked up as
/// they are added. Panics when there is none (a wrong path, not a pass).
pub fn scenario_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&scenarios_dir(), &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no scenarios found under {}",
        scenarios_dir().display()
    );
    files
}

/// A scenario's path relative to the workspace root, with `/` separators:
/// `scenarios/basics/tcp-transfer.yaml`. Used as the file name in
/// diagnostics, so output does not depend on where the checkout is.
pub fn display_name(path: &Path) -> String {
    let rel = path.strip_prefix(root()).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A stable key for per-scenario snapshots: the path below `scenarios/`
/// without `.yaml`, `/` written as `__` (`basics__tcp-transfer`).
pub fn scenario_key(path: &Path) -> String {
    let rel = path.strip_prefix(scenarios_dir()).unwrap_or(path);
    let rel = rel.with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("__")
}

/// Loads and validates a scenario file; panics with the rendered report.
pub fn load_file(path: &Path) -> (Scenario, Arc<Source>) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    ctsim_scenario::load(&display_name(path), &text)
        .unwrap_or_else(|r| panic!("{} does not load:\n{}", path.display(), r.render(false)))
}

/// The options `ctsim run FILE` uses: the timeline on, nothing else changed.
pub fn cli_options() -> RunOptions {
    RunOptions {
        timeline: true,
        ..RunOptions::default()
    }
}

/// Runs a loaded scenario; panics on an input error found while lowering.
pub fn run(s: &Scenario, source: &Arc<Source>, opts: &RunOptions) -> RunOutput {
    ctsim_scenario::run(s, source, opts)
        .unwrap_or_else(|r| panic!("{} does not run:\n{}", source.name, r.render(false)))
}

/// Loads and runs a scenario file.
pub fn run_file(path: &Path, opts: &RunOptions) -> RunOutput {
    let (s, source) = load_file(path);
    run(&s, &source, opts)
}

/// Loads and runs scenario text; `Err` is the rendered (plain) report.
pub fn run_yaml(name: &str, yaml: &str, opts: &RunOptions) -> Result<RunOutput, String> {
    let (s, source) = ctsim_scenario::load(name, yaml).map_err(|r| r.render(false))?;
    ctsim_scenario::run(&s, &source, opts).map_err(|r| r.render(false))
}

/// Whether the scenario runs a `tcp-client` app.
pub fn has_tcp_client(s: &Scenario) -> bool {
    s.apps
        .iter()
        .any(|a| matches!(a.kind, AppKind::TcpClient { .. }))
}

/// The checks that failed, as report lines.
pub fn failed_checks(out: &RunOutput) -> Vec<String> {
    out.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.what, c.detail))
        .collect()
}

/// The fields of a TCP segment a test looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHead {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub flags: u8,
}

pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// The TCP header fields of an unfragmented IPv4/TCP datagram.
pub fn tcp_head(packet: &[u8]) -> Option<TcpHead> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 6 || ihl < 20 {
        return None;
    }
    // Fragment offset must be zero.
    if u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff != 0 {
        return None;
    }
    let t = packet.get(ihl..ihl + 20)?;
    Some(TcpHead {
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        flags: t[13],
    })
}

/// The first connection attempt (SYN without ACK) a node sent, with its
/// canonical literal.
pub fn first_syn(out: &RunOutput) -> Option<(TcpHead, String)> {
    // Only a TCP/IP stack's SYNs carry an ISN and port from the seed.
    let stack = |r: &&Record| match r.place {
        Place::Node { node, .. } => out.sim.node(node).as_any().is::<ctsim_engine::host::Host>(),
        _ => false,
    };
    out.sim
        .records()
        .iter()
        .filter(|r| r.what == What::Sent)
        .filter(stack)
        .find_map(|r| {
            let h = tcp_head(&r.packet)?;
            (h.flags & (TCP_SYN | TCP_ACK) == TCP_SYN).then(|| (h, ctsim_packet::show(&r.packet)))
        })
}

/// The packets the trace says entered link `link` (either direction), in
/// the order they did: what an end recorded as `sent` on the link's
/// interface or `forwarded` out of it, just before handing it to the link.
/// A link captures exactly these, in this order.
pub fn trace_into_link(out: &RunOutput, link: usize) -> Vec<&Record> {
    let ends = out.sim.links()[link].ends;
    out.sim
        .records()
        .iter()
        .filter(|r| match (r.place, r.what) {
            (Place::Node { node, port }, What::Sent) => ends.contains(&(node, port)),
            (Place::Node { node, .. }, What::Forwarded { to }) => ends.contains(&(node, to)),
            _ => false,
        })
        .collect()
}

/// A directory under the system temp dir, unique to this process and call,
/// removed (with its contents) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ctsim-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
