//! Output byte-compatible with conntrack-tools 1.4.7 (libnetfilter_conntrack
//! `__snprintf_conntrack_default()`): `conntrack -L`, `-E`, `-L expect`,
//! the summary lines, and the kernel's `/proc/net/nf_conntrack`
//! (reference/conntrack-tool-formats.md).
//!
//! Both listings and events go through [`Flow`], the set of netlink
//! attributes a message carries: a field is printed exactly when Linux
//! would have put its attribute in the message.

use std::fmt::Write as _;

use crate::status::Status;
use crate::tcp::TcpConntrack;
use crate::tuple::{proto_name, Tuple, Zone};

/// `-o` options of the `conntrack` command that change a line.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FormatOpts {
    /// `-o extended`: the `ipv4     2 ` prefix.
    pub extended: bool,
    /// `-o id`: append `id=N`.
    pub id: bool,
}

impl FormatOpts {
    /// `-o extended`.
    pub const EXTENDED: FormatOpts = FormatOpts {
        extended: true,
        id: false,
    };
}

/// Packets and bytes of one direction (`struct nf_conn_counter`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// The attributes of one conntrack netlink message, as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    pub orig: Tuple,
    pub reply: Tuple,
    /// CTA_TIMEOUT, remaining seconds.
    pub timeout: Option<u64>,
    /// CTA_PROTOINFO_TCP_STATE.
    pub tcp_state: Option<TcpConntrack>,
    /// CTA_COUNTERS_ORIG / _REPLY.
    pub counters: Option<[Counter; 2]>,
    pub status: Status,
    /// CTA_MARK.
    pub mark: Option<u32>,
    /// CTA_ZONE (only when not the default zone).
    pub zone: Zone,
    /// CTA_TIMESTAMP: `delta-time=` seconds.
    pub delta_time: Option<u64>,
    /// CTA_HELP.
    pub helper: Option<&'static str>,
    /// CTA_USE.
    pub use_count: Option<u32>,
    /// CTA_ID.
    pub id: u32,
}

impl Flow {
    /// Appends the line without prefix or newline.
    pub fn write(&self, out: &mut String, opts: FormatOpts) {
        if opts.extended {
            out.push_str("ipv4     2 ");
        }
        let _ = write!(
            out,
            "{:<8} {} ",
            proto_name(self.orig.proto),
            self.orig.proto
        );
        if let Some(t) = self.timeout {
            let _ = write!(out, "{t} ");
        }
        self.write_tuples(out);
        if let Some(m) = self.mark {
            let _ = write!(out, "mark={m} ");
        }
        if self.zone != Zone::DEFAULT {
            let _ = write!(out, "zone={} ", self.zone.0);
        }
        if let Some(d) = self.delta_time {
            let _ = write!(out, "delta-time={d} ");
        }
        if let Some(h) = self.helper {
            let _ = write!(out, "helper={h} ");
        }
        if let Some(u) = self.use_count {
            let _ = write!(out, "use={u} ");
        }
        if opts.id {
            let _ = write!(out, "id={} ", self.id);
        }
        // "Delete the last blank space".
        out.pop();
    }

    /// The part both forms share: the TCP state, each direction's tuple
    /// with its counters, `[UNREPLIED]`, and the offload/assured flag.
    fn write_tuples(&self, out: &mut String) {
        if let Some(s) = self.tcp_state {
            let _ = write!(out, "{s} ");
        }
        let _ = write!(out, "{} ", self.orig);
        if let Some(c) = &self.counters {
            let _ = write!(out, "packets={} bytes={} ", c[0].packets, c[0].bytes);
        }
        if !self.status.contains(Status::SEEN_REPLY) {
            out.push_str("[UNREPLIED] ");
        }
        let _ = write!(out, "{} ", self.reply);
        if let Some(c) = &self.counters {
            let _ = write!(out, "packets={} bytes={} ", c[1].packets, c[1].bytes);
        }
        if self.status.contains(Status::HW_OFFLOAD) {
            out.push_str("[HW_OFFLOAD] ");
        } else if self.status.contains(Status::OFFLOAD) {
            out.push_str("[OFFLOAD] ");
        } else if self.status.contains(Status::ASSURED) {
            out.push_str("[ASSURED] ");
        }
    }

    /// The kernel's `/proc/net/nf_conntrack` line (ct_seq_show): `zone=`
    /// always, no helper, `use` one higher than the table's own count.
    pub fn write_proc(&self, out: &mut String) {
        let _ = write!(
            out,
            "ipv4     2 {:<8} {} ",
            proto_name(self.orig.proto),
            self.orig.proto
        );
        let _ = write!(out, "{} ", self.timeout.unwrap_or(0));
        self.write_tuples(out);
        let _ = write!(out, "mark={} zone={} ", self.mark.unwrap_or(0), self.zone.0);
        if let Some(d) = self.delta_time {
            let _ = write!(out, "delta-time={d} ");
        }
        let _ = write!(out, "use={}", self.use_count.unwrap_or(0) + 1);
    }
}

/// The stderr summary of `conntrack -L` (and `-L dying`, `-L unconfirmed`,
/// which on Linux 6.18 print it with 0: checked on Linux 6.18).
pub fn flows_shown(n: usize) -> String {
    format!("conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n")
}

/// The stderr summary of `conntrack -L expect`.
pub fn expectations_shown(n: usize) -> String {
    format!("conntrack v1.4.7 (conntrack-tools): {n} expectations have been shown.\n")
}

/// The stderr summary of `conntrack -D`.
pub fn flows_deleted(n: usize) -> String {
    format!("conntrack v1.4.7 (conntrack-tools): {n} flow entries have been deleted.\n")
}

/// The stderr line of `conntrack -F`.
pub const FLUSHED: &str =
    "conntrack v1.4.7 (conntrack-tools): connection tracking table has been emptied.\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const S: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    fn flow(orig: Tuple, reply: Tuple) -> Flow {
        Flow {
            orig,
            reply,
            timeout: None,
            tcp_state: None,
            counters: None,
            status: Status::default(),
            mark: Some(0),
            zone: Zone::DEFAULT,
            delta_time: None,
            helper: None,
            use_count: Some(1),
            id: 0,
        }
    }

    fn line(f: &Flow, opts: FormatOpts) -> String {
        let mut s = String::new();
        f.write(&mut s, opts);
        s
    }

    // The expected strings below are the real lines of
    // conntrack-tool-formats.md §1–3 (Linux 6.18, conntrack-tools 1.4.7),
    // whose reply tuples carry MASQUERADE; the formatter does not care who
    // rewrote a tuple.
    #[test]
    fn tcp_established_assured_line() {
        let mut f = flow(Tuple::tcp(C, 34100, S, 8080), Tuple::tcp(S, 8080, R, 34100));
        f.timeout = Some(431_998);
        f.tcp_state = Some(TcpConntrack::Established);
        f.status = Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED;
        assert_eq!(
            line(&f, FormatOpts::default()),
            "tcp      6 431998 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=34100 dport=8080 \
             src=198.51.100.2 dst=198.51.100.1 sport=8080 dport=34100 [ASSURED] mark=0 use=1"
        );
        let mut p = String::new();
        f.write_proc(&mut p);
        assert_eq!(
            p,
            "ipv4     2 tcp      6 431998 ESTABLISHED src=192.0.2.2 dst=198.51.100.2 sport=34100 dport=8080 \
             src=198.51.100.2 dst=198.51.100.1 sport=8080 dport=34100 [ASSURED] mark=0 zone=0 use=2"
        );
    }

    #[test]
    fn unreplied_udp_and_extended_prefix() {
        let mut f = flow(Tuple::udp(C, 39422, S, 5353), Tuple::udp(S, 5353, R, 39422));
        f.timeout = Some(22);
        assert_eq!(
            line(&f, FormatOpts::default()),
            "udp      17 22 src=192.0.2.2 dst=198.51.100.2 sport=39422 dport=5353 [UNREPLIED] \
             src=198.51.100.2 dst=198.51.100.1 sport=5353 dport=39422 mark=0 use=1"
        );
        let mut t = flow(Tuple::tcp(C, 34098, S, 8080), Tuple::tcp(S, 8080, R, 34098));
        t.timeout = Some(118);
        t.tcp_state = Some(TcpConntrack::TimeWait);
        t.status = Status::SEEN_REPLY | Status::ASSURED;
        assert_eq!(
            line(&t, FormatOpts::EXTENDED),
            "ipv4     2 tcp      6 118 TIME_WAIT src=192.0.2.2 dst=198.51.100.2 sport=34098 dport=8080 \
             src=198.51.100.2 dst=198.51.100.1 sport=8080 dport=34098 [ASSURED] mark=0 use=1"
        );
    }

    #[test]
    fn accounting_timestamp_helper_and_id() {
        let mut f = flow(Tuple::icmp(C, S, 8712, 8, 0), Tuple::icmp(S, R, 8712, 0, 0));
        f.timeout = Some(29);
        f.status = Status::SEEN_REPLY;
        f.counters = Some(
            [Counter {
                packets: 2,
                bytes: 168,
            }; 2],
        );
        f.delta_time = Some(0);
        assert_eq!(
            line(&f, FormatOpts::default()),
            "icmp     1 29 src=192.0.2.2 dst=198.51.100.2 type=8 code=0 id=8712 packets=2 bytes=168 \
             src=198.51.100.2 dst=198.51.100.1 type=0 code=0 id=8712 packets=2 bytes=168 mark=0 \
             delta-time=0 use=1"
        );
        let mut h = flow(Tuple::udp(C, 5060, S, 5060), Tuple::udp(S, 5060, R, 5060));
        h.timeout = Some(3599);
        h.status = Status::SEEN_REPLY;
        h.helper = Some("sip");
        h.id = 2_330_065_585;
        assert_eq!(
            line(&h, FormatOpts { extended: false, id: true }),
            "udp      17 3599 src=192.0.2.2 dst=198.51.100.2 sport=5060 dport=5060 src=198.51.100.2 \
             dst=198.51.100.1 sport=5060 dport=5060 mark=0 helper=sip use=1 id=2330065585"
        );
    }

    #[test]
    fn generic_protocol_and_zone_checked_on_linux_6_18() {
        // Captured in a lab namespace on this machine (Linux 6.18,
        // conntrack-tools 1.4.7) with nf_conntrack_acct=1 and
        // nf_conntrack_timestamp=1; no NAT.
        let mut f = flow(Tuple::generic(99, C, S), Tuple::generic(99, S, C));
        f.timeout = Some(599);
        f.status = Status::SEEN_REPLY;
        f.counters = Some(
            [Counter {
                packets: 1,
                bytes: 25,
            }; 2],
        );
        f.delta_time = Some(1);
        assert_eq!(
            line(&f, FormatOpts::default()),
            "unknown  99 599 src=192.0.2.2 dst=198.51.100.2 packets=1 bytes=25 src=198.51.100.2 \
             dst=192.0.2.2 packets=1 bytes=25 mark=0 delta-time=1 use=1"
        );
        let mut z = flow(Tuple::udp(C, 40011, S, 6001), Tuple::udp(S, 6001, C, 40011));
        z.timeout = Some(1);
        z.status = Status::SEEN_REPLY;
        z.counters = Some([
            Counter {
                packets: 1,
                bytes: 32,
            },
            Counter {
                packets: 1,
                bytes: 34,
            },
        ]);
        z.zone = Zone(5);
        z.delta_time = Some(2);
        assert_eq!(
            line(&z, FormatOpts::default()),
            "udp      17 1 src=192.0.2.2 dst=198.51.100.2 sport=40011 dport=6001 packets=1 bytes=32 \
             src=198.51.100.2 dst=192.0.2.2 sport=6001 dport=40011 packets=1 bytes=34 mark=0 zone=5 \
             delta-time=2 use=1"
        );
    }

    #[test]
    fn summaries() {
        assert_eq!(
            flows_shown(18),
            "conntrack v1.4.7 (conntrack-tools): 18 flow entries have been shown.\n"
        );
        assert_eq!(
            expectations_shown(0),
            "conntrack v1.4.7 (conntrack-tools): 0 expectations have been shown.\n"
        );
        assert_eq!(
            flows_deleted(1),
            "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n"
        );
    }
}
