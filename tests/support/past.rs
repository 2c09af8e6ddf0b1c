//! A real Prometheus that already holds a past of the synthetic cluster made of pieces, each
//! a scenario scraped every second over its own span (e.g. nodes alone for 15 s, then the
//! whole cluster, as when the pods of an experiment start after its nodes are watched),
//! written as TSDB blocks by promtool; then the exporter of the last scenario, with the same
//! counters, keeps being scraped live.
//!
//! Included by path from the page tests (`#[path = "support/past.rs"]`), beside `support`.

use std::time::Duration;

use crate::support::backfill::{Backfill, create_blocks};
use crate::support::cluster::{Exporter, Scenario};
use crate::support::engine::{NOCACHE, Server};
use crate::support::prometheus::{Prometheus, TempDir, wait_for};
use crate::support::stack::Stack;

/// One piece of the past: `scenario` scraped at every whole second from `from_ms` to `to_ms`.
pub struct Piece {
    pub scenario: Scenario,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The stack on the backfilled Prometheus.
pub struct Past {
    pub stack: Stack,
    /// Prometheus's data directory; dropped after the server.
    _data: TempDir,
}

impl Past {
    /// Writes `pieces` (in time order, not overlapping) and starts Prometheus on them,
    /// scraping an exporter of `live` that continues the counters started at `t0_ms`.
    pub fn start(pieces: &[Piece], live: Scenario, t0_ms: i64) -> Past {
        let dir = TempDir::new("past");
        let data = dir.path().join("data");
        for piece in pieces {
            let past = Backfill {
                t0_ms,
                from_ms: piece.from_ms,
                to_ms: piece.to_ms,
                interval_ms: 1000,
            };
            create_blocks(&piece.scenario, &past, &data, dir.path())
                .unwrap_or_else(|e| panic!("backfill: {e}"));
        }
        let exporter = Exporter::start_at("127.0.0.1:0", live.clone(), t0_ms)
            .expect("cannot start the exporter");
        let server = Server::Prometheus(Prometheus::start_on_data(&[exporter.addr()], &data, "2d"));
        // Searchable from the first piece's first window on.
        let first = pieces.first().map_or(t0_ms, |p| p.from_ms) + 10_000;
        wait_for(Duration::from_secs(60), || {
            let rates = server
                .query_with("rate(node_cpu_seconds_total[10s])", first, NOCACHE)
                .ok()?;
            (!rates.is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("no rates in the backfilled past:\n{}", server.log()));
        Past {
            stack: Stack {
                scenario: live,
                exporter,
                server,
            },
            _data: dir,
        }
    }
}
