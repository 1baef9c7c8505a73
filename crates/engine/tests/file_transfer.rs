//! FTP and TFTP apps, client and server on two hosts joined by one link.

mod common;

use std::net::SocketAddrV4;

use ctsim_engine::host::{App, AppKind, CloseMode, File, FtpMode, Payload, Transfer};
use ctsim_engine::{AppOutcome, Builder, Duration, Instant, LinkParams, Record, Sim, What};

use common::{app, find, host, link, world, A, B};

fn files() -> Vec<File> {
    vec![
        File {
            name: "hello.txt".into(),
            content: Payload::Text("hello\n".into()),
        },
        File {
            name: "big.bin".into(),
            content: Payload::Bytes(100_000),
        },
    ]
}

fn ftp_server(timeout_s: u64) -> App {
    app(
        "server",
        0,
        AppKind::FtpServer {
            port: 21,
            files: files(),
            pasv_ports: None,
            timeout: Duration::from_secs(timeout_s),
        },
    )
}

fn ftp_client(mode: FtpMode, commands: Vec<Transfer>, timeout_s: u64) -> App {
    app(
        "client",
        10,
        AppKind::FtpClient {
            to: SocketAddrV4::new(B, 21),
            user: "anonymous".into(),
            password: "anonymous@".into(),
            mode,
            commands,
            timeout: Duration::from_secs(timeout_s),
        },
    )
}

fn get(name: &str, expect: Option<Payload>) -> Transfer {
    Transfer::Get {
        name: name.into(),
        expect,
    }
}

/// Runs until nothing is left to do (or `secs`).
/// One FTP session on `link`, both ends with 60 s timeouts, run to its
/// end: the run (for its records) and the apps' outcomes.
fn ftp_session(
    seed: u64,
    link: LinkParams,
    mode: FtpMode,
    commands: Vec<Transfer>,
) -> (Sim, Vec<AppOutcome>) {
    let client = vec![ftp_client(mode, commands, 60)];
    let mut sim = world(seed, link, client, vec![ftp_server(60)]);
    let out = run(&mut sim, 60);
    (sim, out)
}

fn run(sim: &mut Sim, secs: u64) -> Vec<AppOutcome> {
    sim.run_while_busy(Instant::ZERO + Duration::from_secs(secs));
    sim.outcomes()
}

/// The text `node` sent on FTP control connections and listings (port 21
/// at either end, or any port for `all`), in order.
fn payloads(sim: &Sim, node: &str) -> String {
    sent_text(sim, node, false)
}

fn sent_text(sim: &Sim, node: &str, all: bool) -> String {
    let id = sim.node_id(node).unwrap();
    let mut out = String::new();
    for r in sim.records() {
        if !matches!(r.what, What::Sent)
            || !matches!(r.place, ctsim_engine::Place::Node { node, .. } if node == id)
        {
            continue;
        }
        if let Some(text) = payload_text(r, all) {
            out.push_str(&text);
        }
    }
    out
}

fn payload_text(r: &Record, all: bool) -> Option<String> {
    let p: &[u8] = &r.packet;
    let ihl = usize::from(p.first()? & 0x0f) * 4;
    let l4 = p.get(ihl..)?;
    let ports = [
        u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
        u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
    ];
    if !all && !ports.contains(&21) {
        return None;
    }
    let data = match p.get(9)? {
        6 => l4.get(usize::from(l4.get(12)? >> 4) * 4..)?,
        _ => return None,
    };
    Some(String::from_utf8_lossy(data).into_owned())
}

/// TCP SYNs `node` sent: (source port, destination port).
fn syns(sim: &Sim, node: &str) -> Vec<(u16, u16)> {
    let id = sim.node_id(node).unwrap();
    sim.records()
        .iter()
        .filter(|r| matches!(r.what, What::Sent))
        .filter(|r| matches!(r.place, ctsim_engine::Place::Node { node, .. } if node == id))
        .filter_map(|r| {
            let p: &[u8] = &r.packet;
            let l4 = p.get(usize::from(p[0] & 0x0f) * 4..)?;
            (p[9] == 6 && l4[13] & 0x12 == 0x02).then(|| {
                (
                    u16::from_be_bytes([l4[0], l4[1]]),
                    u16::from_be_bytes([l4[2], l4[3]]),
                )
            })
        })
        .collect()
}

fn updown(link: ctsim_engine::LinkId, up: bool) -> ctsim_engine::Action {
    ctsim_engine::Action::Link {
        link,
        change: ctsim_engine::LinkChange {
            up: Some(up),
            ..Default::default()
        },
    }
}

fn assert_done(o: &AppOutcome) {
    assert_eq!((o.state.as_str(), &o.error), ("done", &None), "{o:?}");
}

#[test]
fn ftp_active_retr_comes_from_port_20() {
    let (sim, out) = ftp_session(
        1,
        link(5),
        FtpMode::Active,
        vec![get("big.bin", Some(Payload::Bytes(100_000)))],
    );
    let c = find(&out, "client");
    assert_done(c);
    assert_eq!(c.bytes_received, 100_000);
    let s = find(&out, "server");
    assert_eq!((s.state.as_str(), s.bytes_sent), ("listening", 100_000));
    let client_said = payloads(&sim, "a");
    assert!(
        client_said
            .starts_with("USER anonymous\r\nPASS anonymous@\r\nSYST\r\nTYPE I\r\nPORT 192,0,2,1,"),
        "{client_said}"
    );
    assert!(
        client_said.ends_with("RETR big.bin\r\nQUIT\r\n"),
        "{client_said}"
    );
    let server_said = payloads(&sim, "b");
    let server_said = server_said
        .split("\r\n")
        .filter(|l| l.len() > 3 && l.as_bytes()[..3].iter().all(u8::is_ascii_digit))
        .collect::<Vec<_>>();
    assert_eq!(
        server_said,
        [
            "220 (vsFTPd 3.0.5)",
            "331 Please specify the password.",
            "230 Login successful.",
            "215 UNIX Type: L8",
            "200 Switching to Binary mode.",
            "200 PORT command successful. Consider using PASV.",
            "150 Opening BINARY mode data connection for big.bin (100000 bytes).",
            "226 Transfer complete.",
            "221 Goodbye.",
        ]
    );
    // The data connection is the server's, from port 20 to the PORT's port.
    let from_server = syns(&sim, "b");
    assert_eq!(from_server.len(), 1);
    assert_eq!(from_server[0].0, 20);
    let port = client_said
        .split("PORT ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .unwrap();
    let n: Vec<u16> = port.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(from_server[0].1, n[4] * 256 + n[5]);
}

#[test]
fn ftp_passive_retr_of_text_checks_the_content() {
    let (sim, out) = ftp_session(
        2,
        link(3),
        FtpMode::Passive,
        vec![get("hello.txt", Some(Payload::Text("hello\n".into())))],
    );
    let c = find(&out, "client");
    assert_done(c);
    assert_eq!(c.bytes_received, 6);
    let said = payloads(&sim, "b");
    let pasv = said
        .split("\r\n")
        .find(|l| l.starts_with("227 "))
        .unwrap()
        .to_string();
    assert!(
        pasv.starts_with("227 Entering Passive Mode (192,0,2,2,"),
        "{pasv}"
    );
    assert!(pasv.ends_with(")."), "{pasv}");
    // The client opened both connections; the second to the 227's port.
    let from_client = syns(&sim, "a");
    assert_eq!(from_client.len(), 2);
    let inner = &pasv[pasv.find('(').unwrap() + 1..pasv.len() - 2];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(from_client[1].1, n[4] * 256 + n[5]);
    assert!(syns(&sim, "b").is_empty());
}

#[test]
fn ftp_epsv_and_eprt_transfer_and_say_so() {
    for (mode, setup, reply) in [
        (
            FtpMode::Epsv,
            "EPSV\r\n",
            "229 Entering Extended Passive Mode (|||",
        ),
        (
            FtpMode::Eprt,
            "EPRT |1|192.0.2.1|",
            "200 EPRT command successful. Consider using EPSV.",
        ),
    ] {
        let (sim, out) = ftp_session(
            3,
            link(2),
            mode,
            vec![get("big.bin", Some(Payload::Bytes(100_000)))],
        );
        let c = find(&out, "client");
        assert_done(c);
        assert_eq!(c.bytes_received, 100_000);
        assert!(payloads(&sim, "a").contains(setup), "{mode:?}");
        assert!(payloads(&sim, "b").contains(reply), "{mode:?}");
    }
}

#[test]
fn ftp_stor_then_list_then_retr_of_the_stored_file() {
    let (sim, out) = ftp_session(
        4,
        link(2),
        FtpMode::Passive,
        vec![
            Transfer::Put {
                name: "up.bin".into(),
                content: Payload::Bytes(70_000),
            },
            Transfer::List,
            get("up.bin", Some(Payload::Bytes(70_000))),
        ],
    );
    let c = find(&out, "client");
    assert_done(c);
    assert_eq!(c.bytes_sent, 70_000);
    let listing = payloads(&sim, "b");
    assert!(listing.contains("150 Ok to send data.\r\n"), "{listing}");
    assert!(listing.contains("150 Here comes the directory listing.\r\n"));
    assert!(listing.contains("226 Directory send OK.\r\n"));
    let lines = "-rw-r--r--    1 ftp      ftp             6 Jan 01 00:00 hello.txt\r\n\
         -rw-r--r--    1 ftp      ftp        100000 Jan 01 00:00 big.bin\r\n\
         -rw-r--r--    1 ftp      ftp         70000 Jan 01 00:00 up.bin\r\n";
    assert!(sent_text(&sim, "b", true).contains(lines));
    let s = find(&out, "server");
    assert_eq!(s.bytes_received, 70_000);
    // 70000 bytes up, the listing and the file down.
    assert_eq!(c.bytes_received, 70_000 + lines.len() as u64);
}

#[test]
fn ftp_retr_of_a_missing_file_is_550() {
    let (_, out) = ftp_session(5, link(1), FtpMode::Passive, vec![get("nope", None)]);
    let c = find(&out, "client");
    assert_eq!(c.state, "failed");
    assert_eq!(
        c.error.as_deref(),
        Some("RETR nope: 550 Failed to open file.")
    );
}

#[test]
fn ftp_content_that_differs_is_reported() {
    let (_, out) = ftp_session(
        6,
        link(1),
        FtpMode::Epsv,
        vec![get("hello.txt", Some(Payload::Text("hellO\n".into())))],
    );
    let c = find(&out, "client");
    assert_eq!(c.state, "failed");
    let e = c.error.as_deref().unwrap();
    assert!(
        e.starts_with("RETR hello.txt: content differs: byte 4 differs"),
        "{e}"
    );
}

/// The data connection of an active transfer, cut: the link goes down as
/// the server sends its SYN from port 20 (found by a first run).
fn cut_data_connection(client_timeout: u64, server_timeout: u64, up_at: Option<u64>) -> Sim {
    let build = |down_at: Option<Instant>| {
        let mut b = Builder::new(7);
        let client = ftp_client(FtpMode::Active, vec![get("big.bin", None)], client_timeout);
        let (ports, node) = host(A, vec![client]);
        let a = b.add_node("a", ports, node);
        let (ports, node) = host(B, vec![ftp_server(server_timeout)]);
        let bn = b.add_node("b", ports, node);
        let l = b.add_link("l", (a, 0), (bn, 0), link(10)).unwrap();
        if let Some(at) = down_at {
            b.schedule(at, updown(l, false));
            if let Some(up) = up_at {
                b.schedule(Instant::ZERO + Duration::from_secs(up), updown(l, true));
            }
        }
        b.build()
    };
    let mut probe = build(None);
    probe.run_while_busy(Instant::ZERO + Duration::from_secs(60));
    let b = probe.node_id("b").unwrap();
    let syn = probe
        .records()
        .iter()
        .find(|r| {
            matches!(r.what, What::Sent)
                && matches!(r.place, ctsim_engine::Place::Node { node, .. } if node == b)
                && r.packet[9] == 6
                && r.packet[33] & 0x12 == 0x02
        })
        .expect("the server's SYN");
    build(Some(syn.time + Duration::from_micros(1)))
}

#[test]
fn ftp_data_connection_that_fails_gives_425_or_a_timeout() {
    // The server gives up after 5 s and says 425 (delivered once the link
    // is back); the client reports the reply.
    let mut sim = cut_data_connection(60, 5, Some(8));
    let out = run(&mut sim, 120);
    let c = find(&out, "client");
    assert_eq!(c.state, "failed", "{c:?}");
    assert_eq!(
        c.error.as_deref(),
        Some("RETR big.bin: 425 Failed to establish connection.")
    );
    assert!(payloads(&sim, "a").ends_with("RETR big.bin\r\nQUIT\r\n"));

    // The client gives up first.
    let mut sim = cut_data_connection(3, 60, None);
    let out = run(&mut sim, 120);
    let c = find(&out, "client");
    assert_eq!(c.state, "timed-out", "{c:?}");
    assert_eq!(
        c.error.as_deref(),
        Some("timed out waiting for the data connection")
    );
}

#[test]
fn ftp_to_a_closed_port_is_refused() {
    let mut sim = world(
        8,
        link(1),
        vec![ftp_client(FtpMode::Passive, vec![Transfer::List], 60)],
        vec![],
    );
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(c.state, "refused");
    assert_eq!(
        c.error.as_deref(),
        Some("connection to 192.0.2.2:21 refused")
    );
}

/// Garbage on the control connection: the server answers and never panics.
#[test]
fn ftp_server_survives_random_commands() {
    let mut rng = ctsim_engine::rng::Rng::from_seed(11);
    let words = [
        "USER x",
        "PASS y",
        "PORT 192,0,2,1,200,1",
        "PORT 1,2,3",
        "EPRT |1|192.0.2.1|0|",
        "EPRT |2|::1|5|",
        "PASV",
        "EPSV",
        "EPSV ALL",
        "RETR big.bin",
        "STOR a/b",
        "LIST",
        "TYPE Q",
        "SIZE big.bin",
        "\u{7f}\u{0}",
        "retr hello.txt",
        "",
    ];
    for round in 0..20 {
        let mut text = String::new();
        for _ in 0..30 {
            text.push_str(words[rng.below(words.len() as u64) as usize]);
            if rng.below(4) == 0 {
                text.push('\n');
            } else {
                text.push_str("\r\n");
            }
        }
        let client = app(
            "client",
            10,
            AppKind::TcpClient {
                to: SocketAddrV4::new(B, 21),
                send: Payload::Text(text),
                expect: None,
                close: CloseMode::Close,
                timeout: Duration::from_secs(30),
            },
        );
        let mut sim = world(round, link(1), vec![client], vec![ftp_server(2)]);
        let out = run(&mut sim, 60);
        let s = find(&out, "server");
        assert_eq!(s.state, "listening");
        assert!(s.replies > 0);
    }
}

fn tftp_server() -> App {
    app(
        "server",
        0,
        AppKind::TftpServer {
            port: 69,
            files: files(),
        },
    )
}

fn tftp_client(transfer: Transfer) -> App {
    app(
        "client",
        10,
        AppKind::TftpClient {
            to: SocketAddrV4::new(B, 69),
            transfer,
            timeout: Duration::from_secs(600),
        },
    )
}

fn lossy(loss: f64) -> LinkParams {
    LinkParams {
        delay: Duration::from_millis(2),
        loss,
        ..Default::default()
    }
}

#[test]
fn tftp_get_of_many_blocks_survives_loss() {
    let mut sim = world(
        21,
        lossy(0.1),
        vec![tftp_client(get("big.bin", Some(Payload::Bytes(100_000))))],
        vec![tftp_server()],
    );
    let out = run(&mut sim, 900);
    let c = find(&out, "client");
    assert_done(c);
    assert_eq!(c.bytes_received, 100_000);
    assert!(sim
        .link_stats(ctsim_engine::LinkId(0))
        .iter()
        .any(|s| s.lost > 0));
    // The server answered from a port other than 69.
    let id = sim.node_id("b").unwrap();
    let first = sim
        .records()
        .iter()
        .find(|r| {
            matches!(r.what, What::Sent)
                && matches!(r.place, ctsim_engine::Place::Node { node, .. } if node == id)
        })
        .unwrap();
    let p: &[u8] = &first.packet;
    let sport = u16::from_be_bytes([p[20], p[21]]);
    assert_ne!(sport, 69);
    assert!((32768..=60999).contains(&sport));
}

#[test]
fn tftp_put_of_many_blocks_survives_loss_and_can_be_read_back() {
    let mut client2 = tftp_client(get("up.bin", Some(Payload::Bytes(5_120))));
    client2.name = "reader".into();
    client2.at = Instant::ZERO + Duration::from_secs(300);
    let mut sim = world(
        22,
        lossy(0.15),
        vec![
            tftp_client(Transfer::Put {
                name: "up.bin".into(),
                content: Payload::Bytes(5_120),
            }),
            client2,
        ],
        vec![tftp_server()],
    );
    let out = run(&mut sim, 900);
    let c = find(&out, "client");
    assert_done(c);
    assert_eq!(c.bytes_sent, 5_120);
    let r = find(&out, "reader");
    assert_done(r);
    assert_eq!(r.bytes_received, 5_120);
}

#[test]
fn tftp_missing_file_is_an_error_packet() {
    let mut sim = world(
        23,
        link(1),
        vec![tftp_client(get("nope", None))],
        vec![tftp_server()],
    );
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(c.state, "failed");
    assert_eq!(c.error.as_deref(), Some("Error code 1: File not found"));
}

#[test]
fn tftp_without_a_server_is_refused() {
    let mut sim = world(24, link(1), vec![tftp_client(get("x", None))], vec![]);
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(c.state, "refused", "{c:?}");
}

/// A "server" that sends binary bytes instead of replies: the client ends
/// with an error naming what it got, and nothing panics.
#[test]
fn ftp_client_reports_a_garbage_greeting() {
    let garbage = app(
        "server",
        0,
        AppKind::TcpServer {
            port: 21,
            mode: ctsim_engine::host::ServerMode::Send(5000),
        },
    );
    let mut sim = world(
        12,
        link(1),
        vec![ftp_client(FtpMode::Active, vec![Transfer::List], 60)],
        vec![garbage],
    );
    let out = run(&mut sim, 60);
    let c = find(&out, "client");
    assert_eq!(c.state, "failed", "{c:?}");
    let e = c.error.as_deref().unwrap();
    assert!(e.starts_with("malformed reply \"\\u{0}\\u{1}"), "{e}");
}
