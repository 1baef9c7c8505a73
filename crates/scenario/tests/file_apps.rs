//! The FTP and TFTP apps in scenario files: what loads, what each mistake
//! reports and where, and a run of both through a router.

mod common;

use common::expect_err;
use ctsim_scenario::load::load;
use ctsim_scenario::model::{AppKind, FileTransfer, FtpMode, Payload, ServedFile};
use ctsim_scenario::run::{self, RunOptions};

const BASE: &str = "name: t
hosts:
  client: { addr: 192.0.2.2/24, gateway: 192.0.2.1 }
  server: { addr: 198.51.100.2/24, gateway: 198.51.100.1 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24 }
links:
  - { ends: [client, r1.lan0], delay: 1ms }
  - { ends: [server, r1.wan0], delay: 5ms, loss: 0.02 }
";

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

const APPS: &str = r#"apps:
  - on: server
    run: ftp-server
    files: { hello.txt: "hello\n", big.bin: 100000 }
    pasv-ports: 50000-50100
  - { on: server, run: tftp-server, files: { boot.bin: 3000 } }
  - { at: 10ms, on: client, run: ftp-client, name: active, to: 198.51.100.2:21, mode: active, get: big.bin, expect: 100000 }
  - at: 10ms
    on: client
    run: ftp-client
    name: session
    to: 198.51.100.2
    mode: epsv
    user: alice
    password: secret
    commands:
      - { list: true }
      - { get: hello.txt, text: "hello\n" }
      - { put: up.bin, size: 5000 }
      - { get: up.bin, expect: 5000 }
  - { at: 10ms, on: client, run: tftp-client, name: boot, to: 198.51.100.2, get: boot.bin, expect: 3000 }
  - { at: 10ms, on: client, run: tftp-client, name: upload, to: 198.51.100.2:69, put: log.txt, text: "ok\n" }
checks:
  - { app: active, state: done, bytes-received: 100000 }
  - { app: session, state: done, bytes-sent: 5000 }
  - { app: boot, state: done, bytes-received: 3000 }
  - { app: upload, state: done, bytes-sent: 3 }
"#;

#[test]
fn ftp_and_tftp_apps_load_with_their_defaults() {
    let s = load("file.yaml", &with(APPS)).unwrap();
    let kinds: Vec<&AppKind> = s.apps.iter().map(|a| &a.kind).collect();
    assert_eq!(
        kinds[0],
        &AppKind::FtpServer {
            port: 21,
            files: vec![
                ServedFile {
                    name: "hello.txt".into(),
                    content: Payload::Text("hello\n".into())
                },
                ServedFile {
                    name: "big.bin".into(),
                    content: Payload::Bytes(100_000)
                },
            ],
            pasv_ports: Some((50000, 50100)),
            timeout: None,
        }
    );
    assert!(matches!(kinds[1], AppKind::TftpServer { port: 69, files } if files.len() == 1));
    assert!(matches!(
        kinds[2],
        AppKind::FtpClient { mode: FtpMode::Active, user, password, commands, .. }
            if user == "anonymous" && password == "anonymous@"
            && commands == &[FileTransfer::Get { name: "big.bin".into(), expect: Some(Payload::Bytes(100_000)) }]
    ));
    let AppKind::FtpClient {
        to, mode, commands, ..
    } = kinds[3]
    else {
        panic!("{:?}", kinds[3]);
    };
    assert_eq!((to.port(), *mode, commands.len()), (21, FtpMode::Epsv, 4));
    assert_eq!(
        commands[2],
        FileTransfer::Put {
            name: "up.bin".into(),
            content: Payload::Bytes(5000)
        }
    );
    assert!(matches!(kinds[4], AppKind::TftpClient { to, .. } if to.port() == 69));
}

#[test]
fn ftp_and_tftp_through_a_router_pass_their_checks() {
    let yaml = with(APPS);
    let (s, source) = run::load("file.yaml", &yaml).unwrap();
    let out = run::run(&s, &source, &RunOptions::default()).unwrap();
    for c in &out.checks {
        assert!(c.passed, "{c:?}\n{:#?}", out.apps);
    }
    // Passive ports come from the configured range.
    let server = out.apps.iter().find(|a| a.kind == "ftp-server").unwrap();
    assert_eq!(server.state, "listening");
    // The same file and seed give the same run.
    let again = run::run(&s, &source, &RunOptions::default()).unwrap();
    assert_eq!(out.apps, again.apps);
    assert_eq!(out.end, again.end);
}

#[test]
fn a_failed_transfer_is_reported_by_an_app_check() {
    let yaml = with(
        "apps:
  - { on: server, run: ftp-server }
  - { at: 10ms, on: client, run: ftp-client, name: get, to: 198.51.100.2, get: nope }
checks:
  - { app: get, state: failed, error: \"550 Failed to open file.\" }
",
    );
    let (s, source) = run::load("file.yaml", &yaml).unwrap();
    let out = run::run(&s, &source, &RunOptions::default()).unwrap();
    assert!(!out.failed(), "{:?}", out.checks);
}

#[test]
fn mode_of_another_program() {
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, mode: echo, list: true }\n"),
        "echo",
        &["`mode: echo` does not apply to `run: ftp-client`", "`passive`, `active`"],
    );
    expect_err(
        &with("apps:\n  - { on: server, run: tcp-server, port: 7, mode: active }\n"),
        "active",
        &["`mode: active` does not apply to `run: tcp-server`"],
    );
}

#[test]
fn a_client_needs_one_transfer() {
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2 }\n"),
        "ftp-client",
        &["`run: ftp-client` needs `get:`, `put:` or `list: true`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: tftp-client, to: 198.51.100.2, get: a, put: b, size: 1 }\n"),
        "b, size",
        &["give one of `get:` and `put:`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, get: a, commands: [ { list: true } ] }\n"),
        "a, commands",
        &["give either `commands:` or one transfer, not both"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, commands: [] }\n"),
        "[]",
        &["`commands:` is empty"],
    );
}

#[test]
fn transfer_keys_that_do_not_go_together() {
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, put: up.bin }\n"),
        "up.bin",
        &["`put:` needs `size:` or `text:`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, put: up.bin, size: 5, expect: 5 }\n"),
        "5 }",
        &["`expect:` goes with `get:`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, commands: [ { get: a, size: 5 } ] }\n"),
        "5 }",
        &["`size:` goes with `put:`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, get: a, expect: 5, text: x }\n"),
        "x }",
        &["give either `expect:` or `text:`, not both"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: tftp-client, to: 198.51.100.2, list: true }\n"),
        "true",
        &["`list` does not apply to `run: tftp-client`"],
    );
    expect_err(
        &with("apps:\n  - { on: client, run: ftp-client, to: 198.51.100.2, commands: [ { get: a, port: 5 } ] }\n"),
        "port: 5",
        &["unknown key `port`", "did you mean `put`?"],
    );
}

#[test]
fn server_files_and_ranges() {
    expect_err(
        &with("apps:\n  - { on: server, run: ftp-server, files: { a/b: 1 } }\n"),
        "a/b",
        &["`a/b` cannot be a file name here"],
    );
    expect_err(
        &with("apps:\n  - { on: server, run: ftp-server, pasv-ports: 60000-50000 }\n"),
        "60000",
        &["`60000-50000` is not a port range", "`50000-50100`"],
    );
    expect_err(
        &with("apps:\n  - { on: server, run: tftp-server, files: { a: -1 } }\n"),
        "-1",
        &["cannot be negative"],
    );
    expect_err(
        &with("apps:\n  - { on: server, run: tftp-server, pasv-ports: 1-2 }\n"),
        "1-2",
        &["`pasv-ports` does not apply to `run: tftp-server`"],
    );
}
