//! The SIP helper's processing (`nf_conntrack_sip.c` around its parser;
//! reference/helpers-and-expectations.md §7): requests and responses by
//! method, SDP media lines to RTP/RTCP expectations, BYE and failures
//! flushing them, REGISTER to a signalling expectation that its 200 OK
//! activates. On a NATed connection the same code runs with the NAT
//! layer's [`SipNatHooks`] (ctsim-netfilter `helper::sip`), which rewrite
//! the message while it is parsed, as Linux's `nf_nat_sip_hooks` do.

use std::net::Ipv4Addr;

use super::{Conntrack, EntryKey, EntryRef, Status, EXPECT_TIMER};
use crate::expect::{ExpectError, ExpectMask, NewExpectation, INACTIVE, PERMANENT};
use crate::helper::sip::{
    self as p, Found, Header, Match, Pkt, SdpHeader, SipCx, SipNatHooks, SIP_EXPECT_SIGNALLING,
    SIP_TIMEOUT_SECS,
};
use crate::helper::{self, msg, HelpVerdict, SipState};
use crate::status::CtInfo;
use crate::tcp::Dir;
use crate::time::{Duration, Instant};
use crate::tuple::{Tuple, IPPROTO_TCP, IPPROTO_UDP};
use crate::wire;

/// `Err`: drop the packet, with the helper's log text.
type Res = Result<(), &'static str>;

/// The hooks of a connection without NAT: never called.
struct NoNat;

impl SipNatHooks for NoNat {
    fn msg(&mut self, _: &mut SipCx<'_>) -> Res {
        Ok(())
    }
    fn seq_adjust(&mut self, _: &mut SipCx<'_>, _: i32) {}
    fn expect(&mut self, _: &mut SipCx<'_>, _: NewExpectation, _: Match) -> Res {
        Ok(())
    }
    fn sdp_addr(
        &mut self,
        _: &mut SipCx<'_>,
        _: usize,
        _: SdpHeader,
        _: SdpHeader,
        _: Ipv4Addr,
    ) -> bool {
        true
    }
    fn sdp_port(&mut self, _: &mut SipCx<'_>, _: Match, _: u16) -> bool {
        true
    }
    fn sdp_session(&mut self, _: &mut SipCx<'_>, _: usize, _: Ipv4Addr) -> bool {
        true
    }
    fn sdp_media(
        &mut self,
        _: &mut SipCx<'_>,
        _: NewExpectation,
        _: NewExpectation,
        _: Match,
        _: &mut Ipv4Addr,
    ) -> Res {
        Ok(())
    }
}

fn verdict(r: Res) -> HelpVerdict {
    match r {
        Ok(()) => HelpVerdict::Accept,
        Err(m) => HelpVerdict::Drop(m),
    }
}

impl Conntrack {
    /// `sip_help_udp()` / `sip_help_tcp()` for a connection without NAT;
    /// a NATed one is handed to the NAT layer ([`HelpVerdict::SipNat`]).
    pub(super) fn help_sip(&mut self, r: &EntryRef, pkt: &[u8], now: Instant) -> HelpVerdict {
        if self.slots[r.key.idx as usize]
            .status
            .intersects(Status::NAT_MASK)
        {
            return HelpVerdict::SipNat;
        }
        let mut cx = SipCx {
            ct: self,
            r,
            pkt: Pkt::Ro(pkt),
            dataoff: 0,
            datalen: 0,
            now,
            nat: false,
        };
        verdict(sip_help(&mut cx, &mut NoNat))
    }

    /// The SIP helper on a NATed connection, with the NAT layer's hooks
    /// rewriting `pkt` as it goes (what `confirm_hook` runs on
    /// [`HelpVerdict::SipNat`]).
    pub fn help_sip_nat(
        &mut self,
        r: &EntryRef,
        pkt: &mut Vec<u8>,
        hooks: &mut dyn SipNatHooks,
        now: Instant,
    ) -> HelpVerdict {
        if self.get(r.key).is_none() {
            return HelpVerdict::Accept;
        }
        let nat = self.slots[r.key.idx as usize]
            .status
            .intersects(Status::NAT_MASK);
        let mut cx = SipCx {
            ct: self,
            r,
            pkt: Pkt::Rw(pkt),
            dataoff: 0,
            datalen: 0,
            now,
            nat,
        };
        verdict(sip_help(&mut cx, hooks))
    }

    /// The SIP state of an entry (CSeqs, forced port).
    pub fn sip_state(&self, key: EntryKey) -> Option<SipState> {
        self.help_ext(key).map(|h| h.sip)
    }

    fn sip_state_mut(&mut self, key: EntryKey) -> &mut SipState {
        &mut self.slots[key.idx as usize]
            .help
            .get_or_insert_with(Box::default)
            .sip
    }

    /// The master's expectations, newest first (`help->expectations`).
    fn expects_of(&self, master: EntryKey) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = self
            .expects
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(e, _)| (e, i)))
            .filter(|(e, _)| e.master == master)
            .map(|(e, i)| (e.seq, i as u32))
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// `flush_expectations()`: remove the master's media expectations, or
    /// (`media` false) its newest signalling one.
    fn sip_flush(&mut self, master: EntryKey, media: bool, now: Instant) {
        for i in self.expects_of(master) {
            let Some((x, _)) = &self.expects[i as usize] else {
                continue;
            };
            if (x.class != SIP_EXPECT_SIGNALLING) != media {
                continue;
            }
            self.unlink_expect(i, now);
            if !media {
                break;
            }
        }
    }

    /// `refresh_signalling_expectation()`: restart the timer of the
    /// master's signalling expectation for `addr:port` at `expires`
    /// seconds and activate it.
    fn sip_refresh_signalling(
        &mut self,
        master: EntryKey,
        addr: Ipv4Addr,
        proto: u8,
        port: u16,
        expires: u32,
        now: Instant,
    ) -> bool {
        for i in self.expects_of(master) {
            let Some((x, gen)) = self.expects[i as usize].as_mut() else {
                continue;
            };
            if x.class != SIP_EXPECT_SIGNALLING
                || x.tuple.dst != addr
                || x.tuple.proto != proto
                || x.tuple.dst_u != port
            {
                continue;
            }
            x.expires = now + Duration::from_secs(u64::from(expires));
            x.flags &= !INACTIVE;
            let node = (x.expires.0, i | EXPECT_TIMER, *gen);
            self.timers.push(std::cmp::Reverse(node));
            return true;
        }
        false
    }
}

/// The entry's tuple in `dir`.
fn tuple(cx: &SipCx<'_>, dir: Dir) -> Tuple {
    cx.ct.slots[cx.r.key.idx as usize].tuple[dir as usize]
}

fn proto(cx: &SipCx<'_>) -> u8 {
    tuple(cx, Dir::Original).proto
}

/// `sip_help_udp()` and `sip_help_tcp()`.
fn sip_help(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks) -> Res {
    let idx = cx.r.key.idx;
    let (len, dataoff, tcp) = {
        let Ok(ip) = wire::parse_ipv4(cx.pkt.bytes()) else {
            return Ok(());
        };
        let l4off = ip.len - ip.l4.len();
        match ip.proto {
            IPPROTO_UDP => (ip.len, l4off + 8, false),
            IPPROTO_TCP => {
                if !matches!(cx.r.ctinfo, CtInfo::Established | CtInfo::EstablishedReply) {
                    return Ok(());
                }
                if ip.l4.len() < 20 {
                    return Ok(());
                }
                (ip.len, l4off + usize::from(ip.l4[12] >> 4) * 4, true)
            }
            _ => return Ok(()),
        }
    };
    // No data?
    if dataoff >= len {
        return Ok(());
    }
    let now = cx.now;
    cx.ct
        .refresh(idx, Duration::from_secs(SIP_TIMEOUT_SECS), now);
    let datalen = len - dataoff;
    if datalen < b"SIP/2.0 200".len() {
        return Ok(());
    }
    if !tcp {
        cx.dataoff = dataoff;
        cx.datalen = datalen;
        return process_sip_msg(cx, h);
    }
    // TCP: one message after the other, each ended by its Content-Length
    // of body after the blank line.
    let (mut dataoff, mut datalen) = (dataoff, datalen);
    let mut tdiff: i32 = 0;
    let mut ret = Ok(());
    loop {
        cx.dataoff = dataoff;
        cx.datalen = datalen;
        let msg = cx.msg();
        let Found::Yes(cl) = p::get_header(msg, 0, Header::ContentLength).0 else {
            break;
        };
        let (clen, mut end) = p::strtoul10(msg, cl.off);
        if end == cl.off {
            break;
        }
        let mut term = false;
        while end + 4 <= msg.len() {
            if &msg[end..end + 4] == b"\r\n\r\n" {
                term = true;
                break;
            }
            end += 1;
        }
        if !term {
            break;
        }
        let origlen = end + 4 + clen as usize;
        if origlen > datalen {
            return Ok(());
        }
        cx.datalen = origlen;
        ret = process_sip_msg(cx, h);
        if ret.is_err() {
            break;
        }
        let msglen = cx.datalen;
        let diff = msglen as i32 - origlen as i32;
        tdiff += diff;
        dataoff += msglen;
        // Linux: datalen + diff - msglen.
        datalen -= origlen;
    }
    if ret.is_ok() && cx.nat {
        h.seq_adjust(cx, tdiff);
    }
    ret
}

/// `process_sip_msg()`.
fn process_sip_msg(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks) -> Res {
    let ret = if !p::has_prefix(cx.msg(), b"SIP/2.0 ") {
        process_sip_request(cx, h)
    } else {
        process_sip_response(cx, h)
    };
    if ret.is_ok() && cx.nat && h.msg(cx).is_err() {
        return Err(msg::SIP_CANNOT_NAT);
    }
    ret
}

/// The CSeq number, or the drop reason.
fn cseq(msg: &[u8]) -> Result<(u32, Match), &'static str> {
    let Found::Yes(m) = p::get_header(msg, 0, Header::CSeq).0 else {
        return Err(msg::SIP_CANNOT_PARSE_CSEQ);
    };
    let (v, _) = p::strtoul10(msg, m.off);
    if v == 0 && msg.get(m.off) != Some(&b'0') {
        return Err(msg::SIP_CANNOT_GET_CSEQ);
    }
    Ok((v, m))
}

#[derive(Clone, Copy)]
enum Method {
    Invite,
    Update,
    Ack,
    Prack,
    Bye,
    Register,
}

/// `sip_handlers[]`, in Linux's order.
const HANDLERS: [(&[u8], Method); 6] = [
    (b"INVITE", Method::Invite),
    (b"UPDATE", Method::Update),
    (b"ACK", Method::Ack),
    (b"PRACK", Method::Prack),
    (b"BYE", Method::Bye),
    (b"REGISTER", Method::Register),
];

/// `process_sip_request()`.
fn process_sip_request(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks) -> Res {
    let dir = cx.r.dir();
    let t = tuple(cx, dir);
    // A phone that sends from one port and listens on the Via port.
    if let Found::Yes(via) = p::parse_header_uri(cx.msg(), 0, Header::ViaUdp, None) {
        if via.port != t.src_u && via.addr == t.src {
            let key = cx.r.key;
            cx.ct.sip_state_mut(key).forced_dport = via.port;
        }
    }
    let msg = cx.msg();
    for (name, method) in HANDLERS {
        if msg.len() < name.len() + 2 || !p::has_prefix(msg, name) {
            continue;
        }
        if msg[name.len()] != b' ' || !msg[name.len() + 1].is_ascii_alphabetic() {
            continue;
        }
        let (cseq, _) = cseq(msg)?;
        let key = cx.r.key;
        let now = cx.now;
        return match method {
            Method::Invite => {
                cx.ct.sip_flush(key, true, now);
                process_sdp(cx, h)?;
                cx.ct.sip_state_mut(key).invite_cseq = cseq;
                Ok(())
            }
            Method::Update | Method::Ack | Method::Prack => process_sdp(cx, h),
            Method::Bye => {
                cx.ct.sip_flush(key, true, now);
                Ok(())
            }
            Method::Register => process_register_request(cx, h, cseq),
        };
    }
    Ok(())
}

/// `process_sip_response()`.
fn process_sip_response(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks) -> Res {
    let msg = cx.msg();
    if msg.len() < b"SIP/2.0 200".len() {
        return Ok(());
    }
    let (code, _) = p::strtoul10(msg, b"SIP/2.0 ".len());
    if code == 0 {
        return Err(msg::SIP_CANNOT_GET_CODE);
    }
    let (cseq, m) = cseq(msg)?;
    let matchend = m.off + m.len + 1;
    for (name, method) in HANDLERS {
        if matches!(method, Method::Ack | Method::Bye) {
            continue;
        }
        if msg.len() < matchend + name.len()
            || !msg[matchend..matchend + name.len()].eq_ignore_ascii_case(name)
        {
            continue;
        }
        let key = cx.r.key;
        let now = cx.now;
        if let Method::Register = method {
            return process_register_response(cx, cseq, code);
        }
        // INVITE, UPDATE and PRACK responses alike.
        if (100..=299).contains(&code) {
            return process_sdp(cx, h);
        }
        if cx.ct.sip_state(key).unwrap_or_default().invite_cseq == cseq {
            cx.ct.sip_flush(key, true, now);
        }
        return Ok(());
    }
    Ok(())
}

/// `process_sdp()`: every `m=` line with a port (at most three) expects
/// its RTP and RTCP; the media's `c=` or else the session's gives the
/// address.
fn process_sdp(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks) -> Res {
    let msg = cx.msg();
    let Found::Yes(v) = p::get_sdp_header(msg, 0, SdpHeader::Version, SdpHeader::Unspec) else {
        return Ok(());
    };
    let sdpoff = v.off;
    let caddr = match p::parse_sdp_addr(msg, sdpoff, SdpHeader::Connection, SdpHeader::Media) {
        Found::Yes((_, a)) => Some(a),
        _ => None,
    };
    let mut mediaoff = sdpoff;
    let mut rtp_addr = None;
    let mut i = 0;
    while i < 3 {
        let msg = cx.msg();
        let Found::Yes(m) = p::get_sdp_header(msg, mediaoff, SdpHeader::Media, SdpHeader::Unspec)
        else {
            break;
        };
        mediaoff = m.off;
        let Some((tlen, class)) = p::media_type(msg, m) else {
            mediaoff += m.len;
            continue;
        };
        mediaoff += tlen;
        let medialen = m.len - tlen;
        // A port of zero is an inactive stream.
        let (port, _) = p::strtoul10(msg, mediaoff);
        if port == 0 {
            continue;
        }
        if !(1024..=65535).contains(&port) {
            return Err(msg::SIP_WRONG_PORT);
        }
        // The media description overrides the session's.
        let (mut addr, media_level) =
            match p::parse_sdp_addr(msg, mediaoff, SdpHeader::Connection, SdpHeader::Media) {
                Found::Yes((_, a)) => (a, true),
                _ => match caddr {
                    Some(a) => (a, false),
                    None => return Err(msg::SIP_CANNOT_PARSE_SDP),
                },
            };
        let media = Match {
            off: mediaoff,
            len: medialen,
        };
        set_expected_rtp_rtcp(cx, h, &mut addr, port as u16, class, media)
            .map_err(|_| msg::SIP_CANNOT_ADD_VOICE)?;
        rtp_addr = Some(addr);
        if media_level
            && cx.nat
            && !h.sdp_addr(cx, mediaoff, SdpHeader::Connection, SdpHeader::Media, addr)
        {
            return Err(msg::SIP_CANNOT_MANGLE_SDP);
        }
        i += 1;
    }
    // The session's owner and connection addresses. (Linux passes an
    // uninitialised address when no media line was used; ctsim leaves
    // them alone then.)
    if cx.nat {
        if let Some(a) = rtp_addr {
            if !h.sdp_session(cx, sdpoff, a) {
                return Err(msg::SIP_CANNOT_MANGLE_SDP);
            }
        }
    }
    Ok(())
}

/// A SIP expectation (`nf_ct_expect_init()` with the class's policy),
/// from `src` or any address, any source port.
pub(crate) fn sip_expectation(
    master: EntryKey,
    class: u8,
    proto: u8,
    src: Option<Ipv4Addr>,
    dst: Ipv4Addr,
    dport: u16,
) -> NewExpectation {
    let def = helper::by_name("sip", proto).unwrap_or(&helper::HELPERS[3]);
    let policy = def.policies[usize::from(class)];
    NewExpectation {
        tuple: Tuple::with_ports(
            IPPROTO_UDP,
            src.unwrap_or(Ipv4Addr::UNSPECIFIED),
            0,
            dst,
            dport,
        ),
        mask: ExpectMask {
            src: if src.is_some() {
                Ipv4Addr::BROADCAST
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            src_port: 0,
        },
        master,
        class,
        flags: 0,
        helper: def.name,
        child_helper: None,
        timeout: policy.timeout,
        max_expected: policy.max_expected,
        nat: None,
    }
}

/// `set_expected_rtp_rtcp()` with `sip_direct_media` = 1 (media only from
/// the signalling peer, and only for an address the sender names for
/// itself).
fn set_expected_rtp_rtcp(
    cx: &mut SipCx<'_>,
    h: &mut dyn SipNatHooks,
    daddr: &mut Ipv4Addr,
    port: u16,
    class: u8,
    media: Match,
) -> Res {
    let dir = cx.r.dir();
    let key = cx.r.key;
    let now = cx.now;
    if *daddr != tuple(cx, dir).src {
        return Ok(());
    }
    let saddr = tuple(cx, dir.opposite()).src;
    let my_proto = proto(cx);
    let zone = cx.ct.slots[key.idx as usize].zone;
    let mut t = Tuple::with_ports(IPPROTO_UDP, saddr, 0, *daddr, port);
    // Another SIP connection may already expect this media (the same call
    // seen twice): don't expect it again; with NAT on both, let the media
    // go directly to the final address.
    let mut direct_rtp = false;
    let mut skip_expect = false;
    while let Some(x) = cx.ct.find_expectation(&t, zone) {
        let same_helper = x.helper == "sip"
            && cx
                .ct
                .get(x.master)
                .is_some_and(|m| m.tuple[0].proto == my_proto);
        if x.master == key || !same_helper || x.class != class {
            break;
        }
        let (saved_addr, saved_port) = match x.nat {
            Some(f) => match f.expectfn {
                helper::ExpectFn::Sip { saved_addr, .. } => (saved_addr, f.saved_port),
                helper::ExpectFn::FollowMaster => (Ipv4Addr::UNSPECIFIED, f.saved_port),
            },
            None => (Ipv4Addr::UNSPECIFIED, 0),
        };
        if !direct_rtp && (saved_addr != x.tuple.dst || saved_port != x.tuple.dst_u) && cx.nat {
            *daddr = saved_addr;
            t.dst = saved_addr;
            t.dst_u = saved_port;
            direct_rtp = true;
        } else {
            skip_expect = true;
            break;
        }
    }
    let base = t.dst_u & !1;
    if direct_rtp && !h.sdp_port(cx, media, base) {
        return Err(msg::SIP_CANNOT_MANGLE_SDP);
    }
    if skip_expect {
        return Ok(());
    }
    let rtp = sip_expectation(key, class, my_proto, Some(saddr), *daddr, base);
    let rtcp = sip_expectation(
        key,
        class,
        my_proto,
        Some(saddr),
        *daddr,
        base.wrapping_add(1),
    );
    if cx.nat && !direct_rtp {
        return h.sdp_media(cx, rtp, rtcp, media, daddr);
    }
    // -EALREADY: endpoints that send one port for two media types, or the
    // same media on two connections; pretend it was set up.
    let ok = |r: Result<(), ExpectError>| matches!(r, Ok(()) | Err(ExpectError::Already));
    let errp = cx.ct.expect_related_flags(rtp, now, true);
    if !ok(errp) {
        return Err(msg::CANNOT_ADD_EXPECTATION);
    }
    let errcp = cx.ct.expect_related_flags(rtcp, now, true);
    if !ok(errcp) {
        if errp.is_ok() {
            cx.ct.unexpect_related(key, &rtp.tuple, now);
        }
        return Err(msg::CANNOT_ADD_EXPECTATION);
    }
    Ok(())
}

/// `process_register_request()`: a REGISTER for the sender's own Contact
/// (with `sip_direct_signalling` = 1) expects incoming requests from the
/// registrar to that address and port: PERMANENT and INACTIVE until the
/// registrar's 200 OK.
fn process_register_request(cx: &mut SipCx<'_>, h: &mut dyn SipNatHooks, cseq: u32) -> Res {
    let key = cx.r.key;
    let dir = cx.r.dir();
    let now = cx.now;
    // Expected connections cannot register again.
    if cx.ct.slots[key.idx as usize]
        .status
        .contains(Status::EXPECTED)
    {
        return Ok(());
    }
    let msg = cx.msg();
    let mut expires = match p::get_header(msg, 0, Header::Expires).0 {
        Found::Yes(m) => p::strtoul10(msg, m.off).0,
        _ => 0,
    };
    let c = match p::parse_header_uri(msg, 0, Header::Contact, None) {
        Found::Bad => return Err(msg::SIP_CANNOT_PARSE_CONTACT),
        Found::No => return Ok(()),
        Found::Yes(c) => c,
    };
    // No third-party registrations.
    if c.addr != tuple(cx, dir).src {
        return Ok(());
    }
    let Some(proto) = p::parse_transport(msg, c.m.off + c.m.len, proto(cx)) else {
        return Ok(());
    };
    match p::parse_numerical_param(msg, c.m.off + c.m.len, b"expires=") {
        Found::Bad => return Err(msg::SIP_CANNOT_PARSE_EXPIRES),
        Found::Yes((_, v)) => expires = v,
        Found::No => {}
    }
    if expires != 0 {
        let saddr = tuple(cx, dir.opposite()).src;
        let mut exp = sip_expectation(
            key,
            SIP_EXPECT_SIGNALLING,
            proto,
            Some(saddr),
            c.addr,
            c.port,
        );
        exp.tuple.proto = proto;
        exp.flags = PERMANENT | INACTIVE;
        exp.child_helper = Some(exp.helper);
        if cx.nat {
            h.expect(cx, exp, c.m)?;
        } else if cx.ct.expect_related(exp, now).is_err() {
            return Err(msg::CANNOT_ADD_EXPECTATION);
        }
    }
    cx.ct.sip_state_mut(key).register_cseq = cseq;
    Ok(())
}

/// `process_register_response()`: the registrar's 2xx activates the
/// signalling expectation for one of our Contacts with its lifetime; a
/// failure or an expiry of zero removes it.
fn process_register_response(cx: &mut SipCx<'_>, cseq: u32, code: u32) -> Res {
    let key = cx.r.key;
    let dir = cx.r.dir();
    let now = cx.now;
    if cx.ct.sip_state(key).unwrap_or_default().register_cseq != cseq {
        return Ok(());
    }
    if (100..=199).contains(&code) {
        return Ok(());
    }
    if (200..=299).contains(&code) {
        let our = tuple(cx, dir).dst;
        let my_proto = proto(cx);
        let msg = cx.msg();
        let expires = match p::get_header(msg, 0, Header::Expires).0 {
            Found::Yes(m) => p::strtoul10(msg, m.off).0,
            _ => 0,
        };
        let mut coff = 0;
        let mut in_contact = false;
        let mut refresh = None;
        loop {
            let mut c_expires = expires;
            let c = match p::parse_header_uri(msg, coff, Header::Contact, Some(&mut in_contact)) {
                Found::Bad => return Err(msg::SIP_CANNOT_PARSE_CONTACT),
                Found::No => break,
                Found::Yes(c) => c,
            };
            coff = c.end;
            if c.addr != our {
                continue;
            }
            let Some(proto) = p::parse_transport(msg, c.m.off + c.m.len, my_proto) else {
                continue;
            };
            match p::parse_numerical_param(msg, c.m.off + c.m.len, b"expires=") {
                Found::Bad => return Err(msg::SIP_CANNOT_PARSE_EXPIRES),
                Found::Yes((_, v)) => c_expires = v,
                Found::No => {}
            }
            if c_expires == 0 {
                break;
            }
            // Linux stops at the first Contact whose expectation it finds.
            let (a, po) = (c.addr, c.port);
            let known = cx.ct.expects_of(key).iter().any(|&i| {
                cx.ct.expects[i as usize].as_ref().is_some_and(|(x, _)| {
                    x.class == SIP_EXPECT_SIGNALLING
                        && x.tuple.dst == a
                        && x.tuple.proto == proto
                        && x.tuple.dst_u == po
                })
            });
            if known {
                refresh = Some((a, proto, po, c_expires));
                break;
            }
        }
        if let Some((a, pr, po, e)) = refresh {
            if cx.ct.sip_refresh_signalling(key, a, pr, po, e, now) {
                return Ok(());
            }
        }
    }
    cx.ct.sip_flush(key, false, now);
    Ok(())
}
