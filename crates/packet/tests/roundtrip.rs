//! Property tests: printed literals parse back to the same bytes and
//! print the same again; no input makes parsing, printing or filtering
//! panic.

use ctsim_packet::{parse, show, Filter};
use proptest::prelude::*;
use proptest::sample::select;

fn no_quotes(_: &str) -> Option<Vec<u8>> {
    None
}

/// Parses `text`, shows the bytes, and checks that the shown literal
/// parses to the same bytes and shows the same again.
fn assert_round_trip(bytes: &[u8]) {
    let shown = show(bytes);
    let again = parse(&shown, &no_quotes)
        .unwrap_or_else(|e| panic!("printed literal does not parse:\n{}", e.render(&shown)));
    assert_eq!(again, bytes, "{shown}");
    assert_eq!(show(&again), shown);
}

fn address() -> BoxedStrategy<String> {
    prop_oneof![
        Just("192.0.2.2".to_string()),
        Just("198.51.100.2".to_string()),
        any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
    ]
    .boxed()
}

fn hex(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..=max)
        .prop_map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn optional(field: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::option::weighted(0.2, field).prop_map(Option::unwrap_or_default)
}

fn ip_fields() -> BoxedStrategy<String> {
    (
        optional(any::<u8>().prop_map(|n| format!(" ttl={n}"))),
        optional(any::<u8>().prop_map(|n| format!(" tos={n}"))),
        optional(any::<u16>().prop_map(|n| format!(" ipid={n}"))),
        optional(select(vec![" nodf", " mf", " rf", " nodf mf"]).prop_map(String::from)),
        optional((0u16..8).prop_map(|n| format!(" frag={}", n * 8))),
        optional(hex(40).prop_map(|h| format!(" ipopts={}", &h[..h.len().min(80)]))),
        optional(prop_oneof![
            Just(" ipcsum=bad".to_string()),
            any::<u16>().prop_map(|n| format!(" ipcsum={n}"))
        ]),
    )
        .prop_map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g].concat())
        .boxed()
}

fn payload() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        (0usize..1600).prop_map(|n| format!(" len={n}")),
        "[ -~]{0,20}".prop_map(|t| format!(
            " payload=\"{}\"",
            t.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        hex(30).prop_map(|h| format!(" hex={h}")),
        (hex(10), 10usize..100).prop_map(|(h, n)| format!(" hex={h} len={n}")),
    ]
    .boxed()
}

fn checksum() -> BoxedStrategy<String> {
    optional(prop_oneof![
        Just(" csum=bad".to_string()),
        any::<u16>().prop_map(|n| format!(" csum={n:#06x}")),
    ])
    .boxed()
}

/// An option's text and its size in bytes.
fn tcp_option() -> BoxedStrategy<(String, usize)> {
    prop_oneof![
        any::<u16>().prop_map(|n| (format!("mss {n}"), 4)),
        any::<u8>().prop_map(|n| (format!("wscale {n}"), 3)),
        Just(("sackOK".to_string(), 2)),
        Just(("nop".to_string(), 1)),
        Just(("eol".to_string(), 1)),
        (any::<u32>(), any::<u32>()).prop_map(|(v, e)| (format!("ts val {v} ecr {e}"), 10)),
        prop::collection::vec((any::<u32>(), any::<u32>()), 1..5).prop_map(|b| {
            let blocks: String = b.iter().map(|(l, r)| format!(" {l}:{r}")).collect();
            (format!("sack{blocks}"), 2 + 8 * b.len())
        }),
        (2u8..=255, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(k, data)| {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            (format!("opt {k} hex={hex}"), 2 + data.len())
        }),
    ]
    .boxed()
}

/// An option list that fits in 40 bytes.
fn tcp_options() -> BoxedStrategy<String> {
    prop::collection::vec(tcp_option(), 0..6)
        .prop_map(|options| {
            let mut size = 0;
            let fitting: Vec<String> = options
                .into_iter()
                .take_while(|(_, len)| {
                    size += len;
                    size <= 40
                })
                .map(|(text, _)| text)
                .collect();
            format!(" [{}]", fitting.join(", "))
        })
        .boxed()
}

fn tcp() -> BoxedStrategy<String> {
    (
        (address(), any::<u16>(), address(), any::<u16>()),
        prop::collection::vec(select(vec!['F', 'S', 'R', 'P', '.', 'U', 'E', 'W', 'e']), 0..4),
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()),
        checksum(),
        optional(tcp_options()),
        ip_fields(),
        payload(),
    )
        .prop_map(|((src, sp, dst, dp), flags, (seq, ack, win, urg), csum, options, ip, payload)| {
            let mut letters: Vec<char> = flags;
            letters.dedup();
            let mut flags = String::new();
            for c in letters {
                if !flags.contains(c) {
                    flags.push(c);
                }
            }
            if flags.is_empty() {
                flags.push_str("none");
            }
            format!("tcp {src}:{sp} > {dst}:{dp} {flags} seq={seq} ack={ack} win={win} urg={urg}{csum}{options}{ip}{payload}")
        }).boxed()
}

fn udp() -> BoxedStrategy<String> {
    (
        address(),
        any::<u16>(),
        address(),
        any::<u16>(),
        optional(any::<u16>().prop_map(|n| format!(" ulen={n}"))),
        checksum(),
        ip_fields(),
        payload(),
    )
        .prop_map(|(src, sp, dst, dp, ulen, csum, ip, payload)| {
            format!("udp {src}:{sp} > {dst}:{dp}{ulen}{csum}{ip}{payload}")
        })
        .boxed()
}

fn icmp_query() -> BoxedStrategy<String> {
    (
        select(vec![
            "echo-request",
            "echo-reply",
            "timestamp-request",
            "timestamp-reply",
            "info-request",
            "info-reply",
            "mask-request",
            "mask-reply",
        ]),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
    )
        .prop_map(|(kind, id, seq, field)| {
            let extra = match kind {
                "timestamp-request" | "timestamp-reply" => {
                    format!(" orig={field} xmit={}", field / 3)
                }
                "mask-request" | "mask-reply" => {
                    format!(" mask={}", std::net::Ipv4Addr::from(field))
                }
                _ => String::new(),
            };
            format!("{kind} id={id} seq={seq}{extra}")
        })
        .boxed()
}

fn icmp_error_kind() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "net-unreachable",
            "host-unreachable",
            "proto-unreachable",
            "port-unreachable",
            "net-prohibited",
            "host-prohibited",
            "admin-prohibited",
            "source-quench",
            "time-exceeded",
            "reassembly-time-exceeded",
        ])
        .prop_map(String::from),
        any::<u16>().prop_map(|n| format!("frag-needed mtu={n}")),
        address().prop_map(|a| format!("redirect gw={a}")),
        any::<u8>().prop_map(|n| format!("param-problem ptr={n}")),
        (any::<u8>(), any::<u8>(), any::<u32>())
            .prop_map(|(t, c, r)| format!("type={t} code={c} rest={r}")),
    ]
    .boxed()
}

fn icmp() -> BoxedStrategy<String> {
    let quoted = prop_oneof![tcp(), udp()];
    let body = prop_oneof![
        payload(),
        (quoted, optional((0usize..80).prop_map(|n| format!("/{n}"))))
            .prop_map(|(q, n)| format!(" quote=({q}){n}")),
    ];
    (
        address(),
        address(),
        prop_oneof![
            icmp_query().prop_map(|q| (q, true)),
            icmp_error_kind().prop_map(|e| (e, false))
        ],
        checksum(),
        ip_fields(),
        body,
    )
        .prop_map(|(src, dst, (kind, query), csum, ip, body)| {
            let body = if query && body.contains("quote=") {
                String::new()
            } else {
                body
            };
            format!("icmp {src} > {dst} {kind}{csum}{ip}{body}")
        })
        .boxed()
}

fn other() -> BoxedStrategy<String> {
    (address(), address(), any::<u8>(), ip_fields(), payload())
        .prop_map(|(src, dst, proto, ip, payload)| {
            format!("ip {src} > {dst} proto={proto}{ip}{payload}")
        })
        .boxed()
}

fn literal() -> BoxedStrategy<String> {
    prop_oneof![tcp(), udp(), icmp(), other()].boxed()
}

/// Bytes whose IPv4 header is plausible, so decoding gets past it and
/// into the transport header, which is mostly plausible too; ICMP errors
/// quote a plausible IPv4 header followed by garbage.
fn ipv4ish() -> BoxedStrategy<Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 20..120),
        prop::option::weighted(0.2, 1usize..4),
        select(vec![1u8, 6, 17, 47]),
        prop::bool::weighted(0.8),
        (
            select(vec![3u8, 11, 12, 8, 0, 13]),
            0usize..3,
            select(vec![1u8, 6, 17]),
            0u16..64,
        ),
    )
        .prop_map(
            |(
                mut bytes,
                options,
                protocol,
                plausible,
                (icmp_type, quote_options, quoted_protocol, quote_cut),
            )| {
                let header_len = 20 + 4 * options.unwrap_or(0).min((bytes.len() - 20) / 4);
                bytes[0] = 0x40 | (header_len / 4) as u8;
                let len = bytes.len() as u16;
                bytes[2..4].copy_from_slice(&len.to_be_bytes());
                bytes[9] = protocol;
                if !plausible {
                    return bytes;
                }
                bytes[6] &= 0xe0;
                bytes[7] = 0;
                let segment = &mut bytes[header_len..];
                match protocol {
                    6 if segment.len() >= 20 => {
                        let data_offset =
                            5 + (segment[12] as usize % 4).min((segment.len() - 20) / 4);
                        segment[12] = (data_offset as u8) << 4 | (segment[12] & 1);
                        // Options of NOPs, so that they parse.
                        segment[20..data_offset * 4].fill(1);
                    }
                    17 if segment.len() >= 8 => {
                        let udp_len = segment.len() as u16;
                        segment[4..6].copy_from_slice(&udp_len.to_be_bytes());
                    }
                    1 if segment.len() >= 8 + 20 + 4 * quote_options => {
                        segment[0] = icmp_type;
                        let quote = &mut segment[8..];
                        quote[0] = 0x45 + quote_options as u8;
                        let inner_len = quote.len() as u16 + quote_cut;
                        quote[2..4].copy_from_slice(&inner_len.to_be_bytes());
                        quote[6] &= 0xe0;
                        quote[7] = 0;
                        quote[9] = quoted_protocol;
                    }
                    _ => {}
                }
                bytes
            },
        )
        .boxed()
}

/// Text made of pieces of real literals and filters, so the parsers get
/// past their first token.
fn token_soup() -> BoxedStrategy<String> {
    prop::collection::vec(
        select(vec![
            "tcp",
            "udp",
            "icmp",
            "ip",
            "malformed",
            "192.0.2.2:1",
            "192.0.2.2",
            ">",
            "S.",
            "none",
            "seq=1",
            "win=",
            "[mss 1460, sack 1:2, ts val 1 ecr 2, opt 9 hex=aa]",
            "[",
            "]",
            "(",
            ")",
            "quote=(",
            "quote=x/3",
            "/28",
            "port-unreachable",
            "echo-request",
            "type=3",
            "id=",
            "len=99999",
            "len=5",
            "payload=\"\\x4",
            "hex=0",
            "csum=bad",
            "frag=7",
            "ipopts=00",
            "and",
            "or",
            "not",
            "host",
            "net",
            "10.0.0.0/33",
            "port",
            "tcp-flags",
            "icmp-type",
            "é",
            "\"",
            "\\",
            "=",
            ":",
            ",",
        ]),
        0..12,
    )
    .prop_map(|pieces| pieces.join(" "))
    .boxed()
}

proptest! {
    #[test]
    fn random_literals_round_trip(text in literal()) {
        let bytes = parse(&text, &no_quotes)
            .unwrap_or_else(|e| panic!("generated literal does not parse:\n{}", e.render(&text)));
        assert_round_trip(&bytes);
    }

    #[test]
    fn any_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        assert_round_trip(&bytes);
    }

    #[test]
    fn ipv4ish_bytes_round_trip(bytes in ipv4ish()) {
        assert_round_trip(&bytes);
    }

    #[test]
    fn filters_never_panic_on_bytes(bytes in ipv4ish(), filter in select(vec![
        "tcp or udp or icmp", "port 1 or sport 2 or dport 3", "syn or fin or rst or ack or tcp-flags S.",
        "icmp-type port-unreachable or icmp-type 8", "net 0.0.0.0/0 and not host 1.2.3.4", "len 40",
    ])) {
        let filter = Filter::parse(filter).unwrap();
        let _ = filter.matches(&bytes);
    }

    #[test]
    fn parse_never_panics(text in prop_oneof![any::<String>(), token_soup()]) {
        let _ = parse(&text, &|name| (name == "x").then(|| vec![0x45, 0, 0, 20]));
        let _ = Filter::parse(&text);
        if let Err(error) = parse(&text, &no_quotes) {
            let _ = error.render(&text);
        }
    }
}
