//! What an administrator types on a router during a run: `iptables …`
//! (applied to the router's ruleset) and `conntrack -F/-D/-U` (applied to
//! its table), each leaving a [`What::Command`](crate::What::Command)
//! record with the command and what the tool printed.

use std::net::Ipv4Addr;

use ctsim_conntrack::{Filter, FormatOpts, Table};

use super::ct::Ct;

/// The conntrack-tools version whose messages ctsim prints.
const CONNTRACK_TOOL: &str = "conntrack v1.4.7 (conntrack-tools)";

/// A parsed `conntrack` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtCommand {
    /// `-F`: delete every entry.
    Flush,
    /// `-D [filter]`: delete the matching entries.
    Delete(Filter),
    /// `-U [filter] --mark N`: set the connection mark of the matching
    /// entries.
    Update(Filter, u32),
}

impl CtCommand {
    /// Parses `conntrack` arguments (`-F`, `-D -p tcp --dport 22`,
    /// `-U -s 192.0.2.2 --mark 1`). Errors say which word is wrong and
    /// what is accepted.
    pub fn parse(args: &str) -> Result<CtCommand, String> {
        let words: Vec<&str> = args.split_whitespace().collect();
        let mut op: Option<&str> = None;
        let mut f = Filter::default();
        let mut mark: Option<(u32, u32)> = None;
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let mut value = || -> Result<&str, String> {
                i += 1;
                words
                    .get(i)
                    .copied()
                    .ok_or_else(|| format!("option `{w}` needs a value"))
            };
            match w {
                "-F" | "--flush" | "-D" | "--delete" | "-U" | "--update" => {
                    if let Some(prev) = op {
                        return Err(format!("`{w}` after `{prev}`: give one command"));
                    }
                    op = Some(w);
                }
                "-p" | "--proto" => f.proto = Some(proto(value()?)?),
                "-s" | "--src" | "--orig-src" => f.orig_src = Some(addr(w, value()?)?),
                "-d" | "--dst" | "--orig-dst" => f.orig_dst = Some(addr(w, value()?)?),
                "-r" | "--reply-src" => f.reply_src = Some(addr(w, value()?)?),
                "-q" | "--reply-dst" => f.reply_dst = Some(addr(w, value()?)?),
                "--sport" | "--orig-port-src" => f.sport = Some(port(w, value()?)?),
                "--dport" | "--orig-port-dst" => f.dport = Some(port(w, value()?)?),
                "-w" | "--zone" => f.zone = Some(ctsim_conntrack::Zone(port(w, value()?)?)),
                "-m" | "--mark" => mark = Some(mark_value(value()?)?),
                other => {
                    return Err(format!(
                        "unknown option `{other}`: ctsim's conntrack takes -F, -D or -U with \
                         -p, -s, -d, -r, -q, --sport, --dport, -w and -m/--mark"
                    ))
                }
            }
            i += 1;
        }
        match op {
            Some("-F" | "--flush") if words.len() == 1 => Ok(CtCommand::Flush),
            Some("-F" | "--flush") => Err("-F takes no other option".into()),
            Some("-D" | "--delete") => {
                f.mark = mark;
                Ok(CtCommand::Delete(f))
            }
            Some(_) => match mark {
                Some((m, _)) => Ok(CtCommand::Update(f, m)),
                None => Err("-U needs --mark N (the mark to set)".into()),
            },
            None => Err("give a command: -F, -D or -U".into()),
        }
    }

    /// Runs the command on `ct` at `now`: what the tool prints, stdout
    /// lines then the stderr summary.
    pub(super) fn run(&self, ct: &mut Ct, now: ctsim_conntrack::time::Instant) -> String {
        let table = &mut ct.table;
        match self {
            CtCommand::Flush => {
                table.flush(now);
                format!("{CONNTRACK_TOOL}: connection tracking table has been emptied.")
            }
            CtCommand::Delete(f) => {
                let lines = table.delete(f, FormatOpts::default(), now);
                summary(&lines, "deleted")
            }
            CtCommand::Update(f, mark) => {
                let keys: Vec<_> = table
                    .keys(Table::Conntrack, now)
                    .into_iter()
                    .filter(|&k| table.get(k).is_some_and(|e| f.matches(e)))
                    .collect();
                let mut lines = Vec::with_capacity(keys.len());
                for k in keys {
                    table.set_mark(k, *mark);
                    if let Some(l) = table.entry_line(k, FormatOpts::default(), now) {
                        lines.push(l);
                    }
                }
                summary(&lines, "updated")
            }
        }
    }
}

/// The entries' lines, then `N flow entries have been <verb>.`
fn summary(lines: &[String], verb: &str) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "{CONNTRACK_TOOL}: {} flow entries have been {verb}.",
        lines.len()
    ));
    s
}

fn proto(v: &str) -> Result<u8, String> {
    match v {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "icmp" => Ok(1),
        _ => v
            .parse()
            .map_err(|_| format!("unknown protocol `{v}`: tcp, udp, icmp or a number")),
    }
}

fn addr(opt: &str, v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("`{opt}` takes an IPv4 address, not `{v}`"))
}

fn port(opt: &str, v: &str) -> Result<u16, String> {
    v.parse()
        .map_err(|_| format!("`{opt}` takes a number 0-65535, not `{v}`"))
}

/// `N` or `N/MASK`, decimal or 0x-hex.
fn mark_value(v: &str) -> Result<(u32, u32), String> {
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    let (m, mask) = match v.split_once('/') {
        Some((m, k)) => (num(m), num(k)),
        None => (num(v), Some(u32::MAX)),
    };
    match (m, mask) {
        (Some(m), Some(k)) => Ok((m, k)),
        _ => Err(format!("--mark takes N or N/MASK, not `{v}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_conntrack_takes_them() {
        assert_eq!(CtCommand::parse("-F"), Ok(CtCommand::Flush));
        let d = CtCommand::parse("-D -p tcp --dport 22 -s 192.0.2.2").unwrap();
        let CtCommand::Delete(f) = d else {
            panic!("{d:?}")
        };
        assert_eq!((f.proto, f.dport), (Some(6), Some(22)));
        assert_eq!(f.orig_src, Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(
            CtCommand::parse("-U -p udp --mark 0x10"),
            Ok(CtCommand::Update(
                Filter {
                    proto: Some(17),
                    ..Filter::default()
                },
                16
            ))
        );
        for bad in ["", "-U -p tcp", "-F -p tcp", "-D --dport x", "-L", "-F -D"] {
            assert!(CtCommand::parse(bad).is_err(), "{bad}");
        }
    }
}
