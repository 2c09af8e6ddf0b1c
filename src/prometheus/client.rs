//! The client for one Prometheus base URL: requests, authentication, TLS and limits. What an
//! answer means is `answer`'s business; this file only moves bytes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::answer::{Limits, QueryError, QueryStats, Series, read_answer_with_stats};
use super::resolver;
use super::{Eval, QuerySource, Statistics, format_time_param};
use crate::config::{Config, ConfigError};

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

/// Buffer size of a connection, each way.
const IO_BUFFER: usize = 16 * 1024;
/// Parameters longer than this are sent as a form body (POST) rather than in the URL.
const LONG_QUERY: usize = 2 * 1024;
/// What a query parameter keeps unencoded: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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
        })
    }

    /// The API path and its parameters (`query=…&time=…`), encoded.
    fn parameters(
        &self,
        eval: Eval,
        promql: &str,
        statistics: Statistics,
    ) -> (&'static str, String) {
        let stats = match statistics {
            Statistics::None => "",
            Statistics::Stats => "&stats=all",
            Statistics::Trace => "&stats=all&trace=1",
        };
        let query = format!("query={}{stats}", utf8_percent_encode(promql, QUERY_VALUE));
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

impl QuerySource for Client {
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError> {
        self.query_with_stats(promql, eval, Statistics::None, sink)
            .map(|(series, _)| series)
    }

    fn query_with_stats(
        &self,
        promql: &str,
        eval: Eval,
        statistics: Statistics,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<(usize, Option<QueryStats>), QueryError> {
        let token = match &self.token {
            Some(file) => Some(file.token().map_err(QueryError::Transport)?),
            None => None,
        };
        let (path, parameters) = self.parameters(eval, promql, statistics);
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
        read_answer_with_stats(
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
        let encoded = |text| utf8_percent_encode(text, QUERY_VALUE).to_string();
        assert_eq!(
            encoded(r#"sum by (node) (rate(x{a="b|c"}[1m])) / 1e6"#),
            "sum%20by%20%28node%29%20%28rate%28x%7Ba%3D%22b%7Cc%22%7D%5B1m%5D%29%29%20%2F%201e6"
        );
        assert_eq!(encoded("é-._~"), "%C3%A9-._~");
    }
}
