//! The Prometheus HTTP API as the agent uses it: instant queries at a fixed time and range
//! queries over a span, both answered series by series (`answer`).
//!
//! `QuerySource` is the seam between the cycle and the network: the agent's `Client` talks to
//! Prometheus (or VictoriaMetrics, Thanos, Mimir), unit tests use a fake. Every failure
//! carries Prometheus's own error text, because that is what an operator needs to fix a
//! query or a permission.

mod answer;
mod resolver;

pub use answer::{KEPT_LABELS, Labels, Limits, QueryError, Series, read_answer};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::config::{Config, ConfigError};
use crate::format::Millis;

/// When a query is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// An instant query at this time.
    At(Millis),
    /// A range query: every `start + k·step` up to `end`.
    Range {
        start: Millis,
        end: Millis,
        step: Millis,
    },
}

/// Anything that answers PromQL the way Prometheus does.
pub trait QuerySource {
    /// Evaluates `promql`, handing each series of the answer to `sink` as it arrives; returns
    /// the number of series. After an error, `sink` may have seen part of the answer.
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError>;
}

/// Formats a time as an API parameter: Unix seconds with milliseconds.
pub fn format_time_param(ms: Millis) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// A bearer token read from a file and re-read when the file changes (projected tokens rotate).
struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<(SystemTime, u64, String)>>,
}

impl TokenFile {
    fn token(&self) -> Result<String, String> {
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((modified, len, token)) = cached.as_ref()
            && (*modified, *len) == stamp
        {
            return Ok(token.clone());
        }
        let token = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?
            .trim()
            .to_string();
        *cached = Some((stamp.0, stamp.1, token.clone()));
        Ok(token)
    }
}

/// Blocking client for one Prometheus base URL; shared by the poller, history and `check`.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    headers: Vec<(String, String)>,
    token: Option<TokenFile>,
    limits: Limits,
}

impl Client {
    /// Builds the client; fails (naming the variable) when the CA or token file is unusable.
    pub fn new(config: &Config) -> Result<Client, ConfigError> {
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(config.prometheus_timeout))
            // Keep Prometheus's JSON error body instead of a bare "HTTP 400".
            .http_status_as_error(false)
            // Prometheus is an in-cluster service: never route it through an egress proxy
            // picked up from the environment.
            .proxy(None)
            .max_idle_connections(2)
            .max_idle_connections_per_host(2)
            .user_agent(concat!("prometheus-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            builder = builder.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(load_ca_file(path)?)
                    .build(),
            );
        }
        let token = match &config.bearer_token_file {
            Some(path) => {
                let file = TokenFile {
                    path: path.clone(),
                    cached: Mutex::new(None),
                };
                file.token().map_err(|message| ConfigError {
                    variable: "PROMETHEUS_BEARER_TOKEN_FILE",
                    message,
                })?;
                Some(file)
            }
            None => None,
        };
        // ureq's default resolver starts a thread per request when a timeout is set; this one
        // resolves in the calling thread and remembers the answer for a while.
        let agent = ureq::Agent::with_parts(
            builder.build(),
            ureq::unversioned::transport::DefaultConnector::new(),
            resolver::CachingResolver::new(Duration::from_secs(30)),
        );
        Ok(Client {
            agent,
            base: config.prometheus_url.clone(),
            headers: config.extra_headers.clone(),
            token,
            limits: Limits {
                max_bytes: config.max_answer_bytes,
                max_series: config.max_series,
            },
        })
    }

    fn request(
        &self,
        eval: Eval,
        promql: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let request = match eval {
            Eval::At(t) => self
                .agent
                .get(format!("{}/api/v1/query", self.base))
                .query("query", promql)
                .query("time", format_time_param(t))
                // VictoriaMetrics otherwise answers a time less than 30 s old with older data
                // (docs/engines.md); Prometheus ignores the parameter.
                .query("nocache", "1"),
            Eval::Range { start, end, step } => self
                .agent
                .get(format!("{}/api/v1/query_range", self.base))
                .query("query", promql)
                .query("start", format_time_param(start))
                .query("end", format_time_param(end))
                .query("step", format_time_param(step))
                // VictoriaMetrics otherwise shifts start and end to multiples of the step for
                // its cache.
                .query("nocache", "1"),
        };
        self.headers.iter().fold(request, |request, (name, value)| {
            request.header(name.as_str(), value.as_str())
        })
    }
}

impl QuerySource for Client {
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError> {
        let mut request = self.request(eval, promql);
        if let Some(token) = &self.token {
            let token = token.token().map_err(QueryError::Transport)?;
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => QueryError::Timeout(e.to_string()),
            _ => QueryError::Transport(e.to_string()),
        })?;
        let status = response.status().as_u16();
        read_answer(
            response.into_body().into_reader(),
            status,
            self.limits,
            sink,
        )
    }
}

fn load_ca_file(path: &Path) -> Result<ureq::tls::RootCerts, ConfigError> {
    let fail = |message: String| ConfigError {
        variable: "PROMETHEUS_CA_FILE",
        message,
    };
    let pem =
        std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(fail(format!("{}: {e}", path.display()))),
        }
    }
    if certs.is_empty() {
        return Err(fail(format!("{} holds no PEM certificate", path.display())));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parameter_has_milliseconds() {
        assert_eq!(format_time_param(1_700_000_000_007), "1700000000.007");
        assert_eq!(format_time_param(15_000), "15.000");
    }
}
