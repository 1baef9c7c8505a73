//! The applications: small state machines over smoltcp sockets. Each `step`
//! looks at its sockets, reads and writes what it can, and says whether it
//! did anything (so the host polls again and sends it).

mod control;
mod files;
mod ftp;
mod irc;
mod sip;
mod snmp;
mod tftp;

pub use irc::valid_nick;

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, IpEndpoint, IpListenEndpoint};

use super::device::IcmpNote;
use super::pattern;
use super::ports::Proto;
use super::{App, AppKind, CloseMode, Net, Payload, ServerMode};
use crate::node::{AppOutcome, Cx};
use crate::rng::Rng;
use crate::time::{Duration, Instant};

const TCP_RX: usize = 64 * 1024;
const TCP_TX: usize = 64 * 1024;
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 128 * 1024;
/// The largest IPv4 datagram.
const MAX_DATAGRAM: usize = 65535;
/// How long ping waits for replies after its last request (Linux's MAXWAIT).
const PING_LINGER: Duration = Duration::from_secs(10);

/// ICMP errors an app received, grouped by kind and sender, in arrival order.
#[derive(Default)]
struct IcmpLog(Vec<(String, Ipv4Addr, u64)>);

impl IcmpLog {
    fn add(&mut self, note: &IcmpNote) {
        match self
            .0
            .iter_mut()
            .find(|(k, f, _)| *k == note.kind && *f == note.from)
        {
            Some(entry) => entry.2 += 1,
            None => self.0.push((note.kind.clone(), note.from, 1)),
        }
    }

    fn summary(&self) -> Option<String> {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, from, n)| match n {
                1 => format!("{kind} from {from}"),
                n => format!("{kind} from {from} ({n} times)"),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// What every app reports.
#[derive(Default)]
struct Counters {
    bytes_sent: u64,
    bytes_received: u64,
    requests: u64,
    replies: u64,
    error: Option<String>,
}

impl Counters {
    /// Keeps the first problem; later ones are usually its consequences.
    fn fail(&mut self, why: impl FnOnce() -> String) {
        self.error.get_or_insert_with(why);
    }
}

pub(crate) struct AppState {
    name: String,
    pub at: Instant,
    started: bool,
    kind: Kind,
    c: Counters,
    icmp: IcmpLog,
}

enum Kind {
    TcpClient(TcpClient),
    TcpServer(TcpServer),
    UdpEcho(UdpEcho),
    UdpSender(UdpSender),
    Ping(Ping),
    FtpServer(Box<ftp::FtpServer>),
    FtpClient(Box<ftp::FtpClient>),
    TftpServer(Box<tftp::TftpServer>),
    TftpClient(Box<tftp::TftpClient>),
    SnmpManager(Box<snmp::SnmpManager>),
    SnmpAgent(Box<snmp::SnmpAgent>),
    IrcServer(Box<irc::IrcServer>),
    IrcClient(Box<irc::IrcClient>),
    SipCaller(Box<sip::SipCaller>),
    SipCallee(Box<sip::SipCallee>),
}

/// One wake-up kept pending at or before the earliest deadline an app waits
/// for (a retransmission, a timeout). A deadline that moves later leaves the
/// earlier wake-up in place (the app re-arms when it comes), so a deadline
/// pushed back on every packet costs nothing; one that is no longer wanted is
/// called off, so it does not keep the run going.
#[derive(Default)]
struct Timer(Option<Instant>);

impl Timer {
    fn sync(&mut self, want: Option<Instant>, cx: &mut Cx<'_>, token: u64) {
        if self.0.is_some_and(|p| p <= cx.now) {
            // Delivered (or being delivered): never call it off.
            self.0 = None;
        }
        match (self.0, want.filter(|&w| w > cx.now)) {
            (None, Some(w)) => {
                cx.wake_at(w, token);
                self.0 = Some(w);
            }
            (Some(p), Some(w)) if w < p => {
                cx.cancel_wake(p, token);
                cx.wake_at(w, token);
                self.0 = Some(w);
            }
            (Some(p), None) => {
                cx.cancel_wake(p, token);
                self.0 = None;
            }
            _ => {}
        }
    }
}

impl AppState {
    pub(crate) fn new(app: App) -> Self {
        let kind = match app.kind {
            AppKind::TcpClient {
                to,
                send,
                expect,
                close,
                timeout,
            } => Kind::TcpClient(TcpClient {
                verify: matches!(send, Payload::Bytes(_)),
                total: match &send {
                    Payload::Bytes(n) => *n,
                    Payload::Text(t) => t.len() as u64,
                },
                to,
                send,
                expect,
                close,
                deadline: app.at + timeout,
                conn: None,
                port: 0,
                state: "scheduled",
                established: false,
                closing: false,
                settled: false,
                done: false,
                last: tcp::State::Closed,
                rst_seen: false,
                hard_error: None,
                sent: 0,
                received: 0,
            }),
            AppKind::TcpServer { port, mode } => Kind::TcpServer(TcpServer {
                port,
                mode,
                slots: Vec::new(),
                failed: false,
            }),
            AppKind::UdpEcho { port } => Kind::UdpEcho(UdpEcho {
                port,
                socks: Vec::new(),
                failed: false,
            }),
            AppKind::UdpSender {
                to,
                count,
                size,
                interval,
            } => Kind::UdpSender(UdpSender {
                to,
                count,
                size,
                interval,
                conn: None,
                sent: 0,
                next: app.at,
                done: false,
            }),
            AppKind::Ping {
                to,
                count,
                interval,
                size,
                ttl,
            } => Kind::Ping(Ping {
                to,
                count,
                interval,
                size,
                ttl,
                ident: 0,
                conn: None,
                sent: 0,
                next: app.at,
                last_sent: app.at,
                seen: Vec::new(),
                errors: 0,
                done: false,
            }),
            AppKind::FtpServer {
                port,
                files,
                pasv_ports,
                timeout,
            } => Kind::FtpServer(Box::new(ftp::FtpServer::new(
                port, files, pasv_ports, timeout,
            ))),
            AppKind::FtpClient {
                to,
                user,
                password,
                mode,
                commands,
                timeout,
            } => Kind::FtpClient(Box::new(ftp::FtpClient::new(
                to, user, password, mode, commands, timeout,
            ))),
            AppKind::TftpServer { port, files } => {
                Kind::TftpServer(Box::new(tftp::TftpServer::new(port, files)))
            }
            AppKind::TftpClient {
                to,
                transfer,
                timeout,
            } => Kind::TftpClient(Box::new(tftp::TftpClient::new(to, transfer, timeout))),
            AppKind::SnmpManager {
                to,
                community,
                timeout,
            } => Kind::SnmpManager(Box::new(snmp::SnmpManager::new(to, community, timeout))),
            AppKind::SnmpAgent {
                port,
                community,
                sys_name,
            } => Kind::SnmpAgent(Box::new(snmp::SnmpAgent::new(port, community, sys_name))),
            AppKind::IrcServer { port } => Kind::IrcServer(Box::new(irc::IrcServer::new(port))),
            AppKind::IrcClient {
                to,
                nick,
                dcc_send,
                accept_dcc,
                timeout,
            } => Kind::IrcClient(Box::new(irc::IrcClient::new(
                to, nick, dcc_send, accept_dcc, timeout,
            ))),
            AppKind::SipCaller {
                to,
                rtp_port,
                duration,
            } => Kind::SipCaller(Box::new(sip::SipCaller::new(to, rtp_port, duration))),
            AppKind::SipCallee { port, rtp_port } => {
                Kind::SipCallee(Box::new(sip::SipCallee::new(port, rtp_port)))
            }
        };
        AppState {
            name: app.name,
            at: app.at,
            started: false,
            kind,
            c: Counters::default(),
            icmp: IcmpLog::default(),
        }
    }

    /// Draws what the app needs from the run's randomness before time starts
    /// (ping identifiers, distinct on one host).
    pub(crate) fn prepare(&mut self, rng: &mut Rng, idents: &mut Vec<u16>) {
        match &mut self.kind {
            Kind::FtpServer(f) => f.prepare(rng),
            Kind::SnmpManager(m) => m.prepare(rng),
            Kind::SipCaller(s) => s.prepare(rng),
            Kind::SipCallee(s) => s.prepare(rng),
            _ => {}
        }
        if let Kind::Ping(p) = &mut self.kind {
            loop {
                let id = rng.next_u32() as u16;
                if !idents.contains(&id) {
                    idents.push(id);
                    p.ident = id;
                    break;
                }
            }
        }
    }

    /// A datagram for this app arrived: a RST, or an ICMP error quoting
    /// something it sent.
    pub(crate) fn notice(&mut self, rst: bool, icmp: Option<IcmpNote>) {
        if let Some(note) = icmp {
            self.icmp.add(&note);
            match &mut self.kind {
                Kind::TcpClient(t)
                    if note.to == (*t.to.ip(), t.to.port()) && note.aborts_connect() =>
                {
                    t.hard_error = Some(note);
                }
                Kind::Ping(p) if note.to.0 == p.to => p.errors += 1,
                Kind::FtpClient(f) => f.notice(note.clone()),
                Kind::TftpClient(t) => t.notice(note.clone()),
                Kind::IrcClient(i) => i.notice(note.clone()),
                _ => {}
            }
        }
        if rst {
            if let Kind::TcpClient(t) = &mut self.kind {
                t.rst_seen = true;
            }
        }
    }

    /// Lets the app act; true when it did something (sockets to poll again).
    pub(crate) fn step(&mut self, idx: usize, net: &mut Net, cx: &mut Cx<'_>) -> bool {
        let token = 1 + idx as u64;
        if !self.started {
            if cx.now < self.at {
                return false;
            }
            self.started = true;
            match &mut self.kind {
                Kind::TcpClient(t) => t.start(idx, &mut self.c, net, cx, token),
                Kind::TcpServer(s) => s.start(idx, &mut self.c, net),
                Kind::UdpEcho(u) => u.start(idx, &mut self.c, net),
                Kind::UdpSender(u) => u.start(idx, &mut self.c, net),
                Kind::Ping(p) => p.start(idx, &mut self.c, net),
                Kind::FtpServer(f) => f.start(idx, &mut self.c, net),
                Kind::FtpClient(f) => f.start(idx, &mut self.c, net, cx),
                Kind::TftpServer(t) => t.start(idx, &mut self.c, net),
                Kind::TftpClient(t) => t.start(idx, &mut self.c, net, cx),
                Kind::SnmpManager(m) => m.start(idx, &mut self.c, net, cx),
                Kind::SnmpAgent(a) => a.start(idx, &mut self.c, net),
                Kind::IrcServer(i) => i.start(idx, &mut self.c, net),
                Kind::IrcClient(i) => i.start(idx, &mut self.c, net, cx),
                Kind::SipCaller(s) => s.start(idx, &mut self.c, net, cx),
                Kind::SipCallee(s) => s.start(idx, &mut self.c, net),
            }
            return true;
        }
        let waiting = self.deadline();
        let acted = match &mut self.kind {
            Kind::TcpClient(t) => t.step(&mut self.c, net, cx.now),
            Kind::TcpServer(s) => s.step(&mut self.c, net),
            Kind::UdpEcho(u) => u.step(&mut self.c, net),
            Kind::UdpSender(u) => u.step(&mut self.c, net, cx, token),
            Kind::Ping(p) => p.step(&mut self.c, net, cx, token),
            Kind::FtpServer(f) => f.step(idx, &mut self.c, net, cx, token),
            Kind::FtpClient(f) => f.step(idx, &mut self.c, net, cx, token),
            Kind::TftpServer(t) => t.step(idx, &mut self.c, net, cx, token),
            Kind::TftpClient(t) => t.step(&mut self.c, net, cx, token),
            Kind::SnmpManager(m) => m.step(&mut self.c, net, cx, token),
            Kind::SnmpAgent(a) => a.step(&mut self.c, net),
            Kind::IrcServer(i) => i.step(&mut self.c, net),
            Kind::IrcClient(i) => i.step(idx, &mut self.c, net, cx, token),
            Kind::SipCaller(s) => s.step(&mut self.c, net, cx, token),
            Kind::SipCallee(s) => s.step(&mut self.c, net, cx, token),
        };
        // A deadline the app no longer waits for must not keep the run
        // going (nor conntrack's timers running past the last packet).
        if let Some(at) = waiting.filter(|&at| at > cx.now && self.deadline().is_none()) {
            cx.cancel_wake(at, token);
        }
        acted
    }

    /// The deadline wake-up the app has pending and still waits for: a TCP
    /// client's connect timeout, ping's wait for the last reply.
    fn deadline(&self) -> Option<Instant> {
        match &self.kind {
            Kind::TcpClient(t) if t.conn.is_some() && !t.settled => Some(t.deadline),
            Kind::Ping(p) if p.sent == p.count && !p.done => Some(p.last_sent + PING_LINGER),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What the app found beyond its counters (see `Host::app_detail`).
    pub(crate) fn detail(&self) -> Option<String> {
        match &self.kind {
            Kind::SnmpManager(m) => m.detail(),
            _ => None,
        }
    }

    pub(crate) fn outcome(&self) -> AppOutcome {
        let (kind, state) = match &self.kind {
            Kind::TcpClient(t) => ("tcp-client", t.state),
            Kind::TcpServer(s) => ("tcp-server", s.state(self.started)),
            Kind::UdpEcho(u) => ("udp-echo", u.state(self.started)),
            Kind::UdpSender(u) => ("udp-sender", run_state(self.started, u.done)),
            Kind::Ping(p) => ("ping", run_state(self.started, p.done)),
            Kind::FtpServer(f) => ("ftp-server", server_state(self.started, f.failed)),
            Kind::FtpClient(f) => ("ftp-client", f.state),
            Kind::TftpServer(t) => ("tftp-server", server_state(self.started, t.failed)),
            Kind::TftpClient(t) => ("tftp-client", t.state),
            Kind::SnmpManager(m) => ("snmp-manager", m.state),
            Kind::SnmpAgent(a) => ("snmp-agent", server_state(self.started, a.failed)),
            Kind::IrcServer(i) => ("irc-server", server_state(self.started, i.failed)),
            Kind::IrcClient(i) => ("irc-client", i.state),
            Kind::SipCaller(s) => ("sip-caller", s.state),
            Kind::SipCallee(s) => ("sip-callee", s.state(self.started)),
        };
        let error = match (&self.c.error, self.icmp.summary()) {
            (Some(e), Some(i)) => Some(format!("{e}; {i}")),
            (e, i) => e.clone().or(i),
        };
        AppOutcome {
            name: self.name.clone(),
            kind,
            state: state.to_string(),
            bytes_sent: self.c.bytes_sent,
            bytes_received: self.c.bytes_received,
            requests: self.c.requests,
            replies: self.c.replies,
            error,
        }
    }
}

fn server_state(started: bool, failed: bool) -> &'static str {
    match (started, failed) {
        (false, _) => "scheduled",
        (true, true) => "failed",
        (true, false) => "listening",
    }
}

fn run_state(started: bool, done: bool) -> &'static str {
    match (started, done) {
        (false, _) => "scheduled",
        (true, false) => "running",
        (true, true) => "done",
    }
}

fn v4(ip: Ipv4Addr) -> IpAddress {
    IpAddress::Ipv4(ip)
}

fn ip_of(ep: IpEndpoint) -> Ipv4Addr {
    match ep.addr {
        IpAddress::Ipv4(a) => a,
    }
}

/// Opens a client's connection to `to` from the address of the NIC that
/// routes there: (NIC, socket, local port, local address), or what went
/// wrong and the state to end in.
fn open_connection(
    idx: usize,
    net: &mut Net,
    to: SocketAddrV4,
) -> Result<(usize, SocketHandle, u16, Ipv4Addr), (String, &'static str)> {
    let Some(nic) = net.route(*to.ip()) else {
        return Err(("network unreachable".into(), "unreachable"));
    };
    let local = net.nics[nic].cidr.addr;
    let (handle, port) = ftp::connect(idx, net, nic, local, to).map_err(|e| (e, "failed"))?;
    Ok((nic, handle, port, local))
}

/// Binds a socket made by `new` to UDP `port` on every NIC, for a server;
/// `None` (and the error noted) when the port is taken.
fn udp_listen(
    idx: usize,
    c: &mut Counters,
    net: &mut Net,
    port: u16,
    new: impl Fn() -> udp::Socket<'static>,
) -> Option<Vec<(usize, SocketHandle)>> {
    if port == 0 || !net.ports.reserve(Proto::Udp, port) {
        c.fail(|| format!("udp port {port} is not available"));
        return None;
    }
    let socks = net
        .nics
        .iter_mut()
        .enumerate()
        .map(|(i, n)| {
            let mut sock = new();
            let _ = sock.bind(port);
            (i, n.sockets.add(sock))
        })
        .collect();
    net.demux.insert((17, port), idx);
    Some(socks)
}

/// A TCP socket with smoltcp's defaults, which include no congestion
/// control. (smoltcp 0.14's CUBIC changes the timing enough that heavy loss
/// drives both ends into a go-back-N deadlock; see the book's differences.)
fn new_tcp() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; TCP_RX]),
        tcp::SocketBuffer::new(vec![0u8; TCP_TX]),
    )
}

fn new_udp(size: usize) -> udp::Socket<'static> {
    let bytes = UDP_BYTES.max(size.saturating_mul(4));
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0; bytes],
        )
    };
    udp::Socket::new(buf(), buf())
}

/// Reads and drops everything buffered; returns the byte count.
fn drain(s: &mut tcp::Socket<'_>) -> u64 {
    let mut total = 0;
    while s.can_recv() {
        match s.recv(|b| (b.len(), b.len())) {
            Ok(n) if n > 0 => total += n as u64,
            _ => break,
        }
    }
    total
}

// ---------------------------------------------------------------------------
// TCP client

struct TcpClient {
    to: SocketAddrV4,
    send: Payload,
    total: u64,
    verify: bool,
    expect: Option<u64>,
    close: CloseMode,
    deadline: Instant,
    conn: Option<(usize, SocketHandle)>,
    port: u16,
    state: &'static str,
    established: bool,
    /// We have ended our part (FIN, RST, or nothing for `CloseMode::None`).
    closing: bool,
    /// Nothing left to do but watch (`CloseMode::None`): the timeout is off.
    settled: bool,
    /// A final state was reached; the app does nothing more.
    done: bool,
    /// The socket's state after our last step.
    last: tcp::State,
    rst_seen: bool,
    hard_error: Option<IcmpNote>,
    sent: u64,
    received: u64,
}

impl TcpClient {
    fn finish(&mut self, state: &'static str) {
        self.state = state;
        self.done = true;
        self.conn = None;
    }

    fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>, token: u64) {
        let Some(nic) = net.route(*self.to.ip()) else {
            c.fail(|| "network unreachable".into());
            return self.finish("unreachable");
        };
        let Some(port) = net.ports.ephemeral(Proto::Tcp) else {
            c.fail(|| "no free ephemeral port".into());
            return self.finish("failed");
        };
        let n = &mut net.nics[nic];
        let mut sock = new_tcp();
        let local = IpListenEndpoint {
            addr: Some(v4(n.cidr.addr)),
            port,
        };
        let remote = IpEndpoint::new(v4(*self.to.ip()), self.to.port());
        if let Err(e) = sock.connect(n.iface.context(), remote, local) {
            net.ports.free(Proto::Tcp, port);
            c.fail(|| format!("connect: {e}"));
            return self.finish("failed");
        }
        let handle = n.sockets.add(sock);
        net.demux.insert((6, port), idx);
        self.port = port;
        self.conn = Some((nic, handle));
        self.state = "connecting";
        self.last = tcp::State::SynSent;
        // Called off when the connection ends first (AppState::step).
        cx.wake_at(self.deadline, token);
    }

    fn step(&mut self, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        if self.done {
            return false;
        }
        let mut acted = false;
        if let Some((nic, handle)) = self.conn {
            acted = self.drive(c, net, nic, handle);
        }
        if !self.done && !self.settled && now >= self.deadline {
            self.give_up(net);
            acted = true;
        }
        acted
    }

    fn give_up(&mut self, net: &mut Net) {
        if let Some((nic, handle)) = self.conn {
            let n = &mut net.nics[nic];
            let s = n.sockets.get_mut::<tcp::Socket>(handle);
            if s.state() == tcp::State::SynSent {
                // Nothing to tell the peer: the handshake never completed.
                n.sockets.remove(handle);
                net.ports.free(Proto::Tcp, self.port);
            } else {
                s.abort();
                n.lingering.push((handle, Some((Proto::Tcp, self.port))));
            }
        }
        self.finish("timed-out");
    }

    /// Moves data and follows the connection's state; true when it acted.
    fn drive(&mut self, c: &mut Counters, net: &mut Net, nic: usize, handle: SocketHandle) -> bool {
        use tcp::State::*;
        let n = &mut net.nics[nic];
        let s = n.sockets.get_mut::<tcp::Socket>(handle);
        if let Some(note) = self.hard_error.take() {
            if matches!(s.state(), SynSent | SynReceived) {
                // Linux fails the connect at once (ECONNREFUSED for a port
                // unreachable, EHOSTUNREACH and friends otherwise).
                n.sockets.remove(handle);
                net.ports.free(Proto::Tcp, self.port);
                // The error itself is already in the app's ICMP log.
                self.finish(if note.icmp == (3, 3) {
                    "refused"
                } else {
                    "unreachable"
                });
                return true;
            }
        }
        let mut acted = false;

        while s.can_recv() {
            let (offset, verify) = (self.received, self.verify);
            let got = s.recv(|buf| {
                let checked = if verify {
                    pattern::check(offset, buf)
                } else {
                    (buf.len() as u64, None)
                };
                (buf.len(), (buf.len() as u64, checked))
            });
            let Ok((len, (matched, bad))) = got else {
                break;
            };
            if len == 0 {
                break;
            }
            self.received += len;
            c.bytes_received += matched;
            if let Some(bad) = bad {
                c.fail(|| pattern::describe(bad));
            }
            acted = true;
        }

        if s.may_send() {
            while self.sent < self.total {
                let (sent, total) = (self.sent, self.total);
                let wrote = match &self.send {
                    Payload::Bytes(_) => s.send(|buf| {
                        let k = (buf.len() as u64).min(total - sent) as usize;
                        pattern::fill(sent, &mut buf[..k]);
                        (k, k)
                    }),
                    Payload::Text(t) => s.send_slice(&t.as_bytes()[sent as usize..]),
                };
                match wrote {
                    Ok(k) if k > 0 => {
                        self.sent += k as u64;
                        c.bytes_sent += k as u64;
                        acted = true;
                    }
                    _ => break,
                }
            }
        }

        let state = s.state();
        if matches!(
            state,
            Established | FinWait1 | FinWait2 | CloseWait | Closing | LastAck | TimeWait
        ) && !self.established
        {
            self.established = true;
            self.state = "established";
        }
        match state {
            Closed => {
                let verdict = if !self.established {
                    "refused"
                } else if self.last == LastAck && !self.rst_seen {
                    "closed"
                } else {
                    "reset"
                };
                if s.remote_endpoint().is_none() {
                    n.sockets.remove(handle);
                    net.ports.free(Proto::Tcp, self.port);
                } else {
                    n.lingering.push((handle, Some((Proto::Tcp, self.port))));
                }
                self.finish(verdict);
                return true;
            }
            TimeWait => {
                // Our FIN and the peer's are both acknowledged: an orderly
                // close. smoltcp keeps the socket in TIME-WAIT a while.
                n.lingering.push((handle, Some((Proto::Tcp, self.port))));
                self.finish("closed");
                return true;
            }
            _ => {}
        }

        if self.established && !self.closing && self.sent >= self.total {
            let got_all = self.expect.is_none_or(|e| self.received >= e);
            // The peer has closed and everything it sent has been read.
            let eof = !s.may_recv();
            if got_all || eof {
                if let (false, Some(e)) = (got_all, self.expect) {
                    let got = self.received;
                    c.fail(|| format!("the peer closed after {got} of {e} expected bytes"));
                }
                self.closing = true;
                match self.close {
                    CloseMode::Close => {
                        s.close();
                        acted = true;
                    }
                    CloseMode::Abort => {
                        s.abort();
                        n.lingering.push((handle, Some((Proto::Tcp, self.port))));
                        self.finish("aborted");
                        return true;
                    }
                    CloseMode::None => self.settled = true,
                }
            }
        }
        self.last = s.state();
        self.rst_seen = false;
        acted
    }
}

// ---------------------------------------------------------------------------
// TCP server

struct TcpServer {
    port: u16,
    mode: ServerMode,
    /// One listening (or serving) socket per NIC.
    slots: Vec<Slot>,
    failed: bool,
}

struct Slot {
    nic: usize,
    handle: SocketHandle,
    /// A SYN arrived: the socket left LISTEN for one peer.
    bound: bool,
    /// The connection was established.
    accepted: bool,
    sent: u64,
    closing: bool,
}

impl TcpServer {
    fn state(&self, started: bool) -> &'static str {
        match (started, self.failed) {
            (false, _) => "scheduled",
            (true, true) => "failed",
            (true, false) => "listening",
        }
    }

    fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        if !net.ports.reserve(Proto::Tcp, self.port) {
            self.failed = true;
            let port = self.port;
            return c.fail(|| format!("tcp port {port} is already in use"));
        }
        for (i, n) in net.nics.iter_mut().enumerate() {
            let mut sock = new_tcp();
            if sock.listen(self.port).is_err() {
                self.failed = true;
                return c.fail(|| "cannot listen on port 0".into());
            }
            self.slots.push(Slot {
                nic: i,
                handle: n.sockets.add(sock),
                bound: false,
                accepted: false,
                sent: 0,
                closing: false,
            });
        }
        net.demux.insert((6, self.port), idx);
    }

    /// Serves every connection. Like a listening socket's backlog, each
    /// NIC always has one socket listening: when a connection is accepted
    /// a fresh one starts listening, and a finished connection's socket is
    /// dropped (or left to time out in TIME_WAIT).
    fn step(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let mut acted = false;
        let Net { nics, scratch, .. } = net;
        let mut fresh: Vec<usize> = Vec::new();
        let port = self.port;
        self.slots.retain_mut(|slot| {
            let n = &mut nics[slot.nic];
            let s = n.sockets.get_mut::<tcp::Socket>(slot.handle);
            let state = s.state();
            if state != Listen && !slot.bound {
                // A SYN took this socket: another one listens from now on.
                slot.bound = true;
                fresh.push(slot.nic);
            }
            match state {
                Listen | SynReceived => true,
                Closed => {
                    // Reset by the client, or our FIN acknowledged after theirs.
                    c.bytes_received += drain(s);
                    n.sockets.remove(slot.handle);
                    acted = true;
                    false
                }
                TimeWait => {
                    // We closed first; leave that socket to time out.
                    n.lingering.push((slot.handle, None));
                    acted = true;
                    false
                }
                _ => {
                    if !slot.accepted {
                        slot.accepted = true;
                        c.requests += 1;
                        acted = true;
                    }
                    acted |= serve(slot, s, self.mode, c, scratch);
                    true
                }
            }
        });
        for nic in fresh {
            let mut sock = new_tcp();
            let _ = sock.listen(port);
            self.slots.push(Slot {
                nic,
                handle: nics[nic].sockets.add(sock),
                bound: false,
                accepted: false,
                sent: 0,
                closing: false,
            });
        }
        acted
    }
}

/// One connection's worth of server work; true when it acted.
fn serve(
    slot: &mut Slot,
    s: &mut tcp::Socket<'_>,
    mode: ServerMode,
    c: &mut Counters,
    scratch: &mut [u8],
) -> bool {
    let mut acted = false;
    match mode {
        ServerMode::Echo if s.may_send() => loop {
            let room = s.send_capacity() - s.send_queue();
            let k = room.min(s.recv_queue()).min(scratch.len());
            if k == 0 {
                break;
            }
            let got = s.recv_slice(&mut scratch[..k]).unwrap_or(0);
            if got == 0 {
                break;
            }
            let put = s.send_slice(&scratch[..got]).unwrap_or(0);
            c.bytes_received += got as u64;
            c.bytes_sent += put as u64;
            acted = true;
        },
        ServerMode::Echo | ServerMode::Discard => {
            let got = drain(s);
            c.bytes_received += got;
            acted |= got > 0;
        }
        ServerMode::Send(total) => {
            let got = drain(s);
            c.bytes_received += got;
            acted |= got > 0;
            while s.may_send() && slot.sent < total {
                let sent = slot.sent;
                let wrote = s.send(|buf| {
                    let k = (buf.len() as u64).min(total - sent) as usize;
                    pattern::fill(sent, &mut buf[..k]);
                    (k, k)
                });
                match wrote {
                    Ok(k) if k > 0 => {
                        slot.sent += k as u64;
                        c.bytes_sent += k as u64;
                        acted = true;
                    }
                    _ => break,
                }
            }
            if slot.sent >= total && !slot.closing {
                slot.closing = true;
                s.close();
                acted = true;
            }
        }
    }
    // Echo and discard close once the client has closed and all is read.
    if !matches!(mode, ServerMode::Send(_)) && !slot.closing && !s.may_recv() {
        slot.closing = true;
        s.close();
        acted = true;
    }
    acted
}

// ---------------------------------------------------------------------------
// UDP echo

struct UdpEcho {
    port: u16,
    socks: Vec<(usize, SocketHandle)>,
    failed: bool,
}

impl UdpEcho {
    fn state(&self, started: bool) -> &'static str {
        match (started, self.failed) {
            (false, _) => "scheduled",
            (true, true) => "failed",
            (true, false) => "listening",
        }
    }

    fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        match udp_listen(idx, c, net, self.port, || new_udp(0)) {
            Some(socks) => self.socks = socks,
            None => self.failed = true,
        }
    }

    fn step(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        let mut acted = false;
        let Net { nics, scratch, .. } = net;
        for &(nic, handle) in &self.socks {
            let s = nics[nic].sockets.get_mut::<udp::Socket>(handle);
            while s.can_recv() {
                let Ok((len, meta)) = s.recv_slice(scratch) else {
                    break;
                };
                c.requests += 1;
                c.bytes_received += len as u64;
                if s.send_slice(&scratch[..len], meta.endpoint).is_ok() {
                    c.replies += 1;
                    c.bytes_sent += len as u64;
                }
                acted = true;
            }
        }
        acted
    }
}

// ---------------------------------------------------------------------------
// UDP sender

struct UdpSender {
    to: SocketAddrV4,
    count: u64,
    size: usize,
    interval: Duration,
    conn: Option<(usize, SocketHandle)>,
    sent: u64,
    next: Instant,
    done: bool,
}

impl UdpSender {
    fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        if self.size > MAX_DATAGRAM - 28 {
            self.done = true;
            let size = self.size;
            return c.fail(|| format!("{size} bytes do not fit in one IPv4 datagram"));
        }
        let Some(nic) = net.route(*self.to.ip()) else {
            self.done = true;
            return c.fail(|| "network unreachable".into());
        };
        let Some(port) = net.ports.ephemeral(Proto::Udp) else {
            self.done = true;
            return c.fail(|| "no free ephemeral port".into());
        };
        let n = &mut net.nics[nic];
        if self.size + 28 > n.mtu {
            let (size, mtu) = (self.size, n.mtu);
            c.fail(|| {
                format!("{size}-byte datagrams do not fit the MTU of {mtu} (no fragmentation)")
            });
        }
        let mut sock = new_udp(self.size);
        let _ = sock.bind(IpListenEndpoint {
            addr: Some(v4(n.cidr.addr)),
            port,
        });
        self.conn = Some((nic, n.sockets.add(sock)));
        net.demux.insert((17, port), idx);
        self.done = self.count == 0;
    }

    fn step(&mut self, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>, token: u64) -> bool {
        let Some((nic, handle)) = self.conn else {
            return false;
        };
        let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
        let mut acted = false;
        let from = IpEndpoint::new(v4(*self.to.ip()), self.to.port());
        while let Ok((data, meta)) = s.recv() {
            if meta.endpoint == from {
                c.replies += 1;
                let (matched, bad) = pattern::check(0, data);
                c.bytes_received += matched;
                if let Some(bad) = bad {
                    c.fail(|| pattern::describe(bad));
                }
            }
            acted = true;
        }
        let mut advanced = false;
        while self.sent < self.count && self.next <= cx.now {
            let Ok(buf) = s.send(self.size, from) else {
                break;
            };
            pattern::fill(0, buf);
            self.sent += 1;
            c.requests += 1;
            c.bytes_sent += self.size as u64;
            self.next += self.interval;
            advanced = true;
        }
        if advanced {
            acted = true;
            if self.sent == self.count {
                self.done = true;
            } else if self.next > cx.now {
                cx.wake_at(self.next, token);
            }
        }
        acted
    }
}

// ---------------------------------------------------------------------------
// Ping

struct Ping {
    to: Ipv4Addr,
    count: u64,
    interval: Duration,
    size: usize,
    ttl: u8,
    ident: u16,
    conn: Option<(usize, SocketHandle)>,
    sent: u64,
    next: Instant,
    last_sent: Instant,
    /// Which requests (by index from 0) have had a reply.
    seen: Vec<u64>,
    errors: u64,
    done: bool,
}

impl Ping {
    fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        if self.size > MAX_DATAGRAM - 28 {
            self.done = true;
            let size = self.size;
            return c.fail(|| format!("{size} bytes do not fit in one IPv4 datagram"));
        }
        let Some(nic) = net.route(self.to) else {
            self.done = true;
            return c.fail(|| "network unreachable".into());
        };
        let n = &mut net.nics[nic];
        let len = 8 + self.size;
        let buf = |packets: usize| {
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; packets],
                vec![0; (len + 64).max(1500) * packets],
            )
        };
        let mut sock = icmp::Socket::new(buf(16), buf(4));
        let _ = sock.bind(icmp::Endpoint::Ident(self.ident));
        if self.ttl > 0 {
            sock.set_hop_limit(Some(self.ttl));
        }
        self.conn = Some((nic, n.sockets.add(sock)));
        net.demux.insert((1, self.ident), idx);
        self.done = self.count == 0;
    }

    fn step(&mut self, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>, token: u64) -> bool {
        if self.done {
            return false;
        }
        let Some((nic, handle)) = self.conn else {
            return false;
        };
        let n = &mut net.nics[nic];
        let s = n.sockets.get_mut::<icmp::Socket>(handle);
        let mut acted = false;
        let caps = ChecksumCapabilities::default();
        while let Ok((data, from)) = s.recv() {
            acted = true;
            let Ok(packet) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            let Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }) = Icmpv4Repr::parse(&packet, &caps)
            else {
                continue;
            };
            if ident != self.ident || from != v4(self.to) || self.sent == 0 {
                continue;
            }
            // The most recent request whose sequence number this is.
            let back = u64::from((self.sent as u16).wrapping_sub(seq_no));
            if back >= self.sent {
                continue;
            }
            let i = self.sent - 1 - back;
            let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
            if self.seen.len() <= word {
                self.seen.resize(word + 1, 0);
            }
            if self.seen[word] & bit == 0 {
                self.seen[word] |= bit;
                c.replies += 1;
                c.bytes_received += data.len() as u64;
            }
        }
        let mut advanced = false;
        while self.sent < self.count && self.next <= cx.now {
            let seq_no = (self.sent + 1) as u16;
            let size = self.size;
            let repr = Icmpv4Repr::EchoRequest {
                ident: self.ident,
                seq_no,
                data: &[],
            };
            let Ok(buf) = s.send(8 + size, v4(self.to)) else {
                break;
            };
            let mut packet = Icmpv4Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut packet, &ChecksumCapabilities::ignored());
            pattern::fill(0, packet.data_mut());
            packet.fill_checksum();
            self.sent += 1;
            self.last_sent = cx.now;
            c.requests += 1;
            c.bytes_sent += size as u64;
            self.next += self.interval;
            advanced = true;
        }
        if advanced {
            acted = true;
            if self.sent < self.count {
                if self.next > cx.now {
                    cx.wake_at(self.next, token);
                }
            } else {
                // Called off when every reply is in (AppState::step).
                cx.wake_at(self.last_sent + PING_LINGER, token);
            }
        }
        // Like ping -c: done when every request is answered (a reply or an
        // error), or a while after the last one.
        if self.sent == self.count
            && (c.replies + self.errors >= self.count || cx.now >= self.last_sent + PING_LINGER)
        {
            self.done = true;
            n.sockets.remove(handle);
            self.conn = None;
            acted = true;
        }
        acted
    }
}
