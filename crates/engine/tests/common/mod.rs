//! Two smoltcp hosts on one link, for the engine's host tests.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use ctsim_engine::host::{App, AppKind, Host, HostConfig, Nic};
use ctsim_engine::{AppOutcome, Builder, Cidr, Duration, Instant, LinkParams, PortSpec, Sim};

pub const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

pub fn host(addr: Ipv4Addr, apps: Vec<App>) -> (Vec<PortSpec>, Box<Host>) {
    let cidr = Cidr::new(addr, 24);
    let ports = vec![PortSpec {
        name: "eth0".into(),
        addr: Some(cidr),
    }];
    let config = HostConfig {
        nics: vec![Nic {
            name: "eth0".into(),
            addr: cidr,
        }],
        gateway: None,
        apps,
    };
    (ports, Box::new(Host::new(config)))
}

/// Host `a` (192.0.2.1) and host `b` (192.0.2.2) on one link.
pub fn world(seed: u64, params: LinkParams, a_apps: Vec<App>, b_apps: Vec<App>) -> Sim {
    let mut b = Builder::new(seed);
    let (ports, node) = host(A, a_apps);
    let a = b.add_node("a", ports, node);
    let (ports, node) = host(B, b_apps);
    let bn = b.add_node("b", ports, node);
    b.add_link("l", (a, 0), (bn, 0), params).unwrap();
    b.build()
}

pub fn link(delay_ms: u64) -> LinkParams {
    LinkParams {
        delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

pub fn app(name: &str, at_ms: u64, kind: AppKind) -> App {
    App {
        name: name.into(),
        at: Instant::ZERO + Duration::from_millis(at_ms),
        kind,
    }
}

pub fn find<'a>(outcomes: &'a [AppOutcome], name: &str) -> &'a AppOutcome {
    outcomes.iter().find(|o| o.name == name).unwrap()
}
