//! The agent as a process: configuration errors, the poll schedule, what it asks Prometheus,
//! the HTTP API seen through the real `curl`, Prometheus failures, and signals.
//!
//! Needs /usr/bin/prometheus (`scripts/setup` installs it) and curl.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::cluster::Convention;
use support::cluster::NAMESPACE;
use support::prometheus::{Agent, AgentConfig, TempDir, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

const AGENT: &str = env!("CARGO_BIN_EXE_prometheus-agent");

/// Runs the agent binary with only `env` set; returns (exit code, stdout, stderr).
fn run_agent(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(AGENT)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("cannot run the agent binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `curl -s -i` with a method: (status code, headers, body).
fn http(method: &str, url: &str) -> (u16, String, String) {
    let mut args = vec!["-s", "-i", "--max-time", "10", "-X", method, url];
    if method == "HEAD" {
        args = vec!["-s", "-I", "--max-time", "10", url];
    }
    let output = Command::new("curl")
        .args(&args)
        .output()
        .expect("cannot run curl");
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

/// Waits until `path` has at least `rows` data rows; returns the parsed table.
fn wait_rows(agent: &Agent, path: &str, rows: usize) -> Table {
    wait_for(Duration::from_secs(60), || {
        let table = Table::parse(&agent.get(path).ok()?).ok()?;
        (table.rows.len() >= rows).then_some(table)
    })
    .unwrap_or_else(|| panic!("{path} never had {rows} rows:\n{}", agent.log()))
}

#[test]
fn bad_configuration_stops_at_start_naming_the_variable() {
    let queries = TempDir::new("queries");
    let unknown_column = queries.path().join("unknown.json");
    std::fs::write(&unknown_column, r#"{"nodes": {"watts": "up"}}"#).expect("write");
    let unknown = unknown_column.to_string_lossy().into_owned();
    for (variable, value) in [
        ("UPDATE_INTERVAL", "soon"),
        ("WINDOW", "-1m"),
        ("NAMESPACE", "Not_A_Label"),
        ("POD_NAMESPACE", "a\"} or vector(1) #"),
        ("PROMETHEUS_URL", "prometheus:9090"),
        ("PROMETHEUSSERVER", "ftp://x"),
        ("PORT", "99999"),
        ("LISTEN_ADDR", "here"),
        ("BUFFER_SIZE", "0"),
        ("MAX_STREAMS", "many"),
        ("PROMETHEUS_TIMEOUT", "0s"),
        ("PROMETHEUS_HEADERS", "X-Org"),
        ("PROMETHEUS_BEARER_TOKEN_FILE", "/nonexistent/token"),
        ("PROMETHEUS_CA_FILE", "/nonexistent/ca.pem"),
        ("QUERIES_FILE", "/nonexistent/queries.json"),
        ("QUERIES_FILE", unknown.as_str()),
    ] {
        let (code, _, stderr) = run_agent(&[], &[(variable, value)]);
        assert_eq!(code, Some(2), "{variable}={value}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{variable}={value}: {stderr}");
        assert!(
            lines[0].contains(variable),
            "{variable}={value}: {}",
            lines[0]
        );
    }
    let (code, _, stderr) = run_agent(&["--frobnicate"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn help_lists_every_variable_and_version_prints() {
    let (code, help, _) = run_agent(&["--help"], &[]);
    assert_eq!(code, Some(0));
    for variable in [
        "PROMETHEUS_URL",
        "PROMETHEUSSERVER",
        "NAMESPACE",
        "UPDATE_INTERVAL",
        "WINDOW",
        "PORT",
        "LISTEN_ADDR",
        "BUFFER_SIZE",
        "MAX_STREAMS",
        "QUERIES_FILE",
        "PROMETHEUS_TIMEOUT",
        "PROMETHEUS_BEARER_TOKEN_FILE",
        "PROMETHEUS_CA_FILE",
        "PROMETHEUS_HEADERS",
        "HTTP_MAX_CONNECTIONS",
        "HTTP_HEADER_TIMEOUT",
        "HTTP_IDLE_TIMEOUT",
        "RUST_LOG",
    ] {
        assert!(help.contains(variable), "--help lacks {variable}");
    }
    let (code, version, _) = run_agent(&["--version"], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        version.trim(),
        format!("prometheus-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn first_cycle_at_once_then_a_fixed_schedule_with_one_time_per_cycle() {
    let stack = Stack::start(Convention::A);
    // An hour-long interval: a finished cycle within seconds proves the first one did not wait
    // for the next grid point. (It is evaluated at the last full hour, before the exporter
    // started, so it has no rows.)
    let slow = stack.agent("1h", &[]);
    wait_for(Duration::from_secs(20), || {
        let metrics = slow.get("/agent/metrics").ok()?;
        metrics
            .lines()
            .any(|l| l == "prometheus_agent_cycles_total 1")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no first cycle:\n{}", slow.log()));
    assert_eq!(slow.get("/readyz").expect("readyz").trim(), "ok");
    drop(slow);

    let agent = stack.agent("700ms", &[]);
    let table = wait_rows(&agent, "/nodes", 3 * 6);
    let collection = table.column("collection_time").expect("collection_time");
    let observation = table.column("observation_time").expect("observation_time");
    let mut cycles: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for row in &table.rows {
        let observed = parse_rfc3339_ms(&row[observation]).expect("observation_time");
        let collected = parse_rfc3339_ms(&row[collection]).expect("collection_time");
        assert!(
            collected >= observed,
            "collected before the evaluation time"
        );
        cycles.entry(observed).or_default().push(collected);
    }
    // Every row of a cycle shares its times.
    for collected in cycles.values() {
        assert!(collected.iter().all(|c| *c == collected[0]), "{cycles:?}");
    }
    // Evaluation times lie on the epoch grid and step by exactly the interval (no drift),
    // bar skipped ticks.
    let times: Vec<i64> = cycles.keys().copied().collect();
    assert!(
        times.iter().all(|t| t % 700 == 0),
        "off the grid: {times:?}"
    );
    for pair in times.windows(2) {
        let step = pair[1] - pair[0];
        assert!(step > 0 && step % 700 == 0, "step {step} ms in {times:?}");
    }
    assert!(times.windows(2).filter(|p| p[1] - p[0] == 700).count() >= 3);

    // Prometheus saw every query of a cycle with that cycle's time, and node-name mappings
    // were asked for once, not every cycle.
    let log = stack.server.prometheus().query_log();
    // Each table's columns go in one combined query, each column tagged.
    let tag = prometheus_agent::tables::identity::COLUMN_LABEL;
    let mut per_time: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (query, end) in &log {
        // Go trims trailing zeros of the fraction; the agent's own parser takes any RFC 3339.
        if let Some(t) = prometheus_agent::time::parse_time(end) {
            per_time
                .entry(t)
                .or_default()
                .push(query.matches(tag).count());
        }
    }
    for t in &times {
        // 8 node and 5 pod columns, all at the same evaluation time.
        let mut columns = per_time.get(t).cloned().unwrap_or_default();
        columns.retain(|n| *n > 0);
        columns.sort_unstable();
        assert_eq!(columns, [5, 8], "time {t}: {per_time:?}");
    }
    for mapping in ["kube_node_info", "node_uname_info", "kube_pod_info"] {
        let asked = log.iter().filter(|(q, _)| q.contains(mapping)).count();
        assert!(
            (1..=2).contains(&asked),
            "{mapping} asked {asked} times over {} cycles",
            times.len() + 1
        );
    }
}

#[test]
fn downloads_parameters_and_errors_over_http() {
    let stack = Stack::start(Convention::A);
    let agent = stack.agent("500ms", &[("BUFFER_SIZE", "12")]);
    let full = wait_rows(&agent, "/nodes", 12);
    let base = agent.url();

    let (status, head, body) = http("GET", &format!("{base}/nodes"));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/csv"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename=\"nodes.csv\""),
        "{head}"
    );
    assert_eq!(
        body.lines().count(),
        13,
        "ring buffer keeps BUFFER_SIZE rows"
    );
    let (_, head, _) = http("GET", &format!("{base}/pods"));
    assert!(head.contains("filename=\"pods.csv\""), "{head}");
    let (status, head, body) = http("HEAD", &format!("{base}/download"));
    assert_eq!(status, 200);
    assert!(head.contains("content-disposition"), "{head}");
    assert!(body.is_empty());

    // /download is /nodes; snapshots are non-destructive.
    let download = Table::parse(&agent.get("/download").expect("download")).expect("csv");
    assert_eq!(download.header, full.header);
    assert_eq!(download.rows.len(), 12);

    let last = Table::parse(&agent.get("/nodes?size=2").expect("size")).expect("csv");
    assert_eq!(last.rows.len(), 2);
    let zero = agent.get("/nodes?size=0").expect("size=0");
    assert_eq!(zero.lines().count(), 1);

    // since: only rows collected after T (RFC 3339 or Unix seconds).
    let now = Table::parse(&agent.get("/nodes").expect("nodes")).expect("csv");
    let collection = now.column("collection_time").expect("column");
    let cut = now.rows[now.rows.len() / 2][collection].clone();
    let cut_ms = parse_rfc3339_ms(&cut).expect("time");
    let later =
        Table::parse(&agent.get(&format!("/nodes?since={cut}")).expect("since")).expect("csv");
    assert!(!later.rows.is_empty());
    for row in &later.rows {
        assert!(parse_rfc3339_ms(&row[collection]).expect("time") > cut_ms);
    }
    let unix = format!("{}.{:03}", cut_ms / 1000, cut_ms % 1000);
    let later_unix =
        Table::parse(&agent.get(&format!("/nodes?since={unix}")).expect("since")).expect("csv");
    let first_kept = parse_rfc3339_ms(&later_unix.rows[0][collection]).expect("time");
    assert!(first_kept > cut_ms);
    let future = agent
        .get("/pods?since=2999-01-01T00:00:00Z")
        .expect("future");
    assert_eq!(future.lines().count(), 1);

    for (method, path, status) in [
        ("GET", "/nodes?size=13", 400),
        ("GET", "/nodes?size=-1", 400),
        ("GET", "/pods?since=yesterday", 400),
        ("GET", "/pods?limit=5", 400),
        ("GET", "/nowhere", 404),
        ("GET", "/nodes/", 404),
        ("POST", "/nodes", 405),
        ("DELETE", "/metrics", 405),
    ] {
        let (got, _, body) = http(method, &format!("{base}{path}"));
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(
            body.trim_end().lines().count(),
            1,
            "{method} {path}: {body:?}"
        );
    }

    let (status, _, body) = http("GET", &format!("{base}/livez"));
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, _, _) = http("GET", &format!("{base}/readyz"));
    assert_eq!(status, 200);
    let (status, _, index) = http("GET", &format!("{base}/"));
    assert_eq!(status, 200);
    assert!(index.contains("/nodes") && index.contains("/metrics/pods"));

    let metrics = agent.get("/agent/metrics").expect("agent metrics");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert!(value("prometheus_agent_cycles_total") >= 4.0);
    assert_eq!(value("prometheus_agent_cycle_errors_total"), 0.0);
    assert!(value("prometheus_agent_last_cycle_duration_seconds") > 0.0);
    assert!(value("prometheus_agent_rows_total{table=\"nodes\"}") >= 12.0);
    assert_eq!(
        value("prometheus_agent_rows_buffered{table=\"nodes\"}"),
        12.0
    );
    // The agent's own RSS figure is the process's, as the kernel counts it.
    let rss = value("prometheus_agent_resident_memory_bytes");
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).expect("status");
    let kernel: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let kernel = kernel * 1024.0;
    assert!(
        (rss - kernel).abs() <= 0.25 * kernel,
        "reported RSS {rss}, kernel says {kernel}"
    );
}

#[test]
fn a_failing_query_empties_only_its_column_and_logs_prometheus_text() {
    let stack = Stack::start(Convention::A);
    let dir = TempDir::new("queries");
    let file = dir.path().join("queries.json");
    std::fs::write(
        &file,
        r#"{"nodes": {"cpu_usage": "sum by (node (", "num_processes": ""},
            "pods": {"wattage_scaph": "   "}}"#,
    )
    .expect("write queries");
    let file = file.to_string_lossy().into_owned();
    let agent = stack.agent("500ms", &[("QUERIES_FILE", &file)]);
    let nodes = wait_rows(&agent, "/nodes", 6);
    let pods = wait_rows(&agent, "/pods", 4);
    let column = |table: &Table, name: &str| table.column(name).expect(name);
    for row in &nodes.rows {
        assert_eq!(row[column(&nodes, "cpu_usage")], "", "broken query → empty");
        assert_eq!(row[column(&nodes, "num_processes")], "", "disabled → empty");
    }
    assert!(
        nodes
            .rows
            .iter()
            .any(|r| !r[column(&nodes, "memory_usage")].is_empty()),
        "other columns still filled"
    );
    for row in &pods.rows {
        assert_eq!(row[column(&pods, "wattage_scaph")], "");
    }
    assert!(
        pods.rows
            .iter()
            .any(|r| !r[column(&pods, "cpu_usage")].is_empty())
    );

    let log = agent.full_log();
    // Prometheus's own words, once, not once per cycle.
    let mentions = log
        .lines()
        .filter(|l| l.contains("nodes.cpu_usage") && l.contains("parse error"))
        .count();
    assert_eq!(mentions, 1, "{log}");
    assert!(log.contains("nodes.cpu_usage"), "{log}");
    assert!(log.contains("bad_data"), "{log}");
    let metrics = agent.get("/agent/metrics").expect("metrics");
    assert!(
        metrics
            .contains("prometheus_agent_query_errors_total{table=\"nodes\",column=\"cpu_usage\"}"),
        "{metrics}"
    );
    assert_eq!(agent.get("/readyz").expect("readyz").trim(), "ok");
}

#[test]
fn prometheus_outage_turns_readyz_503_and_keeps_serving() {
    let mut stack = Stack::start(Convention::A);
    let agent = stack.agent("300ms", &[]);
    let before = wait_rows(&agent, "/nodes", 3);
    stack.server.stop();
    let reason = wait_for(Duration::from_secs(10), || {
        let (status, _, body) = http("GET", &format!("{}/readyz", agent.url()));
        // A query cut off mid-way may fail differently first; refusals follow.
        (status == 503 && body.contains("Connection refused")).then_some(body)
    })
    .unwrap_or_else(|| panic!("/readyz stayed ready:\n{}", agent.log()));
    assert!(reason.contains("Connection refused"), "{reason}");
    assert_eq!(reason.trim_end().lines().count(), 1);
    // The buffer is still served, unchanged while Prometheus is away, and it still holds
    // every row downloaded before the outage.
    let after = Table::parse(&agent.get("/nodes").expect("nodes")).expect("csv");
    for row in &before.rows {
        assert!(after.rows.contains(row), "lost {row:?}");
    }
    std::thread::sleep(Duration::from_millis(900));
    let later = Table::parse(&agent.get("/nodes").expect("nodes")).expect("csv");
    assert_eq!(
        later.rows, after.rows,
        "rows appeared while Prometheus was down"
    );
    assert_eq!(agent.get("/livez").expect("livez").trim(), "ok");
    let log = agent.full_log();
    assert!(log.contains("cycle skipped"), "{log}");
    // Once per distinct error text (a reset mid-query, then refusals), not once per cycle.
    let warnings = log.lines().filter(|l| l.contains("cycle skipped")).count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings:\n{log}");
}

#[test]
fn sigterm_and_sigint_exit_zero_within_two_seconds() {
    let stack = Stack::start(Convention::A);
    for signal in ["TERM", "INT"] {
        let mut agent = stack.agent("1s", &[]);
        wait_rows(&agent, "/nodes", 1);
        let (status, took) = agent.signal_and_wait(signal);
        let status = status.unwrap_or_else(|| panic!("SIG{signal}: still running"));
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        assert!(took < Duration::from_secs(2), "SIG{signal} took {took:?}");
        let log = agent.full_log();
        assert!(
            log.contains(&format!("received SIG{signal}; shutting down")),
            "{log}"
        );
    }
}

#[test]
fn a_hung_prometheus_skips_the_cycle_after_two_timeouts() {
    // Accepts connections and never answers: the agent must not wait for all 13 queries.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", hung.local_addr().expect("addr"));
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in hung.incoming().take(64).flatten() {
            open.push(stream);
        }
    });
    let agent = Agent::start_with(
        &AgentConfig {
            prometheus_url: &url,
            namespace: NAMESPACE,
            update_interval: "5s",
            window: "10s",
        },
        &[("PROMETHEUS_TIMEOUT", "300ms")],
    );
    let reason = wait_for(Duration::from_secs(10), || {
        let (status, _, body) = http("GET", &format!("{}/readyz", agent.url()));
        (status == 503 && body.contains("did not answer in time")).then_some(body)
    })
    .unwrap_or_else(|| panic!("no timeout reported:\n{}", agent.log()));
    assert!(reason.contains("timeout"), "{reason}");
    let metrics = agent.get("/agent/metrics").expect("metrics");
    let duration: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("prometheus_agent_last_cycle_duration_seconds ")?
                .parse()
                .ok()
        })
        .expect("cycle duration");
    // Two timeouts, not thirteen.
    assert!((0.5..1.5).contains(&duration), "cycle took {duration} s");
    drop(agent);
    drop(held);
}

/// Threads the agent starts while only polling (no HTTP request in between), counted by
/// `strace -f` attached to it: ureq's default resolver used to start one per query.
#[test]
fn polling_starts_no_thread_per_query() {
    let stack = Stack::start(Convention::A);
    let agent = stack.agent("250ms", &[]);
    wait_rows(&agent, "/nodes", 6);
    let cycles = |agent: &Agent| -> f64 {
        let metrics = agent.get("/agent/metrics").expect("metrics");
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("prometheus_agent_cycles_total ")?
                    .parse()
                    .ok()
            })
            .expect("cycles_total")
    };
    let before = cycles(&agent);
    let dir = TempDir::new("strace");
    let trace = dir.path().join("clones.txt");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-ttt",
            "-e",
            "trace=clone,clone3,fork,vfork",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &agent.pid().to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run strace (scripts/setup installs it)");
    std::thread::sleep(Duration::from_secs(4));
    // A stream now starts a thread of its own: proof that strace sees thread starts.
    let polled_until = support::cluster::now_ms() as f64 / 1000.0;
    let _ = Command::new("curl")
        .args(["-sN", "--max-time", "0.5", "-o", "/dev/null"])
        .arg(format!("{}/metrics", agent.url()))
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    // Interrupted on purpose: its exit status says nothing.
    let _ = strace.wait();
    let after = cycles(&agent);
    let clones = std::fs::read_to_string(&trace).expect("strace output");
    // Lines are "TID SECONDS.MICROS clone3(...)"; the metrics requests are outside the window.
    let started_at: Vec<f64> = clones
        .lines()
        .filter(|l| l.contains("clone") || l.contains("fork"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let while_polling = started_at.iter().filter(|t| **t < polled_until).count();
    assert!(
        started_at.iter().any(|t| *t >= polled_until),
        "strace saw no thread start for the stream:\n{clones}"
    );
    assert!(after - before >= 10.0, "only {} cycles ran", after - before);
    assert_eq!(while_polling, 0, "threads started while polling:\n{clones}");
}

/// The buffer keeps whole cycles: BUFFER_SIZE=5 holds one cycle of 3 node rows (two would be
/// 6), and a pod cycle of 4 rows is kept whole even though BUFFER_SIZE=2 is smaller, with one
/// warning suggesting a size.
#[test]
fn the_buffer_holds_whole_cycles() {
    let stack = Stack::start(Convention::A);
    let nodes_agent = stack.agent("300ms", &[("BUFFER_SIZE", "5")]);
    let pods_agent = stack.agent("300ms", &[("BUFFER_SIZE", "2")]);
    for _ in 0..5 {
        wait_rows(&nodes_agent, "/nodes", 3);
        let nodes = Table::parse(&nodes_agent.get("/nodes").expect("nodes")).expect("csv");
        let cycles: std::collections::BTreeSet<&String> =
            nodes.rows.iter().map(|r| &r[2]).collect();
        assert_eq!((nodes.rows.len(), cycles.len()), (3, 1), "{:?}", nodes.rows);
        let pods = wait_rows(&pods_agent, "/pods", 4);
        let cycles: std::collections::BTreeSet<&String> = pods.rows.iter().map(|r| &r[2]).collect();
        assert_eq!((pods.rows.len(), cycles.len()), (4, 1), "{:?}", pods.rows);
        std::thread::sleep(Duration::from_millis(350));
    }
    let log = pods_agent.full_log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("pod rows, more than BUFFER_SIZE=2"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("4 pod rows") && warnings[0].contains("at least 40"),
        "{}",
        warnings[0]
    );
}
