//! What the kernel side needs from the machine, and what it reports about it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs the kernel side runs, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("sysctl", "procps"),
    ("iptables-restore", "iptables"),
    ("iptables-save", "iptables"),
    ("nft", "nftables"),
    ("conntrack", "conntrack"),
    ("ethtool", "ethtool"),
];

/// Root's usual directories, searched even when PATH lacks them (`sudo`
/// keeps a short PATH on some systems).
const SBIN: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The full path of `tool`, if installed.
pub(crate) fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What is missing for the kernel side, in words a user can act on.
pub(crate) fn missing() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "linux-diff builds a router in network namespaces and needs root: run it as root \
             (e.g. with sudo)"
                .to_string(),
        );
    }
    if !Path::new("/proc/sys/net/netfilter").exists() {
        return Some(
            "this kernel has no connection tracking (/proc/sys/net/netfilter is missing): \
             load nf_conntrack or use a kernel with CONFIG_NF_CONNTRACK"
                .to_string(),
        );
    }
    let absent: Vec<&(&str, &str)> = TOOLS.iter().filter(|(t, _)| find(t).is_none()).collect();
    if absent.is_empty() {
        return None;
    }
    let names: Vec<&str> = absent.iter().map(|(t, _)| *t).collect();
    let mut packages: Vec<&str> = absent.iter().map(|(_, p)| *p).collect();
    packages.dedup();
    Some(format!(
        "missing program{}: {} (on Debian: apt-get install {})",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        packages.join(" ")
    ))
}

/// The kernel and tool versions a report names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// `uname -r`.
    pub release: String,
    /// `iptables -V`, e.g. `iptables v1.8.9 (nf_tables)`.
    pub iptables: String,
    /// `conntrack -V`, e.g. `conntrack v1.4.7 (conntrack-tools)`.
    pub conntrack: String,
}

impl KernelInfo {
    pub(crate) fn read() -> KernelInfo {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        KernelInfo {
            release,
            iptables: version("iptables"),
            conntrack: version("conntrack"),
        }
    }
}

fn version(tool: &str) -> String {
    let Some(path) = find(tool) else {
        return String::new();
    };
    Command::new(path)
        .arg("-V")
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .unwrap_or_default()
}
