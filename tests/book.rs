//! The book and the README never show output that ctsim does not print.
//!
//! Every output in `book/src` is included from a file under
//! `book/src/generated/`, and `book/generated.txt` says which ctsim command
//! produced each one. These tests run every command through the library the
//! way the `ctsim` binary does and fail, naming the file and the command,
//! when a file is stale; `UPDATE_BOOK=1 cargo test -p ctsim-tests --test
//! book` rewrites them. They also check that every `{{#include}}` resolves,
//! that each generated file is included (after the line `$ COMMAND`), that
//! SUMMARY.md and the pages agree, that paths named in the text exist, and
//! that the README's example equals a scenario file and its output excerpt
//! equals lines of a generated file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ctsim_scenario::conntrack::Query;
use ctsim_scenario::model::{CtTable, Duration};
use ctsim_scenario::{graph, lower, report, RunOptions};
use ctsim_tests::root;

const MANIFEST: &str = "book/generated.txt";
const GENERATED: &str = "book/src/generated";
const REFRESH: &str = "UPDATE_BOOK=1 cargo test -p ctsim-tests --test book";

/// One line of the manifest.
struct Entry {
    /// The file's name under `book/src/generated/`.
    file: String,
    /// The exit status ctsim must return.
    exit: u8,
    /// The command as a reader types it: `ctsim run --quiet FILE`.
    command: String,
    line: usize,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn manifest() -> Vec<Entry> {
    let text = read(&root().join(MANIFEST));
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(file), Some(exit)) = (words.next(), words.next()) else {
            panic!(
                "{MANIFEST}:{}: expected `FILE EXIT COMMAND`, found {raw:?}",
                i + 1
            );
        };
        let exit = exit.parse().unwrap_or_else(|_| {
            panic!(
                "{MANIFEST}:{}: EXIT must be 0, 1 or 2, found {exit:?}",
                i + 1
            )
        });
        let command = words.collect::<Vec<_>>().join(" ");
        assert!(
            !file.contains('/') && !command.is_empty(),
            "{MANIFEST}:{}: expected `FILE EXIT COMMAND` with FILE a name under {GENERATED}/",
            i + 1
        );
        if let Some(first) = entries.iter().find(|e| e.file == file) {
            panic!(
                "{MANIFEST}:{}: {file} is already produced by line {}",
                i + 1,
                first.line
            );
        }
        entries.push(Entry {
            file: file.to_string(),
            exit,
            command,
            line: i + 1,
        });
    }
    assert!(!entries.is_empty(), "{MANIFEST} lists no files");
    entries
}

/// A manifest command, parsed as the ctsim binary's argument parser would.
enum Command {
    Run {
        file: String,
        opts: RunOptions,
        json: bool,
        detail: report::Detail,
    },
    Check {
        files: Vec<String>,
    },
    Graph {
        file: String,
    },
    /// `ctsim ruleset FILE --node R --at T [-t TABLE] [-L -v -n [-x]]`.
    Ruleset {
        file: String,
        node: String,
        at: Duration,
        view: Result<ctsim_scenario::netfilter::RulesetView, String>,
    },
    /// `ctsim trace FILE --packet P [--nth N]`.
    Trace {
        file: String,
        packet: String,
        nth: usize,
    },
    /// `ctsim conntrack FILE --node R --at T [-L [TABLE]] [-o extended] [-S] [-C] [-E]`.
    Conntrack {
        file: String,
        node: String,
        at: Duration,
        /// The query, or the error the binary prints for a bad combination.
        query: Result<Query, String>,
        extended: bool,
    },
}

/// The arguments of `ctsim conntrack`, parsed and then checked as
/// `sim/src/main.rs` checks them (one of -L, -S, -C, -E; `-o extended`; a
/// known table). Errors the binary reports itself become `Err` in `query`.
fn parse_conntrack(args: &[&str]) -> Result<Command, String> {
    let (mut file, mut node, mut at) = (None, None, None);
    let (mut list, mut output) = (None::<String>, None::<String>);
    let (mut stats, mut count, mut events, mut expect_events) = (false, false, false, false);
    let mut i = 0;
    while i < args.len() {
        let next = args.get(i + 1).copied();
        let value = |flag: &str| {
            next.map(str::to_string)
                .ok_or(format!("{flag} needs a value"))
        };
        match args[i] {
            "--node" => (node, i) = (Some(value("--node")?), i + 1),
            "--at" => {
                let v = value("--at")?;
                let d: Duration = v.parse().map_err(|e| format!("bad --at: {e}"))?;
                (at, i) = (Some(d), i + 1);
            }
            // As clap's `num_args = 0..=1`: the next word is the table unless it is a flag.
            "-L" | "--dump" => match next {
                Some(t) if !t.starts_with('-') => (list, i) = (Some(t.to_string()), i + 1),
                _ => list = Some("conntrack".into()),
            },
            "-o" | "--output" => (output, i) = (Some(value("-o")?), i + 1),
            "-S" | "--stats" => stats = true,
            "-C" | "--count" => count = true,
            "-E" | "--event" => match next {
                Some("expect") => (expect_events, i) = (true, i + 1),
                _ => events = true,
            },
            flag if flag.starts_with('-') => return Err(format!("{flag} is not supported here")),
            path if file.is_none() => file = Some(path.to_string()),
            _ => return Err("`ctsim conntrack` takes one FILE".into()),
        }
        i += 1;
    }
    let modes = [list.is_some(), stats, count, events || expect_events];
    let query = if modes.iter().filter(|&&m| m).count() > 1 {
        Err("error: give one of -L, -S, -C and -E".to_string())
    } else if output.as_deref().is_some_and(|o| o != "extended") {
        Err(format!(
            "error: unknown output format `{}` (ctsim prints `-o extended`)",
            output.as_deref().unwrap_or_default()
        ))
    } else if stats {
        Ok(Query::Stats)
    } else if count {
        Ok(Query::Count)
    } else if expect_events {
        Ok(Query::ExpectEvents)
    } else if events {
        Ok(Query::Events)
    } else {
        match list.as_deref().unwrap_or("conntrack") {
            "conntrack" => Ok(Query::List(CtTable::Conntrack)),
            "expect" => Ok(Query::List(CtTable::Expect)),
            "dying" => Ok(Query::List(CtTable::Dying)),
            "unconfirmed" => Ok(Query::List(CtTable::Unconfirmed)),
            other => Err(format!(
                "error: unknown table `{other}`: conntrack, expect, dying or unconfirmed"
            )),
        }
    };
    Ok(Command::Conntrack {
        file: file.ok_or("`ctsim conntrack` needs a FILE")?,
        node: node.ok_or("`ctsim conntrack` needs --node")?,
        at: at.ok_or("`ctsim conntrack` needs --at")?,
        query,
        extended: output.is_some(),
    })
}

/// The arguments of `ctsim ruleset`, checked as `sim/src/main.rs` checks
/// them.
fn parse_ruleset(args: &[&str]) -> Result<Command, String> {
    use ctsim_engine::router::netfilter::TableKind;
    use ctsim_scenario::netfilter::RulesetView;
    let (mut file, mut node, mut at, mut table) = (None, None, None, None::<String>);
    let (mut list, mut exact) = (false, false);
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--node" => node = Some(it.next().ok_or("--node needs a value")?.to_string()),
            "--at" => {
                let v = it.next().ok_or("--at needs a value")?;
                at = Some(
                    v.parse::<Duration>()
                        .map_err(|e| format!("bad --at: {e}"))?,
                );
            }
            "-t" | "--table" => table = Some(it.next().ok_or("-t needs a value")?.to_string()),
            "-L" | "--list" => list = true,
            "-v" | "-n" => {}
            "-x" => exact = true,
            flag if flag.starts_with('-') => return Err(format!("{flag} is not supported here")),
            path if file.is_none() => file = Some(path.to_string()),
            _ => return Err("`ctsim ruleset` takes one FILE".into()),
        }
    }
    let kind = table.as_deref().map(|t| {
        TableKind::from_name(t).ok_or(format!(
            "error: unknown table `{t}`: filter, nat, mangle, raw or security"
        ))
    });
    let view = match (kind, list) {
        (Some(Err(e)), _) => Err(e),
        (k, true) => Ok(RulesetView::List(
            k.and_then(Result::ok).unwrap_or(TableKind::Filter),
            exact,
        )),
        (k, false) => Ok(RulesetView::Save(k.and_then(Result::ok))),
    };
    Ok(Command::Ruleset {
        file: file.ok_or("`ctsim ruleset` needs a FILE")?,
        node: node.ok_or("`ctsim ruleset` needs --node")?,
        at: at.ok_or("`ctsim ruleset` needs --at")?,
        view,
    })
}

/// The arguments of `ctsim trace`.
fn parse_trace(args: &[&str]) -> Result<Command, String> {
    let (mut file, mut packet, mut nth) = (None, None, 1);
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--packet" => packet = Some(it.next().ok_or("--packet needs a value")?.to_string()),
            "--nth" => {
                let v = it.next().ok_or("--nth needs a value")?;
                nth = v.parse().map_err(|_| format!("bad --nth {v:?}"))?;
            }
            flag if flag.starts_with('-') => return Err(format!("{flag} is not supported here")),
            path if file.is_none() => file = Some(path.to_string()),
            _ => return Err("`ctsim trace` takes one FILE".into()),
        }
    }
    Ok(Command::Trace {
        file: file.ok_or("`ctsim trace` needs a FILE")?,
        packet: packet.ok_or("`ctsim trace` needs --packet")?,
        nth,
    })
}

/// Splits a command line into words as a shell does for the simple cases
/// the book uses: blanks separate, double quotes group.
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn parse_command(command: &str) -> Result<Command, String> {
    let owned = shell_words(command);
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    let Some((&"ctsim", rest)) = words.split_first() else {
        return Err("a command starts with `ctsim`".into());
    };
    let Some((&sub, args)) = rest.split_first() else {
        return Err("no subcommand".into());
    };
    let one_file = |args: &[&str]| match args {
        [file] if !file.starts_with('-') => Ok(file.to_string()),
        _ => Err(format!("`ctsim {sub}` takes exactly one FILE here")),
    };
    match sub {
        "run" => {
            let mut opts = RunOptions::default();
            let (mut json, mut quiet, mut walk, mut file) = (false, false, false, None);
            let mut it = args.iter();
            while let Some(&arg) = it.next() {
                match arg {
                    "--json" => json = true,
                    "--quiet" => quiet = true,
                    "--walk" => walk = true,
                    "--seed" => {
                        let v = it.next().ok_or("--seed needs a value")?;
                        opts.seed = Some(v.parse().map_err(|_| format!("bad seed {v:?}"))?);
                    }
                    "--until" => {
                        let v = it.next().ok_or("--until needs a value")?;
                        let d: Duration = v.parse().map_err(|e| format!("bad --until: {e}"))?;
                        opts.until = Some(lower::instant(d));
                    }
                    flag if flag.starts_with('-') => {
                        return Err(format!(
                            "{flag} is not supported here (--pcap and --timing print nothing to compare)"
                        ))
                    }
                    path if file.is_none() => file = Some(path.to_string()),
                    _ => return Err("`ctsim run` takes one FILE".into()),
                }
            }
            opts.timeline = !quiet;
            let file = file.ok_or("`ctsim run` needs a FILE")?;
            let detail = report::Detail::from_flags(quiet, walk);
            Ok(Command::Run {
                file,
                opts,
                json,
                detail,
            })
        }
        "check" if !args.is_empty() && args.iter().all(|a| !a.starts_with('-')) => {
            Ok(Command::Check {
                files: args.iter().map(|a| a.to_string()).collect(),
            })
        }
        "graph" => Ok(Command::Graph {
            file: one_file(args)?,
        }),
        "conntrack" => parse_conntrack(args),
        "ruleset" => parse_ruleset(args),
        "trace" => parse_trace(args),
        other => Err(format!(
            "`ctsim {other}` is not supported here (use run, check FILE…, graph, conntrack, ruleset or trace)"
        )),
    }
}

/// Loads FILE (relative to the workspace root) as `ctsim` does, named as written.
fn load(
    file: &str,
) -> Result<
    (
        ctsim_scenario::model::Scenario,
        std::sync::Arc<ctsim_scenario::diag::Source>,
    ),
    String,
> {
    let path = root().join(file);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    ctsim_scenario::load_bytes(file, &bytes).map_err(|r| r.render(false))
}

/// What the terminal shows for `command`, and its exit status.
fn execute(command: &Command) -> (String, u8) {
    match command {
        Command::Run {
            file,
            opts,
            json,
            detail,
        } => {
            let (s, source) = match load(file) {
                Ok(x) => x,
                Err(diagnostics) => return (diagnostics, 2),
            };
            match ctsim_scenario::run(&s, &source, opts) {
                Err(r) => (r.render(false), 2),
                Ok(out) => {
                    let text = if *json {
                        report::json_lines(&out)
                    } else {
                        report::text(&out, *detail)
                    };
                    (text, u8::from(out.failed()))
                }
            }
        }
        Command::Check { files } => {
            let (mut text, mut exit) = (String::new(), 0);
            for file in files {
                match load(file) {
                    Ok(_) => {
                        let _ = writeln!(text, "{file}: ok");
                    }
                    Err(diagnostics) => {
                        text.push_str(&diagnostics);
                        exit = 2;
                    }
                }
            }
            (text, exit)
        }
        Command::Graph { file } => match load(file) {
            Ok((s, _)) => (graph::dot(&s), 0),
            Err(diagnostics) => (diagnostics, 2),
        },
        Command::Conntrack {
            file,
            node,
            at,
            query,
            extended,
        } => {
            // As `conntrack` in sim/src/main.rs: check the flags, load, run to
            // the instant, print stdout and then the stderr summary line.
            let q = match query {
                Ok(q) => *q,
                Err(error) => return (format!("{error}\n"), 2),
            };
            let (sim, at) =
                match run_to(file, *at, matches!(q, Query::Events | Query::ExpectEvents)) {
                    Ok(x) => x,
                    Err(e) => return e,
                };
            match ctsim_scenario::conntrack::query(&sim, node, at, q, *extended) {
                Ok((stdout, stderr)) => (stdout + &stderr, 0),
                Err(e) => (format!("error: {e}\n"), 2),
            }
        }
        Command::Ruleset {
            file,
            node,
            at,
            view,
        } => {
            let view = match view {
                Ok(v) => *v,
                Err(error) => return (format!("{error}\n"), 2),
            };
            let (sim, at) = match run_to(file, *at, false) {
                Ok(x) => x,
                Err(e) => return e,
            };
            match ctsim_scenario::netfilter::show_ruleset(&sim, node, at, view) {
                Ok(text) => (text, 0),
                Err(e) => (format!("error: {e}\n"), 2),
            }
        }
        Command::Trace { file, packet, nth } => {
            let (s, source) = match load(file) {
                Ok(x) => x,
                Err(diagnostics) => return (diagnostics, 2),
            };
            let opts = RunOptions {
                timeline: true,
                ..RunOptions::default()
            };
            let out = match ctsim_scenario::run(&s, &source, &opts) {
                Ok(out) => out,
                Err(r) => return (r.render(false), 2),
            };
            match ctsim_scenario::netfilter::trace(&out.sim, &s, packet, *nth) {
                Ok(text) => (text, 0),
                Err(e) => (format!("error: {e}\n"), 2),
            }
        }
    }
}

fn run_to(
    file: &str,
    at: Duration,
    timeline: bool,
) -> Result<(ctsim_engine::Sim, ctsim_engine::Instant), (String, u8)> {
    let (s, source) = load(file).map_err(|d| (d, 2))?;
    let at = lower::instant(at);
    let opts = RunOptions {
        until: Some(at),
        timeline,
        ..RunOptions::default()
    };
    let prepared =
        ctsim_scenario::run::prepare(&s, &source, &opts).map_err(|r| (r.render(false), 2))?;
    Ok((prepared.run_to(at), at))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_BOOK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where two texts first differ, as two lines to show.
fn first_difference(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let n = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let show = |v: &[&str]| {
        v.get(n)
            .map_or("(end of output)".to_string(), |l| format!("{l:?}"))
    };
    if n == a.len() && n == b.len() {
        return "the texts differ only in line endings".into();
    }
    format!(
        "first difference at line {}:\n      file: {}\n      now:  {}",
        n + 1,
        show(&a),
        show(&b)
    )
}

fn generated_files() -> BTreeSet<String> {
    let dir = root().join(GENERATED);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[test]
fn generated_outputs_are_current() {
    let update = updating();
    let dir = root().join(GENERATED);
    if update {
        std::fs::create_dir_all(&dir).expect("create book/src/generated");
    }
    let entries = manifest();
    let mut problems = Vec::new();
    for e in &entries {
        let command = parse_command(&e.command)
            .unwrap_or_else(|why| panic!("{MANIFEST}:{}: `{}`: {why}", e.line, e.command));
        let (text, exit) = execute(&command);
        let path = dir.join(&e.file);
        let shown = format!("{GENERATED}/{}", e.file);
        if exit != e.exit {
            problems.push(format!(
                "`{}` exits with {exit}, but {MANIFEST}:{} says {}: fix EXIT there, and any prose that states it",
                e.command, e.line, e.exit
            ));
        }
        let old = std::fs::read_to_string(&path).ok();
        if old.as_deref() == Some(text.as_str()) {
            continue;
        }
        if update {
            std::fs::write(&path, &text)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
            eprintln!("rewrote {shown}");
            continue;
        }
        problems.push(match old {
            None => format!("{shown} is missing (it is the output of `{}`)", e.command),
            Some(old) => format!(
                "{shown} is stale: `{}` prints something else now; {}",
                e.command,
                first_difference(&old, &text)
            ),
        });
    }
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.file.as_str()).collect();
    for orphan in generated_files() {
        if listed.contains(orphan.as_str()) {
            continue;
        }
        if update {
            let _ = std::fs::remove_file(dir.join(&orphan));
            eprintln!("removed {GENERATED}/{orphan}: no line of {MANIFEST} produces it");
        } else {
            problems.push(format!(
                "{GENERATED}/{orphan} is produced by no line of {MANIFEST}: add its command there or delete it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the book's generated outputs are out of date:\n  - {}\nrefresh them with `{REFRESH}` and read the diff (the prose around an output may need to change too)",
        problems.join("\n  - ")
    );
}

/// Every Markdown page under `book/src`, relative to it, sorted.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(
                    path.strip_prefix(base)
                        .expect("under book/src")
                        .to_path_buf(),
                );
            }
        }
    }
    let src = root().join("book/src");
    let mut out = Vec::new();
    walk(&src, &src, &mut out);
    out.sort();
    out
}

/// An `{{#include PATH[:RANGE]}}` in a page.
struct Include {
    page: String,
    line: usize,
    path: String,
    range: Option<String>,
    /// The line before the include, trimmed.
    before: String,
}

fn includes(page: &Path) -> Vec<Include> {
    let text = read(&root().join("book/src").join(page));
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut rest = *line;
        while let Some(at) = rest.find("{{#include") {
            let after = &rest[at + "{{#include".len()..];
            let Some(end) = after.find("}}") else {
                panic!(
                    "book/src/{}:{}: unclosed {{{{#include",
                    page.display(),
                    i + 1
                );
            };
            let target = after[..end].trim();
            let (path, range) = match target.split_once(':') {
                Some((p, r)) => (p.to_string(), Some(r.to_string())),
                None => (target.to_string(), None),
            };
            out.push(Include {
                page: page.display().to_string(),
                line: i + 1,
                path,
                range,
                before: i
                    .checked_sub(1)
                    .map_or(String::new(), |j| lines[j].trim().to_string()),
            });
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn includes_resolve_and_every_output_is_shown_with_its_command() {
    let src = root().join("book/src");
    let commands: BTreeMap<String, String> = manifest()
        .into_iter()
        .map(|e| (format!("generated/{}", e.file), e.command))
        .collect();
    let examples_dir = src.join("examples");
    let mut unshown: BTreeSet<String> = std::fs::read_dir(&examples_dir)
        .map(|d| {
            d.map(|e| {
                format!(
                    "examples/{}",
                    e.expect("entry").file_name().to_string_lossy()
                )
            })
            .collect()
        })
        .unwrap_or_default();
    let mut unincluded: BTreeSet<String> = commands.keys().cloned().collect();
    let mut problems = Vec::new();
    for page in pages() {
        let dir = src
            .join(&page)
            .parent()
            .expect("a page has a directory")
            .to_path_buf();
        for inc in includes(&page) {
            let at = format!("book/src/{}:{}", inc.page, inc.line);
            let target = dir.join(&inc.path);
            if !target.is_file() {
                problems.push(format!("{at}: {{{{#include {}}}}} names no file", inc.path));
                continue;
            }
            let key = target
                .strip_prefix(&src)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            unshown.remove(&key);
            if !key.starts_with("generated/") {
                continue;
            }
            unincluded.remove(&key);
            if inc.range.is_some() {
                problems.push(format!(
                    "{at}: include all of {key} (a line range would keep showing old lines after the output changes)"
                ));
            }
            match commands.get(&key) {
                None => problems.push(format!("{at}: {key} is produced by no line of {MANIFEST}")),
                Some(cmd) if inc.before != format!("$ {cmd}") => problems.push(format!(
                    "{at}: the line before {{{{#include {}}}}} must be `$ {cmd}`, the command that produced it (found {:?})",
                    inc.path, inc.before
                )),
                Some(_) => {}
            }
        }
    }
    for key in unincluded {
        problems.push(format!(
            "book/src/{key} is in {MANIFEST} but no page includes it: show it or remove its line"
        ));
    }
    for key in unshown {
        problems.push(format!(
            "book/src/{key} is included by no page: show it (`{{{{#include {key}}}}}`) or delete it"
        ));
    }
    assert!(
        problems.is_empty(),
        "book includes:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn summary_lists_every_page() {
    let summary = read(&root().join("book/src/SUMMARY.md"));
    let mut linked = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, line) in summary.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = &after[..end];
            if !target.is_empty() {
                // mdBook creates a missing page silently: catch it here.
                if !root().join("book/src").join(target).is_file() {
                    problems.push(format!(
                        "book/src/SUMMARY.md:{}: {target} does not exist",
                        i + 1
                    ));
                }
                linked.insert(PathBuf::from(target));
            }
            rest = &after[end..];
        }
    }
    for page in pages() {
        if page != Path::new("SUMMARY.md") && !linked.contains(&page) {
            problems.push(format!("book/src/{} is not in SUMMARY.md", page.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "book summary:\n  - {}",
        problems.join("\n  - ")
    );
}

/// Paths such as `scenarios/basics/mtu.yaml` or `book/src/examples/x.yaml`
/// mentioned in `text`.
fn mentioned_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["scenarios/", "book/src/examples/", "book/src/generated/"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix) {
            let start = from + at;
            // Only whole words: `../../scenarios/x.yaml` is an include, checked elsewhere.
            let word_start = start == 0
                || !text[..start]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
            let len = text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._/-".contains(c)))
                .unwrap_or(text.len() - start);
            let path = text[start..start + len].trim_end_matches('.');
            if word_start && (path.ends_with(".yaml") || path.ends_with(".txt")) {
                out.push(path.to_string());
            }
            from = start + len.max(1);
        }
    }
    out
}

#[test]
fn paths_named_in_the_book_and_readme_exist() {
    let mut problems = Vec::new();
    let mut texts = vec![("README.md".to_string(), read(&root().join("README.md")))];
    for page in pages() {
        let name = format!("book/src/{}", page.display());
        texts.push((name.clone(), read(&root().join(&name))));
    }
    for (name, text) in &texts {
        for path in mentioned_paths(text) {
            if !root().join(&path).exists() {
                problems.push(format!("{name} names {path}, which does not exist"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "stale paths:\n  - {}",
        problems.join("\n  - ")
    );
}

/// The fenced code block that starts on the first non-blank line after `from`.
fn fenced_block(lines: &[&str], from: usize) -> Option<String> {
    let mut i = from;
    while lines.get(i)?.trim().is_empty() {
        i += 1;
    }
    let fence = lines[i].trim_start();
    if !fence.starts_with("```") {
        return None;
    }
    let mut body = String::new();
    for line in &lines[i + 1..] {
        if line.trim_start().starts_with("```") {
            return Some(body);
        }
        body.push_str(line);
        body.push('\n');
    }
    None
}

#[test]
fn readme_example_is_a_real_scenario_and_its_output_is_real() {
    let readme = read(&root().join("README.md"));
    let lines: Vec<&str> = readme.lines().collect();
    let (mut sources, mut excerpts) = (0, 0);
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- book: ")
            .and_then(|m| m.strip_suffix(" -->"))
        else {
            continue;
        };
        let at = format!("README.md:{}", i + 1);
        let Some(block) = fenced_block(&lines, i + 1) else {
            problems.push(format!(
                "{at}: `{line}` must be followed by a fenced code block"
            ));
            continue;
        };
        if let Some(path) = marker.strip_prefix("same as ") {
            sources += 1;
            let file = read(&root().join(path));
            if block != file {
                problems.push(format!(
                    "{at}: the block differs from {path}; copy the file into it ({})",
                    first_difference(&file, &block)
                ));
            }
        } else if let Some(path) = marker.strip_prefix("lines of ") {
            excerpts += 1;
            let file = read(&root().join(path));
            let want: Vec<&str> = block.lines().collect();
            let have: Vec<&str> = file.lines().collect();
            let found = !want.is_empty() && have.windows(want.len()).any(|w| w == want.as_slice());
            if !found {
                problems.push(format!(
                    "{at}: the block is not a run of lines of {path}; copy them from it again (after `{REFRESH}` if the example changed)"
                ));
            }
        } else {
            problems.push(format!(
                "{at}: unknown marker {marker:?} (use `same as PATH` or `lines of PATH`)"
            ));
        }
    }
    assert!(
        sources > 0 && excerpts > 0,
        "README.md must mark its example with `<!-- book: same as FILE -->` and its output with `<!-- book: lines of book/src/generated/FILE -->`"
    );
    assert!(
        problems.is_empty(),
        "README example:\n  - {}",
        problems.join("\n  - ")
    );
}

#[test]
fn manifest_commands_parse() {
    for e in manifest() {
        if let Err(why) = parse_command(&e.command) {
            panic!("{MANIFEST}:{}: `{}`: {why}", e.line, e.command);
        }
    }
    assert!(parse_command("ctsim run --pcap out x.yaml").is_err());
    assert!(parse_command("ctsim schema").is_err());
    assert!(matches!(
        parse_command("ctsim conntrack x.yaml --node r1 --at 1s -L dying -o extended"),
        Ok(Command::Conntrack {
            query: Ok(Query::List(CtTable::Dying)),
            extended: true,
            ..
        })
    ));
    assert!(matches!(
        parse_command("ctsim conntrack x.yaml --node r1 --at 1s -L -S"),
        Ok(Command::Conntrack { query: Err(_), .. })
    ));
    assert!(parse_command("ctsim conntrack x.yaml --node r1 --at 1s --during x").is_err());
    assert!(matches!(
        parse_command("ctsim run --quiet --seed 4 --until 2s x.yaml"),
        Ok(Command::Run {
            detail: report::Detail::Summary,
            json: false,
            ..
        })
    ));
}
