//! Writing a [`Datagram`] as bytes.
//!
//! Header fields go through smoltcp's packet wrappers; the few things they
//! cannot express (the reserved IP flag, TCP flag bits as one value, a
//! checksum chosen by the literal) are written directly.

use smoltcp::wire::{Icmpv4Packet, Ipv4Packet, TcpPacket, TcpSeqNumber, UdpPacket};

use crate::checksum;
use crate::model::{
    Datagram, IpHeader, Transport, ICMP_HEADER_LEN, IPV4_HEADER_LEN, TCP_HEADER_LEN, UDP_HEADER_LEN,
};

/// The datagram's bytes. Lengths beyond 65535 are the caller's to refuse
/// (the total length field would wrap); nothing here panics on them.
pub(crate) fn emit(datagram: &Datagram<'_>) -> Vec<u8> {
    let header_len = datagram.ip.header_len();
    let mut bytes = vec![0; datagram.len()];
    let (header, segment) = bytes.split_at_mut(header_len);
    transport(&datagram.transport, segment);
    let ip = &datagram.ip;
    let checksum = match &datagram.transport {
        Transport::Tcp(tcp) => Some(tcp.checksum),
        Transport::Udp(udp) => Some(udp.checksum),
        Transport::Icmp(icmp) => Some(icmp.checksum),
        Transport::Other { .. } => None,
    };
    let protocol = datagram.transport.protocol();
    let field = checksum::transport(protocol, ip.src, ip.dst, segment, segment.len());
    if let Some((checksum, (at, correct))) = checksum.zip(field) {
        segment[at..at + 2].copy_from_slice(&checksum.resolve(correct).to_be_bytes());
    }
    ip_header(ip, protocol, segment.len(), header);
    bytes
}

fn ip_header(ip: &IpHeader, protocol: u8, payload_len: usize, header: &mut [u8]) {
    header[IPV4_HEADER_LEN..].copy_from_slice(ip.options.as_slice());
    let mut packet = Ipv4Packet::new_unchecked(&mut *header);
    packet.set_version(4);
    packet.set_header_len(ip.header_len() as u8);
    packet.set_dscp(ip.tos >> 2);
    packet.set_ecn(ip.tos & 0b11);
    packet.set_total_len((ip.header_len() + payload_len) as u16);
    packet.set_ident(ip.id);
    packet.set_dont_frag(ip.dont_frag);
    packet.set_more_frags(ip.more_frags);
    packet.set_frag_offset(ip.frag_offset);
    packet.set_hop_limit(ip.ttl);
    packet.set_next_header(protocol.into());
    packet.set_src_addr(ip.src);
    packet.set_dst_addr(ip.dst);
    if ip.reserved_flag {
        header[6] |= 0x80;
    }
    let checksum = ip.checksum.resolve(checksum::ipv4_header(header));
    Ipv4Packet::new_unchecked(header).set_checksum(checksum);
}

/// Writes the transport header and payload, checksum left zero.
fn transport(transport: &Transport<'_>, segment: &mut [u8]) {
    match transport {
        Transport::Tcp(tcp) => {
            let options = tcp.options.as_slice();
            let header_len = TCP_HEADER_LEN + options.len();
            let mut packet = TcpPacket::new_unchecked(&mut *segment);
            packet.set_src_port(tcp.src_port);
            packet.set_dst_port(tcp.dst_port);
            packet.set_seq_number(TcpSeqNumber(tcp.seq as i32));
            packet.set_ack_number(TcpSeqNumber(tcp.ack as i32));
            packet.set_header_len(header_len as u8);
            packet.set_window_len(tcp.window);
            packet.set_urgent_at(tcp.urgent);
            // The nine flag bits share bytes 12-13 with the data offset.
            segment[12] |= (tcp.flags >> 8) as u8 & 1;
            segment[13] = tcp.flags as u8;
            segment[TCP_HEADER_LEN..header_len].copy_from_slice(options);
            tcp.payload.write_to(&mut segment[header_len..]);
        }
        Transport::Udp(udp) => {
            let mut packet = UdpPacket::new_unchecked(&mut *segment);
            packet.set_src_port(udp.src_port);
            packet.set_dst_port(udp.dst_port);
            let len = udp
                .length
                .unwrap_or((UDP_HEADER_LEN + udp.payload.len) as u16);
            packet.set_len(len);
            udp.payload.write_to(&mut segment[UDP_HEADER_LEN..]);
        }
        Transport::Icmp(icmp) => {
            let mut packet = Icmpv4Packet::new_unchecked(&mut *segment);
            packet.set_msg_type(icmp.message.icmp_type().into());
            packet.set_msg_code(icmp.message.code());
            segment[4..ICMP_HEADER_LEN].copy_from_slice(&icmp.message.rest().to_be_bytes());
            let mut body = &mut segment[ICMP_HEADER_LEN..];
            for field in icmp.message.fixed() {
                let (bytes, rest) = body.split_at_mut(4);
                bytes.copy_from_slice(&field.to_be_bytes());
                body = rest;
            }
            icmp.body.write_to(body);
        }
        Transport::Other { payload, .. } => payload.write_to(segment),
    }
}
