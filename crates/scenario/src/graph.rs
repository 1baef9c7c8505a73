//! The topology as a Graphviz DOT graph: routers as boxes, smoltcp hosts as
//! ellipses, raw hosts dashed; each link an edge labelled with its name,
//! the interfaces and the impairments that are not defaults.

use std::fmt::Write;

use petgraph::dot::{Config, Dot};
use petgraph::graph::UnGraph;

use crate::lower::duration;
use crate::model::{Bandwidth, LinkParams, Scenario};

fn impairments(p: &LinkParams) -> String {
    let d = LinkParams::default();
    let mut s = String::new();
    if p.delay != d.delay {
        let _ = write!(s, "\n{}", duration(p.delay));
    }
    if let Bandwidth::BitsPerSec(bps) = p.bandwidth {
        let _ = write!(s, " {}", Bandwidth::BitsPerSec(bps));
    }
    for (v, name) in [
        (p.loss, "loss"),
        (p.duplicate, "dup"),
        (p.reorder, "reorder"),
    ] {
        if v > 0.0 {
            let _ = write!(s, " {name} {v}");
        }
    }
    if p.mtu != d.mtu {
        let _ = write!(s, " mtu {}", p.mtu);
    }
    s
}

/// The DOT text for `s`. Node order is the file's, so the output is stable.
pub fn dot(s: &Scenario) -> String {
    let mut g = UnGraph::<String, String>::new_undirected();
    let mut index = std::collections::BTreeMap::new();
    for h in &s.hosts {
        let addrs: Vec<String> = h
            .interfaces
            .iter()
            .map(|i| i.addr.value.to_string())
            .collect();
        let style = if h.is_raw() { "raw host" } else { "host" };
        let label = format!("{}\n{style}\n{}", h.name.value, addrs.join("\n"));
        index.insert(h.name.value.clone(), g.add_node(label));
    }
    for r in &s.routers {
        index.insert(
            r.name.value.clone(),
            g.add_node(format!("{}\nrouter", r.name.value)),
        );
    }
    for sw in &s.switches {
        index.insert(
            sw.name.value.clone(),
            g.add_node(format!("{}\nswitch", sw.name.value)),
        );
    }
    for l in &s.links {
        let [a, b] = &l.ends;
        let (Some(&ia), Some(&ib)) = (index.get(&a.node), index.get(&b.node)) else {
            continue;
        };
        let label = format!(
            "{}\n{} ~ {}{}",
            l.name.value,
            a.iface,
            b.iface,
            impairments(&l.params)
        );
        g.add_edge(ia, ib, label);
    }
    let raw: Vec<bool> = s.hosts.iter().map(|h| h.is_raw()).collect();
    let hosts = s.hosts.len();
    let node_attr = |_: &UnGraph<String, String>, (i, _): (petgraph::graph::NodeIndex, &String)| {
        let i = i.index();
        if i >= hosts {
            "shape=box style=rounded".to_string()
        } else if raw[i] {
            "shape=ellipse style=dashed".to_string()
        } else {
            "shape=ellipse".to_string()
        }
    };
    let dot = Dot::with_attr_getters(
        &g,
        &[Config::GraphContentOnly],
        &|_, _| String::new(),
        &node_attr,
    );
    format!(
        "graph {:?} {{\n    node [fontname=\"monospace\"];\n{dot}}}\n",
        s.name.value
    )
}
