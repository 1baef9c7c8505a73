//! Properties: print → parse → print is stable for random rulesets; random
//! rule text and random packets never panic.

use ctsim_conntrack::{time::Instant, CtInfo};
use ctsim_netfilter::*;
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = String> {
    (any::<u8>(), any::<u8>(), 0u8..=32).prop_map(|(a, b, p)| format!("192.{a}.{b}.7/{p}"))
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u16>().prop_map(|p| p.to_string()),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("{}:{}", a.min(b), a.max(b))),
    ]
}

fn bang() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just("! ")]
}

/// One rule's options: a protocol part, generic matches, and a target.
fn rule() -> impl Strategy<Value = String> {
    let proto = prop_oneof![
        Just(String::new()),
        (bang(), port(), port()).prop_map(|(b, s, d)| format!("-p tcp {b}--sport {s} --dport {d}")),
        (bang(), port()).prop_map(|(b, d)| format!("-p udp -m udp {b}--dport {d}")),
        (bang(), 0u8..=3).prop_map(|(b, f)| {
            let flags = [
                "--syn",
                "--tcp-flags ALL NONE",
                "--tcp-flags SYN,ACK SYN",
                "--tcp-flags FIN,URG,PSH FIN",
            ][f as usize];
            format!("-p tcp {b}{flags}")
        }),
        (bang(), 0u8..=255, 0u8..=2).prop_map(|(b, t, c)| match c {
            0 => format!("-p icmp {b}--icmp-type {t}"),
            1 => format!("-p icmp {b}--icmp-type {t}/{c}"),
            _ => format!("-p icmp {b}--icmp-type any"),
        }),
        (bang(), prop::collection::vec(any::<u16>(), 1..6)).prop_map(|(b, v)| {
            let l: Vec<String> = v.iter().map(u16::to_string).collect();
            format!("-p tcp -m multiport {b}--dports {}", l.join(","))
        }),
    ];
    let m = prop_oneof![
        (bang(), ip()).prop_map(|(b, a)| format!("{b}-s {a}")),
        (bang(), ip()).prop_map(|(b, a)| format!("{b}-d {a}")),
        (bang(), "[a-z]{1,5}\\+?").prop_map(|(b, i)| format!("{b}-i {i}")),
        (bang(), "[a-z]{1,5}\\+?").prop_map(|(b, i)| format!("{b}-o {i}")),
        (bang(), 1u32..127).prop_map(|(b, s)| format!("-m state {b}--state {}", state(s))),
        (bang(), 1u32..127, ip()).prop_map(|(b, s, a)| format!(
            "-m conntrack {b}--ctstate {} --ctorigsrc {a} --ctdir REPLY",
            state(s)
        )),
        (bang(), any::<u32>(), any::<u32>())
            .prop_map(|(b, v, m)| format!("-m mark {b}--mark {v:#x}/{m:#x}")),
        (bang(), any::<u32>()).prop_map(|(b, v)| format!("-m connmark {b}--mark {v}")),
        (bang(), "[a-z]{1,8}").prop_map(|(b, h)| format!("-m helper {b}--helper {h}")),
        (1u32..1000, 0u8..4, 1u32..100).prop_map(|(n, u, burst)| format!(
            "-m limit --limit {n}/{} --limit-burst {burst}",
            ["sec", "min", "hour", "day"][u as usize]
        )),
        (0u32..100, any::<bool>(), 0u8..=32).prop_map(|(n, a, m)| format!(
            "-m connlimit --connlimit-{} {n} --connlimit-mask {m}",
            if a { "above" } else { "upto" }
        )),
        (bang(), any::<u8>())
            .prop_map(|(b, x)| format!("-m iprange {b}--src-range 10.0.0.{x}-10.0.1.0")),
        "[ -~&&[^\"'\\\\]]{0,20}".prop_map(|c| format!("-m comment --comment \"{c}\"")),
        (bang(), 1u16..4095)
            .prop_map(|(b, t)| format!("-m addrtype {b}--dst-type {}", addrtype(t))),
    ];
    let target = prop_oneof![
        Just("-j ACCEPT".to_string()),
        Just("-j DROP".to_string()),
        Just("-j RETURN".to_string()),
        Just(String::new()),
        Just("-j U1".to_string()),
        Just("-g U2".to_string()),
        // tcp-reset needs -p tcp: only the ICMP kinds here.
        (0u8..7).prop_map(|i| format!("-j REJECT --reject-with {}", RejectWith::ALL[i as usize].1)),
        ("[a-z :]{0,20}", 0u8..8)
            .prop_map(|(p, l)| format!("-j LOG --log-prefix \"{p}\" --log-level {l} --log-uid")),
        (any::<u32>(), any::<u32>())
            .prop_map(|(v, m)| format!("-j MARK --set-xmark {v:#x}/{m:#x}")),
        (any::<u32>(), 0u8..3).prop_map(|(v, k)| match k {
            0 => format!("-j CONNMARK --set-mark {v}"),
            1 => format!("-j CONNMARK --save-mark --mask {v:#x}"),
            _ => format!("-j CONNMARK --restore-mark --nfmask {v:#x}"),
        }),
    ];
    (proto, prop::collection::vec(m, 0..4), target).prop_map(|(p, ms, t)| {
        let mut parts = vec![p];
        parts.extend(ms);
        parts.push(t);
        parts.retain(|s| !s.is_empty());
        parts.join(" ")
    })
}

fn state(mask: u32) -> String {
    let names = [
        ("INVALID", 1),
        ("ESTABLISHED", 2),
        ("RELATED", 4),
        ("NEW", 8),
        ("UNTRACKED", 64),
    ];
    let v: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (n, _))| *n)
        .collect();
    if v.is_empty() {
        "NEW".into()
    } else {
        v.join(",")
    }
}

fn addrtype(mask: u16) -> String {
    let names = [
        "UNSPEC",
        "UNICAST",
        "LOCAL",
        "BROADCAST",
        "ANYCAST",
        "MULTICAST",
        "BLACKHOLE",
        "UNREACHABLE",
        "PROHIBIT",
        "THROW",
        "NAT",
        "XRESOLVE",
    ];
    let v: Vec<&str> = (0..12)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| names[i])
        .collect();
    if v.is_empty() {
        "LOCAL".into()
    } else {
        v.join(",")
    }
}

/// The chain for a generated rule: iptables refuses `-o` in INPUT and `-i`
/// in OUTPUT, so such rules go to FORWARD.
fn chain_for(c: u8, rule: &str) -> &'static str {
    let chain = ["INPUT", "FORWARD", "OUTPUT", "U1", "U2"][c as usize % 5];
    match chain {
        "INPUT" if rule.contains("-o ") => "FORWARD",
        "OUTPUT" if rule.contains("-i ") => "FORWARD",
        _ => chain,
    }
}

fn ruleset_text(rules: &[(u8, String)], counters: &[(u32, u32)]) -> String {
    let mut t = String::from("*filter\n:INPUT DROP [1:2]\n:FORWARD ACCEPT [3:4]\n:OUTPUT ACCEPT [0:0]\n:U1 - [0:0]\n:U2 - [0:0]\n");
    for (i, (c, r)) in rules.iter().enumerate() {
        let (p, b) = counters[i % counters.len()];
        t.push_str(&format!("[{p}:{b}] -A {} {r}\n", chain_for(*c, r)));
    }
    t.push_str("COMMIT\n");
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_parse_print_is_stable(
        rules in prop::collection::vec((0u8..5, rule()), 0..12),
        counters in prop::collection::vec((any::<u32>(), any::<u32>()), 1..4),
    ) {
        let text = ruleset_text(&rules, &counters);
        let rs = match Ruleset::parse(&text) {
            Ok(rs) => rs,
            // Rules iptables refuses too (e.g. RETURN-less loops are fine, but
            // U1 jumping to itself is allowed; nothing else should fail).
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let h = SaveHeader::at_secs(0);
        let once = rs.save(&h);
        let again = Ruleset::parse(&once).map_err(|e| TestCaseError::fail(format!("{e}\n{once}")))?;
        prop_assert_eq!(&again.save(&h), &once);
        prop_assert_eq!(again.list(TableKind::Filter), rs.list(TableKind::Filter));
        // Every rule also survives as an iptables command.
        let mut via_cmd = Ruleset::new();
        via_cmd.command("-N U1").unwrap();
        via_cmd.command("-N U2").unwrap();
        for (c, r) in &rules {
            let chain = chain_for(*c, r);
            via_cmd.command(&format!("-A {chain} {r}")).map_err(|e| TestCaseError::fail(format!("{e}: {r}")))?;
        }
    }

    #[test]
    fn random_rule_text_never_panics(words in prop::collection::vec(prop_oneof![
        Just("-A".to_string()), Just("INPUT".to_string()), Just("!".to_string()), Just("-p".to_string()),
        Just("tcp".to_string()), Just("-m".to_string()), Just("--dport".to_string()), Just("-j".to_string()),
        Just("multiport".to_string()), Just("--ports".to_string()), Just("limit".to_string()),
        Just("--limit".to_string()), Just("conntrack".to_string()), Just("--ctstate".to_string()),
        Just("MARK".to_string()), Just("--set-mark".to_string()), Just("CONNMARK".to_string()),
        Just("--mask".to_string()), Just("\"".to_string()), Just("-s".to_string()),
        "[ -~]{0,12}",
    ], 0..14)) {
        let line = words.join(" ");
        let _ = Ruleset::new().command(&line);
        let _ = Ruleset::parse(&format!("*filter\n{line}\nCOMMIT\n"));
        let _ = Ruleset::parse(&line);
    }

    #[test]
    fn random_packets_through_random_rules_never_panic(
        rules in prop::collection::vec((0u8..5, rule()), 0..8),
        bytes in prop::collection::vec(any::<u8>(), 0..80),
        info in 0u8..7,
        now in any::<u64>(),
    ) {
        let mut rs = Ruleset::parse(&ruleset_text(&rules, &[(0, 0)])).unwrap();
        rs.command("-t nat -A POSTROUTING -j MASQUERADE").unwrap();
        let mut b = bytes;
        if b.len() >= 20 { b[0] = 0x45; }
        let ctinfo = [None, Some(CtInfo::New), Some(CtInfo::Established), Some(CtInfo::Related),
            Some(CtInfo::EstablishedReply), Some(CtInfo::RelatedReply), Some(CtInfo::Untracked)][info as usize];
        let view = CtSnapshot { ctinfo, ..CtSnapshot::default() };
        let mut out = Outcome { record_walk: true, ..Outcome::default() };
        let mut meta = PacketMeta { mark: 0, trace: true };
        for hook in Hook::ALL {
            out.clear();
            let input = HookInput { hook, packet: &b, in_iface: "lan0", out_iface: "wan0", now: Instant(now) };
            let _ = rs.hook(&input, &mut meta, &view, &mut out);
        }
    }
}
