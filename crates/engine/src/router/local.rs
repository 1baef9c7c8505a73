//! What a Linux router answers for packets addressed to itself when it runs
//! no service: echo replies to pings, RST to TCP, ICMP port-unreachable to
//! UDP and protocol-unreachable to anything else.

use std::net::Ipv4Addr;

use ctsim_packet::IcmpError;
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber,
};

/// The router's answer to a datagram addressed to it.
pub enum Answer {
    Reply(Vec<u8>),
    Error(IcmpError),
    Nothing,
}

/// Decides the answer to `datagram` (a valid IPv4 header was checked).
pub fn answer(datagram: &[u8]) -> Answer {
    let ip = Ipv4Packet::new_unchecked(datagram);
    let payload = ip.payload();
    match ip.next_header() {
        IpProtocol::Icmp => match Icmpv4Packet::new_checked(payload) {
            Ok(icmp) if icmp.msg_type() == Icmpv4Message::EchoRequest => {
                Answer::Reply(echo_reply(&ip, payload))
            }
            _ => Answer::Nothing,
        },
        IpProtocol::Udp => Answer::Error(IcmpError::PortUnreachable),
        IpProtocol::Tcp => match TcpPacket::new_checked(payload) {
            Ok(tcp) if !tcp.rst() => Answer::Reply(tcp_reset(&ip, &tcp)),
            _ => Answer::Nothing,
        },
        _ => Answer::Error(IcmpError::ProtoUnreachable),
    }
}

/// A fresh 20-byte IPv4 header around `l4`, TTL 64 as Linux's default.
fn datagram(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, df: bool, l4: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + l4.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len((20 + l4.len()) as u16);
    ip.clear_flags();
    ip.set_dont_frag(df);
    ip.set_hop_limit(64);
    ip.set_next_header(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    buf[20..].copy_from_slice(l4);
    buf
}

/// The request's ICMP message with type 0 and a new checksum.
fn echo_reply(ip: &Ipv4Packet<&[u8]>, icmp: &[u8]) -> Vec<u8> {
    let mut buf = datagram(ip.dst_addr(), ip.src_addr(), IpProtocol::Icmp, false, icmp);
    // Linux answers with the request's TOS and DF clear (checked on 6.x).
    buf[1] = ip.as_ref()[1];
    Ipv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
    let mut reply = Icmpv4Packet::new_unchecked(&mut buf[20..]);
    reply.set_msg_type(Icmpv4Message::EchoReply);
    reply.fill_checksum();
    buf
}

/// RST for a segment to a closed port, as RFC 793 and Linux's
/// tcp_v4_send_reset build it: with the peer's ACK as our sequence number,
/// or else sequence 0 acknowledging everything the segment occupied.
fn tcp_reset(ip: &Ipv4Packet<&[u8]>, tcp: &TcpPacket<&[u8]>) -> Vec<u8> {
    let mut seg = [0u8; 20];
    let mut rst = TcpPacket::new_unchecked(&mut seg[..]);
    rst.set_src_port(tcp.dst_port());
    rst.set_dst_port(tcp.src_port());
    rst.set_header_len(20);
    rst.clear_flags();
    rst.set_rst(true);
    if tcp.ack() {
        rst.set_seq_number(tcp.ack_number());
    } else {
        let occupied = tcp.payload().len() + usize::from(tcp.syn()) + usize::from(tcp.fin());
        rst.set_seq_number(TcpSeqNumber(0));
        rst.set_ack(true);
        rst.set_ack_number(tcp.seq_number() + occupied);
    }
    let (src, dst) = (ip.dst_addr(), ip.src_addr());
    rst.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    datagram(src, dst, IpProtocol::Tcp, true, &seg)
}
