//! The `ctsim` binary: exit codes (0 all good, 1 a check failed, 2 bad
//! input, with the error at `file:line:col`), and what `run`, `check`,
//! `schema` and `graph` print.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_ctsim");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim/ has a parent")
        .to_path_buf()
}

/// Every `scenarios/**/*.yaml`, sorted.
fn scenario_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("list scenarios") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("scenarios"), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no scenarios found");
    files
}

fn tcp_transfer() -> PathBuf {
    root().join("scenarios/basics/tcp-transfer.yaml")
}

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ctsim-cli-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `bytes` to `name` in the directory; returns its path.
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ctsim(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run ctsim")
}

/// `ctsim` with string-ish arguments.
macro_rules! ctsim {
    ($($arg:expr),* $(,)?) => {
        ctsim(&[$(std::ffi::OsStr::new(&$arg)),*])
    };
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("ctsim exited by a signal")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit code 2 and an error at `path:line:col` on stderr.
#[track_caller]
fn bad_input(o: &Output, path: &Path, line_col: &str, words: &str) {
    let err = text(&o.stderr);
    assert_eq!(code(o), 2, "stderr:\n{err}");
    let at = format!("{}:{line_col}", path.display());
    assert!(err.contains(&at), "expected {at} in stderr:\n{err}");
    assert!(err.contains(words), "expected {words:?} in stderr:\n{err}");
    assert!(
        !err.contains("panicked"),
        "ctsim panicked on bad input:\n{err}"
    );
}

const BASE: &str = "name: t
hosts:
  a: { addr: 192.0.2.2/24, gateway: 192.0.2.1 }
  b: { addr: 198.51.100.2/24, gateway: 198.51.100.1 }
  probe: { stack: none, addr: 203.0.113.2/24 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24, ext0: 203.0.113.1/24 }
links:
  - { ends: [a, r1.lan0], delay: 1ms }
  - { ends: [b, r1.wan0], delay: 1ms }
  - { ends: [probe, r1.ext0] }
";

#[test]
fn every_scenario_runs_with_exit_0_and_prints_what_the_library_reports() {
    for path in scenario_files() {
        let o = ctsim!("run", path);
        assert_eq!(
            code(&o),
            0,
            "{}:\n{}{}",
            path.display(),
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{}: {}",
            path.display(),
            text(&o.stderr)
        );
        let src = std::fs::read_to_string(&path).expect("read scenario");
        let (s, source) = ctsim_scenario::load(&path.display().to_string(), &src)
            .unwrap_or_else(|r| panic!("{}", r.render(false)));
        let opts = ctsim_scenario::RunOptions {
            timeline: true,
            ..Default::default()
        };
        let out = ctsim_scenario::run(&s, &source, &opts).expect("runs");
        assert_eq!(
            text(&o.stdout),
            ctsim_scenario::report::text(&out, ctsim_scenario::report::Detail::Timeline),
            "{}",
            path.display()
        );
    }
}

#[test]
fn a_failing_check_exits_1() {
    let dir = TempDir::new("fail");
    let path = dir.file(
        "fail.yaml",
        format!(
            "{BASE}apps:
  - {{ on: a, run: ping, name: p, to: 198.51.100.2, count: 2, interval: 10ms }}
checks:
  - {{ app: p, replies: 2 }}
  - {{ app: p, replies: 3 }}
"
        ),
    );
    let o = ctsim!("run", path);
    let out = text(&o.stdout);
    assert_eq!(code(&o), 1, "{out}{}", text(&o.stderr));
    assert!(out.contains("FAIL app p: replies 2 (expected 3)"), "{out}");
    assert!(out.contains("2 checks, 1 failed"), "{out}");
    // --json and --quiet keep the exit code.
    assert_eq!(code(&ctsim!("run", path, "--json")), 1);
    assert_eq!(code(&ctsim!("run", path, "--quiet")), 1);
}

#[test]
fn a_yaml_syntax_error_exits_2_at_its_position() {
    let dir = TempDir::new("syntax");
    let path = dir.file("syntax.yaml", "name: t\nhosts: [\n");
    bad_input(&ctsim!("run", path), &path, "2:8", "expected");
}

#[test]
fn an_unknown_key_exits_2_at_its_position() {
    let dir = TempDir::new("key");
    let path = dir.file("key.yaml", format!("{BASE}colour: blue\n"));
    bad_input(&ctsim!("run", path), &path, "13:1", "unknown key `colour`");
    bad_input(
        &ctsim!("check", path),
        &path,
        "13:1",
        "unknown key `colour`",
    );
    bad_input(
        &ctsim!("graph", path),
        &path,
        "13:1",
        "unknown key `colour`",
    );
}

#[test]
fn a_bad_packet_literal_exits_2_at_its_position() {
    let dir = TempDir::new("literal");
    let path = dir.file(
        "literal.yaml",
        format!(
            "{BASE}packets:
  - {{ at: 0ms, from: probe, udp: \"203.0.113.2:5000 > 198.51.100.2:9 len=abc\" }}
"
        ),
    );
    // The column of `abc` in the literal's line.
    bad_input(&ctsim!("run", path), &path, "14:73", "payload length");
    bad_input(&ctsim!("check", path), &path, "14:73", "payload length");
}

#[test]
fn binary_garbage_exits_2_with_a_position() {
    let dir = TempDir::new("garbage");
    // Deterministic junk: NULs, invalid UTF-8, control bytes.
    let mut bytes = vec![0u8, 1, 0xff, 0xfe, 0x80, b'a', b':', 0xc3];
    let mut x: u32 = 12345;
    for _ in 0..500 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    let path = dir.file("garbage.yaml", &bytes);
    let o = ctsim!("run", path);
    bad_input(&o, &path, "1:", "");
}

#[test]
fn a_missing_file_exits_2() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("no-such-file.yaml");
    for sub in ["run", "check", "graph"] {
        let o = ctsim!(sub, path);
        let err = text(&o.stderr);
        assert_eq!(code(&o), 2, "{sub}: {err}");
        assert!(
            err.contains("cannot read") && err.contains("no-such-file.yaml"),
            "{sub}: {err}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(code(&ctsim!("frobnicate")), 2);
    assert_eq!(code(&ctsim!("run")), 2);
    assert_eq!(code(&ctsim!("run", tcp_transfer(), "--seed", "x")), 2);
    assert_eq!(code(&ctsim!("run", tcp_transfer(), "--until", "soon")), 2);
}

#[test]
fn check_accepts_every_scenario_and_rejects_a_bad_one() {
    let files = scenario_files();
    let o = ctsim(&files.iter().map(|f| f.as_os_str()).fold(
        vec![std::ffi::OsStr::new("check")],
        |mut v, f| {
            v.push(f);
            v
        },
    ));
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", text(&o.stderr));
    assert_eq!(out.lines().count(), files.len(), "{out}");
    for f in &files {
        assert!(out.contains(&format!("{}: ok", f.display())), "{out}");
    }
    // One bad file among good ones fails the whole check; the others are still checked.
    let dir = TempDir::new("check");
    let bad = dir.file("bad.yaml", "name: t\nhosts: 3\n");
    let o = ctsim!("check", files[0], bad, files[files.len() - 1]);
    assert_eq!(code(&o), 2);
    assert_eq!(text(&o.stdout).lines().count(), 2, "{}", text(&o.stdout));
}

#[test]
fn schema_is_json() {
    let o = ctsim!("schema");
    assert_eq!(code(&o), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("schema is JSON");
    assert_eq!(v["title"], "ctsim scenario", "{v}");
    assert!(v["$schema"]
        .as_str()
        .is_some_and(|s| s.contains("json-schema.org")));
    for key in [
        "name", "hosts", "routers", "links", "apps", "packets", "events", "checks",
    ] {
        assert!(v["properties"].get(key).is_some(), "schema lacks {key}");
    }
}

#[test]
fn graph_prints_dot_for_every_scenario() {
    for path in scenario_files() {
        let o = ctsim!("graph", path);
        let out = text(&o.stdout);
        assert_eq!(code(&o), 0, "{}: {}", path.display(), text(&o.stderr));
        assert!(out.starts_with("graph "), "{}:\n{out}", path.display());
        assert!(out.trim_end().ends_with('}'), "{}:\n{out}", path.display());
        assert_eq!(
            out.matches('{').count(),
            out.matches('}').count(),
            "{}:\n{out}",
            path.display()
        );
        let src = std::fs::read_to_string(&path).expect("read");
        let s = ctsim_scenario::load::load("s.yaml", &src).expect("loads");
        for l in &s.links {
            assert!(
                out.contains(&l.name.value),
                "{}: link {} missing",
                path.display(),
                l.name.value
            );
        }
        assert_eq!(out.matches(" -- ").count(), s.links.len(), "{out}");
    }
}

#[test]
fn json_lines_each_parse() {
    for path in scenario_files() {
        let o = ctsim!("run", path, "--json");
        assert_eq!(code(&o), 0, "{}", path.display());
        let out = text(&o.stdout);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display()))
            })
            .collect();
        let last = lines.last().expect("at least the summary");
        assert_eq!(last["type"], "summary", "{}", path.display());
        assert_eq!(last["failed"], 0, "{}", path.display());
        for l in &lines {
            let t = l["type"].as_str().expect("every line has a type");
            assert!(
                ["event", "walk", "app", "link", "check", "summary"].contains(&t),
                "{t}"
            );
        }
        // --quiet --json leaves the events and walks out and nothing else.
        let quiet = text(&ctsim!("run", path, "--json", "--quiet").stdout);
        let without_events: Vec<&str> = out
            .lines()
            .filter(|l| !l.contains("\"type\":\"event\"") && !l.contains("\"type\":\"walk\""))
            .collect();
        assert_eq!(quiet.lines().collect::<Vec<_>>(), without_events);
    }
}

#[test]
fn options_change_what_they_say() {
    let p = tcp_transfer();
    let plain = text(&ctsim!("run", p).stdout);
    let quiet = text(&ctsim!("run", p, "--quiet").stdout);
    assert!(quiet.lines().count() < plain.lines().count());
    assert!(!quiet.contains(" sent  "), "{quiet}");
    let seeded = text(&ctsim!("run", p, "--seed", "12345").stdout);
    assert!(
        seeded.starts_with("scenario tcp-transfer (seed 12345)"),
        "{seeded}"
    );
    assert_ne!(seeded, plain);
    let short = ctsim!("run", p, "--until", "50ms");
    assert!(
        text(&short.stdout).contains("ended at 0.050000000 (until reached)"),
        "{}",
        text(&short.stdout)
    );
    // Nothing has happened by 50 ms: the upload's check fails.
    assert_eq!(code(&short), 1);
    let timing = ctsim!("run", p, "--timing");
    assert_eq!(code(&timing), 0);
    assert!(
        text(&timing.stderr).contains("events/s"),
        "{}",
        text(&timing.stderr)
    );
    assert_eq!(text(&timing.stdout), plain);
}

#[test]
fn pcap_writes_one_file_per_link() {
    for path in scenario_files() {
        let dir = TempDir::new("pcap");
        let out_dir = dir.0.join("out");
        let o = ctsim!("run", path, "--pcap", out_dir);
        assert_eq!(code(&o), 0, "{}: {}", path.display(), text(&o.stderr));
        let src = std::fs::read_to_string(&path).expect("read");
        let s = ctsim_scenario::load::load("s.yaml", &src).expect("loads");
        let mut want: Vec<String> = s
            .links
            .iter()
            .map(|l| format!("{}.pcap", l.name.value))
            .collect();
        want.sort();
        let mut got: Vec<String> = std::fs::read_dir(&out_dir)
            .expect("pcap dir exists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, want, "{}", path.display());
        for f in &got {
            let bytes = std::fs::read(out_dir.join(f)).expect("read pcap");
            assert!(bytes.len() >= 24, "{f}: no pcap header");
            assert_eq!(
                &bytes[..4],
                &[0x4d, 0x3c, 0xb2, 0xa1],
                "{f}: not nanosecond pcap"
            );
        }
    }
}

fn handshake() -> PathBuf {
    root().join("scenarios/conntrack/tcp-handshake.yaml")
}

/// `ctsim conntrack` prints the table as conntrack-tools 1.4.7 does: the
/// lines on stdout, the summary on stderr.
#[test]
fn conntrack_lists_the_table_at_an_instant() {
    let file = handshake();
    let at = |t: &str, extra: &[&str]| {
        let mut args = vec![
            "conntrack",
            file.to_str().unwrap(),
            "--node",
            "r1",
            "--at",
            t,
        ];
        args.extend_from_slice(extra);
        let o = ctsim(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        (text(&o.stdout), text(&o.stderr))
    };
    let shown =
        |n: u32| format!("conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n");
    assert_eq!(at("5ms", &[]), (String::new(), shown(0)));
    assert_eq!(
        at("15ms", &["-L"]),
        (
            "tcp      6 119 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=40000 dport=22 [UNREPLIED] \
             src=198.51.100.2 dst=192.0.2.2 sport=22 dport=40000 mark=0 use=1\n"
                .to_string(),
            shown(1)
        )
    );
    assert_eq!(
        at("35ms", &["-L", "conntrack", "-o", "extended"]).0,
        "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=40000 dport=22 \
         src=198.51.100.2 dst=192.0.2.2 sport=22 dport=40000 [ASSURED] mark=0 use=1\n"
    );
    assert_eq!(at("35ms", &["-C"]).0, "1\n");
    assert!(at("35ms", &["-S"])
        .0
        .starts_with("cpu=0   \tfound=0 invalid=0 insert=0 "));
    let (events, summary) = at("35ms", &["-E"]);
    assert_eq!(
        events.lines().map(|l| &l[..10]).collect::<Vec<_>>(),
        ["    [NEW] ", " [UPDATE] ", " [UPDATE] "]
    );
    assert!(events
        .lines()
        .nth(2)
        .unwrap()
        .contains("432000 ESTABLISHED"));
    assert_eq!(
        summary,
        "conntrack v1.4.7 (conntrack-tools): 3 flow events have been shown.\n"
    );
    assert_eq!(
        at("35ms", &["-L", "expect"]).1,
        "conntrack v1.4.7 (conntrack-tools): 0 expectations have been shown.\n"
    );
}

/// `ctsim conntrack FILE --node r1 ARGS…`: (exit code, stdout, stderr).
fn conntrack_on_r1(file: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["conntrack", file.to_str().unwrap(), "--node", "r1"];
    all.extend_from_slice(args);
    let o = ctsim(&all.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
    (code(&o), text(&o.stdout), text(&o.stderr))
}

/// `--during` stops the first matching packet at or after `--at` just
/// before its entry is confirmed: the SYN's entry is unconfirmed there
/// (listed as `conntrack -L unconfirmed` lists it; Linux 6.x itself no
/// longer dumps that list), and not yet in the conntrack table.
#[test]
fn conntrack_during_a_walk_lists_the_unconfirmed_entry() {
    let file = handshake();
    let syn = "ctsim: stopped `tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1000 win=64240 \
               [mss 1460, sackOK, wscale 7] ttl=63` at 0.011000000s on r1, at the end of \
               POSTROUTING, just before conntrack confirms it\n";
    let shown =
        |n: u32| format!("conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n");
    let during = |table: &str| {
        conntrack_on_r1(
            &file,
            &["--at", "0s", "--during", "tcp dport 22", "-L", table],
        )
    };
    assert_eq!(
        during("unconfirmed"),
        (
            0,
            "tcp      6 120 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=40000 dport=22 [UNREPLIED] \
             src=198.51.100.2 dst=192.0.2.2 sport=22 dport=40000 mark=0 use=1\n"
                .to_string(),
            format!("{syn}{}", shown(1))
        )
    );
    assert_eq!(
        during("conntrack"),
        (0, String::new(), format!("{syn}{}", shown(0)))
    );
    assert_eq!(
        during("dying"),
        (0, String::new(), format!("{syn}{}", shown(0)))
    );
    // Between events the same table is empty.
    let (_, between, _) = conntrack_on_r1(&file, &["--at", "11ms", "-L", "unconfirmed"]);
    assert_eq!(between, "");
    // From 15 ms on, the first packet to port 22 is the client's ACK (the
    // SYN-ACK goes to port 40000); its entry is confirmed, and held by the
    // packet too (use=2). -C and -S answer there as well.
    let (c, out, err) = conntrack_on_r1(
        &file,
        &[
            "--at",
            "15ms",
            "--during",
            "tcp dport 22",
            "-L",
            "-o",
            "extended",
        ],
    );
    assert_eq!(c, 0, "{err}");
    assert!(err.contains("at 0.031000000s on r1"), "{err}");
    assert_eq!(
        out,
        "ipv4     2 tcp      6 432000 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=40000 \
         dport=22 src=198.51.100.2 dst=192.0.2.2 sport=22 dport=40000 [ASSURED] mark=0 use=2\n"
    );
    // -C counts every entry allocated, the unconfirmed one too, as Linux's
    // nf_conntrack_count does.
    let count = conntrack_on_r1(&file, &["--at", "0s", "--during", "syn", "-C"]);
    assert_eq!((count.0, count.1.as_str()), (0, "1\n"));
    let stats = conntrack_on_r1(&file, &["--at", "0s", "--during", "syn", "-S"]);
    assert!(stats.1.contains(" insert=0 "), "{}", stats.1);
}

/// A SYN answered by a reset is killed while the RST still holds its
/// entry: during the RST's walk the entry is in the dying table.
#[test]
fn conntrack_during_a_walk_lists_the_dying_entry() {
    let file = root().join("scenarios/conntrack/timeouts-dying.yaml");
    let (c, out, err) = conntrack_on_r1(&file, &["--at", "2s", "--during", "rst", "-L", "dying"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        out,
        "tcp      6 4 CLOSE src=192.0.2.2 dst=198.51.100.2 sport=40000 dport=23 \
         src=198.51.100.2 dst=192.0.2.2 sport=23 dport=40000 mark=0 use=1\n"
    );
    assert!(err.ends_with("1 flow entries have been shown.\n"), "{err}");
    let (_, listed, _) = conntrack_on_r1(&file, &["--at", "2s", "--during", "rst", "-L"]);
    assert!(!listed.contains("dport=23"), "{listed}");
    let (_, between, _) = conntrack_on_r1(&file, &["--at", "2020ms", "-L", "dying"]);
    assert_eq!(between, "");
}

/// No matching packet before the run ends: exit status 1 and why. A bad
/// filter, or -E (events are read between packets), is bad input.
#[test]
fn conntrack_during_without_a_match_fails() {
    let file = handshake();
    let (c, out, err) = conntrack_on_r1(&file, &["--at", "0s", "--during", "udp"]);
    assert_eq!((c, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "error: no packet matching `udp` reached conntrack's confirmation on r1 between \
         0.000000000s and the end of the run at 0.032000000s\n"
    );
    // The SYN is the only SYN, and it passes at 11 ms.
    assert_eq!(
        conntrack_on_r1(&file, &["--at", "12ms", "--during", "tcp-flags S"]).0,
        1
    );
    let rst = root().join("scenarios/conntrack/timeouts-dying.yaml");
    let (c, _, err) = conntrack_on_r1(&rst, &["--at", "3s", "--during", "rst"]);
    assert_eq!(c, 1);
    assert!(err.contains("the end of the run at 35.000000000s"), "{err}");
    for (args, words) in [
        (vec!["--during", "udp xx"], "bad --during filter `udp xx`"),
        (vec!["--during", "udp", "-E"], "-E lists the events"),
    ] {
        let mut all = vec!["--at", "0s"];
        all.extend(args);
        let (c, _, err) = conntrack_on_r1(&file, &all);
        assert_eq!(c, 2, "{all:?}: {err}");
        assert!(err.contains(words), "{all:?}: {err}");
    }
}

#[test]
fn conntrack_rejects_what_is_not_a_tracking_router() {
    let f = handshake();
    for (args, words) in [
        (vec!["--node", "nope", "--at", "1s"], "unknown node `nope`"),
        (vec!["--node", "client", "--at", "1s"], "is a host"),
        (vec!["--node", "r1", "--at", "soon"], "--at"),
        (
            vec!["--node", "r1", "--at", "1s", "-L", "nat"],
            "unknown table `nat`",
        ),
        (
            vec!["--node", "r1", "--at", "1s", "-S", "-C"],
            "one of -L, -S, -C and -E",
        ),
    ] {
        let mut all = vec!["conntrack", f.to_str().unwrap()];
        all.extend(args);
        let o = ctsim(&all.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
        assert_eq!(code(&o), 2, "{all:?}");
        assert!(
            text(&o.stderr).contains(words),
            "{all:?}: {}",
            text(&o.stderr)
        );
    }
    let t = TempDir::new("ct-off");
    let off = t.file(
        "off.yaml",
        BASE.replace(
            "ext0: 203.0.113.1/24 }\n",
            "ext0: 203.0.113.1/24 }\n    conntrack: off\n",
        ),
    );
    let o = ctsim!("conntrack", off, "--node", "r1", "--at", "1s");
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("conntrack: off"));
}

#[test]
fn router_sysctls_are_applied_or_rejected_at_their_key() {
    let t = TempDir::new("sysctl");
    let bad = t.file(
        "bad.yaml",
        BASE.replace(
            "ext0: 203.0.113.1/24 }\n",
            "ext0: 203.0.113.1/24 }\n    sysctl: { net.netfilter.nf_conntrack_tcp_lose: 0 }\n",
        ),
    );
    bad_input(&ctsim!("check", bad), &bad, "9:", "nf_conntrack_tcp_lose");
    let o = ctsim!("check", &bad);
    assert!(text(&o.stderr).contains("did you mean `net.netfilter.nf_conntrack_tcp_loose`?"));
    let value = t.file(
        "value.yaml",
        BASE.replace(
            "ext0: 203.0.113.1/24 }\n",
            "ext0: 203.0.113.1/24 }\n    sysctl: { net.netfilter.nf_conntrack_tcp_loose: 2 }\n",
        ),
    );
    bad_input(&ctsim!("check", value), &value, "9:", "Invalid argument");
    let good = t.file(
        "good.yaml",
        BASE.replace(
            "ext0: 203.0.113.1/24 }\n",
            "ext0: 203.0.113.1/24 }\n    sysctl: { net.netfilter.nf_conntrack_max: 5 }\n",
        ),
    );
    assert_eq!(code(&ctsim!("check", good)), 0);
}

#[test]
fn conntrack_checks_name_a_tracking_router() {
    let t = TempDir::new("ct-checks");
    let host = t.file(
        "host.yaml",
        format!("{BASE}checks:\n  - {{ on: a, table: conntrack, count: 0 }}\n"),
    );
    bad_input(&ctsim!("check", host), &host, "14:11", "is a host");
    let off = t.file(
        "off.yaml",
        format!(
            "{}checks:\n  - {{ on: r1, stat: invalid, value: 0 }}\n",
            BASE.replace(
                "ext0: 203.0.113.1/24 }\n",
                "ext0: 203.0.113.1/24 }\n    conntrack: off\n"
            )
        ),
    );
    bad_input(
        &ctsim!("check", off),
        &off,
        "15:11",
        "tracks no connections",
    );
    let two = t.file(
        "two.yaml",
        format!("{BASE}checks:\n  - {{ on: r1, table: conntrack, count: 0, contains: x }}\n"),
    );
    bad_input(&ctsim!("check", two), &two, "14:", "tests one thing");
}

fn nat(name: &str) -> PathBuf {
    root().join("scenarios/nat").join(name)
}

/// `ctsim ruleset` prints iptables-save -c at the instant (counters as
/// they stand there), one table with -t, and `iptables -L -v -n` with -L.
#[test]
fn ruleset_prints_the_counters_at_an_instant() {
    let file = nat("masquerade-home.yaml");
    let o = ctsim!("ruleset", file, "--node", "home", "--at", "5ms");
    assert_eq!(code(&o), 0);
    let before = text(&o.stdout);
    assert!(
        before.contains("[0:0] -A POSTROUTING -o wan0 -j MASQUERADE"),
        "{before}"
    );
    assert!(before.starts_with(
        "# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 1970\n*nat\n"
    ));
    let o = ctsim!("ruleset", file, "--node", "home", "--at", "50ms", "-t", "nat");
    let after = text(&o.stdout);
    assert!(
        after.contains("[3:188] -A POSTROUTING -o wan0 -j MASQUERADE"),
        "{after}"
    );
    let o = ctsim!("ruleset", file, "--node", "home", "--at", "50ms", "-t", "filter");
    assert_eq!(
        (code(&o), text(&o.stdout)),
        (0, String::new()),
        "no filter table"
    );
    let o =
        ctsim!("ruleset", file, "--node", "home", "--at", "50ms", "-t", "nat", "-L", "-v", "-n");
    let list = text(&o.stdout);
    assert!(
        list.starts_with("Chain PREROUTING (policy ACCEPT 3 packets, 188 bytes)\n"),
        "{list}"
    );
    for (args, words) in [
        (vec!["-t", "bogus"], "unknown table `bogus`"),
        (vec!["--node", "alice"], "is a host"),
        (vec!["--node", "nope"], "unknown node `nope`"),
    ] {
        let mut all = vec!["ruleset", file.to_str().unwrap(), "--at", "1s"];
        if !args.contains(&"--node") {
            all.extend(["--node", "home"]);
        }
        all.extend(args);
        let os: Vec<&std::ffi::OsStr> = all.iter().map(std::ffi::OsStr::new).collect();
        let o = ctsim(&os);
        assert_eq!(code(&o), 2, "{all:?}");
        assert!(
            text(&o.stderr).contains(words),
            "{all:?}: {}",
            text(&o.stderr)
        );
    }
}

/// `ctsim trace` shows one packet's walk; an unknown packet is bad input.
#[test]
fn trace_shows_one_packets_walk() {
    let file = nat("snat-port-clash.yaml");
    let o = ctsim!("trace", file, "--packet", "src 192.0.2.130");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("0.020000000  b eth0  sent  tcp 192.0.2.130:40000 > 198.51.100.2:80 S"),
        "{out}"
    );
    assert!(out.contains("  POSTROUTING  nat        rule 1: -A POSTROUTING -o wan0 -j SNAT --to-source 198.51.100.1\n"), "{out}");
    assert!(
        out.contains("not consulted: the connection's binding is already made"),
        "{out}"
    );
    let o = ctsim!("trace", file, "--packet", "src 192.0.2.130", "--nth", "3");
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("fewer than 3 packets"),
        "{}",
        text(&o.stderr)
    );
    let o = ctsim!("trace", file, "--packet", "udp");
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("no packet at a router matches `udp`"));
}

/// `ctsim linux-diff` refuses, with exit 2 and the reason, before touching
/// the kernel: several routers and none named, and apps on the router.
#[test]
fn linux_diff_says_what_it_cannot_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let two = root.join("scenarios/basics/two-routers.yaml");
    let o = ctsim!("linux-diff", two);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("name one with --router (r1, r2)"),
        "{}",
        text(&o.stderr)
    );
    let apps = root.join("scenarios/netfilter/router-services.yaml");
    let o = ctsim!("linux-diff", apps);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("cannot replay what the router's own programs send"),
        "{}",
        text(&o.stderr)
    );
}
