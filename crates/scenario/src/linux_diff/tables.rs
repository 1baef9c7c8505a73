//! The router's tables at a check instant, from both sides, and how they
//! compare: `conntrack -L`, `conntrack -L expect`, `conntrack -S` and
//! `iptables-save -c`.

use std::collections::BTreeMap;

use super::packets::PortMap;

/// How far the seconds left on an entry or expectation may differ when the
/// replay kept time: both sides print whole seconds, and the kernel's side
/// is read a moment after the instant. A replay that fell behind (a loaded
/// machine) adds its lag (see [`tolerance`]).
pub const TIMEOUT_TOLERANCE: u64 = 2;

/// The tolerance for a replay that ran up to `lag` late.
pub fn tolerance(lag: std::time::Duration) -> u64 {
    TIMEOUT_TOLERANCE + lag.as_secs_f64().ceil() as u64
}

/// One side's view at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub conntrack: Vec<String>,
    pub expect: Vec<String>,
    /// `conntrack -S`, summed over CPUs (Linux prints a line per CPU).
    pub stats: BTreeMap<String, u64>,
    /// `iptables-save -c` without its comment lines.
    pub rules: Vec<String>,
}

impl Snapshot {
    pub(crate) fn lines(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn rules(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn stats(text: &str) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for word in text.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            if k == "cpu" {
                continue;
            }
            if let Ok(v) = v.parse::<u64>() {
                *sum.entry(k.to_string()).or_insert(0) += v;
            }
        }
        sum
    }
}

/// One table's comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableDiff {
    /// Lines both have (ctsim's text), with the two timeouts when they have one.
    pub same: Vec<(String, Option<(u64, u64)>)>,
    pub only_ctsim: Vec<String>,
    pub only_linux: Vec<String>,
    /// Lines that agree but for a timeout beyond the tolerance: (ctsim, linux).
    pub timeout: Vec<(String, String)>,
    /// Lines on one side only that were within the tolerance of expiring:
    /// the other side may have let them go a moment earlier (side, line).
    pub expiring: Vec<(&'static str, String)>,
}

impl TableDiff {
    pub fn agrees(&self) -> bool {
        self.only_ctsim.is_empty() && self.only_linux.is_empty() && self.timeout.is_empty()
    }
}

/// Where the seconds-left field is: the third word of an entry
/// (`tcp      6 118 SYN_SENT …`), the first of an expectation.
#[derive(Clone, Copy)]
pub(crate) enum TimeoutField {
    Third,
    First,
}

/// Splits off the timeout: (the line with it blanked, the timeout).
fn key(line: &str, field: TimeoutField) -> (String, Option<u64>) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = match field {
        TimeoutField::Third => 2,
        TimeoutField::First => 0,
    };
    let t = words.get(at).and_then(|w| w.parse::<u64>().ok());
    let blanked: Vec<&str> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == at && t.is_some() { "*" } else { w })
        .collect();
    (blanked.join(" "), t)
}

/// `line` from ctsim with the ports NAT chose replaced by the kernel's: a
/// tuple's `dst=A … dport=P` (and `src=A … sport=P`) pair, for the line's
/// protocol.
pub(crate) fn translate_line(line: &str, ports: &PortMap) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let proto: Option<u8> = match words.first().copied() {
        Some("tcp") => Some(6),
        Some("udp") => Some(17),
        _ => words
            .iter()
            .find_map(|w| w.strip_prefix("proto="))
            .and_then(|p| p.parse().ok()),
    };
    let Some(proto) = proto else {
        return line.to_string();
    };
    let (mut src, mut dst) = (None, None);
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        if let Some(a) = w.strip_prefix("src=") {
            src = a.parse().ok();
        } else if let Some(a) = w.strip_prefix("dst=") {
            dst = a.parse().ok();
        }
        let swapped = [("sport=", src), ("dport=", dst)]
            .into_iter()
            .find_map(|(prefix, addr)| {
                let port: u16 = w.strip_prefix(prefix)?.parse().ok()?;
                let new = ports.get(proto, addr?, port)?;
                Some(format!("{prefix}{new}"))
            });
        out.push(swapped.unwrap_or_else(|| w.to_string()));
    }
    out.join(" ")
}

/// Compares two line lists as multisets (Linux lists entries in hash
/// order), timeouts within [`TIMEOUT_TOLERANCE`].
pub(crate) fn compare(
    ctsim: &[String],
    linux: &[String],
    field: TimeoutField,
    ports: &PortMap,
    tolerance: u64,
) -> TableDiff {
    let mut theirs: Vec<(String, Option<u64>, &String)> = linux
        .iter()
        .map(|l| {
            let (k, t) = key(l, field);
            (k, t, l)
        })
        .collect();
    let mut d = TableDiff::default();
    let mut near = Vec::new();
    for line in ctsim {
        let ours = translate_line(line, ports);
        let (k, t) = key(&ours, field);
        let hit = theirs.iter().position(|(tk, tt, _)| {
            *tk == k
                && match (t, tt) {
                    (Some(a), Some(b)) => a.abs_diff(*b) <= tolerance,
                    _ => true,
                }
        });
        match hit {
            Some(i) => {
                let (_, tt, _) = theirs.remove(i);
                d.same.push((line.clone(), t.zip(tt)));
            }
            None => near.push((line.clone(), k)),
        }
    }
    let expiring = |t: Option<u64>| t.is_some_and(|t| t <= tolerance);
    for (line, k) in near {
        match theirs.iter().position(|(tk, _, _)| *tk == k) {
            Some(i) => {
                let (_, _, l) = theirs.remove(i);
                d.timeout.push((line, l.clone()));
            }
            None if expiring(key(&line, field).1) => d.expiring.push(("ctsim", line)),
            None => d.only_ctsim.push(line),
        }
    }
    for (_, t, l) in theirs {
        if expiring(t) {
            d.expiring.push(("linux", l.clone()));
        } else {
            d.only_linux.push(l.clone());
        }
    }
    d
}

/// Compares ordered lines (iptables-save): a line-by-line diff.
pub(crate) fn compare_ordered(ctsim: &[String], linux: &[String]) -> TableDiff {
    let mut d = TableDiff::default();
    let (n, m) = (ctsim.len(), linux.len());
    // Longest common subsequence, small inputs.
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if ctsim[i] == linux[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && ctsim[i] == linux[j] {
            d.same.push((ctsim[i].clone(), None));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            d.only_linux.push(linux[j].clone());
            j += 1;
        } else {
            d.only_ctsim.push(ctsim[i].clone());
            i += 1;
        }
    }
    d
}

/// `conntrack -S` counters that differ: (name, ctsim, linux). A counter one
/// side does not print counts as 0 (a router with `conntrack: off` prints
/// none in ctsim; Linux prints zeros where nothing is tracked).
pub(crate) fn compare_stats(
    ctsim: &BTreeMap<String, u64>,
    linux: &BTreeMap<String, u64>,
) -> Vec<(String, Option<u64>, Option<u64>)> {
    let names: std::collections::BTreeSet<&String> = ctsim.keys().chain(linux.keys()).collect();
    names
        .into_iter()
        .filter_map(|k| {
            let (a, b) = (ctsim.get(k).copied(), linux.get(k).copied());
            (a.unwrap_or(0) != b.unwrap_or(0)).then(|| (k.clone(), a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_summed_over_cpus() {
        let text = "cpu=0   \tfound=1 invalid=2 drop=0\ncpu=1   \tfound=0 invalid=3 drop=1\n";
        let s = Snapshot::stats(text);
        assert_eq!(s["found"], 1);
        assert_eq!(s["invalid"], 5);
        assert_eq!(s["drop"], 1);
        assert!(!s.contains_key("cpu"));
    }

    #[test]
    fn entries_compare_in_any_order_with_timeouts_within_tolerance() {
        let a = "udp      17 28 src=192.0.2.2 dst=198.51.100.2 sport=1 dport=2 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=2 dport=1 mark=0 use=1";
        let b = "tcp      6 118 SYN_SENT src=192.0.2.2 dst=198.51.100.2 sport=1 dport=2 [UNREPLIED] src=198.51.100.2 dst=192.0.2.2 sport=2 dport=1 mark=0 use=1";
        let ours = vec![a.to_string(), b.to_string()];
        let linux = vec![b.replace(" 118 ", " 117 "), a.replace(" 28 ", " 20 ")];
        let d = compare(
            &ours,
            &linux,
            TimeoutField::Third,
            &PortMap::default(),
            TIMEOUT_TOLERANCE,
        );
        assert_eq!(d.same.len(), 1);
        assert_eq!(d.timeout.len(), 1, "8 s apart is beyond the tolerance");
        assert!(d.only_ctsim.is_empty() && d.only_linux.is_empty());
    }

    #[test]
    fn ordered_rules_show_what_each_side_lacks() {
        let ours: Vec<String> = ["*filter", "[1:60] -A FORWARD -j ACCEPT", "COMMIT"]
            .map(String::from)
            .to_vec();
        let linux: Vec<String> = ["*filter", "[2:120] -A FORWARD -j ACCEPT", "COMMIT"]
            .map(String::from)
            .to_vec();
        let d = compare_ordered(&ours, &linux);
        assert_eq!(d.only_ctsim, vec!["[1:60] -A FORWARD -j ACCEPT"]);
        assert_eq!(d.only_linux, vec!["[2:120] -A FORWARD -j ACCEPT"]);
        assert_eq!(d.same.len(), 2);
    }
}
