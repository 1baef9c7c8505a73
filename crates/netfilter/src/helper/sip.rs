//! The SIP NAT helper (`nf_nat_sip.c`; reference/helpers-and-expectations.md
//! §7): the hooks ctsim-conntrack's SIP helper calls while it parses a
//! NATed connection's message. Addresses and ports in the Request-URI,
//! the topmost Via (and its `maddr=`, `received=`, `rport=`), Contact,
//! From and To become the NAT side's; SDP `o=`, `c=` and `m=` name the
//! NAT address and the port pair the router now expects media on, and
//! Content-Length follows the body. A UDP datagram gets its new length
//! and checksum; a TCP segment's length change is recorded once per
//! segment for sequence adjustment.

use std::net::Ipv4Addr;

use ctsim_conntrack::expect::{ExpectError, NewExpectation};
use ctsim_conntrack::helper::sip::{
    self as p, Found, Header, Match, SdpHeader, SipCx, SipNatHooks, SIP_EXPECT_SIGNALLING,
};
use ctsim_conntrack::helper::{ExpectFn, FollowMaster, HelpVerdict};
use ctsim_conntrack::time::Instant;
use ctsim_conntrack::tuple::{Tuple, IPPROTO_TCP, IPPROTO_UDP};
use ctsim_conntrack::{Conntrack, Dir, EntryRef};

use super::{find_port, l4_pseudo_sum, replace_tcp, splice_l4};

/// Runs the SIP helper on a NATed connection with the NAT hooks
/// (`HelpVerdict::SipNat` in the confirm hook). `Err`: drop, with the
/// helper's log text.
pub fn nat_help(
    ct: &mut Conntrack,
    r: &EntryRef,
    pkt: &mut Vec<u8>,
    now: Instant,
    rand: &mut dyn FnMut() -> u32,
) -> Result<(), &'static str> {
    let mut hooks = SipNat { rand };
    match ct.help_sip_nat(r, pkt, &mut hooks, now) {
        HelpVerdict::Drop(reason) => Err(reason),
        _ => Ok(()),
    }
}

/// `nf_nat_sip_hooks` with the router's RNG (the REGISTER expectation's
/// port search).
struct SipNat<'a> {
    rand: &'a mut dyn FnMut() -> u32,
}

fn tuples(cx: &SipCx<'_>) -> (Tuple, Tuple) {
    let dir = cx.r.dir();
    let e = cx.ct.get(cx.r.key()).expect("helped entry");
    (*e.tuple(dir), *e.tuple(dir.opposite()))
}

fn forced_dport(cx: &SipCx<'_>) -> u16 {
    cx.ct.sip_state(cx.r.key()).map_or(0, |s| s.forced_dport)
}

/// `nf_nat_mangle_udp_packet()`: replace `match_len` bytes at `off` (from
/// the start of the datagram), fix the IP and UDP lengths and checksums
/// (a UDP checksum of zero stays zero). `false` when the range is not in
/// the datagram or it would exceed 65535 bytes.
pub fn mangle_udp(pkt: &mut Vec<u8>, off: usize, match_len: usize, rep: &[u8]) -> bool {
    let Some(ihl) = splice_l4(pkt, IPPROTO_UDP, 8, off, match_len, rep) else {
        return false;
    };
    let udp_len = (pkt.len() - ihl) as u16;
    pkt[ihl + 4..ihl + 6].copy_from_slice(&udp_len.to_be_bytes());
    udp_checksum(pkt, ihl);
    true
}

/// Recomputes a UDP checksum unless the sender sent none (zero);
/// a computed zero is sent as 0xffff (`CSUM_MANGLED_0`).
fn udp_checksum(pkt: &mut [u8], ihl: usize) {
    if pkt[ihl + 6..ihl + 8] == [0, 0] {
        return;
    }
    pkt[ihl + 6..ihl + 8].copy_from_slice(&[0, 0]);
    let mut sum = !l4_pseudo_sum(pkt, ihl, IPPROTO_UDP);
    if sum == 0 {
        sum = 0xffff;
    }
    pkt[ihl + 6..ihl + 8].copy_from_slice(&sum.to_be_bytes());
}

/// `mangle_packet()`: replace `m` of the message with `rep` (the TCP
/// variant without recording the length change: SIP records one sum per
/// segment) and follow the message's new length.
fn mangle(cx: &mut SipCx<'_>, m: Match, rep: &[u8]) -> bool {
    let off = cx.dataoff + m.off;
    let tcp = cx.pkt.bytes().get(9) == Some(&IPPROTO_TCP);
    let Some(pkt) = cx.pkt.vec_mut() else {
        return false;
    };
    let ok = if tcp {
        replace_tcp(pkt, off, m.len, rep).is_some()
    } else {
        mangle_udp(pkt, off, m.len, rep)
    };
    if ok {
        cx.datalen = cx.datalen + rep.len() - m.len;
    }
    ok
}

/// `map_addr()`: an address:port that is one end of this connection
/// becomes what the other side sees of it.
fn map_addr(cx: &mut SipCx<'_>, m: Match, addr: Ipv4Addr, port: u16) -> bool {
    let (this, other) = tuples(cx);
    let (newaddr, newport) = if addr == this.src && port == this.src_u {
        (other.dst, other.dst_u)
    } else if addr == this.dst && port == this.dst_u {
        let forced = forced_dport(cx);
        (other.src, if forced != 0 { forced } else { other.src_u })
    } else {
        return true;
    };
    if newaddr == addr && newport == port {
        return true;
    }
    mangle(cx, m, format!("{newaddr}:{newport}").as_bytes())
}

/// `map_sip_addr()`.
fn map_sip_addr(cx: &mut SipCx<'_>, h: Header) -> bool {
    match p::parse_header_uri(cx.msg(), 0, h, None) {
        Found::Yes(u) => map_addr(cx, u.m, u.addr, u.port),
        _ => true,
    }
}

/// `mangle_content_len()`: Content-Length = the bytes from `v=` on.
fn mangle_content_len(cx: &mut SipCx<'_>) -> bool {
    let msg = cx.msg();
    let Found::Yes(v) = p::get_sdp_header(msg, 0, SdpHeader::Version, SdpHeader::Unspec) else {
        return false;
    };
    let c_len = cx.datalen - v.off + 2;
    let Found::Yes(cl) = p::get_header(msg, 0, Header::ContentLength).0 else {
        return false;
    };
    mangle(cx, cl, c_len.to_string().as_bytes())
}

/// `mangle_sdp_packet()`: `None` when there is no such line
/// (`-ENOENT`), `Some(false)` when it could not be rewritten.
fn mangle_sdp(
    cx: &mut SipCx<'_>,
    sdpoff: usize,
    ty: SdpHeader,
    term: SdpHeader,
    rep: &[u8],
) -> Option<bool> {
    match p::get_sdp_header(cx.msg(), sdpoff, ty, term) {
        Found::Yes(m) => Some(mangle(cx, m, rep)),
        _ => None,
    }
}

impl SipNatHooks for SipNat<'_> {
    fn msg(&mut self, cx: &mut SipCx<'_>) -> Result<(), &'static str> {
        let dir = cx.r.dir();
        let (this, other) = tuples(cx);
        let request = !p::has_prefix(cx.msg(), b"SIP/2.0");
        if request {
            if let Found::Yes(u) = p::parse_request(cx.msg()) {
                if !map_addr(cx, u.m, u.addr, u.port) {
                    return Err("cannot mangle SIP message");
                }
            }
        }
        let via = if this.proto == IPPROTO_TCP {
            Header::ViaTcp
        } else {
            Header::ViaUdp
        };
        // The topmost Via, if it is this connection's.
        if let Found::Yes(u) = p::parse_header_uri(cx.msg(), 0, via, None) {
            let ours = if request {
                u.addr == this.src && u.port == this.src_u
            } else {
                u.addr == this.dst && u.port == this.dst_u
            };
            if ours {
                let olen = cx.datalen;
                if !map_addr(cx, u.m, u.addr, u.port) {
                    return Err("cannot mangle Via header");
                }
                let matchend = u.m.off + u.m.len + cx.datalen - olen;
                // maddr= (RFC 2361): where to send the reply.
                if let Some((pm, a)) = p::parse_address_param(cx.msg(), matchend, b"maddr=") {
                    if a == this.src
                        && a != other.dst
                        && !mangle(cx, pm, other.dst.to_string().as_bytes())
                    {
                        return Err("cannot mangle maddr");
                    }
                }
                // received= (RFC 2361): where the server got the request from.
                if let Some((pm, a)) = p::parse_address_param(cx.msg(), matchend, b"received=") {
                    if a == this.dst
                        && a != other.src
                        && !mangle(cx, pm, other.src.to_string().as_bytes())
                    {
                        return Err("cannot mangle received");
                    }
                }
                // rport= (RFC 3581): the port it came from.
                if let Found::Yes((pm, n)) = p::parse_numerical_param(cx.msg(), matchend, b"rport=")
                {
                    let n = n as u16;
                    if n == this.dst_u
                        && n != other.src_u
                        && !mangle(cx, pm, other.src_u.to_string().as_bytes())
                    {
                        return Err("cannot mangle rport");
                    }
                }
            }
        }
        // Every Contact. The walk goes on from where each address ended
        // before it was rewritten, as Linux's does.
        let mut coff = 0;
        let mut in_header = false;
        while let Found::Yes(u) =
            p::parse_header_uri(cx.msg(), coff, Header::Contact, Some(&mut in_header))
        {
            coff = u.end;
            if !map_addr(cx, u.m, u.addr, u.port) {
                return Err("cannot mangle contact");
            }
        }
        if !map_sip_addr(cx, Header::From) || !map_sip_addr(cx, Header::To) {
            return Err("cannot mangle SIP from/to");
        }
        // Cisco phones: replies go to the Via port (UDP only in ctsim).
        let forced = forced_dport(cx);
        if dir == Dir::Reply && forced != 0 && this.proto == IPPROTO_UDP {
            let Some(pkt) = cx.pkt.vec_mut() else {
                return Err("cannot mangle packet");
            };
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            if pkt.len() < ihl + 8 {
                return Err("cannot mangle packet");
            }
            pkt[ihl + 2..ihl + 4].copy_from_slice(&forced.to_be_bytes());
            udp_checksum(pkt, ihl);
        }
        Ok(())
    }

    fn seq_adjust(&mut self, cx: &mut SipCx<'_>, off: i32) {
        let b = cx.pkt.bytes();
        if off == 0 || b.get(9) != Some(&IPPROTO_TCP) {
            return;
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let Some(s) = b.get(ihl + 4..ihl + 8) else {
            return;
        };
        let seq = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        cx.ct.seqadj_record(cx.r.key(), cx.r.dir(), seq, off);
    }

    fn expect(
        &mut self,
        cx: &mut SipCx<'_>,
        mut exp: NewExpectation,
        m: Match,
    ) -> Result<(), &'static str> {
        let dir = cx.r.dir();
        let (this, other) = tuples(cx);
        // The connection will come from the reply side.
        let newaddr = if this.src == other.dst {
            exp.tuple.dst
        } else {
            other.dst
        };
        // A signalling port equal to our source port maps to the port the
        // other side sees.
        let forced = forced_dport(cx);
        let srcport = if forced != 0 { forced } else { this.src_u };
        let port = if exp.tuple.dst_u == srcport {
            other.dst_u
        } else {
            exp.tuple.dst_u
        };
        let saved_addr = exp.tuple.dst;
        let saved_port = exp.tuple.dst_u;
        exp.tuple.dst = newaddr;
        exp.nat = Some(FollowMaster {
            dir: dir.opposite(),
            saved_port,
            expectfn: ExpectFn::Sip {
                saved_addr,
                class: exp.class,
            },
        });
        exp.tuple.dst_u = port;
        let now = cx.now;
        let Some(port) = find_port(cx.ct, &mut exp, now, self.rand) else {
            return Err("all ports in use for SIP");
        };
        if (exp.tuple.dst != saved_addr || port != saved_port)
            && !mangle(cx, m, format!("{newaddr}:{port}").as_bytes())
        {
            cx.ct.unexpect_related(cx.r.key(), &exp.tuple, now);
            return Err("cannot mangle packet");
        }
        Ok(())
    }

    fn sdp_addr(
        &mut self,
        cx: &mut SipCx<'_>,
        sdpoff: usize,
        ty: SdpHeader,
        term: SdpHeader,
        addr: Ipv4Addr,
    ) -> bool {
        mangle_sdp(cx, sdpoff, ty, term, addr.to_string().as_bytes()) == Some(true)
            && mangle_content_len(cx)
    }

    fn sdp_port(&mut self, cx: &mut SipCx<'_>, m: Match, port: u16) -> bool {
        mangle(cx, m, port.to_string().as_bytes()) && mangle_content_len(cx)
    }

    fn sdp_session(&mut self, cx: &mut SipCx<'_>, sdpoff: usize, addr: Ipv4Addr) -> bool {
        let text = addr.to_string();
        if mangle_sdp(
            cx,
            sdpoff,
            SdpHeader::Owner,
            SdpHeader::Media,
            text.as_bytes(),
        ) != Some(true)
        {
            return false;
        }
        // RFC 2327: the session's c= may be absent if every medium has one.
        if mangle_sdp(
            cx,
            sdpoff,
            SdpHeader::Connection,
            SdpHeader::Media,
            text.as_bytes(),
        ) == Some(false)
        {
            return false;
        }
        mangle_content_len(cx)
    }

    fn sdp_media(
        &mut self,
        cx: &mut SipCx<'_>,
        mut rtp: NewExpectation,
        mut rtcp: NewExpectation,
        media: Match,
        rtp_addr: &mut Ipv4Addr,
    ) -> Result<(), &'static str> {
        let dir = cx.r.dir();
        let key = cx.r.key();
        let now = cx.now;
        let (this, other) = tuples(cx);
        // The media will come from the reply side.
        *rtp_addr = if this.src == other.dst {
            rtp.tuple.dst
        } else {
            other.dst
        };
        for x in [&mut rtp, &mut rtcp] {
            let saved_addr = x.tuple.dst;
            x.tuple.dst = *rtp_addr;
            x.nat = Some(FollowMaster {
                dir: dir.opposite(),
                saved_port: x.tuple.dst_u,
                expectfn: ExpectFn::Sip {
                    saved_addr,
                    class: x.class,
                },
            });
        }
        let saved_port = rtp.tuple.dst_u;
        // The same pair of ports if possible, else the next free pair.
        let mut port = rtp.tuple.dst_u;
        while port != 0 {
            rtp.tuple.dst_u = port;
            match cx.ct.expect_related_flags(rtp, now, true) {
                Err(ExpectError::Busy) => {
                    port = port.wrapping_add(2);
                    continue;
                }
                Err(_) => {
                    port = 0;
                    break;
                }
                Ok(()) => {}
            }
            rtcp.tuple.dst_u = port.wrapping_add(1);
            match cx.ct.expect_related_flags(rtcp, now, true) {
                Ok(()) => break,
                Err(ExpectError::Busy) => {
                    cx.ct.unexpect_related(key, &rtp.tuple, now);
                    port = port.wrapping_add(2);
                }
                Err(_) => {
                    cx.ct.unexpect_related(key, &rtp.tuple, now);
                    port = 0;
                    break;
                }
            }
        }
        if port == 0 {
            return Err("all ports in use for SDP media");
        }
        if rtp.tuple.dst_u != saved_port && !self.sdp_port(cx, media, port) {
            cx.ct.unexpect_related(key, &rtp.tuple, now);
            cx.ct.unexpect_related(key, &rtcp.tuple, now);
            return Err("cannot mangle SDP message");
        }
        Ok(())
    }
}

/// Whether an expectation class is a media one (`nf_nat_sip_expected()`
/// looks for a pair only for those).
pub(crate) fn is_media(class: u8) -> bool {
    class != SIP_EXPECT_SIGNALLING
}
