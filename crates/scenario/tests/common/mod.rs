//! Helpers shared by the scenario crate's app tests.
#![allow(dead_code)]

use ctsim_scenario::load::load;

/// Asserts the report points at the first occurrence of `at` in the file
/// (its line and column) and contains every text.
#[track_caller]
pub fn expect_err(yaml: &str, at: &str, texts: &[&str]) {
    let out = match load("file.yaml", yaml) {
        Ok(_) => panic!("expected an error, but this loaded:\n{yaml}"),
        Err(r) => r.render(false),
    };
    let offset = yaml.find(at).expect("the marker is in the file");
    let line = yaml[..offset].matches('\n').count() + 1;
    let col = offset - yaml[..offset].rfind('\n').map_or(0, |k| k + 1) + 1;
    let at = format!("file.yaml:{line}:{col}]");
    assert!(out.contains(&at), "expected {at} in:\n{out}");
    for t in texts {
        assert!(out.contains(t), "expected {t:?} in:\n{out}");
    }
}
