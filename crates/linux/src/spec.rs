//! What the kernel side builds: one router, as the scenario describes it.

use std::net::Ipv4Addr;

/// A router to build in a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterSpec {
    /// In the scenario's order; the index is the interface's port number.
    pub interfaces: Vec<Interface>,
    pub routes: Vec<StaticRoute>,
    /// Kernel settings by their full `sysctl` names
    /// (`net.netfilter.nf_conntrack_tcp_loose`) and values as written.
    pub sysctls: Vec<(String, String)>,
    /// iptables-restore input, loaded with the real `iptables-restore`.
    pub ruleset: Option<String>,
    /// Whether the router tracks connections. Linux registers conntrack in
    /// a namespace only when a rule needs it; a ctsim router tracks unless
    /// told not to, so the kernel side asks for tracking with an nftables
    /// table of its own (`ip ctsim`) that no packet traverses and
    /// `iptables-save` does not list.
    pub track: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The name rules match with `-i`/`-o` (at most 15 bytes, as Linux wants).
    pub name: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u16,
    /// The far end's address on a point-to-point link: the only neighbour
    /// (a permanent ARP entry; the router's ARP for any other address goes
    /// unanswered). `None` on a switch, where any address may answer: the
    /// interface then runs without ARP and sends to every next hop at once.
    pub neighbour: Option<Ipv4Addr>,
}

impl Interface {
    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        let host_bits = 32 - u32::from(self.prefix.min(32));
        let mask = if host_bits == 32 {
            0
        } else {
            u32::MAX << host_bits
        };
        Ipv4Addr::from(u32::from(self.addr) | !mask)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub via: Ipv4Addr,
}

/// Settings Linux keeps only in the initial namespace (read-only inside
/// any other): the kernel side sets them there for the run and restores them.
pub(crate) const GLOBAL_SYSCTLS: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.nf_conntrack_max",
    "net.netfilter.nf_conntrack_expect_max",
    "net.netfilter.nf_conntrack_buckets",
];

impl RouterSpec {
    /// Whether building it changes settings outside its namespaces.
    pub fn needs_global_sysctls(&self) -> bool {
        self.sysctls
            .iter()
            .any(|(k, _)| GLOBAL_SYSCTLS.contains(&k.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_of_a_subnet() {
        let i = Interface {
            name: "lan0".into(),
            addr: Ipv4Addr::new(192, 0, 2, 1),
            prefix: 25,
            mtu: 1500,
            neighbour: None,
        };
        assert_eq!(i.broadcast(), Ipv4Addr::new(192, 0, 2, 127));
        let all = Interface { prefix: 0, ..i };
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
    }
}
