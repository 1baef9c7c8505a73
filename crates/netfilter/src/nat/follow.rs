//! NAT for expected connections (`nf_nat_follow_master()`;
//! reference/nat.md §7): a connection created from an expectation that a
//! NAT helper made gets its bindings from its master instead of the nat
//! table, so a data connection sent to the NAT address reaches the host
//! that asked for it, and leaves looking like the master.

use ctsim_conntrack::helper::ExpectFn;
use ctsim_conntrack::{BindError, Conntrack, CtInfo, EntryRef, Status};

use super::{setup, Manip, NatRange};

/// Binds the new entry of `r` as its master's NAT says, if it is an
/// expected connection whose expectation carried follow-master data and
/// has no binding yet: SRC to the address the master's packets in the
/// expecting direction are sent to, DST to the master's peer in that
/// direction and the port the payload originally named. Linux does this
/// inside `init_conntrack()`; call it right after
/// [`Conntrack::handle_packet`] (before the nat chains): afterwards
/// [`super::needs_binding`] is false for both manips, so the nat table is
/// not consulted for this connection, as on Linux.
///
/// Returns `Ok(true)` when it bound the entry, `Ok(false)` when there was
/// nothing to do (the usual case, decided without allocating).
pub fn follow_master(
    ct: &mut Conntrack,
    r: &EntryRef,
    rand: &mut dyn FnMut() -> u32,
) -> Result<bool, BindError> {
    if r.ctinfo() != CtInfo::Related {
        return Ok(false);
    }
    let key = r.key();
    let Some(e) = ct.get(key) else {
        return Ok(false);
    };
    if e.is_confirmed() || e.status().intersects(Status::NAT_DONE_MASK) {
        return Ok(false);
    }
    let Some(follow) = ct.help_ext(key).and_then(|h| h.follow) else {
        return Ok(false);
    };
    let Some(master) = ct.master_of(key).and_then(|m| ct.get(m)) else {
        return Ok(false);
    };
    if let ExpectFn::Sip { saved_addr, class } = follow.expectfn {
        return sip_expected(
            ct,
            r,
            follow.dir,
            follow.saved_port,
            saved_addr,
            class,
            rand,
        );
    }
    let t = *master.tuple(follow.dir.opposite());
    // "Change src to where master sends to".
    let src = NatRange {
        addrs: Some((t.dst, t.dst)),
        ..NatRange::default()
    };
    setup(ct, r, Manip::Src, Some(&src), rand)?;
    // "For DST manip, map port here to where it's expected."
    let dst = NatRange {
        addrs: Some((t.src, t.src)),
        ports: Some((follow.saved_port, follow.saved_port)),
        ..NatRange::default()
    };
    setup(ct, r, Manip::Dst, Some(&dst), rand)?;
    Ok(true)
}

/// `nf_nat_sip_expected()`: a media stream or an incoming call that a SIP
/// NAT helper expected. DST to where the SDP or Contact said
/// (`saved_addr:saved_port`); SRC, for media, to the NAT side of the
/// paired expectation whose saved address and port are this stream's
/// source (so RTP leaves from the port the other side was told), else,
/// when the connection comes from the master's address in the expecting
/// direction, to the address the master sends to. Without either, the
/// SRC binding is left to the nat table.
fn sip_expected(
    ct: &mut Conntrack,
    r: &EntryRef,
    dir: ctsim_conntrack::Dir,
    saved_port: u16,
    saved_addr: std::net::Ipv4Addr,
    class: u8,
    rand: &mut dyn FnMut() -> u32,
) -> Result<bool, BindError> {
    let key = r.key();
    let Some(master_key) = ct.master_of(key) else {
        return Ok(false);
    };
    let dst = NatRange {
        addrs: Some((saved_addr, saved_addr)),
        ports: Some((saved_port, saved_port)),
        ..NatRange::default()
    };
    setup(ct, r, Manip::Dst, Some(&dst), rand)?;
    let Some(orig) = ct.get(key).map(|e| *e.orig()) else {
        return Ok(true);
    };
    let mut src = None;
    if crate::helper::sip::is_media(class) {
        // help->expectations: newest first.
        let mut mine: Vec<_> = ct
            .expectations()
            .into_iter()
            .filter(|x| x.master == master_key)
            .collect();
        mine.reverse();
        src = mine.into_iter().find_map(|x| {
            let (a, p) = match x.nat {
                Some(f) => match f.expectfn {
                    ExpectFn::Sip { saved_addr, .. } => (saved_addr, f.saved_port),
                    ExpectFn::FollowMaster => (std::net::Ipv4Addr::UNSPECIFIED, f.saved_port),
                },
                None => (std::net::Ipv4Addr::UNSPECIFIED, 0),
            };
            (x.tuple.proto == orig.proto && orig.src == a && orig.src_u == p).then_some(NatRange {
                addrs: Some((x.tuple.dst, x.tuple.dst)),
                ports: Some((x.tuple.dst_u, x.tuple.dst_u)),
                ..NatRange::default()
            })
        });
    }
    if src.is_none() {
        let Some(m) = ct.get(master_key) else {
            return Ok(true);
        };
        if orig.src == m.tuple(dir).src {
            let to = m.tuple(dir.opposite()).dst;
            src = Some(NatRange {
                addrs: Some((to, to)),
                ..NatRange::default()
            });
        }
    }
    if let Some(range) = src {
        setup(ct, r, Manip::Src, Some(&range), rand)?;
    }
    Ok(true)
}
