//! Shared pieces of the integration tests: a synthetic exporter emulating a
//! small cluster (and the truth it implies), real Prometheus, VictoriaMetrics
//! (`engine` starts either) and agent processes, the default queries evaluated
//! directly, and CSV comparison.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod backfill;
pub mod backfilled;
pub mod energy;
pub mod engine;
pub mod exporter;
pub mod prometheus;
pub mod promql;
pub mod stack;
pub mod table;
pub mod victoria;
