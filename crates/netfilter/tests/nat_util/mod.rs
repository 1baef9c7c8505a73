//! A minimal router around conntrack and NAT for the NAT tests: lookup
//! at PRE_ROUTING (or LOCAL_OUT), DNAT, SNAT at POST_ROUTING, confirm, in
//! hook order; a seeded generator stands for the router's RNG.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use ctsim_conntrack::time::Instant;
use ctsim_conntrack::{Conntrack, CtHook, CtInfo, EntryKey, FormatOpts, Sysctls, Verdict, Zone};
use ctsim_netfilter::nat::{self, Binding, Manip, NatRange};

pub const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const S: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The router's WAN address.
pub const N: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// A packet literal's bytes.
pub fn lit(text: &str) -> Vec<u8> {
    ctsim_packet::parse(text, &|_| None).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Bytes from hex digits, whitespace ignored.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// SplitMix64: the tests' stand-in for the router's ChaCha stream.
pub fn next_rand(state: &mut u64) -> u32 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

/// What happened to one packet.
#[derive(Debug)]
pub struct Out {
    /// The packet as it left, as a literal.
    pub packet: String,
    pub bytes: Vec<u8>,
    pub ctinfo: CtInfo,
    pub key: EntryKey,
    pub dnat: Option<Binding>,
    pub snat: Option<Binding>,
    pub dropped: bool,
}

pub struct Router {
    pub ct: Conntrack,
    pub rng: u64,
    pub now: Instant,
}

impl Router {
    pub fn new() -> Router {
        Router::seeded(1)
    }
    pub fn seeded(seed: u64) -> Router {
        Router::with(Sysctls::default(), seed)
    }
    pub fn with(sys: Sysctls, seed: u64) -> Router {
        Router {
            ct: Conntrack::new(sys),
            rng: seed,
            now: Instant(0),
        }
    }

    /// The entry's `conntrack -L` line now.
    pub fn line(&self, key: EntryKey) -> String {
        self.ct
            .entry_line(key, FormatOpts::default(), self.now)
            .unwrap()
    }

    /// A received packet that is forwarded: PRE_ROUTING (DNAT into
    /// `dnat`) then POST_ROUTING (SNAT into `snat`); `None` makes a null
    /// binding for a first packet.
    pub fn forward(&mut self, text: &str, dnat: Option<NatRange>, snat: Option<NatRange>) -> Out {
        self.forward_bytes(lit(text), dnat, snat)
    }

    pub fn forward_bytes(
        &mut self,
        pkt: Vec<u8>,
        dnat: Option<NatRange>,
        snat: Option<NatRange>,
    ) -> Out {
        self.run(pkt, CtHook::PreRouting, dnat, snat)
    }

    /// A packet the router sends itself: LOCAL_OUT then POST_ROUTING,
    /// without rules.
    pub fn output(&mut self, text: &str) -> Out {
        self.run(lit(text), CtHook::LocalOut, None, None)
    }

    pub fn run(
        &mut self,
        pkt: Vec<u8>,
        hook: CtHook,
        dnat: Option<NatRange>,
        snat: Option<NatRange>,
    ) -> Out {
        self.try_run(pkt, hook, dnat, snat)
            .unwrap_or_else(|inv| panic!("untracked: {inv}"))
    }

    /// [`run`](Self::run), or why conntrack did not track the packet.
    pub fn try_run(
        &mut self,
        mut pkt: Vec<u8>,
        hook: CtHook,
        dnat: Option<NatRange>,
        snat: Option<NatRange>,
    ) -> Result<Out, String> {
        let res = self.ct.handle_packet(&pkt, hook, Zone(0), self.now);
        let h = res
            .ct
            .ok_or_else(|| format!("{:?} {:?}", res.invalid, res.verdict))?;
        let mut out = Out {
            packet: String::new(),
            bytes: Vec::new(),
            ctinfo: h.ctinfo(),
            key: h.key(),
            dnat: None,
            snat: None,
            dropped: false,
        };
        for (manip, range) in [(Manip::Dst, dnat), (Manip::Src, snat)] {
            if nat::needs_binding(&self.ct, &h, manip, &pkt) {
                let rng = &mut self.rng;
                let b = nat::setup(&mut self.ct, &h, manip, range.as_ref(), &mut || {
                    next_rand(rng)
                });
                let b = b.expect("binding");
                match manip {
                    Manip::Dst => out.dnat = Some(b),
                    Manip::Src => out.snat = Some(b),
                }
            }
            if !nat::packet(&self.ct, &h, manip, &mut pkt) {
                out.dropped = true;
                self.ct.release(h);
                return Ok(out.with(pkt));
            }
        }
        let c = self.ct.confirm(h, self.now);
        out.dropped = c.verdict != Verdict::Accept;
        out.key = c.key.unwrap_or(out.key);
        Ok(out.with(pkt))
    }
}

impl Out {
    fn with(mut self, pkt: Vec<u8>) -> Out {
        self.packet = ctsim_packet::show(&pkt);
        self.bytes = pkt;
        self
    }
}

/// One's complement sum of 16-bit words, folded.
fn sum(data: &[u8], mut acc: u64) -> u16 {
    for w in data.chunks(2) {
        acc += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether a whole IPv4 datagram's IP header and TCP/UDP/ICMP checksums
/// verify (UDP checksum 0 = none).
pub fn checksums_ok(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if sum(&p[..ihl], 0) != 0xffff {
        return false;
    }
    let l4 = &p[ihl..];
    let pseudo = u64::from(sum(&p[12..20], 0)) + u64::from(p[9]) + l4.len() as u64;
    match p[9] {
        6 => sum(l4, pseudo) == 0xffff,
        17 => (l4[6] == 0 && l4[7] == 0) || sum(l4, pseudo) == 0xffff,
        1 => sum(l4, 0) == 0xffff,
        _ => true,
    }
}

/// What became of one packet in [`forward_helped`].
pub struct Step {
    pub bytes: Vec<u8>,
    pub ctinfo: Option<CtInfo>,
    pub key: Option<EntryKey>,
    pub verdict: Verdict,
}

/// One forwarded packet through the hook chain in Linux's order, helpers
/// included: conntrack, the CT template (`helper` names the helper a new
/// connection gets, from its ORIGINAL tuple), follow-master, DNAT, SNAT
/// (`masq`: new connections from the client to N), the helper with
/// sequence adjustment, confirm. Checksums must be right at the end.
pub fn forward_helped(
    rt: &mut Router,
    mut pkt: Vec<u8>,
    masq: bool,
    helper: &dyn Fn(&ctsim_conntrack::Tuple) -> Option<&'static str>,
) -> Step {
    use ctsim_conntrack::helper::HelpCtx;
    let res = rt
        .ct
        .handle_packet(&pkt, CtHook::PreRouting, Zone(0), rt.now);
    let Some(h) = res.ct else {
        return Step {
            bytes: pkt,
            ctinfo: None,
            key: None,
            verdict: Verdict::Drop { reason: "INVALID" },
        };
    };
    let orig = *rt.ct.get(h.key()).expect("entry").orig();
    if let (Some(name), CtInfo::New) = (helper(&orig), h.ctinfo()) {
        rt.ct.set_helper(h.key(), name);
    }
    let rng = &mut rt.rng;
    let mut rand = || next_rand(rng);
    nat::follow_master(&mut rt.ct, &h, &mut rand).expect("follow master");
    let snat = NatRange {
        addrs: Some((N, N)),
        ..NatRange::default()
    };
    for manip in [Manip::Dst, Manip::Src] {
        if nat::needs_binding(&rt.ct, &h, manip, &pkt) {
            let range = (manip == Manip::Src && masq && orig.src == C).then_some(snat);
            nat::setup(&mut rt.ct, &h, manip, range.as_ref(), &mut rand).unwrap();
        }
        assert!(nat::packet(&rt.ct, &h, manip, &mut pkt));
    }
    let (ctinfo, key) = (h.ctinfo(), h.key());
    let v = ctsim_netfilter::helper::confirm_hook(
        &mut rt.ct,
        &h,
        &mut pkt,
        &HelpCtx::default(),
        rt.now,
        &mut rand,
    );
    let verdict = if v == Verdict::Accept {
        rt.ct.confirm(h, rt.now).verdict
    } else {
        rt.ct.release(h);
        v
    };
    assert!(
        checksums_ok(&pkt),
        "bad checksum after helpers: {}",
        ctsim_packet::show(&pkt)
    );
    Step {
        bytes: pkt,
        ctinfo: Some(ctinfo),
        key: Some(key),
        verdict,
    }
}
