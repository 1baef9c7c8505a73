//! The SNMP, IRC and SIP apps in scenario files: what loads, what each
//! mistake reports and where, and a run of all of them through a router.

mod common;

use common::expect_err;
use ctsim_scenario::load::load;
use ctsim_scenario::model::{AppKind, DccOffer, Duration};
use ctsim_scenario::run::{self, RunOptions};

const BASE: &str = "name: t
hosts:
  alice: { addr: 192.0.2.2/24, gateway: 192.0.2.1 }
  server: { addr: 198.51.100.2/24, gateway: 198.51.100.1 }
  bob: { addr: 203.0.113.2/24, gateway: 203.0.113.1 }
routers:
  r1:
    interfaces: { lan0: 192.0.2.1/24, wan0: 198.51.100.1/24, dmz0: 203.0.113.1/24 }
links:
  - { ends: [alice, r1.lan0], delay: 1ms }
  - { ends: [server, r1.wan0], delay: 5ms }
  - { ends: [bob, r1.dmz0], delay: 2ms }
";

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

const APPS: &str = r#"apps:
  - { on: server, run: snmp-agent, name: agent }
  - { at: 10ms, on: alice, run: snmp-manager, name: query, to: 198.51.100.2 }
  - { on: server, run: irc-server, name: ircd }
  - { on: bob, run: irc-client, name: bob, to: 198.51.100.2, nick: bob, accept-dcc: true }
  - at: 300ms
    on: alice
    run: irc-client
    name: alice
    to: 198.51.100.2:6667
    nick: alice
    dcc-send: { to: bob, file: report.pdf, size: 50000 }
  - { on: server, run: sip-callee, name: phone, rtp-port: 20000 }
  - { at: 10ms, on: alice, run: sip-caller, name: call, to: 198.51.100.2, duration: 1s }
checks:
  - { app: query, state: done, replies: 1 }
  - { app: agent, state: listening }
  - { app: alice, state: done, bytes-sent: 50000 }
  - { app: bob, state: done, bytes-received: 50000 }
  - { app: ircd, state: listening }
  - { app: call, state: done }
  - { app: phone, state: done, replies: 50 }
"#;

#[test]
fn helper_apps_load_with_their_defaults() {
    let s = load("file.yaml", &with(APPS)).unwrap();
    let kinds: Vec<&AppKind> = s.apps.iter().map(|a| &a.kind).collect();
    assert_eq!(
        kinds[0],
        &AppKind::SnmpAgent {
            port: 161,
            community: "public".into()
        }
    );
    assert!(matches!(
        kinds[1],
        AppKind::SnmpManager { to, community, timeout: None } if to.port() == 161 && community == "public"
    ));
    assert_eq!(kinds[2], &AppKind::IrcServer { port: 6667 });
    assert!(matches!(
        kinds[3],
        AppKind::IrcClient { to, nick, dcc_send: None, accept_dcc: true, timeout: None }
            if to.port() == 6667 && nick == "bob"
    ));
    let AppKind::IrcClient { dcc_send, .. } = kinds[4] else {
        panic!("{:?}", kinds[4]);
    };
    assert_eq!(
        dcc_send,
        &Some(DccOffer {
            to: "bob".into(),
            file: "report.pdf".into(),
            size: 50_000
        })
    );
    assert_eq!(
        kinds[5],
        &AppKind::SipCallee {
            port: 5060,
            rtp_port: 20000
        }
    );
    assert!(matches!(
        kinds[6],
        AppKind::SipCaller { to, rtp_port: 16384, duration } if to.port() == 5060 && *duration == Duration::from_secs(1)
    ));
}

#[test]
fn snmp_irc_and_sip_through_a_router_pass_their_checks() {
    let yaml = with(APPS);
    let (s, source) = run::load("file.yaml", &yaml).unwrap();
    let out = run::run(&s, &source, &RunOptions::default()).unwrap();
    assert!(!out.failed(), "{:?}\n{:?}", out.checks, out.apps);
    // The agent names itself after its node.
    let again = run::run(&s, &source, &RunOptions::default()).unwrap();
    assert_eq!(format!("{:?}", out.apps), format!("{:?}", again.apps));
}

#[test]
fn irc_client_keys() {
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2 }\n"),
        "irc-client",
        &["`run: irc-client` needs `nick:`"],
    );
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2, nick: 2bob }\n"),
        "2bob",
        &["`2bob` is not an IRC nickname"],
    );
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2, nick: bob, dcc-send: { to: Bob, file: a, size: 1 } }\n"),
        "Bob",
        &["`bob` cannot offer a file to itself"],
    );
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2, nick: bob, dcc-send: { to: al, file: \"a b\", size: 1 } }\n"),
        "\"a b\"",
        &["`a b` cannot be a DCC file name"],
    );
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2, nick: bob, dcc-send: { to: al, file: a, bytes: 1 } }\n"),
        "bytes",
        &["unknown key `bytes`"],
    );
    expect_err(
        &with(
            "apps:\n  - { on: bob, run: irc-client, to: 198.51.100.2, nick: bob, community: x }\n",
        ),
        "x }",
        &["`community` does not apply to `run: irc-client`"],
    );
}

#[test]
fn snmp_and_sip_keys() {
    expect_err(
        &with("apps:\n  - { on: alice, run: snmp-manager, to: 198.51.100.2, community: \"\" }\n"),
        "\"\"",
        &["`` cannot be a community"],
    );
    expect_err(
        &with("apps:\n  - { on: alice, run: snmp-manager, to: 198.51.100.2, nick: x }\n"),
        "x }",
        &["`nick` does not apply to `run: snmp-manager`"],
    );
    expect_err(
        &with("apps:\n  - { on: alice, run: sip-caller, to: 198.51.100.2, rtp-port: 16385 }\n"),
        "16385",
        &["RTP cannot use port 16385", "RFC 3550"],
    );
    expect_err(
        &with("apps:\n  - { on: alice, run: sip-caller, to: 198.51.100.2, duration: 0s }\n"),
        "0s",
        &["a call of 0s sends no RTP"],
    );
    expect_err(
        &with("apps:\n  - { on: alice, run: sip-caller, to: 198.51.100.2:0 }\n"),
        "198.51.100.2:0",
        &["bad port in `198.51.100.2:0`"],
    );
    expect_err(
        &with("apps:\n  - { on: server, run: sip-callee, duration: 1s }\n"),
        "1s",
        &["`duration` does not apply to `run: sip-callee`"],
    );
    expect_err(
        &with("apps:\n  - { on: bob, run: irc-client, name: c, to: 198.51.100.2, nick: bob }\nchecks:\n  - { app: c, replies: 1 }\n"),
        "c, replies",
        &["this app gets no replies"],
    );
}
