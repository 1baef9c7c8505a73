//! FTP (RFC 959, with RFC 2428's EPRT and EPSV): a client that logs in and
//! transfers files as curl and Linux's `ftp` do, and a server that answers
//! with vsftpd's reply texts.
//!
//! Both are state machines over smoltcp sockets. The control connection is
//! read a line at a time into a bounded buffer; nothing the peer sends can
//! make them panic: a malformed reply or an unexpected one ends the client's
//! session with an error naming it, and a server answers what it cannot parse
//! with 500, as vsftpd does.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::control::{Connect, Control};
use super::files::{FileData, Verifier};
use super::{ip_of, new_tcp, v4, Counters, Timer};
use crate::host::device::IcmpNote;
use crate::host::ports::Proto;
use crate::host::{File, FtpMode, Net, Transfer};
use crate::node::Cx;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// The longest control line either side accepts (vsftpd's
/// VSFTP_MAX_COMMAND_LINE).
const MAX_LINE: usize = 4096;
/// Room a server wants in its control connection's send buffer before it
/// reads the next command (so a reply is never cut short).
const REPLY_ROOM: usize = 2048;
/// The greeting of vsftpd 3.0.5, the version Ubuntu ships (Debian 12's
/// 3.0.3 says `220 (vsFTPd 3.0.3)`; every other text here was checked
/// against it, in network namespaces with Python's socket module as client).
const GREETING: &str = "220 (vsFTPd 3.0.5)";
/// The port an active-mode server connects from (vsftpd's
/// `connect_from_port_20=YES`).
const FTP_DATA_PORT: u16 = 20;

// ---------------------------------------------------------------------------
// The protocol's texts

/// A line for an error message: at most 80 characters, control characters
/// escaped.
pub(crate) fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::new();
    for (i, ch) in text.chars().enumerate() {
        if i == 80 {
            out.push('…');
            break;
        }
        if ch.is_control() {
            let _ = write!(out, "{}", ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// One complete reply: its code and its last line, as text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub text: String,
}

/// Splits the control stream into replies (RFC 959 §4.2: a multi-line reply
/// starts with `123-` and ends with a line starting `123 `).
#[derive(Default)]
pub(crate) struct Replies {
    buf: Vec<u8>,
    multi: Option<u16>,
}

impl Replies {
    /// Takes in bytes from the server; an error when a line is too long.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        if self.buf.len() > MAX_LINE && !self.buf[..MAX_LINE].contains(&b'\n') {
            return Err(format!("a reply line longer than {MAX_LINE} bytes"));
        }
        Ok(())
    }

    /// The next complete reply, if one has arrived.
    pub(crate) fn next(&mut self) -> Result<Option<Reply>, String> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let mut line = &self.buf[..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let code = reply_code(line);
            let reply = match (self.multi, code) {
                (Some(m), Some((c, b' ' | b'\n'))) if c == m => {
                    self.multi = None;
                    Some(Reply {
                        code: c,
                        text: String::from_utf8_lossy(line).into_owned(),
                    })
                }
                (Some(_), _) => None,
                (None, Some((c, b'-'))) => {
                    self.multi = Some(c);
                    None
                }
                (None, Some((c, _))) => Some(Reply {
                    code: c,
                    text: String::from_utf8_lossy(line).into_owned(),
                }),
                (None, None) => {
                    return Err(format!("malformed reply \"{}\"", show(line)));
                }
            };
            self.buf.drain(..=end);
            if reply.is_some() {
                return Ok(reply);
            }
        }
    }
}

/// `NNN` and the byte after it (`\n` for a line of only the code), when the
/// line starts with a reply code (first digit 1 to 5).
fn reply_code(line: &[u8]) -> Option<(u16, u8)> {
    let d = line.get(..3)?;
    if !(b'1'..=b'5').contains(&d[0]) || !d[1].is_ascii_digit() || !d[2].is_ascii_digit() {
        return None;
    }
    let code = d.iter().fold(0u16, |n, &b| n * 10 + u16::from(b - b'0'));
    match line.get(3) {
        None => Some((code, b'\n')),
        Some(&b @ (b' ' | b'-')) => Some((code, b)),
        Some(_) => None,
    }
}

/// Six comma-separated numbers `h1,h2,h3,h4,p1,p2` at the start of `s` (PORT's
/// argument, the inside of a 227 reply), each 0 to 255.
pub(crate) fn parse_host_port(s: &str) -> Option<SocketAddrV4> {
    let mut n = [0u8; 6];
    let mut parts = s.split(',');
    for slot in &mut n {
        let p = parts.next()?.trim();
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddrV4::new(
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

/// The address of a 227 reply: the six numbers after the code, found as
/// RFC 1123 §4.1.2.6 tells clients to (the first digit after the code).
pub(crate) fn parse_227(text: &str) -> Option<SocketAddrV4> {
    let rest = text.get(4..)?;
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    let rest = &rest[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    parse_host_port(&rest[..end])
}

/// The port of a 229 reply: `(|||port|)` with any delimiter (RFC 2428 §3).
pub(crate) fn parse_229(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let inner = &text[open + 1..];
    let mut chars = inner.chars();
    let d = chars.next()?;
    if !('!'..='~').contains(&d) || d.is_ascii_digit() {
        return None;
    }
    let (d2, d3) = (chars.next()?, chars.next()?);
    if d2 != d || d3 != d {
        return None;
    }
    let rest = chars.as_str();
    let end = rest.find(d)?;
    if !rest[end + d.len_utf8()..].starts_with(')') {
        return None;
    }
    parse_port(&rest[..end])
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&p| p > 0)
}

/// EPRT's argument `|1|192.0.2.1|6275|`: IPv4 only (protocol 1).
pub(crate) fn parse_eprt(arg: &str) -> Result<SocketAddrV4, &'static str> {
    let d = arg.chars().next().ok_or("500 Bad EPRT command.")?;
    let mut parts = arg[d.len_utf8()..].split(d);
    let (proto, addr, port) = (parts.next(), parts.next(), parts.next());
    let tail = parts.next();
    let (Some(proto), Some(addr), Some(port), Some("")) = (proto, addr, port, tail) else {
        return Err("500 Bad EPRT command.");
    };
    if parts.next().is_some() {
        return Err("500 Bad EPRT command.");
    }
    if proto != "1" {
        return Err("500 Bad EPRT protocol.");
    }
    let ip: Ipv4Addr = addr.parse().map_err(|_| "500 Bad EPRT command.")?;
    let port = parse_port(port).ok_or("500 Bad EPRT command.")?;
    Ok(SocketAddrV4::new(ip, port))
}

fn host_port_text(out: &mut String, a: SocketAddrV4) {
    let o = a.ip().octets();
    let _ = write!(
        out,
        "{},{},{},{},{},{}",
        o[0],
        o[1],
        o[2],
        o[3],
        a.port() >> 8,
        a.port() & 0xff
    );
}

/// A directory listing line as vsftpd writes it (`hide_ids=YES`; every
/// file dated the simulation's epoch).
fn listing_line(out: &mut Vec<u8>, name: &str, size: u64) {
    let _ = std::io::Write::write_fmt(
        out,
        format_args!("-rw-r--r--    1 ftp      ftp      {size:>8} Jan 01 00:00 {name}\r\n"),
    );
}

// ---------------------------------------------------------------------------
// Client

/// Where the client's session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Greeting,
    User,
    Pass,
    Syst,
    Type,
    /// PORT, EPRT, PASV or EPSV sent.
    Setup,
    /// Passive: connecting the data connection before the transfer command.
    Opening,
    /// RETR, STOR or LIST sent.
    Transfer,
    Quit,
    Finished,
}

struct DataConn {
    nic: usize,
    handle: SocketHandle,
    port: u16,
    /// Where a passive-mode connection goes.
    target: Option<SocketAddrV4>,
    established: bool,
}

/// Progress of the transfer in hand.
#[derive(Default)]
struct Progress {
    /// 125 or 150 arrived.
    started: bool,
    /// 226 or 250 arrived.
    finished: bool,
    /// The data connection ended (peer's FIN read, or ours sent).
    data_done: bool,
    reset: bool,
    sent: u64,
}

pub(crate) struct FtpClient {
    /// The connection to the server.
    conn: Control,
    user: String,
    password: String,
    mode: FtpMode,
    commands: Vec<Transfer>,
    pub(crate) state: &'static str,
    phase: Phase,
    replies: Replies,
    next: usize,
    data: Option<DataConn>,
    progress: Progress,
    verifier: Verifier,
    upload: Option<FileData>,
    /// The state to end in when the session is over (after QUIT).
    outcome: &'static str,
    timer: Timer,
    line: String,
    done: bool,
}

impl FtpClient {
    pub(crate) fn new(
        to: SocketAddrV4,
        user: String,
        password: String,
        mode: FtpMode,
        commands: Vec<Transfer>,
        timeout: Duration,
    ) -> Self {
        FtpClient {
            conn: Control::new(to, timeout),
            user,
            password,
            mode,
            commands,
            state: "scheduled",
            phase: Phase::Connecting,
            replies: Replies::default(),
            next: 0,
            data: None,
            progress: Progress::default(),
            verifier: Verifier::default(),
            upload: None,
            outcome: "done",
            timer: Timer::default(),
            line: String::new(),
            done: false,
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
        self.done = true;
    }

    pub(crate) fn step(
        &mut self,
        idx: usize,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        if self.done {
            return false;
        }
        let acted = self.act(idx, c, net, cx.now);
        let want = (!self.done).then_some(self.conn.deadline);
        self.timer.sync(want, cx, token);
        acted
    }

    fn act(&mut self, idx: usize, c: &mut Counters, net: &mut Net, now: Instant) -> bool {
        let mut acted = self.icmp(c, net);
        if self.done {
            return true;
        }
        acted |= self.control(idx, c, net);
        if !self.done {
            acted |= self.drive_data(c, net);
        }
        if !self.done && self.phase == Phase::Transfer {
            let p = &self.progress;
            if p.finished && p.data_done {
                acted = true;
                if p.reset {
                    self.fail(c, net, "the data connection was reset".into(), "failed");
                } else if let Some(bad) = self.verifier.verdict() {
                    let name = self.command_name();
                    self.fail(c, net, format!("{name}: {bad}"), "failed");
                } else {
                    self.next += 1;
                    self.begin(idx, c, net);
                }
            }
        }
        if !self.done && now >= self.conn.deadline {
            self.time_out(c, net);
            acted = true;
        }
        acted
    }

    /// ICMP errors that fail a connect, as Linux's tcp_v4_err does.
    fn icmp(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        let mut acted = false;
        for note in std::mem::take(&mut self.conn.notes) {
            let refused = note.icmp == (3, 3);
            if self.phase == Phase::Connecting
                && note.to == (*self.conn.to.ip(), self.conn.to.port())
            {
                self.drop_ctrl(net, true);
                // The ICMP error itself is in the app's log.
                self.finish(if refused { "refused" } else { "unreachable" });
                return true;
            }
            let connecting = self.data.as_ref().and_then(|d| {
                let target = d.target?;
                (!d.established && note.to == (*target.ip(), target.port())).then_some(target)
            });
            if let Some(target) = connecting {
                let why = if refused {
                    format!("data connection to {target} refused")
                } else {
                    format!("data connection to {target}: {}", note.kind)
                };
                self.fail(c, net, why, "failed");
                acted = true;
            }
        }
        acted
    }

    /// Reads the control connection and answers each reply.
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
                    self.drop_ctrl(net, true);
                    self.finish("refused");
                    return true;
                }
                Connect::Open => {
                    self.phase = Phase::Greeting;
                    self.state = "established";
                    acted = true;
                }
            }
        }
        let mut overflow = None;
        while s.can_recv() {
            let replies = &mut self.replies;
            let r = s.recv(|b| (b.len(), (b.len(), replies.push(b))));
            match r {
                Ok((n, Ok(()))) if n > 0 => acted = true,
                Ok((_, Err(e))) => {
                    overflow = Some(e);
                    break;
                }
                _ => break,
            }
        }
        let eof = !s.may_recv();
        let closed = state == Closed;
        if let Some(e) = overflow {
            self.fail(c, net, e, "failed");
            return true;
        }
        loop {
            if self.done || self.conn.ctrl.is_none() {
                return true;
            }
            match self.replies.next() {
                Ok(Some(reply)) => {
                    c.replies += 1;
                    acted = true;
                    self.on_reply(idx, c, net, reply);
                }
                Ok(None) => break,
                Err(e) => {
                    self.fail(c, net, e, "failed");
                    return true;
                }
            }
        }
        if eof || closed {
            if self.phase == Phase::Quit {
                self.close_ctrl(net);
                let outcome = self.outcome;
                self.finish(outcome);
            } else {
                let why = if closed && !eof {
                    "the control connection was reset"
                } else {
                    "the server closed the control connection"
                };
                c.fail(|| why.into());
                self.drop_data(net);
                self.drop_ctrl(net, false);
                self.finish(if closed && !eof { "reset" } else { "failed" });
            }
            return true;
        }
        acted
    }

    fn command_name(&self) -> String {
        match self.commands.get(self.next) {
            Some(Transfer::Get { name, .. }) => format!("RETR {name}"),
            Some(Transfer::Put { name, .. }) => format!("STOR {name}"),
            Some(Transfer::List) | None => "LIST".into(),
        }
    }

    fn on_reply(&mut self, idx: usize, c: &mut Counters, net: &mut Net, r: Reply) {
        let code = r.code;
        if code == 421 {
            return self.fail(c, net, r.text, "failed");
        }
        match self.phase {
            Phase::Greeting => match code {
                100..=199 => {}
                220 => {
                    let user = std::mem::take(&mut self.user);
                    self.send(c, net, format_args!("USER {user}"));
                    self.user = user;
                    self.phase = Phase::User;
                }
                _ => self.fail(c, net, r.text, "failed"),
            },
            Phase::User => match code {
                331 => {
                    let pass = std::mem::take(&mut self.password);
                    self.send(c, net, format_args!("PASS {pass}"));
                    self.password = pass;
                    self.phase = Phase::Pass;
                }
                230 => self.logged_in(c, net),
                _ => self.fail(c, net, format!("USER: {}", r.text), "failed"),
            },
            Phase::Pass => match code {
                230 | 202 => self.logged_in(c, net),
                100..=199 => {}
                _ => self.fail(c, net, format!("PASS: {}", r.text), "failed"),
            },
            Phase::Syst => {
                if code >= 200 {
                    self.send(c, net, format_args!("TYPE I"));
                    self.phase = Phase::Type;
                }
            }
            Phase::Type => match code {
                200..=299 => self.begin(idx, c, net),
                100..=199 => {}
                _ => self.fail(c, net, format!("TYPE I: {}", r.text), "failed"),
            },
            Phase::Setup => self.on_setup(idx, c, net, r),
            Phase::Opening => {
                if code >= 200 {
                    self.fail(c, net, format!("unexpected reply \"{}\"", r.text), "failed");
                }
            }
            Phase::Transfer => match code {
                100..=199 => self.progress.started = true,
                226 | 250 => self.progress.finished = true,
                _ => {
                    let name = self.command_name();
                    self.fail(c, net, format!("{name}: {}", r.text), "failed");
                }
            },
            Phase::Quit => {
                if code >= 200 {
                    self.close_ctrl(net);
                    let outcome = self.outcome;
                    self.finish(outcome);
                }
            }
            Phase::Connecting | Phase::Finished => {}
        }
    }

    fn logged_in(&mut self, c: &mut Counters, net: &mut Net) {
        self.send(c, net, format_args!("SYST"));
        self.phase = Phase::Syst;
    }

    /// Starts the next command, or QUIT when there is none.
    fn begin(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        self.progress = Progress::default();
        let Some(cmd) = self.commands.get(self.next) else {
            self.send(c, net, format_args!("QUIT"));
            self.phase = Phase::Quit;
            return;
        };
        self.verifier = Verifier::new(match cmd {
            Transfer::Get { expect, .. } => expect.clone(),
            _ => None,
        });
        self.upload = match cmd {
            Transfer::Put { content, .. } => Some(FileData::from_payload(content)),
            _ => None,
        };
        self.phase = Phase::Setup;
        match self.mode {
            FtpMode::Passive => self.send(c, net, format_args!("PASV")),
            FtpMode::Epsv => self.send(c, net, format_args!("EPSV")),
            FtpMode::Active | FtpMode::Eprt => {
                let Some((nic, _)) = self.conn.ctrl else {
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
                        "cannot listen for the data connection".into(),
                        "failed",
                    );
                }
                let handle = net.nics[nic].sockets.add(sock);
                net.demux.insert((6, port), idx);
                self.data = Some(DataConn {
                    nic,
                    handle,
                    port,
                    target: None,
                    established: false,
                });
                let me = SocketAddrV4::new(self.conn.local, port);
                if self.mode == FtpMode::Active {
                    let mut arg = String::new();
                    host_port_text(&mut arg, me);
                    self.send(c, net, format_args!("PORT {arg}"));
                } else {
                    self.send(c, net, format_args!("EPRT |1|{}|{}|", me.ip(), me.port()));
                }
            }
        }
    }

    fn on_setup(&mut self, idx: usize, c: &mut Counters, net: &mut Net, r: Reply) {
        let code = r.code;
        if (100..200).contains(&code) {
            return;
        }
        let target = match (self.mode, code) {
            (FtpMode::Active | FtpMode::Eprt, 200..=299) => return self.transfer_command(c, net),
            (FtpMode::Passive, 227) => match parse_227(&r.text) {
                Some(a) => a,
                None => {
                    let why = format!("malformed 227 reply \"{}\"", show(r.text.as_bytes()));
                    return self.fail(c, net, why, "failed");
                }
            },
            (FtpMode::Epsv, 229) => match parse_229(&r.text) {
                Some(p) => SocketAddrV4::new(*self.conn.to.ip(), p),
                None => {
                    let why = format!("malformed 229 reply \"{}\"", show(r.text.as_bytes()));
                    return self.fail(c, net, why, "failed");
                }
            },
            _ => {
                let cmd = match self.mode {
                    FtpMode::Active => "PORT",
                    FtpMode::Eprt => "EPRT",
                    FtpMode::Passive => "PASV",
                    FtpMode::Epsv => "EPSV",
                };
                return self.fail(c, net, format!("{cmd}: {}", r.text), "failed");
            }
        };
        // Passive: connect first, send the command once connected (as curl).
        let Some((nic, _)) = self.conn.ctrl else {
            return;
        };
        let (handle, port) = match connect(idx, net, nic, self.conn.local, target) {
            Ok(x) => x,
            Err(e) => return self.fail(c, net, format!("data connection: {e}"), "failed"),
        };
        self.data = Some(DataConn {
            nic,
            handle,
            port,
            target: Some(target),
            established: false,
        });
        self.phase = Phase::Opening;
    }

    fn transfer_command(&mut self, c: &mut Counters, net: &mut Net) {
        let cmd = self.commands.get(self.next).cloned();
        match cmd {
            Some(Transfer::Get { name, .. }) => self.send(c, net, format_args!("RETR {name}")),
            Some(Transfer::Put { name, .. }) => self.send(c, net, format_args!("STOR {name}")),
            _ => self.send(c, net, format_args!("LIST")),
        }
        self.phase = Phase::Transfer;
    }

    /// Writes a command line on the control connection.
    fn send(&mut self, c: &mut Counters, net: &mut Net, cmd: std::fmt::Arguments<'_>) {
        let Some((nic, handle)) = self.conn.ctrl else {
            return;
        };
        self.line.clear();
        let _ = self.line.write_fmt(cmd);
        self.line.push_str("\r\n");
        let s = net.nics[nic].sockets.get_mut::<tcp::Socket>(handle);
        if s.may_send() {
            let _ = s.send_slice(self.line.as_bytes());
            c.requests += 1;
        }
    }

    /// Moves data on the data connection.
    fn drive_data(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        use tcp::State::*;
        let Some(d) = &mut self.data else {
            return false;
        };
        let mut acted = false;
        let s = net.nics[d.nic].sockets.get_mut::<tcp::Socket>(d.handle);
        let state = s.state();
        match state {
            Listen | SynSent | SynReceived => return false,
            Closed if !d.established => {
                // A passive connect answered with RST.
                let why = match d.target {
                    Some(t) => format!("data connection to {t} refused"),
                    None => "the data connection was reset".into(),
                };
                self.fail(c, net, why, "failed");
                return true;
            }
            _ => {}
        }
        if !d.established {
            d.established = true;
            acted = true;
            if self.phase == Phase::Opening {
                self.transfer_command(c, net);
            }
        }
        let Some(d) = &mut self.data else {
            return acted;
        };
        let s = net.nics[d.nic].sockets.get_mut::<tcp::Socket>(d.handle);
        let upload = matches!(self.commands.get(self.next), Some(Transfer::Put { .. }));
        if state == Closed {
            // Reset before it ended.
            self.progress.reset = true;
        } else if upload {
            if self.phase == Phase::Transfer && self.progress.started {
                let content = self.upload.as_ref();
                let total = content.map_or(0, FileData::len);
                while self.progress.sent < total && s.can_send() {
                    let at = self.progress.sent;
                    let wrote = s.send(|buf| {
                        let k = content.map_or(0, |f| f.read(at, buf));
                        (k, k)
                    });
                    match wrote {
                        Ok(k) if k > 0 => {
                            self.progress.sent += k as u64;
                            c.bytes_sent += k as u64;
                            acted = true;
                        }
                        _ => break,
                    }
                }
                if self.progress.sent >= total {
                    s.close();
                    self.progress.data_done = true;
                }
            }
            let _ = super::drain(s);
        } else {
            while s.can_recv() {
                let v = &mut self.verifier;
                match s.recv(|b| {
                    v.feed(b);
                    (b.len(), b.len())
                }) {
                    Ok(n) if n > 0 => {
                        c.bytes_received += n as u64;
                        acted = true;
                    }
                    _ => break,
                }
            }
            if !s.may_recv() {
                s.close();
                self.progress.data_done = true;
            }
        }
        if self.progress.data_done || self.progress.reset {
            self.progress.data_done = true;
            let d = self.data.take().expect("data connection");
            net.nics[d.nic]
                .lingering
                .push((d.handle, Some((Proto::Tcp, d.port))));
            acted = true;
        }
        acted
    }

    /// Ends the session with an error: QUIT when the server can still hear
    /// it, else close everything.
    fn fail(&mut self, c: &mut Counters, net: &mut Net, why: String, state: &'static str) {
        c.fail(|| why);
        self.outcome = state;
        self.drop_data(net);
        let usable = self.conn.ctrl.is_some_and(|(nic, h)| {
            let s = net.nics[nic].sockets.get::<tcp::Socket>(h);
            s.may_send() && s.may_recv()
        });
        if usable && !matches!(self.phase, Phase::Quit | Phase::Connecting) {
            self.send(c, net, format_args!("QUIT"));
            self.phase = Phase::Quit;
        } else {
            self.drop_ctrl(net, false);
            self.finish(state);
        }
    }

    fn time_out(&mut self, c: &mut Counters, net: &mut Net) {
        let why = match self.phase {
            Phase::Connecting => format!("timed out connecting to {}", self.conn.to),
            Phase::Greeting => "timed out waiting for the greeting".into(),
            Phase::Opening => match self.data.as_ref().and_then(|d| d.target) {
                Some(t) => format!("timed out opening the data connection to {t}"),
                None => "timed out opening the data connection".into(),
            },
            Phase::Transfer
                if self
                    .data
                    .as_ref()
                    .is_some_and(|d| !d.established && d.target.is_none()) =>
            {
                "timed out waiting for the data connection".into()
            }
            Phase::Transfer => format!("timed out during {}", self.command_name()),
            Phase::Quit => {
                // What had to be done is done (or failed already).
                self.drop_data(net);
                self.drop_ctrl(net, false);
                let outcome = self.outcome;
                return self.finish(outcome);
            }
            _ => "timed out waiting for a reply".into(),
        };
        c.fail(|| why);
        self.drop_data(net);
        self.drop_ctrl(net, false);
        self.finish("timed-out");
    }

    fn drop_data(&mut self, net: &mut Net) {
        if let Some(d) = self.data.take() {
            release(net, d.nic, d.handle, Some((Proto::Tcp, d.port)));
        }
    }

    /// Lets go of the control connection: removed when it never opened,
    /// else closed (FIN) or, with `abort`, reset.
    fn drop_ctrl(&mut self, net: &mut Net, abort: bool) {
        self.conn.drop(net, abort);
    }

    fn close_ctrl(&mut self, net: &mut Net) {
        if let Some((nic, handle)) = self.conn.ctrl.take() {
            net.nics[nic].sockets.get_mut::<tcp::Socket>(handle).close();
            net.nics[nic]
                .lingering
                .push((handle, Some((Proto::Tcp, self.conn.ctrl_port))));
        }
    }
}

/// Opens a connection from `local` (an ephemeral port) to `to` on NIC `nic`,
/// routed to app `idx`; the socket and the port.
pub(crate) fn connect(
    idx: usize,
    net: &mut Net,
    nic: usize,
    local: Ipv4Addr,
    to: SocketAddrV4,
) -> Result<(SocketHandle, u16), String> {
    let port = net
        .ports
        .ephemeral(Proto::Tcp)
        .ok_or("no free ephemeral port")?;
    let n = &mut net.nics[nic];
    let mut sock = new_tcp();
    let from = IpListenEndpoint {
        addr: Some(v4(local)),
        port,
    };
    let remote = IpEndpoint::new(v4(*to.ip()), to.port());
    if let Err(e) = sock.connect(n.iface.context(), remote, from) {
        net.ports.free(Proto::Tcp, port);
        return Err(format!("connect to {to}: {e}"));
    }
    net.demux.insert((6, port), idx);
    Ok((n.sockets.add(sock), port))
}

/// Gives up a TCP socket: one that never connected is removed at once, one
/// that did is closed (FIN; RST if it was aborted) and left to finish.
pub(crate) fn release(net: &mut Net, nic: usize, handle: SocketHandle, port: Option<(Proto, u16)>) {
    use tcp::State::*;
    let n = &mut net.nics[nic];
    let s = n.sockets.get_mut::<tcp::Socket>(handle);
    match s.state() {
        Listen | SynSent | Closed => {
            n.sockets.remove(handle);
            if let Some((proto, p)) = port {
                net.ports.free(proto, p);
            }
        }
        SynReceived => {
            s.abort();
            n.lingering.push((handle, port));
        }
        _ => {
            s.close();
            n.lingering.push((handle, port));
        }
    }
}

// ---------------------------------------------------------------------------
// Server

enum Setup {
    None,
    Active(SocketAddrV4),
    Passive { handle: SocketHandle, port: u16 },
}

enum Job {
    /// RETR or LIST: send these bytes.
    Send { data: Arc<FileData>, list: bool },
    /// STOR: receive into a file of this name.
    Store { name: String, data: Vec<u8> },
}

struct Xfer {
    job: Job,
    handle: SocketHandle,
    /// The local port to free when done (passive); `None` for port 20.
    port: Option<u16>,
    deadline: Instant,
    connected: bool,
    offset: u64,
    /// The 150 line, sent once the data connection is up.
    opening: String,
}

struct Session {
    nic: usize,
    ctrl: SocketHandle,
    bound: bool,
    greeted: bool,
    peer: Ipv4Addr,
    local: Ipv4Addr,
    line: Vec<u8>,
    too_long: bool,
    user: bool,
    logged_in: bool,
    ascii: bool,
    /// EPSV ALL: PORT, EPRT and PASV are refused from now on (RFC 2428).
    epsv_all: bool,
    setup: Setup,
    xfer: Option<Xfer>,
    quitting: bool,
}

impl Session {
    fn new(nic: usize, ctrl: SocketHandle) -> Self {
        Session {
            nic,
            ctrl,
            bound: false,
            greeted: false,
            peer: Ipv4Addr::UNSPECIFIED,
            local: Ipv4Addr::UNSPECIFIED,
            line: Vec::new(),
            too_long: false,
            user: false,
            logged_in: false,
            ascii: false,
            epsv_all: false,
            setup: Setup::None,
            xfer: None,
            quitting: false,
        }
    }
}

/// What the sessions share.
struct Shared {
    port: u16,
    files: Vec<(String, Arc<FileData>)>,
    pasv: (u16, u16),
    timeout: Duration,
    rng: Rng,
    /// Port 20 is ours (claimed at the first active transfer).
    port20: Option<bool>,
    reply: String,
}

pub(crate) struct FtpServer {
    sh: Shared,
    sessions: Vec<Session>,
    pub(crate) failed: bool,
    timer: Timer,
}

impl FtpServer {
    pub(crate) fn new(
        port: u16,
        files: Vec<File>,
        pasv_ports: Option<(u16, u16)>,
        timeout: Duration,
    ) -> Self {
        FtpServer {
            sh: Shared {
                port,
                files: files
                    .iter()
                    .map(|f| (f.name.clone(), Arc::new(FileData::from_payload(&f.content))))
                    .collect(),
                pasv: pasv_ports.unwrap_or((1024, 65535)),
                timeout,
                rng: Rng::from_seed(0),
                port20: None,
                reply: String::new(),
            },
            sessions: Vec::new(),
            failed: false,
            timer: Timer::default(),
        }
    }

    /// Takes the stream passive ports are drawn from.
    pub(crate) fn prepare(&mut self, rng: &mut Rng) {
        self.sh.rng = rng.fork();
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        let port = self.sh.port;
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
        let _ = sock.listen(self.sh.port);
        let handle = net.nics[nic].sockets.add(sock);
        self.sessions.push(Session::new(nic, handle));
    }

    pub(crate) fn step(
        &mut self,
        idx: usize,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        use tcp::State::*;
        let mut acted = false;
        let mut i = 0;
        while i < self.sessions.len() {
            let sess = &mut self.sessions[i];
            let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(sess.ctrl);
            let state = s.state();
            if state != Listen && !sess.bound {
                // A SYN took this socket: another one listens from now on.
                sess.bound = true;
                let nic = sess.nic;
                self.listen(net, nic);
                acted = true;
            }
            let sess = &mut self.sessions[i];
            match state {
                Listen | SynReceived => {
                    i += 1;
                    continue;
                }
                Closed | TimeWait => {
                    end_session(net, sess);
                    let n = &mut net.nics[sess.nic];
                    if state == TimeWait {
                        n.lingering.push((sess.ctrl, None));
                    } else {
                        n.sockets.remove(sess.ctrl);
                    }
                    self.sessions.remove(i);
                    acted = true;
                    continue;
                }
                _ => {}
            }
            acted |= serve(&mut self.sh, sess, idx, c, net, cx.now);
            i += 1;
        }
        let want = self
            .sessions
            .iter()
            .filter_map(|s| s.xfer.as_ref())
            .filter(|x| !x.connected)
            .map(|x| x.deadline)
            .min();
        self.timer.sync(want, cx, token);
        acted
    }
}

/// Drops a session's data sockets.
fn end_session(net: &mut Net, sess: &mut Session) {
    if let Some(x) = sess.xfer.take() {
        let port = x.port.map(|p| (Proto::Tcp, p));
        release(net, sess.nic, x.handle, port);
    }
    if let Setup::Passive { handle, port } = std::mem::replace(&mut sess.setup, Setup::None) {
        release(net, sess.nic, handle, Some((Proto::Tcp, port)));
    }
}

/// Writes a reply line on the session's control connection.
fn reply(net: &mut Net, sess: &Session, c: &mut Counters, text: &str) {
    let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(sess.ctrl);
    if s.may_send() {
        let _ = s.send_slice(text.as_bytes());
        let _ = s.send_slice(b"\r\n");
        c.replies += 1;
    }
}

/// One session's work; true when it acted.
fn serve(
    sh: &mut Shared,
    sess: &mut Session,
    idx: usize,
    c: &mut Counters,
    net: &mut Net,
    now: Instant,
) -> bool {
    let mut acted = false;
    if !sess.greeted {
        let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(sess.ctrl);
        if let (Some(l), Some(r)) = (s.local_endpoint(), s.remote_endpoint()) {
            sess.local = ip_of(l);
            sess.peer = ip_of(r);
        }
        sess.greeted = true;
        reply(net, sess, c, GREETING);
        acted = true;
    }
    if sess.xfer.is_some() {
        acted |= drive_xfer(sh, sess, c, net, now);
    }
    // Commands wait while a transfer runs, as in vsftpd.
    while sess.xfer.is_none() && !sess.quitting {
        let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(sess.ctrl);
        if s.send_capacity() - s.send_queue() < REPLY_ROOM {
            break;
        }
        let line = &mut sess.line;
        let too_long = &mut sess.too_long;
        let got = s.recv(|b| match b.iter().position(|&x| x == b'\n') {
            Some(k) => {
                if line.len() + k <= MAX_LINE {
                    line.extend_from_slice(&b[..k]);
                } else {
                    *too_long = true;
                }
                (k + 1, true)
            }
            None => {
                if line.len() + b.len() <= MAX_LINE {
                    line.extend_from_slice(b);
                } else {
                    *too_long = true;
                }
                (b.len(), false)
            }
        });
        match got {
            Ok(true) => {
                acted = true;
                let mut line = std::mem::take(&mut sess.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut sess.too_long) {
                    reply(net, sess, c, "500 Input line too long.");
                } else {
                    command(sh, sess, idx, c, net, now, &line);
                }
                line.clear();
                sess.line = line;
            }
            Ok(false) => {
                if !net.nics[sess.nic]
                    .sockets
                    .get::<tcp::Socket>(sess.ctrl)
                    .can_recv()
                {
                    break;
                }
                acted = true;
            }
            Err(_) => break,
        }
    }
    let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(sess.ctrl);
    if (sess.quitting || !s.may_recv()) && s.state() != tcp::State::Closed {
        // QUIT, or the client closed its side: vsftpd's process exits.
        if s.may_send() {
            s.close();
            acted = true;
        }
        if sess.xfer.is_some() || !matches!(sess.setup, Setup::None) {
            end_session(net, sess);
            acted = true;
        }
    }
    acted
}

/// Handles one command line.
fn command(
    sh: &mut Shared,
    sess: &mut Session,
    idx: usize,
    c: &mut Counters,
    net: &mut Net,
    now: Instant,
    line: &[u8],
) {
    c.requests += 1;
    let text = String::from_utf8_lossy(line);
    let (verb, arg) = match text.find(' ') {
        Some(k) => (&text[..k], &text[k + 1..]),
        None => (&*text, ""),
    };
    let verb = verb.to_ascii_uppercase();
    match verb.as_str() {
        "USER" => {
            sess.user = true;
            sess.logged_in = false;
            return reply(net, sess, c, "331 Please specify the password.");
        }
        "PASS" if !sess.user => return reply(net, sess, c, "503 Login with USER first."),
        "PASS" if sess.logged_in => return reply(net, sess, c, "230 Already logged in."),
        "PASS" => {
            sess.logged_in = true;
            return reply(net, sess, c, "230 Login successful.");
        }
        "QUIT" => {
            sess.quitting = true;
            return reply(net, sess, c, "221 Goodbye.");
        }
        "FEAT" => {
            return reply(
                net,
                sess,
                c,
                "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n211 End",
            );
        }
        _ if !sess.logged_in => {
            return reply(net, sess, c, "530 Please login with USER and PASS.");
        }
        _ => {}
    }
    let r: &str = match verb.as_str() {
        "SYST" => "215 UNIX Type: L8",
        "NOOP" => "200 NOOP ok.",
        "PWD" | "XPWD" => "257 \"/\" is the current directory",
        "CWD" | "XCWD" if matches!(arg, "/" | "." | "") => "250 Directory successfully changed.",
        "CWD" | "XCWD" => "550 Failed to change directory.",
        "TYPE" => match arg.to_ascii_uppercase().as_str() {
            "I" | "L 8" => {
                sess.ascii = false;
                "200 Switching to Binary mode."
            }
            "A" | "A N" => {
                sess.ascii = true;
                "200 Switching to ASCII mode."
            }
            _ => "500 Unrecognised TYPE command.",
        },
        "MODE" if arg.eq_ignore_ascii_case("S") => "200 Mode set to S.",
        "MODE" => "504 Bad MODE command.",
        "STRU" if arg.eq_ignore_ascii_case("F") => "200 Structure set to F.",
        "STRU" => "504 Bad STRU command.",
        "OPTS" if arg.eq_ignore_ascii_case("UTF8 ON") => "200 Always in UTF8 mode.",
        "OPTS" => "501 Option not understood.",
        "ABOR" => "225 No transfer to ABOR.",
        "SIZE" => {
            let name = arg.trim_start_matches('/');
            return match sh.files.iter().find(|(n, _)| n == name) {
                Some((_, f)) => {
                    let text = format!("213 {}", f.len());
                    reply(net, sess, c, &text)
                }
                None => reply(net, sess, c, "550 Could not get file size."),
            };
        }
        "PORT" | "EPRT" | "PASV" if sess.epsv_all => "550 Permission denied.",
        "PORT" | "EPRT" => {
            let target = if verb == "PORT" {
                parse_host_port(arg).ok_or("500 Illegal PORT command.")
            } else {
                parse_eprt(arg)
            };
            let r = match target {
                // port_promiscuous=NO: only to the client's own address.
                Ok(t) if *t.ip() == sess.peer => {
                    end_session(net, sess);
                    sess.setup = Setup::Active(t);
                    if verb == "PORT" {
                        "200 PORT command successful. Consider using PASV."
                    } else {
                        "200 EPRT command successful. Consider using EPSV."
                    }
                }
                Ok(_) if verb == "PORT" => "500 Illegal PORT command.",
                Ok(_) => "500 Illegal EPRT command.",
                Err(e) => e,
            };
            return reply(net, sess, c, r);
        }
        "PASV" | "EPSV" => {
            if verb == "EPSV" && arg.eq_ignore_ascii_case("ALL") {
                sess.epsv_all = true;
                return reply(net, sess, c, "200 EPSV ALL ok.");
            }
            end_session(net, sess);
            let Some(port) = pasv_port(sh, net) else {
                return reply(net, sess, c, "500 Could not listen.");
            };
            let mut sock = new_tcp();
            let at = IpListenEndpoint {
                addr: Some(v4(sess.local)),
                port,
            };
            if sock.listen(at).is_err() {
                net.ports.free(Proto::Tcp, port);
                return reply(net, sess, c, "500 Could not listen.");
            }
            let handle = net.nics[sess.nic].sockets.add(sock);
            net.demux.insert((6, port), idx);
            sess.setup = Setup::Passive { handle, port };
            sh.reply.clear();
            if verb == "PASV" {
                sh.reply.push_str("227 Entering Passive Mode (");
                host_port_text(&mut sh.reply, SocketAddrV4::new(sess.local, port));
                sh.reply.push_str(").");
            } else {
                let _ = write!(sh.reply, "229 Entering Extended Passive Mode (|||{port}|)");
            }
            let text = std::mem::take(&mut sh.reply);
            reply(net, sess, c, &text);
            sh.reply = text;
            return;
        }
        "RETR" | "LIST" | "NLST" | "STOR" => {
            return start_xfer(sh, sess, idx, c, net, now, &verb, arg);
        }
        "CDUP" | "XCUP" => "250 Directory successfully changed.",
        "REST" => {
            let text = format!("350 Restart position accepted ({}).", arg.trim());
            return reply(net, sess, c, &text);
        }
        "ALLO" => "202 ALLO command ignored.",
        "MDTM"
            if sh
                .files
                .iter()
                .any(|(n, _)| n == arg.trim_start_matches('/')) =>
        {
            "213 19700101000000"
        }
        "MDTM" => "550 Could not get file modification time.",
        // Changes to files this server does not make.
        "DELE" | "RMD" | "XRMD" | "MKD" | "XMKD" | "RNFR" | "RNTO" | "APPE" | "STOU" | "SITE" => {
            "550 Permission denied."
        }
        "ACCT" | "SMNT" | "REIN" | "STAT" | "HELP" => {
            let text = format!("502 {verb} not implemented.");
            return reply(net, sess, c, &text);
        }
        _ => "500 Unknown command.",
    };
    reply(net, sess, c, r);
}

/// A passive port: drawn from the range as vsftpd draws it, skipping ports
/// in use.
fn pasv_port(sh: &mut Shared, net: &mut Net) -> Option<u16> {
    let (lo, hi) = sh.pasv;
    let span = u64::from(hi.saturating_sub(lo)) + 1;
    let first = sh.rng.below(span);
    (0..span.min(65536))
        .map(|k| lo + ((first + k) % span) as u16)
        .find(|&p| p != 0 && net.ports.reserve(Proto::Tcp, p))
}

#[allow(clippy::too_many_arguments)]
fn start_xfer(
    sh: &mut Shared,
    sess: &mut Session,
    idx: usize,
    c: &mut Counters,
    net: &mut Net,
    now: Instant,
    verb: &str,
    arg: &str,
) {
    if matches!(sess.setup, Setup::None) {
        return reply(net, sess, c, "425 Use PORT or PASV first.");
    }
    let name = arg.trim_start_matches('/');
    let mode = if sess.ascii { "ASCII" } else { "BINARY" };
    let (job, opening) = match verb {
        "RETR" => match sh.files.iter().find(|(n, _)| n == name) {
            Some((_, f)) => (
                Job::Send {
                    data: f.clone(),
                    list: false,
                },
                format!(
                    "150 Opening {mode} mode data connection for {name} ({} bytes).",
                    f.len()
                ),
            ),
            None => return reply(net, sess, c, "550 Failed to open file."),
        },
        "STOR" if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) => {
            return reply(net, sess, c, "553 Could not create file.");
        }
        "STOR" => (
            Job::Store {
                name: name.to_string(),
                data: Vec::new(),
            },
            "150 Ok to send data.".to_string(),
        ),
        _ => {
            let mut out = Vec::new();
            for (n, f) in &sh.files {
                if verb == "NLST" {
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    listing_line(&mut out, n, f.len());
                }
            }
            (
                Job::Send {
                    data: Arc::new(FileData::Bytes(out)),
                    list: true,
                },
                "150 Here comes the directory listing.".to_string(),
            )
        }
    };
    let deadline = now + sh.timeout;
    let xfer = |handle, port| Xfer {
        job,
        handle,
        port,
        deadline,
        connected: false,
        offset: 0,
        opening,
    };
    match std::mem::replace(&mut sess.setup, Setup::None) {
        Setup::None => reply(net, sess, c, "425 Use PORT or PASV first."),
        Setup::Passive { handle, port } => sess.xfer = Some(xfer(handle, Some(port))),
        Setup::Active(target) => {
            let ours = *sh
                .port20
                .get_or_insert_with(|| net.ports.reserve(Proto::Tcp, FTP_DATA_PORT));
            let n = &mut net.nics[sess.nic];
            let mut sock = new_tcp();
            let local = IpListenEndpoint {
                addr: Some(v4(sess.local)),
                port: FTP_DATA_PORT,
            };
            let remote = IpEndpoint::new(v4(*target.ip()), target.port());
            if !ours || sock.connect(n.iface.context(), remote, local).is_err() {
                return reply(net, sess, c, "425 Failed to establish connection.");
            }
            net.demux.insert((6, FTP_DATA_PORT), idx);
            sess.xfer = Some(xfer(n.sockets.add(sock), None));
        }
    }
}

/// Moves a transfer along; true when it acted.
fn drive_xfer(
    sh: &mut Shared,
    sess: &mut Session,
    c: &mut Counters,
    net: &mut Net,
    now: Instant,
) -> bool {
    use tcp::State::*;
    let Some(x) = sess.xfer.as_mut() else {
        return false;
    };
    let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(x.handle);
    let state = s.state();
    if !x.connected {
        let failure = match state {
            Listen | SynSent | SynReceived if now >= x.deadline => {
                Some("425 Failed to establish connection.")
            }
            Listen | SynSent | SynReceived => return false,
            Closed => Some("425 Failed to establish connection."),
            _ if x.port.is_some() && s.remote_endpoint().is_some_and(|r| ip_of(r) != sess.peer) => {
                // pasv_promiscuous=NO.
                s.abort();
                Some("425 Security: Bad IP connecting.")
            }
            _ => None,
        };
        if let Some(text) = failure {
            let x = sess.xfer.take().expect("transfer");
            release(net, sess.nic, x.handle, x.port.map(|p| (Proto::Tcp, p)));
            reply(net, sess, c, text);
            return true;
        }
        x.connected = true;
        let opening = std::mem::take(&mut x.opening);
        reply(net, sess, c, &opening);
    }
    let Some(x) = sess.xfer.as_mut() else {
        return true;
    };
    let s = net.nics[sess.nic].sockets.get_mut::<tcp::Socket>(x.handle);
    let mut acted = false;
    let outcome = match &mut x.job {
        Job::Send { data, list } => {
            let _ = super::drain(s);
            let total = data.len();
            while x.offset < total && s.can_send() {
                let at = x.offset;
                match s.send(|buf| {
                    let k = data.read(at, buf);
                    (k, k)
                }) {
                    Ok(k) if k > 0 => {
                        x.offset += k as u64;
                        c.bytes_sent += k as u64;
                        acted = true;
                    }
                    _ => break,
                }
            }
            if s.state() == Closed || !s.may_send() {
                Some(Err("426 Failure writing network stream."))
            } else if x.offset >= total {
                s.close();
                Some(Ok(if *list {
                    "226 Directory send OK."
                } else {
                    "226 Transfer complete."
                }))
            } else {
                None
            }
        }
        Job::Store { data, .. } => {
            while s.can_recv() {
                match s.recv(|b| {
                    data.extend_from_slice(b);
                    (b.len(), b.len())
                }) {
                    Ok(n) if n > 0 => {
                        c.bytes_received += n as u64;
                        acted = true;
                    }
                    _ => break,
                }
            }
            if s.state() == Closed {
                Some(Err("426 Failure reading network stream."))
            } else if !s.may_recv() {
                s.close();
                Some(Ok("226 Transfer complete."))
            } else {
                None
            }
        }
    };
    let Some(result) = outcome else {
        return acted;
    };
    let x = sess.xfer.take().expect("transfer");
    if let (Ok(_), Job::Store { name, data }) = (&result, x.job) {
        let file = Arc::new(FileData::Bytes(data));
        match sh.files.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = file,
            None => sh.files.push((name, file)),
        }
    }
    let port = x.port.map(|p| (Proto::Tcp, p));
    let n = &mut net.nics[sess.nic];
    if n.sockets.get::<tcp::Socket>(x.handle).state() == Closed {
        n.sockets.remove(x.handle);
        if let Some((proto, p)) = port {
            net.ports.free(proto, p);
        }
    } else {
        n.lingering.push((x.handle, port));
    }
    let text = match result {
        Ok(t) | Err(t) => t,
    };
    reply(net, sess, c, text);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(input: &[u8]) -> Vec<Result<Reply, String>> {
        let mut r = Replies::default();
        let mut out = Vec::new();
        if let Err(e) = r.push(input) {
            return vec![Err(e)];
        }
        loop {
            match r.next() {
                Ok(Some(x)) => out.push(Ok(x)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn multi_line_replies_end_at_the_line_with_their_code() {
        let got = replies(b"220 (vsFTPd 3.0.5)\r\n211-Features:\r\n EPSV\r\n211 End\r\n230");
        assert_eq!(
            got,
            vec![
                Ok(Reply {
                    code: 220,
                    text: "220 (vsFTPd 3.0.5)".into()
                }),
                Ok(Reply {
                    code: 211,
                    text: "211 End".into()
                }),
            ]
        );
        assert!(replies(b"hello\r\n")[0]
            .as_ref()
            .is_err_and(|e| e == "malformed reply \"hello\""));
        assert!(replies(&[b'x'; 5000])[0].is_err());
    }

    #[test]
    fn passive_replies_parse_as_real_servers_write_them() {
        let a = parse_227("227 Entering Passive Mode (198,51,100,2,195,80).").unwrap();
        assert_eq!(a, "198.51.100.2:50000".parse().unwrap());
        // RFC 1123: no parentheses.
        let a = parse_227("227 =198,51,100,2,4,1").unwrap();
        assert_eq!(a.port(), 1025);
        assert_eq!(parse_227("227 Entering Passive Mode (1,2,3,4,5)."), None);
        assert_eq!(parse_227("227 (1,2,3,4,5,256)"), None);
        assert_eq!(
            parse_229("229 Entering Extended Passive Mode (|||50000|)"),
            Some(50000)
        );
        assert_eq!(parse_229("229 ok (!!!6446!)"), Some(6446));
        assert_eq!(parse_229("229 (|||0|)"), None);
        assert_eq!(parse_229("229 (|||70000|)"), None);
        assert_eq!(parse_229("229 (||6446|)"), None);
        assert_eq!(
            parse_eprt("|1|192.0.2.1|6275|"),
            Ok("192.0.2.1:6275".parse().unwrap())
        );
        assert_eq!(parse_eprt("|2|::1|6275|"), Err("500 Bad EPRT protocol."));
        assert!(parse_eprt("|1|192.0.2.1|6275").is_err());
        assert!(parse_eprt("").is_err());
        assert_eq!(
            parse_host_port("192,0,2,1,156,64"),
            Some("192.0.2.1:40000".parse().unwrap())
        );
        let mut s = String::new();
        host_port_text(&mut s, "192.0.2.1:40000".parse().unwrap());
        assert_eq!(s, "192,0,2,1,156,64");
    }

    #[test]
    fn listing_lines_are_vsftpds() {
        let mut out = Vec::new();
        listing_line(&mut out, "hello.txt", 6);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-rw-r--r--    1 ftp      ftp             6 Jan 01 00:00 hello.txt\r\n"
        );
    }

    /// Random bytes on the control connection never panic the reply reader
    /// nor the parsers behind it.
    #[test]
    fn random_replies_never_panic() {
        let mut rng = Rng::from_seed(5);
        let alphabet = b"0123456789(|),.- \r\n\x00\xffPASV227229";
        for _ in 0..20_000 {
            let len = rng.below(80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let mut r = Replies::default();
            let _ = r.push(&bytes);
            while let Ok(Some(reply)) = r.next() {
                let _ = parse_227(&reply.text);
                let _ = parse_229(&reply.text);
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_227(&text);
            let _ = parse_229(&text);
            let _ = parse_eprt(&text);
            let _ = parse_host_port(&text);
            let _ = show(&bytes);
        }
    }
}
