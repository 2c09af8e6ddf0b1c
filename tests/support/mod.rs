//! Shared pieces of the integration tests: a synthetic exporter emulating a
//! small cluster (and the truth it implies), real Prometheus and agent
//! processes, SPEC §3's queries evaluated directly, CSV comparison, and a
//! stand-in Prometheus with oversized answers.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod exporter;
pub mod prometheus;
pub mod promql;
pub mod stack;
pub mod standin;
pub mod table;
