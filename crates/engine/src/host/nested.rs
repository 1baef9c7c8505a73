//! A host's stack inside a router: which packets it takes.
//!
//! A router with applications of its own (a service the rules REDIRECT
//! to, a client behind DNAT in OUTPUT) runs a [`Host`] for them. The
//! router keeps answering what no application owns the way a Linux router
//! without services does (echo replies, RSTs, port-unreachables: checked
//! against the kernel), and hands the stack only the packets of its apps.

use super::{device, Host};

impl Host {
    /// Whether one of this host's applications owns `packet`: a TCP or UDP
    /// port an app listens or connects from, an echo reply to a ping app,
    /// or an ICMP error about one of those.
    pub(crate) fn wants(&self, packet: &[u8]) -> bool {
        device::peek(packet)
            .and_then(|p| p.key)
            .is_some_and(|k| self.net.demux.contains_key(&k))
    }
}
