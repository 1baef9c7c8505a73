//! Shared helpers of the conntrack core tests: packet builders and a
//! one-call "packet through the router" driver.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use ctsim_conntrack::time::{Duration, Instant};
use ctsim_conntrack::{Conntrack, CtHook, CtInfo, CtState, EntryKey, Zone};

pub const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const S: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub fn secs(s: f64) -> Instant {
    Instant((s * 1e9).round() as u64)
}

pub fn after(t: Instant, s: u64) -> Instant {
    t + Duration::from_secs(s)
}

fn sum(data: &[u8], mut acc: u64) -> u16 {
    let mut i = 0;
    while i + 1 < data.len() {
        acc += u64::from(u16::from_be_bytes([data[i], data[i + 1]]));
        i += 2;
    }
    if i < data.len() {
        acc += u64::from(data[i]) << 8;
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u64 {
    u64::from(u32::from(src) >> 16)
        + u64::from(u32::from(src) & 0xffff)
        + u64::from(u32::from(dst) >> 16)
        + u64::from(u32::from(dst) & 0xffff)
        + u64::from(proto)
        + len as u64
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let tot = 20 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (tot >> 8) as u8,
        tot as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = sum(&p, 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let mut c = sum(&u, pseudo(src, dst, 17, len));
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 17, &u)
}

#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    let c = sum(&t, pseudo(src, dst, 6, t.len()));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 6, &t)
}

pub fn icmp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = sum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, &m)
}

/// An echo request (type 8) or reply (type 0) with 56 bytes of data: 84
/// bytes on the wire, like `ping`.
pub fn echo(src: Ipv4Addr, dst: Ipv4Addr, icmp_type: u8, id: u16) -> Vec<u8> {
    let mut rest = [0; 4];
    rest[..2].copy_from_slice(&id.to_be_bytes());
    rest[3] = 1;
    icmp(src, dst, icmp_type, 0, rest, &[0x78; 56])
}

/// An ICMP error from `from` to `to` quoting the first 28 bytes of `quoted`.
pub fn icmp_error(from: Ipv4Addr, to: Ipv4Addr, icmp_type: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    icmp(
        from,
        to,
        icmp_type,
        code,
        [0; 4],
        &quoted[..quoted.len().min(28)],
    )
}

/// What one packet did, after passing the whole router (lookup at
/// PRE_ROUTING, confirm at POST_ROUTING).
#[derive(Debug)]
pub struct Seen {
    pub state: CtState,
    pub ctinfo: Option<CtInfo>,
    pub key: Option<EntryKey>,
    pub invalid: Option<&'static str>,
    pub dropped: bool,
}

/// Forwards one packet: handle_packet at PRE_ROUTING, confirm at
/// POST_ROUTING.
pub fn forward(ct: &mut Conntrack, pkt: &[u8], now: Instant) -> Seen {
    forward_zone(ct, pkt, Zone(0), now)
}

pub fn forward_zone(ct: &mut Conntrack, pkt: &[u8], zone: Zone, now: Instant) -> Seen {
    ct.handle_timeout(now);
    let r = ct.handle_packet(pkt, CtHook::PreRouting, zone, now);
    let state = r.state();
    let invalid = r.invalid_reason();
    let mut dropped = r.verdict != ctsim_conntrack::Verdict::Accept;
    let ctinfo = r.ctinfo();
    let mut key = None;
    if let Some(h) = r.ct {
        let c = ct.confirm(h, now);
        dropped |= c.verdict != ctsim_conntrack::Verdict::Accept;
        key = c.key;
    }
    Seen {
        state,
        ctinfo,
        key,
        invalid,
        dropped,
    }
}

/// Drains and renders every pending event.
pub fn events(ct: &mut Conntrack) -> Vec<String> {
    std::iter::from_fn(|| ct.poll_event())
        .map(|e| e.to_string())
        .collect()
}

/// `conntrack -L` stdout at `now`.
pub fn list(ct: &Conntrack, now: Instant) -> String {
    ct.conntrack_l(
        ctsim_conntrack::Table::Conntrack,
        &Default::default(),
        Default::default(),
        now,
    )
    .0
}
