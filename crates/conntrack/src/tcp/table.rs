//! The TCP state transition table, `tcp_conntracks[2][6][TCP_CONNTRACK_MAX]`
//! of net/netfilter/nf_conntrack_proto_tcp.c (reference/tcp-tracking.md §3).
//!
//! Indexed `[Dir][PacketClass][TcpConntrack]`, rows in the kernel's order
//! (SYN, SYN-ACK, FIN, ACK, RST, NONE), columns in state order. The cell
//! names are the kernel's without the leading `s`: `SS` is `sSS`
//! (SYN_SENT), `IV` is `sIV` (invalid), `IG` is `sIG` (ignore).

use super::{Dir, TcpConntrack};

/// The packet classes of `enum tcp_bit_set`, in the kernel's numbering
/// (the `index` printed in "packet (index N) ..." log lines).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PacketClass {
    /// SYN without ACK (`TCP_SYN_SET`).
    Syn = 0,
    /// SYN and ACK (`TCP_SYNACK_SET`).
    SynAck = 1,
    /// FIN (`TCP_FIN_SET`).
    Fin = 2,
    /// ACK without SYN/FIN/RST (`TCP_ACK_SET`).
    Ack = 3,
    /// RST, whatever else is set (`TCP_RST_SET`).
    Rst = 4,
    /// None of the above (`TCP_NONE_SET`).
    None = 5,
}

impl PacketClass {
    /// All classes in table row order.
    pub const ALL: [PacketClass; 6] = [
        PacketClass::Syn,
        PacketClass::SynAck,
        PacketClass::Fin,
        PacketClass::Ack,
        PacketClass::Rst,
        PacketClass::None,
    ];
}

/// One cell of the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Next {
    /// Move to this state (after the window check).
    To(TcpConntrack),
    /// `sIV`: the packet is INVALID.
    Invalid,
    /// `sIG`: remember the packet, let it through, change nothing.
    Ignore,
}

// `sNO` is never a target; it names the first column only.
#[allow(dead_code)]
const NO: Next = Next::To(TcpConntrack::None);
const SS: Next = Next::To(TcpConntrack::SynSent);
const SR: Next = Next::To(TcpConntrack::SynRecv);
const ES: Next = Next::To(TcpConntrack::Established);
const FW: Next = Next::To(TcpConntrack::FinWait);
const CW: Next = Next::To(TcpConntrack::CloseWait);
const LA: Next = Next::To(TcpConntrack::LastAck);
const TW: Next = Next::To(TcpConntrack::TimeWait);
const CL: Next = Next::To(TcpConntrack::Close);
const S2: Next = Next::To(TcpConntrack::SynSent2);
const IV: Next = Next::Invalid;
const IG: Next = Next::Ignore;

/// `tcp_conntracks`: the new state for (direction, packet class, old state).
#[rustfmt::skip]
pub const TCP_CONNTRACKS: [[[Next; 10]; 6]; 2] = [
    [
// ORIGINAL
//              NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
/* syn    */ [  SS, SS, IG, IG, IG, IG, IG, SS, SS, S2 ],
//  NO->SS new connection; SS->SS retransmitted SYN; S2->S2 late retransmitted SYN;
//  SR..LA->IG a SYN in window outside SYN_SENT: the receiver answers with RST
//  (or a challenge ACK) and we may be out of sync; TW,CL->SS reopen (RFC 1122).
/* synack */ [  IV, IV, SR, IV, IV, IV, IV, IV, IV, SR ],
//  The client may not send SYN/ACK except in a simultaneous open:
//  S2->SR SYN/ACK answering the reply's SYN; SR->SR retransmitted.
/* fin    */ [  IV, IV, FW, FW, LA, LA, LA, TW, CL, IV ],
//  No FIN before the SYN/ACK; SR,ES->FW close starts; FW,CW->LA FIN seen in
//  both directions; LA->LA retransmitted FIN.
/* ack    */ [  ES, IV, ES, ES, CW, CW, TW, TW, CL, IV ],
//  NO->ES mid-stream pickup (tcp_loose); SS->IV no SYN/ACK seen yet;
//  SR->ES handshake done; FW->CW FIN acknowledged; LA->TW last ACK
//  (unless it is an RFC 5961 challenge ACK); TW->TW retransmitted last ACK.
/* rst    */ [  IV, CL, CL, CL, CL, CL, CL, CL, CL, CL ],
/* none   */ [  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV ],
    ],
    [
// REPLY
//              NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
/* syn    */ [  IV, S2, IV, IV, IV, IV, IV, SS, IV, S2 ],
//  SS->S2 simultaneous open; S2->S2 retransmitted; TW->SS reopened with the
//  roles switched; the server may not send a SYN otherwise.
/* synack */ [  IV, SR, IG, IG, IG, IG, IG, IG, IG, SR ],
//  SS->SR standard open; S2->SR simultaneous open; SR->IG retransmitted;
//  ES..CL->IG late, or answering a SYN we ignored (resynchronises).
/* fin    */ [  IV, IV, FW, FW, LA, LA, LA, TW, CL, IV ],
/* ack    */ [  IV, IG, SR, ES, CW, CW, TW, TW, CL, IG ],
//  SS->IG maybe a half-open connection (or a challenge ACK to our SYN);
//  SR->SR may answer a late resent SYN (ES after a simultaneous open).
/* rst    */ [  IV, CL, CL, CL, CL, CL, CL, CL, CL, CL ],
/* none   */ [  IV, IV, IV, IV, IV, IV, IV, IV, IV, IV ],
    ],
];

/// Looks up `tcp_conntracks[dir][class][state]`.
#[inline]
pub const fn next(dir: Dir, class: PacketClass, state: TcpConntrack) -> Next {
    TCP_CONNTRACKS[dir as usize][class as usize][state as usize]
}

// The log texts "packet (index %d) in dir %d ignored|invalid, state %s" of
// nf_conntrack_tcp_packet(), spelled out for every (dir, class, state) so an
// outcome can carry a `&'static str`.
macro_rules! by_state {
    ($what:literal, $dir:literal, $idx:literal) => {
        [
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state NONE"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state SYN_SENT"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state SYN_RECV"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state ESTABLISHED"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state FIN_WAIT"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state CLOSE_WAIT"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state LAST_ACK"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state TIME_WAIT"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state CLOSE"
            ),
            concat!(
                "packet (index ",
                $idx,
                ") in dir ",
                $dir,
                " ",
                $what,
                ", state SYN_SENT2"
            ),
        ]
    };
}

macro_rules! by_class {
    ($what:literal, $dir:literal) => {
        [
            by_state!($what, $dir, 0),
            by_state!($what, $dir, 1),
            by_state!($what, $dir, 2),
            by_state!($what, $dir, 3),
            by_state!($what, $dir, 4),
            by_state!($what, $dir, 5),
        ]
    };
}

const IGNORED_TEXT: [[[&str; 10]; 6]; 2] = [by_class!("ignored", 0), by_class!("ignored", 1)];
const INVALID_TEXT: [[[&str; 10]; 6]; 2] = [by_class!("invalid", 0), by_class!("invalid", 1)];

/// "packet (index N) in dir D ignored, state S".
pub const fn ignored_text(dir: Dir, class: PacketClass, state: TcpConntrack) -> &'static str {
    IGNORED_TEXT[dir as usize][class as usize][state as usize]
}

/// "packet (index N) in dir D invalid, state S".
pub const fn invalid_text(dir: Dir, class: PacketClass, state: TcpConntrack) -> &'static str {
    INVALID_TEXT[dir as usize][class as usize][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_the_kernel_format() {
        assert_eq!(
            ignored_text(Dir::Original, PacketClass::Syn, TcpConntrack::Established),
            "packet (index 0) in dir 0 ignored, state ESTABLISHED"
        );
        assert_eq!(
            invalid_text(Dir::Reply, PacketClass::None, TcpConntrack::SynSent2),
            "packet (index 5) in dir 1 invalid, state SYN_SENT2"
        );
        for dir in [Dir::Original, Dir::Reply] {
            for class in PacketClass::ALL {
                for state in TcpConntrack::ALL {
                    let t = invalid_text(dir, class, state);
                    assert!(t.ends_with(&format!("state {state}")), "{t}");
                    assert!(t.starts_with(&format!(
                        "packet (index {}) in dir {} ",
                        class as u8, dir as u8
                    )));
                }
            }
        }
    }
}
