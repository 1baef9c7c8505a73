//! IRC (RFC 2812 client protocol) with CTCP DCC SEND: a tiny server that
//! registers clients (NICK, USER, the 001–004 welcome) and relays PRIVMSG
//! and NOTICE between them, and a client that registers and, if asked,
//! offers a file by DCC or accepts an offer.
//!
//! A DCC offer travels inside a PRIVMSG as
//! `\x01DCC SEND <file> <ip as a decimal integer> <port> <size>\x01`; the
//! offering client listens on that port and the other one connects to it
//! directly, which is why a stateful firewall needs conntrack's irc helper
//! (it reads the offer from the client's messages to the server). The file
//! moves as in irssi and mIRC: the receiver acknowledges every read with the
//! total so far as a 32-bit big-endian number, and the sender is done when
//! the last acknowledgement covers the file.
//!
//! Nothing a peer sends makes either side panic: lines are bounded (512
//! bytes, RFC 2812 §2.3), and a malformed offer ends the receiving client
//! with an error naming it.

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::IpListenEndpoint;

use super::control::{Connect, Control};
use super::files::Verifier;
use super::ftp::{connect, release, show};
use super::{ip_of, new_tcp, pattern, v4, Counters, Timer};
use crate::host::device::IcmpNote;
use crate::host::ports::Proto;
use crate::host::{DccSend, Net, Payload};
use crate::node::Cx;
use crate::time::{Duration, Instant};

/// The longest message, CR LF included (RFC 2812 §2.3).
const MAX_LINE: usize = 512;
/// The server's name in its replies' prefixes.
const SERVER: &str = "ctsim";
/// Room a server wants in a connection's send buffer before it reads the
/// next message (so a relayed line is never cut short).
const LINE_ROOM: usize = 2 * MAX_LINE;

// ---------------------------------------------------------------------------
// Messages

/// One message: prefix, command and parameters (the trailing one included).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub prefix: Option<&'a str>,
    pub command: &'a str,
    pub params: Vec<&'a str>,
}

/// Reads a line (without CR LF); `None` when it holds no command.
pub(crate) fn parse(line: &str) -> Option<Message<'_>> {
    let mut rest = line.trim_start_matches(' ');
    let mut prefix = None;
    if let Some(p) = rest.strip_prefix(':') {
        let (pre, r) = p.split_once(' ')?;
        prefix = Some(pre);
        rest = r.trim_start_matches(' ');
    }
    let (command, mut rest) = match rest.split_once(' ') {
        Some((c, r)) => (c, r),
        None => (rest, ""),
    };
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        if params.len() == 14 {
            // RFC 2812: the 15th parameter takes the rest of the line.
            params.push(rest);
            break;
        }
        match rest.split_once(' ') {
            Some((p, r)) => {
                params.push(p);
                rest = r;
            }
            None => {
                params.push(rest);
                break;
            }
        }
    }
    Some(Message {
        prefix,
        command,
        params,
    })
}

/// RFC 2812's nickname: a letter or special first, then letters, digits,
/// specials and `-`; at most 30 here (modern servers' NICKLEN).
pub fn valid_nick(n: &str) -> bool {
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = n.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    n.len() <= 30
        && (first.is_ascii_alphabetic() || special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || special(c) || c == '-')
}

/// A DCC SEND offer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub file: String,
    pub addr: SocketAddrV4,
    pub size: Option<u64>,
}

/// Reads `DCC SEND <file> <ip> <port> [<size>]` (the text between the
/// \x01s). The address is a decimal integer, as every client writes it;
/// dotted quads are read too. A quoted file name may hold spaces.
pub(crate) fn parse_offer(ctcp: &str) -> Result<Offer, &'static str> {
    let rest = ctcp
        .strip_prefix("DCC SEND ")
        .ok_or("not a DCC SEND offer")?;
    let (file, rest) = match rest.strip_prefix('"') {
        Some(q) => {
            let (f, r) = q
                .split_once('"')
                .ok_or("an unterminated quoted file name")?;
            (f, r.trim_start_matches(' '))
        }
        None => rest.split_once(' ').ok_or("no address")?,
    };
    if file.is_empty() {
        return Err("an empty file name");
    }
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let ip = words.next().ok_or("no address")?;
    let ip: Ipv4Addr = match ip.parse::<u32>() {
        Ok(n) => Ipv4Addr::from(n),
        Err(_) => ip.parse().map_err(|_| "an address that is not IPv4")?,
    };
    let port: u16 = words
        .next()
        .ok_or("no port")?
        .parse()
        .map_err(|_| "a port that is not a number from 0 to 65535")?;
    if port == 0 {
        return Err("port 0 (a reverse DCC, which needs the receiver to listen)");
    }
    let size = match words.next() {
        Some(s) => Some(s.parse().map_err(|_| "a size that is not a number")?),
        None => None,
    };
    Ok(Offer {
        file: file.to_string(),
        addr: SocketAddrV4::new(ip, port),
        size,
    })
}

/// Reads lines from a TCP socket into `line`, calling `f` for each complete
/// one (CR LF stripped, cut at `MAX_LINE`). Stops when `f` says so.
fn read_lines(
    s: &mut tcp::Socket<'_>,
    line: &mut Vec<u8>,
    mut f: impl FnMut(&str) -> bool,
) -> bool {
    let mut acted = false;
    while s.can_recv() {
        let got = s.recv(|b| match b.iter().position(|&x| x == b'\n') {
            Some(k) => {
                let room = MAX_LINE.saturating_sub(line.len());
                line.extend_from_slice(&b[..k.min(room)]);
                (k + 1, true)
            }
            None => {
                let room = MAX_LINE.saturating_sub(line.len());
                line.extend_from_slice(&b[..b.len().min(room)]);
                (b.len(), false)
            }
        });
        match got {
            Ok(true) => {
                acted = true;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let text = String::from_utf8_lossy(line).into_owned();
                line.clear();
                if !f(&text) {
                    break;
                }
            }
            Ok(false) => acted = true,
            Err(_) => break,
        }
    }
    acted
}

fn send_line(s: &mut tcp::Socket<'_>, text: &str) -> bool {
    if !s.may_send() || s.send_capacity() - s.send_queue() < text.len() + 2 {
        return false;
    }
    let _ = s.send_slice(text.as_bytes());
    let _ = s.send_slice(b"\r\n");
    true
}

// ---------------------------------------------------------------------------
// Server

struct Conn {
    nic: usize,
    handle: SocketHandle,
    /// A SYN took this socket (another one listens from now on).
    bound: bool,
    host: Ipv4Addr,
    line: Vec<u8>,
    nick: Option<String>,
    user: Option<String>,
    registered: bool,
    quitting: bool,
}

pub(crate) struct IrcServer {
    port: u16,
    conns: Vec<Conn>,
    pub(crate) failed: bool,
}

/// What one message makes the server send: (connection, line).
type Outbox = Vec<(usize, String)>;

impl IrcServer {
    pub(crate) fn new(port: u16) -> Self {
        IrcServer {
            port,
            conns: Vec::new(),
            failed: false,
        }
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        let port = self.port;
        if port == 0 || !net.ports.reserve(Proto::Tcp, port) {
            self.failed = true;
            return c.fail(|| format!("tcp port {port} is already in use"));
        }
        for nic in 0..net.nics.len() {
            self.listen(net, nic);
        }
        net.demux.insert((6, port), idx);
    }

    fn listen(&mut self, net: &mut Net, nic: usize) {
        let mut sock = new_tcp();
        let _ = sock.listen(self.port);
        let handle = net.nics[nic].sockets.add(sock);
        self.conns.push(Conn {
            nic,
            handle,
            bound: false,
            host: Ipv4Addr::UNSPECIFIED,
            line: Vec::new(),
            nick: None,
            user: None,
            registered: false,
            quitting: false,
        });
    }

    pub(crate) fn step(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let mut acted = false;
        let mut i = 0;
        while i < self.conns.len() {
            let conn = &mut self.conns[i];
            let s = net.nics[conn.nic]
                .sockets
                .get_mut::<tcp::Socket>(conn.handle);
            let state = s.state();
            if state != Listen && !conn.bound {
                conn.bound = true;
                conn.host = s.remote_endpoint().map_or(Ipv4Addr::UNSPECIFIED, ip_of);
                let nic = conn.nic;
                self.listen(net, nic);
                acted = true;
            }
            let conn = &mut self.conns[i];
            match state {
                Listen | SynReceived => {
                    i += 1;
                    continue;
                }
                Closed | TimeWait => {
                    let n = &mut net.nics[conn.nic];
                    if state == TimeWait {
                        n.lingering.push((conn.handle, None));
                    } else {
                        n.sockets.remove(conn.handle);
                    }
                    self.conns.remove(i);
                    acted = true;
                    continue;
                }
                _ => {}
            }
            // Read this connection's messages while every connection has
            // room for what they make the server send.
            let mut out: Outbox = Vec::new();
            loop {
                let room = self.conns.iter().all(|k| {
                    let s = net.nics[k.nic].sockets.get::<tcp::Socket>(k.handle);
                    !s.may_send() || s.send_capacity() - s.send_queue() >= LINE_ROOM
                });
                let conn = &mut self.conns[i];
                let s = net.nics[conn.nic]
                    .sockets
                    .get_mut::<tcp::Socket>(conn.handle);
                if !room || conn.quitting {
                    break;
                }
                let mut got = None;
                let mut line = std::mem::take(&mut conn.line);
                acted |= read_lines(s, &mut line, |l| {
                    got = Some(l.to_string());
                    false
                });
                self.conns[i].line = line;
                let Some(text) = got else { break };
                c.requests += 1;
                self.message(i, &text, &mut out);
                for (k, text) in out.drain(..) {
                    let to = &self.conns[k];
                    let s = net.nics[to.nic].sockets.get_mut::<tcp::Socket>(to.handle);
                    if send_line(s, &text) && k != i {
                        c.replies += 1;
                    }
                }
            }
            let conn = &mut self.conns[i];
            let s = net.nics[conn.nic]
                .sockets
                .get_mut::<tcp::Socket>(conn.handle);
            if (conn.quitting || !s.may_recv()) && s.may_send() {
                s.close();
                acted = true;
            }
            i += 1;
        }
        acted
    }

    fn prefix_of(&self, i: usize) -> String {
        let k = &self.conns[i];
        format!(
            "{}!{}@{}",
            k.nick.as_deref().unwrap_or("*"),
            k.user.as_deref().unwrap_or("*"),
            k.host
        )
    }

    /// One message from connection `i`.
    fn message(&mut self, i: usize, line: &str, out: &mut Outbox) {
        let Some(m) = parse(line) else { return };
        let me = self.conns[i].nick.clone().unwrap_or_else(|| "*".into());
        let numeric = |code: &str, text: &str| format!(":{SERVER} {code} {me} {text}");
        let cmd = m.command.to_ascii_uppercase();
        match cmd.as_str() {
            "NICK" => {
                let Some(&nick) = m.params.first() else {
                    return out.push((i, numeric("431", ":No nickname given")));
                };
                if !valid_nick(nick) {
                    return out.push((i, numeric("432", &format!("{nick} :Erroneous nickname"))));
                }
                let taken = self.conns.iter().enumerate().any(|(k, c)| {
                    k != i
                        && c.nick
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(nick))
                });
                if taken {
                    return out.push((
                        i,
                        numeric("433", &format!("{nick} :Nickname is already in use")),
                    ));
                }
                if self.conns[i].registered {
                    let from = self.prefix_of(i);
                    out.push((i, format!(":{from} NICK :{nick}")));
                }
                self.conns[i].nick = Some(nick.to_string());
                self.welcome(i, out);
            }
            "USER" => {
                if self.conns[i].registered {
                    return out.push((i, numeric("462", ":You may not reregister")));
                }
                if m.params.len() < 4 || m.params[0].is_empty() {
                    return out.push((i, numeric("461", "USER :Not enough parameters")));
                }
                self.conns[i].user = Some(m.params[0].chars().take(10).collect());
                self.welcome(i, out);
            }
            "PING" => {
                let token = m.params.first().copied().unwrap_or(SERVER);
                out.push((i, format!(":{SERVER} PONG {SERVER} :{token}")));
            }
            "PONG" => {}
            "QUIT" => {
                let why = m.params.first().copied().unwrap_or("Client Quit");
                let host = self.conns[i].host;
                out.push((i, format!("ERROR :Closing Link: {host} (Quit: {why})")));
                self.conns[i].quitting = true;
            }
            _ if !self.conns[i].registered => {
                out.push((i, format!(":{SERVER} 451 * :You have not registered")));
            }
            "PRIVMSG" | "NOTICE" => {
                let notice = cmd == "NOTICE";
                let (target, text) = match m.params.as_slice() {
                    [] => {
                        if !notice {
                            out.push((i, numeric("411", &format!(":No recipient given ({cmd})"))));
                        }
                        return;
                    }
                    [_] => {
                        if !notice {
                            out.push((i, numeric("412", ":No text to send")));
                        }
                        return;
                    }
                    [t, x, ..] => (*t, *x),
                };
                let to = self.conns.iter().position(|c| {
                    c.registered
                        && c.nick
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(target))
                });
                match to {
                    Some(k) => {
                        let from = self.prefix_of(i);
                        out.push((k, format!(":{from} {cmd} {target} :{text}")));
                    }
                    None if !notice => {
                        out.push((
                            i,
                            numeric("401", &format!("{target} :No such nick/channel")),
                        ));
                    }
                    None => {}
                }
            }
            _ => out.push((
                i,
                numeric("421", &format!("{} :Unknown command", m.command)),
            )),
        }
    }

    /// Registration completes once NICK and USER are both in.
    fn welcome(&mut self, i: usize, out: &mut Outbox) {
        let k = &self.conns[i];
        if k.registered || k.user.is_none() {
            return;
        }
        let Some(nick) = k.nick.clone() else { return };
        self.conns[i].registered = true;
        let who = self.prefix_of(i);
        for text in [
            format!("001 {nick} :Welcome to the Internet Relay Network {who}"),
            format!("002 {nick} :Your host is {SERVER}, running version ctsim"),
            format!("003 {nick} :This server was created at the start of the run"),
            format!("004 {nick} {SERVER} ctsim o o"),
        ] {
            out.push((i, format!(":{SERVER} {text}")));
        }
    }
}

// ---------------------------------------------------------------------------
// Client

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Registering,
    Registered,
    Quitting,
    Finished,
}

/// A DCC transfer's connection, either side.
struct Dcc {
    nic: usize,
    handle: SocketHandle,
    port: u16,
    established: bool,
    /// Send: bytes written; receive: bytes read.
    moved: u64,
    /// Send: the peer's last acknowledgement; receive: ack bytes still to
    /// write (the low bytes of the 4-byte total).
    ack: u32,
    pending_ack: Vec<u8>,
}

/// The offering side: listening (no connection yet) or sending.
struct Sending {
    spec: DccSend,
    dcc: Option<Dcc>,
    done: bool,
}

/// The accepting side.
struct Receiving {
    offer: Option<Offer>,
    from: String,
    dcc: Option<Dcc>,
    verifier: Verifier,
    done: bool,
}

pub(crate) struct IrcClient {
    /// The connection to the server.
    conn: Control,
    nick: String,
    pub(crate) state: &'static str,
    phase: Phase,
    line: Vec<u8>,
    send: Option<Sending>,
    recv: Option<Receiving>,
    timer: Timer,
}

impl IrcClient {
    pub(crate) fn new(
        to: SocketAddrV4,
        nick: String,
        dcc_send: Option<DccSend>,
        accept_dcc: bool,
        timeout: Duration,
    ) -> Self {
        IrcClient {
            conn: Control::new(to, timeout),
            nick,
            state: "scheduled",
            phase: Phase::Connecting,
            line: Vec::new(),
            send: dcc_send.map(|spec| Sending {
                spec,
                dcc: None,
                done: false,
            }),
            recv: accept_dcc.then(|| Receiving {
                offer: None,
                from: String::new(),
                dcc: None,
                verifier: Verifier::default(),
                done: false,
            }),
            timer: Timer::default(),
        }
    }

    /// An ICMP error about something this app sent.
    pub(crate) fn notice(&mut self, note: IcmpNote) {
        self.conn.notice(note);
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>) {
        self.state = "connecting";
        if let Err(state) = self.conn.open(idx, c, net, cx.now) {
            self.finish(state);
        }
    }

    fn finish(&mut self, state: &'static str) {
        self.state = state;
        self.phase = Phase::Finished;
    }

    /// Whether the client still waits for something with a deadline.
    fn waiting(&self) -> bool {
        match self.phase {
            Phase::Connecting | Phase::Registering => true,
            Phase::Registered => {
                self.send.as_ref().is_some_and(|s| !s.done)
                    || self.recv.as_ref().is_some_and(|r| !r.done)
            }
            Phase::Quitting | Phase::Finished => false,
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
        if self.phase == Phase::Finished {
            return false;
        }
        let acted = self.act(idx, c, net, cx.now);
        let want = self.waiting().then_some(self.conn.deadline);
        self.timer.sync(want, cx, token);
        acted
    }

    fn act(&mut self, idx: usize, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        let mut acted = self.icmp(c, net);
        if self.phase != Phase::Finished {
            acted |= self.control(idx, c, net);
        }
        if self.phase == Phase::Registered {
            acted |= self.drive_send(c, net);
            acted |= self.drive_recv(c, net);
            let sent = self.send.as_ref().is_none_or(|s| s.done);
            let got = self.recv.as_ref().is_none_or(|r| r.done);
            let any = self.send.is_some() || self.recv.is_some();
            if self.phase == Phase::Registered && any && sent && got {
                self.quit(net, "done");
                acted = true;
            }
        }
        if self.waiting() && now >= self.conn.deadline {
            let why = self.timeout_reason();
            self.fail(c, net, why, "timed-out");
            acted = true;
        }
        acted
    }

    fn timeout_reason(&self) -> String {
        match self.phase {
            Phase::Connecting => format!("timed out connecting to {}", self.conn.to),
            Phase::Registering => "timed out waiting for the welcome (001)".into(),
            _ => {
                if let Some(s) = self.send.as_ref().filter(|s| !s.done) {
                    let (to, file) = (&s.spec.to, &s.spec.file);
                    return match &s.dcc {
                        Some(d) if d.established => format!(
                            "timed out during DCC SEND {file} to {to} after {} of {} bytes",
                            d.moved, s.spec.size
                        ),
                        _ => format!("timed out waiting for {to} to connect for DCC SEND {file}"),
                    };
                }
                match self
                    .recv
                    .as_ref()
                    .and_then(|r| r.offer.as_ref().map(|o| (r, o)))
                {
                    Some((r, o)) => {
                        let got = r.dcc.as_ref().map_or(0, |d| d.moved);
                        match r.dcc.as_ref().is_some_and(|d| d.established) {
                            true => {
                                format!("timed out during DCC SEND {} after {got} bytes", o.file)
                            }
                            false => format!(
                                "timed out connecting to {} for DCC SEND {}",
                                o.addr, o.file
                            ),
                        }
                    }
                    None => "timed out waiting for a DCC SEND offer".into(),
                }
            }
        }
    }

    fn icmp(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        for note in std::mem::take(&mut self.conn.notes) {
            let refused = note.icmp == (3, 3);
            if self.phase == Phase::Connecting
                && note.to == (*self.conn.to.ip(), self.conn.to.port())
            {
                self.drop_all(net, true);
                self.finish(if refused { "refused" } else { "unreachable" });
                return true;
            }
            let offer = self.recv.as_ref().and_then(|r| {
                let d = r.dcc.as_ref()?;
                let o = r.offer.as_ref()?;
                (!d.established && note.to == (*o.addr.ip(), o.addr.port())).then_some(o.addr)
            });
            if let Some(addr) = offer {
                let why = match refused {
                    true => format!("DCC connection to {addr} refused"),
                    false => format!("DCC connection to {addr}: {}", note.kind),
                };
                self.fail(c, net, why, "failed");
                return true;
            }
        }
        false
    }

    fn control(&mut self, idx: usize, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let Some((nic, handle)) = self.conn.ctrl else {
            return false;
        };
        let mut acted = false;
        let s = net.nics[nic].sockets.get_mut::<tcp::Socket>(handle);
        let state = s.state();
        if self.phase == Phase::Connecting {
            match self.conn.connecting(s, c) {
                Connect::Pending => return false,
                Connect::Refused => {
                    self.drop_all(net, true);
                    self.finish("refused");
                    return true;
                }
                Connect::Open => {
                    let nick = &self.nick;
                    send_line(s, &format!("NICK {nick}"));
                    send_line(s, &format!("USER {nick} 0 * :{nick}"));
                    self.phase = Phase::Registering;
                    self.state = "connecting";
                    acted = true;
                }
            }
        }
        let mut lines = Vec::new();
        let mut line = std::mem::take(&mut self.line);
        acted |= read_lines(s, &mut line, |l| {
            lines.push(l.to_string());
            lines.len() < 64
        });
        self.line = line;
        let eof = !s.may_recv();
        let closed = state == Closed;
        for l in lines {
            if self.phase == Phase::Finished {
                return true;
            }
            self.on_line(idx, c, net, &l);
        }
        if self.phase == Phase::Finished {
            return true;
        }
        if eof || closed {
            if self.phase == Phase::Quitting {
                self.drop_all(net, false);
                let state = self.state;
                self.finish(state);
            } else {
                let why = if closed && !eof {
                    "the connection to the server was reset"
                } else {
                    "the server closed the connection"
                };
                self.fail(
                    c,
                    net,
                    why.into(),
                    if closed && !eof { "reset" } else { "failed" },
                );
            }
            return true;
        }
        acted
    }

    fn say(&mut self, net: &mut Net, text: &str) {
        if let Some((nic, handle)) = self.conn.ctrl {
            let s = net.nics[nic].sockets.get_mut::<tcp::Socket>(handle);
            send_line(s, text);
        }
    }

    fn on_line(&mut self, idx: usize, c: &mut Counters, net: &mut Net, line: &str) {
        let Some(m) = parse(line) else { return };
        let text = || show(line.as_bytes());
        match m.command {
            "PING" => {
                let token = m.params.first().copied().unwrap_or("");
                self.say(net, &format!("PONG :{token}"));
            }
            "ERROR" if self.phase != Phase::Quitting => {
                let why = m.params.first().copied().unwrap_or("");
                self.fail(
                    c,
                    net,
                    format!("the server closed the link: {}", show(why.as_bytes())),
                    "failed",
                );
            }
            "001" if self.phase == Phase::Registering => {
                self.phase = Phase::Registered;
                self.state = "established";
                self.offer(idx, c, net);
            }
            "431" | "432" | "433" | "436" | "437" if self.phase == Phase::Registering => {
                self.fail(
                    c,
                    net,
                    format!("registration refused: {}", text()),
                    "failed",
                );
            }
            "401" | "411" | "412" if self.send.as_ref().is_some_and(|s| !s.done) => {
                self.fail(c, net, format!("DCC offer refused: {}", text()), "failed");
            }
            "PRIVMSG" if self.phase == Phase::Registered => {
                let Some(body) = m.params.get(1) else { return };
                let Some(ctcp) = body.strip_prefix('\x01') else {
                    return;
                };
                let ctcp = ctcp.strip_suffix('\x01').unwrap_or(ctcp);
                if !ctcp.starts_with("DCC SEND") {
                    return;
                }
                let from = m
                    .prefix
                    .map_or("", |p| p.split('!').next().unwrap_or(p))
                    .to_string();
                self.on_offer(idx, c, net, ctcp, from);
            }
            _ => {}
        }
    }

    /// After registering: offers the file, listening for the receiver.
    fn offer(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        let Some((nic, _)) = self.conn.ctrl else {
            return;
        };
        let Some(spec) = self.send.as_ref().map(|s| s.spec.clone()) else {
            return;
        };
        let Some(port) = net.ports.ephemeral(Proto::Tcp) else {
            return self.fail(c, net, "no free ephemeral port".into(), "failed");
        };
        let mut sock = new_tcp();
        let at = IpListenEndpoint {
            addr: Some(v4(self.conn.local)),
            port,
        };
        if sock.listen(at).is_err() {
            net.ports.free(Proto::Tcp, port);
            return self.fail(
                c,
                net,
                "cannot listen for the DCC connection".into(),
                "failed",
            );
        }
        let handle = net.nics[nic].sockets.add(sock);
        net.demux.insert((6, port), idx);
        if let Some(s) = &mut self.send {
            s.dcc = Some(Dcc {
                nic,
                handle,
                port,
                established: false,
                moved: 0,
                ack: 0,
                pending_ack: Vec::new(),
            });
        }
        let ip = u32::from(self.conn.local);
        let (to, file, size) = (&spec.to, &spec.file, spec.size);
        self.say(
            net,
            &format!("PRIVMSG {to} :\x01DCC SEND {file} {ip} {port} {size}\x01"),
        );
    }

    fn on_offer(&mut self, idx: usize, c: &mut Counters, net: &mut Net, ctcp: &str, from: String) {
        let Some(r) = &mut self.recv else { return };
        if r.offer.is_some() || r.done {
            // One transfer per client; later offers are ignored.
            return;
        }
        let offer = match parse_offer(ctcp) {
            Ok(o) => o,
            Err(why) => {
                let text = show(ctcp.as_bytes());
                return self.fail(
                    c,
                    net,
                    format!("malformed DCC SEND offer from {from} (\"{text}\"): {why}"),
                    "failed",
                );
            }
        };
        let Some((nic, _)) = self.conn.ctrl else {
            return;
        };
        let route = net.route(*offer.addr.ip()).unwrap_or(nic);
        let local = net.nics[route].cidr.addr;
        match connect(idx, net, route, local, offer.addr) {
            Ok((handle, port)) => {
                r.verifier = Verifier::new(offer.size.map(Payload::Bytes));
                r.dcc = Some(Dcc {
                    nic: route,
                    handle,
                    port,
                    established: false,
                    moved: 0,
                    ack: 0,
                    pending_ack: Vec::new(),
                });
                r.offer = Some(offer);
                r.from = from;
            }
            Err(e) => self.fail(c, net, format!("DCC connection: {e}"), "failed"),
        }
    }

    /// The offering side: waits for the connection, writes the file, reads
    /// acknowledgements.
    fn drive_send(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let Some(snd) = self.send.as_mut().filter(|s| !s.done) else {
            return false;
        };
        let Some(d) = &mut snd.dcc else { return false };
        let mut acted = false;
        let s = net.nics[d.nic].sockets.get_mut::<tcp::Socket>(d.handle);
        let state = s.state();
        if matches!(state, Listen | SynReceived) {
            return false;
        }
        if !d.established {
            d.established = true;
            acted = true;
        }
        let size = snd.spec.size;
        while d.moved < size && s.can_send() {
            let at = d.moved;
            let wrote = s.send(|buf| {
                let k = (buf.len() as u64).min(size - at) as usize;
                pattern::fill(at, &mut buf[..k]);
                (k, k)
            });
            match wrote {
                Ok(k) if k > 0 => {
                    d.moved += k as u64;
                    c.bytes_sent += k as u64;
                    acted = true;
                }
                _ => break,
            }
        }
        while s.can_recv() {
            let pending = &mut d.pending_ack;
            let ack = &mut d.ack;
            let _ = s.recv(|b| {
                for &x in b.iter() {
                    pending.push(x);
                    if pending.len() == 4 {
                        *ack = u32::from_be_bytes([pending[0], pending[1], pending[2], pending[3]]);
                        pending.clear();
                    }
                }
                (b.len(), ())
            });
            acted = true;
        }
        let acked = d.moved >= size && d.ack == size as u32;
        let (moved, ack) = (d.moved, d.ack);
        if acked {
            let d = snd.dcc.take().expect("dcc");
            release(net, d.nic, d.handle, Some((Proto::Tcp, d.port)));
            snd.done = true;
            return true;
        }
        if state == Closed || !s.may_recv() {
            let (to, file) = (snd.spec.to.clone(), snd.spec.file.clone());
            let why = format!(
                "{to} closed the DCC connection for {file} having acknowledged {ack} of {size} bytes ({moved} sent)"
            );
            self.fail(c, net, why, "failed");
            return true;
        }
        acted
    }

    /// The accepting side: reads the file, acknowledging each read.
    fn drive_recv(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let Some(r) = self.recv.as_mut().filter(|r| !r.done) else {
            return false;
        };
        let Some(d) = &mut r.dcc else { return false };
        let mut acted = false;
        let s = net.nics[d.nic].sockets.get_mut::<tcp::Socket>(d.handle);
        let state = s.state();
        match state {
            SynSent | SynReceived | Listen => return false,
            Closed if !d.established => {
                let addr = r.offer.as_ref().map(|o| o.addr);
                let why = match addr {
                    Some(a) => format!("DCC connection to {a} refused"),
                    None => "DCC connection refused".into(),
                };
                self.fail(c, net, why, "failed");
                return true;
            }
            _ => {}
        }
        if !d.established {
            d.established = true;
            acted = true;
        }
        let mut got = 0;
        while s.can_recv() {
            let v = &mut r.verifier;
            match s.recv(|b| {
                v.feed(b);
                (b.len(), b.len())
            }) {
                Ok(n) if n > 0 => got += n as u64,
                _ => break,
            }
        }
        if got > 0 {
            d.moved += got;
            c.bytes_received += got;
            d.pending_ack = (d.moved as u32).to_be_bytes().to_vec();
            acted = true;
        }
        if !d.pending_ack.is_empty() && s.may_send() {
            if let Ok(k) = s.send_slice(&d.pending_ack) {
                d.pending_ack.drain(..k);
            }
        }
        let Some(offer) = &r.offer else { return acted };
        let complete = offer.size.is_some_and(|n| d.moved >= n);
        let eof = !s.may_recv() || state == Closed;
        if !eof && (!complete || !d.pending_ack.is_empty()) {
            // More to come, or the last acknowledgement still to write.
            return acted;
        }
        let file = offer.file.clone();
        let verdict = match (offer.size, r.verifier.verdict()) {
            (_, Some(bad)) => Some(bad),
            (Some(n), None) if d.moved < n => Some(format!(
                "the connection closed after {} of {n} bytes",
                d.moved
            )),
            _ => None,
        };
        let d = r.dcc.take().expect("dcc");
        release(net, d.nic, d.handle, Some((Proto::Tcp, d.port)));
        r.done = true;
        if let Some(bad) = verdict {
            self.fail(c, net, format!("DCC SEND {file}: {bad}"), "failed");
        }
        true
    }

    /// QUIT, then wait for the server to close.
    fn quit(&mut self, net: &mut Net, state: &'static str) {
        self.say(net, "QUIT :Leaving");
        self.state = state;
        self.phase = Phase::Quitting;
    }

    /// Ends with an error: QUIT when the server can still hear it.
    fn fail(&mut self, c: &mut Counters, net: &mut Net, why: String, state: &'static str) {
        c.fail(|| why);
        self.drop_dcc(net);
        let usable = self.conn.ctrl.is_some_and(|(nic, h)| {
            let s = net.nics[nic].sockets.get::<tcp::Socket>(h);
            s.may_send() && s.may_recv()
        });
        if usable && matches!(self.phase, Phase::Registering | Phase::Registered) {
            self.quit(net, state);
        } else {
            self.drop_all(net, false);
            self.finish(state);
        }
    }

    fn drop_dcc(&mut self, net: &mut Net) {
        let send = self.send.as_mut().and_then(|s| s.dcc.take());
        let recv = self.recv.as_mut().and_then(|r| r.dcc.take());
        for d in [send, recv].into_iter().flatten() {
            release(net, d.nic, d.handle, Some((Proto::Tcp, d.port)));
        }
    }

    fn drop_all(&mut self, net: &mut Net, abort: bool) {
        self.drop_dcc(net);
        self.conn.drop(net, abort);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn messages_parse_as_rfc_2812_lays_them_out() {
        let m = parse(":alice!alice@192.0.2.2 PRIVMSG bob :hello there").unwrap();
        assert_eq!(m.prefix, Some("alice!alice@192.0.2.2"));
        assert_eq!(
            (m.command, m.params),
            ("PRIVMSG", vec!["bob", "hello there"])
        );
        let m = parse("USER alice 0 * :Alice A").unwrap();
        assert_eq!(m.params, ["alice", "0", "*", "Alice A"]);
        assert_eq!(parse("PING").unwrap().params, Vec::<&str>::new());
        assert_eq!(parse(""), None);
        assert_eq!(parse(":only-a-prefix"), None);
        assert_eq!(parse("   "), None);
        let many = format!("X {}", "a ".repeat(20));
        assert_eq!(parse(&many).unwrap().params.len(), 15);
    }

    #[test]
    fn offers_parse_as_irssi_and_mirc_write_them() {
        // irssi 1.4: DCC SEND file 3221225986 45678 100000 (192.0.2.2).
        assert_eq!(
            parse_offer("DCC SEND report.pdf 3221225986 45678 100000"),
            Ok(Offer {
                file: "report.pdf".into(),
                addr: "192.0.2.2:45678".parse().unwrap(),
                size: Some(100_000)
            })
        );
        // mIRC quotes names with spaces.
        let o = parse_offer("DCC SEND \"my file.txt\" 3221225986 5000 12").unwrap();
        assert_eq!((o.file.as_str(), o.size), ("my file.txt", Some(12)));
        // Old clients leave the size out; some write dotted quads.
        let o = parse_offer("DCC SEND a 192.0.2.2 5000").unwrap();
        assert_eq!((o.addr, o.size), ("192.0.2.2:5000".parse().unwrap(), None));
        assert!(parse_offer("DCC SEND a 3221225986 0 5").is_err());
        assert!(parse_offer("DCC SEND a 3221225986 70000 5").is_err());
        assert!(parse_offer("DCC SEND a x 5000 5").is_err());
        assert!(parse_offer("DCC SEND a 3221225986").is_err());
        assert!(parse_offer("DCC SEND \"a 1 2 3").is_err());
        assert!(parse_offer("DCC CHAT chat 1 2").is_err());
        assert!(parse_offer("DCC SEND a 1 2 -5").is_err());
    }

    #[test]
    fn nicks() {
        assert!(valid_nick("alice"));
        assert!(valid_nick("[bot]-2"));
        assert!(!valid_nick("2alice"));
        assert!(!valid_nick("al ice"));
        assert!(!valid_nick(""));
        assert!(!valid_nick(&"a".repeat(31)));
    }

    #[test]
    fn random_lines_never_panic_the_parsers() {
        let mut rng = Rng::from_seed(11);
        let alphabet = b" :\x01DCCSEND0123456789\"abc.!@";
        for _ in 0..50_000 {
            let len = rng.below(60) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let s = String::from_utf8_lossy(&b);
            let _ = parse(&s);
            let _ = parse_offer(&s);
            let _ = parse_offer(&format!("DCC SEND {s}"));
        }
    }
}
