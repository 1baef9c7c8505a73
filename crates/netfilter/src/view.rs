//! A [`ConnView`] over ctsim-conntrack's [`Entry`], for the router.

use std::net::Ipv4Addr;

use ctsim_conntrack::{CtInfo, Entry, Status, Tuple};

use crate::eval::ConnView;

/// The packet's connection as ctsim-conntrack holds it, plus what the
/// router knows (local addresses, connlimit counts).
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryView<'a> {
    /// The packet's ctinfo; `None` = INVALID.
    pub ctinfo: Option<CtInfo>,
    /// The packet's entry (confirmed or not), if any.
    pub entry: Option<&'a Entry>,
    /// The entry's master (expected connections), for `-m helper`.
    pub master: Option<&'a Entry>,
    /// Connection mark overriding `entry.mark()`, e.g. after CONNMARK in
    /// an earlier hook of the same packet.
    pub mark: Option<u32>,
    /// The answer to `-m connlimit`'s count (the router counts).
    pub connections: u32,
    /// The router's own addresses (`-m addrtype` LOCAL).
    pub local: &'a [Ipv4Addr],
}

impl ConnView for EntryView<'_> {
    fn ctinfo(&self) -> Option<CtInfo> {
        self.ctinfo
    }
    fn status(&self) -> Status {
        self.entry.map_or(Status(0), Entry::status)
    }
    fn tuples(&self) -> Option<(Tuple, Tuple)> {
        self.entry.map(|e| (*e.orig(), *e.reply()))
    }
    fn mark(&self) -> u32 {
        self.mark
            .unwrap_or_else(|| self.entry.map_or(0, Entry::mark))
    }
    fn master_helper(&self) -> Option<&str> {
        self.master.and_then(Entry::helper)
    }
    fn connections(&self, _key: Ipv4Addr, _prefix: u8, _daddr: bool) -> u32 {
        self.connections
    }
    fn addr_type(&self, addr: Ipv4Addr, _iface: Option<&str>) -> u16 {
        if self.local.contains(&addr) {
            1 << 2
        } else if addr.is_broadcast() || addr.octets()[0] == 0 {
            1 << 3
        } else if addr.is_multicast() {
            1 << 5
        } else {
            1 << 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_entry_it_is_invalid_or_untracked() {
        let v = EntryView {
            ctinfo: Some(CtInfo::Untracked),
            ..EntryView::default()
        };
        assert_eq!(v.tuples(), None);
        assert_eq!(v.status(), Status(0));
        assert_eq!(v.master_helper(), None);
        let local = [Ipv4Addr::new(192, 0, 2, 1)];
        let v = EntryView {
            local: &local,
            mark: Some(7),
            ..EntryView::default()
        };
        assert_eq!(v.mark(), 7);
        assert_eq!(v.addr_type(local[0], None), 1 << 2);
        assert_eq!(v.addr_type(Ipv4Addr::BROADCAST, None), 1 << 3);
        assert_eq!(v.addr_type(Ipv4Addr::new(198, 51, 100, 2), None), 1 << 1);
    }
}
