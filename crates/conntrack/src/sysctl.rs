//! The net.netfilter sysctls of one network namespace, with Linux 6.x
//! names and defaults (reference/conntrack-core.md §5 and §8).
//!
//! Every key that Linux 6.18 shows under /proc/sys/net/netfilter for
//! conntrack can be read and written by name, so that a scenario can copy a
//! real host's values. Keys without effect here (SCTP, GRE, ICMPv6,
//! fragment reassembly) are kept and printed but change nothing.

use std::fmt::Write as _;

use crate::tcp::{TcpSysctl, TcpTimeouts};
use crate::time::Duration;

/// `nf_conntrack_buckets` of a 64-bit host with more than 4 GiB of RAM.
pub const DEFAULT_BUCKETS: u32 = 262_144;

/// The net.netfilter conntrack sysctls (per namespace; the simulator gives
/// every router its own, writable like the initial namespace's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctls {
    /// `nf_conntrack_acct` (0): per-direction packet/byte counters for
    /// entries created while it is on.
    pub acct: bool,
    /// `nf_conntrack_buckets`: hash table size; writing it resizes.
    pub buckets: u32,
    /// `nf_conntrack_checksum` (1): verify L4 checksums in PRE_ROUTING.
    pub checksum: bool,
    /// `nf_conntrack_events` (2): 0 off, 1 on, 2 on if a listener exists
    /// (the simulator's timeline always listens, so 1 and 2 behave alike).
    pub events: u8,
    /// `nf_conntrack_expect_max`: expectation limit.
    pub expect_max: u32,
    /// `nf_conntrack_generic_timeout` (600 s).
    pub generic_timeout: Duration,
    /// `nf_conntrack_gre_timeout` (30 s): GRE until both ways were seen.
    pub gre_timeout: Duration,
    /// `nf_conntrack_gre_timeout_stream` (180 s): GRE seen both ways.
    pub gre_timeout_stream: Duration,
    /// `nf_conntrack_icmp_timeout` (30 s).
    pub icmp_timeout: Duration,
    /// `nf_conntrack_log_invalid` (0): protocol number whose invalid packets
    /// are logged, 255 for all.
    pub log_invalid: u8,
    /// `nf_conntrack_max`: entry limit, 0 = none.
    pub max: u32,
    /// `nf_conntrack_timestamp` (0): record start/stop (`delta-time=`).
    pub timestamp: bool,
    /// `nf_conntrack_udp_timeout` (30 s).
    pub udp_timeout: Duration,
    /// `nf_conntrack_udp_timeout_stream` (120 s).
    pub udp_timeout_stream: Duration,
    /// `nf_conntrack_helper` (0): automatic helper assignment by port.
    /// Linux turned it off by default in 4.7 and removed the sysctl in 6.0;
    /// ctsim keeps it as a teaching switch to show the old behaviour. It
    /// is accepted by [`Sysctls::set`]/[`Sysctls::get`] but not listed by
    /// [`Sysctls::dump`], which prints what Linux 6.18 has.
    pub auto_helper: bool,
    /// The TCP keys: loose, be_liberal, max_retrans, ignore_invalid_rst and
    /// the `nf_conntrack_tcp_timeout_*` values.
    pub tcp: TcpSysctl,
    /// Keys kept only to be read back, in [`INERT`] order.
    inert: [u32; INERT.len()],
}

/// Keys Linux has that change nothing here, with their defaults.
const INERT: [(&str, u32); 12] = [
    ("nf_conntrack_frag6_high_thresh", 4_194_304),
    ("nf_conntrack_frag6_low_thresh", 3_145_728),
    ("nf_conntrack_frag6_timeout", 60),
    ("nf_conntrack_icmpv6_timeout", 30),
    ("nf_conntrack_sctp_timeout_closed", 10),
    ("nf_conntrack_sctp_timeout_cookie_echoed", 3),
    ("nf_conntrack_sctp_timeout_cookie_wait", 3),
    ("nf_conntrack_sctp_timeout_established", 210),
    ("nf_conntrack_sctp_timeout_heartbeat_sent", 30),
    ("nf_conntrack_sctp_timeout_shutdown_ack_sent", 3),
    ("nf_conntrack_sctp_timeout_shutdown_recd", 3),
    ("nf_conntrack_sctp_timeout_shutdown_sent", 3),
];

/// Extra keys without effect, not in the 6.18 conntrack list above.
const INERT_BOOLS: [&str; 2] = ["nf_hooks_lwtunnel", "nf_log_all_netns"];

/// Every key as Linux 6.18 lists it under /proc/sys/net/netfilter, sorted.
pub const KEYS: [&str; 43] = [
    "nf_conntrack_acct",
    "nf_conntrack_buckets",
    "nf_conntrack_checksum",
    "nf_conntrack_count",
    "nf_conntrack_events",
    "nf_conntrack_expect_max",
    "nf_conntrack_frag6_high_thresh",
    "nf_conntrack_frag6_low_thresh",
    "nf_conntrack_frag6_timeout",
    "nf_conntrack_generic_timeout",
    "nf_conntrack_gre_timeout",
    "nf_conntrack_gre_timeout_stream",
    "nf_conntrack_icmp_timeout",
    "nf_conntrack_icmpv6_timeout",
    "nf_conntrack_log_invalid",
    "nf_conntrack_max",
    "nf_conntrack_sctp_timeout_closed",
    "nf_conntrack_sctp_timeout_cookie_echoed",
    "nf_conntrack_sctp_timeout_cookie_wait",
    "nf_conntrack_sctp_timeout_established",
    "nf_conntrack_sctp_timeout_heartbeat_sent",
    "nf_conntrack_sctp_timeout_shutdown_ack_sent",
    "nf_conntrack_sctp_timeout_shutdown_recd",
    "nf_conntrack_sctp_timeout_shutdown_sent",
    "nf_conntrack_tcp_be_liberal",
    "nf_conntrack_tcp_ignore_invalid_rst",
    "nf_conntrack_tcp_loose",
    "nf_conntrack_tcp_max_retrans",
    "nf_conntrack_tcp_timeout_close",
    "nf_conntrack_tcp_timeout_close_wait",
    "nf_conntrack_tcp_timeout_established",
    "nf_conntrack_tcp_timeout_fin_wait",
    "nf_conntrack_tcp_timeout_last_ack",
    "nf_conntrack_tcp_timeout_max_retrans",
    "nf_conntrack_tcp_timeout_syn_recv",
    "nf_conntrack_tcp_timeout_syn_sent",
    "nf_conntrack_tcp_timeout_time_wait",
    "nf_conntrack_tcp_timeout_unacknowledged",
    "nf_conntrack_timestamp",
    "nf_conntrack_udp_timeout",
    "nf_conntrack_udp_timeout_stream",
    "nf_hooks_lwtunnel",
    "nf_log_all_netns",
];

impl Default for Sysctls {
    /// A 64-bit host with more than 4 GiB of RAM: 262144 buckets, max
    /// 262144, expect_max 4096 (checked on Linux 6.18, 24 GiB host).
    fn default() -> Self {
        Sysctls::with_buckets(DEFAULT_BUCKETS, 1)
    }
}

impl Sysctls {
    /// The defaults Linux computes at boot for a host with `ram_bytes` of
    /// memory (`nf_conntrack_init_start()`): RAM/16384/8 buckets (at least
    /// 1024), 65536 above 1 GiB, 262144 above 4 GiB on 64-bit; rounded up
    /// to a multiple of 512; `nf_conntrack_max` = buckets.
    pub fn for_memory(ram_bytes: u64, bits_64: bool) -> Sysctls {
        const GIB: u64 = 1 << 30;
        let mut buckets = ram_bytes / 16384 / if bits_64 { 8 } else { 4 };
        if bits_64 && ram_bytes > 4 * GIB {
            buckets = 262_144;
        } else if ram_bytes > GIB {
            buckets = 65_536;
        }
        let buckets = u32::try_from(buckets.max(1024)).unwrap_or(u32::MAX);
        Sysctls::with_buckets(buckets, 1)
    }

    /// The values with an explicit `hashsize=` module parameter:
    /// `nf_conntrack_max` = 8 × buckets (the old factor).
    pub fn with_hashsize(hashsize: u32) -> Sysctls {
        Sysctls::with_buckets(hashsize.max(1), 8)
    }

    fn with_buckets(buckets: u32, max_factor: u32) -> Sysctls {
        // nf_ct_alloc_hashtable(): a whole number of pages of 8-byte heads.
        let buckets = buckets.div_ceil(512).saturating_mul(512);
        // nf_conntrack_expect_init(): hsize = buckets / 256 (at least 1), max = 4 × hsize.
        let expect_hsize = (buckets / 256).max(1);
        let mut inert = [0; INERT.len()];
        for (v, (_, d)) in inert.iter_mut().zip(INERT) {
            *v = d;
        }
        Sysctls {
            acct: false,
            buckets,
            checksum: true,
            events: 2,
            expect_max: expect_hsize * 4,
            generic_timeout: Duration::from_secs(600),
            gre_timeout: Duration::from_secs(30),
            gre_timeout_stream: Duration::from_secs(180),
            icmp_timeout: Duration::from_secs(30),
            log_invalid: 0,
            max: max_factor.saturating_mul(buckets),
            timestamp: false,
            udp_timeout: Duration::from_secs(30),
            udp_timeout_stream: Duration::from_secs(120),
            auto_helper: false,
            tcp: TcpSysctl::default(),
            inert,
        }
    }

    /// `sysctl -w NAME=VALUE`. `name` may carry the `net.netfilter.` prefix
    /// (or `net/netfilter/`), and `net.nf_conntrack_max` names the same
    /// value as `nf_conntrack_max`. Values are decimal integers, timeouts in
    /// seconds, as /proc/sys takes them. Errors say what `sysctl` says.
    ///
    /// Writing `nf_conntrack_buckets` here only records it; a
    /// [`crate::Conntrack`] resizes its hash when set through
    /// [`crate::Conntrack::set_sysctl`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let key = normalize(name).ok_or_else(|| no_such_key(name))?;
        let invalid = || {
            format!(
                "sysctl: setting key \"{}\": Invalid argument",
                display_name(name)
            )
        };
        let v: i64 = parse_int(value).ok_or_else(invalid)?;
        let bool_ = |v: i64| {
            if (0..=1).contains(&v) {
                Ok(v == 1)
            } else {
                Err(invalid())
            }
        };
        let u8_ = |v: i64, max: i64| {
            if (0..=max).contains(&v) {
                Ok(v as u8)
            } else {
                Err(invalid())
            }
        };
        let int = |v: i64, min: i64| {
            if (min..=i64::from(i32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(invalid())
            }
        };
        // proc_dointvec_jiffies: seconds, anything from 0 to INT_MAX / HZ.
        let secs = |v: i64| {
            if (0..=i64::from(i32::MAX) / 1000).contains(&v) {
                Ok(Duration::from_secs(v as u64))
            } else {
                Err(invalid())
            }
        };
        let t: &mut TcpTimeouts = &mut self.tcp.timeouts;
        match key {
            "nf_conntrack_acct" => self.acct = bool_(v)?,
            "nf_conntrack_buckets" => {
                // nf_ct_alloc_hashtable() rounds the size up to whole
                // pages of bucket heads: 512 on a 64-bit host with 4 KiB
                // pages (Linux 6.18: writing 8 reads back 512).
                let b = int(v, 1)?;
                self.buckets = b.div_ceil(512).saturating_mul(512);
            }
            "nf_conntrack_checksum" => self.checksum = bool_(v)?,
            "nf_conntrack_count" => {
                return Err(format!(
                    "sysctl: setting key \"{}\": Permission denied",
                    display_name(name)
                ))
            }
            "nf_conntrack_events" => self.events = u8_(v, 2)?,
            "nf_conntrack_expect_max" => self.expect_max = int(v, 1)?,
            AUTO_HELPER => self.auto_helper = bool_(v)?,
            "nf_conntrack_generic_timeout" => self.generic_timeout = secs(v)?,
            "nf_conntrack_gre_timeout" => self.gre_timeout = secs(v)?,
            "nf_conntrack_gre_timeout_stream" => self.gre_timeout_stream = secs(v)?,
            "nf_conntrack_icmp_timeout" => self.icmp_timeout = secs(v)?,
            "nf_conntrack_log_invalid" => self.log_invalid = u8_(v, 255)?,
            "nf_conntrack_max" => self.max = int(v, 0)?,
            "nf_conntrack_tcp_be_liberal" => self.tcp.be_liberal = bool_(v)?,
            "nf_conntrack_tcp_ignore_invalid_rst" => self.tcp.ignore_invalid_rst = bool_(v)?,
            "nf_conntrack_tcp_loose" => self.tcp.loose = bool_(v)?,
            "nf_conntrack_tcp_max_retrans" => self.tcp.max_retrans = u32::from(u8_(v, 255)?),
            "nf_conntrack_tcp_timeout_close" => t.close = secs(v)?,
            "nf_conntrack_tcp_timeout_close_wait" => t.close_wait = secs(v)?,
            "nf_conntrack_tcp_timeout_established" => t.established = secs(v)?,
            "nf_conntrack_tcp_timeout_fin_wait" => t.fin_wait = secs(v)?,
            "nf_conntrack_tcp_timeout_last_ack" => t.last_ack = secs(v)?,
            "nf_conntrack_tcp_timeout_max_retrans" => t.retrans = secs(v)?,
            "nf_conntrack_tcp_timeout_syn_recv" => t.syn_recv = secs(v)?,
            "nf_conntrack_tcp_timeout_syn_sent" => t.syn_sent = secs(v)?,
            "nf_conntrack_tcp_timeout_time_wait" => t.time_wait = secs(v)?,
            "nf_conntrack_tcp_timeout_unacknowledged" => t.unacknowledged = secs(v)?,
            "nf_conntrack_timestamp" => self.timestamp = bool_(v)?,
            "nf_conntrack_udp_timeout" => self.udp_timeout = secs(v)?,
            "nf_conntrack_udp_timeout_stream" => self.udp_timeout_stream = secs(v)?,
            k if INERT_BOOLS.contains(&k) => {
                bool_(v)?;
            }
            k => {
                let i = INERT
                    .iter()
                    .position(|(n, _)| *n == k)
                    .ok_or_else(|| no_such_key(name))?;
                self.inert[i] = int(v, 0)?;
            }
        }
        Ok(())
    }

    /// `sysctl -n NAME`: the value as /proc/sys prints it. `count` is the
    /// caller's (a bare `Sysctls` has no table, so it reads 0).
    pub fn get(&self, name: &str) -> Result<String, String> {
        let key = normalize(name).ok_or_else(|| no_such_key(name))?;
        let t = &self.tcp.timeouts;
        let s = |d: Duration| d.as_secs().to_string();
        let b = |x: bool| u8::from(x).to_string();
        Ok(match key {
            "nf_conntrack_acct" => b(self.acct),
            "nf_conntrack_buckets" => self.buckets.to_string(),
            "nf_conntrack_checksum" => b(self.checksum),
            "nf_conntrack_count" => "0".into(),
            "nf_conntrack_events" => self.events.to_string(),
            "nf_conntrack_expect_max" => self.expect_max.to_string(),
            AUTO_HELPER => b(self.auto_helper),
            "nf_conntrack_generic_timeout" => s(self.generic_timeout),
            "nf_conntrack_gre_timeout" => s(self.gre_timeout),
            "nf_conntrack_gre_timeout_stream" => s(self.gre_timeout_stream),
            "nf_conntrack_icmp_timeout" => s(self.icmp_timeout),
            "nf_conntrack_log_invalid" => self.log_invalid.to_string(),
            "nf_conntrack_max" => self.max.to_string(),
            "nf_conntrack_tcp_be_liberal" => b(self.tcp.be_liberal),
            "nf_conntrack_tcp_ignore_invalid_rst" => b(self.tcp.ignore_invalid_rst),
            "nf_conntrack_tcp_loose" => b(self.tcp.loose),
            "nf_conntrack_tcp_max_retrans" => self.tcp.max_retrans.to_string(),
            "nf_conntrack_tcp_timeout_close" => s(t.close),
            "nf_conntrack_tcp_timeout_close_wait" => s(t.close_wait),
            "nf_conntrack_tcp_timeout_established" => s(t.established),
            "nf_conntrack_tcp_timeout_fin_wait" => s(t.fin_wait),
            "nf_conntrack_tcp_timeout_last_ack" => s(t.last_ack),
            "nf_conntrack_tcp_timeout_max_retrans" => s(t.retrans),
            "nf_conntrack_tcp_timeout_syn_recv" => s(t.syn_recv),
            "nf_conntrack_tcp_timeout_syn_sent" => s(t.syn_sent),
            "nf_conntrack_tcp_timeout_time_wait" => s(t.time_wait),
            "nf_conntrack_tcp_timeout_unacknowledged" => s(t.unacknowledged),
            "nf_conntrack_timestamp" => b(self.timestamp),
            "nf_conntrack_udp_timeout" => s(self.udp_timeout),
            "nf_conntrack_udp_timeout_stream" => s(self.udp_timeout_stream),
            k if INERT_BOOLS.contains(&k) => "0".into(),
            k => {
                let i = INERT
                    .iter()
                    .position(|(n, _)| *n == k)
                    .ok_or_else(|| no_such_key(name))?;
                self.inert[i].to_string()
            }
        })
    }

    /// `sysctl net.netfilter` output: `net.netfilter.NAME = VALUE` lines in
    /// Linux's (alphabetical) order; `count` fills `nf_conntrack_count`.
    pub fn dump(&self, count: u32) -> String {
        let mut out = String::new();
        for k in KEYS {
            let v = if k == "nf_conntrack_count" {
                count.to_string()
            } else {
                self.get(k).unwrap_or_default()
            };
            let _ = writeln!(out, "net.netfilter.{k} = {v}");
        }
        out
    }
}

/// The removed automatic-helper key ctsim still accepts.
const AUTO_HELPER: &str = "nf_conntrack_helper";

/// The bare key (`nf_conntrack_max`) for any accepted spelling.
fn normalize(name: &str) -> Option<&'static str> {
    let n = name.trim();
    let n = n.strip_prefix("/proc/sys/").unwrap_or(n);
    let bare = n
        .strip_prefix("net.netfilter.")
        .or_else(|| n.strip_prefix("net/netfilter/"))
        .or_else(|| n.strip_prefix("net.").filter(|r| *r == "nf_conntrack_max"))
        .or_else(|| n.strip_prefix("net/").filter(|r| *r == "nf_conntrack_max"))
        .unwrap_or(n);
    KEYS.iter()
        .copied()
        .chain([AUTO_HELPER])
        .find(|k| *k == bare)
}

fn display_name(name: &str) -> String {
    let n = name.trim().replace('/', ".");
    if n.starts_with("net.") {
        n
    } else {
        format!("net.netfilter.{n}")
    }
}

fn no_such_key(name: &str) -> String {
    let path = display_name(name).replace('.', "/");
    format!("sysctl: cannot stat /proc/sys/{path}: No such file or directory")
}

/// proc_dointvec's parser: optional whitespace, optional sign, decimal.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_linux_6_18() {
        let s = Sysctls::default();
        assert_eq!((s.buckets, s.max, s.expect_max), (262_144, 262_144, 4096));
        assert_eq!(s.get("nf_conntrack_udp_timeout").unwrap(), "30");
        assert_eq!(
            s.get("net.netfilter.nf_conntrack_udp_timeout_stream")
                .unwrap(),
            "120"
        );
        assert_eq!(s.get("nf_conntrack_icmp_timeout").unwrap(), "30");
        assert_eq!(s.get("nf_conntrack_generic_timeout").unwrap(), "600");
        assert_eq!(
            s.get("nf_conntrack_tcp_timeout_established").unwrap(),
            "432000"
        );
        assert_eq!(s.get("nf_conntrack_tcp_loose").unwrap(), "1");
        assert_eq!(s.get("nf_conntrack_tcp_max_retrans").unwrap(), "3");
        assert_eq!(s.get("nf_conntrack_events").unwrap(), "2");
        assert_eq!(s.get("nf_conntrack_checksum").unwrap(), "1");
        assert_eq!(
            s.get("nf_conntrack_sctp_timeout_established").unwrap(),
            "210"
        );
    }

    #[test]
    fn memory_formula() {
        const GIB: u64 = 1 << 30;
        assert_eq!(Sysctls::for_memory(24 * GIB, true).buckets, 262_144);
        assert_eq!(Sysctls::for_memory(2 * GIB, true).max, 65_536);
        // 512 MiB: 512 MiB / 128 KiB = 4096 buckets, expect_max 4 × 16.
        let s = Sysctls::for_memory(512 << 20, true);
        assert_eq!((s.buckets, s.max, s.expect_max), (4096, 4096, 64));
        // Tiny hosts get at least 1024 buckets.
        assert_eq!(Sysctls::for_memory(16 << 20, true).buckets, 1024);
        // hashsize=1000 rounds to 1024 and keeps the factor 8.
        let h = Sysctls::with_hashsize(1000);
        assert_eq!((h.buckets, h.max, h.expect_max), (1024, 8192, 16));
    }

    #[test]
    fn set_by_name_and_errors() {
        let mut s = Sysctls::default();
        s.set("net.netfilter.nf_conntrack_udp_timeout", "3")
            .unwrap();
        assert_eq!(s.udp_timeout, Duration::from_secs(3));
        s.set("nf_conntrack_max", "16").unwrap();
        s.set("net.nf_conntrack_max", "17").unwrap();
        assert_eq!(s.max, 17);
        s.set("net/netfilter/nf_conntrack_tcp_be_liberal", "1")
            .unwrap();
        assert!(s.tcp.be_liberal);
        s.set("nf_conntrack_tcp_timeout_time_wait", "5").unwrap();
        assert_eq!(s.tcp.timeouts.time_wait, Duration::from_secs(5));
        assert_eq!(
            s.set("nf_conntrack_acct", "2").unwrap_err(),
            "sysctl: setting key \"net.netfilter.nf_conntrack_acct\": Invalid argument"
        );
        // Removed in Linux 6.0, kept here as a teaching switch.
        s.set("net.netfilter.nf_conntrack_helper", "1").unwrap();
        assert!(s.auto_helper);
        assert_eq!(s.get("nf_conntrack_helper").unwrap(), "1");
        assert!(s.set("nf_conntrack_helper", "2").is_err());
        assert_eq!(
            s.set("net.netfilter.nf_conntrack_helpers", "1").unwrap_err(),
            "sysctl: cannot stat /proc/sys/net/netfilter/nf_conntrack_helpers: No such file or directory"
        );
        assert!(s.set("nf_conntrack_count", "1").is_err());
        assert!(s.set("nf_conntrack_max", "x").is_err());
        s.set("nf_conntrack_gre_timeout", "31").unwrap();
        assert_eq!(s.get("nf_conntrack_gre_timeout").unwrap(), "31");
    }

    #[test]
    fn dump_lists_every_key_sorted() {
        let d = Sysctls::default().dump(3);
        let keys: Vec<&str> = d.lines().map(|l| l.split(" = ").next().unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 43);
        assert!(d.contains("net.netfilter.nf_conntrack_count = 3\n"));
    }

    /// Linux 6.18: `sysctl -w net.netfilter.nf_conntrack_buckets=8` reads
    /// back 512 (whole pages of bucket heads); found by `ctsim linux-diff`.
    #[test]
    fn buckets_round_up_to_whole_pages() {
        let mut s = Sysctls::default();
        s.set("net.netfilter.nf_conntrack_buckets", "8").unwrap();
        assert_eq!(s.buckets, 512);
        s.set("net.netfilter.nf_conntrack_buckets", "513").unwrap();
        assert_eq!(s.buckets, 1024);
    }
}
