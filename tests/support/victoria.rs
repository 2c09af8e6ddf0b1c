//! A real single-node VictoriaMetrics scraping the synthetic exporter, beside
//! the real Prometheus of `prometheus.rs`. Listens on loopback only; killed
//! (and its temporary directory removed) on drop.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::prometheus::{PORT_ATTEMPTS, TempDir, curl, free_port, log_tail, lost_port, wait_for};

/// Where Debian's `victoria-metrics` package puts the server; `VICTORIA_METRICS_BIN` overrides it.
const DEFAULT_VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";

fn victoria_metrics_binary() -> PathBuf {
    let path = std::env::var_os("VICTORIA_METRICS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VICTORIA_METRICS));
    if !path.is_file() {
        panic!(
            "\n\nVictoriaMetrics not found at {}.\n\
             These tests run a real VictoriaMetrics: run `scripts/setup` (it installs the \
             Debian package `victoria-metrics`), or point VICTORIA_METRICS_BIN at a \
             single-node victoria-metrics binary.\n",
            path.display()
        );
    }
    path
}

/// A real single-node VictoriaMetrics scraping `targets` every second with
/// `honor_labels: true` and `honor_timestamps: true`, as `Prometheus` does.
pub struct VictoriaMetrics {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl VictoriaMetrics {
    /// Started with VictoriaMetrics' own defaults for everything that shapes
    /// query answers (notably `-search.latencyOffset=30s`), as a user runs it.
    pub fn start(targets: &[SocketAddr]) -> VictoriaMetrics {
        VictoriaMetrics::start_with(targets, &[])
    }

    /// Started with further command-line flags, e.g. `-search.latencyOffset=1s`.
    pub fn start_with(targets: &[SocketAddr], flags: &[&str]) -> VictoriaMetrics {
        VictoriaMetrics::launch(targets, &[], flags)
    }

    /// Scraping `agents`' own `/agent/metrics` too (where they export the marks of runs).
    pub fn start_scraping_agents(targets: &[SocketAddr], agents: &[SocketAddr]) -> VictoriaMetrics {
        VictoriaMetrics::launch(targets, agents, &[])
    }

    fn launch(targets: &[SocketAddr], agents: &[SocketAddr], flags: &[&str]) -> VictoriaMetrics {
        let binary = victoria_metrics_binary();
        let dir = TempDir::new("victoria-metrics");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n{}",
            super::scrape::config(targets, agents)
        );
        let config_path = dir.path().join("scrape.yml");
        fs::write(&config_path, config).expect("cannot write scrape.yml");
        let log = dir.path().join("victoria-metrics.log");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let child = Command::new(&binary)
                .arg(format!(
                    "-storageDataPath={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-promscrape.config={}", config_path.display()))
                // The shortest retention it accepts.
                .arg("-retentionPeriod=1d")
                // A good neighbour on a shared machine: caches stay small.
                .arg("-memory.allowedBytes=256MiB")
                .arg("-loggerLevel=WARN")
                .args(flags)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).expect("cannot create victoria-metrics.log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut child = Some(child);
            let url = format!("http://127.0.0.1:{port}");
            let ready = wait_for(Duration::from_secs(30), || {
                if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                    return Some(Err(status));
                }
                curl(&format!("{url}/health")).ok().map(Ok)
            });
            match ready {
                Some(Ok(_)) => {
                    return VictoriaMetrics {
                        child: child.take().expect("running"),
                        url,
                        log,
                        _dir: dir,
                    };
                }
                Some(Err(_)) if attempt < PORT_ATTEMPTS && lost_port(&log) => continue,
                Some(Err(status)) => panic!(
                    "victoria-metrics exited at start ({status}):\n{}",
                    log_tail(&log, 30)
                ),
                None => {
                    if let Some(mut child) = child {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    panic!(
                        "victoria-metrics was not ready within 30 s:\n{}",
                        log_tail(&log, 30)
                    );
                }
            }
        }
        unreachable!("every attempt returns or panics")
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn log(&self) -> String {
        log_tail(&self.log, 50)
    }

    /// Stops the server (an outage, as far as the agent can tell).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        self.stop();
    }
}
