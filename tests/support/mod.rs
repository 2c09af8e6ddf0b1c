//! Shared pieces of the integration tests: a synthetic exporter emulating a
//! small cluster (and the truth it implies), real Prometheus, VictoriaMetrics
//! (`engine` starts either) and agent processes, the default queries evaluated
//! directly, and CSV comparison.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod browser;
pub mod energy;
pub mod engine;
pub mod exporter;
pub mod forward;
pub mod prometheus;
pub mod promql;
pub mod stack;
pub mod table;
pub mod victoria;
