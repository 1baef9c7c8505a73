//! The whole ruleset: loading iptables-restore input and applying
//! `iptables` commands.

use crate::model::*;
use crate::parse::{parse_rule, tokenize, Cursor, ParseError};

/// All five tables of one network namespace.
#[derive(Clone, Debug)]
pub struct Ruleset {
    /// Indexed by `TableKind as usize`.
    pub tables: [Table; 5],
}

impl Default for Ruleset {
    fn default() -> Self {
        Ruleset {
            tables: TableKind::ALL.map(Table::new),
        }
    }
}

fn counters(t: &str) -> Option<Counters> {
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

impl Ruleset {
    /// An empty ruleset (no table present, all policies ACCEPT).
    pub fn new() -> Ruleset {
        Ruleset::default()
    }

    /// The table `kind`.
    pub fn table(&self, kind: TableKind) -> &Table {
        &self.tables[kind as usize]
    }

    /// Parses iptables-restore input (`iptables-save` output) into a new
    /// ruleset; counters (`[p:b]`) are loaded as `iptables-restore -c` does.
    pub fn parse(text: &str) -> Result<Ruleset, ParseError> {
        let mut rs = Ruleset::new();
        rs.restore(text)?;
        Ok(rs)
    }

    /// Applies iptables-restore input: each `*table ... COMMIT` block
    /// replaces that table (no `--noflush`). Nothing changes on error.
    pub fn restore(&mut self, text: &str) -> Result<(), ParseError> {
        let mut next = self.tables.clone();
        let mut cur: Option<(Table, usize)> = None;
        let mut last_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            last_line = line;
            let s = raw.trim();
            if s.is_empty() || s.starts_with('#') {
                continue;
            }
            let err = |col: usize, m: String| ParseError {
                line,
                column: col,
                message: m,
            };
            let col0 = raw.len() - raw.trim_start().len() + 1;
            if let Some(name) = s.strip_prefix('*') {
                if cur.is_some() {
                    return Err(err(
                        col0,
                        "table started before COMMIT of the previous one".into(),
                    ));
                }
                let kind = TableKind::from_name(name).ok_or_else(|| {
                    err(col0 + 1, format!("unknown table \"{name}\" (accepted: raw, mangle, nat, filter, security)"))
                })?;
                let mut t = Table::new(kind);
                t.present = true;
                cur = Some((t, line));
                continue;
            }
            let Some((table, _)) = cur.as_mut() else {
                return Err(err(col0, "expected *table first (e.g. *filter)".into()));
            };
            if s == "COMMIT" {
                let (mut t, _) = cur.take().expect("current table");
                if let Err((ci, ri, name)) = t.relink() {
                    return Err(ParseError {
                        line,
                        column: col0,
                        message: format!(
                            "chain {}, rule {}: jump to unknown chain \"{name}\"",
                            t.chains[ci].name,
                            ri + 1
                        ),
                    });
                }
                if let Err((ci, ri, m)) = check_table(&t) {
                    return Err(ParseError {
                        line,
                        column: col0,
                        message: format!("chain {}, rule {}: {m}", t.chains[ci].name, ri + 1),
                    });
                }
                let k = t.kind as usize;
                next[k] = t;
                continue;
            }
            if let Some(rest) = s.strip_prefix(':') {
                let toks = tokenize(rest, line, false)?;
                let name = toks.first().map(|t| t.text.as_str()).unwrap_or("");
                let policy = toks.get(1).map(|t| t.text.as_str()).unwrap_or("");
                let c = toks
                    .get(2)
                    .and_then(|t| counters(&t.text))
                    .unwrap_or_default();
                if let Some(h) = Hook::from_name(name).filter(|h| table.kind.builtin().contains(h))
                {
                    let p = match policy {
                        "ACCEPT" => Policy::Accept,
                        "DROP" => Policy::Drop,
                        _ => {
                            return Err(err(
                                col0 + 1 + name.len() + 1,
                                format!("bad policy \"{policy}\" (accepted: ACCEPT, DROP)"),
                            ))
                        }
                    };
                    let ch = table
                        .chains
                        .iter_mut()
                        .find(|c| c.name == h.name())
                        .expect("builtin");
                    ch.policy = Some(p);
                    ch.counters = c;
                } else {
                    if policy != "-" {
                        return Err(err(col0, format!("\"{name}\" is not a built-in chain of table {}; user chains take \"-\" as policy", table.kind.name())));
                    }
                    check_chain_name(name).map_err(|m| err(col0 + 1, m))?;
                    if table.chain_index(name).is_some() {
                        return Err(err(col0 + 1, format!("chain \"{name}\" already exists")));
                    }
                    table.add_user_chain(name);
                }
                continue;
            }
            let toks = tokenize(raw, line, false)?;
            let mut c = Cursor {
                toks: &toks,
                pos: 0,
                line,
                end_col: raw.len() + 1,
            };
            let mut rule_counters = None;
            if let Some(t) = c.peek() {
                if t.text.starts_with('[') {
                    rule_counters = Some(counters(&t.text).ok_or_else(|| {
                        err(
                            t.col,
                            format!("bad counters \"{}\" (expected [packets:bytes])", t.text),
                        )
                    })?);
                    c.next();
                }
            }
            apply_tokens(table, &mut c, rule_counters)?;
        }
        if let Some((t, l)) = cur {
            return Err(ParseError {
                line: last_line.max(l),
                column: 1,
                message: format!("table {} not committed (COMMIT missing)", t.kind.name()),
            });
        }
        self.tables = next;
        Ok(())
    }

    /// Applies one `iptables` command (without the leading `iptables`),
    /// e.g. `-t nat -A POSTROUTING -o wan0 -j MASQUERADE`.
    pub fn command(&mut self, cmd: &str) -> Result<(), ParseError> {
        let toks = tokenize(cmd, 1, true)?;
        let mut kind = TableKind::Filter;
        let mut rest = Vec::with_capacity(toks.len());
        let mut i = 0;
        while i < toks.len() {
            if toks[i].text == "-t" || toks[i].text == "--table" {
                let v = toks.get(i + 1).ok_or_else(|| ParseError {
                    line: 1,
                    column: toks[i].col,
                    message: "option \"-t\" requires an argument".into(),
                })?;
                kind = TableKind::from_name(&v.text).ok_or_else(|| ParseError {
                    line: 1,
                    column: v.col,
                    message: format!(
                        "unknown table \"{}\" (accepted: raw, mangle, nat, filter, security)",
                        v.text
                    ),
                })?;
                i += 2;
            } else {
                rest.push(toks[i].clone());
                i += 1;
            }
        }
        let mut table = self.tables[kind as usize].clone();
        table.present = true;
        let mut c = Cursor {
            toks: &rest,
            pos: 0,
            line: 1,
            end_col: cmd.len() + 1,
        };
        apply_tokens(&mut table, &mut c, None)?;
        if let Err((ci, ri, name)) = table.relink() {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: format!(
                    "chain {}, rule {}: jump to unknown chain \"{name}\"",
                    table.chains[ci].name,
                    ri + 1
                ),
            });
        }
        if let Err((ci, ri, m)) = check_table(&table) {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: format!("chain {}, rule {}: {m}", table.chains[ci].name, ri + 1),
            });
        }
        self.tables[kind as usize] = table;
        Ok(())
    }
}

/// `xt_check_target`/`xt_check_match` at load time: targets valid only in
/// some tables or hooks, checked for every hook that reaches a rule through
/// jumps (`mark_source_chains`). Returns (chain index, rule index, message).
pub(crate) fn check_table(t: &Table) -> Result<(), (usize, usize, String)> {
    let n = t.chains.len();
    let mut hooks = vec![0u8; n];
    for (i, h) in t.kind.builtin().iter().enumerate() {
        // Built-in chains come first, in `builtin()` order.
        let mut todo = vec![i];
        let bit = 1u8 << (*h as u8);
        while let Some(ci) = todo.pop() {
            if hooks[ci] & bit != 0 {
                continue;
            }
            hooks[ci] |= bit;
            for r in &t.chains[ci].rules {
                if r.jump < n {
                    todo.push(r.jump);
                }
            }
        }
    }
    use Hook::*;
    let mask = |hs: &[Hook]| hs.iter().fold(0u8, |m, h| m | 1 << (*h as u8));
    for (ci, ch) in t.chains.iter().enumerate() {
        for (ri, r) in ch.rules.iter().enumerate() {
            for m in &r.spec.matches {
                if let Match::Addrtype {
                    limit_in,
                    limit_out,
                    ..
                } = *m
                {
                    let msg = if limit_in && limit_out {
                        "addrtype: both incoming and outgoing interface limitation cannot be selected"
                    } else if limit_out && hooks[ci] & mask(&[Prerouting, Input]) != 0 {
                        "addrtype: output interface limitation not valid in PREROUTING and INPUT"
                    } else if limit_in && hooks[ci] & mask(&[Output, Postrouting]) != 0 {
                        "addrtype: input interface limitation not valid in POSTROUTING and OUTPUT"
                    } else {
                        continue;
                    };
                    return Err((ci, ri, msg.into()));
                }
            }
            let tg = &r.spec.target;
            let (table, allowed): (Option<TableKind>, u8) = match tg {
                Target::Snat(_) => (Some(TableKind::Nat), mask(&[Input, Postrouting])),
                Target::Dnat(_) | Target::Redirect(_) => {
                    (Some(TableKind::Nat), mask(&[Prerouting, Output]))
                }
                Target::Masquerade(_) => (Some(TableKind::Nat), mask(&[Postrouting])),
                // xt_CT.c: `.table = "raw"`. TRACE is accepted in any table
                // (checked: the kernel loaded `-A FORWARD -j TRACE` in filter,
                // tests/kernel/a-input.rules).
                Target::Ct(_) | Target::Notrack => (Some(TableKind::Raw), 0x1f),
                Target::Reject(_) => (None, mask(&[Input, Forward, Output])),
                Target::Drop if t.kind == TableKind::Nat => {
                    return Err((ci, ri, "the \"nat\" table is not intended for filtering, the use of DROP is therefore inhibited".into()));
                }
                _ => (None, 0x1f),
            };
            if let Some(want) = table {
                if want != t.kind {
                    return Err((
                        ci,
                        ri,
                        format!(
                            "target {}: only valid in table {}, not {}",
                            tg.name(),
                            want.name(),
                            t.kind.name()
                        ),
                    ));
                }
            }
            let bad = hooks[ci] & !allowed;
            if bad != 0 {
                let names = |m: u8| {
                    let v: Vec<&str> = Hook::ALL
                        .iter()
                        .filter(|h| m & (1 << (**h as u8)) != 0)
                        .map(|h| h.name())
                        .collect();
                    v.join("/")
                };
                return Err((
                    ci,
                    ri,
                    format!(
                        "target {}: used from hooks {}, but only usable from {}",
                        tg.name(),
                        names(bad),
                        names(allowed)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_chain_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 28 || name.starts_with('-') || name.starts_with('!') {
        return Err(format!("invalid chain name \"{name}\""));
    }
    if crate::parse::is_target_name(name) {
        return Err(format!("chain name \"{name}\" is a target name"));
    }
    Ok(())
}

const COMMANDS: &str = "-A, -I, -D, -R, -F, -P, -N, -X, -Z";

fn apply_tokens(
    table: &mut Table,
    c: &mut Cursor<'_>,
    counters: Option<Counters>,
) -> Result<(), ParseError> {
    let Some(cmd) = c.next() else {
        return Err(c.err_at(1, format!("no command given (accepted: {COMMANDS})")));
    };
    let cmd_col = cmd.col;
    let op = cmd.text.as_str();
    let chain_arg =
        |c: &mut Cursor<'_>, required: bool| -> Result<Option<(String, usize)>, ParseError> {
            match c.peek() {
                Some(t) if !t.text.starts_with('-') || t.text == "-" => {
                    c.next();
                    Ok(Some((t.text.clone(), t.col)))
                }
                _ if required => {
                    Err(c.err_at(c.end_col, format!("option \"{op}\" requires a chain name")))
                }
                _ => Ok(None),
            }
        };
    let line = c.line;
    let find = |table: &Table, name: &str, col: usize| {
        table.chain_index(name).ok_or_else(|| ParseError {
            line,
            column: col,
            message: format!(
                "chain \"{name}\" does not exist in table {}",
                table.kind.name()
            ),
        })
    };
    let num = |c: &mut Cursor<'_>| -> Option<(usize, usize)> {
        let t = c.peek()?;
        let n: usize = t.text.parse().ok()?;
        c.next();
        Some((n, t.col))
    };
    match op {
        "-A" | "--append" | "-I" | "--insert" | "-R" | "--replace" | "-D" | "--delete" => {
            let (name, col) = chain_arg(c, true)?.expect("required");
            let ci = find(table, &name, col)?;
            let n = if matches!(
                op,
                "-I" | "--insert" | "-R" | "--replace" | "-D" | "--delete"
            ) {
                num(c)
            } else {
                None
            };
            let len = table.chains[ci].rules.len();
            let rules = &mut table.chains[ci].rules;
            match op {
                "-D" | "--delete" if n.is_some() && c.peek().is_none() => {
                    let (n, col) = n.expect("number");
                    if n == 0 || n > len {
                        return Err(c.err_at(col, "index of deletion too big"));
                    }
                    rules.remove(n - 1);
                }
                "-D" | "--delete" => {
                    let spec = parse_rule(c)?;
                    let pos = rules.iter().position(|r| r.spec == spec).ok_or_else(|| {
                        c.err_at(
                            cmd_col,
                            "Bad rule (does a matching rule exist in that chain?)",
                        )
                    })?;
                    rules.remove(pos);
                }
                _ => {
                    let spec = parse_rule(c)?;
                    // do_parse(): interfaces a built-in chain never has.
                    let bad = match name.as_str() {
                        "PREROUTING" | "INPUT" if spec.out_iface.is_some() => Some("o"),
                        "OUTPUT" | "POSTROUTING" if spec.in_iface.is_some() => Some("i"),
                        _ => None,
                    };
                    if let Some(flag) = bad {
                        let col = crate::parse::col_of(c, &[&format!("-{flag}")], None);
                        return Err(c.err_at(col, format!("Can't use -{flag} with {name}")));
                    }
                    let mut rule = Rule::new(spec);
                    rule.counters = counters.unwrap_or_default();
                    match op {
                        "-A" | "--append" => rules.push(rule),
                        "-I" | "--insert" => {
                            let (n, col) = n.unwrap_or((1, cmd_col));
                            if n == 0 || n > len + 1 {
                                return Err(c.err_at(col, "index of insertion too big"));
                            }
                            rules.insert(n - 1, rule);
                        }
                        _ => {
                            let (n, col) =
                                n.ok_or_else(|| c.err_at(c.end_col, "-R needs a rule number"))?;
                            if n == 0 || n > len {
                                return Err(c.err_at(col, "index of replacement too big"));
                            }
                            rules[n - 1] = rule;
                        }
                    }
                }
            }
        }
        "-F" | "--flush" | "-Z" | "--zero" => {
            let which: Vec<usize> = match chain_arg(c, false)? {
                Some((name, col)) => vec![find(table, &name, col)?],
                None => (0..table.chains.len()).collect(),
            };
            for ci in which {
                let ch = &mut table.chains[ci];
                if op == "-F" || op == "--flush" {
                    ch.rules.clear();
                } else {
                    ch.counters = Counters::default();
                    for r in &mut ch.rules {
                        r.counters = Counters::default();
                    }
                }
            }
        }
        "-P" | "--policy" => {
            let (name, col) = chain_arg(c, true)?.expect("required");
            let ci = find(table, &name, col)?;
            let p = c
                .next()
                .ok_or_else(|| c.err_at(c.end_col, "-P needs a policy (ACCEPT or DROP)"))?;
            let pol = match p.text.as_str() {
                "ACCEPT" => Policy::Accept,
                "DROP" => Policy::Drop,
                _ => {
                    return Err(c.err_at(
                        p.col,
                        format!("bad policy \"{}\" (accepted: ACCEPT, DROP)", p.text),
                    ))
                }
            };
            let ch = &mut table.chains[ci];
            if ch.policy.is_none() {
                return Err(c.err_at(col, "can't set policy on a user-defined chain"));
            }
            ch.policy = Some(pol);
        }
        "-N" | "--new-chain" => {
            let (name, col) = chain_arg(c, true)?.expect("required");
            check_chain_name(&name).map_err(|m| c.err_at(col, m))?;
            if table.chain_index(&name).is_some() {
                return Err(c.err_at(col, "Chain already exists."));
            }
            table.add_user_chain(&name);
        }
        "-X" | "--delete-chain" => {
            let which: Vec<String> = match chain_arg(c, false)? {
                Some((name, col)) => {
                    let ci = find(table, &name, col)?;
                    if table.chains[ci].policy.is_some() {
                        return Err(c.err_at(col, "can't delete a built-in chain"));
                    }
                    if table.references(&name) > 0 {
                        return Err(c.err_at(col, "Too many links (chain is referenced)"));
                    }
                    if !table.chains[ci].rules.is_empty() {
                        return Err(c.err_at(col, "Directory not empty (chain has rules)"));
                    }
                    vec![name]
                }
                None => table
                    .chains
                    .iter()
                    .filter(|ch| {
                        ch.policy.is_none()
                            && ch.rules.is_empty()
                            && table.references(&ch.name) == 0
                    })
                    .map(|ch| ch.name.clone())
                    .collect(),
            };
            table.chains.retain(|ch| !which.contains(&ch.name));
        }
        _ => {
            return Err(c.err_at(
                cmd_col,
                format!("unknown command \"{op}\" (accepted: {COMMANDS})"),
            ));
        }
    }
    if let Some(t) = c.peek() {
        return Err(c.err_at(t.col, format!("unexpected argument \"{}\"", t.text)));
    }
    Ok(())
}
