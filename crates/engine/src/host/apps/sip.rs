//! SIP over UDP (RFC 3261, with RFC 3581's rport) and RTP (RFC 3550): a
//! caller and a callee that set up one call with an SDP offer and answer
//! (RFC 3264), stream G.711 µ-law audio both ways, and hang up.
//!
//! The caller sends INVITE with its media address in the SDP body; the
//! callee answers 100 Trying, 180 Ringing and 200 OK with its own; the
//! caller ACKs, and each side sends 20 ms RTP packets (a 12-byte header and
//! 160 bytes of payload) to the address and port the other side's SDP
//! announced, which is why a stateful firewall needs conntrack's sip helper:
//! the media flows between ports the SIP messages named. After `duration`
//! the caller sends BYE and the callee answers 200 OK.
//!
//! Requests are retransmitted as RFC 3261 §17 says (INVITE every T1, 2·T1,
//! … until a response; BYE the same, capped at T2; the callee's 200 OK until
//! the ACK), and given up after 64·T1. Branches, tags, Call-IDs, SSRCs and
//! sequence numbers come from the node's random stream. What cannot be
//! parsed is dropped (the callee answers a request it can read but not use:
//! 486 when busy, 488 for an SDP offer it cannot use, 481 for an unknown
//! call, 501 for other methods).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::{ip_of, v4, Counters, Timer};
use crate::host::ports::Proto;
use crate::host::Net;
use crate::node::Cx;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// RFC 3261's T1 and T2; transactions give up after 64·T1 (timers B, F, H).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const GIVE_UP: Duration = Duration::from_millis(64 * 500);
/// How long a caller waits for a final answer once the callee rings
/// (RFC 3261's timer C, at least 3 minutes).
const RINGING: Duration = Duration::from_secs(180);
/// A callee hangs up a call whose RTP stopped this long ago (as Asterisk's
/// `rtptimeout`), so a caller that vanished does not keep it streaming.
const RTP_TIMEOUT: Duration = Duration::from_secs(10);
/// One RTP packet every 20 ms: 160 samples of G.711 at 8 kHz.
const PTIME: Duration = Duration::from_millis(20);
const RTP_HEADER: usize = 12;
const SAMPLES: usize = 160;
/// The largest SIP message read (a UDP datagram on a 1500-byte path).
const MAX_MESSAGE: usize = 4096;
const SIP_PORT: u16 = 5060;
const USER_AGENT: &str = "ctsim";

fn endpoint(a: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(v4(*a.ip()), a.port())
}

fn sock_addr(ep: IpEndpoint) -> SocketAddrV4 {
    SocketAddrV4::new(ip_of(ep), ep.port)
}

fn sip_socket() -> udp::Socket<'static> {
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; 16],
            vec![0; 16 * MAX_MESSAGE],
        )
    };
    udp::Socket::new(buf(), buf())
}

fn rtp_socket() -> udp::Socket<'static> {
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; 64],
            vec![0; 64 * (RTP_HEADER + SAMPLES + 64)],
        )
    };
    udp::Socket::new(buf(), buf())
}

// ---------------------------------------------------------------------------
// Messages

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Start<'a> {
    Request { method: &'a str, uri: &'a str },
    Response { code: u16, reason: &'a str },
}

/// A SIP message, borrowed from the datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub start: Start<'a>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// RFC 3261 §7.3.3's compact header names.
fn full_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        _ => name,
    }
}

impl<'a> Message<'a> {
    /// The first header of this name (any case, compact forms too).
    pub(crate) fn header(&self, name: &str) -> Option<&'a str> {
        self.all(name).next()
    }

    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| full_name(n).eq_ignore_ascii_case(full_name(name)))
            .map(|(_, v)| *v)
    }

    /// `CSeq`'s number and method.
    pub(crate) fn cseq(&self) -> Option<(u32, &'a str)> {
        let (n, m) = self.header("CSeq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }
}

/// Reads a message; the reason when it is not one.
pub(crate) fn parse(b: &[u8]) -> Result<Message<'_>, &'static str> {
    let (head, body) = match find(b, b"\r\n\r\n") {
        Some(k) => (&b[..k], &b[k + 4..]),
        None => match find(b, b"\n\n") {
            Some(k) => (&b[..k], &b[k + 2..]),
            None => (b, &b[b.len()..]),
        },
    };
    let head = std::str::from_utf8(head).map_err(|_| "headers that are not UTF-8")?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or("an empty message")?;
    let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| "a status line without a code")?;
        if !(100..700).contains(&code) {
            return Err("a status code outside 100–699");
        }
        Start::Response { code, reason }
    } else {
        let mut words = first.split(' ');
        let (Some(method), Some(uri), Some("SIP/2.0"), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err("a request line that is not METHOD URI SIP/2.0");
        };
        if method.is_empty() || !method.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err("a request line with a bad method");
        }
        Start::Request { method, uri }
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or("a header line without a colon")?;
        let name = name.trim();
        if name.is_empty() || name.contains(' ') {
            return Err("a bad header name");
        }
        headers.push((name, value.trim()));
        if headers.len() > 64 {
            return Err("too many headers");
        }
    }
    let mut m = Message {
        start,
        headers,
        body,
    };
    if let Some(len) = m.header("Content-Length") {
        let len: usize = len.parse().map_err(|_| "a bad Content-Length")?;
        m.body = m
            .body
            .get(..len)
            .ok_or("a body shorter than its Content-Length")?;
    }
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if m.header(h).is_none() {
            return Err(match h {
                "Via" => "no Via header",
                "From" => "no From header",
                "To" => "no To header",
                "Call-ID" => "no Call-ID header",
                _ => "no CSeq header",
            });
        }
    }
    if m.cseq().is_none() {
        return Err("a bad CSeq header");
    }
    Ok(m)
}

fn find(b: &[u8], what: &[u8]) -> Option<usize> {
    b.windows(what.len()).position(|w| w == what)
}

/// A header parameter's value (`;tag=abc`).
pub(crate) fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    // Parameters follow the URI's closing `>` when there is one.
    let params = match value.rfind('>') {
        Some(k) => &value[k + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The media address of an SDP body: the audio `m=` line's port and the
/// `c=` address that applies to it (media level, else session level).
pub(crate) fn parse_sdp(body: &[u8]) -> Result<SocketAddrV4, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "an SDP body that is not UTF-8")?;
    if text.trim().is_empty() {
        return Err("no SDP body");
    }
    let mut session_c = None;
    let mut media: Option<(u16, Option<Ipv4Addr>)> = None;
    let mut in_audio = false;
    let conn = |v: &str| -> Result<Ipv4Addr, &'static str> {
        let mut w = v.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("IN"), Some("IP4"), Some(a)) => {
                let a = a.split('/').next().unwrap_or(a);
                a.parse().map_err(|_| "a c= line with a bad address")
            }
            _ => Err("a c= line that is not IN IP4"),
        }
    };
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("m=") {
            if media.is_some() {
                in_audio = false;
                continue;
            }
            let mut w = v.split_whitespace();
            in_audio = w.next() == Some("audio");
            if in_audio {
                let port = w.next().ok_or("an m= line without a port")?;
                let port = port.split('/').next().unwrap_or(port);
                let port: u16 = port.parse().map_err(|_| "an m= line with a bad port")?;
                if w.next().is_none_or(|p| !p.starts_with("RTP/")) {
                    return Err("an m= line that is not RTP");
                }
                media = Some((port, None));
            }
        } else if let Some(v) = line.strip_prefix("c=") {
            match &mut media {
                None => session_c = Some(conn(v)?),
                Some((_, c)) if in_audio => *c = Some(conn(v)?),
                Some(_) => {}
            }
        }
    }
    let (port, c) = media.ok_or("no m=audio line")?;
    if port == 0 {
        return Err("the audio stream is refused (port 0)");
    }
    let addr = c.or(session_c).ok_or("no c= line")?;
    Ok(SocketAddrV4::new(addr, port))
}

/// An SDP offer or answer for G.711 µ-law (PCMU) audio at `media`.
fn sdp(user: &str, session: u32, media: SocketAddrV4) -> String {
    let ip = media.ip();
    format!(
        "v=0\r\no={user} {session} {session} IN IP4 {ip}\r\ns=ctsim\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        media.port()
    )
}

fn token(rng: &mut Rng) -> String {
    format!("{:08x}{:04x}", rng.next_u32(), rng.next_u32() as u16)
}

// ---------------------------------------------------------------------------
// RTP

/// One side's media: its socket, what it sends and what it received.
struct Rtp {
    nic: usize,
    handle: SocketHandle,
    peer: SocketAddrV4,
    ssrc: u32,
    seq: u16,
    ts: u32,
    next: Instant,
    /// Sending until then (the caller), or until the call ends (`None`).
    until: Option<Instant>,
    sending: bool,
    sent: u64,
    received: u64,
    last_rx: Instant,
}

impl Rtp {
    fn new(nic: usize, handle: SocketHandle, rng: &mut Rng) -> Self {
        Rtp {
            nic,
            handle,
            peer: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            ssrc: rng.next_u32(),
            seq: rng.next_u32() as u16,
            ts: rng.next_u32(),
            next: Instant::ZERO,
            until: None,
            sending: false,
            sent: 0,
            received: 0,
            last_rx: Instant::ZERO,
        }
    }

    fn begin(&mut self, peer: SocketAddrV4, now: Instant, until: Option<Instant>) {
        self.peer = peer;
        self.next = now;
        self.until = until;
        self.sending = true;
        self.last_rx = now;
    }

    /// Reads what arrived and sends what is due.
    fn pump(&mut self, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        let mut acted = false;
        let s = net.nics[self.nic]
            .sockets
            .get_mut::<udp::Socket>(self.handle);
        let mut buf = [0u8; 1500];
        while let Ok((len, _)) = s.recv_slice(&mut buf) {
            acted = true;
            // RTP version 2 (RFC 3550 §5.1); anything else is not ours.
            if len >= RTP_HEADER && buf[0] >> 6 == 2 {
                self.received += 1;
                self.last_rx = now;
                c.replies += 1;
                c.bytes_received += len as u64;
            }
        }
        while self.sending && self.next <= now {
            if self.until.is_some_and(|u| self.next >= u) {
                self.sending = false;
                break;
            }
            let Ok(p) = s.send(RTP_HEADER + SAMPLES, endpoint(self.peer)) else {
                break;
            };
            // V=2, no padding/extension/CSRC; marker on the first packet;
            // payload type 0 (PCMU); µ-law silence.
            p[0] = 0x80;
            p[1] = if self.sent == 0 { 0x80 } else { 0x00 };
            p[2..4].copy_from_slice(&self.seq.to_be_bytes());
            p[4..8].copy_from_slice(&self.ts.to_be_bytes());
            p[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
            p[RTP_HEADER..].fill(0xff);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(SAMPLES as u32);
            self.sent += 1;
            self.next += PTIME;
            c.requests += 1;
            c.bytes_sent += (RTP_HEADER + SAMPLES) as u64;
            acted = true;
        }
        acted
    }

    fn wants(&self) -> Option<Instant> {
        self.sending.then_some(self.next)
    }

    fn close(self, net: &mut Net, port: u16, keep_port: bool) {
        net.nics[self.nic].sockets.remove(self.handle);
        net.demux.remove(&(17, port));
        if !keep_port {
            net.ports.free(Proto::Udp, port);
        }
    }
}

// ---------------------------------------------------------------------------
// Caller

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, no response yet.
    Calling,
    /// A provisional response came.
    Proceeding,
    InCall,
    /// BYE sent.
    Hangup,
    Finished,
}

pub(crate) struct SipCaller {
    to: SocketAddrV4,
    rtp_port: u16,
    duration: Duration,
    rng: Rng,
    pub(crate) state: &'static str,
    phase: Phase,
    sip: Option<(usize, SocketHandle)>,
    sip_port: u16,
    local: Ipv4Addr,
    rtp: Option<Rtp>,
    call_id: String,
    from_tag: String,
    /// The callee's To header (with its tag), from the 200 OK.
    to_header: String,
    /// The request being sent (INVITE or BYE) and the last ACK.
    out: String,
    ack: String,
    sent_at: Instant,
    interval: Duration,
    deadline: Instant,
    media: Option<SocketAddrV4>,
    timer: Timer,
}

impl SipCaller {
    pub(crate) fn new(to: SocketAddrV4, rtp_port: u16, duration: Duration) -> Self {
        SipCaller {
            to,
            rtp_port,
            duration,
            rng: Rng::from_seed(0),
            state: "scheduled",
            phase: Phase::Calling,
            sip: None,
            sip_port: 0,
            local: Ipv4Addr::UNSPECIFIED,
            rtp: None,
            call_id: String::new(),
            from_tag: String::new(),
            to_header: String::new(),
            out: String::new(),
            ack: String::new(),
            sent_at: Instant::ZERO,
            interval: T1,
            deadline: Instant::ZERO,
            media: None,
            timer: Timer::default(),
        }
    }

    pub(crate) fn prepare(&mut self, rng: &mut Rng) {
        self.rng = rng.fork();
    }

    fn uri(&self) -> String {
        match self.to.port() {
            SIP_PORT => format!("sip:{}", self.to.ip()),
            p => format!("sip:{}:{p}", self.to.ip()),
        }
    }

    fn me(&self) -> String {
        format!("sip:caller@{}", self.local)
    }

    /// The headers every request of the call starts with.
    fn request(&mut self, method: &str, cseq: u32, branch: &str, to: &str) -> String {
        let uri = self.uri();
        let (local, port, me) = (self.local, self.sip_port, self.me());
        let mut m = String::new();
        let _ = write!(
            m,
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local}:{port};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <{me}>;tag={}\r\n\
             To: {to}\r\n\
             Call-ID: {}\r\n\
             CSeq: {cseq} {method}\r\n",
            self.from_tag, self.call_id
        );
        m
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>) {
        self.state = "connecting";
        let Some(nic) = net.route(*self.to.ip()) else {
            c.fail(|| "network unreachable".into());
            return self.finish("unreachable");
        };
        self.local = net.nics[nic].cidr.addr;
        // Phones send from 5060 when they can (the helper's usual case).
        let sip_port = if net.ports.reserve(Proto::Udp, SIP_PORT) {
            SIP_PORT
        } else {
            match net.ports.ephemeral(Proto::Udp) {
                Some(p) => p,
                None => {
                    c.fail(|| "no free ephemeral port".into());
                    return self.finish("failed");
                }
            }
        };
        let rtp_port = self.rtp_port;
        if rtp_port == 0 || !net.ports.reserve(Proto::Udp, rtp_port) {
            net.ports.free(Proto::Udp, sip_port);
            c.fail(|| format!("udp port {rtp_port} is not available"));
            return self.finish("failed");
        }
        let bind = |port| IpListenEndpoint {
            addr: Some(v4(net.nics[nic].cidr.addr)),
            port,
        };
        let (at_sip, at_rtp) = (bind(sip_port), bind(rtp_port));
        let mut sock = sip_socket();
        let _ = sock.bind(at_sip);
        self.sip = Some((nic, net.nics[nic].sockets.add(sock)));
        self.sip_port = sip_port;
        let mut sock = rtp_socket();
        let _ = sock.bind(at_rtp);
        let handle = net.nics[nic].sockets.add(sock);
        self.rtp = Some(Rtp::new(nic, handle, &mut self.rng));
        net.demux.insert((17, sip_port), idx);
        net.demux.insert((17, rtp_port), idx);

        self.call_id = format!("{}@{}", token(&mut self.rng), self.local);
        self.from_tag = token(&mut self.rng);
        let branch = format!("z9hG4bK{}", token(&mut self.rng));
        let session = self.rng.next_u32();
        let body = sdp("caller", session, SocketAddrV4::new(self.local, rtp_port));
        let to = format!("<{}>", self.uri());
        let mut m = self.request("INVITE", 1, &branch, &to);
        let me = self.me();
        let _ = write!(
            m,
            "Contact: <{me}:{sip_port}>\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.out = m;
        self.deadline = cx.now + GIVE_UP;
        self.transmit(net, cx.now, false);
    }

    fn finish(&mut self, state: &'static str) {
        self.state = state;
        self.phase = Phase::Finished;
    }

    fn send(&self, net: &mut Net, text: &str) {
        if let Some((nic, handle)) = self.sip {
            let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
            let _ = s.send_slice(text.as_bytes(), endpoint(self.to));
        }
    }

    /// Sends the pending request (again, with `again`, backing off).
    fn transmit(&mut self, net: &mut Net, now: Instant, again: bool) {
        self.send(net, &self.out);
        self.sent_at = now;
        self.interval = match (again, self.phase) {
            (false, _) => T1,
            (true, Phase::Calling) => self.interval + self.interval,
            (true, _) => (self.interval + self.interval).min(T2),
        };
    }

    pub(crate) fn step(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        if self.phase == Phase::Finished {
            return false;
        }
        let now = cx.now;
        let mut acted = self.receive(c, net, now);
        if let Some(rtp) = &mut self.rtp {
            acted |= rtp.pump(c, net, now);
        }
        if self.phase == Phase::InCall && self.rtp.as_ref().is_some_and(|r| !r.sending) {
            self.hang_up(net, now);
            acted = true;
        }
        if matches!(self.phase, Phase::Calling | Phase::Hangup)
            && now >= self.sent_at + self.interval
            && now < self.deadline
        {
            self.transmit(net, now, true);
            acted = true;
        }
        if self.phase != Phase::Finished && self.phase != Phase::InCall && now >= self.deadline {
            let why = match self.phase {
                Phase::Calling => format!("no answer to INVITE from {}", self.to),
                Phase::Proceeding => format!("no final answer to INVITE from {}", self.to),
                _ => format!("no answer to BYE from {}", self.to),
            };
            c.fail(|| why);
            self.close(net);
            self.finish("timed-out");
            acted = true;
        }
        let want = match self.phase {
            Phase::Finished => None,
            Phase::InCall => self.rtp.as_ref().and_then(Rtp::wants),
            Phase::Proceeding => Some(self.deadline),
            Phase::Calling | Phase::Hangup => {
                let rexmt = self.sent_at + self.interval;
                let rtp = self.rtp.as_ref().and_then(Rtp::wants);
                Some(
                    [Some(rexmt), Some(self.deadline), rtp]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(self.deadline),
                )
            }
        };
        self.timer.sync(want, cx, token);
        acted
    }

    fn receive(&mut self, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        let Some((nic, handle)) = self.sip else {
            return false;
        };
        let mut acted = false;
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
            let Ok((len, _)) = s.recv_slice(&mut buf) else {
                break;
            };
            acted = true;
            let Ok(m) = parse(&buf[..len.min(buf.len())]) else {
                continue;
            };
            let Start::Response { code, reason } = m.start else {
                continue;
            };
            if m.header("Call-ID") != Some(self.call_id.as_str()) {
                continue;
            }
            let Some((_, method)) = m.cseq() else {
                continue;
            };
            let status = format!("{code} {}", super::ftp::show(reason.as_bytes()));
            match method {
                "INVITE" => self.invite_response(c, net, now, code, &status, &m),
                "BYE" if self.phase == Phase::Hangup && code >= 200 => {
                    self.close(net);
                    if code >= 300 {
                        c.fail(|| format!("BYE: {status}"));
                        return self.fail_done();
                    }
                    self.ended(c);
                    return true;
                }
                _ => {}
            }
            if self.phase == Phase::Finished {
                return true;
            }
        }
        acted
    }

    fn fail_done(&mut self) -> bool {
        self.finish("failed");
        true
    }

    fn invite_response(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        now: Instant,
        code: u16,
        status: &str,
        m: &Message<'_>,
    ) {
        match code {
            100..=199 => {
                if self.phase == Phase::Calling {
                    self.phase = Phase::Proceeding;
                    self.deadline = now + RINGING;
                }
            }
            200..=299 => {
                if !matches!(self.phase, Phase::Calling | Phase::Proceeding) {
                    // A retransmitted 200 OK: our ACK was lost.
                    if !self.ack.is_empty() {
                        self.send(net, &self.ack);
                    }
                    return;
                }
                self.to_header = m.header("To").unwrap_or_default().to_string();
                let branch = format!("z9hG4bK{}", token(&mut self.rng));
                let to = self.to_header.clone();
                let mut ack = self.request("ACK", 1, &branch, &to);
                ack.push_str("Content-Length: 0\r\n\r\n");
                self.send(net, &ack);
                self.ack = ack;
                match parse_sdp(m.body) {
                    Ok(media) => {
                        self.media = Some(media);
                        self.phase = Phase::InCall;
                        self.state = "established";
                        if let Some(rtp) = &mut self.rtp {
                            rtp.begin(media, now, Some(now + self.duration));
                        }
                    }
                    Err(why) => {
                        c.fail(|| format!("200 OK without a usable SDP answer: {why}"));
                        self.phase = Phase::InCall;
                        self.hang_up(net, now);
                        self.state = "failed";
                    }
                }
            }
            _ => {
                if !matches!(self.phase, Phase::Calling | Phase::Proceeding) {
                    return;
                }
                // RFC 3261 §17.1.1.3: ACK a failure in the INVITE's transaction.
                let branch = param(m.header("Via").unwrap_or_default(), "branch")
                    .unwrap_or_default()
                    .to_string();
                let to = m.header("To").unwrap_or_default().to_string();
                let mut ack = self.request("ACK", 1, &branch, &to);
                ack.push_str("Content-Length: 0\r\n\r\n");
                self.send(net, &ack);
                c.fail(|| format!("INVITE: {status}"));
                self.close(net);
                self.finish(if code == 408 { "timed-out" } else { "failed" });
            }
        }
    }

    fn hang_up(&mut self, net: &mut Net, now: Instant) {
        if let Some(rtp) = &mut self.rtp {
            rtp.sending = false;
        }
        let branch = format!("z9hG4bK{}", token(&mut self.rng));
        let to = self.to_header.clone();
        let mut m = self.request("BYE", 2, &branch, &to);
        m.push_str(&format!(
            "User-Agent: {USER_AGENT}\r\nContent-Length: 0\r\n\r\n"
        ));
        self.out = m;
        self.phase = Phase::Hangup;
        self.deadline = now + GIVE_UP;
        self.transmit(net, now, false);
    }

    /// The BYE was answered: the call is over.
    fn ended(&mut self, c: &mut Counters) {
        let failed = self.state == "failed" || c.error.is_some();
        if failed {
            return self.finish("failed");
        }
        if c.replies == 0 {
            let from = self.media.map_or(String::new(), |m| m.to_string());
            c.fail(|| format!("no RTP received from {from}"));
            return self.finish("failed");
        }
        self.finish("done");
    }

    fn close(&mut self, net: &mut Net) {
        if let Some(rtp) = self.rtp.take() {
            rtp.close(net, self.rtp_port, false);
        }
        if let Some((nic, handle)) = self.sip.take() {
            net.nics[nic].sockets.remove(handle);
            net.demux.remove(&(17, self.sip_port));
            net.ports.free(Proto::Udp, self.sip_port);
        }
    }
}

// ---------------------------------------------------------------------------
// Callee

struct Call {
    nic: usize,
    /// Where the INVITE came from (responses go back there, as with rport).
    peer: IpEndpoint,
    call_id: String,
    /// The responses to the INVITE, the last one to send again.
    last: String,
    sent_at: Instant,
    interval: Duration,
    give_up: Instant,
    acked: bool,
    media: SocketAddrV4,
    rtp: Rtp,
}

pub(crate) struct SipCallee {
    port: u16,
    rtp_port: u16,
    rng: Rng,
    socks: Vec<(usize, SocketHandle)>,
    call: Option<Call>,
    /// The last call that ended and the 200 OK to its BYE (for a
    /// retransmitted BYE).
    ended: Option<(String, String)>,
    calls: u64,
    last_state: &'static str,
    failed: bool,
    idx: usize,
    timer: Timer,
}

impl SipCallee {
    pub(crate) fn new(port: u16, rtp_port: u16) -> Self {
        SipCallee {
            port,
            rtp_port,
            rng: Rng::from_seed(0),
            socks: Vec::new(),
            call: None,
            ended: None,
            calls: 0,
            last_state: "listening",
            failed: false,
            idx: 0,
            timer: Timer::default(),
        }
    }

    pub(crate) fn prepare(&mut self, rng: &mut Rng) {
        self.rng = rng.fork();
    }

    pub(crate) fn state(&self, started: bool) -> &'static str {
        match (started, self.failed, &self.call) {
            (false, _, _) => "scheduled",
            (true, true, _) => "failed",
            (true, false, Some(c)) if c.acked => "established",
            (true, false, Some(_)) => "connecting",
            (true, false, None) => self.last_state,
        }
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        self.idx = idx;
        let rtp = self.rtp_port;
        if rtp == 0 || rtp == self.port || !net.ports.reserve(Proto::Udp, rtp) {
            self.failed = true;
            return c.fail(|| format!("udp port {rtp} is not available"));
        }
        match super::udp_listen(idx, c, net, self.port, sip_socket) {
            Some(socks) => self.socks = socks,
            None => self.failed = true,
        }
    }

    pub(crate) fn step(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        let now = cx.now;
        let mut acted = false;
        let mut buf = vec![0u8; MAX_MESSAGE];
        for k in 0..self.socks.len() {
            let (nic, handle) = self.socks[k];
            loop {
                let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
                let Ok((len, meta)) = s.recv_slice(&mut buf) else {
                    break;
                };
                acted = true;
                let len = len.min(buf.len());
                self.message(c, net, nic, meta.endpoint, &buf[..len], now);
            }
        }
        let mut end = None;
        if let Some(call) = &mut self.call {
            if call.acked {
                acted |= call.rtp.pump(c, net, now);
                if now >= call.rtp.last_rx + RTP_TIMEOUT {
                    let media = call.media;
                    let why = match call.rtp.received {
                        0 => format!("no RTP received from {media}; hung up after {RTP_TIMEOUT}"),
                        _ => format!("RTP from {media} stopped; hung up after {RTP_TIMEOUT}"),
                    };
                    c.fail(|| why);
                    end = Some("failed");
                }
            } else if now >= call.give_up {
                c.fail(|| "no ACK for 200 OK".into());
                end = Some("failed");
            } else if now >= call.sent_at + call.interval {
                // RFC 3261 §13.3.1.4: the 200 OK again until the ACK.
                let s = net.nics[call.nic]
                    .sockets
                    .get_mut::<udp::Socket>(self.socks[call.nic].1);
                let _ = s.send_slice(call.last.as_bytes(), call.peer);
                call.sent_at = now;
                call.interval = (call.interval + call.interval).min(T2);
                acted = true;
            }
        }
        if let Some(state) = end {
            self.end_call(net, state);
            acted = true;
        }
        let want = self.call.as_ref().map(|call| {
            if call.acked {
                let rx = call.rtp.last_rx + RTP_TIMEOUT;
                call.rtp.wants().map_or(rx, |w| w.min(rx))
            } else {
                (call.sent_at + call.interval).min(call.give_up)
            }
        });
        self.timer.sync(want, cx, token);
        acted
    }

    fn reply(&self, net: &mut Net, nic: usize, to: IpEndpoint, text: &str) {
        let s = net.nics[nic]
            .sockets
            .get_mut::<udp::Socket>(self.socks[nic].1);
        let _ = s.send_slice(text.as_bytes(), to);
    }

    /// A response to request `m`: its Via headers (the top one with
    /// `received` and `rport` filled in), From, To (with `to_tag` when
    /// given), Call-ID and CSeq.
    fn response(m: &Message<'_>, from: IpEndpoint, status: &str, to_tag: Option<&str>) -> String {
        let mut out = format!("SIP/2.0 {status}\r\n");
        for (i, via) in m.all("Via").enumerate() {
            if i == 0 {
                let mut v = via.to_string();
                let src = ip_of(from);
                let sent_by = via.split(';').next().unwrap_or("");
                let host = sent_by.split_whitespace().nth(1).unwrap_or("");
                let host = host.split(':').next().unwrap_or(host);
                if host != src.to_string() {
                    let _ = write!(v, ";received={src}");
                }
                if let Some(k) = v.find(";rport").filter(|&k| {
                    let rest = &v[k + 6..];
                    rest.is_empty() || rest.starts_with(';')
                }) {
                    v.insert_str(k + 6, &format!("={}", from.port));
                }
                let _ = write!(out, "Via: {v}\r\n");
            } else {
                let _ = write!(out, "Via: {via}\r\n");
            }
        }
        let to = m.header("To").unwrap_or_default();
        let _ = write!(out, "From: {}\r\n", m.header("From").unwrap_or_default());
        match to_tag {
            Some(tag) if param(to, "tag").is_none() => {
                let _ = write!(out, "To: {to};tag={tag}\r\n");
            }
            _ => {
                let _ = write!(out, "To: {to}\r\n");
            }
        }
        let _ = write!(
            out,
            "Call-ID: {}\r\nCSeq: {}\r\n",
            m.header("Call-ID").unwrap_or_default(),
            m.header("CSeq").unwrap_or_default()
        );
        out
    }

    fn message(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        nic: usize,
        from: IpEndpoint,
        b: &[u8],
        now: Instant,
    ) {
        let Ok(m) = parse(b) else {
            return;
        };
        let Start::Request { method, .. } = m.start else {
            return;
        };
        let call_id = m.header("Call-ID").unwrap_or_default();
        let ours = self.call.as_ref().is_some_and(|k| k.call_id == call_id);
        let local = net.nics[nic].cidr.addr;
        match method {
            "INVITE" if ours => {
                // A retransmission: the last response again.
                if let Some(k) = &self.call {
                    let (nic, peer, last) = (k.nic, k.peer, k.last.clone());
                    self.reply(net, nic, peer, &last);
                }
            }
            "INVITE" if self.call.is_some() => {
                let r = Self::response(&m, from, "486 Busy Here", Some(&token(&mut self.rng)));
                self.reply(net, nic, from, &format!("{r}Content-Length: 0\r\n\r\n"));
            }
            "INVITE" => {
                let tag = token(&mut self.rng);
                let media = match parse_sdp(m.body) {
                    Ok(a) => a,
                    Err(why) => {
                        let r = Self::response(&m, from, "488 Not Acceptable Here", Some(&tag));
                        self.reply(net, nic, from, &format!("{r}Content-Length: 0\r\n\r\n"));
                        c.fail(|| format!("rejected an INVITE from {}: {why}", sock_addr(from)));
                        return;
                    }
                };
                let port = self.port;
                let contact = format!("Contact: <sip:callee@{local}:{port}>\r\n");
                let trying = Self::response(&m, from, "100 Trying", None);
                self.reply(
                    net,
                    nic,
                    from,
                    &format!("{trying}Content-Length: 0\r\n\r\n"),
                );
                let ringing = Self::response(&m, from, "180 Ringing", Some(&tag));
                self.reply(
                    net,
                    nic,
                    from,
                    &format!("{ringing}{contact}Content-Length: 0\r\n\r\n"),
                );
                let session = self.rng.next_u32();
                let body = sdp("callee", session, SocketAddrV4::new(local, self.rtp_port));
                let ok = format!(
                    "{}{contact}User-Agent: {USER_AGENT}\r\n\
                     Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
                     Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    Self::response(&m, from, "200 OK", Some(&tag)),
                    body.len()
                );
                self.reply(net, nic, from, &ok);
                let mut sock = rtp_socket();
                let _ = sock.bind(IpListenEndpoint {
                    addr: Some(v4(local)),
                    port: self.rtp_port,
                });
                let handle = net.nics[nic].sockets.add(sock);
                net.demux.insert((17, self.rtp_port), self.idx);
                self.calls += 1;
                self.call = Some(Call {
                    nic,
                    peer: from,
                    call_id: call_id.to_string(),
                    last: ok,
                    sent_at: now,
                    interval: T1,
                    give_up: now + GIVE_UP,
                    acked: false,
                    media,
                    rtp: Rtp::new(nic, handle, &mut self.rng),
                });
            }
            "ACK" if ours => {
                if let Some(k) = self.call.as_mut().filter(|k| !k.acked) {
                    k.acked = true;
                    let media = k.media;
                    k.rtp.begin(media, now, None);
                }
            }
            "ACK" => {}
            "BYE" if ours => {
                let ok = format!(
                    "{}Content-Length: 0\r\n\r\n",
                    Self::response(&m, from, "200 OK", None)
                );
                self.reply(net, nic, from, &ok);
                let received = self.call.as_ref().map_or(0, |k| k.rtp.received);
                if received == 0 {
                    let media = self.call.as_ref().map(|k| k.media);
                    let media = media.map_or(String::new(), |m| m.to_string());
                    c.fail(|| format!("no RTP received from {media}"));
                    self.end_call(net, "failed");
                } else {
                    self.end_call(net, "done");
                }
                self.ended = Some((call_id.to_string(), ok));
            }
            "BYE" => {
                let again = self.ended.as_ref().filter(|(id, _)| id == call_id);
                let text = match again {
                    Some((_, ok)) => ok.clone(),
                    None => format!(
                        "{}Content-Length: 0\r\n\r\n",
                        Self::response(&m, from, "481 Call/Transaction Does Not Exist", None)
                    ),
                };
                self.reply(net, nic, from, &text);
            }
            "OPTIONS" => {
                let r = Self::response(&m, from, "200 OK", Some(&token(&mut self.rng)));
                let text = format!(
                    "{r}Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\nAccept: application/sdp\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                self.reply(net, nic, from, &text);
            }
            _ => {
                let r = Self::response(&m, from, "501 Not Implemented", None);
                self.reply(net, nic, from, &format!("{r}Content-Length: 0\r\n\r\n"));
            }
        }
    }

    fn end_call(&mut self, net: &mut Net, state: &'static str) {
        if let Some(call) = self.call.take() {
            call.rtp.close(net, self.rtp_port, true);
        }
        self.last_state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An INVITE as Linphone 5 sends it (trimmed of its SDP attributes).
    const INVITE: &str = "INVITE sip:bob@198.51.100.2 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK.hgtRqI2Ts;rport\r\n\
        From: <sip:alice@192.0.2.2>;tag=d2yeJXcSs\r\n\
        To: sip:bob@198.51.100.2\r\n\
        CSeq: 20 INVITE\r\n\
        Call-ID: nHyFz1pMzE\r\n\
        Max-Forwards: 70\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 141\r\n\r\n\
        v=0\r\no=alice 2133 2969 IN IP4 192.0.2.2\r\ns=Talk\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n\
        m=audio 7078 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn a_real_invite_parses_with_its_sdp() {
        let m = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(
            m.start,
            Start::Request {
                method: "INVITE",
                uri: "sip:bob@198.51.100.2"
            }
        );
        assert_eq!(m.cseq(), Some((20, "INVITE")));
        assert_eq!(param(m.header("f").unwrap(), "tag"), Some("d2yeJXcSs"));
        assert_eq!(param(m.header("To").unwrap(), "tag"), None);
        assert_eq!(
            param(m.header("Via").unwrap(), "branch"),
            Some("z9hG4bK.hgtRqI2Ts")
        );
        assert_eq!(parse_sdp(m.body), Ok("192.0.2.2:7078".parse().unwrap()));
    }

    #[test]
    fn sdp_takes_the_audio_stream_and_its_connection() {
        let media_c =
            "v=0\r\nc=IN IP4 192.0.2.9\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 192.0.2.8\r\n\
                       m=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.7\r\n";
        assert_eq!(
            parse_sdp(media_c.as_bytes()),
            Ok("192.0.2.7:4000".parse().unwrap())
        );
        assert!(parse_sdp(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n").is_err());
        assert!(parse_sdp(b"v=0\r\nc=IN IP6 ::1\r\nm=audio 4000 RTP/AVP 0\r\n").is_err());
        assert!(parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\n").is_err());
        assert!(parse_sdp(b"").is_err());
        let ours = sdp("caller", 7, "192.0.2.2:16384".parse().unwrap());
        assert!(ours.starts_with("v=0\r\no=caller 7 7 IN IP4 192.0.2.2\r\ns=ctsim\r\n"));
        assert!(ours.contains("c=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 16384 RTP/AVP 0\r\n"));
        assert_eq!(
            parse_sdp(ours.as_bytes()),
            Ok("192.0.2.2:16384".parse().unwrap())
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(parse(b"").is_err());
        assert!(parse(b"HELLO\r\n\r\n").is_err());
        assert!(parse(b"SIP/2.0 99 Odd\r\n\r\n").is_err());
        assert!(parse(b"invite sip:x SIP/2.0\r\n\r\n").is_err());
        let no_cseq = INVITE.replace("CSeq: 20 INVITE\r\n", "");
        assert_eq!(parse(no_cseq.as_bytes()).err(), Some("no CSeq header"));
        let short = INVITE.replace("Content-Length: 141", "Content-Length: 999");
        assert!(parse(short.as_bytes()).is_err());
    }

    #[test]
    fn responses_echo_the_request_and_fill_in_rport() {
        let m = parse(INVITE.as_bytes()).unwrap();
        let from = IpEndpoint::new(v4("203.0.113.5".parse().unwrap()), 40000);
        let r = SipCallee::response(&m, from, "180 Ringing", Some("abc"));
        assert!(r.starts_with("SIP/2.0 180 Ringing\r\n"));
        assert!(r.contains(
            "Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK.hgtRqI2Ts;rport=40000;received=203.0.113.5\r\n"
        ));
        assert!(r.contains("To: sip:bob@198.51.100.2;tag=abc\r\n"));
        assert!(r.contains("CSeq: 20 INVITE\r\n"));
        let text = format!("{r}Content-Length: 0\r\n\r\n");
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(
            back.start,
            Start::Response {
                code: 180,
                reason: "Ringing"
            }
        );
    }

    #[test]
    fn random_bytes_never_panic_the_parsers() {
        let mut rng = Rng::from_seed(3);
        let inv = INVITE.as_bytes();
        for _ in 0..20_000 {
            let mut b = inv.to_vec();
            for _ in 0..1 + rng.below(6) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u32() as u8;
            }
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
            if let Ok(m) = parse(&b) {
                let _ = parse_sdp(m.body);
                let _ = m.cseq();
                let from = IpEndpoint::new(v4(Ipv4Addr::new(192, 0, 2, 2)), 5060);
                let _ = SipCallee::response(&m, from, "200 OK", Some("t"));
            }
            let _ = parse_sdp(&b);
        }
    }
}
