//! The kernel side of `ctsim linux-diff`: one router built in real Linux
//! network namespaces, packets injected at its interfaces and captured as
//! they leave, and its tools (`conntrack`, `iptables-save`) run inside.
//!
//! This crate knows nothing of scenarios: `ctsim-scenario` describes the
//! router ([`RouterSpec`]), drives the replay and compares. Everything here
//! is about doing that safely on a shared machine:
//!
//! - every namespace has a name of ours (`ctsim-<pid>-<n>-…`) and is deleted
//!   when the [`Lab`] is dropped, on errors and on Ctrl-C (see
//!   [`interrupt`]); namespaces left by a killed run are removed by the next;
//! - kernel settings that Linux keeps only in the initial namespace
//!   (`nf_conntrack_max`, `nf_conntrack_expect_max`, `nf_conntrack_buckets`)
//!   are set there for the run and put back, under an exclusive lock so that
//!   concurrent runs never see each other's values.
//!
//! Topology: the router namespace has one veth per interface, named as in
//! the scenario; the other end of each is alone in a *peer* namespace with
//! no address (so the peer's own stack never answers anything). Packets are
//! sent and captured there with an `AF_PACKET` socket. The router's veths
//! run with ARP off, so it sends to any next hop at once, and with transmit
//! checksum offload off, so what is captured carries final checksums.

pub mod interrupt;
mod lab;
mod lock;
mod netns;
mod socket;
mod spec;
mod tools;

pub use lab::{BuildError, Captured, Lab};
pub use spec::{Interface, RouterSpec, StaticRoute};
pub use tools::KernelInfo;

/// Why the kernel side cannot run on this machine (not root, no
/// conntrack, a program missing), or `None` when it can.
pub fn unavailable() -> Option<String> {
    tools::missing()
}
