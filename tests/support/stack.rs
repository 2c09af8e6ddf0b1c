//! The usual test setup: the synthetic exporter, a real Prometheus scraping it, and agents
//! polling that Prometheus.

use std::time::Duration;

use super::exporter::{Convention, Exporter, NAMESPACE, Scenario, now_ms};
use super::prometheus::{Agent, AgentConfig, Prometheus, free_port, wait_for};

/// Exporter plus Prometheus, returned once Prometheus can compute rates (two scrapes).
pub struct Stack {
    pub exporter: Exporter,
    pub prometheus: Prometheus,
}

impl Stack {
    pub fn start(convention: Convention) -> Stack {
        let exporter = Exporter::start("127.0.0.1:0", Scenario::new(convention))
            .expect("cannot start the exporter");
        let prometheus = Prometheus::start(&[exporter.addr()]);
        wait_for(Duration::from_secs(30), || {
            let rates = prometheus
                .query("rate(container_cpu_usage_seconds_total[10s])", now_ms())
                .ok()?;
            (!rates.is_empty()).then_some(())
        })
        .unwrap_or_else(|| panic!("Prometheus has no rates:\n{}", prometheus.log()));
        Stack {
            exporter,
            prometheus,
        }
    }

    /// An agent observing the scenario's namespace with a 10 s window.
    pub fn agent(&self, interval: &str, extra_env: &[(&str, &str)]) -> Agent {
        self.agent_on(free_port(), interval, extra_env)
    }

    /// The same, listening on `127.0.0.1:port`.
    pub fn agent_on(&self, port: u16, interval: &str, extra_env: &[(&str, &str)]) -> Agent {
        Agent::start_on(
            &AgentConfig {
                prometheus_url: self.prometheus.url(),
                namespace: NAMESPACE,
                update_interval: interval,
                window: "10s",
            },
            extra_env,
            port,
        )
    }
}
