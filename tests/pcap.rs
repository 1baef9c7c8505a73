//! pcap files: every scenario run with capture, written with `write_pcaps`,
//! read back with pcap-file. One file per link, LINKTYPE_RAW (101) with
//! nanosecond timestamps; as many packets as the link's `sent` counters, and
//! the same bytes, at the same times, as the trace says entered the link.
//! When `tshark` is on PATH it must read every file cleanly, one line per
//! packet.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ctsim_scenario::{RunOptions, RunOutput};
use ctsim_tests::{load_file, run, scenario_files, scenario_key, trace_into_link, TempDir};
use pcap_file::pcap::PcapReader;
use pcap_file::{DataLink, TsResolution};

/// A link's packets as read back from its file: (time in ns, bytes).
type Packets = Vec<(u64, Vec<u8>)>;

fn capture() -> RunOptions {
    RunOptions {
        timeline: true,
        capture: true,
        ..RunOptions::default()
    }
}

/// Runs `path` with capture and writes its pcap files into `dir`.
fn run_into(path: &Path, dir: &Path) -> RunOutput {
    let (s, source) = load_file(path);
    let out = run(&s, &source, &capture());
    out.write_pcaps(dir)
        .unwrap_or_else(|e| panic!("{}: write_pcaps: {e}", path.display()));
    out
}

/// Reads a file written by `write_pcaps`, checking its header on the way.
fn read_pcap(file: &Path) -> Packets {
    let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // Checked by hand as well as by pcap-file: the nanosecond magic
    // (a1b23c4d, here little-endian) and link type 101 at offset 20.
    assert_eq!(
        raw.get(..4),
        Some(&[0x4d, 0x3c, 0xb2, 0xa1][..]),
        "{}: not a little-endian nanosecond pcap",
        file.display()
    );
    assert_eq!(
        raw.get(20..24),
        Some(&101u32.to_le_bytes()[..]),
        "{}: link type is not LINKTYPE_RAW (101)",
        file.display()
    );
    let mut reader = PcapReader::new(File::open(file).expect("open pcap")).expect("pcap header");
    let header = reader.header();
    assert_eq!(header.datalink, DataLink::RAW, "{}", file.display());
    assert_eq!(
        header.ts_resolution,
        TsResolution::NanoSecond,
        "{}",
        file.display()
    );
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: bad packet record: {e}", file.display()));
        assert_eq!(
            p.orig_len as usize,
            p.data.len(),
            "{}: packet cut short",
            file.display()
        );
        let ns = u64::try_from(p.timestamp.as_nanos()).expect("timestamp fits u64");
        packets.push((ns, p.data.into_owned()));
    }
    packets
}

/// The `.pcap` files in `dir`, sorted.
fn pcap_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list pcap dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_pcaps_match_counters_and_trace() {
    for path in scenario_files() {
        let key = scenario_key(&path);
        let dir = TempDir::new("pcap");
        let out = run_into(&path, dir.path());
        let mut expected: Vec<PathBuf> = out
            .links
            .iter()
            .map(|l| dir.path().join(format!("{}.pcap", l.name)))
            .collect();
        expected.sort();
        assert_eq!(pcap_files(dir.path()), expected, "{key}: one file per link");
        for (i, l) in out.links.iter().enumerate() {
            let packets = read_pcap(&dir.path().join(format!("{}.pcap", l.name)));
            let sent: u64 = l.stats.iter().map(|s| s.sent).sum();
            assert_eq!(
                packets.len() as u64,
                sent,
                "{key}: link {}: packets in the pcap vs the links' sent counters",
                l.name
            );
            // What the trace says entered the link, in the order it did.
            let traced: Packets = trace_into_link(&out, i)
                .into_iter()
                .map(|r| (r.time.nanos(), r.packet.to_vec()))
                .collect();
            assert_eq!(
                packets.len(),
                traced.len(),
                "{key}: link {}: pcap vs trace packet count",
                l.name
            );
            for (n, (c, t)) in packets.iter().zip(&traced).enumerate() {
                assert!(
                    c == t,
                    "{key}: link {}: packet {n} differs:\n  pcap  {} {}\n  trace {} {}",
                    l.name,
                    c.0,
                    ctsim_packet::show(&c.1),
                    t.0,
                    ctsim_packet::show(&t.1)
                );
            }
        }
    }
}

/// Starts `tshark -r FILE -T fields -e ip.src -e ip.dst`.
fn tshark(file: &Path) -> std::process::Child {
    Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "ip.src", "-e", "ip.dst"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tshark")
}

fn tshark_available() -> Result<(), String> {
    match Command::new("tshark")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`tshark -v` exited with {s}")),
        Err(e) => Err(format!("tshark is not on PATH ({e})")),
    }
}

/// stderr lines tshark prints that are about the environment, not the file.
fn benign(line: &str) -> bool {
    line.trim().is_empty() || line.contains("This could be dangerous")
}

#[test]
fn tshark_reads_every_pcap() {
    if let Err(why) = tshark_available() {
        println!(
            "!!!!!!!! SKIPPED the tshark part of tests/pcap.rs: {why}. CI installs tshark; install it (apt-get install tshark) to run it. !!!!!!!!"
        );
        eprintln!("!!!!!!!! SKIPPED tshark checks: {why} !!!!!!!!");
        return;
    }
    let dir = TempDir::new("tshark");
    let mut files = Vec::new();
    for path in scenario_files() {
        let sub = dir.path().join(scenario_key(&path));
        let out = run_into(&path, &sub);
        for l in &out.links {
            files.push(sub.join(format!("{}.pcap", l.name)));
        }
    }
    // A few tshark processes at a time: each takes about half a second to start.
    for chunk in files.chunks(4) {
        let children: Vec<_> = chunk.iter().map(|f| tshark(f)).collect();
        for (file, child) in chunk.iter().zip(children) {
            let packets = read_pcap(file);
            let out = child.wait_with_output().expect("tshark output");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let name = file.strip_prefix(dir.path()).unwrap_or(file).display();
            assert!(
                out.status.success(),
                "tshark {name}: {}\n{stderr}",
                out.status
            );
            let warnings: Vec<&str> = stderr.lines().filter(|l| !benign(l)).collect();
            assert!(
                warnings.is_empty(),
                "tshark {name} warns:\n{}",
                warnings.join("\n")
            );
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(
                lines.len(),
                packets.len(),
                "tshark {name}: lines vs packets\n{stdout}"
            );
            for (line, (_, bytes)) in lines.iter().zip(&packets) {
                let literal = ctsim_packet::show(bytes);
                let has_src = line.split('\t').next().is_some_and(|src| !src.is_empty());
                assert!(
                    has_src || literal.starts_with("malformed"),
                    "tshark {name}: no IPv4 source in {line:?} for {literal}"
                );
            }
        }
    }
}
