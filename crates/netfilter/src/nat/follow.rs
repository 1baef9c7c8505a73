//! NAT for expected connections (`nf_nat_follow_master()`;
//! reference/nat.md §7): a connection created from an expectation that a
//! NAT helper made gets its bindings from its master instead of the nat
//! table, so a data connection sent to the NAT address reaches the host
//! that asked for it, and leaves looking like the master.

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
