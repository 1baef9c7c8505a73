//! Network namespaces of our own: naming, running programs inside, removal.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::lab::BuildError;
use crate::tools;

/// Every namespace we create starts with this.
const PREFIX: &str = "ctsim-";

/// A fresh name stem for one lab: `ctsim-<pid>-<n>`.
pub(crate) fn stem() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The command as a user would type it, for error messages.
fn command_line(ns: Option<&str>, tool: &str, args: &[&str]) -> String {
    let mut l = ns
        .map(|n| format!("ip netns exec {n} "))
        .unwrap_or_default();
    l.push_str(tool);
    for a in args {
        l.push(' ');
        l.push_str(a);
    }
    l
}

/// Runs `tool args…` (in namespace `ns` when given) with `stdin`; an error
/// carries the command line and what it printed.
pub(crate) fn run(
    ns: Option<&str>,
    tool: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output, BuildError> {
    let path = tools::find(tool).ok_or_else(|| BuildError::Missing(tool.to_string()))?;
    let mut cmd = match ns {
        Some(ns) => {
            let ip = tools::find("ip").ok_or_else(|| BuildError::Missing("ip".into()))?;
            let mut c = Command::new(ip);
            c.args(["netns", "exec", ns]).arg(&path);
            c
        }
        None => Command::new(&path),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = || command_line(ns, tool, args);
    let mut child = cmd.spawn().map_err(|e| BuildError::Command {
        command: line(),
        error: e.to_string(),
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(text.as_bytes());
    }
    child.wait_with_output().map_err(|e| BuildError::Command {
        command: line(),
        error: e.to_string(),
    })
}

/// Like [`run`], failing unless the program exits 0.
pub(crate) fn must(
    ns: Option<&str>,
    tool: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output, BuildError> {
    let out = run(ns, tool, args, stdin)?;
    if out.status.success() {
        return Ok(out);
    }
    Err(BuildError::Command {
        command: command_line(ns, tool, args),
        error: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Deletes a namespace (its veths go with it); errors are ignored: this
/// runs while cleaning up.
pub(crate) fn delete(ns: &str) {
    let _ = run(None, "ip", &["netns", "delete", ns], None);
}

/// Deletes namespaces of ours whose process is gone (a run killed with
/// SIGKILL could not clean up).
pub(crate) fn remove_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let mut stale: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            let Some(rest) = name.strip_prefix(PREFIX) else {
                return false;
            };
            let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
            // SAFETY: signal 0 only checks that the process exists.
            pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0)
        })
        .collect();
    stale.sort();
    for ns in stale {
        delete(&ns);
    }
}
