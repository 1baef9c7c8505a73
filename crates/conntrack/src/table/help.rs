//! The table side of helpers (`nf_conntrack_helper.c` and each helper's
//! `help()` around its parser): which packets a helper looks at, the
//! expectations it builds from what the parser found, and the per-entry
//! state (FTP's newline tracking, sequence adjustment, follow-master data)
//! kept in the entry's boxed [`HelpExt`]. The parsers themselves are in
//! `crate::helper`.

use std::net::Ipv4Addr;

use super::{Conntrack, EntryKey, EntryRef, Status, NIL};
use crate::expect::{ExpectMask, NewExpectation, PERMANENT};
use crate::helper::{
    self, ftp, irc, msg, tftp, ExpectFn, FollowMaster, HelpCtx, HelpExt, HelpVerdict, HelperDef,
    HelperKind, NatJob, NatKind,
};
use crate::status::CtInfo;
use crate::tcp::{Dir, Seq};
use crate::time::Instant;
use crate::tuple::{Tuple, IPPROTO_TCP, IPPROTO_UDP};
use crate::wire;

/// A TCP segment's payload and where it sits in the datagram.
struct TcpPayload<'a> {
    seq: u32,
    /// Offset of the payload in the datagram.
    off: usize,
    data: &'a [u8],
}

fn tcp_payload(pkt: &[u8]) -> Option<TcpPayload<'_>> {
    let ip = wire::parse_ipv4(pkt).ok()?;
    if ip.proto != IPPROTO_TCP || ip.l4.len() < 20 {
        return None;
    }
    let doff = usize::from(ip.l4[12] >> 4) * 4;
    let data = ip.l4.get(doff..)?;
    let seq = u32::from_be_bytes([ip.l4[4], ip.l4[5], ip.l4[6], ip.l4[7]]);
    Some(TcpPayload {
        seq,
        off: ip.len - ip.l4.len() + doff,
        data,
    })
}

fn udp_payload(pkt: &[u8]) -> Option<&[u8]> {
    let ip = wire::parse_ipv4(pkt).ok()?;
    if ip.proto != IPPROTO_UDP {
        return None;
    }
    ip.l4.get(8..)
}

/// `nf_ct_expect_init()` for a helper's class-0 policy: `src` given or
/// any, source port any.
fn expectation(
    def: &HelperDef,
    master: EntryKey,
    proto: u8,
    src: Option<Ipv4Addr>,
    dst: Ipv4Addr,
    dport: u16,
) -> NewExpectation {
    let policy = def.policies[0];
    NewExpectation {
        tuple: Tuple::with_ports(proto, src.unwrap_or(Ipv4Addr::UNSPECIFIED), 0, dst, dport),
        mask: ExpectMask {
            src: if src.is_some() {
                Ipv4Addr::BROADCAST
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            src_port: 0,
        },
        master,
        class: 0,
        flags: 0,
        helper: def.name,
        child_helper: None,
        timeout: policy.timeout,
        max_expected: policy.max_expected,
        nat: None,
    }
}

/// `find_nl_seq()`.
fn after_newline(st: &helper::FtpState, seq: u32, d: usize) -> bool {
    let n = usize::from(st.seq_aft_nl_num[d]).min(2);
    st.seq_aft_nl[d][..n].contains(&seq)
}

/// `update_nl_seq()`: remember `nl_seq`, replacing the older of two if it
/// is newer.
fn update_newline(st: &mut helper::FtpState, nl_seq: u32, d: usize) {
    let n = usize::from(st.seq_aft_nl_num[d]).min(2);
    if st.seq_aft_nl[d][..n].contains(&nl_seq) {
        return;
    }
    if n < 2 {
        st.seq_aft_nl[d][n] = nl_seq;
        st.seq_aft_nl_num[d] += 1;
    } else {
        let s = &mut st.seq_aft_nl[d];
        let oldest = usize::from(!Seq(s[0]).before(Seq(s[1])));
        if Seq(nl_seq).after(Seq(s[oldest])) {
            s[oldest] = nl_seq;
        }
    }
}

impl Conntrack {
    /// The helper's part of the confirm hook (`helper->help()` as
    /// `nf_confirm()` calls it): for a packet of an entry with a helper,
    /// parse the payload and create expectations. On a NATed connection
    /// (IPS_SRC_NAT or IPS_DST_NAT) FTP and IRC return a [`NatJob`] for
    /// the NAT layer instead of inserting the expectation themselves.
    /// RELATED_REPLY packets (ICMP errors) are never given to helpers.
    ///
    /// Call it once per packet, before [`Conntrack::confirm`]; it does
    /// nothing (and allocates nothing) for an entry without a helper.
    pub fn help(&mut self, r: &EntryRef, pkt: &[u8], ctx: &HelpCtx, now: Instant) -> HelpVerdict {
        let Some(e) = self.get(r.key) else {
            return HelpVerdict::Accept;
        };
        let Some(name) = e.helper else {
            return HelpVerdict::Accept;
        };
        if r.ctinfo == CtInfo::RelatedReply {
            return HelpVerdict::Accept;
        }
        let Some(def) = helper::by_name(name, e.tuple[0].proto) else {
            return HelpVerdict::Accept;
        };
        match def.kind {
            HelperKind::Ftp => self.help_ftp(def, r, pkt, now),
            HelperKind::Tftp => self.help_tftp(def, r, pkt, now),
            HelperKind::Irc => self.help_irc(def, r, pkt, now),
            HelperKind::Snmp | HelperKind::NetbiosNs => self.help_broadcast(def, r, ctx, now),
            HelperKind::Sip => self.help_sip(r, pkt, now),
        }
    }

    /// `help()` of nf_conntrack_ftp.c.
    fn help_ftp(
        &mut self,
        def: &'static HelperDef,
        r: &EntryRef,
        pkt: &[u8],
        now: Instant,
    ) -> HelpVerdict {
        // Until there's been traffic both ways, don't look in packets.
        if !matches!(r.ctinfo, CtInfo::Established | CtInfo::EstablishedReply) {
            return HelpVerdict::Accept;
        }
        let Some(p) = tcp_payload(pkt) else {
            return HelpVerdict::Accept;
        };
        let Some(&last) = p.data.last() else {
            return HelpVerdict::Accept;
        };
        let (dir, d) = (r.dir(), r.dir() as usize);
        let idx = r.key.idx as usize;
        let ends_in_nl = last == b'\n';
        let nl_seq = p.seq.wrapping_add(p.data.len() as u32);
        let state = self.slots[idx].help.get_or_insert_with(Box::default);
        let verdict = if !after_newline(&state.ftp, p.seq, d) {
            // Not at the start of a line we know of (the first segment of
            // each direction is never parsed).
            HelpVerdict::Accept
        } else {
            match ftp::find(p.data, dir) {
                ftp::Found::Partial(m) => return HelpVerdict::Drop(m),
                ftp::Found::None => HelpVerdict::Accept,
                ftp::Found::Match(m) => self.ftp_expect(def, r, &m, p.off, now),
            }
        };
        if ends_in_nl {
            if let Some(h) = self.slots[idx].help.as_mut() {
                update_newline(&mut h.ftp, nl_seq, d);
            }
        }
        verdict
    }

    /// The expectation part of FTP's `help()` for a parsed command.
    fn ftp_expect(
        &mut self,
        def: &HelperDef,
        r: &EntryRef,
        m: &ftp::FtpMatch,
        payload_off: usize,
        now: Instant,
    ) -> HelpVerdict {
        let e = &self.slots[r.key.idx as usize];
        let dir = r.dir();
        let (this, other) = (e.tuple[dir as usize], e.tuple[dir.opposite() as usize]);
        // A command naming another host than its sender opens no hole
        // (module parameter `loose` = 0).
        if m.addr.is_some_and(|a| a != this.src) {
            return HelpVerdict::Accept;
        }
        let exp = expectation(def, r.key, IPPROTO_TCP, Some(other.src), other.dst, m.port);
        if e.status.intersects(Status::NAT_MASK) {
            return HelpVerdict::Nat(NatJob {
                kind: NatKind::Ftp(m.kind),
                exp,
                off: payload_off + m.off,
                len: m.len,
                dir,
            });
        }
        self.insert_expectation(exp, now)
    }

    /// `nf_ct_expect_related()` as helpers call it: "Can't expect this?
    /// Best to drop packet now."
    fn insert_expectation(&mut self, exp: NewExpectation, now: Instant) -> HelpVerdict {
        match self.expect_related(exp, now) {
            Ok(()) => HelpVerdict::Accept,
            Err(_) => HelpVerdict::Drop(msg::CANNOT_ADD_EXPECTATION),
        }
    }

    /// `tftp_help()` with `nf_nat_tftp`'s part (which only records how the
    /// child's NAT follows the master).
    fn help_tftp(
        &mut self,
        def: &HelperDef,
        r: &EntryRef,
        pkt: &[u8],
        now: Instant,
    ) -> HelpVerdict {
        if !udp_payload(pkt).is_some_and(tftp::is_request) {
            return HelpVerdict::Accept;
        }
        let e = &self.slots[r.key.idx as usize];
        let reply = e.tuple[1];
        let mut exp = expectation(
            def,
            r.key,
            IPPROTO_UDP,
            Some(reply.src),
            reply.dst,
            reply.dst_u,
        );
        if e.status.intersects(Status::NAT_MASK) {
            exp.nat = Some(FollowMaster {
                dir: Dir::Reply,
                saved_port: e.tuple[0].src_u,
                expectfn: ExpectFn::FollowMaster,
            });
        }
        self.insert_expectation(exp, now)
    }

    /// `help()` of nf_conntrack_irc.c: DCC offers in client→server data.
    fn help_irc(&mut self, def: &HelperDef, r: &EntryRef, pkt: &[u8], now: Instant) -> HelpVerdict {
        if r.ctinfo != CtInfo::Established {
            return HelpVerdict::Accept;
        }
        let Some(p) = tcp_payload(pkt) else {
            return HelpVerdict::Accept;
        };
        let e = &self.slots[r.key.idx as usize];
        let (orig, reply) = (e.tuple[0], e.tuple[1]);
        // "dcc_ip can be the internal OR external (NAT'ed) IP".
        let mut forged = None;
        let found = irc::find(p.data, |ip, port| {
            let a = Ipv4Addr::from(ip);
            let ok = (a == orig.src || a == reply.dst) && port != 0;
            if !ok && forged.is_none() {
                forged = Some((a, port));
            }
            ok
        });
        if let Some((a, port)) = forged {
            let text = format!("Forged DCC command from {}: {a}:{port}", orig.src);
            self.kernel_log(now, &text);
        }
        let Some(dcc) = found else {
            return HelpVerdict::Accept;
        };
        let exp = expectation(def, r.key, IPPROTO_TCP, None, reply.dst, dcc.port);
        if self.slots[r.key.idx as usize]
            .status
            .intersects(Status::NAT_MASK)
        {
            return HelpVerdict::Nat(NatJob {
                kind: NatKind::Irc,
                exp,
                off: p.off + dcc.off,
                len: dcc.len,
                dir: Dir::Original,
            });
        }
        self.insert_expectation(exp, now)
    }

    /// `nf_conntrack_broadcast_help()` (snmp, netbios-ns): a query this
    /// node sends to a broadcast address expects answers from any host of
    /// that subnet, from the helper's port; the expectation is PERMANENT
    /// (every answer matches it) and the master is kept alive as long.
    fn help_broadcast(
        &mut self,
        def: &HelperDef,
        r: &EntryRef,
        ctx: &HelpCtx,
        now: Instant,
    ) -> HelpVerdict {
        if !ctx.local || r.dir() != Dir::Original {
            return HelpVerdict::Accept;
        }
        let Some(mask) = ctx.broadcast_mask.filter(|m| !m.is_unspecified()) else {
            return HelpVerdict::Accept;
        };
        let e = &self.slots[r.key.idx as usize];
        let mut tuple = e.tuple[1];
        tuple.src_u = def.port;
        let policy = def.policies[0];
        let exp = NewExpectation {
            tuple,
            mask: ExpectMask {
                src: mask,
                src_port: 0xffff,
            },
            master: r.key,
            class: 0,
            flags: PERMANENT,
            helper: def.name,
            child_helper: None,
            timeout: policy.timeout,
            max_expected: policy.max_expected,
            nat: None,
        };
        // The broadcast helper ignores a failed insertion.
        let _ = self.expect_related(exp, now);
        self.refresh(r.key.idx, policy.timeout, now);
        HelpVerdict::Accept
    }

    /// Pre-6.0 automatic assignment (`__nf_ct_try_assign_helper()` with
    /// `nf_conntrack_helper=1`): the helper whose port is the REPLY
    /// tuple's source port, i.e. the destination port of the connection.
    /// Also re-run by [`Conntrack::nat_bind`] when a binding changes the
    /// REPLY tuple (Linux's `nf_conntrack_alter_reply()`), unless a
    /// template assigned the helper.
    pub(super) fn auto_assign_helper(&mut self, idx: u32) {
        let e = &mut self.slots[idx as usize];
        if e.status.contains(Status::HELPER) || e.master != NIL {
            return;
        }
        let reply = e.tuple[1];
        e.helper = helper::by_port(reply.proto, reply.src_u).map(|h| h.name);
        if e.helper.is_some() {
            e.help.get_or_insert_with(Box::default);
        }
    }

    // ------------------------------------------------------------ accessors

    /// The entry's helper data (sequence adjustment, FTP state, the NAT an
    /// expected connection must follow), if it has any.
    pub fn help_ext(&self, key: EntryKey) -> Option<&HelpExt> {
        self.get(key)?.help.as_deref()
    }

    /// The master of an expected connection.
    pub fn master_of(&self, key: EntryKey) -> Option<EntryKey> {
        let e = self.get(key)?;
        (e.master != NIL).then(|| EntryKey {
            idx: e.master,
            gen: self.slots[e.master as usize].gen,
        })
    }

    /// `nf_ct_seqadj_set()`: the segment of direction `dir` starting at
    /// `seq` was resized by `off` bytes. Sets IPS_SEQ_ADJUST.
    pub fn seqadj_record(&mut self, key: EntryKey, dir: Dir, seq: u32, off: i32) {
        if off == 0 || self.get(key).is_none() {
            return;
        }
        let e = &mut self.slots[key.idx as usize];
        e.status.insert(Status::SEQ_ADJUST);
        e.help.get_or_insert_with(Box::default).seqadj[dir as usize].record(seq, off);
    }

    /// `nf_ct_unexpect_related()`: remove `master`'s expectation of
    /// `tuple` (a NAT helper that could not rewrite its packet). Returns
    /// whether one was removed.
    pub fn unexpect_related(&mut self, master: EntryKey, tuple: &Tuple, now: Instant) -> bool {
        let found = self
            .expects
            .iter()
            .position(|s| matches!(s, Some((x, _)) if x.master == master && x.tuple == *tuple));
        match found {
            Some(i) => {
                self.unlink_expect(i as u32, now);
                true
            }
            None => false,
        }
    }

    /// Counts a packet conntrack's confirm hook dropped (`drop` in
    /// `conntrack -S`), as Linux does when sequence adjustment fails.
    pub fn count_drop(&mut self) {
        self.stats.drop += 1;
    }
}
