//! Configuration from the environment (README, "Configuration").
//!
//! Every variable is validated once at start; a bad value stops the agent with one line that
//! names the variable, so a typo in a ConfigMap never turns into a silently wrong measurement.

pub mod duration;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Where Kubernetes mounts the service-account namespace when a token is mounted.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Exit code for invalid configuration or usage.
pub const EXIT_CONFIG: u8 = 2;

/// Longest accepted interval or timeout; longer values are typos, not experiments.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Text of `--help`: the variables, their defaults and meaning.
pub const HELP: &str = "\
prometheus-agent: polls Prometheus for per-node and per-pod CPU, memory, network and power
figures of one namespace and serves them as CSV downloads and live streams.

Usage: prometheus-agent [--help | --version]
       prometheus-agent check    run one cycle, print per column what Prometheus answered
                                 and a hint for each empty column; exit 1 if unreachable

Configuration (environment):
  PROMETHEUS_URL     Prometheus base URL, path prefix allowed    [http://localhost:9090]
                     (alias PROMETHEUSSERVER)
  NAMESPACE          namespace observed (DNS-1123 label)         [POD_NAMESPACE, else the
                     service-account namespace file, else default]
  UPDATE_INTERVAL    time between cycles, 15s, 1m or seconds     [15s]
  WINDOW             range of rate/increase/avg_over_time        [1m]
  PORT               listen port                                 [8000]
  LISTEN_ADDR        listen address, overrides PORT              [0.0.0.0:$PORT]
  BUFFER_SIZE        rows kept per table                         [100]
  MAX_STREAMS        concurrent stream clients                   [32]
  QUERIES_FILE       JSON file overriding default queries        [none]
  PROMETHEUS_TIMEOUT per-request timeout                         [10s]
  PROMETHEUS_BEARER_TOKEN_FILE  bearer token, re-read on change  [none]
  PROMETHEUS_CA_FILE extra CA bundle (PEM) for HTTPS             [none]
  PROMETHEUS_HEADERS extra headers, Name=Value,Name2=Value2      [none]
  PROMETHEUS_MAX_ANSWER_BYTES  largest answer read, bytes or     [64Mi]
                     Ki/Mi/Gi; a larger one is that column's error
  PROMETHEUS_MAX_SERIES  most series read from one answer        [50000]
  MAX_NODE_WATTS     above this a node's power is implausible    [5000]
  MARKS_FILE         file keeping the marks of runs (appended)   [none: in memory]
  HTTP_MAX_CONNECTIONS  open connections, streams included       [128]
                     (when full, a new one closes the connection
                     that has waited longest for a request)
  HTTP_HEADER_TIMEOUT   time for a request's headers to arrive   [10s]
  HTTP_IDLE_TIMEOUT     idle time of a keep-alive connection     [30s]
  RUST_LOG           log filter                                  [info]
";

/// Where the observed namespace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceSource {
    Namespace,
    PodNamespace,
    ServiceAccountFile,
    /// Nothing said which namespace: `default` is observed, with a warning.
    Fallback,
}

impl fmt::Display for NamespaceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NamespaceSource::Namespace => "NAMESPACE",
            NamespaceSource::PodNamespace => "POD_NAMESPACE",
            NamespaceSource::ServiceAccountFile => "service-account namespace file",
            NamespaceSource::Fallback => "fallback",
        })
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub prometheus_url: String,
    pub namespace: String,
    /// Where `namespace` came from, for the start-up log line.
    pub namespace_source: NamespaceSource,
    pub update_interval: Duration,
    pub window: Duration,
    pub listen_addr: SocketAddr,
    pub buffer_size: usize,
    pub max_streams: usize,
    pub queries_file: Option<PathBuf>,
    pub prometheus_timeout: Duration,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub extra_headers: Vec<(String, String)>,
    pub max_answer_bytes: u64,
    pub max_series: usize,
    /// Watts no node draws: above them a power is `implausible` (data quality).
    pub max_node_watts: f64,
    /// Where the marks of runs are kept across restarts.
    pub marks_file: Option<PathBuf>,
    pub http: HttpLimits,
}

/// Limits on the HTTP server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 128,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A configuration error: the variable, the offending value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Source of environment values; a map in tests, the process environment in production.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.get(format!("file:{path}").as_str())
            .map(|v| v.to_string())
    }
}

/// A variable's value, with empty strings treated as unset (ConfigMaps often carry `""`).
fn get(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Config {
    /// Reads and validates every variable (README, "Configuration").
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigError> {
        let (namespace, namespace_source) = resolve_namespace(env)?;
        let max_streams = parse_count(env, "MAX_STREAMS", 32, 0, 10_000)?;
        Ok(Config {
            prometheus_url: prometheus_url(env)?,
            namespace,
            namespace_source,
            update_interval: update_interval(env)?,
            window: window(env)?,
            listen_addr: listen_addr(env)?,
            buffer_size: parse_count(env, "BUFFER_SIZE", 100, 1, 10_000_000)?,
            max_streams,
            queries_file: get(env, "QUERIES_FILE").map(PathBuf::from),
            prometheus_timeout: prometheus_timeout(env)?,
            bearer_token_file: get(env, "PROMETHEUS_BEARER_TOKEN_FILE").map(PathBuf::from),
            ca_file: get(env, "PROMETHEUS_CA_FILE").map(PathBuf::from),
            extra_headers: match get(env, "PROMETHEUS_HEADERS") {
                Some(v) => parse_headers(&v)?,
                None => Vec::new(),
            },
            max_answer_bytes: match get(env, "PROMETHEUS_MAX_ANSWER_BYTES") {
                Some(v) => parse_bytes("PROMETHEUS_MAX_ANSWER_BYTES", &v)?,
                None => 64 << 20,
            },
            max_series: parse_count(env, "PROMETHEUS_MAX_SERIES", 50_000, 1, 100_000_000)?,
            max_node_watts: max_node_watts(env)?,
            marks_file: get(env, "MARKS_FILE").map(PathBuf::from),
            http: parse_http_limits(env, max_streams)?,
        })
    }
}

/// `PROMETHEUS_URL`, else its alias `PROMETHEUSSERVER`, else the default.
fn prometheus_url(env: &dyn Env) -> Result<String, ConfigError> {
    match get(env, "PROMETHEUS_URL") {
        Some(v) => parse_url("PROMETHEUS_URL", &v),
        None => match get(env, "PROMETHEUSSERVER") {
            Some(v) => parse_url("PROMETHEUSSERVER", &v),
            None => Ok("http://localhost:9090".to_string()),
        },
    }
}

fn update_interval(env: &dyn Env) -> Result<Duration, ConfigError> {
    let interval = match get(env, "UPDATE_INTERVAL") {
        Some(v) => parse_duration("UPDATE_INTERVAL", &v)?,
        None => Duration::from_secs(15),
    };
    if interval < Duration::from_millis(100)
        || interval > MAX_DURATION
        || interval.subsec_nanos() % 1_000_000 != 0
    {
        return Err(err(
            "UPDATE_INTERVAL",
            "must be from 100ms to 24h, in whole milliseconds",
        ));
    }
    Ok(interval)
}

fn window(env: &dyn Env) -> Result<Duration, ConfigError> {
    let window = match get(env, "WINDOW") {
        Some(v) => parse_duration("WINDOW", &v)?,
        None => Duration::from_secs(60),
    };
    if window < Duration::from_millis(1) || window.subsec_nanos() % 1_000_000 != 0 {
        return Err(err(
            "WINDOW",
            "must be a whole number of milliseconds, at least 1ms",
        ));
    }
    Ok(window)
}

/// `LISTEN_ADDR`, else `0.0.0.0:$PORT`.
fn listen_addr(env: &dyn Env) -> Result<SocketAddr, ConfigError> {
    let port = match get(env, "PORT") {
        Some(v) => v
            .parse::<u16>()
            .map_err(|_| err("PORT", format!("{v:?} is not a port number (0-65535)")))?,
        None => 8000,
    };
    match get(env, "LISTEN_ADDR") {
        Some(v) => parse_listen_addr(&v),
        None => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
    }
}

fn max_node_watts(env: &dyn Env) -> Result<f64, ConfigError> {
    let Some(v) = get(env, "MAX_NODE_WATTS") else {
        return Ok(5000.0);
    };
    v.parse::<f64>()
        .ok()
        .filter(|w| w.is_finite() && *w > 0.0 && *w <= 1e9)
        .ok_or_else(|| {
            err(
                "MAX_NODE_WATTS",
                format!("{v:?} must be a number of watts above 0, like 5000"),
            )
        })
}

fn prometheus_timeout(env: &dyn Env) -> Result<Duration, ConfigError> {
    let timeout = match get(env, "PROMETHEUS_TIMEOUT") {
        Some(v) => parse_duration("PROMETHEUS_TIMEOUT", &v)?,
        None => Duration::from_secs(10),
    };
    if timeout.is_zero() || timeout > MAX_DURATION {
        return Err(err(
            "PROMETHEUS_TIMEOUT",
            "must be greater than zero and at most 24h",
        ));
    }
    Ok(timeout)
}

/// HTTP_MAX_CONNECTIONS, HTTP_HEADER_TIMEOUT, HTTP_IDLE_TIMEOUT.
fn parse_http_limits(env: &dyn Env, max_streams: usize) -> Result<HttpLimits, ConfigError> {
    let defaults = HttpLimits::default();
    let max_connections = parse_count(
        env,
        "HTTP_MAX_CONNECTIONS",
        defaults.max_connections,
        1,
        100_000,
    )?;
    if max_connections <= max_streams {
        return Err(err(
            "HTTP_MAX_CONNECTIONS",
            format!(
                "{max_connections} leaves no room besides MAX_STREAMS ({max_streams}); \
                 streams hold their connection"
            ),
        ));
    }
    let timeout = |variable: &'static str, default: Duration| {
        let Some(v) = get(env, variable) else {
            return Ok(default);
        };
        let d = parse_duration(variable, &v)?;
        if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
            return Err(err(variable, format!("{v:?} must be from 100ms to 1h")));
        }
        Ok(d)
    };
    Ok(HttpLimits {
        max_connections,
        header_timeout: timeout("HTTP_HEADER_TIMEOUT", defaults.header_timeout)?,
        idle_timeout: timeout("HTTP_IDLE_TIMEOUT", defaults.idle_timeout)?,
    })
}

fn parse_url(variable: &'static str, value: &str) -> Result<String, ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| {
            err(
                variable,
                format!("{value:?} must start with http:// or https://"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(err(variable, format!("{value:?} has no host")));
    }
    if value.contains(['?', '#', ' ']) {
        return Err(err(
            variable,
            format!("{value:?} must be a base URL without query, fragment or spaces"),
        ));
    }
    let base = value.trim_end_matches('/');
    if base.ends_with("/api/v1") || base.contains("/api/v1/") {
        return Err(err(
            variable,
            format!(
                "{value:?} includes /api/v1: give the server's base URL without it (the agent \
                 adds /api/v1/query itself), e.g. {:?}",
                &base[..base.find("/api/v1").unwrap_or(base.len())]
            ),
        ));
    }
    Ok(base.to_string())
}

/// Namespace resolution order: NAMESPACE, POD_NAMESPACE, the service-account
/// file, then `default`.
fn resolve_namespace(env: &dyn Env) -> Result<(String, NamespaceSource), ConfigError> {
    let (value, variable, source) = if let Some(v) = get(env, "NAMESPACE") {
        (v, "NAMESPACE", NamespaceSource::Namespace)
    } else if let Some(v) = get(env, "POD_NAMESPACE") {
        (v, "POD_NAMESPACE", NamespaceSource::PodNamespace)
    } else if let Some(v) = env
        .read_file(SERVICE_ACCOUNT_NAMESPACE_FILE)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        (v, "NAMESPACE", NamespaceSource::ServiceAccountFile)
    } else {
        return Ok(("default".to_string(), NamespaceSource::Fallback));
    };
    if !is_dns1123_label(&value) {
        return Err(err(
            variable,
            format!(
                "{value:?} is not a valid namespace (DNS-1123 label: at most 63 characters, \
                 lowercase letters, digits and '-', starting and ending with a letter or digit)"
            ),
        ));
    }
    Ok((value, source))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && ok(&b[0])
        && ok(&b[b.len() - 1])
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// A duration variable, by the one duration rule (`duration`).
fn parse_duration(variable: &'static str, value: &str) -> Result<Duration, ConfigError> {
    duration::parse_duration(value).map_err(|message| err(variable, message))
}

fn parse_count(
    env: &dyn Env,
    variable: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(v) = get(env, variable) else {
        return Ok(default);
    };
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(err(
            variable,
            format!("{v:?} must be a whole number from {min} to {max}"),
        )),
    }
}

fn parse_listen_addr(value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Host names such as `localhost:8000`.
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            err(
                "LISTEN_ADDR",
                format!("{value:?} is not an address like 0.0.0.0:8000 or [::]:8000"),
            )
        })
}

/// A byte count: a whole number, optionally with a binary suffix (`64Mi`, `512Ki`, `1Gi`).
fn parse_bytes(variable: &'static str, value: &str) -> Result<u64, ConfigError> {
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n >= 1024)
        .ok_or_else(|| {
            err(
                variable,
                format!("{value:?} must be a byte count of at least 1024, like 67108864 or 64Mi"),
            )
        })
}

/// `Name=Value,Name2=Value2`; names must be HTTP tokens, values printable.
fn parse_headers(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, val) = part
            .split_once('=')
            .ok_or_else(|| err("PROMETHEUS_HEADERS", format!("{part:?} is not Name=Value")))?;
        let name = name.trim();
        let val = val.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(err(
                "PROMETHEUS_HEADERS",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if val.chars().any(|c| c.is_control()) {
            return Err(err(
                "PROMETHEUS_HEADERS",
                format!("value of {name} contains control characters"),
            ));
        }
        headers.push((name.to_string(), val.to_string()));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<&str, &str> = vars.iter().copied().collect();
        Config::from_env(&env)
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.prometheus_url, "http://localhost:9090");
        assert_eq!(c.namespace, "default");
        assert_eq!(c.namespace_source, NamespaceSource::Fallback);
        assert_eq!(c.max_answer_bytes, 64 << 20);
        assert_eq!(c.max_series, 50_000);
        assert_eq!(c.max_node_watts, 5000.0);
        assert_eq!(c.update_interval, Duration::from_secs(15));
        assert_eq!(c.window, Duration::from_secs(60));
        assert_eq!(c.listen_addr, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(c.buffer_size, 100);
        assert_eq!(c.max_streams, 32);
        assert_eq!(c.prometheus_timeout, Duration::from_secs(10));
        assert!(c.queries_file.is_none() && c.bearer_token_file.is_none());
        assert!(c.extra_headers.is_empty());
    }

    #[test]
    fn prometheus_url_alias_and_prefix() {
        let c = config(&[("PROMETHEUSSERVER", "http://prom:9090/select/0/prometheus/")]).unwrap();
        assert_eq!(c.prometheus_url, "http://prom:9090/select/0/prometheus");
        let c = config(&[
            ("PROMETHEUS_URL", "https://a:1"),
            ("PROMETHEUSSERVER", "http://b:2"),
        ])
        .unwrap();
        assert_eq!(c.prometheus_url, "https://a:1");
        let e = config(&[("PROMETHEUSSERVER", "prom:9090")]).unwrap_err();
        assert_eq!(e.variable, "PROMETHEUSSERVER");
        let e = config(&[("PROMETHEUS_URL", "http:///x")]).unwrap_err();
        assert_eq!(e.variable, "PROMETHEUS_URL");
        let e = config(&[("PROMETHEUS_URL", "http://prom:9090/api/v1/")]).unwrap_err();
        assert_eq!(e.variable, "PROMETHEUS_URL");
        assert!(
            e.message.contains("without it") && e.message.ends_with("\"http://prom:9090\""),
            "{e}"
        );
    }

    #[test]
    fn namespace_resolution_order() {
        let file = "file:/var/run/secrets/kubernetes.io/serviceaccount/namespace";
        let c = config(&[("NAMESPACE", "a"), ("POD_NAMESPACE", "b"), (file, "c\n")]).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.namespace_source),
            ("a", NamespaceSource::Namespace)
        );
        let c = config(&[("POD_NAMESPACE", "b"), (file, "c\n")]).unwrap();
        assert_eq!(c.namespace, "b");
        let c = config(&[("NAMESPACE", ""), (file, "c\n")]).unwrap();
        assert_eq!(c.namespace, "c");
        assert_eq!(
            c.namespace_source.to_string(),
            "service-account namespace file"
        );
        let e = config(&[("NAMESPACE", "Bad_NS")]).unwrap_err();
        assert_eq!(e.variable, "NAMESPACE");
        let e = config(&[("POD_NAMESPACE", "x\"}or vector(1)")]).unwrap_err();
        assert_eq!(e.variable, "POD_NAMESPACE");
    }

    #[test]
    fn dns1123() {
        assert!(is_dns1123_label("a"));
        assert!(is_dns1123_label("exp-01"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_label(&"a".repeat(63)));
    }

    #[test]
    fn durations() {
        let c = config(&[("UPDATE_INTERVAL", "30"), ("WINDOW", "2m")]).unwrap();
        assert_eq!(c.update_interval, Duration::from_secs(30));
        assert_eq!(c.window, Duration::from_secs(120));
        // One rule for every duration: plain seconds are accepted everywhere.
        let c = config(&[("WINDOW", "5")]).unwrap();
        assert_eq!(c.window, Duration::from_secs(5));
        let e = config(&[("WINDOW", "15x")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a duration: use a number with a unit"),
            "{e}"
        );
        let c = config(&[("UPDATE_INTERVAL", "1m30s"), ("PROMETHEUS_TIMEOUT", "2.5")]).unwrap();
        assert_eq!(c.update_interval, Duration::from_secs(90));
        assert_eq!(c.prometheus_timeout, Duration::from_millis(2500));
        for (var, val) in [
            ("UPDATE_INTERVAL", "fast"),
            ("UPDATE_INTERVAL", "0"),
            ("UPDATE_INTERVAL", "-5"),
            ("UPDATE_INTERVAL", "10ms"),
            ("UPDATE_INTERVAL", "2days"),
            ("UPDATE_INTERVAL", "1.0005"),
            ("PROMETHEUS_TIMEOUT", "1000years"),
            ("WINDOW", "0s"),
            ("WINDOW", "15x"),
            ("PROMETHEUS_TIMEOUT", "0s"),
        ] {
            let e = config(&[(var, val)]).unwrap_err();
            assert_eq!(e.variable, var, "{var}={val}");
        }
    }

    #[test]
    fn listen_address() {
        let c = config(&[("PORT", "9000")]).unwrap();
        assert_eq!(c.listen_addr, "0.0.0.0:9000".parse().unwrap());
        let c = config(&[("PORT", "9000"), ("LISTEN_ADDR", "127.0.0.1:7000")]).unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:7000".parse().unwrap());
        let c = config(&[("LISTEN_ADDR", "[::1]:7000")]).unwrap();
        assert_eq!(c.listen_addr, "[::1]:7000".parse().unwrap());
        assert_eq!(config(&[("PORT", "80000")]).unwrap_err().variable, "PORT");
        assert_eq!(config(&[("PORT", "http")]).unwrap_err().variable, "PORT");
        let e = config(&[("LISTEN_ADDR", "nowhere")]).unwrap_err();
        assert_eq!(e.variable, "LISTEN_ADDR");
    }

    #[test]
    fn counts() {
        let c = config(&[("BUFFER_SIZE", "5"), ("MAX_STREAMS", "0")]).unwrap();
        assert_eq!((c.buffer_size, c.max_streams), (5, 0));
        for (var, val) in [
            ("BUFFER_SIZE", "0"),
            ("BUFFER_SIZE", "-1"),
            ("BUFFER_SIZE", "ten"),
            ("MAX_STREAMS", "1.5"),
        ] {
            assert_eq!(config(&[(var, val)]).unwrap_err().variable, var);
        }
    }

    #[test]
    fn max_node_watts() {
        assert_eq!(
            config(&[("MAX_NODE_WATTS", "1200.5")])
                .unwrap()
                .max_node_watts,
            1200.5
        );
        for bad in ["0", "-5", "lots", "inf"] {
            let e = config(&[("MAX_NODE_WATTS", bad)]).unwrap_err();
            assert_eq!(e.variable, "MAX_NODE_WATTS", "{bad}");
        }
    }

    #[test]
    fn answer_limits() {
        let c = config(&[
            ("PROMETHEUS_MAX_ANSWER_BYTES", "512Ki"),
            ("PROMETHEUS_MAX_SERIES", "10"),
        ])
        .unwrap();
        assert_eq!((c.max_answer_bytes, c.max_series), (512 * 1024, 10));
        let c = config(&[("PROMETHEUS_MAX_ANSWER_BYTES", "1048576")]).unwrap();
        assert_eq!(c.max_answer_bytes, 1 << 20);
        for bad in ["64M", "lots", "-1", "1", "99999999999Gi"] {
            let e = config(&[("PROMETHEUS_MAX_ANSWER_BYTES", bad)]).unwrap_err();
            assert_eq!(e.variable, "PROMETHEUS_MAX_ANSWER_BYTES", "{bad}");
        }
        let e = config(&[("PROMETHEUS_MAX_SERIES", "0")]).unwrap_err();
        assert_eq!(e.variable, "PROMETHEUS_MAX_SERIES");
    }

    #[test]
    fn http_limits() {
        let c = config(&[]).unwrap();
        assert_eq!(c.http, HttpLimits::default());
        assert_eq!(
            (
                c.http.max_connections,
                c.http.header_timeout,
                c.http.idle_timeout
            ),
            (128, Duration::from_secs(10), Duration::from_secs(30))
        );
        let c = config(&[
            ("HTTP_MAX_CONNECTIONS", "40"),
            ("HTTP_HEADER_TIMEOUT", "500ms"),
            ("HTTP_IDLE_TIMEOUT", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.http,
            HttpLimits {
                max_connections: 40,
                header_timeout: Duration::from_millis(500),
                idle_timeout: Duration::from_secs(2),
            }
        );
        for (var, val) in [
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP_MAX_CONNECTIONS", "many"),
            ("HTTP_MAX_CONNECTIONS", "32"),
            ("HTTP_HEADER_TIMEOUT", "10ms"),
            ("HTTP_HEADER_TIMEOUT", "2h"),
            ("HTTP_HEADER_TIMEOUT", "soon"),
            ("HTTP_IDLE_TIMEOUT", "0"),
        ] {
            assert_eq!(config(&[(var, val)]).unwrap_err().variable, var, "{val}");
        }
        let c = config(&[("MAX_STREAMS", "4"), ("HTTP_MAX_CONNECTIONS", "5")]).unwrap();
        assert_eq!(c.http.max_connections, 5);
        for variable in [
            "HTTP_MAX_CONNECTIONS  ",
            "HTTP_HEADER_TIMEOUT  ",
            "HTTP_IDLE_TIMEOUT  ",
        ] {
            let line = HELP.lines().find(|l| l.contains(variable)).unwrap();
            assert!(line.ends_with(']'), "no default for {variable}: {line}");
        }
    }

    #[test]
    fn headers() {
        let c = config(&[("PROMETHEUS_HEADERS", "X-Scope-OrgID=team-a, X-B = b=c")]).unwrap();
        assert_eq!(
            c.extra_headers,
            vec![
                ("X-Scope-OrgID".to_string(), "team-a".to_string()),
                ("X-B".to_string(), "b=c".to_string())
            ]
        );
        for bad in ["novalue", "Bad Name=x", "=x"] {
            let e = config(&[("PROMETHEUS_HEADERS", bad)]).unwrap_err();
            assert_eq!(e.variable, "PROMETHEUS_HEADERS", "{bad}");
        }
    }

    #[test]
    fn error_is_one_line_naming_the_variable() {
        let e = config(&[("UPDATE_INTERVAL", "soon")]).unwrap_err();
        let line = e.to_string();
        assert!(
            line.starts_with("invalid UPDATE_INTERVAL: \"soon\""),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
