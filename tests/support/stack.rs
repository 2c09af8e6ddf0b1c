//! The usual test setup: the synthetic exporter, a real engine (Prometheus or
//! VictoriaMetrics) scraping it, and agents polling that engine.

use std::net::SocketAddr;
use std::time::Duration;

use super::cluster::{Convention, Exporter, NAMESPACE, Scenario, now_ms};
use super::engine::{Engine, NOCACHE, Server};
use super::prometheus::{Agent, AgentConfig, wait_for};
use super::table::window_fully_covered;

/// Exporter plus one engine scraping it, returned once the engine can compute
/// rates at the current time (two scrapes).
pub struct Stack {
    pub scenario: Scenario,
    pub exporter: Exporter,
    pub server: Server,
}

impl Stack {
    /// On Prometheus.
    pub fn start(convention: Convention) -> Stack {
        Stack::on(Engine::Prometheus, convention)
    }

    pub fn on(engine: Engine, convention: Convention) -> Stack {
        Stack::with(engine, Scenario::new(convention))
    }

    /// Exporting `scenario` (e.g. a scaled cluster) to `engine`.
    pub fn with(engine: Engine, scenario: Scenario) -> Stack {
        Stack::start_on(scenario, |targets| engine.start(targets))
    }

    /// With a server started by `start` (e.g. a VictoriaMetrics with other flags).
    pub fn start_on(scenario: Scenario, start: impl FnOnce(&[SocketAddr]) -> Server) -> Stack {
        let exporter =
            Exporter::start("127.0.0.1:0", scenario.clone()).expect("cannot start the exporter");
        let server = start(&[exporter.addr()]);
        let engine = server.engine();
        wait_for(Duration::from_secs(60), || {
            let rates = server
                .query_with(
                    "rate(container_cpu_usage_seconds_total[10s])",
                    now_ms(),
                    NOCACHE,
                )
                .ok()?;
            (!rates.is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("{} has no rates:\n{}", engine.name(), server.log()));
        Stack {
            scenario,
            exporter,
            server,
        }
    }

    /// An agent observing the scenario's namespace with a 10 s window.
    pub fn agent(&self, interval: &str, extra_env: &[(&str, &str)]) -> Agent {
        self.agent_for(NAMESPACE, interval, extra_env)
    }

    /// An agent observing `namespace` with a 10 s window.
    pub fn agent_for(&self, namespace: &str, interval: &str, extra_env: &[(&str, &str)]) -> Agent {
        Agent::start_with(&self.agent_config(namespace, interval), extra_env)
    }

    /// An agent of the scenario's namespace listening on `127.0.0.1:port` (e.g. the port of
    /// an agent just stopped).
    pub fn agent_on(&self, port: u16, interval: &str, extra_env: &[(&str, &str)]) -> Agent {
        Agent::start_on(&self.agent_config(NAMESPACE, interval), extra_env, port)
    }

    fn agent_config<'a>(&'a self, namespace: &'a str, interval: &'a str) -> AgentConfig<'a> {
        AgentConfig {
            prometheus_url: self.server.url(),
            namespace,
            update_interval: interval,
            window: "10s",
        }
    }

    /// Whether a query at `time_ms` over `window_ms` has `margin_ms` of scraping before its
    /// window, so that the truth is exact. Prometheus also needs samples near both ends of
    /// the window to extrapolate exactly; VictoriaMetrics computes rates from the samples it
    /// has, exact for the exporter's linear counters (docs/engines.md).
    pub fn settled(&self, time_ms: i64, window_ms: i64, margin_ms: i64) -> bool {
        let scrapes = self.exporter.scrape_times();
        let Some(&first) = scrapes.first() else {
            return false;
        };
        let covered = match self.server.engine() {
            Engine::Prometheus => window_fully_covered(&scrapes, time_ms, window_ms),
            Engine::VictoriaMetrics => true,
        };
        time_ms >= first + window_ms + margin_ms && covered
    }
}
