//! Scenarios: the YAML model with source spans, validation with precise
//! diagnostics, lowering into the engine, the run with its checks, and the
//! reports. This crate and `sim` are the only ones that know serde.

pub mod conntrack;
pub mod diag;
pub mod generate;
pub mod graph;
pub mod linux_diff;
pub mod load;
pub mod lower;
pub mod model;
pub mod netfilter;
pub mod report;
pub mod run;
pub mod validate;

pub use diag::Report;
pub use run::{load, load_bytes, run, CheckResult, RunOptions, RunOutput};
