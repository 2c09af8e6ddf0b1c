//! Real processes for the integration tests: a Prometheus server scraping the
//! synthetic exporter, and the agent binary itself. Everything listens on
//! loopback only and is killed (and its temporary directory removed) on drop.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where Debian's `prometheus` package puts the server; `PROMETHEUS_BIN` overrides it.
const DEFAULT_PROMETHEUS: &str = "/usr/bin/prometheus";

/// How often a server is started again on another port when it lost its port (see
/// [`lost_port`]).
pub const PORT_ATTEMPTS: usize = 3;

/// Whether the log of a server that exited at start says its port was taken. [`free_port`]
/// gives a port that was free when it looked; until the server binds it, the kernel may hand
/// it to another process as the local port of an outgoing connection (curl, a scrape), which
/// happens on a busy machine.
pub fn lost_port(log: &Path) -> bool {
    fs::read_to_string(log).is_ok_and(|text| said_port_taken(&text))
}

fn said_port_taken(log: &str) -> bool {
    log.to_lowercase().contains("address already in use")
}

/// A free TCP port on 127.0.0.1 (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot bind a loopback port")
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "prometheus-agent-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path).expect("cannot create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `curl -sS -f URL`: the body, or curl's own error line.
pub fn curl(url: &str) -> Result<String, String> {
    run_curl(&["-sS", "-f", "--max-time", "10", url])
}

/// `curl -s URL` with any status: (status, body); status 0 when curl got no answer.
pub fn curl_status(url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "120", "-w", "\n%{http_code}", url])
        .output()
        .expect("cannot run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn run_curl(args: &[&str]) -> Result<String, String> {
    let output = Command::new("curl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run curl ({e}): is curl installed?"))?;
    if output.status.success() {
        String::from_utf8(output.stdout).map_err(|e| format!("non-UTF-8 answer: {e}"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or gives up after `timeout`.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `lines` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROMETHEUS));
    if !path.is_file() {
        panic!(
            "\n\nPrometheus server not found at {}.\n\
             These tests run a real Prometheus: run `scripts/setup` (it installs the \
             Debian package `prometheus`), or point PROMETHEUS_BIN at a prometheus binary.\n",
            path.display()
        );
    }
    path
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A real Prometheus server scraping `targets` every second with
/// `honor_labels: true`, so the exporter's labels (and timestamps) are kept.
pub struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Prometheus {
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        Prometheus::launch(targets, None, "1h")
    }

    /// On an existing TSDB directory (e.g. blocks written by `promtool`, `backfill.rs`),
    /// keeping `retention` (e.g. `2d`) of it.
    pub fn start_on_data(targets: &[SocketAddr], data: &Path, retention: &str) -> Prometheus {
        Prometheus::launch(targets, Some(data), retention)
    }

    /// Scraping `agents`' own `/agent/metrics` too (where they export the marks of runs).
    pub fn start_scraping_agents(targets: &[SocketAddr], agents: &[SocketAddr]) -> Prometheus {
        Prometheus::launch_with(targets, agents, None, "1h")
    }

    fn launch(targets: &[SocketAddr], data: Option<&Path>, retention: &str) -> Prometheus {
        Prometheus::launch_with(targets, &[], data, retention)
    }

    fn launch_with(
        targets: &[SocketAddr],
        agents: &[SocketAddr],
        data: Option<&Path>,
        retention: &str,
    ) -> Prometheus {
        let binary = prometheus_binary();
        let dir = TempDir::new("prometheus");
        let query_log = dir.path().join("queries.log");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1m\n  \
             query_log_file: {}\n{}",
            query_log.display(),
            super::scrape::config(targets, agents)
        );
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config).expect("cannot write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--storage.tsdb.retention.time={retention}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).expect("cannot create prometheus.log"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut child = Some(child);
            let url = format!("http://127.0.0.1:{port}");
            let ready = wait_for(Duration::from_secs(30), || {
                if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                    return Some(Err(status));
                }
                curl(&format!("{url}/-/ready")).ok().map(Ok)
            });
            match ready {
                Some(Ok(_)) => {
                    return Prometheus {
                        child: child.take().expect("running"),
                        url,
                        log,
                        _dir: dir,
                    };
                }
                Some(Err(_)) if attempt < PORT_ATTEMPTS && lost_port(&log) => continue,
                Some(Err(status)) => {
                    panic!(
                        "prometheus exited at start ({status}):\n{}",
                        log_tail(&log, 30)
                    )
                }
                None => {
                    if let Some(mut child) = child {
                        kill(&mut child);
                    }
                    panic!(
                        "prometheus was not ready within 30 s:\n{}",
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

    /// Every query Prometheus evaluated so far, from its query log: (query, evaluation time).
    pub fn query_log(&self) -> Vec<(String, String)> {
        let path = self.log.with_file_name("queries.log");
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| {
                let params = &entry["params"];
                Some((
                    params["query"].as_str()?.to_string(),
                    params["end"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// Stops the server (an outage, as far as the agent can tell).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// An instant query at `time_ms`; returns `data.result`.
    pub fn query(&self, query: &str, time_ms: i64) -> Result<Vec<serde_json::Value>, String> {
        let time = format!("time={}.{:03}", time_ms / 1000, time_ms % 1000);
        let query_arg = format!("query={query}");
        let url = format!("{}/api/v1/query", self.url);
        let body = run_curl(&[
            "-sS",
            "--max-time",
            "10",
            "-G",
            "--data-urlencode",
            &query_arg,
            "--data-urlencode",
            &time,
            &url,
        ])?;
        let answer: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("query {query:?} failed: {}", answer["error"]));
        }
        answer["data"]["result"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("no vector result for {query:?}: {body}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Settings for one agent process.
pub struct AgentConfig<'a> {
    pub prometheus_url: &'a str,
    pub namespace: &'a str,
    pub update_interval: &'a str,
    pub window: &'a str,
}

/// The agent binary, started with its configuration in the environment.
pub struct Agent {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Agent {
    pub fn start(config: &AgentConfig) -> Agent {
        Agent::start_with(config, &[])
    }

    /// Starts the agent with further environment variables (`QUERIES_FILE`, `BUFFER_SIZE`, …).
    pub fn start_with(config: &AgentConfig, extra_env: &[(&str, &str)]) -> Agent {
        for _ in 1..PORT_ATTEMPTS {
            match Agent::try_start_on(config, extra_env, free_port()) {
                Ok(agent) => return agent,
                Err(log) if said_port_taken(&log) => continue,
                Err(log) => panic!("the agent exited at start:\n{log}"),
            }
        }
        Agent::start_on(config, extra_env, free_port())
    }

    /// Starts the agent on a given loopback port (e.g. the port of an agent just stopped).
    pub fn start_on(config: &AgentConfig, extra_env: &[(&str, &str)], port: u16) -> Agent {
        Agent::try_start_on(config, extra_env, port)
            .unwrap_or_else(|log| panic!("the agent exited at start:\n{log}"))
    }

    /// The agent once it serves `/livez`; the end of its log if it exited at start.
    fn try_start_on(
        config: &AgentConfig,
        extra_env: &[(&str, &str)],
        port: u16,
    ) -> Result<Agent, String> {
        let dir = TempDir::new("agent");
        let log = dir.path().join("agent.log");
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_prometheus-agent"))
            .env_remove("PROMETHEUSSERVER")
            .env_remove("POD_NAMESPACE")
            .env_remove("PORT")
            .env_remove("QUERIES_FILE")
            .env_remove("BUFFER_SIZE")
            .env_remove("MARKS_FILE")
            .env_remove("MAX_NODE_WATTS")
            .env("PROMETHEUS_URL", config.prometheus_url)
            .env("NAMESPACE", config.namespace)
            .env("UPDATE_INTERVAL", config.update_interval)
            .env("WINDOW", config.window)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("agent.out")).expect("agent.out"))
            .stderr(fs::File::create(&log).expect("cannot create agent.log"))
            .spawn()
            .expect("cannot start the agent binary");
        let mut agent = Agent {
            child,
            url,
            log,
            _dir: dir,
        };
        let live = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(_)) = agent.child.try_wait() {
                return Some(false);
            }
            agent.get("/livez").ok().map(|_| true)
        });
        match live {
            Some(true) => Ok(agent),
            Some(false) => Err(agent.log()),
            None => panic!(
                "the agent did not serve /livez within 20 s:\n{}",
                agent.log()
            ),
        }
    }

    /// `curl -sS -f` of a path of the agent.
    pub fn get(&self, path: &str) -> Result<String, String> {
        curl(&format!("{}{path}", self.url))
    }

    /// A figure of `/agent/metrics` (a sample without labels).
    pub fn figure(&self, name: &str) -> f64 {
        let text = self.get("/agent/metrics").expect("agent metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    }

    /// The end of the agent's log (its stderr).
    pub fn log(&self) -> String {
        log_tail(&self.log, 60)
    }

    /// The agent's whole log.
    pub fn full_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM") and waits up to 10 s for the exit: its status and how long
    /// it took.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
    ) -> (Option<std::process::ExitStatus>, Duration) {
        let sent = Instant::now();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        let status = wait_for(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten()
        });
        (status, sent.elapsed())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
