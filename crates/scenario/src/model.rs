//! A loaded scenario: names resolved, defaults filled in, kinds sorted out, and every value that a
//! later error could point at kept with its [`Span`]. Built by [`crate::load::load`] from the file
//! format in [`file`]; only a scenario that passed validation is handed out.

pub mod file;
pub mod values;

use std::net::{Ipv4Addr, SocketAddrV4};

use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::diag::{Span, Spanned};
pub use values::{Bandwidth, Cidr, Duration, Probability};

/// The JSON Schema (draft 2020-12) of the scenario file format, with the doc comments as
/// descriptions.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(file::ScenarioFile).to_value()
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// Default 0.
    pub seed: u64,
    pub until: Option<Spanned<Duration>>,
    /// Hosts and routers in file order (hosts first).
    pub hosts: Vec<Host>,
    pub routers: Vec<Router>,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub apps: Vec<App>,
    pub packets: Vec<Packet>,
    pub events: Vec<Event>,
    /// Commands run on routers during the run, in file order.
    pub commands: Vec<AdminCommand>,
    pub checks: Vec<Check>,
}

impl Scenario {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name.value == name)
    }
    pub fn router(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|r| r.name.value == name)
    }
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name.value == name)
    }
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.value == name))
    }
    /// The interfaces of a host or router.
    pub fn interfaces(&self, node: &str) -> Option<&[Interface]> {
        self.host(node)
            .map(|h| h.interfaces.as_slice())
            .or_else(|| self.router(node).map(|r| r.interfaces.as_slice()))
    }
}

/// What a host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    /// A smoltcp TCP/IP stack that runs apps.
    #[default]
    Smoltcp,
    /// No stack: the host sends `packets` and records what it receives.
    None,
}

/// A host. `addr:` in the file gives one interface named `eth0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: Spanned<String>,
    pub stack: Stack,
    pub interfaces: Vec<Interface>,
    pub gateway: Option<Spanned<Ipv4Addr>>,
}

impl Host {
    pub fn is_raw(&self) -> bool {
        self.stack == Stack::None
    }
}

/// An interface and its address.
#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    /// For a host written with `addr:`, `eth0` with the span of the address.
    pub name: Spanned<String>,
    pub addr: Spanned<Cidr>,
}

/// A router.
#[derive(Clone, Debug, PartialEq)]
pub struct Router {
    pub name: Spanned<String>,
    pub interfaces: Vec<Interface>,
    /// Static routes in file order (connected routes are not listed).
    pub routes: Vec<Route>,
    /// iptables-restore text, not checked here.
    pub ruleset: Option<Spanned<String>>,
    /// `name: value` kernel settings, values as written.
    pub sysctl: Vec<(Spanned<String>, Spanned<String>)>,
    /// Whether the router tracks connections (`conntrack: off` turns it off), with the span of
    /// the setting when written.
    pub conntrack: Spanned<bool>,
}

/// A learning switch and its ports (`p0`, `p1`, …, with the span of `ports:`).
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub name: Spanned<String>,
    pub ports: Vec<Spanned<String>>,
}

/// A static route; `to: default` is `0.0.0.0/0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub to: Spanned<Cidr>,
    pub via: Spanned<Ipv4Addr>,
}

/// A link between two interfaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// As written, or `<node-a>-<node-b>` (then with the span of `ends`).
    pub name: Spanned<String>,
    /// Whether the file gave `name:`.
    pub named: bool,
    pub ends: [LinkEnd; 2],
    pub params: LinkParams,
    /// The link's entry in the file.
    pub span: Span,
}

/// One end of a link (or the sender of a raw packet): a node and one of its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEnd {
    pub node: String,
    /// Resolved even when the file names only the node.
    pub iface: String,
    /// What the file says (`client` or `r1.lan0`).
    pub written: Spanned<String>,
}

/// A link's behaviour, defaults filled in. Applies to both directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkParams {
    pub delay: Duration,
    pub bandwidth: Bandwidth,
    /// Packets.
    pub queue: u32,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub reorder_delay: Duration,
    pub mtu: u16,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::ZERO,
            bandwidth: Bandwidth::Unlimited,
            queue: 1000,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            mtu: 1500,
        }
    }
}

/// A program on a host with a stack.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub name: Option<Spanned<String>>,
    pub at: Duration,
    /// A host name.
    pub on: Spanned<String>,
    pub kind: AppKind,
    pub span: Span,
}

/// The program and its settings, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub enum AppKind {
    TcpServer {
        port: u16,
        mode: ServerMode,
    },
    TcpClient {
        to: SocketAddrV4,
        send: Payload,
        /// Bytes to read before closing.
        expect: Option<u64>,
        close: CloseMode,
        timeout: Option<Duration>,
    },
    UdpEcho {
        port: u16,
    },
    UdpSender {
        to: SocketAddrV4,
        count: u32,
        /// Payload bytes (default 64).
        size: u32,
        interval: Duration,
    },
    Ping {
        to: Ipv4Addr,
        count: u32,
        interval: Duration,
        /// Payload bytes (default 56).
        size: u32,
        ttl: u8,
    },
    FtpServer {
        port: u16,
        files: Vec<ServedFile>,
        /// vsftpd's `pasv_min_port`/`pasv_max_port`; default 1024–65535.
        pasv_ports: Option<(u16, u16)>,
        /// How long the server waits for a data connection (default 60s, vsftpd's).
        timeout: Option<Duration>,
    },
    FtpClient {
        to: SocketAddrV4,
        user: String,
        password: String,
        mode: FtpMode,
        /// In order; one connection for all of them.
        commands: Vec<FileTransfer>,
        timeout: Option<Duration>,
    },
    TftpServer {
        port: u16,
        files: Vec<ServedFile>,
    },
    TftpClient {
        to: SocketAddrV4,
        transfer: FileTransfer,
        timeout: Option<Duration>,
    },
    /// One SNMPv2c GetRequest for sysName.0 to a host or a subnet's broadcast address.
    SnmpManager {
        to: SocketAddrV4,
        community: String,
        /// How long to collect responses (default 3s).
        timeout: Option<Duration>,
    },
    /// Answers sysName.0 with the name of the node it runs on.
    SnmpAgent {
        port: u16,
        community: String,
    },
    IrcServer {
        port: u16,
    },
    IrcClient {
        to: SocketAddrV4,
        nick: String,
        dcc_send: Option<DccOffer>,
        accept_dcc: bool,
        /// How long to wait for registration, an offer and the transfer (default 60s).
        timeout: Option<Duration>,
    },
    SipCaller {
        to: SocketAddrV4,
        rtp_port: u16,
        duration: Duration,
    },
    SipCallee {
        port: u16,
        rtp_port: u16,
    },
}

/// A file an IRC client offers by DCC SEND: `size` bytes of the pattern, to the client `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DccOffer {
    pub to: String,
    pub file: String,
    pub size: u64,
}

impl AppKind {
    /// Whether this kind's outcome counts replies: echo replies, datagrams, GetResponses, or RTP
    /// packets received.
    pub fn counts_replies(&self) -> bool {
        matches!(
            self,
            AppKind::Ping { .. }
                | AppKind::UdpSender { .. }
                | AppKind::SnmpManager { .. }
                | AppKind::SipCaller { .. }
                | AppKind::SipCallee { .. }
        )
    }

    /// The `run:` name.
    pub fn run_name(&self) -> &'static str {
        match self {
            AppKind::TcpServer { .. } => "tcp-server",
            AppKind::TcpClient { .. } => "tcp-client",
            AppKind::UdpEcho { .. } => "udp-echo",
            AppKind::UdpSender { .. } => "udp-sender",
            AppKind::Ping { .. } => "ping",
            AppKind::FtpServer { .. } => "ftp-server",
            AppKind::FtpClient { .. } => "ftp-client",
            AppKind::TftpServer { .. } => "tftp-server",
            AppKind::TftpClient { .. } => "tftp-client",
            AppKind::SnmpManager { .. } => "snmp-manager",
            AppKind::SnmpAgent { .. } => "snmp-agent",
            AppKind::IrcServer { .. } => "irc-server",
            AppKind::IrcClient { .. } => "irc-client",
            AppKind::SipCaller { .. } => "sip-caller",
            AppKind::SipCallee { .. } => "sip-callee",
        }
    }
}

/// What a TCP server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMode {
    Echo,
    Discard,
    Send { bytes: u64 },
}

/// What a TCP client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Nothing,
    /// This many bytes (a repeating pattern).
    Bytes(u64),
    Text(String),
}

/// A file an FTP or TFTP server offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedFile {
    pub name: String,
    /// `Bytes(n)`: n bytes of the pattern; `Text`: the text.
    pub content: Payload,
}

/// How an FTP client opens its data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FtpMode {
    /// `PORT`: the server connects to the client (from port 20).
    Active,
    /// `PASV`: the client connects to the address of the 227 reply.
    #[default]
    Passive,
    /// `EPRT` (RFC 2428): active.
    Eprt,
    /// `EPSV` (RFC 2428): passive, to the control connection's address.
    Epsv,
}

/// One transfer of an FTP or TFTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileTransfer {
    /// Download; checked against `expect` when given (`Bytes(n)`: n bytes of the pattern, `Text`:
    /// the text).
    Get {
        name: String,
        expect: Option<Payload>,
    },
    /// Upload.
    Put { name: String, content: Payload },
    /// The directory listing (FTP).
    List,
}

/// How a TCP client ends its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CloseMode {
    /// Orderly close (FIN).
    #[default]
    Close,
    /// Abort (RST).
    Abort,
    /// Leave the connection open.
    None,
}

/// A packet a raw host sends.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub name: Option<Spanned<String>>,
    pub at: Duration,
    /// The raw host and the interface it sends from.
    pub from: LinkEnd,
    pub kind: PacketKind,
    /// The literal as written after the key (for `packet:` the full form, keyword included).
    pub literal: Spanned<String>,
    /// Default 1.
    pub count: u32,
    /// Default 0.
    pub interval: Duration,
    pub span: Span,
}

/// Which key held the literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Tcp,
    Udp,
    Icmp,
    /// `packet:`: the literal is in full form.
    Full,
}

impl Packet {
    /// The literal in full form (`tcp 192.0.2.9:40000 > …`) and how many bytes were put before the
    /// text as written: subtract that from an error's byte range before
    /// [`crate::diag::literal_error`].
    pub fn full_literal(&self) -> (String, usize) {
        let keyword = match self.kind {
            PacketKind::Tcp => "tcp ",
            PacketKind::Udp => "udp ",
            PacketKind::Icmp => "icmp ",
            PacketKind::Full => "",
        };
        (format!("{keyword}{}", self.literal.value), keyword.len())
    }
}

/// A scripted change to a link; `None` leaves a parameter as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: Duration,
    /// A link name.
    pub link: Spanned<String>,
    pub down: Option<bool>,
    pub delay: Option<Duration>,
    pub bandwidth: Option<Bandwidth>,
    pub queue: Option<u32>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    pub reorder: Option<f64>,
    pub reorder_delay: Option<Duration>,
    pub mtu: Option<u16>,
    pub span: Span,
}

impl Event {
    /// The link's parameters after this event.
    pub fn apply(&self, p: &mut LinkParams) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { p.$f = v; } )* };
        }
        set!(
            delay,
            bandwidth,
            queue,
            loss,
            duplicate,
            reorder,
            reorder_delay,
            mtu
        );
    }
}

/// A command an administrator runs on a router at `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminCommand {
    pub at: Duration,
    /// The router.
    pub on: Spanned<String>,
    pub tool: Tool,
    /// The arguments, without the program name.
    pub args: Spanned<String>,
    pub span: Span,
}

/// The programs a scenario can run on a router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Iptables,
    Conntrack,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Iptables => "iptables",
            Tool::Conntrack => "conntrack",
        }
    }
}

/// Something that must hold at `at` (default: the end of the run).
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub at: Option<Spanned<Duration>>,
    pub kind: CheckKind,
    /// The check's entry in the file (to report where a failed check is).
    pub span: Span,
}

/// The kinds of checks.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    /// An app's outcome; every field given must match.
    App {
        app: Spanned<String>,
        bytes_sent: Option<u64>,
        bytes_received: Option<u64>,
        state: Option<AppState>,
        replies: Option<u64>,
        /// Text the app's error must contain.
        error: Option<String>,
    },
    /// Packets received by a node (delivered to it), optionally filtered.
    Received {
        on: Spanned<String>,
        /// `None`: every packet. A filter string for `ctsim_packet::Filter::parse`.
        filter: Option<Spanned<String>>,
        count: CountRange,
    },
    /// Packets a link dropped.
    Dropped {
        link: Spanned<String>,
        count: u64,
        reason: Option<DropReason>,
    },
    /// Packets seen at a node (any event), matching a filter.
    Seen {
        on: Spanned<String>,
        filter: Spanned<String>,
        count: CountRange,
    },
    /// A router's conntrack table as `conntrack -L` lists it.
    Table {
        on: Spanned<String>,
        table: CtTable,
        assert: TableAssert,
    },
    /// The conntrack state packets matching a filter had at a router.
    CtState {
        on: Spanned<String>,
        filter: Spanned<String>,
        state: CtStateName,
        /// Every matching packet, not only the first.
        all: bool,
    },
    /// A `conntrack -S` counter of a router.
    Stat {
        on: Spanned<String>,
        stat: CtStat,
        value: u64,
    },
    /// One iptables table of a router, as `iptables-save -c` prints it.
    Rules {
        on: Spanned<String>,
        /// The table's name as written (validated against the known tables).
        table: Spanned<String>,
        assert: TableAssert,
    },
    /// The netfilter verdict packets matching a filter got at a router.
    Verdict {
        on: Spanned<String>,
        filter: Spanned<String>,
        verdict: VerdictName,
        all: bool,
    },
    /// Kernel log lines of a router (LOG, TRACE, conntrack messages).
    Log {
        on: Spanned<String>,
        pattern: Spanned<String>,
        count: CountRange,
    },
}

/// What a table check asserts.
#[derive(Clone, Debug, PartialEq)]
pub enum TableAssert {
    /// Some line matches the pattern (a substring; `*` matches any run of characters).
    Contains(Spanned<String>),
    /// No line matches the pattern.
    DoesNotContain(Spanned<String>),
    /// The table has this many lines.
    Count(CountRange),
}

/// The tables `conntrack -L` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CtTable {
    /// Confirmed connections.
    Conntrack,
    /// Expectations.
    Expect,
    /// Entries being destroyed.
    Dying,
    /// Entries whose first packet is still inside the hooks.
    Unconfirmed,
}

/// The states iptables' `--ctstate` matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CtStateName {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtStateName {
    pub fn name(self) -> &'static str {
        match self {
            CtStateName::New => "NEW",
            CtStateName::Established => "ESTABLISHED",
            CtStateName::Related => "RELATED",
            CtStateName::Invalid => "INVALID",
            CtStateName::Untracked => "UNTRACKED",
        }
    }
}

/// A netfilter verdict, as iptables names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum VerdictName {
    Accept,
    Drop,
}

impl VerdictName {
    pub fn name(self) -> &'static str {
        match self {
            VerdictName::Accept => "ACCEPT",
            VerdictName::Drop => "DROP",
        }
    }
}

/// Which matching packets a `ctstate` check looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Which {
    /// The first matching packet (default).
    First,
    /// Every matching packet.
    All,
}

/// The counters `conntrack -S` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CtStat {
    Found,
    Invalid,
    Insert,
    InsertFailed,
    Drop,
    EarlyDrop,
    Error,
    SearchRestart,
    ClashResolve,
    Chaintoolong,
    ExpectNew,
    ExpectCreate,
    ExpectDelete,
}

/// How many matches are expected: `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountRange {
    pub min: u64,
    pub max: Option<u64>,
}

impl CountRange {
    pub fn contains(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

/// The state of an app, as a check expects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AppState {
    /// A server waiting for connections.
    Listening,
    /// A client whose SYN is not answered yet.
    Connecting,
    /// A connection is open.
    Established,
    /// The connection is closing (FIN sent or received).
    Closing,
    /// The connection was closed in order.
    Closed,
    /// The connection was refused (RST in answer to the SYN).
    Refused,
    /// The connection was reset.
    Reset,
    /// The app gave up (`timeout:`, or TCP retransmissions exhausted).
    TimedOut,
    /// An ICMP error reported the destination unreachable.
    Unreachable,
    /// The app finished what it had to do (ping, udp-sender, a transfer).
    Done,
    /// The app is still at work (udp-sender, tftp-client).
    Running,
    /// The app could not do its work; its error says why.
    Failed,
}

impl AppState {
    /// Every state, for the test that keeps `name` and the file format together.
    pub const ALL: [AppState; 12] = [
        AppState::Listening,
        AppState::Connecting,
        AppState::Established,
        AppState::Closing,
        AppState::Closed,
        AppState::Refused,
        AppState::Reset,
        AppState::TimedOut,
        AppState::Unreachable,
        AppState::Done,
        AppState::Running,
        AppState::Failed,
    ];

    /// The word a scenario file and an app's outcome use for this state.
    pub fn name(self) -> &'static str {
        match self {
            AppState::Listening => "listening",
            AppState::Connecting => "connecting",
            AppState::Established => "established",
            AppState::Closing => "closing",
            AppState::Closed => "closed",
            AppState::Refused => "refused",
            AppState::Reset => "reset",
            AppState::TimedOut => "timed-out",
            AppState::Unreachable => "unreachable",
            AppState::Done => "done",
            AppState::Running => "running",
            AppState::Failed => "failed",
        }
    }
}

/// Why a link dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Random loss (`loss:`).
    Loss,
    /// The transmit queue was full.
    Queue,
    /// Larger than the link's MTU.
    Mtu,
    /// The link was down.
    Down,
}

#[cfg(test)]
mod tests {
    use super::AppState;

    #[test]
    fn app_state_names_are_what_the_file_format_reads() {
        for state in AppState::ALL {
            let read: AppState = serde_saphyr::from_str(state.name()).expect("a known state");
            assert_eq!(read, state, "{}", state.name());
        }
    }
}
