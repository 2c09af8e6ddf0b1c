//! Shared pieces of the integration tests: a synthetic exporter emulating a
//! small cluster (and the truth it implies), real Prometheus and agent
//! processes, SPEC §3's queries evaluated directly, and CSV comparison.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod browser;
pub mod exporter;
pub mod forward;
pub mod prometheus;
pub mod promql;
pub mod stack;
pub mod table;
