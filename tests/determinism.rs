//! A run is a pure function of the scenario and its seed: every scenario
//! run twice prints the same bytes (text and JSON) and writes the same pcap
//! bytes; switching the timeline or the capture on or off changes nothing
//! else; another seed changes what is drawn from it (ISNs, ephemeral ports).

use ctsim_scenario::{report, RunOptions, RunOutput};
use ctsim_tests::{
    cli_options, first_syn, has_tcp_client, load_file, run, scenario_files, scenario_key,
};

/// Every link's pcap file, as bytes, in link order.
fn pcaps(out: &RunOutput) -> Vec<(String, Vec<u8>)> {
    out.sim
        .links()
        .iter()
        .map(|l| {
            let mut bytes = Vec::new();
            ctsim_engine::pcap::write_link(l, &mut bytes).expect("pcap into memory");
            (l.name.clone(), bytes)
        })
        .collect()
}

#[test]
fn every_scenario_twice_gives_identical_output() {
    for path in scenario_files() {
        let key = scenario_key(&path);
        let (s, source) = load_file(&path);
        let a = run(&s, &source, &cli_options());
        let b = run(&s, &source, &cli_options());
        assert_eq!(
            report::text(&a, report::Detail::Timeline),
            report::text(&b, report::Detail::Timeline),
            "{key}: text differs"
        );
        assert_eq!(
            report::json_lines(&a),
            report::json_lines(&b),
            "{key}: JSON differs"
        );
        assert_eq!(a.sim.events(), b.sim.events(), "{key}: event counts differ");
        // The scenario's own seed, given explicitly, is the same run.
        let explicit = RunOptions {
            seed: Some(s.seed),
            ..cli_options()
        };
        assert_eq!(
            report::text(&a, report::Detail::Timeline),
            report::text(&run(&s, &source, &explicit), report::Detail::Timeline),
            "{key}: --seed <its own seed> differs"
        );
    }
}

#[test]
fn timeline_and_capture_do_not_change_the_run() {
    for path in scenario_files() {
        let key = scenario_key(&path);
        let (s, source) = load_file(&path);
        let full = run(&s, &source, &cli_options());
        let quiet = run(&s, &source, &RunOptions::default());
        let captured = run(
            &s,
            &source,
            &RunOptions {
                capture: true,
                ..cli_options()
            },
        );
        assert_eq!(
            report::text(&full, report::Detail::Summary),
            report::text(&quiet, report::Detail::Summary),
            "{key}: running without the timeline changes the outcome"
        );
        assert_eq!(
            report::text(&full, report::Detail::Timeline),
            report::text(&captured, report::Detail::Timeline),
            "{key}: capturing changes the outcome"
        );
        assert!(quiet.rows.is_empty(), "{key}: quiet run has timeline rows");
    }
}

#[test]
fn same_seed_gives_identical_pcap_bytes() {
    let capture = RunOptions {
        capture: true,
        ..RunOptions::default()
    };
    for path in scenario_files() {
        let key = scenario_key(&path);
        let (s, source) = load_file(&path);
        let a = pcaps(&run(&s, &source, &capture));
        let b = pcaps(&run(&s, &source, &capture));
        assert_eq!(a.len(), s.links.len(), "{key}: one pcap per link");
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x == y,
                "{key}: pcap of link {name} differs between two runs"
            );
        }
    }
}

#[test]
fn another_seed_changes_isns_and_ports() {
    let mut tried = 0;
    for path in scenario_files() {
        let (s, source) = load_file(&path);
        if !has_tcp_client(&s) {
            continue;
        }
        tried += 1;
        let key = scenario_key(&path);
        let with_seed = |seed: u64| {
            let out = run(
                &s,
                &source,
                &RunOptions {
                    seed: Some(seed),
                    ..cli_options()
                },
            );
            first_syn(&out).unwrap_or_else(|| panic!("{key}: seed {seed}: no SYN sent"))
        };
        let (base, base_lit) = with_seed(s.seed);
        let (again, again_lit) = with_seed(s.seed);
        assert_eq!(base_lit, again_lit, "{key}: same seed, different first SYN");
        assert_eq!(base, again);
        let others: Vec<_> = [1, 2, 3]
            .iter()
            .map(|k| {
                with_seed(
                    s.seed
                        .wrapping_add(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(*k)),
                )
            })
            .collect();
        for (h, lit) in &others {
            assert_ne!(
                &base_lit, lit,
                "{key}: another seed gives the same first SYN"
            );
            assert_ne!(base.seq, h.seq, "{key}: another seed gives the same ISN");
        }
        // A port may repeat by chance (1 in ~28000); not for all three seeds.
        assert!(
            others.iter().any(|(h, _)| h.src_port != base.src_port),
            "{key}: three other seeds all give ephemeral port {}",
            base.src_port
        );
    }
    assert!(
        tried > 0,
        "no scenario with a tcp-client to vary the seed of"
    );
}
