//! Prometheus HTTP API client: `GET /api/v1/query` at a fixed evaluation time.
//!
//! Protocol (response types, error mapping) is kept apart from I/O so the parsing can be
//! unit-tested on plain strings. Every failure carries Prometheus's own error text, because
//! that is what an operator needs to fix a query or a permission.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::config::Config;

/// Largest response body accepted (a `kube_pod_info` of a big cluster fits easily).
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    /// NaN and ±Inf are kept as such; the table turns them into empty fields.
    pub value: f64,
}

/// Why a query gave no vector.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// No HTTP answer at all: connection refused, TLS, DNS. The whole cycle is skipped.
    Transport(String),
    /// No complete answer within `PROMETHEUS_TIMEOUT`: a heavy query or an overloaded server.
    Timeout(String),
    /// Prometheus answered with `status: error` (bad query, 4xx/5xx, timeout on its side).
    Api {
        http_status: u16,
        error_type: String,
        error: String,
    },
    /// An answer that is not a Prometheus API response (wrong URL, proxy page, truncated).
    Garbage { http_status: u16, detail: String },
}

impl QueryError {
    /// Whether Prometheus (or whatever listens there) could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, QueryError::Transport(_))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, QueryError::Timeout(_))
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Transport(e) => write!(f, "Prometheus unreachable: {e}"),
            QueryError::Timeout(e) => write!(f, "Prometheus did not answer in time: {e}"),
            QueryError::Api {
                http_status,
                error_type,
                error,
            } => write!(
                f,
                "Prometheus error (HTTP {http_status}, {error_type}): {error}"
            ),
            QueryError::Garbage {
                http_status,
                detail,
            } => write!(
                f,
                "not a Prometheus API answer (HTTP {http_status}): {detail}"
            ),
        }
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Parses the body of an instant query answer.
pub fn parse_query_response(http_status: u16, body: &str) -> Result<Vec<Sample>, QueryError> {
    let garbage = |detail: String| QueryError::Garbage {
        http_status,
        detail,
    };
    let response: ApiResponse = serde_json::from_str(body).map_err(|e| {
        let start: String = body.chars().take(120).collect();
        garbage(format!("{e}; body starts {start:?}"))
    })?;
    if response.status != "success" {
        return Err(QueryError::Api {
            http_status,
            error_type: response.error_type.unwrap_or_else(|| "unknown".into()),
            error: response
                .error
                .unwrap_or_else(|| format!("status {:?} without error text", response.status)),
        });
    }
    let data = response
        .data
        .ok_or_else(|| garbage("success without data".into()))?;
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem> = serde_json::from_value(data.result)
                .map_err(|e| garbage(format!("malformed vector: {e}")))?;
            Ok(items
                .into_iter()
                .map(|item| Sample {
                    labels: item.metric,
                    value: parse_value(&item.value.1),
                })
                .collect())
        }
        other => Err(QueryError::Api {
            http_status,
            error_type: "unexpected_result".into(),
            error: format!("query returned a {other}, expected an instant vector"),
        }),
    }
}

/// Prometheus encodes values as strings: `"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`.
fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse::<f64>().unwrap_or(f64::NAN),
    }
}

/// Formats an evaluation time as Prometheus's `time=` parameter (Unix seconds, ms precision).
pub fn format_time_param(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
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

/// Blocking client for one Prometheus base URL.
pub struct Client {
    agent: ureq::Agent,
    query_url: String,
    headers: Vec<(String, String)>,
    token: Option<TokenFile>,
}

impl Client {
    /// Builds the client; fails (naming the variable) when the CA or token file is unusable.
    pub fn new(config: &Config) -> Result<Client, crate::config::ConfigError> {
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
                file.token().map_err(|message| crate::config::ConfigError {
                    variable: "PROMETHEUS_BEARER_TOKEN_FILE",
                    message,
                })?;
                Some(file)
            }
            None => None,
        };
        Ok(Client {
            agent: builder.build().into(),
            query_url: format!("{}/api/v1/query", config.prometheus_url),
            headers: config.extra_headers.clone(),
            token,
        })
    }

    /// Evaluates `promql` at `time`.
    pub fn query(&self, promql: &str, time: SystemTime) -> Result<Vec<Sample>, QueryError> {
        let mut request = self
            .agent
            .get(&self.query_url)
            .query("query", promql)
            .query("time", format_time_param(time));
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(token) = &self.token {
            let token = token.token().map_err(QueryError::Transport)?;
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => QueryError::Timeout(e.to_string()),
            _ => QueryError::Transport(e.to_string()),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => QueryError::Timeout(e.to_string()),
                _ => QueryError::Garbage {
                    http_status: status,
                    detail: format!("cannot read body: {e}"),
                },
            })?;
        parse_query_response(status, &body)
    }
}

fn load_ca_file(path: &PathBuf) -> Result<ureq::tls::RootCerts, crate::config::ConfigError> {
    let fail = |message: String| crate::config::ConfigError {
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
    fn parses_vector_with_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"node":"a"},"value":[1700000000.5,"0.5625"]},
            {"metric":{"node":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{},"value":[1700000000.5,"+Inf"]},
            {"metric":{"x":"y"},"value":[1700000000.5,"-Inf"]}]}}"#;
        let samples = parse_query_response(200, body).unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].labels["node"], "a");
        assert_eq!(samples[0].value, 0.5625);
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
    }

    #[test]
    fn keeps_prometheus_error_text() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected <EOF>"}"#;
        let e = parse_query_response(400, body).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("HTTP 400"), "{text}");
        assert!(text.contains("bad_data"), "{text}");
        assert!(text.contains("parse error: unexpected <EOF>"), "{text}");
        assert!(!e.is_unreachable());
    }

    #[test]
    fn garbage_and_wrong_types() {
        let e = parse_query_response(200, "<html>login</html>").unwrap_err();
        assert!(matches!(e, QueryError::Garbage { .. }), "{e}");
        assert!(e.to_string().contains("<html>login"), "{e}");
        let e = parse_query_response(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("scalar"), "{e}");
        let e = parse_query_response(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"x"}]}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, QueryError::Garbage { .. }), "{e}");
    }

    #[test]
    fn time_parameter_has_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_007);
        assert_eq!(format_time_param(t), "1700000000.007");
    }
}
