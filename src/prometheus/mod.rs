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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    /// Encoded `query=` parameters by PromQL text: the same queries are sent every cycle.
    encoded: Mutex<HashMap<String, Arc<str>>>,
}

/// Buffer size of a connection, each way.
const IO_BUFFER: usize = 16 * 1024;
/// Parameters longer than this are sent as a form body (POST) rather than in the URL.
const LONG_QUERY: usize = 2 * 1024;
/// Encoded queries remembered (live, energy and a few address-mapping queries).
const ENCODED_KEPT: usize = 64;

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
            // ureq's 128 KiB buffers are refilled with zeros for every request; a request head
            // (the URL holds the query) and an answer's headers fit in far less.
            .input_buffer_size(IO_BUFFER)
            .output_buffer_size(IO_BUFFER)
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
            encoded: Mutex::new(HashMap::new()),
        })
    }

    /// `query=<promql, percent-encoded>`, encoded once per distinct query.
    fn encoded_query(&self, promql: &str) -> Arc<str> {
        let mut encoded = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = encoded.get(promql) {
            return Arc::clone(known);
        }
        if encoded.len() >= ENCODED_KEPT {
            encoded.clear();
        }
        let text: Arc<str> = format!("query={}", percent_encode(promql)).into();
        encoded.insert(promql.to_string(), Arc::clone(&text));
        text
    }

    /// The API path and its parameters (`query=…&time=…`), encoded.
    fn parameters(&self, eval: Eval, promql: &str) -> (&'static str, String) {
        let query = self.encoded_query(promql);
        // `nocache=1`: VictoriaMetrics otherwise answers a time less than 30 s old with older
        // data and shifts range steps for its cache (docs/engines.md); Prometheus ignores it.
        match eval {
            Eval::At(t) => (
                "/api/v1/query",
                format!("{query}&time={}&nocache=1", format_time_param(t)),
            ),
            Eval::Range { start, end, step } => (
                "/api/v1/query_range",
                format!(
                    "{query}&start={}&end={}&step={}&nocache=1",
                    format_time_param(start),
                    format_time_param(end),
                    format_time_param(step)
                ),
            ),
        }
    }

    /// Extra headers and the bearer token on any request.
    fn decorate<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        token: Option<&str>,
    ) -> ureq::RequestBuilder<B> {
        let request = self.headers.iter().fold(request, |request, (name, value)| {
            request.header(name.as_str(), value.as_str())
        });
        match token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }
}

/// Percent-encodes a query parameter value: everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl QuerySource for Client {
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError> {
        let token = match &self.token {
            Some(file) => Some(file.token().map_err(QueryError::Transport)?),
            None => None,
        };
        let (path, parameters) = self.parameters(eval, promql);
        // Long queries (a table's columns combined) go in a form body: the API takes both, and
        // a URL of several kilobytes costs more to build and parse on both sides.
        let sent = if parameters.len() > LONG_QUERY {
            let request = self
                .agent
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded");
            self.decorate(request, token.as_deref())
                .send(parameters.as_bytes())
        } else {
            let request = self.agent.get(format!("{}{path}?{parameters}", self.base));
            self.decorate(request, token.as_deref()).call()
        };
        let response = sent.map_err(|e| match e {
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
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode(r#"sum by (node) (rate(x{a="b|c"}[1m])) / 1e6"#),
            "sum%20by%20%28node%29%20%28rate%28x%7Ba%3D%22b%7Cc%22%7D%5B1m%5D%29%29%20%2F%201e6"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn time_parameter_has_milliseconds() {
        assert_eq!(format_time_param(1_700_000_000_007), "1700000000.007");
        assert_eq!(format_time_param(15_000), "15.000");
    }
}
