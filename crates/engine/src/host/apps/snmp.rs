//! SNMP (RFC 3416 PDUs in RFC 1157/1901 messages, BER as X.690 lays it out):
//! a manager that sends one SNMPv2c GetRequest for sysName.0 and counts the
//! GetResponses that come back within its timeout, from any host (the query
//! may go to a subnet's broadcast address, which is why conntrack has the
//! snmp broadcast helper), and an agent that answers sysName.0 with its node's
//! name, as net-snmp's snmpd does.
//!
//! The agent drops what it cannot parse, other versions and wrong
//! communities silently (net-snmp counts them in snmpInASNParseErrs and
//! snmpInBadCommunityNames; nothing goes back on the wire).

use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use super::{ip_of, v4, Counters, Timer};
use crate::host::ports::Proto;
use crate::host::Net;
use crate::node::Cx;
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// sysName.0 (SNMPv2-MIB).
pub(crate) const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const GET_REQUEST: u8 = 0xa0;
const GET_RESPONSE: u8 = 0xa2;
/// SNMPv2 exception `noSuchObject` (RFC 3416), an empty context tag.
const NO_SUCH_OBJECT: u8 = 0x80;
/// `version` of SNMPv1 and SNMPv2c messages.
const V1: i64 = 0;
const V2C: i64 = 1;
/// SNMPv1 error-status noSuchName.
const NO_SUCH_NAME: i64 = 2;
/// net-snmp's largest message it accepts by default.
const MAX_MESSAGE: usize = 1472;

// ---------------------------------------------------------------------------
// BER

/// Appends tag, definite length (short or long form) and content.
fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// An INTEGER's content: the shortest two's complement form.
fn int_content(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut k = 0;
    while k < 7 {
        let (b, next) = (bytes[k], bytes[k + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            k += 1;
        } else {
            break;
        }
    }
    bytes[k..].to_vec()
}

fn oid_content(oid: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (a, b) = (
        oid.first().copied().unwrap_or(0),
        oid.get(1).copied().unwrap_or(0),
    );
    let mut arcs = vec![a * 40 + b];
    arcs.extend(oid.iter().skip(2));
    for arc in arcs {
        let mut groups = Vec::new();
        let mut v = arc;
        loop {
            groups.push((v & 0x7f) as u8);
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i > 0 { g | 0x80 } else { *g });
        }
    }
    out
}

/// A value in a variable binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Text(Vec<u8>),
    /// Any other type: its tag and content.
    Other(u8, Vec<u8>),
}

/// A message with a PDU of the GetRequest family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub version: i64,
    pub community: Vec<u8>,
    pub pdu: u8,
    pub request_id: i64,
    pub error_status: i64,
    pub error_index: i64,
    pub bindings: Vec<(Vec<u32>, Value)>,
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut binds = Vec::new();
        for (oid, value) in &self.bindings {
            let mut vb = Vec::new();
            tlv(&mut vb, OID, &oid_content(oid));
            match value {
                Value::Null => tlv(&mut vb, NULL, &[]),
                Value::Text(t) => tlv(&mut vb, OCTET_STRING, t),
                Value::Other(tag, c) => tlv(&mut vb, *tag, c),
            }
            tlv(&mut binds, SEQUENCE, &vb);
        }
        let mut pdu = Vec::new();
        tlv(&mut pdu, INTEGER, &int_content(self.request_id));
        tlv(&mut pdu, INTEGER, &int_content(self.error_status));
        tlv(&mut pdu, INTEGER, &int_content(self.error_index));
        tlv(&mut pdu, SEQUENCE, &binds);
        let mut msg = Vec::new();
        tlv(&mut msg, INTEGER, &int_content(self.version));
        tlv(&mut msg, OCTET_STRING, &self.community);
        tlv(&mut msg, self.pdu, &pdu);
        let mut out = Vec::new();
        tlv(&mut out, SEQUENCE, &msg);
        out
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next TLV: its tag and content.
    fn tlv(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let b = self.0;
        let &tag = b.first().ok_or("truncated")?;
        if tag & 0x1f == 0x1f {
            return Err("a multi-byte tag");
        }
        let &first = b.get(1).ok_or("truncated")?;
        let (len, head) = match first {
            0x80 => return Err("an indefinite length"),
            n if n < 0x80 => (usize::from(n), 2),
            n => {
                let k = usize::from(n & 0x7f);
                if k > 4 {
                    return Err("a length longer than 4 bytes");
                }
                let bytes = b.get(2..2 + k).ok_or("truncated")?;
                let len = bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
                (len, 2 + k)
            }
        };
        let content = b.get(head..head + len).ok_or("truncated")?;
        self.0 = &b[head + len..];
        Ok((tag, content))
    }

    fn expect(&mut self, want: u8, what: &'static str) -> Result<&'a [u8], &'static str> {
        match self.tlv()? {
            (tag, c) if tag == want => Ok(c),
            _ => Err(what),
        }
    }

    fn int(&mut self, what: &'static str) -> Result<i64, &'static str> {
        let c = self.expect(INTEGER, what)?;
        if c.is_empty() || c.len() > 8 {
            return Err(what);
        }
        let mut v: i64 = if c[0] & 0x80 != 0 { -1 } else { 0 };
        for &x in c {
            v = (v << 8) | i64::from(x);
        }
        Ok(v)
    }
}

fn parse_oid(c: &[u8]) -> Result<Vec<u32>, &'static str> {
    if c.is_empty() || c.len() > 128 {
        return Err("a bad OID");
    }
    let mut arcs = Vec::new();
    let mut v: u32 = 0;
    for (i, &x) in c.iter().enumerate() {
        if v > (u32::MAX >> 7) {
            return Err("an OID arc too large");
        }
        v = (v << 7) | u32::from(x & 0x7f);
        if x & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i + 1 == c.len() {
            return Err("a bad OID");
        }
    }
    Ok(arcs)
}

/// Reads an SNMPv1/v2c message; the reason when it is not one.
pub(crate) fn parse(b: &[u8]) -> Result<Message, &'static str> {
    let mut outer = Reader(b);
    let msg = outer.expect(SEQUENCE, "not a SEQUENCE")?;
    let mut m = Reader(msg);
    let version = m.int("no version")?;
    let community = m.expect(OCTET_STRING, "no community")?.to_vec();
    let (pdu, body) = m.tlv().map_err(|_| "no PDU")?;
    if !(0xa0..=0xa8).contains(&pdu) {
        return Err("an unknown PDU type");
    }
    let mut p = Reader(body);
    let request_id = p.int("no request-id")?;
    let error_status = p.int("no error-status")?;
    let error_index = p.int("no error-index")?;
    let mut list = Reader(p.expect(SEQUENCE, "no variable bindings")?);
    let mut bindings = Vec::new();
    while !list.0.is_empty() {
        let mut vb = Reader(list.expect(SEQUENCE, "a bad variable binding")?);
        let oid = parse_oid(vb.expect(OID, "a variable binding without an OID")?)?;
        let value = match vb.tlv().map_err(|_| "a variable binding without a value")? {
            (NULL, _) => Value::Null,
            (OCTET_STRING, t) => Value::Text(t.to_vec()),
            (tag, c) => Value::Other(tag, c.to_vec()),
        };
        bindings.push((oid, value));
    }
    Ok(Message {
        version,
        community,
        pdu,
        request_id,
        error_status,
        error_index,
        bindings,
    })
}

// ---------------------------------------------------------------------------
// Manager

pub(crate) struct SnmpManager {
    to: SocketAddrV4,
    community: String,
    timeout: Duration,
    request_id: i64,
    deadline: Instant,
    sock: Option<(usize, SocketHandle)>,
    port: u16,
    /// Who answered, in order of their first answer, with the name they gave.
    pub(crate) responders: Vec<(Ipv4Addr, String)>,
    pub(crate) state: &'static str,
    timer: Timer,
}

impl SnmpManager {
    pub(crate) fn new(to: SocketAddrV4, community: String, timeout: Duration) -> Self {
        SnmpManager {
            to,
            community,
            timeout,
            request_id: 0,
            deadline: Instant::ZERO,
            sock: None,
            port: 0,
            responders: Vec::new(),
            state: "scheduled",
            timer: Timer::default(),
        }
    }

    /// Draws the request-id (net-snmp's are positive 31-bit numbers).
    pub(crate) fn prepare(&mut self, rng: &mut Rng) {
        self.request_id = i64::from(rng.next_u32() & 0x7fff_ffff);
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net, cx: &mut Cx<'_>) {
        self.deadline = cx.now + self.timeout;
        let Some(nic) = net.route(*self.to.ip()) else {
            c.fail(|| "network unreachable".into());
            self.state = "unreachable";
            return;
        };
        let Some(port) = net.ports.ephemeral(Proto::Udp) else {
            c.fail(|| "no free ephemeral port".into());
            self.state = "failed";
            return;
        };
        let n = &mut net.nics[nic];
        let mut sock = super::new_udp(0);
        let _ = sock.bind(IpListenEndpoint {
            addr: Some(v4(n.cidr.addr)),
            port,
        });
        let msg = Message {
            version: V2C,
            community: self.community.as_bytes().to_vec(),
            pdu: GET_REQUEST,
            request_id: self.request_id,
            error_status: 0,
            error_index: 0,
            bindings: vec![(SYS_NAME.to_vec(), Value::Null)],
        }
        .encode();
        let to = IpEndpoint::new(v4(*self.to.ip()), self.to.port());
        if sock.send_slice(&msg, to).is_ok() {
            c.requests += 1;
            c.bytes_sent += msg.len() as u64;
        }
        self.sock = Some((nic, n.sockets.add(sock)));
        self.port = port;
        net.demux.insert((17, port), idx);
        self.state = "running";
        self.timer.sync(Some(self.deadline), cx, 1 + idx as u64);
    }

    pub(crate) fn step(
        &mut self,
        c: &mut Counters,
        net: &mut Net,
        cx: &mut Cx<'_>,
        token: u64,
    ) -> bool {
        let Some((nic, handle)) = self.sock else {
            return false;
        };
        let mut acted = false;
        let mut buf = [0u8; MAX_MESSAGE + 1];
        loop {
            let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
            let Ok((len, meta)) = s.recv_slice(&mut buf) else {
                break;
            };
            acted = true;
            let from = ip_of(meta.endpoint);
            let len = len.min(buf.len());
            match parse(&buf[..len]) {
                Ok(m) if m.pdu == GET_RESPONSE && m.request_id == self.request_id => {
                    c.replies += 1;
                    c.bytes_received += len as u64;
                    let name = match m.bindings.first() {
                        Some((oid, Value::Text(t))) if oid == SYS_NAME => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        _ => String::new(),
                    };
                    if m.error_status != 0 {
                        c.fail(|| format!("{from} answered error-status {}", m.error_status));
                    }
                    if !self.responders.iter().any(|(a, _)| *a == from) {
                        self.responders.push((from, name));
                    }
                }
                // Another request's answer, or not a response: snmpget ignores it.
                Ok(_) => {}
                Err(why) => {
                    c.fail(|| format!("ignored a malformed reply from {from}: {why}"));
                }
            }
        }
        if cx.now >= self.deadline {
            net.nics[nic].sockets.remove(handle);
            net.ports.free(Proto::Udp, self.port);
            net.demux.remove(&(17, self.port));
            self.sock = None;
            if self.responders.is_empty() {
                let (to, t) = (self.to, self.timeout);
                c.fail(|| format!("no response from {to} within {t}"));
                self.state = "timed-out";
            } else {
                self.state = "done";
            }
            acted = true;
        }
        let want = self.sock.is_some().then_some(self.deadline);
        self.timer.sync(want, cx, token);
        acted
    }

    /// `192.0.2.2 (b), 192.0.2.3 (c)`.
    pub(crate) fn detail(&self) -> Option<String> {
        let list: Vec<String> = self
            .responders
            .iter()
            .map(|(a, n)| format!("{a} ({n})"))
            .collect();
        (!list.is_empty()).then(|| format!("responders: {}", list.join(", ")))
    }
}

// ---------------------------------------------------------------------------
// Agent

pub(crate) struct SnmpAgent {
    port: u16,
    community: String,
    sys_name: String,
    socks: Vec<(usize, SocketHandle)>,
    /// Datagrams dropped: not SNMP, another version, a wrong community.
    pub(crate) dropped: u64,
    pub(crate) failed: bool,
}

impl SnmpAgent {
    pub(crate) fn new(port: u16, community: String, sys_name: String) -> Self {
        SnmpAgent {
            port,
            community,
            sys_name,
            socks: Vec::new(),
            dropped: 0,
            failed: false,
        }
    }

    pub(crate) fn start(&mut self, idx: usize, c: &mut Counters, net: &mut Net) {
        match super::udp_listen(idx, c, net, self.port, || super::new_udp(0)) {
            Some(socks) => self.socks = socks,
            None => self.failed = true,
        }
    }

    pub(crate) fn step(&mut self, c: &mut Counters, net: &mut Net) -> bool {
        let mut acted = false;
        let mut buf = [0u8; MAX_MESSAGE + 1];
        for &(nic, handle) in &self.socks {
            let s = net.nics[nic].sockets.get_mut::<udp::Socket>(handle);
            while let Ok((len, meta)) = s.recv_slice(&mut buf) {
                acted = true;
                c.bytes_received += len as u64;
                match self.answer(&buf[..len.min(buf.len())]) {
                    Some(reply) => {
                        c.requests += 1;
                        // From the address the stack picks, not the
                        // broadcast address the request went to.
                        if s.send_slice(&reply, meta.endpoint).is_ok() {
                            c.replies += 1;
                            c.bytes_sent += reply.len() as u64;
                        }
                    }
                    None => self.dropped += 1,
                }
            }
        }
        acted
    }

    /// The GetResponse to a datagram, if it gets one.
    pub(crate) fn answer(&self, b: &[u8]) -> Option<Vec<u8>> {
        if b.len() > MAX_MESSAGE {
            return None;
        }
        let m = parse(b).ok()?;
        if !matches!(m.version, V1 | V2C)
            || m.community != self.community.as_bytes()
            || m.pdu != GET_REQUEST
        {
            return None;
        }
        let mut error_status = 0;
        let mut error_index = 0;
        let bindings = m
            .bindings
            .iter()
            .enumerate()
            .map(|(i, (oid, value))| {
                if oid == SYS_NAME {
                    (oid.clone(), Value::Text(self.sys_name.as_bytes().to_vec()))
                } else if m.version == V2C {
                    (oid.clone(), Value::Other(NO_SUCH_OBJECT, Vec::new()))
                } else {
                    if error_status == 0 {
                        error_status = NO_SUCH_NAME;
                        error_index = i as i64 + 1;
                    }
                    (oid.clone(), value.clone())
                }
            })
            .collect();
        Some(
            Message {
                pdu: GET_RESPONSE,
                error_status,
                error_index,
                bindings,
                ..m
            }
            .encode(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_request_encodes_as_net_snmp_sends_it() {
        // `snmpget -v2c -c public 192.0.2.255 1.3.6.1.2.1.1.5.0` with
        // request-id 0x1234, byte for byte as net-snmp sends it.
        let m = Message {
            version: V2C,
            community: b"public".to_vec(),
            pdu: GET_REQUEST,
            request_id: 0x1234,
            error_status: 0,
            error_index: 0,
            bindings: vec![(SYS_NAME.to_vec(), Value::Null)],
        };
        let wire = m.encode();
        assert_eq!(
            wire,
            b"\x30\x27\x02\x01\x01\x04\x06public\xa0\x1a\x02\x02\x12\x34\x02\x01\x00\x02\x01\x00\
              \x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x05\x00\x05\x00"
        );
        assert_eq!(parse(&wire), Ok(m));
    }

    #[test]
    fn integers_and_oids_take_their_shortest_forms() {
        assert_eq!(int_content(0), [0]);
        assert_eq!(int_content(127), [0x7f]);
        assert_eq!(int_content(128), [0x00, 0x80]);
        assert_eq!(int_content(-1), [0xff]);
        assert_eq!(int_content(-129), [0xff, 0x7f]);
        assert_eq!(int_content(0x7fff_ffff), [0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(
            oid_content(&[1, 3, 6, 1, 4, 1, 8072]),
            [0x2b, 6, 1, 4, 1, 0xbf, 0x08]
        );
        assert_eq!(
            parse_oid(&[0x2b, 6, 1, 4, 1, 0xbf, 0x08]).unwrap(),
            [1, 3, 6, 1, 4, 1, 8072]
        );
        assert!(parse_oid(&[0x2b, 0x81]).is_err());
        let mut long = Vec::new();
        tlv(&mut long, OCTET_STRING, &[7; 300]);
        assert_eq!(&long[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(Reader(&long).tlv().unwrap().1.len(), 300);
    }

    #[test]
    fn the_agent_answers_its_name_and_ignores_strangers() {
        let agent = SnmpAgent::new(161, "public".into(), "b".into());
        let get = |version, community: &str, oid: &[u32]| {
            Message {
                version,
                community: community.as_bytes().to_vec(),
                pdu: GET_REQUEST,
                request_id: 77,
                error_status: 0,
                error_index: 0,
                bindings: vec![(oid.to_vec(), Value::Null)],
            }
            .encode()
        };
        let reply = parse(&agent.answer(&get(V2C, "public", SYS_NAME)).unwrap()).unwrap();
        assert_eq!(
            (reply.pdu, reply.request_id, reply.error_status),
            (GET_RESPONSE, 77, 0)
        );
        assert_eq!(
            reply.bindings,
            [(SYS_NAME.to_vec(), Value::Text(b"b".to_vec()))]
        );
        let other = [1, 3, 6, 1, 2, 1, 1, 9, 0];
        let v2 = parse(&agent.answer(&get(V2C, "public", &other)).unwrap()).unwrap();
        assert_eq!(v2.bindings[0].1, Value::Other(NO_SUCH_OBJECT, Vec::new()));
        let v1 = parse(&agent.answer(&get(V1, "public", &other)).unwrap()).unwrap();
        assert_eq!((v1.error_status, v1.error_index), (NO_SUCH_NAME, 1));
        assert_eq!(agent.answer(&get(V2C, "private", SYS_NAME)), None);
        assert_eq!(agent.answer(&get(3, "public", SYS_NAME)), None);
        assert_eq!(agent.answer(b"\x30\x80\x00\x00"), None);
        assert_eq!(agent.answer(b""), None);
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let mut rng = Rng::from_seed(5);
        let good = Message {
            version: V2C,
            community: b"public".to_vec(),
            pdu: GET_REQUEST,
            request_id: 1,
            error_status: 0,
            error_index: 0,
            bindings: vec![(SYS_NAME.to_vec(), Value::Null)],
        }
        .encode();
        let agent = SnmpAgent::new(161, "public".into(), "x".into());
        for _ in 0..50_000 {
            let mut b = good.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u32() as u8;
            }
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
            let _ = parse(&b);
            let _ = agent.answer(&b);
            let len = rng.below(40) as usize;
            let r: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            let _ = parse(&r);
        }
    }
}
