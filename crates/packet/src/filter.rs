//! A tcpdump-like filter over datagrams, for checks and trace selection.
//!
//! ```text
//! expr      = and ("or" and)*
//! and       = unary (["and"] unary)*     (juxtaposition means "and": `tcp dport 22`)
//! unary     = "not" unary | "(" expr ")" | primitive
//! primitive = tcp | udp | icmp | proto N
//!           | host ADDR | src ADDR | dst ADDR | net ADDR/LEN
//!           | port N | sport N | dport N
//!           | tcp-flags FLAGS | syn | fin | rst | ack
//!           | icmp-type NAME | icmp-type N
//!           | len N
//! ```
//!
//! `tcp-flags` matches the exact flag set, written as in literals (`S.`);
//! `syn`, `fin`, `rst` and `ack` match any TCP segment with that flag.
//! `icmp-type` takes the message names of literals (`echo-request`,
//! `port-unreachable`, …; an error name fixes the code too) or a type
//! number. `len` is the datagram's length including its IP header, like
//! tcpdump's. Ports, flags and ICMP types are read only from first
//! fragments.

use std::net::Ipv4Addr;

use smoltcp::wire::Ipv4Packet;

use crate::error::{LiteralError, Result};
use crate::model::IPV4_HEADER_LEN;
use crate::token::Token;
use crate::{icmp, tcp_flags, value};

/// A parsed filter expression.
///
/// ```
/// use ctsim_packet::{parse, Filter};
/// let filter = Filter::parse("tcp and dport 22 and (syn or rst)").unwrap();
/// let syn = parse("tcp 192.0.2.2:40000 > 198.51.100.2:22 S seq=1 win=1024", &|_| None).unwrap();
/// assert!(filter.matches(&syn));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    root: Node,
}

/// And and or hold their operands side by side, so a long chain stays a
/// shallow tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Primitive(Primitive),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Protocol(u8),
    Host(Direction, Ipv4Addr),
    Net {
        network: u32,
        mask: u32,
    },
    Port(Direction, u16),
    /// Exactly these TCP flags.
    TcpFlags(u16),
    /// This TCP flag among others.
    TcpFlag(u16),
    IcmpType(u8, Option<u8>),
    Len(usize),
}

/// Nesting of `not` and parentheses allowed, which bounds recursion.
const MAX_DEPTH: usize = 64;

const PRIMITIVES: &str = "tcp, udp, icmp, proto, host, src, dst, net, port, sport, dport, tcp-flags, syn, fin, rst, ack, icmp-type, len";

impl Filter {
    /// Parses a filter expression; see the module docs for the grammar.
    pub fn parse(text: &str) -> std::result::Result<Filter, LiteralError> {
        let mut parser = Parser {
            tokens: tokens(text),
            pos: 0,
            end: text.len(),
            depth: 0,
        };
        let root = parser.or()?;
        match parser.peek() {
            // `and` takes every other token, so only a stray `)` is left here.
            Some(extra) => Err(extra.error("this `)` closes no `(`".to_string())),
            None => Ok(Filter { root }),
        }
    }

    /// Whether `bytes` (an IPv4 datagram) matches. Never allocates;
    /// bytes that are not IPv4 match nothing, not even `not tcp`.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        View::new(bytes).is_some_and(|view| self.root.matches(&view))
    }
}

/// Splits on whitespace, with parentheses as tokens of their own.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        let single = c == '(' || c == ')';
        if c.is_whitespace() || single {
            if let Some(start) = start.take() {
                tokens.push(Token {
                    text: &text[start..at],
                    start,
                });
            }
            if single {
                tokens.push(Token {
                    text: &text[at..at + 1],
                    start: at,
                });
            }
        } else {
            start.get_or_insert(at);
        }
    }
    if let Some(start) = start {
        tokens.push(Token {
            text: &text[start..],
            start,
        });
    }
    tokens
}

struct Parser<'t> {
    tokens: Vec<Token<'t>>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<Token<'t>> {
        self.tokens.get(self.pos).copied()
    }

    fn next(&mut self, what: &str) -> Result<Token<'t>> {
        let token = self.peek().ok_or_else(|| {
            LiteralError::new(
                self.end..self.end,
                format!("expected {what}, found the end of the filter"),
            )
        })?;
        self.pos += 1;
        Ok(token)
    }

    fn eat(&mut self, word: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.text == word);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Operands separated by `word`, flattened into one node.
    fn chain(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<Node>,
        join: fn(Vec<Node>) -> Node,
    ) -> Result<Node> {
        let mut operands = vec![operand(self)?];
        while self.eat(word) {
            operands.push(operand(self)?);
        }
        Ok(match operands.len() {
            1 => operands.remove(0),
            _ => join(operands),
        })
    }

    fn or(&mut self) -> Result<Node> {
        self.chain("or", Self::and, Node::Or)
    }

    /// Like tcpdump's, but `and` may be left out between primitives, so
    /// `tcp dport 22` reads as `tcp and dport 22`.
    fn and(&mut self) -> Result<Node> {
        let mut operands = vec![self.unary()?];
        loop {
            let implicit = self.peek().is_some_and(|t| t.text != "or" && t.text != ")");
            if !(self.eat("and") || implicit) {
                break;
            }
            operands.push(self.unary()?);
        }
        Ok(match operands.len() {
            1 => operands.remove(0),
            _ => Node::And(operands),
        })
    }

    fn unary(&mut self) -> Result<Node> {
        let token = self.next(&format!("a filter primitive ({PRIMITIVES})"))?;
        if token.text != "not" && token.text != "(" {
            return self.primitive(token).map(Node::Primitive);
        }
        if self.depth == MAX_DEPTH {
            return Err(token.error(format!("filters nest at most {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let node = if token.text == "not" {
            self.unary().map(|node| Node::Not(Box::new(node)))
        } else {
            self.or().and_then(|node| {
                let close = self.next("`)`")?;
                match close.text {
                    ")" => Ok(node),
                    other => Err(close.error(format!("expected `)`, found `{other}`"))),
                }
            })
        };
        self.depth -= 1;
        node
    }

    fn primitive(&mut self, token: Token<'t>) -> Result<Primitive> {
        let direction = match token.text {
            "host" | "port" => Direction::Either,
            "src" | "sport" => Direction::Src,
            _ => Direction::Dst,
        };
        Ok(match token.text {
            "tcp" => Primitive::Protocol(crate::TCP),
            "udp" => Primitive::Protocol(crate::UDP),
            "icmp" => Primitive::Protocol(crate::ICMP),
            "proto" => Primitive::Protocol(value::number(
                self.next("a protocol number")?,
                "a protocol number",
            )?),
            "host" | "src" | "dst" => {
                Primitive::Host(direction, value::address(self.next("an address")?)?)
            }
            "net" => self.net()?,
            "port" | "sport" | "dport" => {
                Primitive::Port(direction, value::number(self.next("a port")?, "a port")?)
            }
            "tcp-flags" => Primitive::TcpFlags(tcp_flags::parse(self.next("TCP flags")?)?),
            "syn" => Primitive::TcpFlag(tcp_flags::SYN),
            "fin" => Primitive::TcpFlag(tcp_flags::FIN),
            "rst" => Primitive::TcpFlag(tcp_flags::RST),
            "ack" => Primitive::TcpFlag(tcp_flags::ACK),
            "icmp-type" => {
                let name = self.next("an ICMP message name or type")?;
                match icmp::type_and_code(name.text) {
                    Some((icmp_type, code)) => Primitive::IcmpType(icmp_type, code),
                    None => Primitive::IcmpType(
                        value::number(
                            name,
                            &format!("an ICMP message name ({}) or a type", icmp::names()),
                        )?,
                        None,
                    ),
                }
            }
            "len" => Primitive::Len(usize::from(value::number::<u16>(
                self.next("a length")?,
                "a length",
            )?)),
            other => {
                return Err(token.error(format!(
                    "expected a filter primitive ({PRIMITIVES}), found `{other}`"
                )))
            }
        })
    }

    /// `net ADDR/LEN`.
    fn net(&mut self) -> Result<Primitive> {
        let token = self.next("a network like 192.0.2.0/24")?;
        let (address, prefix) = token.split_once('/').ok_or_else(|| {
            token.error(format!(
                "expected a network like 192.0.2.0/24, found `{}`",
                token.text
            ))
        })?;
        let address = u32::from(value::address(address)?);
        let prefix: u8 = value::number(prefix, "a prefix length")?;
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        if prefix > 32 {
            return Err(token.error(format!(
                "expected a prefix length from 0 to 32, found `{prefix}`"
            )));
        }
        Ok(Primitive::Net {
            network: address & mask,
            mask,
        })
    }
}

/// The parts of a datagram primitives look at.
struct View<'a> {
    packet: Ipv4Packet<&'a [u8]>,
    len: usize,
    /// The IP payload, if this is a first (or the only) fragment.
    transport: Option<&'a [u8]>,
}

impl<'a> View<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        let packet = Ipv4Packet::new_unchecked(bytes.get(..IPV4_HEADER_LEN)?);
        let header_len = usize::from(packet.header_len());
        if packet.version() != 4 || header_len < IPV4_HEADER_LEN {
            return None;
        }
        let transport = bytes
            .get(header_len..)
            .filter(|_| packet.frag_offset() == 0);
        Some(View {
            packet,
            len: bytes.len(),
            transport,
        })
    }

    fn protocol(&self) -> u8 {
        self.packet.next_header().into()
    }

    /// The first `N` transport bytes of a `protocol` datagram.
    fn transport<const N: usize>(&self, protocols: &[u8]) -> Option<[u8; N]> {
        if !protocols.contains(&self.protocol()) {
            return None;
        }
        self.transport?.get(..N)?.try_into().ok()
    }
}

impl Node {
    fn matches(&self, view: &View<'_>) -> bool {
        match self {
            Node::Primitive(primitive) => primitive.matches(view),
            Node::Not(node) => !node.matches(view),
            Node::And(nodes) => nodes.iter().all(|node| node.matches(view)),
            Node::Or(nodes) => nodes.iter().any(|node| node.matches(view)),
        }
    }
}

impl Direction {
    fn matches<T: PartialEq>(self, src: T, dst: T, wanted: T) -> bool {
        match self {
            Direction::Src => src == wanted,
            Direction::Dst => dst == wanted,
            Direction::Either => src == wanted || dst == wanted,
        }
    }
}

impl Primitive {
    fn matches(&self, view: &View<'_>) -> bool {
        let (src, dst) = (view.packet.src_addr(), view.packet.dst_addr());
        match *self {
            Primitive::Protocol(protocol) => view.protocol() == protocol,
            Primitive::Host(direction, address) => direction.matches(src, dst, address),
            Primitive::Net { network, mask } => {
                [src, dst].iter().any(|&a| u32::from(a) & mask == network)
            }
            Primitive::Port(direction, port) => view
                .transport::<4>(&[crate::TCP, crate::UDP])
                .is_some_and(|t| {
                    let src_port = u16::from_be_bytes([t[0], t[1]]);
                    let dst_port = u16::from_be_bytes([t[2], t[3]]);
                    direction.matches(src_port, dst_port, port)
                }),
            Primitive::TcpFlags(flags) => tcp_flags_of(view) == Some(flags),
            Primitive::TcpFlag(flag) => tcp_flags_of(view).is_some_and(|flags| flags & flag != 0),
            Primitive::IcmpType(icmp_type, code) => view
                .transport::<2>(&[crate::ICMP])
                .is_some_and(|t| t[0] == icmp_type && code.is_none_or(|code| t[1] == code)),
            Primitive::Len(len) => view.len == len,
        }
    }
}

fn tcp_flags_of(view: &View<'_>) -> Option<u16> {
    let t = view.transport::<14>(&[crate::TCP])?;
    Some(u16::from_be_bytes([t[12], t[13]]) & tcp_flags::MASK)
}
