//! Shared pieces of the integration tests: a synthetic exporter emulating a
//! small cluster (and the truth it implies), real Prometheus, VictoriaMetrics
//! (`engine` starts either) and agent processes, the default queries evaluated
//! directly, CSV comparison, a stand-in Prometheus with oversized answers, and
//! a headless browser.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod backfill;
pub mod backfilled;
pub mod browser;
pub mod cluster;
pub mod energy;
pub mod engine;
pub mod forward;
pub mod prometheus;
pub mod promql;
pub mod scrape;
pub mod stack;
pub mod standin;
pub mod table;
pub mod victoria;
