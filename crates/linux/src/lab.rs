//! The router in its namespace, its peers, and the capture running beside.

use std::net::Ipv4Addr;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::interrupt;
use crate::lock::Lock;
use crate::netns::{self, must};
use crate::socket::{self, PacketSocket};
use crate::spec::{Interface, RouterSpec, GLOBAL_SYSCTLS};
use crate::tools::{self, KernelInfo};

/// Why the kernel side could not be built or used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Not root, no conntrack, or programs missing: what to do about it.
    Unavailable(String),
    /// A program the kernel side runs is not installed.
    Missing(String),
    /// A command failed: the command line and what it said.
    Command { command: String, error: String },
    /// A socket or file operation failed.
    Io(String),
    /// SIGINT or SIGTERM arrived; everything created was removed.
    Interrupted,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Unavailable(why) => f.write_str(why),
            BuildError::Missing(tool) => write!(f, "`{tool}` is not installed"),
            BuildError::Command { command, error } => write!(f, "`{command}` failed: {error}"),
            BuildError::Io(e) => write!(f, "{e}"),
            BuildError::Interrupted => {
                f.write_str("interrupted; the namespaces it created were removed")
            }
        }
    }
}

impl std::error::Error for BuildError {}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError::Io(e.to_string())
    }
}

/// A packet the router sent out of one of its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Since the capture started ([`Lab::elapsed`]).
    pub at: Duration,
    /// The interface (its index in [`RouterSpec::interfaces`]).
    pub port: usize,
    /// The IPv4 datagram, without its Ethernet header.
    pub packet: Vec<u8>,
}

/// A router built in a network namespace, with a peer namespace on each of
/// its interfaces. Dropping it removes everything it created.
pub struct Lab {
    router: String,
    peers: Vec<String>,
    interfaces: Vec<Interface>,
    sockets: Arc<Vec<PacketSocket>>,
    capture: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    rx: Option<Receiver<Captured>>,
    start: Instant,
    /// Initial-namespace settings changed for the run: (name, old value).
    saved: Vec<(String, String)>,
    info: KernelInfo,
    _lock: Option<Lock>,
}

/// The nftables table that makes Linux track connections in the namespace
/// (see [`RouterSpec::track`]): a rule with a conntrack expression in a
/// chain no hook calls.
const TRACK: &str = "table ip ctsim {\n\tchain keep {\n\t\tct state new\n\t}\n}\n";

fn router_mac(port: usize) -> [u8; 6] {
    [0x02, 0xc7, (port >> 8) as u8, port as u8, 0x00, 0x01]
}

fn peer_mac(port: usize) -> [u8; 6] {
    [0x02, 0xc7, (port >> 8) as u8, port as u8, 0x00, 0x02]
}

fn mac_text(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

impl Lab {
    /// Builds `spec`'s router. Fails with [`BuildError::Unavailable`] before
    /// creating anything when the machine cannot do it.
    pub fn build(spec: &RouterSpec) -> Result<Lab, BuildError> {
        if let Some(why) = tools::missing() {
            return Err(BuildError::Unavailable(why));
        }
        interrupt::install();
        netns::remove_stale();
        let lock = Lock::take(spec.needs_global_sysctls())?;
        let stem = netns::stem();
        let mut lab = Lab {
            router: format!("{stem}-r"),
            peers: Vec::new(),
            interfaces: spec.interfaces.clone(),
            sockets: Arc::new(Vec::new()),
            capture: None,
            stop: Arc::new(AtomicBool::new(false)),
            rx: None,
            start: Instant::now(),
            saved: Vec::new(),
            info: KernelInfo::read(),
            _lock: Some(lock),
        };
        lab.create(&stem, spec)?;
        if interrupt::raised() {
            return Err(BuildError::Interrupted);
        }
        Ok(lab)
    }

    fn create(&mut self, stem: &str, spec: &RouterSpec) -> Result<(), BuildError> {
        let r = self.router.clone();
        must(None, "ip", &["netns", "add", &r], None)?;
        self.peers = (0..spec.interfaces.len())
            .map(|i| format!("{stem}-p{i}"))
            .collect();
        // Named before they exist: if one fails, `Drop` deletes them all,
        // and deleting one that was never made does nothing.
        for p in &self.peers {
            must(None, "ip", &["netns", "add", p], None)?;
        }
        // No IPv6 anywhere: its router solicitations and DAD would be
        // captured as traffic the scenario never had.
        for ns in std::iter::once(&r).chain(&self.peers) {
            must(
                Some(ns),
                "sysctl",
                &[
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
                None,
            )?;
        }
        must(None, "ip", &["-n", &r, "link", "set", "lo", "up"], None)?;
        for (i, itf) in spec.interfaces.iter().enumerate() {
            let peer = &self.peers[i];
            let mtu = itf.mtu.to_string();
            let (rmac, pmac) = (mac_text(router_mac(i)), mac_text(peer_mac(i)));
            let addr = format!("{}/{}", itf.addr, itf.prefix);
            #[rustfmt::skip]
            must(None, "ip", &["-n", &r, "link", "add", &itf.name, "address", &rmac, "mtu", &mtu,
                "type", "veth", "peer", "name", "p", "address", &pmac, "mtu", &mtu, "netns", peer], None)?;
            must(Some(&r), "ethtool", &["-K", &itf.name, "tx", "off"], None)?;
            #[rustfmt::skip]
            must(None, "ip", &["-n", &r, "addr", "add", &addr, "brd", "+", "dev", &itf.name], None)?;
            let arp = if itf.neighbour.is_some() { "on" } else { "off" };
            #[rustfmt::skip]
            must(None, "ip", &["-n", &r, "link", "set", &itf.name, "arp", arp, "up"], None)?;
            if let Some(n) = itf.neighbour {
                #[rustfmt::skip]
                must(None, "ip", &["-n", &r, "neigh", "replace", &n.to_string(), "lladdr", &pmac,
                    "dev", &itf.name, "nud", "permanent"], None)?;
            }
            must(None, "ip", &["-n", peer, "link", "set", "p", "up"], None)?;
        }
        for route in &spec.routes {
            let dst = format!("{}/{}", route.dst, route.prefix);
            let via = route.via.to_string();
            must(
                None,
                "ip",
                &["-n", &r, "route", "add", &dst, "via", &via],
                None,
            )?;
        }
        self.set_sysctls(spec)?;
        if let Some(rules) = &spec.ruleset {
            must(Some(&r), "iptables-restore", &[], Some(rules))?;
        }
        if spec.track {
            must(Some(&r), "nft", &["-f", "-"], Some(TRACK))?;
        }
        self.start_capture()
    }

    fn set_sysctls(&mut self, spec: &RouterSpec) -> Result<(), BuildError> {
        let mut local = vec!["-qw".to_string(), "net.ipv4.ip_forward=1".to_string()];
        for (name, value) in &spec.sysctls {
            if GLOBAL_SYSCTLS.contains(&name.as_str()) {
                let out = must(None, "sysctl", &["-n", name], None)?;
                let old = String::from_utf8_lossy(&out.stdout).trim().to_string();
                self.saved.push((name.clone(), old));
                must(None, "sysctl", &["-qw", &format!("{name}={value}")], None)?;
            } else {
                local.push(format!("{name}={value}"));
            }
        }
        let args: Vec<&str> = local.iter().map(String::as_str).collect();
        must(Some(&self.router), "sysctl", &args, None)?;
        Ok(())
    }

    fn start_capture(&mut self) -> Result<(), BuildError> {
        let sockets: Vec<PacketSocket> = self
            .peers
            .iter()
            .map(|ns| PacketSocket::open(ns, "p"))
            .collect::<Result<_, _>>()?;
        self.sockets = Arc::new(sockets);
        let (tx, rx) = mpsc::channel();
        let (sockets, stop) = (self.sockets.clone(), self.stop.clone());
        self.start = Instant::now();
        let start = self.start;
        self.capture = Some(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                if socket::wait_readable(&sockets, 5).is_err() {
                    return;
                }
                for (port, s) in sockets.iter().enumerate() {
                    while let Ok(Some(n)) = s.recv(&mut buf) {
                        let at = start.elapsed();
                        if let Some(packet) = ipv4_of(&buf[..n]) {
                            let _ = tx.send(Captured { at, port, packet });
                        }
                    }
                }
            }
        }));
        self.rx = Some(rx);
        Ok(())
    }

    /// Time since the capture started: the replay's clock.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sends `packet` (an IPv4 datagram) to the router's interface `port`,
    /// from its peer, as a frame addressed to the router (or to everyone,
    /// for a broadcast or multicast destination).
    pub fn inject(&self, port: usize, packet: &[u8]) -> Result<(), BuildError> {
        let dst = if packet.len() >= 20 {
            Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19])
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        let itf = self.interfaces.get(port);
        let dst_mac = if dst.is_broadcast() || itf.is_some_and(|i| i.broadcast() == dst) {
            [0xff; 6]
        } else if dst.is_multicast() {
            let o = dst.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        } else {
            router_mac(port)
        };
        let mut frame = Vec::with_capacity(14 + packet.len());
        frame.extend_from_slice(&dst_mac);
        frame.extend_from_slice(&peer_mac(port));
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(packet);
        let s = self
            .sockets
            .get(port)
            .ok_or_else(|| BuildError::Io(format!("the router has no interface #{port}")))?;
        Ok(s.send(&frame)?)
    }

    /// The packets captured since the last call, in the order they came.
    pub fn drain(&self) -> Vec<Captured> {
        let mut out: Vec<Captured> = self
            .rx
            .as_ref()
            .map_or_else(Vec::new, |rx| rx.try_iter().collect());
        out.sort_by_key(|c| c.at);
        out
    }

    /// Runs `tool args…` inside the router's namespace.
    pub fn exec(&self, tool: &str, args: &[&str]) -> Result<Output, BuildError> {
        netns::run(Some(&self.router), tool, args, None)
    }

    pub fn info(&self) -> &KernelInfo {
        &self.info
    }

    /// Initial-namespace settings changed for the run, with the values
    /// they will get back.
    pub fn global_settings(&self) -> &[(String, String)] {
        &self.saved
    }
}

/// The IPv4 datagram in an Ethernet frame, cut to its total length.
fn ipv4_of(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    Some(ip[..total.clamp(20, ip.len())].to_vec())
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.capture.take() {
            let _ = h.join();
        }
        // The router first: its veths go with it, and their peers' ends.
        netns::delete(&self.router);
        for p in &self.peers {
            netns::delete(p);
        }
        for (name, old) in self.saved.drain(..).rev() {
            let _ = netns::run(None, "sysctl", &["-qw", &format!("{name}={old}")], None);
        }
    }
}
