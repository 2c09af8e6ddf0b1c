//! The usual test setup (`stack.rs`) on an engine that already holds a past of the
//! synthetic cluster (`backfill.rs`): Prometheus from blocks written by promtool,
//! VictoriaMetrics from imported samples.

use std::time::Duration;

use super::backfill::{Backfill, create_blocks, import_into_victoria};
use super::cluster::{Convention, Exporter, Scenario, now_ms};
use super::engine::{Engine, NOCACHE, Server};
use super::prometheus::{Prometheus, TempDir, wait_for};
use super::stack::Stack;

/// A [`Stack`] whose engine already holds a past scraped every second, and keeps
/// scraping the exporter, whose counters continue the same series.
pub struct Backfilled {
    pub stack: Stack,
    pub past: Backfill,
    /// Prometheus's data directory; dropped after the server.
    _data: Option<TempDir>,
}

impl Backfilled {
    /// Scrapes at every whole second of the last `span`.
    pub fn start(engine: Engine, convention: Convention, span: Duration) -> Backfilled {
        let scenario = Scenario::new(convention);
        let to = now_ms().div_euclid(1000) * 1000;
        let from = to - span.as_millis() as i64;
        let past = Backfill {
            t0_ms: from,
            from_ms: from,
            to_ms: to,
            interval_ms: 1000,
        };
        let exporter = Exporter::start_at("127.0.0.1:0", scenario.clone(), past.t0_ms)
            .expect("cannot start the exporter");
        let targets = [exporter.addr()];
        let (server, data) = match engine {
            Engine::Prometheus => {
                let dir = TempDir::new("backfill");
                let data = dir.path().join("data");
                create_blocks(&scenario, &past, &data, dir.path())
                    .unwrap_or_else(|e| panic!("backfill: {e}"));
                let server = Prometheus::start_on_data(&targets, &data, "1d");
                (Server::Prometheus(server), Some(dir))
            }
            Engine::VictoriaMetrics => {
                let server = engine.start(&targets);
                import_into_victoria(&scenario, &past, server.url())
                    .unwrap_or_else(|e| panic!("import: {e}\n{}", server.log()));
                (server, None)
            }
        };
        // Searchable from its first window on.
        let first_rate = past.from_ms + 10_000;
        wait_for(Duration::from_secs(30), || {
            let rates = server
                .query_with(
                    "rate(container_cpu_usage_seconds_total[10s])",
                    first_rate,
                    NOCACHE,
                )
                .ok()?;
            (!rates.is_empty()).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{} has no rates in the backfilled past:\n{}",
                engine.name(),
                server.log()
            )
        });
        Backfilled {
            stack: Stack {
                scenario,
                exporter,
                server,
            },
            past,
            _data: data,
        }
    }
}
