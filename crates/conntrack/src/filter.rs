//! Entry filters for `conntrack -L`/`-D` options (`-p`, `-s`, `-d`, `-r`,
//! `-q`, `--sport`, `--dport`, `--zone`, `--mark`, `--status`, `--state`).

use std::net::Ipv4Addr;

use crate::status::Status;
use crate::tcp::TcpConntrack;
use crate::tuple::Zone;
use crate::Entry;

/// Which entries an operation applies to; `Filter::default()` matches all.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Filter {
    /// `-p`: L4 protocol number.
    pub proto: Option<u8>,
    /// `-s`: original source address.
    pub orig_src: Option<Ipv4Addr>,
    /// `-d`: original destination address.
    pub orig_dst: Option<Ipv4Addr>,
    /// `-r`: reply source address.
    pub reply_src: Option<Ipv4Addr>,
    /// `-q`: reply destination address.
    pub reply_dst: Option<Ipv4Addr>,
    /// `--sport`: original source port.
    pub sport: Option<u16>,
    /// `--dport`: original destination port.
    pub dport: Option<u16>,
    /// `-w`/`--zone`.
    pub zone: Option<Zone>,
    /// `-m`/`--mark VALUE[/MASK]`.
    pub mark: Option<(u32, u32)>,
    /// `-u`/`--status`: all these bits set.
    pub status: Option<Status>,
    /// `--state`: TCP state.
    pub tcp_state: Option<TcpConntrack>,
}

impl Filter {
    /// Whether `e` passes every given condition.
    pub fn matches(&self, e: &Entry) -> bool {
        let o = e.orig();
        let r = e.reply();
        self.proto.is_none_or(|p| o.proto == p)
            && self.orig_src.is_none_or(|a| o.src == a)
            && self.orig_dst.is_none_or(|a| o.dst == a)
            && self.reply_src.is_none_or(|a| r.src == a)
            && self.reply_dst.is_none_or(|a| r.dst == a)
            && self.sport.is_none_or(|p| o.has_ports() && o.sport() == p)
            && self.dport.is_none_or(|p| o.has_ports() && o.dport() == p)
            && self.zone.is_none_or(|z| e.zone() == z)
            && self.mark.is_none_or(|(v, m)| e.mark() & m == v & m)
            && self.status.is_none_or(|s| e.status().contains(s))
            && self.tcp_state.is_none_or(|s| e.tcp_state() == Some(s))
    }
}
