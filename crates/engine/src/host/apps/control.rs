//! What the FTP and IRC clients share: a control connection to a server,
//! opened from the NIC that routes there, with one overall deadline, and
//! the ICMP errors that may abort its connect.

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;

use smoltcp::socket::tcp;

use super::ftp::release;
use super::{ip_of, open_connection, Counters};
use crate::host::device::IcmpNote;
use crate::host::ports::Proto;
use crate::host::Net;
use crate::time::{Duration, Instant};

/// Where a control connection's handshake stands.
pub(crate) enum Connect {
    /// Still under way.
    Pending,
    /// The socket closed: a RST (or ICMP) answered the SYN.
    Refused,
    /// Established; the local address is the one the connection uses.
    Open,
}

pub(crate) struct Control {
    /// The server.
    pub to: SocketAddrV4,
    /// How long the whole session may take.
    pub timeout: Duration,
    /// When it gives up: set when it opens.
    pub deadline: Instant,
    /// (NIC, socket) once opened.
    pub ctrl: Option<(usize, SocketHandle)>,
    /// Its local port.
    pub ctrl_port: u16,
    /// The address it leaves from.
    pub local: Ipv4Addr,
    /// ICMP errors that abort a connect (16 kept at most).
    pub notes: Vec<IcmpNote>,
}

impl Control {
    pub fn new(to: SocketAddrV4, timeout: Duration) -> Control {
        Control {
            to,
            timeout,
            deadline: Instant::ZERO,
            ctrl: None,
            ctrl_port: 0,
            local: Ipv4Addr::UNSPECIFIED,
            notes: Vec::new(),
        }
    }

    /// An ICMP error about something the client sent.
    pub fn notice(&mut self, note: IcmpNote) {
        if note.aborts_connect() && self.notes.len() < 16 {
            self.notes.push(note);
        }
    }

    /// Opens the connection at `now`; on failure (counted in `c`), the
    /// state the client ends in.
    pub fn open(
        &mut self,
        idx: usize,
        c: &mut Counters,
        net: &mut Net,
        now: Instant,
    ) -> Result<(), &'static str> {
        self.deadline = now + self.timeout;
        match open_connection(idx, net, self.to) {
            Ok((nic, handle, port, local)) => {
                self.local = local;
                self.ctrl = Some((nic, handle));
                self.ctrl_port = port;
                Ok(())
            }
            Err((why, state)) => {
                c.fail(|| why);
                Err(state)
            }
        }
    }

    /// Forgets the connection (aborting it first with `abort`: a RST) and
    /// gives its port back.
    pub fn drop(&mut self, net: &mut Net, abort: bool) {
        if let Some((nic, handle)) = self.ctrl.take() {
            let s = net.nics[nic].sockets.get_mut::<tcp::Socket>(handle);
            if abort {
                s.abort();
            }
            release(net, nic, handle, Some((Proto::Tcp, self.ctrl_port)));
        }
    }

    /// While connecting: where the handshake of socket `s` stands. On
    /// `Refused` the failure is counted in `c`.
    pub fn connecting(&mut self, s: &tcp::Socket<'_>, c: &mut Counters) -> Connect {
        use tcp::State::*;
        match s.state() {
            SynSent | SynReceived => Connect::Pending,
            Closed => {
                let to = self.to;
                c.fail(|| format!("connection to {to} refused"));
                Connect::Refused
            }
            _ => {
                if let Some(ep) = s.local_endpoint() {
                    self.local = ip_of(ep);
                }
                Connect::Open
            }
        }
    }
}
