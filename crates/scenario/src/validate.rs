//! Semantic checks of a built scenario: names and references, addressing, who may send what.
//! Each problem becomes a [`Diagnostic`] pointing at the offending text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::diag::{closest, Diagnostic, Source, Span, Spanned};
use crate::model::values::Probability;
use crate::model::{
    App, CheckKind, Cidr, Host, Interface, Link, LinkEnd, Router, Scenario, Switch, Tool,
};
use ctsim_engine::router::netfilter::TableKind;

/// Every semantic problem of `s`, in no particular order (a [`crate::diag::Report`] sorts them).
pub fn validate(source: &Source, s: &Scenario) -> Vec<Diagnostic> {
    let mut v = V {
        source,
        s,
        nodes: Nodes::new(&s.hosts, &s.routers, &s.switches),
        links: HashMap::new(),
        apps: HashMap::new(),
        packets: HashMap::new(),
        errors: Vec::new(),
    };
    for l in &s.links {
        v.links.entry(l.name.value.as_str()).or_insert(l);
    }
    for a in &s.apps {
        if let Some(n) = &a.name {
            v.apps.entry(n.value.as_str()).or_insert(a);
        }
    }
    for (i, p) in s.packets.iter().enumerate() {
        if let Some(n) = &p.name {
            v.packets.entry(n.value.as_str()).or_insert(i);
        }
    }
    v.nodes();
    v.addresses();
    v.routes();
    v.links();
    v.apps();
    v.packets();
    v.events();
    v.checks();
    v.errors
}

/// A probability must lie in 0..=1.
pub(crate) fn probability(p: &Spanned<Probability>, key: &str) -> Option<Diagnostic> {
    let x = p.value.0;
    if (0.0..=1.0).contains(&x) {
        return None;
    }
    Some(
        Diagnostic::new(format!("`{key}` is a probability, from 0 to 1; found {x}"))
            .label(p.span, "out of range")
            .help("write e.g. `0.01` or `1%` for one packet in a hundred"),
    )
}

/// An MTU must be at least 68 (the IPv4 minimum) and fit in 16 bits.
pub(crate) fn mtu(m: &Spanned<u32>) -> Option<Diagnostic> {
    if m.value < 68 {
        Some(
            Diagnostic::new(format!(
                "an MTU of {} is below the IPv4 minimum of 68",
                m.value
            ))
            .label(m.span, "too small")
            .help("IPv4 requires every link to carry packets of 68 bytes; the default is 1500"),
        )
    } else if m.value > 65_535 {
        Some(
            Diagnostic::new(format!("an MTU of {} is above 65535", m.value))
                .label(m.span, "too large")
                .help("an IPv4 packet is at most 65535 bytes long"),
        )
    } else {
        None
    }
}

/// Hosts and routers by name (the first declaration of a name wins).
pub struct Nodes<'a> {
    hosts: HashMap<&'a str, &'a Host>,
    routers: HashMap<&'a str, &'a Router>,
    names: Vec<&'a str>,
    /// (node, interface) pairs, so resolving a link end does not scan a
    /// router's interfaces (a generated benchmark router has 20,000).
    ports: HashSet<(&'a str, &'a str)>,
    switches: HashMap<&'a str, &'a Switch>,
}

impl<'a> Nodes<'a> {
    pub fn new(hosts: &'a [Host], routers: &'a [Router], switches: &'a [Switch]) -> Self {
        let mut n = Nodes {
            hosts: HashMap::new(),
            routers: HashMap::new(),
            switches: HashMap::new(),
            names: Vec::new(),
            ports: HashSet::new(),
        };
        for sw in switches {
            n.switches.entry(sw.name.value.as_str()).or_insert(sw);
            n.names.push(&sw.name.value);
            let name = sw.name.value.as_str();
            n.ports
                .extend(sw.ports.iter().map(|p| (name, p.value.as_str())));
        }
        for h in hosts {
            n.hosts.entry(h.name.value.as_str()).or_insert(h);
            n.names.push(&h.name.value);
        }
        for r in routers {
            n.routers.entry(r.name.value.as_str()).or_insert(r);
            n.names.push(&r.name.value);
        }
        let all = hosts.iter().map(|h| (&h.name.value, &h.interfaces));
        let all = all.chain(routers.iter().map(|r| (&r.name.value, &r.interfaces)));
        for (node, ifaces) in all {
            n.ports.extend(
                ifaces
                    .iter()
                    .map(|i| (node.as_str(), i.name.value.as_str())),
            );
        }
        n
    }
    pub fn has_interface(&self, node: &str, iface: &str) -> bool {
        self.ports.contains(&(node, iface))
    }
    pub fn host(&self, name: &str) -> Option<&'a Host> {
        self.hosts.get(name).copied()
    }
    pub fn router(&self, name: &str) -> Option<&'a Router> {
        self.routers.get(name).copied()
    }
    pub fn switch(&self, name: &str) -> Option<&'a Switch> {
        self.switches.get(name).copied()
    }
    /// The interfaces of a host or router (a host wins if both have the name).
    pub fn interfaces(&self, name: &str) -> Option<&'a [Interface]> {
        self.host(name)
            .map(|h| h.interfaces.as_slice())
            .or_else(|| self.router(name).map(|r| r.interfaces.as_slice()))
    }
    fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.names.iter().copied()
    }
}

/// Resolves `node` or `node.iface` (a link end, a packet's `from`) to a node and interface.
pub fn resolve_end(
    source: &Source,
    nodes: &Nodes<'_>,
    written: &Spanned<String>,
) -> Result<LinkEnd, Diagnostic> {
    let text = written.value.as_str();
    let (node, iface) = match text.split_once('.') {
        Some((n, i)) => (n, Some(i)),
        None => (text, None),
    };
    let node_span = source.sub_span(written, 0..node.len());
    if let Some(sw) = nodes.switch(node) {
        let ports = || {
            let last = sw.ports.len().saturating_sub(1);
            format!("`{node}` has ports p0 to p{last}")
        };
        return match iface {
            Some(i) if nodes.has_interface(node, i) => Ok(LinkEnd {
                node: node.to_string(),
                iface: i.to_string(),
                written: written.clone(),
            }),
            Some(i) => {
                let span = source.sub_span(written, node.len() + 1..text.len());
                Err(Diagnostic::new(format!("`{node}` has no port `{i}`"))
                    .label(span, "unknown port")
                    .help(ports()))
            }
            None => Err(Diagnostic::new(format!("which port of switch `{node}`?"))
                .label(node_span, "a switch")
                .help(format!("write `{node}.p0` ({})", ports()))),
        };
    }
    let Some(ifaces) = nodes.interfaces(node) else {
        return Err(unknown("node", node, node_span, nodes.names()));
    };
    let names = || {
        ifaces
            .iter()
            .map(|i| format!("`{}`", i.name.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let iface = match iface {
        Some(i) => {
            if !nodes.has_interface(node, i) {
                let span = source.sub_span(written, node.len() + 1..text.len());
                return Err(Diagnostic::new(format!("`{node}` has no interface `{i}`"))
                    .label(span, "unknown interface")
                    .help(if ifaces.is_empty() {
                        format!("`{node}` has no interfaces")
                    } else {
                        format!("`{node}` has {}", names())
                    }));
            }
            i.to_string()
        }
        None => match ifaces {
            [one] => one.name.value.clone(),
            [] => {
                return Err(
                    Diagnostic::new(format!("`{node}` has no interface to connect"))
                        .label(node_span, "no interface")
                        .help(format!("give `{node}` an address")),
                );
            }
            [first, ..] => {
                return Err(Diagnostic::new(format!(
                    "`{node}` has several interfaces: say which one"
                ))
                .label(node_span, "which interface?")
                .help(format!(
                    "write `{node}.{}` (interfaces: {})",
                    first.name.value,
                    names()
                )));
            }
        },
    };
    Ok(LinkEnd {
        node: node.to_string(),
        iface,
        written: written.clone(),
    })
}

/// "unknown node `x`", with the closest known name or the list of names.
fn unknown<'a>(
    what: &str,
    name: &str,
    span: Span,
    known: impl Iterator<Item = &'a str>,
) -> Diagnostic {
    // Suggestions look at a bounded number of names (hostile files may declare many).
    let known: Vec<&str> = known.take(2000).collect();
    let d = Diagnostic::new(format!("unknown {what} `{name}`"))
        .label(span, format!("no {what} of this name"));
    if let Some(k) = closest(name, known.iter().copied()) {
        d.help(format!("did you mean `{k}`?"))
    } else if known.is_empty() {
        d.help(format!("no {what} is declared"))
    } else {
        let mut list: Vec<String> = known.iter().take(12).map(|k| format!("`{k}`")).collect();
        if known.len() > 12 {
            list.push("…".into());
        }
        d.help(format!("known: {}", list.join(", ")))
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct V<'a> {
    source: &'a Source,
    s: &'a Scenario,
    nodes: Nodes<'a>,
    links: HashMap<&'a str, &'a Link>,
    apps: HashMap<&'a str, &'a App>,
    /// Index of the first packet of each name.
    packets: HashMap<&'a str, usize>,
    errors: Vec<Diagnostic>,
}

impl<'a> V<'a> {
    fn err(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    /// Node and interface names: well formed, node names unique across hosts and routers.
    fn nodes(&mut self) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for sw in &self.s.switches {
            if let Some(&first) = seen.get(sw.name.value.as_str()) {
                self.err(
                    Diagnostic::new(format!("two switches are named `{}`", sw.name.value))
                        .label(sw.name.span, "second switch of this name")
                        .label(first, "first one"),
                );
            } else {
                seen.insert(&sw.name.value, sw.name.span);
            }
        }
        let nodes = self
            .s
            .hosts
            .iter()
            .map(|h| (&h.name, &h.interfaces))
            .chain(self.s.routers.iter().map(|r| (&r.name, &r.interfaces)));
        for (name, ifaces) in nodes {
            if !valid_name(&name.value) {
                self.err(
                    Diagnostic::new(format!("bad node name `{}`", name.value))
                        .label(name.span, "not a valid name")
                        .help("node names use letters, digits, `-` and `_` (a `.` separates node and interface: `r1.lan0`)"),
                );
            }
            if let Some(&first) = seen.get(name.value.as_str()) {
                self.err(
                    Diagnostic::new(format!("two nodes are named `{}`", name.value))
                        .label(name.span, "second node of this name")
                        .label(first, "first one")
                        .help(
                            "hosts, routers and switches share one namespace; rename one of them",
                        ),
                );
            } else {
                seen.insert(&name.value, name.span);
            }
            for i in ifaces {
                if !valid_name(&i.name.value) {
                    self.err(
                        Diagnostic::new(format!("bad interface name `{}`", i.name.value))
                            .label(i.name.span, "not a valid name")
                            .help("interface names use letters, digits, `-` and `_`, e.g. `eth0`, `lan0`"),
                    );
                }
            }
        }
    }

    fn all_interfaces(&self) -> impl Iterator<Item = (&str, &Interface)> {
        self.s
            .hosts
            .iter()
            .flat_map(|h| h.interfaces.iter().map(move |i| (h.name.value.as_str(), i)))
            .chain(
                self.s
                    .routers
                    .iter()
                    .flat_map(|r| r.interfaces.iter().map(move |i| (r.name.value.as_str(), i))),
            )
    }

    /// Addresses unique; host gateways reachable.
    fn addresses(&mut self) {
        let mut seen: HashMap<Ipv4Addr, (Span, String)> = HashMap::new();
        let mut dups = Vec::new();
        for (node, i) in self.all_interfaces() {
            let a = i.addr.value.addr;
            match seen.get(&a) {
                Some((first, owner)) => dups.push(
                    Diagnostic::new(format!("address {a} is used twice"))
                        .label(i.addr.span, format!("on {node}.{}", i.name.value))
                        .label(*first, format!("already on {owner}"))
                        .help("every interface needs its own address"),
                ),
                None => {
                    seen.insert(a, (i.addr.span, format!("{node}.{}", i.name.value)));
                }
            }
        }
        self.errors.extend(dups);
        for h in &self.s.hosts {
            let Some(gw) = &h.gateway else { continue };
            if h.interfaces.iter().any(|i| i.addr.value.contains(gw.value)) {
                continue;
            }
            let subnets = subnets(&h.interfaces);
            self.err(
                Diagnostic::new(format!(
                    "gateway {} is not in any subnet of host `{}`",
                    gw.value, h.name.value
                ))
                .label(gw.span, "not reachable directly")
                .help(if subnets.is_empty() {
                    "the gateway must be on a subnet of one of the host's interfaces".to_string()
                } else {
                    format!("the gateway must lie in {subnets}")
                }),
            );
        }
    }

    /// Routers' static routes: next hop directly reachable, destination a network.
    fn routes(&mut self) {
        for r in &self.s.routers {
            for rt in &r.routes {
                if !r
                    .interfaces
                    .iter()
                    .any(|i| i.addr.value.contains(rt.via.value))
                {
                    let subnets = subnets(&r.interfaces);
                    self.err(
                        Diagnostic::new(format!(
                            "next hop {} is not in any subnet of router `{}`",
                            rt.via.value, r.name.value
                        ))
                        .label(rt.via.span, "not reachable directly")
                        .help(format!(
                            "`via:` must lie in a connected subnet{}",
                            if subnets.is_empty() {
                                String::new()
                            } else {
                                format!(": {subnets}")
                            }
                        )),
                    );
                }
                let to = rt.to.value;
                if !to.is_network() {
                    self.err(
                        Diagnostic::new(format!("route destination {to} has host bits set"))
                            .label(rt.to.span, "not a network address")
                            .help(format!("did you mean `{}/{}`?", to.network(), to.len)),
                    );
                }
            }
        }
    }

    fn interface_of(&self, end: &LinkEnd) -> Option<&Interface> {
        self.nodes
            .interfaces(&end.node)?
            .iter()
            .find(|i| i.name.value == end.iface)
    }

    /// Link ends exist, each interface in at most one link, ends on one subnet, names unique.
    fn links(&mut self) {
        let mut used: HashMap<(String, String), Span> = HashMap::new();
        let mut names: HashMap<&str, (Span, bool)> = HashMap::new();
        for l in &self.s.links {
            let mut resolved = Vec::new();
            for end in &l.ends {
                if !end.written.span.is_known() {
                    continue; // a missing end, already reported
                }
                match resolve_end(self.source, &self.nodes, &end.written) {
                    Ok(e) => resolved.push(e),
                    Err(d) => self.err(d),
                }
            }
            for e in &resolved {
                let key = (e.node.clone(), e.iface.clone());
                if let Some(&first) = used.get(&key) {
                    self.err(
                        Diagnostic::new(format!(
                            "interface {}.{} is in two links",
                            e.node, e.iface
                        ))
                        .label(e.written.span, "second link")
                        .label(first, "first link")
                        .help("links are point to point: give the node another interface"),
                    );
                } else {
                    used.insert(key, e.written.span);
                }
            }
            if let [a, b] = resolved.as_slice() {
                if let (Some(ia), Some(ib)) = (self.interface_of(a), self.interface_of(b)) {
                    let (ca, cb) = (ia.addr.value, ib.addr.value);
                    if !(ca.contains(cb.addr) && cb.contains(ca.addr)) {
                        self.err(
                            Diagnostic::new(format!(
                                "the ends of link `{}` are not on the same subnet",
                                l.name.value
                            ))
                            .label(b.written.span, format!("{}.{} is {cb}", b.node, b.iface))
                            .label(a.written.span, format!("{}.{} is {ca}", a.node, a.iface))
                            .help(format!(
                                "give both interfaces addresses in one subnet, e.g. {} and {}",
                                ca,
                                Cidr {
                                    addr: other_host(ca),
                                    len: ca.len
                                }
                            )),
                        );
                    }
                }
            }
            let explicit = l.named;
            match names.get(l.name.value.as_str()) {
                Some(&(first, first_explicit)) => {
                    let d = if !explicit && !first_explicit {
                        Diagnostic::new(format!(
                            "two links are both named `{}` by default",
                            l.name.value
                        ))
                        .label(l.name.span, "second link between these nodes")
                        .label(first, "first one")
                        .help("give the links names: `name: wan-a`")
                    } else {
                        Diagnostic::new(format!("two links are named `{}`", l.name.value))
                            .label(l.name.span, "second link of this name")
                            .label(first, "first one")
                            .help("link names must be unique (an unnamed link is named `<node-a>-<node-b>`)")
                    };
                    self.err(d);
                }
                None => {
                    names.insert(&l.name.value, (l.name.span, explicit));
                }
            }
        }
    }

    fn apps(&mut self) {
        let mut names: HashMap<&str, Span> = HashMap::new();
        for a in &self.s.apps {
            let on = &a.on;
            if let Some(h) = self.nodes.host(&on.value) {
                if h.is_raw() {
                    self.err(
                        Diagnostic::new(format!("host `{}` has no stack to run apps", on.value))
                            .label(on.span, "a raw host (`stack: none`)")
                            .help("raw hosts send `packets:`; run apps on a host with the default `stack: smoltcp`"),
                    );
                }
            } else if self.nodes.router(&on.value).is_some() {
                // A router's own stack: its packets pass INPUT and OUTPUT.
            } else if let Some((node, _)) = on
                .value
                .split_once('.')
                .filter(|(n, _)| self.nodes.host(n).is_some())
            {
                self.err(
                    Diagnostic::new("apps run on a host, not on an interface")
                        .label(on.span, "an interface")
                        .help(format!("write `on: {node}`")),
                );
            } else {
                let nodes = self.s.hosts.iter().map(|h| h.name.value.as_str());
                let nodes = nodes.chain(self.s.routers.iter().map(|r| r.name.value.as_str()));
                self.err(unknown(
                    "node",
                    &on.value,
                    on.span,
                    nodes.collect::<Vec<_>>().into_iter(),
                ));
            }
            if let Some(n) = &a.name {
                if let Some(&first) = names.get(n.value.as_str()) {
                    self.err(
                        Diagnostic::new(format!("two apps are named `{}`", n.value))
                            .label(n.span, "second app of this name")
                            .label(first, "first one")
                            .help("checks find apps by name: names must be unique"),
                    );
                } else {
                    names.insert(&n.value, n.span);
                }
            }
        }
    }

    /// `quote=NAME` (or `quote=NAME/N`) must name a packet sent before this
    /// one. Inline quotes `quote=(…)` and text inside `"…"` payloads are not
    /// names.
    fn quotes(&mut self, index: usize) {
        let p = &self.s.packets[index];
        let lit = &p.literal.value;
        for range in ctsim_packet::quoted_names(lit) {
            let (start, end) = (range.start, range.end);
            let name = &lit[start..end];
            let span = self.source.sub_span(&p.literal, start..end);
            let found = self.packets.get(name).map(|&j| (j, &self.s.packets[j]));
            match found {
                None => {
                    let known = self
                        .s
                        .packets
                        .iter()
                        .filter_map(|q| q.name.as_ref().map(|n| n.value.as_str()))
                        .collect::<Vec<_>>();
                    let none = known.is_empty();
                    let mut d = unknown("packet", name, span, known.into_iter());
                    if none {
                        d = d.help(
                            "no packet has a `name:`; name the quoted packet: `{ name: syn, … }`",
                        );
                    }
                    self.err(d);
                }
                Some((j, _)) if j == index => self.err(
                    Diagnostic::new("a packet cannot quote itself")
                        .label(span, "this packet")
                        .help(
                            "`quote=` names an earlier packet whose headers the ICMP error carries",
                        ),
                ),
                Some((j, q)) if q.at > p.at || (q.at == p.at && j > index) => self.err(
                    Diagnostic::new(format!(
                        "packet `{name}` is sent after this one (at {}, this one at {})",
                        q.at, p.at
                    ))
                    .label(span, "not sent yet")
                    .help("an ICMP error can only quote a packet sent before it"),
                ),
                Some(_) => {}
            }
        }
    }

    fn packets(&mut self) {
        let mut names: HashMap<&str, Span> = HashMap::new();
        for (i, p) in self.s.packets.iter().enumerate() {
            match resolve_end(self.source, &self.nodes, &p.from.written) {
                Err(d) => self.err(d),
                Ok(end) => {
                    let host = self.nodes.host(&end.node);
                    if !host.is_some_and(|h| h.is_raw()) {
                        let what = if host.is_some() {
                            "host with a stack"
                        } else {
                            "router"
                        };
                        self.err(
                            Diagnostic::new(format!(
                                "`{}` cannot send raw packets: it is a {what}",
                                end.node
                            ))
                            .label(p.from.written.span, "not a raw host")
                            .help("packets are sent by raw hosts: declare one with `stack: none`"),
                        );
                    }
                }
            }
            if let Some(n) = &p.name {
                if let Some(&first) = names.get(n.value.as_str()) {
                    self.err(
                        Diagnostic::new(format!("two packets are named `{}`", n.value))
                            .label(n.span, "second packet of this name")
                            .label(first, "first one")
                            .help("`quote=` finds packets by name: names must be unique"),
                    );
                } else {
                    names.insert(&n.value, n.span);
                }
            }
            self.quotes(i);
        }
    }

    fn link_exists(&mut self, link: &Spanned<String>) {
        if !link.span.is_known() {
            return; // a placeholder for a missing key, already reported
        }
        if !self.links.contains_key(link.value.as_str()) {
            let known: Vec<&str> = self.s.links.iter().map(|l| l.name.value.as_str()).collect();
            self.err(unknown("link", &link.value, link.span, known.into_iter()));
        }
    }

    fn node_exists(&mut self, node: &Spanned<String>) {
        if !node.span.is_known() {
            return;
        }
        if self.nodes.interfaces(&node.value).is_none() {
            let d = unknown("node", &node.value, node.span, self.nodes.names());
            self.err(d);
        }
    }

    /// A netfilter check or command names a router.
    fn router(&mut self, node: &Spanned<String>) -> Option<&'a Router> {
        if !node.span.is_known() {
            return None;
        }
        if let Some(r) = self.nodes.router(&node.value) {
            return Some(r);
        }
        if self.nodes.host(&node.value).is_some() {
            self.err(
                Diagnostic::new(format!(
                    "`{}` is a host; netfilter and conntrack run on routers",
                    node.value
                ))
                .label(node.span, "a host")
                .help("name a router in `on:`"),
            );
        } else {
            let routers: Vec<&str> = self
                .s
                .routers
                .iter()
                .map(|r| r.name.value.as_str())
                .collect();
            self.err(unknown(
                "router",
                &node.value,
                node.span,
                routers.into_iter(),
            ));
        }
        None
    }

    /// A conntrack check names a router that tracks connections.
    fn tracking_router(&mut self, node: &Spanned<String>) {
        match self.router(node) {
            Some(r) if r.conntrack.value => {}
            Some(r) => {
                let mut d = Diagnostic::new(format!(
                    "router `{}` tracks no connections (`conntrack: off`)",
                    node.value
                ))
                .label(node.span, "conntrack checks need conntrack");
                if r.conntrack.span.is_known() {
                    d = d.label(r.conntrack.span, "turned off here");
                }
                self.err(d.help("remove `conntrack: off` from the router, or this check"));
            }
            None => {}
        }
    }

    fn events(&mut self) {
        for e in &self.s.events {
            self.link_exists(&e.link);
        }
        for c in &self.s.commands {
            match c.tool {
                Tool::Iptables => {
                    self.router(&c.on);
                }
                Tool::Conntrack => self.tracking_router(&c.on),
            }
        }
    }

    fn checks(&mut self) {
        for c in &self.s.checks {
            match &c.kind {
                CheckKind::App { app, .. } if !app.span.is_known() => {}
                CheckKind::App { app, replies, .. } => {
                    match self.apps.get(app.value.as_str()).copied() {
                        None => {
                            let known: Vec<&str> = self
                                .s
                                .apps
                                .iter()
                                .filter_map(|a| a.name.as_ref().map(|n| n.value.as_str()))
                                .collect();
                            let none = known.is_empty();
                            let mut d = unknown("app", &app.value, app.span, known.into_iter());
                            if none {
                                d = d.help(
                                    "no app has a `name:`; name the app: `{ …, name: upload }`",
                                );
                            }
                            self.err(d);
                        }
                        Some(a) => {
                            if replies.is_some() && !a.kind.counts_replies() {
                                self.err(
                                    Diagnostic::new(format!(
                                    "`replies` counts answers to ping, udp-sender and snmp-manager, and RTP packets received by sip-caller and sip-callee; `{}` is a {}",
                                    app.value,
                                    a.kind.run_name()
                                ))
                                    .label(app.span, "this app gets no replies")
                                    .help("for TCP apps check `bytes-received`"),
                                );
                            }
                        }
                    }
                }
                CheckKind::Received { on, .. } | CheckKind::Seen { on, .. } => self.node_exists(on),
                CheckKind::Dropped { link, .. } => self.link_exists(link),
                CheckKind::Table { on, .. }
                | CheckKind::CtState { on, .. }
                | CheckKind::Stat { on, .. } => self.tracking_router(on),
                CheckKind::Verdict { on, .. } | CheckKind::Log { on, .. } => {
                    self.router(on);
                }
                CheckKind::Rules { on, table, .. } => {
                    self.router(on);
                    if TableKind::from_name(&table.value).is_none() {
                        self.err(
                            Diagnostic::new(format!("unknown iptables table `{}`", table.value))
                                .label(table.span, "no such table")
                                .help("the tables are filter, nat, mangle, raw and security"),
                        );
                    }
                }
            }
            if let (Some(at), Some(until)) = (&c.at, &self.s.until) {
                if at.value > until.value {
                    self.err(
                        Diagnostic::new(format!(
                            "this check is evaluated at {}, after the run ends ({})",
                            at.value, until.value
                        ))
                        .label(at.span, "too late")
                        .label(until.span, "the run ends here")
                        .help("move the check earlier or extend `until:`"),
                    );
                }
            }
        }
    }
}

/// Another usable address in the subnet of `c` (for suggestions).
fn other_host(c: Cidr) -> Ipv4Addr {
    let net = u32::from(c.network());
    let mine = u32::from(c.addr);
    let cand = if mine == net.wrapping_add(1) {
        net.wrapping_add(2)
    } else {
        net.wrapping_add(1)
    };
    Ipv4Addr::from(cand)
}

/// `192.0.2.0/24 or 203.0.113.0/24`, in order, without repeats.
fn subnets(ifaces: &[Interface]) -> String {
    let mut set: BTreeMap<(u32, u8), String> = BTreeMap::new();
    for i in ifaces {
        let c = i.addr.value;
        set.entry((u32::from(c.network()), c.len))
            .or_insert_with(|| format!("{}/{}", c.network(), c.len));
    }
    set.into_values().collect::<Vec<_>>().join(" or ")
}
