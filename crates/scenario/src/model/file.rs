//! The scenario file exactly as written: what serde reads (unknown keys rejected, every value with
//! its position) and what the JSON Schema describes. `load` turns it into [`crate::model::Scenario`].
//!
//! Apps, packets and checks come in kinds that share one flat mapping (`run: tcp-client` takes `to`,
//! `ping` takes `ttl`, …). serde-saphyr loses positions inside internally tagged enums, so the kinds
//! are read flat here and sorted out by the loader, with one table ([`APP_KINDS`], …) feeding both the
//! loader's checks and the schema.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::json;

use super::values::{Bandwidth, Cidr, Duration, Ip, Probability, RouteDest, ScalarText, Target};
use super::{
    AppState, CloseMode, CtStat, CtStateName, CtTable, DropReason, Stack, VerdictName, Which,
};
use crate::diag::{Span, Spanned};

/// A YAML mapping from names to values, in file order, each name with its position.
#[derive(Clone, Debug)]
pub struct NamedMap<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for NamedMap<T> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NamedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = NamedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    out.push((key, map.next_value()?));
                }
                Ok(NamedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(NamedMap(Vec::new()))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for NamedMap<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Scenario")]
#[schemars(title = "ctsim scenario")]
pub struct ScenarioFile {
    /// Short name of the scenario, shown in reports.
    pub name: Spanned<String>,
    /// What the scenario shows, in a sentence or two.
    pub description: Option<Spanned<String>>,
    /// Seed of the run's random numbers (loss, reordering, ports, sequence numbers). Default 0.
    pub seed: Option<Spanned<u64>>,
    /// When the run ends (a duration such as `10s`). Without it, the run ends when nothing is left
    /// to do.
    pub until: Option<Spanned<Duration>>,
    /// Hosts by name. A host with `addr:` has one interface named `eth0`; `interfaces:` gives several.
    pub hosts: Option<NamedMap<HostFile>>,
    /// Routers by name.
    pub routers: Option<NamedMap<RouterFile>>,
    /// Switches by name: several hosts and routers on one segment (a broadcast reaches all of
    /// them). Their ports are `p0`, `p1`, …; link them as `ends: [agent1, lan.p0]`.
    pub switches: Option<NamedMap<SwitchFile>>,
    /// Links between interfaces (or switch ports).
    pub links: Option<Vec<Spanned<LinkFile>>>,
    /// Programs started on hosts that have a stack.
    pub apps: Option<Vec<Spanned<AppFile>>>,
    /// Packets sent byte for byte by raw hosts (`stack: none`).
    pub packets: Option<Vec<Spanned<PacketFile>>>,
    /// Changes to links during the run.
    pub events: Option<Vec<Spanned<EventFile>>>,
    /// What must hold at the end of the run (or at `at:`).
    pub checks: Option<Vec<Spanned<CheckFile>>>,
}

/// A host: a smoltcp TCP/IP stack (default) or a raw host that sends `packets` and records what
/// it receives.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Host")]
pub struct HostFile {
    /// `smoltcp` (default): a TCP/IP stack that runs apps; `none`: a raw host.
    pub stack: Option<Spanned<Stack>>,
    /// The address of the host's only interface, `eth0`, with its prefix length: `192.0.2.2/24`.
    pub addr: Option<Spanned<Cidr>>,
    /// Several interfaces by name, each with its address: `{ eth0: 192.0.2.3/24, eth1: 203.0.113.3/24 }`.
    pub interfaces: Option<NamedMap<Spanned<Cidr>>>,
    /// Default gateway; must lie in one of the host's subnets.
    pub gateway: Option<Spanned<Ip>>,
}

/// A learning switch.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Switch")]
pub struct SwitchFile {
    /// How many ports (`p0` … `pN-1`), 2 to 64.
    pub ports: Spanned<u32>,
}

/// A router: interfaces, static routes, and (later) a netfilter ruleset.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Router")]
pub struct RouterFile {
    /// Interfaces by name, each with its address: `{ lan0: 192.0.2.1/24, wan0: 198.51.100.1/24 }`.
    pub interfaces: NamedMap<Spanned<Cidr>>,
    /// Static routes; the routes to directly connected subnets are implicit.
    pub routes: Option<Vec<Spanned<RouteFile>>>,
    /// Netfilter rules in iptables-restore format (as iptables-save prints them).
    pub ruleset: Option<Spanned<String>>,
    /// Kernel settings by name, e.g. `net.netfilter.nf_conntrack_max: 262144` (the conntrack
    /// sysctls under `net.netfilter.`, with Linux's names and defaults).
    pub sysctl: Option<NamedMap<Spanned<ScalarText>>>,
    /// Connection tracking: `on` (default; the router tracks every packet) or `off` (no
    /// conntrack at all, like a Linux namespace where nothing loaded it).
    pub conntrack: Option<Spanned<Switch>>,
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    On,
    Off,
}

/// A static route.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Route")]
pub struct RouteFile {
    /// Destination: `default` or a network such as `203.0.113.0/24`.
    pub to: Spanned<RouteDest>,
    /// Next hop; must lie in one of the router's connected subnets.
    pub via: Spanned<Ip>,
}

/// A point-to-point link between two interfaces.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Link")]
pub struct LinkFile {
    /// Name used by events and checks. Default `<node-a>-<node-b>`; links between the same two
    /// nodes must be named.
    pub name: Option<Spanned<String>>,
    /// The two ends: `node` (a node with one interface) or `node.interface`.
    #[schemars(length(min = 2, max = 2))]
    pub ends: Spanned<Vec<Spanned<String>>>,
    /// One-way propagation delay. Default 0.
    pub delay: Option<Spanned<Duration>>,
    /// Transmission rate, e.g. `1Gbps`. Default unlimited.
    pub bandwidth: Option<Spanned<Bandwidth>>,
    /// Transmit queue length in packets (per direction). Default 1000, as Linux's txqueuelen.
    pub queue: Option<Spanned<u32>>,
    /// Probability that a packet is lost. Default 0.
    pub loss: Option<Spanned<Probability>>,
    /// Probability that a packet is delivered twice. Default 0.
    pub duplicate: Option<Spanned<Probability>>,
    /// Probability that a packet gets an extra random delay (up to `reorder-delay`). Default 0.
    pub reorder: Option<Spanned<Probability>>,
    /// Largest extra delay of a reordered packet. Default 0.
    pub reorder_delay: Option<Spanned<Duration>>,
    /// Largest IP packet the link carries, in bytes. Default 1500, at least 68.
    pub mtu: Option<Spanned<u32>>,
}

/// A program started on a host with a stack. `run:` picks the program; each takes its own keys.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "App")]
#[schemars(transform = app_kinds_schema)]
pub struct AppFile {
    /// When the app starts. Default 0s.
    pub at: Option<Spanned<Duration>>,
    /// The host it runs on.
    pub on: Spanned<String>,
    /// The program: `tcp-server`, `tcp-client`, `udp-echo`, `udp-sender`, `ping`, `ftp-server`,
    /// `ftp-client`, `tftp-server`, `tftp-client`, `snmp-manager`, `snmp-agent`, `irc-server`,
    /// `irc-client`, `sip-caller` or `sip-callee`.
    pub run: Spanned<AppRun>,
    /// Name used by checks (`app: NAME`).
    pub name: Option<Spanned<String>>,
    /// (tcp-server, udp-echo) Port to listen on; (ftp-server, tftp-server, snmp-agent,
    /// irc-server, sip-callee) default 21, 69, 161, 6667, 5060.
    pub port: Option<Spanned<u16>>,
    /// (tcp-server) What to do with a connection: `echo` (default), `discard`, or `send` (`bytes:`
    /// bytes); (ftp-client) how data connections open: `passive` (PASV, default), `active` (PORT),
    /// `epsv` or `eprt`.
    pub mode: Option<Spanned<ServerModeName>>,
    /// (tcp-server, with `mode: send`) How many bytes to send on each connection.
    pub bytes: Option<Spanned<u64>>,
    /// (tcp-client, udp-sender) `address:port`; (ping) address; (ftp-client, tftp-client) the
    /// server, `address` or `address:port`; (snmp-manager) the agent or a subnet's broadcast
    /// address, port 161 unless given; (irc-client, sip-caller) the server or callee, port 6667
    /// or 5060 unless given.
    pub to: Option<Spanned<Target>>,
    /// (tcp-client) Number of bytes to send.
    pub send: Option<Spanned<u64>>,
    /// (tcp-client) Text to send (instead of `send:`); (ftp-client, tftp-client) with `get:` the
    /// text the file must hold, with `put:` the file's content.
    pub text: Option<Spanned<String>>,
    /// (tcp-client) Number of bytes to read before closing; (ftp-client, tftp-client, with `get:`)
    /// the file must be this many bytes of the pattern a server's numeric file holds.
    pub expect: Option<Spanned<u64>>,
    /// (tcp-client) How to end: `close` (FIN, default), `abort` (RST) or `none` (stay open).
    pub close: Option<Spanned<CloseMode>>,
    /// (tcp-client, ftp-client, tftp-client) Give up after this long (default 60s, 300s, 300s);
    /// (ftp-server) how long to wait for a data connection before replying 425 (default 60s);
    /// (snmp-manager) how long to collect responses (default 3s); (irc-client) how long to wait for
    /// the welcome, an offer and the transfer (default 60s).
    pub timeout: Option<Spanned<Duration>>,
    /// (udp-sender, ping) Number of datagrams or echo requests. Default 1.
    pub count: Option<Spanned<u32>>,
    /// (udp-sender) payload bytes, default 64; (ping) payload bytes, default 56; (ftp-client,
    /// tftp-client, with `put:`) the file's size in bytes of the pattern.
    pub size: Option<Spanned<u32>>,
    /// (udp-sender, ping) Time between two sends. Default 1s.
    pub interval: Option<Spanned<Duration>>,
    /// (ping) IP time to live. Default 64.
    pub ttl: Option<Spanned<u8>>,
    /// (ftp-server, tftp-server) Files by name: a string is the file's text, a number its size in
    /// bytes of a fixed pattern: `{ hello.txt: "hello\n", big.bin: 100000 }`.
    pub files: Option<Spanned<NamedMap<Spanned<FileContent>>>>,
    /// (ftp-server) Passive ports, `low-high` (vsftpd's `pasv_min_port`/`pasv_max_port`). Default
    /// `1024-65535`.
    pub pasv_ports: Option<Spanned<String>>,
    /// (ftp-client) User name. Default `anonymous`.
    pub user: Option<Spanned<String>>,
    /// (ftp-client) Password. Default `anonymous@`.
    pub password: Option<Spanned<String>>,
    /// (ftp-client, tftp-client) Download this file (RETR, RRQ).
    pub get: Option<Spanned<String>>,
    /// (ftp-client, tftp-client) Upload a file of this name (STOR, WRQ), with `size:` or `text:`.
    pub put: Option<Spanned<String>>,
    /// (ftp-client) `true`: list the directory (LIST).
    pub list: Option<Spanned<bool>>,
    /// (ftp-client) Several transfers on one login, in order, each `{ get: … }`, `{ put: … }` or
    /// `{ list: true }` with the keys that go with it.
    pub commands: Option<Spanned<Vec<Spanned<CommandFile>>>>,
    /// (snmp-manager, snmp-agent) The SNMPv2c community. Default `public`.
    pub community: Option<Spanned<String>>,
    /// (irc-client) The nickname to register.
    pub nick: Option<Spanned<String>>,
    /// (irc-client) Offer a file by DCC SEND once registered: `{ to: NICK, file: NAME, size: N }`.
    pub dcc_send: Option<Spanned<DccSendFile>>,
    /// (irc-client) `true`: accept a DCC SEND offer, connect to the offered address and receive.
    pub accept_dcc: Option<Spanned<bool>>,
    /// (sip-caller, sip-callee) The even UDP port for RTP, announced in SDP. Default 16384.
    pub rtp_port: Option<Spanned<u16>>,
    /// (sip-caller) How long the call lasts once answered. Default 2s.
    pub duration: Option<Spanned<Duration>>,
}

/// `dcc-send:` of an irc-client.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "DccSend")]
pub struct DccSendFile {
    /// The receiving client's nick.
    pub to: Spanned<String>,
    /// The file's name in the offer (no spaces or slashes).
    pub file: Spanned<String>,
    /// Its size in bytes of the pattern.
    pub size: Spanned<u64>,
}

/// One FTP transfer in `commands:`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "FtpCommand")]
pub struct CommandFile {
    /// Download this file (RETR).
    pub get: Option<Spanned<String>>,
    /// Upload a file of this name (STOR), with `size:` or `text:`.
    pub put: Option<Spanned<String>>,
    /// `true`: list the directory (LIST).
    pub list: Option<Spanned<bool>>,
    /// (get) The file must be this many bytes of the pattern.
    pub expect: Option<Spanned<u64>>,
    /// (put) The file's size in bytes of the pattern.
    pub size: Option<Spanned<u32>>,
    /// (get) The text the file must hold; (put) the file's content.
    pub text: Option<Spanned<String>>,
}

/// A served file's content: text, or a size in bytes of the pattern (`byte i = i % 251`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    Text(String),
    Size(u64),
}

impl<'de> Deserialize<'de> for FileContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FileContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the file's text (a string) or its size in bytes (a number)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileContent, E> {
                Ok(FileContent::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileContent, E> {
                Ok(FileContent::Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileContent, E> {
                u64::try_from(v)
                    .map(FileContent::Size)
                    .map_err(|_| E::custom("a file size cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for FileContent {
    fn schema_name() -> Cow<'static, str> {
        "FileContent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The file's text, or its size in bytes of a fixed pattern.",
            "anyOf": [{ "type": "string" }, { "type": "integer", "minimum": 0 }],
        })
    }
}

/// Program names for `run:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AppRun {
    TcpServer,
    TcpClient,
    UdpEcho,
    UdpSender,
    Ping,
    FtpServer,
    FtpClient,
    TftpServer,
    TftpClient,
    SnmpManager,
    SnmpAgent,
    IrcServer,
    IrcClient,
    SipCaller,
    SipCallee,
}

impl AppRun {
    pub fn as_str(self) -> &'static str {
        match self {
            AppRun::TcpServer => "tcp-server",
            AppRun::TcpClient => "tcp-client",
            AppRun::UdpEcho => "udp-echo",
            AppRun::UdpSender => "udp-sender",
            AppRun::Ping => "ping",
            AppRun::FtpServer => "ftp-server",
            AppRun::FtpClient => "ftp-client",
            AppRun::TftpServer => "tftp-server",
            AppRun::TftpClient => "tftp-client",
            AppRun::SnmpManager => "snmp-manager",
            AppRun::SnmpAgent => "snmp-agent",
            AppRun::IrcServer => "irc-server",
            AppRun::IrcClient => "irc-client",
            AppRun::SipCaller => "sip-caller",
            AppRun::SipCallee => "sip-callee",
        }
    }

    /// This kind's entry in [`APP_KINDS`].
    pub fn keys(self) -> &'static KindKeys {
        let name = self.as_str();
        APP_KINDS
            .iter()
            .find(|k| k.kind == name)
            .expect("every kind is in APP_KINDS")
    }
}

/// `mode:`: what a TCP server does with each connection (`echo`, `discard`, `send`), or how an FTP
/// client opens data connections (`passive`, `active`, `epsv`, `eprt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServerModeName {
    /// (tcp-server) Send back what it receives.
    Echo,
    /// (tcp-server) Read and drop.
    Discard,
    /// (tcp-server) Send `bytes:` bytes, then close.
    Send,
    /// (ftp-client) PORT: the server connects to the client, from port 20.
    Active,
    /// (ftp-client) PASV: the client connects to the address of the server's 227 reply.
    Passive,
    /// (ftp-client) EPRT (RFC 2428): active, extended syntax.
    Eprt,
    /// (ftp-client) EPSV (RFC 2428): passive, to the control connection's address.
    Epsv,
}

impl ServerModeName {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerModeName::Echo => "echo",
            ServerModeName::Discard => "discard",
            ServerModeName::Send => "send",
            ServerModeName::Active => "active",
            ServerModeName::Passive => "passive",
            ServerModeName::Eprt => "eprt",
            ServerModeName::Epsv => "epsv",
        }
    }
}

/// The keys one kind of entry takes (besides the keys every kind takes).
pub struct KindKeys {
    pub kind: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

impl KindKeys {
    pub fn allows(&self, key: &str) -> bool {
        self.required.contains(&key) || self.optional.contains(&key)
    }
    /// The keys as a readable list.
    pub fn list(&self) -> String {
        let keys: Vec<String> = self
            .required
            .iter()
            .chain(self.optional)
            .map(|k| format!("`{k}`"))
            .collect();
        keys.join(", ")
    }
}

/// Keys every app takes.
pub const APP_COMMON: &[&str] = &["at", "on", "run", "name"];

/// Keys of each `run:` kind.
pub const APP_KINDS: &[KindKeys] = &[
    KindKeys {
        kind: "tcp-server",
        required: &["port"],
        optional: &["mode", "bytes"],
    },
    KindKeys {
        kind: "tcp-client",
        required: &["to"],
        optional: &["send", "text", "expect", "close", "timeout"],
    },
    KindKeys {
        kind: "udp-echo",
        required: &["port"],
        optional: &[],
    },
    KindKeys {
        kind: "udp-sender",
        required: &["to"],
        optional: &["count", "size", "interval"],
    },
    KindKeys {
        kind: "ping",
        required: &["to"],
        optional: &["count", "interval", "size", "ttl"],
    },
    KindKeys {
        kind: "ftp-server",
        required: &[],
        optional: &["port", "files", "pasv-ports", "timeout"],
    },
    KindKeys {
        kind: "ftp-client",
        required: &["to"],
        optional: &[
            "user", "password", "mode", "get", "put", "list", "commands", "expect", "size", "text",
            "timeout",
        ],
    },
    KindKeys {
        kind: "tftp-server",
        required: &[],
        optional: &["port", "files"],
    },
    KindKeys {
        kind: "tftp-client",
        required: &["to"],
        optional: &["get", "put", "expect", "size", "text", "timeout"],
    },
    KindKeys {
        kind: "snmp-manager",
        required: &["to"],
        optional: &["community", "timeout"],
    },
    KindKeys {
        kind: "snmp-agent",
        required: &[],
        optional: &["port", "community"],
    },
    KindKeys {
        kind: "irc-server",
        required: &[],
        optional: &["port"],
    },
    KindKeys {
        kind: "irc-client",
        required: &["to", "nick"],
        optional: &["dcc-send", "accept-dcc", "timeout"],
    },
    KindKeys {
        kind: "sip-caller",
        required: &["to"],
        optional: &["rtp-port", "duration"],
    },
    KindKeys {
        kind: "sip-callee",
        required: &[],
        optional: &["port", "rtp-port"],
    },
];

impl AppFile {
    /// The kind-specific keys present, with the position of their values.
    pub fn present(&self) -> Vec<(&'static str, Span)> {
        let mut v = Vec::new();
        macro_rules! p {
            ($($f:ident => $k:literal),*) => { $( if let Some(x) = &self.$f { v.push(($k, x.span)); } )* };
        }
        p!(port => "port", mode => "mode", bytes => "bytes", to => "to", send => "send",
           text => "text", expect => "expect", close => "close", timeout => "timeout",
           count => "count", size => "size", interval => "interval", ttl => "ttl",
           files => "files", pasv_ports => "pasv-ports", user => "user", password => "password",
           get => "get", put => "put", list => "list", commands => "commands",
           community => "community", nick => "nick", dcc_send => "dcc-send",
           accept_dcc => "accept-dcc", rtp_port => "rtp-port", duration => "duration");
        v
    }
}

/// A packet sent byte for byte by a raw host. Exactly one of `tcp`, `udp`, `icmp`, `packet`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Packet")]
#[schemars(transform = packet_kinds_schema)]
pub struct PacketFile {
    /// Name, for `quote=NAME` in a later ICMP error.
    pub name: Option<Spanned<String>>,
    /// When it is sent. Default 0s.
    pub at: Option<Spanned<Duration>>,
    /// The raw host that sends it: `node`, or `node.interface` when it has several.
    pub from: Spanned<String>,
    /// A TCP segment: `"192.0.2.9:40000 > 198.51.100.2:22 S seq=1000 win=64240"`.
    pub tcp: Option<Spanned<String>>,
    /// A UDP datagram: `"192.0.2.9:5000 > 198.51.100.2:53 len=32"`.
    pub udp: Option<Spanned<String>>,
    /// An ICMP message: `"192.0.2.9 > 198.51.100.2 port-unreachable quote=syn"`.
    pub icmp: Option<Spanned<String>>,
    /// Any IP packet, in the full literal form: `"ip 192.0.2.9 > 198.51.100.2 proto=47 len=20"`.
    pub packet: Option<Spanned<String>>,
    /// How many copies to send. Default 1.
    pub count: Option<Spanned<u32>>,
    /// Time between two copies. Default 0.
    pub interval: Option<Spanned<Duration>>,
}

/// A scripted change: to a link (`link:` and any link parameter; `down: true` cuts the link), or
/// a command an administrator types on a router (`on:` with `iptables:` or `conntrack:`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Event")]
pub struct EventFile {
    /// When the change happens.
    pub at: Spanned<Duration>,
    /// The link's name.
    pub link: Option<Spanned<String>>,
    /// (command) The router the command runs on.
    pub on: Option<Spanned<String>>,
    /// (command) `iptables` arguments: `"-t nat -A POSTROUTING -o wan0 -j MASQUERADE"`.
    pub iptables: Option<Spanned<String>>,
    /// (command) `conntrack` arguments: `"-F"`, `"-D -p tcp --dport 22"`, `"-U -s 192.0.2.2 --mark 1"`.
    pub conntrack: Option<Spanned<String>>,
    /// `true` takes the link down (every packet is dropped), `false` brings it back.
    pub down: Option<Spanned<bool>>,
    /// New one-way delay.
    pub delay: Option<Spanned<Duration>>,
    /// New rate (`unlimited` lifts the limit).
    pub bandwidth: Option<Spanned<Bandwidth>>,
    /// New queue length in packets.
    pub queue: Option<Spanned<u32>>,
    /// New loss probability.
    pub loss: Option<Spanned<Probability>>,
    /// New duplication probability.
    pub duplicate: Option<Spanned<Probability>>,
    /// New reordering probability.
    pub reorder: Option<Spanned<Probability>>,
    /// New largest extra delay of a reordered packet.
    pub reorder_delay: Option<Spanned<Duration>>,
    /// New MTU (at least 68).
    pub mtu: Option<Spanned<u32>>,
}

/// Something that must hold at the end of the run, or at `at:`. The kind is given by its key:
/// `app:` (an app's outcome), `received:` (packets a node received), `dropped:` (packets a link
/// dropped), `seen:` (packets seen at a node), `table:` (a router's conntrack table), `packet:`
/// (the conntrack state of packets at a router), `stat:` (a `conntrack -S` counter).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Check")]
#[schemars(transform = check_kinds_schema)]
pub struct CheckFile {
    /// When to evaluate the check. Default: at the end of the run.
    pub at: Option<Spanned<Duration>>,
    /// (app check) The app's name.
    pub app: Option<Spanned<String>>,
    /// (app check) Bytes the app sent.
    pub bytes_sent: Option<Spanned<u64>>,
    /// (app check) Bytes the app received.
    pub bytes_received: Option<Spanned<u64>>,
    /// (app check) The app's state.
    pub state: Option<Spanned<AppState>>,
    /// (app check, ping and udp-sender) Replies received.
    pub replies: Option<Spanned<u64>>,
    /// (app check) Text the app's error must contain.
    pub error: Option<Spanned<String>>,
    /// (received, seen) The node.
    pub on: Option<Spanned<String>>,
    /// Packets received by the node `on:` that match this filter (empty or null: every packet).
    #[serde(default, deserialize_with = "nullable_string")]
    #[schemars(with = "Option<String>")]
    pub received: Option<Spanned<String>>,
    /// Packets seen at the node `on:` (received, forwarded, sent or dropped) that match this filter.
    pub seen: Option<Spanned<String>>,
    /// (received, seen) Exactly this many packets.
    pub count: Option<Spanned<u64>>,
    /// (received, seen) At least this many packets (default 1 when neither `count` nor `max` is given).
    pub min: Option<Spanned<u64>>,
    /// (received, seen) At most this many packets.
    pub max: Option<Spanned<u64>>,
    /// (dropped) The link's name.
    pub link: Option<Spanned<String>>,
    /// Exactly this many packets dropped by the link `link:`.
    pub dropped: Option<Spanned<u64>>,
    /// (dropped) Count only drops for this reason: `loss`, `queue`, `mtu` or `down`.
    pub reason: Option<Spanned<DropReason>>,
    /// A conntrack table of the router `on:` as `conntrack -L` lists it: `conntrack`,
    /// `expect`, `dying` or `unconfirmed`; with `contains`, `does-not-contain` or `count`.
    pub table: Option<Spanned<CtTable>>,
    /// (table) A line contains this text (`*` matches any run of characters).
    pub contains: Option<Spanned<String>>,
    /// (table) No line contains this text (`*` matches any run of characters).
    pub does_not_contain: Option<Spanned<String>>,
    /// Packets at the router `on:` matching this filter; with `ctstate`.
    pub packet: Option<Spanned<String>>,
    /// (packet) The conntrack state the packet had there: `NEW`, `ESTABLISHED`, `RELATED`,
    /// `INVALID` or `UNTRACKED`.
    pub ctstate: Option<Spanned<CtStateName>>,
    /// (packet) `first` (default): the first matching packet; `all`: every one.
    pub which: Option<Spanned<Which>>,
    /// A `conntrack -S` counter of the router `on:` (`invalid`, `drop`, `early_drop`, …); with
    /// `value`.
    pub stat: Option<Spanned<CtStat>>,
    /// (stat) The counter's value.
    pub value: Option<Spanned<u64>>,
    /// The rules of one iptables table of the router `on:` as `iptables-save -c` prints them
    /// (`filter`, `nat`, `mangle`, `raw`, `security`); with `contains`, `does-not-contain` or
    /// `count`. Chain lines (`:INPUT DROP [3:180]`) count too.
    pub rules: Option<Spanned<String>>,
    /// (packet) The netfilter verdict the packet got at the router: `ACCEPT` or `DROP`.
    pub verdict: Option<Spanned<VerdictName>>,
    /// A kernel log line of the router `on:` (LOG, TRACE, conntrack messages) matching this
    /// pattern (`*` matches any run of characters); with `count`, `min` or `max` (default: at
    /// least one).
    pub log: Option<Spanned<String>>,
}

/// A key that may be null (`received:` alone means every packet): present-but-null becomes `""`.
fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<String>>, D::Error> {
    let s = Spanned::<Option<String>>::deserialize(d)?;
    Ok(Some(s.map(Option::unwrap_or_default)))
}

/// Keys that pick the kind of a check.
pub const CHECK_SELECTORS: &[&str] = &[
    "app", "received", "dropped", "seen", "table", "packet", "stat", "rules", "log",
];

/// Keys of each check kind (named after its selector key); `at` is allowed everywhere.
pub const CHECK_KINDS: &[KindKeys] = &[
    KindKeys {
        kind: "app",
        required: &["app"],
        optional: &["bytes-sent", "bytes-received", "state", "replies", "error"],
    },
    KindKeys {
        kind: "received",
        required: &["on", "received"],
        optional: &["count", "min", "max"],
    },
    KindKeys {
        kind: "dropped",
        required: &["link", "dropped"],
        optional: &["reason"],
    },
    KindKeys {
        kind: "seen",
        required: &["on", "seen"],
        optional: &["count", "min", "max"],
    },
    KindKeys {
        kind: "table",
        required: &["on", "table"],
        optional: &["contains", "does-not-contain", "count", "min", "max"],
    },
    KindKeys {
        kind: "packet",
        required: &["on", "packet"],
        optional: &["ctstate", "verdict", "which"],
    },
    KindKeys {
        kind: "stat",
        required: &["on", "stat", "value"],
        optional: &[],
    },
    KindKeys {
        kind: "rules",
        required: &["on", "rules"],
        optional: &["contains", "does-not-contain", "count", "min", "max"],
    },
    KindKeys {
        kind: "log",
        required: &["on", "log"],
        optional: &["count", "min", "max"],
    },
];

impl CheckFile {
    /// The keys present (besides `at`), with the position of their values.
    pub fn present(&self) -> Vec<(&'static str, Span)> {
        let mut v = Vec::new();
        macro_rules! p {
            ($($f:ident => $k:literal),*) => { $( if let Some(x) = &self.$f { v.push(($k, x.span)); } )* };
        }
        p!(app => "app", bytes_sent => "bytes-sent", bytes_received => "bytes-received",
           state => "state", replies => "replies", error => "error", on => "on",
           received => "received", seen => "seen", count => "count", min => "min", max => "max",
           link => "link", dropped => "dropped", reason => "reason", table => "table",
           contains => "contains", does_not_contain => "does-not-contain", packet => "packet",
           ctstate => "ctstate", which => "which", stat => "stat", value => "value",
           rules => "rules", verdict => "verdict", log => "log");
        v
    }
}

fn keys_schema(
    common: &[&str],
    k: &KindKeys,
    discriminator: Option<(&str, &str)>,
) -> serde_json::Value {
    let mut names: Vec<&str> = common.to_vec();
    names.extend(k.required);
    names.extend(k.optional);
    let mut s = json!({
        "required": k.required,
        "propertyNames": { "enum": names },
    });
    if let Some((key, value)) = discriminator {
        s["properties"] = json!({ key: { "const": value } });
    }
    s
}

fn app_kinds_schema(schema: &mut Schema) {
    let one_of: Vec<_> = APP_KINDS
        .iter()
        .map(|k| keys_schema(APP_COMMON, k, Some(("run", k.kind))))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

fn check_kinds_schema(schema: &mut Schema) {
    let one_of: Vec<_> = CHECK_KINDS
        .iter()
        .map(|k| keys_schema(&["at"], k, None))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

fn packet_kinds_schema(schema: &mut Schema) {
    let one_of: Vec<_> = ["tcp", "udp", "icmp", "packet"]
        .iter()
        .map(|k| json!({ "required": [k] }))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}
