//! `AF_PACKET` sockets on the peers' veths: Ethernet frames in and out.
//!
//! A socket belongs to the namespace it was created in, whatever thread
//! uses it later: a short-lived thread enters the peer's namespace
//! (`setns` changes only the calling thread), opens the socket and hands
//! the descriptor back.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `sll_pkttype` of a frame the socket's own interface sent.
const PACKET_OUTGOING: u8 = 4;

pub(crate) struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl PacketSocket {
    /// Opens a non-blocking socket for every frame on `ifname` inside
    /// network namespace `ns`.
    pub(crate) fn open(ns: &str, ifname: &str) -> io::Result<PacketSocket> {
        let ns_path = format!("/run/netns/{ns}");
        let ifname = CString::new(ifname).map_err(io::Error::other)?;
        std::thread::scope(|s| s.spawn(|| open_here(&ns_path, &ifname)).join())
            .map_err(|_| io::Error::other("the thread opening a packet socket panicked"))?
    }

    /// Sends one Ethernet frame.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the buffer is valid for its length; the socket is bound.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The next frame that arrived from the router, into `buf`; `None` when
    /// there is none now. Frames the socket's side sent are skipped.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: sockaddr_ll is plain data; recvfrom writes at most
            // `len` bytes into `buf` and `addr`.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut addr as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if addr.sll_pkttype == PACKET_OUTGOING || addr.sll_ifindex != self.ifindex {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }

    pub(crate) fn raw(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }
}

fn open_here(ns_path: &str, ifname: &CString) -> io::Result<PacketSocket> {
    let ns = std::fs::File::open(ns_path)?;
    // SAFETY: setns on a namespace file we opened; it affects this thread
    // only, which ends right after.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    })?;
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(ifname.as_ptr()) } as i32;
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex;
    // SAFETY: bind with a fully initialised sockaddr_ll of the right size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(PacketSocket { fd, ifindex })
}

/// Waits until one of `sockets` is readable or `timeout_ms` passed.
pub(crate) fn wait_readable(sockets: &[PacketSocket], timeout_ms: i32) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.raw(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
