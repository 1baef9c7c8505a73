//! Hosts: smoltcp stacks (`Medium::Ip`, one `Interface` and `SocketSet` per
//! NIC) driven on the simulated clock, and the applications that run on them.
//!
//! A host reacts to three things: a datagram arriving, the stack's own timer
//! (retransmissions, delayed ACKs, TIME-WAIT), and its apps' timers. Each time
//! it polls its interfaces, lets the apps whose sockets may have changed act,
//! and repeats until nothing moves; then it asks smoltcp when it next needs
//! attention and keeps one wake-up pending for the earliest such time. Nothing
//! polls in a loop, and nothing reads the wall clock.
//!
//! Wake tokens: 0 is the stack's timer; `1 + i` is app `i`'s timer.

mod apps;
mod device;
mod nested;
mod pattern;
mod ports;

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::node::{AppOutcome, Cx, Node};
use crate::time::{Duration, Instant};
use crate::topology::Cidr;
use crate::trace::{DropReason, What};

pub use apps::valid_nick;
use apps::AppState;
use device::NicState;
use ports::Ports;

/// One network interface of a host. NIC `i` is the node's interface `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub addr: Cidr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    pub nics: Vec<Nic>,
    pub gateway: Option<Ipv4Addr>,
    pub apps: Vec<App>,
}

/// An application and when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub at: Instant,
    pub kind: AppKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppKind {
    /// Accepts connections one after another (listening again after each).
    TcpServer { port: u16, mode: ServerMode },
    /// Connects, sends `send`, reads until `expect` bytes arrived (or the
    /// peer closed), then closes as `close` says; gives up after `timeout`.
    TcpClient {
        to: SocketAddrV4,
        send: Payload,
        expect: Option<u64>,
        close: CloseMode,
        timeout: Duration,
    },
    /// Sends every datagram back to where it came from.
    UdpEcho { port: u16 },
    /// Sends `count` datagrams of `size` bytes, `interval` apart; counts replies.
    UdpSender {
        to: SocketAddrV4,
        count: u64,
        size: usize,
        interval: Duration,
    },
    /// ICMP echo requests with `size` data bytes; counts replies and notes
    /// ICMP errors (such as a router's time-exceeded).
    Ping {
        to: Ipv4Addr,
        count: u64,
        interval: Duration,
        size: usize,
        ttl: u8,
    },
    /// An FTP server in vsftpd's manner: several control connections, login
    /// as anyone, active mode from port 20, passive mode on a port drawn from
    /// `pasv_ports` (default 1024–65535, as vsftpd draws them). `timeout` is
    /// how long it waits for a data connection (vsftpd's `connect_timeout`
    /// and `accept_timeout`) before replying 425.
    FtpServer {
        port: u16,
        files: Vec<File>,
        pasv_ports: Option<(u16, u16)>,
        timeout: Duration,
    },
    /// Logs in to an FTP server, runs `commands` one after another (each with
    /// its own data connection opened as `mode` says), then QUIT. Gives up
    /// after `timeout`.
    FtpClient {
        to: SocketAddrV4,
        user: String,
        password: String,
        mode: FtpMode,
        commands: Vec<Transfer>,
        timeout: Duration,
    },
    /// A TFTP server (RFC 1350, octet mode): answers each RRQ or WRQ from a
    /// fresh ephemeral port.
    TftpServer { port: u16, files: Vec<File> },
    /// Reads or writes one file over TFTP; gives up after `timeout`.
    TftpClient {
        to: SocketAddrV4,
        transfer: Transfer,
        timeout: Duration,
    },
    /// Sends one SNMPv2c GetRequest for sysName.0 to `to` (a host or a
    /// subnet's broadcast address) and counts the GetResponses that arrive
    /// within `timeout`, from any host.
    SnmpManager {
        to: SocketAddrV4,
        community: String,
        timeout: Duration,
    },
    /// Answers GetRequests for sysName.0 with `sys_name` (its node's name).
    SnmpAgent {
        port: u16,
        community: String,
        sys_name: String,
    },
    /// An IRC server: registers clients and relays PRIVMSG and NOTICE.
    IrcServer { port: u16 },
    /// Registers with `nick`; offers a file by DCC SEND (`dcc_send`) and/or
    /// accepts one (`accept_dcc`); gives up waiting after `timeout`.
    IrcClient {
        to: SocketAddrV4,
        nick: String,
        dcc_send: Option<DccSend>,
        accept_dcc: bool,
        timeout: Duration,
    },
    /// Calls `to` (SIP over UDP): INVITE with an SDP offer for RTP on
    /// `rtp_port`, ACK, an RTP stream both ways for `duration`, BYE.
    SipCaller {
        to: SocketAddrV4,
        rtp_port: u16,
        duration: Duration,
    },
    /// Answers calls on `port` (100 Trying, 180 Ringing, 200 OK with an SDP
    /// answer for RTP on `rtp_port`), streams RTP until the BYE.
    SipCallee { port: u16, rtp_port: u16 },
}

/// A file an IRC client offers by DCC SEND: `size` bytes of the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DccSend {
    /// The receiver's nick.
    pub to: String,
    pub file: String,
    pub size: u64,
}

/// A file a server offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    /// `Bytes(n)`: n bytes of the pattern; `Text`: these bytes.
    pub content: Payload,
}

/// How an FTP client opens its data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpMode {
    /// `PORT`: the client listens, the server connects (from port 20).
    Active,
    /// `PASV`: the server listens, the client connects to the 227 reply's address.
    Passive,
    /// `EPRT` (RFC 2428): active, with the extended syntax.
    Eprt,
    /// `EPSV` (RFC 2428): passive, to the control connection's address.
    Epsv,
}

/// One file transfer of an FTP or TFTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Download (`RETR`, RRQ); what arrives is checked against `expect`
    /// when given (`Bytes(n)`: n bytes of the pattern; `Text`: these bytes).
    Get {
        name: String,
        expect: Option<Payload>,
    },
    /// Upload (`STOR`, WRQ).
    Put { name: String, content: Payload },
    /// The directory listing (`LIST`; FTP only).
    List,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    /// Sends back what it reads; closes when the client has closed.
    Echo,
    /// Reads and drops; closes when the client has closed.
    Discard,
    /// Writes this many pattern bytes, then closes (reading and dropping input).
    Send(u64),
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// This many bytes of the pattern `byte i = i % 251`; what comes back is
    /// checked against the same pattern (an echo or a `Send` server both
    /// produce it), so corruption or misordering shows.
    Bytes(u64),
    /// These bytes; what comes back is counted, not checked.
    Text(String),
}

/// How a client ends its connection once it has sent and read everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// FIN, then wait for the peer's FIN.
    Close,
    /// RST.
    Abort,
    /// Leave the connection open.
    None,
}

/// Sockets, ports and lookup tables the apps share.
pub(crate) struct Net {
    pub nics: Vec<NicState>,
    pub gateway: Option<Ipv4Addr>,
    pub ports: Ports,
    /// (IP protocol, local port or ICMP identifier) → app index.
    pub demux: HashMap<(u8, u16), usize>,
    /// Room to copy a datagram or a stretch of stream through.
    pub scratch: Vec<u8>,
}

impl Net {
    /// The NIC traffic to `dst` leaves from: the one whose subnet holds it,
    /// else the one whose subnet holds the gateway; `None` when the network
    /// is unreachable (no such subnet and no gateway), as Linux says.
    pub(crate) fn route(&self, dst: Ipv4Addr) -> Option<usize> {
        if let Some(i) = self.nics.iter().position(|n| n.cidr.contains(dst)) {
            return Some(i);
        }
        let gw = self.gateway?;
        self.nics
            .iter()
            .position(|n| n.cidr.contains(gw))
            .or((!self.nics.is_empty()).then_some(0))
    }
}

const STACK_TOKEN: u64 = 0;

/// A host with a smoltcp stack per NIC and its applications.
pub struct Host {
    nic_config: Vec<Nic>,
    apps: Vec<AppState>,
    net: Net,
    /// Apps whose sockets may have changed (and a flag per app to keep the
    /// list free of duplicates); `batch` is the list being worked through.
    dirty: Vec<usize>,
    batch: Vec<usize>,
    is_dirty: Vec<bool>,
    /// Pending stack wake-ups, so a new one is only asked for when none
    /// earlier is already on the way.
    wakes: BTreeSet<Instant>,
}

impl Host {
    pub fn new(config: HostConfig) -> Host {
        let apps: Vec<AppState> = config.apps.into_iter().map(AppState::new).collect();
        Host {
            nic_config: config.nics,
            is_dirty: vec![false; apps.len()],
            apps,
            net: Net {
                nics: Vec::new(),
                gateway: config.gateway,
                ports: Ports::new(),
                demux: HashMap::new(),
                scratch: vec![0; 65536],
            },
            dirty: Vec::new(),
            batch: Vec::new(),
            wakes: BTreeSet::new(),
        }
    }

    /// What an app found beyond its outcome's counters, in words: an SNMP
    /// manager's responders (`responders: 192.0.2.2 (b), …`). `None` for an
    /// unknown name or an app with nothing to add.
    pub fn app_detail(&self, name: &str) -> Option<String> {
        self.apps.iter().find(|a| a.name() == name)?.detail()
    }

    /// The host's interfaces as configured.
    pub fn nics(&self) -> &[Nic] {
        &self.nic_config
    }

    fn mark(&mut self, app: usize) {
        if !self.is_dirty[app] {
            self.is_dirty[app] = true;
            self.dirty.push(app);
        }
    }

    /// The NIC whose stack takes a datagram for `dst` that came in on `port`:
    /// that NIC's own address or one of its broadcasts, else (as Linux, a weak
    /// host) whichever NIC owns `dst`.
    fn nic_for(&self, port: u16, dst: Ipv4Addr) -> Option<usize> {
        let nics = &self.net.nics;
        if let Some(n) = nics.get(usize::from(port)) {
            if n.cidr.addr == dst || n.cidr.broadcast() == Some(dst) || dst == Ipv4Addr::BROADCAST {
                return Some(usize::from(port));
            }
        }
        nics.iter().position(|n| n.cidr.addr == dst)
    }

    /// Polls, lets dirty apps act, and repeats until nothing moves; then
    /// makes sure the stack's next deadline has a wake-up.
    fn service(&mut self, cx: &mut Cx<'_>, mut sweep: bool) {
        let now = cx.now.to_smoltcp();
        loop {
            for nic in &mut self.net.nics {
                nic.poll(now, cx);
            }
            if sweep {
                sweep = false;
                for nic in &mut self.net.nics {
                    nic.sweep(&mut self.net.ports);
                }
            }
            if self.dirty.is_empty() {
                break;
            }
            let mut batch = std::mem::take(&mut self.batch);
            std::mem::swap(&mut batch, &mut self.dirty);
            for &i in &batch {
                self.is_dirty[i] = false;
            }
            for &i in &batch {
                if self.apps[i].step(i, &mut self.net, cx) {
                    self.mark(i);
                }
            }
            batch.clear();
            self.batch = batch;
        }
        self.schedule(cx);
    }

    fn schedule(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now.to_smoltcp();
        let next = self
            .net
            .nics
            .iter_mut()
            .filter_map(|n| n.iface.poll_at(now, &n.sockets))
            .min();
        let Some(next) = next else { return };
        // smoltcp counts microseconds; never ask for the instant just served,
        // or a deadline smoltcp could not act on would spin at one time.
        let micros = next.total_micros().max(now.total_micros() + 1).max(0) as u64;
        let at = Instant::from_nanos(micros * 1_000);
        if self.wakes.range(..=at).next().is_some() {
            return;
        }
        self.wakes.insert(at);
        cx.wake_at(at, STACK_TOKEN);
    }
}

impl Node for Host {
    fn start(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now.to_smoltcp();
        let gateway = self.net.gateway;
        let gw_nic = gateway.map(|g| {
            self.nic_config
                .iter()
                .position(|n| n.addr.contains(g))
                .unwrap_or(0)
        });
        for (i, nic) in self.nic_config.iter().enumerate() {
            let mtu = cx.ports.get(i).map_or(0, |p| p.mtu);
            let gw = gateway.filter(|_| gw_nic == Some(i));
            let seed = cx.rng.next_u64();
            let state = NicState::new(i as u16, nic.addr, mtu, gw, seed, now);
            self.net.nics.push(state);
        }
        self.net.ports.seed(cx.rng);
        let mut idents = Vec::new();
        for app in &mut self.apps {
            app.prepare(cx.rng, &mut idents);
        }
        for (i, app) in self.apps.iter().enumerate() {
            cx.wake_at(app.at, 1 + i as u64);
        }
    }

    fn receive(&mut self, cx: &mut Cx<'_>, port: u16, packet: Vec<u8>) {
        let Some(peek) = device::peek(&packet) else {
            cx.record(port, What::Dropped(DropReason::Malformed), &packet);
            return;
        };
        let Some(nic) = self.nic_for(port, peek.dst) else {
            cx.record(port, What::Dropped(DropReason::NotForUs), &packet);
            return;
        };
        cx.record(port, What::Received, &packet);
        if let Some(&app) = peek.key.and_then(|k| self.net.demux.get(&k)) {
            self.apps[app].notice(peek.rst, peek.icmp_error);
            self.mark(app);
        }
        self.net.nics[nic].rx.push_back(packet);
        self.service(cx, false);
    }

    fn wake(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token == STACK_TOKEN {
            while self.wakes.first().is_some_and(|&t| t <= cx.now) {
                self.wakes.pop_first();
            }
            self.service(cx, true);
        } else {
            let app = (token - 1) as usize;
            if app < self.apps.len() {
                self.mark(app);
            }
            self.service(cx, false);
        }
    }

    fn outcomes(&self) -> Vec<AppOutcome> {
        self.apps.iter().map(AppState::outcome).collect()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
