//! Writing a [`Datagram`] as a literal: fields in a fixed order, only
//! those that differ from the defaults (TCP's seq and win, and ack when
//! the ACK flag is set, always show; so do an ICMP query's id and seq).

use std::fmt::{self, Formatter};

use crate::checksum::Checksum;
use crate::decode;
use crate::icmp::{self, IcmpMessage};
use crate::model::{Datagram, Icmp, IpHeader, Transport, DEFAULT_TTL};
use crate::payload::{Hex, Payload};
use crate::quote;
use crate::tcp_flags::{self, Flags};
use crate::tcp_options::OptionList;

/// Writes `datagram`; `depth` counts the quotes it sits in.
pub(crate) fn datagram(
    f: &mut Formatter<'_>,
    datagram: &Datagram<'_>,
    depth: usize,
) -> fmt::Result {
    let ip = &datagram.ip;
    match &datagram.transport {
        Transport::Tcp(tcp) => {
            write!(
                f,
                "tcp {}:{} > {}:{} {} seq={}",
                ip.src,
                tcp.src_port,
                ip.dst,
                tcp.dst_port,
                Flags(tcp.flags),
                tcp.seq
            )?;
            if tcp.flags & tcp_flags::ACK != 0 || tcp.ack != 0 {
                write!(f, " ack={}", tcp.ack)?;
            }
            write!(f, " win={}", tcp.window)?;
            if tcp.urgent != 0 {
                write!(f, " urg={}", tcp.urgent)?;
            }
            checksum(f, "csum", tcp.checksum)?;
            let options = tcp.options.as_slice();
            if !options.is_empty() {
                write!(f, " {}", OptionList(options))?;
            }
            ip_fields(f, ip)?;
            payload(f, &tcp.payload)
        }
        Transport::Udp(udp) => {
            write!(
                f,
                "udp {}:{} > {}:{}",
                ip.src, udp.src_port, ip.dst, udp.dst_port
            )?;
            if let Some(len) = udp.length {
                write!(f, " ulen={len}")?;
            }
            checksum(f, "csum", udp.checksum)?;
            ip_fields(f, ip)?;
            payload(f, &udp.payload)
        }
        Transport::Icmp(icmp) => {
            write!(f, "icmp {} > {}", ip.src, ip.dst)?;
            message(f, &icmp.message)?;
            checksum(f, "csum", icmp.checksum)?;
            ip_fields(f, ip)?;
            body(f, icmp, ip.header_len(), depth)
        }
        Transport::Other { protocol, payload } => {
            write!(f, "ip {} > {} proto={protocol}", ip.src, ip.dst)?;
            ip_fields(f, ip)?;
            self::payload(f, payload)
        }
    }
}

/// The payload fields; in the summary form (`{:#}`) only its length, unless
/// it is short printable text such as a protocol command.
fn payload(f: &mut Formatter<'_>, payload: &Payload<'_>) -> fmt::Result {
    if f.alternate() {
        payload.summary(f)
    } else {
        write!(f, "{payload}")
    }
}

fn checksum(f: &mut Formatter<'_>, key: &str, checksum: Checksum) -> fmt::Result {
    match checksum {
        Checksum::Value(value) => write!(f, " {key}=0x{value:04x}"),
        // Decoding never yields `Bad`: a wrong checksum reads as its value.
        Checksum::Correct | Checksum::Bad => Ok(()),
    }
}

fn ip_fields(f: &mut Formatter<'_>, ip: &IpHeader) -> fmt::Result {
    if ip.ttl != DEFAULT_TTL {
        write!(f, " ttl={}", ip.ttl)?;
    }
    if ip.tos != 0 {
        write!(f, " tos=0x{:02x}", ip.tos)?;
    }
    if ip.id != 0 {
        write!(f, " ipid={}", ip.id)?;
    }
    for (set, word) in [
        (!ip.dont_frag, " nodf"),
        (ip.more_frags, " mf"),
        (ip.reserved_flag, " rf"),
    ] {
        if set {
            f.write_str(word)?;
        }
    }
    if ip.frag_offset != 0 {
        write!(f, " frag={}", ip.frag_offset)?;
    }
    let options = ip.options.as_slice();
    if !options.is_empty() {
        write!(f, " ipopts={}", Hex(options))?;
    }
    checksum(f, "ipcsum", ip.checksum)
}

fn message(f: &mut Formatter<'_>, message: &IcmpMessage) -> fmt::Result {
    match message {
        IcmpMessage::Query(query) => {
            write!(f, " {} id={} seq={}", query.kind.name, query.id, query.seq)?;
            for (key, value) in query.kind.fields.iter().zip(query.fields) {
                match (*key, value) {
                    (_, 0) => {}
                    ("mask", mask) => write!(f, " mask={}", std::net::Ipv4Addr::from(mask))?,
                    (key, value) => write!(f, " {key}={value}")?,
                }
            }
            Ok(())
        }
        IcmpMessage::Error(error) => {
            write!(f, " {}", error.name())?;
            error.write_param(f)
        }
        IcmpMessage::Raw {
            icmp_type,
            code,
            rest,
        } => {
            write!(f, " type={icmp_type}")?;
            if *code != 0 {
                write!(f, " code={code}")?;
            }
            if *rest != 0 {
                write!(f, " rest=0x{rest:08x}")?;
            }
            Ok(())
        }
    }
}

/// An error's body as `quote=(…)/N` when it holds the start of a
/// datagram, anything else as payload.
fn body(f: &mut Formatter<'_>, icmp: &Icmp<'_>, header_len: usize, depth: usize) -> fmt::Result {
    let quoted = icmp::is_error_type(icmp.message.icmp_type()) && depth < quote::MAX_DEPTH;
    let Some(inner) = quoted.then(|| decode::quoted(&icmp.body)).flatten() else {
        return payload(f, &icmp.body);
    };
    f.write_str(" quote=(")?;
    datagram(f, &inner, depth + 1)?;
    f.write_str(")")?;
    let (kept, whole) = (icmp.body.len, inner.len());
    if kept < whole || kept != quote::default_len(header_len, whole) {
        write!(f, "/{kept}")?;
    }
    Ok(())
}
