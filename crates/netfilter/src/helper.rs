//! Conntrack helpers at the confirm hook, with their NAT halves
//! (`nf_confirm()`, `nf_nat_ftp`, `nf_nat_irc`, `nf_nat_helper.c`;
//! reference/helpers-and-expectations.md §4–§5, nat.md §6–§7).
//!
//! # Calling it from a router
//!
//! Right before [`Conntrack::confirm`] in POST_ROUTING and LOCAL_IN, for
//! every packet that has a conntrack reference `r` (ICMP errors included;
//! they are skipped inside), call [`confirm_hook`]. `Verdict::Drop`
//! means drop the packet (and release `r` instead of confirming it). The
//! packet may have changed: its payload (a NAT helper rewrote an address),
//! its length (IP total length and checksums are fixed), and its TCP
//! sequence and acknowledgement numbers (sequence adjustment). A packet
//! that grew may now exceed the output MTU: fragment (or refuse with DF)
//! after this call, as Linux's `ip_finish_output()` does after the hooks.
//!
//! The parsing and the expectations are ctsim-conntrack's
//! ([`Conntrack::help`]); this module adds what NAT needs: the rewrite of
//! the address/port text, the choice of the expectation's port
//! ([`find_port`]) and the bookkeeping of the length change.

use ctsim_conntrack::expect::{ExpectError, NewExpectation};
use ctsim_conntrack::helper::{
    ftp, irc, msg, ExpectFn, FollowMaster, HelpCtx, HelpVerdict, NatJob, NatKind,
};
use ctsim_conntrack::time::Instant;
use ctsim_conntrack::tuple::IPPROTO_TCP;
use ctsim_conntrack::{Conntrack, CtInfo, Dir, EntryRef, Status, Verdict};

use crate::seqadj;

pub mod sip;

/// `nf_confirm()` before `nf_conntrack_confirm()`: run the entry's helper
/// (and, on a NATed connection, its NAT helper), then sequence adjustment
/// if the entry has IPS_SEQ_ADJUST. Does nothing, without allocating, for
/// an entry with neither. `rand` is the router's RNG (the expectation
/// port search, `get_random_u32()`).
pub fn confirm_hook(
    ct: &mut Conntrack,
    r: &EntryRef,
    pkt: &mut Vec<u8>,
    ctx: &HelpCtx,
    now: Instant,
    rand: &mut dyn FnMut() -> u32,
) -> Verdict {
    let Some(e) = ct.get(r.key()) else {
        return Verdict::Accept;
    };
    // Linux decides whether to adjust before the helper runs.
    let seqadj_needed = e.status().contains(Status::SEQ_ADJUST);
    if e.helper().is_none() && !seqadj_needed {
        return Verdict::Accept;
    }
    // helper->help() does not expect ICMP errors.
    if r.ctinfo() == CtInfo::RelatedReply {
        return Verdict::Accept;
    }
    if e.helper().is_some() {
        match ct.help(r, pkt, ctx, now) {
            HelpVerdict::Accept => {}
            HelpVerdict::Drop(reason) => return Verdict::Drop { reason },
            HelpVerdict::Nat(job) => {
                if let Err(reason) = nat_help(ct, r, pkt, &job, now, rand) {
                    return Verdict::Drop { reason };
                }
            }
            HelpVerdict::SipNat => {
                if let Err(reason) = sip::nat_help(ct, r, pkt, now, rand) {
                    return Verdict::Drop { reason };
                }
            }
        }
    }
    if seqadj_needed && !seqadj::adjust(ct, r, pkt) {
        ct.count_drop();
        return Verdict::Drop {
            reason: "sequence adjustment failed",
        };
    }
    Verdict::Accept
}

/// `nf_nat_ftp()` / `nf_nat_irc`'s `help()`: the expected connection
/// will come to the address the peer uses for us, so the text names that
/// address and a port we expect on, and the child follows the master's
/// NAT.
fn nat_help(
    ct: &mut Conntrack,
    r: &EntryRef,
    pkt: &mut Vec<u8>,
    job: &NatJob,
    now: Instant,
    rand: &mut dyn FnMut() -> u32,
) -> Result<(), &'static str> {
    let Some(e) = ct.get(r.key()) else {
        return Ok(());
    };
    let (newaddr, exp_dir) = match job.kind {
        // "Connection will come from wherever this packet goes, hence !dir".
        NatKind::Ftp(_) => (e.tuple(job.dir.opposite()).dst, job.dir.opposite()),
        // "Reply comes from server."
        NatKind::Irc => (e.reply().dst, Dir::Reply),
    };
    let mut exp = job.exp;
    exp.nat = Some(FollowMaster {
        dir: exp_dir,
        saved_port: exp.tuple.dst_u,
        expectfn: ExpectFn::FollowMaster,
    });
    let port = find_port(ct, &mut exp, now, rand).ok_or(msg::ALL_PORTS_IN_USE)?;
    let text = match job.kind {
        NatKind::Ftp(kind) => ftp::format(kind, newaddr, port),
        NatKind::Irc => irc::format(u32::from(newaddr), port),
    };
    if !mangle_tcp(ct, r, pkt, job.off, job.len, text.as_bytes()) {
        ct.unexpect_related(r.key(), &exp.tuple, now);
        return Err(msg::CANNOT_MANGLE);
    }
    Ok(())
}

/// `nf_nat_exp_find_port()`: insert `exp` with destination port `port`
/// as it is if possible; while an overlapping expectation is in the way
/// (EBUSY), try random ports in `[port, 65535)`, at most 128 times. Any
/// other error gives up. Returns the port used.
pub fn find_port(
    ct: &mut Conntrack,
    exp: &mut NewExpectation,
    now: Instant,
    rand: &mut dyn FnMut() -> u32,
) -> Option<u16> {
    const MAX_ATTEMPTS: i32 = 128;
    let min = exp.tuple.dst_u;
    let range = u32::from(u16::MAX - min);
    let mut attempts_left = (range as i32).min(MAX_ATTEMPTS);
    let mut port = min;
    loop {
        exp.tuple.dst_u = port;
        match ct.expect_related(*exp, now) {
            Ok(()) => return Some(port),
            Err(ExpectError::Busy) => {
                attempts_left -= 1;
                if attempts_left < 0 {
                    return None;
                }
            }
            Err(_) => return None,
        }
        port = min.wrapping_add(random_below(range, rand) as u16);
    }
}

/// `get_random_u32_below()`: Lemire's multiply-and-shift with rejection.
fn random_below(ceil: u32, rand: &mut dyn FnMut() -> u32) -> u32 {
    if ceil == 0 {
        return rand();
    }
    let mut mult = u64::from(ceil) * u64::from(rand());
    if (mult as u32) < ceil {
        let bound = ceil.wrapping_neg() % ceil;
        while (mult as u32) < bound {
            mult = u64::from(ceil) * u64::from(rand());
        }
    }
    (mult >> 32) as u32
}

/// `__nf_nat_mangle_tcp_packet()`: replace `match_len` bytes at `off`
/// (from the start of the datagram) with `rep`, fix the IP total length,
/// the IP header checksum and the TCP checksum, and record the length
/// change for sequence adjustment. `false` if the packet is not a TCP
/// datagram holding that range or would exceed 65535 bytes.
pub fn mangle_tcp(
    ct: &mut Conntrack,
    r: &EntryRef,
    pkt: &mut Vec<u8>,
    off: usize,
    match_len: usize,
    rep: &[u8],
) -> bool {
    let Some(seq) = replace_tcp(pkt, off, match_len, rep) else {
        return false;
    };
    if rep.len() != match_len {
        let delta = rep.len() as i32 - match_len as i32;
        ct.seqadj_record(r.key(), r.dir(), seq, delta);
    }
    true
}

/// The packet part of [`mangle_tcp`] (`__nf_nat_mangle_tcp_packet()` with
/// `adjust` false): replace the bytes, fix the IP total length and both
/// checksums. Returns the segment's sequence number.
pub(crate) fn replace_tcp(
    pkt: &mut Vec<u8>,
    off: usize,
    match_len: usize,
    rep: &[u8],
) -> Option<u32> {
    let ihl = splice_l4(pkt, IPPROTO_TCP, 20, off, match_len, rep)?;
    pkt[ihl + 16..ihl + 18].copy_from_slice(&[0, 0]);
    let tcp_sum = !l4_pseudo_sum(pkt, ihl, IPPROTO_TCP);
    pkt[ihl + 16..ihl + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    Some(u32::from_be_bytes([
        pkt[ihl + 4],
        pkt[ihl + 5],
        pkt[ihl + 6],
        pkt[ihl + 7],
    ]))
}

/// `mangle_contents()`: in an IPv4 datagram of protocol `proto` whose L4
/// header is at least `l4_min` bytes, replace `match_len` bytes at `off`
/// (after that header) with `rep`, and fix the IP total length and header
/// checksum. Returns the IP header length; `None` if the range is not in
/// the datagram or the result would exceed 65535 bytes.
pub(crate) fn splice_l4(
    pkt: &mut Vec<u8>,
    proto: u8,
    l4_min: usize,
    off: usize,
    match_len: usize,
    rep: &[u8],
) -> Option<usize> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != proto {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20
        || tot > pkt.len()
        || tot < ihl + l4_min
        || off < ihl + l4_min
        || off + match_len > tot
    {
        return None;
    }
    let new_tot = tot - match_len + rep.len();
    if new_tot > usize::from(u16::MAX) {
        return None;
    }
    pkt.truncate(tot);
    pkt.splice(off..off + match_len, rep.iter().copied());
    pkt[2..4].copy_from_slice(&(new_tot as u16).to_be_bytes());
    pkt[10..12].copy_from_slice(&[0, 0]);
    let ip_sum = !crate::nat::ones_sum(&pkt[..ihl]);
    pkt[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    Some(ihl)
}

/// One's complement sum of the TCP or UDP pseudo-header and segment.
pub(crate) fn l4_pseudo_sum(pkt: &[u8], ihl: usize, proto: u8) -> u16 {
    let l4 = &pkt[ihl..];
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&pkt[12..20]);
    pseudo[9] = proto;
    pseudo[10..12].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    let a = crate::nat::ones_sum(&pseudo);
    let b = crate::nat::ones_sum(l4);
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}
