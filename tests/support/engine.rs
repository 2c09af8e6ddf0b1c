//! The query engines the agent is tested against: a real Prometheus and a real
//! VictoriaMetrics, both scraping the synthetic exporter. A [`Server`] is
//! either; `stack::Stack` is the usual exporter-plus-engine setup on one of
//! them. docs/engines.md describes where the two answer differently.

use std::net::SocketAddr;
use std::process::Command;

use super::prometheus::Prometheus;
use super::victoria::VictoriaMetrics;

/// Which server answers the agent's PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Prometheus,
    VictoriaMetrics,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Prometheus, Engine::VictoriaMetrics];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Prometheus => "Prometheus",
            Engine::VictoriaMetrics => "VictoriaMetrics",
        }
    }

    /// Starts the engine scraping `targets` and `agents`' own `/agent/metrics` every second.
    pub fn start_scraping_agents(self, targets: &[SocketAddr], agents: &[SocketAddr]) -> Server {
        match self {
            Engine::Prometheus => {
                Server::Prometheus(Prometheus::start_scraping_agents(targets, agents))
            }
            Engine::VictoriaMetrics => {
                Server::VictoriaMetrics(VictoriaMetrics::start_scraping_agents(targets, agents))
            }
        }
    }

    /// Starts the engine scraping `targets` every second, with its default settings.
    pub fn start(self, targets: &[SocketAddr]) -> Server {
        match self {
            Engine::Prometheus => Server::Prometheus(Prometheus::start(targets)),
            Engine::VictoriaMetrics => Server::VictoriaMetrics(VictoriaMetrics::start(targets)),
        }
    }
}

/// URL parameters that make VictoriaMetrics evaluate an instant query at the
/// requested `time` even when it is close to now (see docs/engines.md).
/// Prometheus ignores them.
pub const NOCACHE: &[(&str, &str)] = &[("nocache", "1")];

/// A running engine of either kind.
pub enum Server {
    Prometheus(Prometheus),
    VictoriaMetrics(VictoriaMetrics),
}

impl Server {
    pub fn engine(&self) -> Engine {
        match self {
            Server::Prometheus(_) => Engine::Prometheus,
            Server::VictoriaMetrics(_) => Engine::VictoriaMetrics,
        }
    }

    /// Base URL, `http://127.0.0.1:PORT`: what the agent's PROMETHEUS_URL is set to.
    pub fn url(&self) -> &str {
        match self {
            Server::Prometheus(p) => p.url(),
            Server::VictoriaMetrics(v) => v.url(),
        }
    }

    /// The end of the server's log.
    pub fn log(&self) -> String {
        match self {
            Server::Prometheus(p) => p.log(),
            Server::VictoriaMetrics(v) => v.log(),
        }
    }

    /// The Prometheus server, for what only it offers (its query log).
    pub fn prometheus(&self) -> &Prometheus {
        match self {
            Server::Prometheus(p) => p,
            Server::VictoriaMetrics(_) => panic!("this test needs Prometheus"),
        }
    }

    /// Stops the server (an outage, as far as the agent can tell).
    pub fn stop(&mut self) {
        match self {
            Server::Prometheus(p) => p.stop(),
            Server::VictoriaMetrics(v) => v.stop(),
        }
    }

    /// An instant query at `time_ms` with only `query` and `time`; returns `data.result`.
    pub fn query(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String> {
        self.query_with(query, time_ms, &[])
    }

    /// An instant query with further URL parameters (e.g. [`NOCACHE`]).
    pub fn query_with(
        &self,
        query: &str,
        time_ms: i64,
        params: &[(&str, &str)],
    ) -> Result<Vec<serde_json::Value>, String> {
        let time = time_param(time_ms);
        let mut all = vec![("query", query), ("time", time.as_str())];
        all.extend_from_slice(params);
        vector(&api_get(self.url(), "/api/v1/query", &all)?, query)
    }

    /// A range query (`/api/v1/query_range`); returns `data.result` (a matrix).
    pub fn query_range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<serde_json::Value>, String> {
        self.query_range_with(query, start_ms, end_ms, step_ms, &[])
    }

    /// A range query with further URL parameters.
    pub fn query_range_with(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        params: &[(&str, &str)],
    ) -> Result<Vec<serde_json::Value>, String> {
        let (start, end, step) = (
            time_param(start_ms),
            time_param(end_ms),
            time_param(step_ms),
        );
        let mut all = vec![
            ("query", query),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
        ];
        all.extend_from_slice(params);
        matrix(&api_get(self.url(), "/api/v1/query_range", &all)?, query)
    }
}

/// Anything that answers instant queries: lets the default queries be evaluated on
/// either engine (`promql::spec_tables`).
pub trait InstantQuery {
    fn instant(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String>;
}

impl InstantQuery for Prometheus {
    fn instant(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String> {
        self.query(query, time_ms)
    }
}

impl InstantQuery for Server {
    fn instant(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String> {
        self.query(query, time_ms)
    }
}

/// A server whose instant queries all carry `params` (e.g. [`NOCACHE`]).
pub struct WithParams<'a> {
    pub server: &'a Server,
    pub params: &'a [(&'a str, &'a str)],
}

impl InstantQuery for WithParams<'_> {
    fn instant(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String> {
        self.server.query_with(query, time_ms, self.params)
    }
}

/// Unix milliseconds as the API's `time`/`start`/`end`/`step`: decimal seconds
/// with three decimals, the form both engines read back to the exact millisecond.
pub fn time_param(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// `GET base + path` with URL-encoded parameters through the real `curl`;
/// the JSON answer when its `status` is `success`.
pub fn api_get(
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "20", "-G"]);
    for (name, value) in params {
        command
            .arg("--data-urlencode")
            .arg(format!("{name}={value}"));
    }
    command.arg(format!("{base}{path}"));
    let output = command
        .output()
        .map_err(|e| format!("cannot run curl ({e}): is curl installed?"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let body = String::from_utf8(output.stdout).map_err(|e| format!("non-UTF-8 answer: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))?;
    if answer["status"] != "success" {
        return Err(format!("{path} failed: {}", answer["error"]));
    }
    Ok(answer)
}

/// `data.result` of an instant query, which must be a vector.
pub fn vector(answer: &serde_json::Value, query: &str) -> Result<Vec<serde_json::Value>, String> {
    typed_result(answer, "vector", query)
}

/// `data.result` of a range query, which must be a matrix.
pub fn matrix(answer: &serde_json::Value, query: &str) -> Result<Vec<serde_json::Value>, String> {
    typed_result(answer, "matrix", query)
}

fn typed_result(
    answer: &serde_json::Value,
    kind: &str,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    if answer["data"]["resultType"] != kind {
        return Err(format!("no {kind} result for {query:?}: {answer}"));
    }
    answer["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("no {kind} result for {query:?}: {answer}"))
}
