//! TFTP (RFC 1350, octet mode, no options): a client as tftp-hpa's and a
//! server as tftpd-hpa's.
//!
//! The server answers each request from a fresh ephemeral port, its transfer
//! ID, as the RFC says: the reply comes from a port the client never sent to,
//! which is why a stateful firewall needs conntrack's tftp helper. Data moves
//! in 512-byte blocks, each acknowledged; the side waiting for a packet
//! retransmits its last one when nothing comes, and gives up after a few
//! tries. A packet from another port gets an ERROR 5 ("Unknown transfer ID")
//! and is otherwise ignored. The side that sent the last acknowledgement
//! lingers a while ("dallies") to acknowledge the last block again if its
//! sender retransmits it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::files::{FileData, Verifier};
use super::{ip_of, v4, Counters, Timer};
use crate::host::device::IcmpNote;
use crate::host::ports::Proto;
use crate::host::{File, Net, Transfer};
use crate::node::Cx;
use crate::time::{Duration, Instant};

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
/// Data bytes per block.
const BLOCK: usize = 512;
/// The largest packet: opcode, block number, a full block.
const MAX_PACKET: usize = 4 + BLOCK;

/// tftp-hpa's client: retransmit every 5 s, give up after 25 s.
const CLIENT_REXMT: Duration = Duration::from_secs(5);
const CLIENT_TRIES: u32 = 5;
/// tftpd-hpa's server: retransmit every second, six tries in all.
const SERVER_REXMT: Duration = Duration::from_secs(1);
const SERVER_TRIES: u32 = 6;
/// How long the side that sent the last ACK stays to acknowledge the last
/// block again: as long as the other side keeps retransmitting it.
const CLIENT_DALLY: Duration = Duration::from_secs(6);
const SERVER_DALLY: Duration = Duration::from_secs(25);

/// A TFTP packet, borrowed from the datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    Request {
        op: u16,
        file: &'a [u8],
        mode: &'a [u8],
    },
    Data {
        block: u16,
        data: &'a [u8],
    },
    Ack {
        block: u16,
    },
    Error {
        code: u16,
        msg: &'a [u8],
    },
}

/// Reads a packet; the reason when it is not a well-formed one.
pub(crate) fn parse(b: &[u8]) -> Result<Packet<'_>, &'static str> {
    let op = be16(b, 0).ok_or("shorter than an opcode")?;
    match op {
        RRQ | WRQ => {
            let rest = &b[2..];
            let z = rest.iter().position(|&x| x == 0).ok_or("no file name")?;
            let (file, rest) = (&rest[..z], &rest[z + 1..]);
            let z = rest.iter().position(|&x| x == 0).ok_or("no mode")?;
            if file.is_empty() {
                return Err("an empty file name");
            }
            Ok(Packet::Request {
                op,
                file,
                mode: &rest[..z],
            })
        }
        DATA => {
            let block = be16(b, 2).ok_or("a DATA packet without a block number")?;
            let data = &b[4..];
            if data.len() > BLOCK {
                return Err("a DATA packet longer than 512 bytes");
            }
            Ok(Packet::Data { block, data })
        }
        ACK => {
            let block = be16(b, 2).ok_or("an ACK without a block number")?;
            Ok(Packet::Ack { block })
        }
        ERROR => {
            let code = be16(b, 2).ok_or("an ERROR without a code")?;
            let rest = &b[4..];
            let end = rest.iter().position(|&x| x == 0).unwrap_or(rest.len());
            Ok(Packet::Error {
                code,
                msg: &rest[..end],
            })
        }
        _ => Err("an unknown opcode"),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn put_error(out: &mut Vec<u8>, code: u16, msg: &str) {
    out.clear();
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(msg.as_bytes());
    out.push(0);
}

fn put_ack(out: &mut Vec<u8>, block: u16) {
    out.clear();
    out.extend_from_slice(&ACK.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
}

/// DATA block `block` holding the file's bytes from `offset`; how many.
fn put_data(out: &mut Vec<u8>, block: u16, file: &FileData, offset: u64) -> usize {
    out.clear();
    out.extend_from_slice(&DATA.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.resize(MAX_PACKET, 0);
    let k = file.read(offset, &mut out[4..]);
    out.truncate(4 + k);
    k
}

fn endpoint(a: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(v4(*a.ip()), a.port())
}

/// A UDP socket for one transfer: a few packets each way.
fn transfer_socket() -> udp::Socket<'static> {
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; 16],
            vec![0; 16 * MAX_PACKET],
        )
    };
    udp::Socket::new(buf(), buf())
}

fn error_text(code: u16, msg: &[u8]) -> String {
    format!("Error code {code}: {}", String::from_utf8_lossy(msg))
}

// ---------------------------------------------------------------------------
// Client

pub(crate) struct TftpClient {
    to: SocketAddrV4,
    transfer: Transfer,
    timeout: Duration,
    deadline: Instant,
    pub(crate) state: &'static str,
    sock: Option<(usize, SocketHandle)>,
    port: u16,
    /// The server's transfer ID (its port), once its first packet came.
    tid: Option<u16>,
    /// Get: the last block received; put: the last block sent.
    block: u16,
    offset: u64,
    content: Option<FileData>,
    verifier: Verifier,
    /// The last packet sent, to send again.
    out: Vec<u8>,
    /// A one-off packet (an ERROR to a stranger).
    aside: Vec<u8>,
    sent_at: Instant,
    tries: u32,
    /// Put: the last block is out.
    last: bool,
    /// Get: everything arrived; acknowledging retransmissions until then.
    dally: Option<Instant>,
    hard_error: Option<IcmpNote>,
    timer: Timer,
    done: bool,
}

impl TftpClient {
    pub(crate) fn new(to: SocketAddrV4, transfer: Transfer, timeout: Duration) -> Self {
        TftpClient {
            to,
            transfer,
            timeout,
            deadline: Instant::ZERO,
            state: "scheduled",
            sock: None,
            port: 0,
            tid: None,
            block: 0,
            offset: 0,
            content: None,
            verifier: Verifier::default(),
            out: Vec::with_capacity(MAX_PACKET),
            aside: Vec::with_capacity(64),
            sent_at: Instant::ZERO,
            tries: 0,
            last: false,
            dally: None,
            hard_error: None,
            timer: Timer::default(),
            done: false,
        }
    }

    pub(crate) fn notice(&mut self, note: IcmpNote) {
        if note.to.0 == *self.to.ip() && matches!(note.icmp.0, 3 | 11 | 12) {
            self.hard_error.get_or_insert(note);
        }
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>) {
        self.deadline = cx.now + self.timeout;
        self.state = "running";
        let (op, name) = match &self.transfer {
            Transfer::Get { name, expect } => {
                self.verifier = Verifier::new(expect.clone());
                (RRQ, name.clone())
            }
            Transfer::Put { name, content } => {
                self.content = Some(FileData::from_payload(content));
                (WRQ, name.clone())
            }
            Transfer::List => {
                c.fail(|| "TFTP has no directory listing".into());
                return self.finish("failed");
            }
        };
        let Some(nic) = net.route(*self.to.ip()) else {
            c.fail(|| "network unreachable".into());
            return self.finish("unreachable");
        };
        let Some(port) = net.ports.ephemeral(Proto::Udp) else {
            c.fail(|| "no free ephemeral port".into());
            return self.finish("failed");
        };
        let n = &mut net.nics[nic];
        let mut sock = transfer_socket();
        let _ = sock.bind(IpListenEndpoint {
            addr: Some(v4(n.cidr.addr)),
            port,
        });
        self.sock = Some((nic, n.sockets.add(sock)));
        self.port = port;
        net.demux.insert((17, port), idx);
        self.out.clear();
        self.out.extend_from_slice(&op.to_be_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.out.extend_from_slice(b"octet\0");
        c.requests += 1;
        self.transmit(net, cx.now, false);
    }

    fn finish(&mut self, state: &'static str) {
        self.state = state;
        self.done = true;
    }

    /// Sends `out` to the server (its request port until it answered).
    fn transmit(&mut self, net: &mut Net, now: Instant, again: bool) {
        let Some((nic, handle)) = self.sock else {
            return;
        };
        let port = self.tid.unwrap_or(self.to.port());
        let to = endpoint(SocketAddrV4::new(*self.to.ip(), port));
        let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
        let _ = s.send_slice(&self.out, to);
        self.sent_at = now;
        self.tries = if again { self.tries + 1 } else { 1 };
    }

    fn close(&mut self, net: &mut Net) {
        if let Some((nic, handle)) = self.sock.take() {
            net.nics[nic].sockets.remove(handle);
            net.ports.free(Proto::Udp, self.port);
            net.demux.remove(&(17, self.port));
        }
    }

    /// Ends with an error; `tell` sends the server an ERROR first.
    fn fail(&mut self, c: &mut Counters, net: &mut Net, why: String, tell: Option<(u16, &str)>) {
        c.fail(|| why);
        if let (Some((code, msg)), Some(_)) = (tell, self.tid) {
            put_error(&mut self.out, code, msg);
            let now = self.sent_at;
            self.transmit(net, now, false);
        }
        // The socket stays until the next step so an ERROR gets out.
        self.finish("failed");
    }

    pub(crate) fn step(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        if self.done {
            if self.sock.is_some() && self.dally.is_none() {
                self.close(net);
                self.timer.sync(None, cx, token);
                return true;
            }
            if self.dally.is_none() {
                return false;
            }
        }
        let acted = self.act(c, net, cx.now);
        let want = if self.sock.is_none() {
            None
        } else if let Some(d) = self.dally {
            Some(d)
        } else if self.done {
            None
        } else {
            let rexmt = self.sent_at + CLIENT_REXMT;
            Some(rexmt.min(self.deadline))
        };
        self.timer.sync(want, cx, token);
        acted
    }

    fn act(&mut self, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        let Some((nic, handle)) = self.sock else {
            return false;
        };
        let mut acted = false;
        if let Some(note) = self.hard_error.take() {
            if !self.done {
                let why = if note.icmp == (3, 3) {
                    "connection refused".to_string()
                } else {
                    format!("{} from {}", note.kind, note.from)
                };
                c.fail(|| why);
                self.finish(if note.icmp == (3, 3) {
                    "refused"
                } else {
                    "unreachable"
                });
                self.close(net);
                return true;
            }
        }
        let mut buf = [0u8; MAX_PACKET + 1];
        loop {
            let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
            let Ok((len, meta)) = s.recv_slice(&mut buf) else {
                break;
            };
            acted = true;
            let len = len.min(buf.len());
            self.packet(c, net, meta.endpoint, &buf[..len], now);
            if self.sock.is_none() {
                return true;
            }
        }
        if let Some(until) = self.dally {
            if now >= until {
                self.dally = None;
                self.close(net);
                return true;
            }
            return acted;
        }
        if self.done {
            return acted;
        }
        if now >= self.deadline {
            let why = match self.tid {
                None => "timed out waiting for the server's answer".to_string(),
                Some(_) => self.waiting_for("timed out"),
            };
            c.fail(|| why);
            self.finish("timed-out");
            self.close(net);
            return true;
        }
        if now >= self.sent_at + CLIENT_REXMT {
            if self.tries >= CLIENT_TRIES {
                let why = match self.tid {
                    None => format!("no answer to the request after {CLIENT_TRIES} tries"),
                    Some(_) => self.waiting_for(&format!("no answer after {CLIENT_TRIES} tries")),
                };
                c.fail(|| why);
                self.finish("timed-out");
                self.close(net);
                return true;
            }
            if self.tid.is_none() {
                c.requests += 1;
            }
            self.transmit(net, now, true);
            acted = true;
        }
        acted
    }

    fn waiting_for(&self, what: &str) -> String {
        match self.transfer {
            Transfer::Put { .. } => format!("{what} waiting for the ACK of block {}", self.block),
            _ => format!("{what} waiting for block {}", self.block.wrapping_add(1)),
        }
    }

    /// One datagram from `from`.
    fn packet(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        from: IpEndpoint,
        b: &[u8],
        now: Instant,
    ) {
        if ip_of(from) != *self.to.ip() {
            return;
        }
        match self.tid {
            Some(tid) if tid != from.port => {
                // RFC 1350 §4: not our transfer; tell the stranger.
                if let Some((nic, handle)) = self.sock {
                    put_error(&mut self.aside, 5, "Unknown transfer ID");
                    let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
                    let _ = s.send_slice(&self.aside, from);
                }
                return;
            }
            Some(_) => {}
            None if self.done => return,
            None => self.tid = Some(from.port),
        }
        let packet = match parse(b) {
            Ok(p) => p,
            Err(why) => {
                if !self.done {
                    let why = format!("malformed packet from {from}: {why}");
                    self.fail(c, net, why, Some((4, "Illegal TFTP operation")));
                }
                return;
            }
        };
        let get = matches!(self.transfer, Transfer::Get { .. });
        match packet {
            Packet::Error { code, msg } => {
                if !self.done {
                    self.fail(c, net, error_text(code, msg), None);
                }
            }
            Packet::Data { block, data } if get => {
                c.replies += 1;
                if self.done {
                    // Dallying: the server did not get our last ACK.
                    if block == self.block {
                        self.transmit(net, now, false);
                    }
                } else if block == self.block.wrapping_add(1) {
                    self.verifier.feed(data);
                    c.bytes_received += data.len() as u64;
                    self.block = block;
                    put_ack(&mut self.out, block);
                    self.transmit(net, now, false);
                    if data.len() < BLOCK {
                        match self.verifier.verdict() {
                            Some(bad) => {
                                c.fail(|| bad);
                                self.finish("failed");
                            }
                            None => self.finish("done"),
                        }
                        self.dally = Some(now + CLIENT_DALLY);
                    }
                } else if block == self.block && self.offset_started() {
                    // Our ACK was lost: acknowledge again.
                    self.transmit(net, now, false);
                }
            }
            Packet::Ack { block } if !get => {
                c.replies += 1;
                if self.done || block != self.block {
                    // A duplicate: ignored (no Sorcerer's Apprentice).
                    return;
                }
                if self.last {
                    self.finish("done");
                    return;
                }
                let Some(content) = self.content.as_ref() else {
                    return;
                };
                self.block = self.block.wrapping_add(1);
                let k = put_data(&mut self.out, self.block, content, self.offset);
                self.offset += k as u64;
                c.bytes_sent += k as u64;
                self.last = k < BLOCK;
                self.transmit(net, now, false);
            }
            Packet::Data { .. } | Packet::Ack { .. } | Packet::Request { .. } => {
                if !self.done {
                    let why = format!("unexpected packet from {from}");
                    self.fail(c, net, why, Some((4, "Illegal TFTP operation")));
                }
            }
        }
    }

    fn offset_started(&self) -> bool {
        self.verifier.received() > 0 || self.block > 0
    }
}

// ---------------------------------------------------------------------------
// Server

enum Job {
    Read(Arc<FileData>),
    Write { name: String, data: Vec<u8> },
}

struct Xfer {
    nic: usize,
    handle: SocketHandle,
    port: u16,
    peer: IpEndpoint,
    job: Job,
    block: u16,
    offset: u64,
    out: Vec<u8>,
    aside: Vec<u8>,
    sent_at: Instant,
    tries: u32,
    /// Read: the last block is out; write: the last block arrived.
    last: bool,
    /// Write: acknowledging retransmissions of the last block until then.
    dally: Option<Instant>,
    /// Over: the socket goes at the next step (once its packet is out).
    over: bool,
}

pub(crate) struct TftpServer {
    port: u16,
    files: Vec<(String, Arc<FileData>)>,
    socks: Vec<(usize, SocketHandle)>,
    xfers: Vec<Xfer>,
    pub(crate) failed: bool,
    timer: Timer,
}

impl TftpServer {
    pub(crate) fn new(port: u16, files: Vec<File>) -> Self {
        TftpServer {
            port,
            files: files
                .iter()
                .map(|f| (f.name.clone(), Arc::new(FileData::from_payload(&f.content))))
                .collect(),
            socks: Vec::new(),
            xfers: Vec::new(),
            failed: false,
            timer: Timer::default(),
        }
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        match super::udp_listen(idx, c, net, self.port, || super::new_udp(0)) {
            Some(socks) => self.socks = socks,
            None => self.failed = true,
        }
    }

    pub(crate) fn step(
        &mut self,
        idx: usize,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        let now = cx.now;
        let mut acted = false;
        let mut buf = [0u8; 1024];
        for k in 0..self.socks.len() {
            let (nic, handle) = self.socks[k];
            loop {
                let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
                let Ok((len, meta)) = s.recv_slice(&mut buf) else {
                    break;
                };
                acted = true;
                let local = match meta.local_address {
                    Some(IpAddress::Ipv4(a)) => a,
                    None => net.nics[nic].cidr.addr,
                };
                let len = len.min(buf.len());
                self.request(idx, c, net, nic, local, meta.endpoint, &buf[..len], now);
            }
        }
        let mut i = 0;
        while i < self.xfers.len() {
            let x = &mut self.xfers[i];
            if x.over {
                let s = net.nics[x.nic].sockets.get::<udp::Socket>(x.handle);
                if s.send_queue() == 0 {
                    net.nics[x.nic].sockets.remove(x.handle);
                    net.ports.free(Proto::Udp, x.port);
                    net.demux.remove(&(17, x.port));
                    self.xfers.remove(i);
                    acted = true;
                    continue;
                }
                i += 1;
                continue;
            }
            acted |= serve(x, &mut self.files, c, net, now);
            i += 1;
        }
        let want = self
            .xfers
            .iter()
            .filter(|x| !x.over)
            .map(|x| x.dally.unwrap_or(x.sent_at + SERVER_REXMT))
            .min();
        self.timer.sync(want, cx, token);
        acted
    }

    /// A datagram to the server's port.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        idx: usize,
        c: &mut Counters,
        net: &mut Net,
        nic: usize,
        local: Ipv4Addr,
        peer: IpEndpoint,
        b: &[u8],
        now: Instant,
    ) {
        let Ok(Packet::Request { op, file, mode }) = parse(b) else {
            // tftpd-hpa ignores what is not a request.
            return;
        };
        c.requests += 1;
        let Some(port) = net.ports.ephemeral(Proto::Udp) else {
            return;
        };
        let mut sock = transfer_socket();
        let _ = sock.bind(IpListenEndpoint {
            addr: Some(v4(local)),
            port,
        });
        let handle = net.nics[nic].sockets.add(sock);
        net.demux.insert((17, port), idx);
        let name = String::from_utf8_lossy(file);
        let name = name.trim_start_matches('/').to_string();
        let mut x = Xfer {
            nic,
            handle,
            port,
            peer,
            job: Job::Read(Arc::new(FileData::Pattern(0))),
            block: 0,
            offset: 0,
            out: Vec::with_capacity(MAX_PACKET),
            aside: Vec::new(),
            sent_at: now,
            tries: 1,
            last: false,
            dally: None,
            over: false,
        };
        let octet = mode.eq_ignore_ascii_case(b"octet") || mode.eq_ignore_ascii_case(b"netascii");
        if !octet {
            put_error(&mut x.out, 4, "Unknown mode");
            x.over = true;
        } else if op == RRQ {
            match self.files.iter().find(|(n, _)| *n == name) {
                Some((_, f)) => {
                    x.block = 1;
                    let k = put_data(&mut x.out, 1, f, 0);
                    x.offset = k as u64;
                    c.bytes_sent += k as u64;
                    x.last = k < BLOCK;
                    x.job = Job::Read(f.clone());
                }
                None => {
                    put_error(&mut x.out, 1, "File not found");
                    x.over = true;
                }
            }
        } else {
            x.job = Job::Write {
                name,
                data: Vec::new(),
            };
            put_ack(&mut x.out, 0);
        }
        let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
        let _ = s.send_slice(&x.out, peer);
        self.xfers.push(x);
    }
}

/// One transfer's work; true when it acted.
fn serve(
    x: &mut Xfer,
    files: &mut Vec<(String, Arc<FileData>)>,
    c: &mut Counters,
    net: &mut Net,
    now: Instant,
) -> bool {
    let mut acted = false;
    let mut buf = [0u8; MAX_PACKET + 1];
    loop {
        let s = net.nics[x.nic].sockets.get_mut::<udp::Socket>(x.handle);
        let Ok((len, meta)) = s.recv_slice(&mut buf) else {
            break;
        };
        acted = true;
        let len = len.min(buf.len());
        let from = meta.endpoint;
        if from != x.peer {
            put_error(&mut x.aside, 5, "Unknown transfer ID");
            let _ = s.send_slice(&x.aside, from);
            continue;
        }
        match (parse(&buf[..len]), &mut x.job) {
            (Ok(Packet::Error { .. }), _) => {
                // The client gave up (or this was a duplicate request's
                // transfer it does not want); tftpd-hpa just exits.
                x.over = true;
                return true;
            }
            (Ok(Packet::Ack { block }), Job::Read(file)) => {
                if block != x.block {
                    continue;
                }
                c.replies += u64::from(x.last);
                if x.last {
                    x.over = true;
                    return true;
                }
                x.block = x.block.wrapping_add(1);
                let k = put_data(&mut x.out, x.block, file, x.offset);
                x.offset += k as u64;
                c.bytes_sent += k as u64;
                x.last = k < BLOCK;
                x.sent_at = now;
                x.tries = 1;
                send(net, x.nic, x.handle, &x.out, x.peer);
            }
            (Ok(Packet::Data { block, data }), Job::Write { name, data: stored }) => {
                if block == x.block.wrapping_add(1) && !x.last {
                    stored.extend_from_slice(data);
                    c.bytes_received += data.len() as u64;
                    x.block = block;
                    put_ack(&mut x.out, block);
                    x.sent_at = now;
                    x.tries = 1;
                    send(net, x.nic, x.handle, &x.out, x.peer);
                    if data.len() < BLOCK {
                        x.last = true;
                        x.dally = Some(now + SERVER_DALLY);
                        c.replies += 1;
                        let file = Arc::new(FileData::Bytes(std::mem::take(stored)));
                        let name = std::mem::take(name);
                        match files.iter_mut().find(|(n, _)| *n == name) {
                            Some(slot) => slot.1 = file,
                            None => files.push((name, file)),
                        }
                    }
                } else if block == x.block {
                    // Our ACK was lost: acknowledge again.
                    send(net, x.nic, x.handle, &x.out, x.peer);
                }
            }
            (Ok(_), _) | (Err(_), _) => {
                put_error(&mut x.out, 4, "Illegal TFTP operation");
                send(net, x.nic, x.handle, &x.out, x.peer);
                x.over = true;
                return true;
            }
        }
    }
    if let Some(until) = x.dally {
        if now >= until {
            x.over = true;
            return true;
        }
        return acted;
    }
    if now >= x.sent_at + SERVER_REXMT {
        if x.tries >= SERVER_TRIES {
            // tftpd-hpa gives up silently.
            x.over = true;
            return true;
        }
        x.tries += 1;
        x.sent_at = now;
        send(net, x.nic, x.handle, &x.out, x.peer);
        acted = true;
    }
    acted
}

fn send(net: &mut Net, nic: usize, handle: SocketHandle, packet: &[u8], to: IpEndpoint) {
    let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
    let _ = s.send_slice(packet, to);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn packets_parse_as_rfc_1350_lays_them_out() {
        assert_eq!(
            parse(b"\x00\x01boot.bin\x00octet\x00"),
            Ok(Packet::Request {
                op: RRQ,
                file: b"boot.bin",
                mode: b"octet"
            })
        );
        assert_eq!(
            parse(b"\x00\x03\x00\x07abc"),
            Ok(Packet::Data {
                block: 7,
                data: b"abc"
            })
        );
        assert_eq!(parse(b"\x00\x04\x01\x00"), Ok(Packet::Ack { block: 256 }));
        assert_eq!(
            parse(b"\x00\x05\x00\x01File not found\x00"),
            Ok(Packet::Error {
                code: 1,
                msg: b"File not found"
            })
        );
        assert!(parse(b"\x00\x01\x00octet\x00").is_err());
        assert!(parse(b"\x00\x01name").is_err());
        assert!(parse(b"\x00\x09").is_err());
        assert!(parse(b"\x00").is_err());
        assert!(parse(&[0, 3, 0, 1].repeat(200)).is_err());
        let mut out = Vec::new();
        put_error(&mut out, 5, "Unknown transfer ID");
        assert_eq!(out, b"\x00\x05\x00\x05Unknown transfer ID\x00");
        assert_eq!(put_data(&mut out, 2, &FileData::Pattern(600), 512), 88);
        assert_eq!(out.len(), 92);
    }

    #[test]
    fn random_packets_never_panic_the_parser() {
        let mut rng = Rng::from_seed(9);
        for _ in 0..50_000 {
            let len = rng.below(40) as usize;
            let b: Vec<u8> = (0..len).map(|_| (rng.below(8)) as u8).collect();
            let _ = parse(&b);
        }
    }
}
