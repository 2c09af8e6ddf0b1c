//! The scrape configuration the tests' Prometheus and VictoriaMetrics share: the synthetic
//! exporter's series as it labels them, and optionally agents' own `/agent/metrics` (where
//! agents export the marks of runs), every second.

use std::net::SocketAddr;

/// A scrape configuration for `exporters` (`/metrics`, their own labels and timestamps) and
/// `agents` (`/agent/metrics`).
pub fn config(exporters: &[SocketAddr], agents: &[SocketAddr]) -> String {
    let list = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut config = format!(
        "scrape_configs:\n  - job_name: synthetic\n    honor_labels: true\n    \
         honor_timestamps: true\n    static_configs:\n      - targets: [{}]\n",
        list(exporters)
    );
    if !agents.is_empty() {
        config.push_str(&format!(
            "  - job_name: agents\n    metrics_path: /agent/metrics\n    \
             static_configs:\n      - targets: [{}]\n",
            list(agents)
        ));
    }
    config
}
