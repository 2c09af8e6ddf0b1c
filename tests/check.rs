//! `prometheus-agent check` (README, "Troubleshooting") against real Prometheus servers: unreachable, empty
//! (no exporter at all), scraping the synthetic cluster of tests/support/cluster/ under
//! both label conventions, and scraping a bare exporter whose series need hints (an address
//! that no mapping series names, Scaphandre without `--containers`).
//!
//! Needs /usr/bin/prometheus (`scripts/setup` installs it) and curl.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::cluster::{
    Cell, Convention, Exporter, NAMESPACE, NODE_COLUMNS, POD_COLUMNS, Row, Scenario,
};
use support::prometheus::{Prometheus, free_port, wait_for};

/// Every value column, as `check` names them: the tables' columns after the key columns.
const NODE_VALUE_COLUMNS: &[&str] = NODE_COLUMNS.split_at(3).1;
const POD_VALUE_COLUMNS: &[&str] = POD_COLUMNS.split_at(5).1;

/// `prometheus-agent check` with a clean configuration.
fn run_check(prometheus_url: &str, namespace: &str, window: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prometheus-agent"))
        .arg("check")
        .env_remove("PROMETHEUSSERVER")
        .env_remove("POD_NAMESPACE")
        .env_remove("QUERIES_FILE")
        .env_remove("PROMETHEUS_HEADERS")
        .env_remove("PROMETHEUS_BEARER_TOKEN_FILE")
        .env_remove("PROMETHEUS_CA_FILE")
        .env("PROMETHEUS_URL", prometheus_url)
        .env("NAMESPACE", namespace)
        .env("WINDOW", window)
        // History steps lie on this grid: 1 s keeps the checked step within the test's data.
        .env("UPDATE_INTERVAL", "1s")
        .env("PROMETHEUS_TIMEOUT", "5s")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the agent binary")
}

fn text(output: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One column line of the report, with the hint printed under it.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    series: String,
    rows: BTreeSet<String>,
    /// Rows of the table this column left empty (`empty for: ...`).
    empty: BTreeSet<String>,
    hint: Option<String>,
}

/// Parses the report: `TABLE COLUMN SERIES ROWS` lines, each optionally followed by indented
/// `empty for: ...` and `hint: ...` lines. Keyed by `table.column`.
fn parse_report(stdout: &str) -> BTreeMap<String, Line> {
    parse_table(stdout)
}

/// The column table of the section whose title starts with `title` (`history:`, `energy:`).
fn parse_section(stdout: &str, title: &str) -> BTreeMap<String, Line> {
    let at = stdout
        .find(&format!("\n{title}"))
        .unwrap_or_else(|| panic!("no {title} section:\n{stdout}"));
    parse_table(&stdout[at + 1..])
}

/// The first column table in `text`.
fn parse_table(text: &str) -> BTreeMap<String, Line> {
    let mut lines = BTreeMap::new();
    let mut last: Option<String> = None;
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("TABLE ") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some(empty) = line.trim_start().strip_prefix("empty for: ") {
            let key = last
                .clone()
                .expect("an empty-for line before any column line");
            if let Some(entry) = lines.get_mut(&key) {
                let entry: &mut Line = entry;
                entry.empty = empty.split(", ").map(str::to_string).collect();
            }
            continue;
        }
        if let Some(hint) = line.trim_start().strip_prefix("hint: ") {
            let key = last.clone().expect("a hint before any column line");
            if let Some(entry) = lines.get_mut(&key) {
                let entry: &mut Line = entry;
                entry.hint = Some(hint.to_string());
            }
            continue;
        }
        let (fields, rest) = leading_fields(line, 3);
        assert!(fields.len() == 3, "unexpected report line {line:?}");
        let (table, column, series) = (fields[0], fields[1], fields[2]);
        let rows = if series == "error" || rest == "(none)" || rest == "disabled" {
            BTreeSet::new()
        } else {
            rest.split(", ").map(str::to_string).collect()
        };
        let key = format!("{table}.{column}");
        lines.insert(
            key.clone(),
            Line {
                series: series.to_string(),
                rows,
                empty: BTreeSet::new(),
                hint: None,
            },
        );
        last = Some(key);
    }
    lines
}

/// The first `n` whitespace-separated fields of `line` and the trimmed text after them.
fn leading_fields(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut fields = Vec::new();
    let mut rest = line;
    while fields.len() < n {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        fields.push(&trimmed[..end]);
        rest = &trimmed[end..];
    }
    (fields, rest.trim())
}

fn all_columns() -> Vec<String> {
    NODE_VALUE_COLUMNS
        .iter()
        .map(|c| format!("nodes.{c}"))
        .chain(POD_VALUE_COLUMNS.iter().map(|c| format!("pods.{c}")))
        .collect()
}

#[test]
fn unreachable_prometheus_exits_1_and_names_the_error() {
    // A port that was free a moment ago: nothing listens there.
    let url = format!("http://127.0.0.1:{}", free_port());
    let output = run_check(&url, "exp", "1m");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "the error names the URL:\n{report}");
    assert!(
        stderr.contains("unreachable") && stderr.to_lowercase().contains("refused"),
        "the error says why:\n{report}"
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let prometheus = Prometheus::start(&[]);
    let agent = env!("CARGO_BIN_EXE_prometheus-agent");
    // The reader is gone before the agent writes: every write meets a closed pipe.
    for command in [
        format!(
            "PROMETHEUS_URL={} NAMESPACE=exp {agent} check",
            prometheus.url()
        ),
        format!("{agent} --help"),
        format!("{agent} --version"),
    ] {
        let output = Command::new("bash")
            .args([
                "-c",
                &format!("{{ sleep 0.2; {command}; echo \"exit $?\" >&2; }} | true"),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("bash");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        // check: 1, as ever without pods of the namespace; --help and --version: 0.
        let expected = if command.ends_with("check") {
            "exit 1"
        } else {
            "exit 0"
        };
        assert!(stderr.contains(expected), "{command}: {stderr}");
    }
}

#[test]
fn bad_configuration_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_prometheus-agent"))
        .arg("check")
        .env("UPDATE_INTERVAL", "soon")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the agent binary");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(2), "{report}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("UPDATE_INTERVAL"),
        "{report}"
    );
}

#[test]
fn prometheus_without_exporters_reports_every_column_empty_with_a_hint() {
    let prometheus = Prometheus::start(&[]);
    let output = run_check(prometheus.url(), "exp", "1m");
    let report = text(&output);
    // No pod of the namespace: a warning, and exit 1.
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("warning: no pod rows of namespace"),
        "{report}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(prometheus.url()), "{report}");
    let lines = parse_report(&stdout);
    let columns: Vec<String> = lines.keys().cloned().collect();
    let mut expected = all_columns();
    expected.sort();
    assert_eq!(columns, expected, "one line per column:\n{report}");
    for (column, line) in &lines {
        assert_eq!(line.series, "0", "{column}:\n{report}");
        assert!(line.rows.is_empty(), "{column}:\n{report}");
        assert!(line.hint.is_some(), "{column} has no hint:\n{report}");
    }
    let hint = |column: &str| lines[column].hint.clone().unwrap_or_default();
    assert_eq!(
        hint("nodes.kepler_wattage"),
        "no Kepler series: is Kepler installed and scraped?"
    );
    assert_eq!(
        hint("pods.wattage_kepler"),
        "no Kepler series: is Kepler installed and scraped?"
    );
    assert!(
        hint("nodes.wattage").starts_with("no IPMI/DCMI power meter or Kepler platform series"),
        "{report}"
    );
    assert!(
        hint("nodes.cpu_usage").contains("node-exporter"),
        "{report}"
    );
    assert!(hint("pods.cpu_usage").contains("cAdvisor"), "{report}");
    assert!(
        hint("pods.wattage_scaph").contains("Scaphandre"),
        "{report}"
    );
    assert!(
        stdout.contains("0 of 13 columns have values"),
        "summary line:\n{report}"
    );
}

/// The rows of a truth table that have a value in `column`.
fn rows_with_value(rows: &[Row], key: &str, column: &str) -> BTreeSet<String> {
    rows.iter()
        .filter(|row| matches!(row.get(column), Some(Cell::Num(Some(_)))))
        .map(|row| row.text(key))
        .collect()
}

/// The report once every column the truth fills has resolved the truth's rows, or the last
/// report seen after a timeout.
fn settled_report(
    prometheus: &Prometheus,
    scenario: &Scenario,
) -> (Result<BTreeMap<String, Line>, String>, String) {
    let nodes = scenario.expected_nodes(10.0);
    let pods = scenario.expected_pods(NAMESPACE);
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for column in NODE_VALUE_COLUMNS {
        expected.insert(
            format!("nodes.{column}"),
            rows_with_value(&nodes, "instance", column),
        );
    }
    for column in POD_VALUE_COLUMNS {
        expected.insert(
            format!("pods.{column}"),
            rows_with_value(&pods, "name", column),
        );
    }
    let mut last = String::new();
    let settled = wait_for(Duration::from_secs(60), || {
        let output = run_check(prometheus.url(), NAMESPACE, "10s");
        last = text(&output);
        if output.status.code() != Some(0) {
            return None;
        }
        let lines = parse_report(&String::from_utf8_lossy(&output.stdout));
        let resolved: BTreeMap<String, BTreeSet<String>> = lines
            .iter()
            .map(|(k, l)| (k.clone(), l.rows.clone()))
            .collect();
        // A column that fills some rows names exactly the other rows of its table as empty.
        let all = |table: &str| -> BTreeSet<String> {
            expected
                .iter()
                .filter(|(k, _)| k.starts_with(table))
                .flat_map(|(_, rows)| rows.iter().cloned())
                .collect()
        };
        let empty_right = lines.iter().all(|(k, l)| {
            let table = &k[..k.find('.').unwrap_or(0)];
            let missing: BTreeSet<String> = all(table).difference(&l.rows).cloned().collect();
            l.rows.is_empty() || l.empty == missing
        });
        (resolved == expected && empty_right).then_some(lines)
    });
    match settled {
        Some(lines) => (Ok(lines), last),
        None => (
            Err(format!(
                "check never resolved the scenario's rows; expected per column:\n{expected:#?}"
            )),
            last,
        ),
    }
}

fn check_with_exporters(convention: Convention) {
    let scenario = Scenario::new(convention);
    let exporter =
        Exporter::start("127.0.0.1:0", scenario.clone()).expect("cannot start the exporter");
    let prometheus = Prometheus::start(&[exporter.addr()]);
    let (lines, report) = settled_report(&prometheus, &scenario);
    let lines = match lines {
        Ok(lines) => lines,
        Err(e) => panic!("{convention:?}: {e}\nlast report:\n{report}"),
    };
    for (column, line) in &lines {
        let series: usize = line
            .series
            .parse()
            .unwrap_or_else(|_| panic!("{column}: series {:?}:\n{report}", line.series));
        if line.rows.is_empty() {
            assert!(
                line.hint.is_some(),
                "{column} empty without hint:\n{report}"
            );
        } else {
            assert!(series >= line.rows.len(), "{column}:\n{report}");
            assert_eq!(line.hint, None, "{column} has values and a hint:\n{report}");
        }
    }
    // Addresses (worker-3 is known only through node_uname_info) resolved to names.
    assert_eq!(
        lines["nodes.cpu_usage"].rows,
        ["worker-1", "worker-2", "worker-3"]
            .map(String::from)
            .into(),
        "{report}"
    );
    assert!(lines["pods.cpu_usage"].rows.contains("db-0"), "{report}");
    assert!(
        !report.contains("unmapped node addresses"),
        "every address maps to a node:\n{report}"
    );
    // What each column cost Prometheus (stats=all): samples read per column and table.
    let cost = parse_section(&report, "cost:");
    for column in all_columns()
        .into_iter()
        .chain(["nodes.(table)".to_string(), "pods.(table)".to_string()])
    {
        let samples = cost
            .get(&column)
            .map(|line| line.series.clone())
            .unwrap_or_else(|| panic!("no cost line for {column}:\n{report}"));
        assert!(
            samples.parse::<u64>().is_ok(),
            "{column}: samples {samples:?}:\n{report}"
        );
    }
    check_past_sections(&prometheus);
    drop(exporter);
}

/// The history step (one interval before the live cycle, so it may at first fall before
/// Prometheus had two scrapes) soon resolves the same rows as the live cycle; each energy
/// column has a row wherever its live counterpart has a value.
fn check_past_sections(prometheus: &Prometheus) {
    let mut last = String::new();
    let settled = wait_for(Duration::from_secs(30), || {
        let output = run_check(prometheus.url(), NAMESPACE, "10s");
        last = String::from_utf8_lossy(&output.stdout).into_owned();
        let live = parse_report(&last);
        let history = parse_section(&last, "history:");
        let same = live
            .iter()
            .all(|(c, l)| history.get(c).map(|h| &h.rows) == Some(&l.rows));
        same.then_some(live)
    });
    let report = last;
    let Some(live) = settled else {
        panic!("history never resolved the live rows:\n{report}");
    };
    let energy = parse_section(&report, "energy:");
    for (energy_column, live_column) in [
        ("nodes.cpu_seconds", "nodes.cpu_usage"),
        ("nodes.wattage_joules", "nodes.wattage"),
        ("nodes.kepler_joules", "nodes.kepler_wattage"),
        ("nodes.scaph_joules", "nodes.scaph_wattage"),
        ("nodes.auxilary_joules", "nodes.wattage_auxilary"),
        ("pods.cpu_seconds", "pods.cpu_usage"),
        ("pods.kepler_joules", "pods.wattage_kepler"),
        ("pods.scaph_joules", "pods.wattage_scaph"),
    ] {
        assert_eq!(
            energy[energy_column].rows, live[live_column].rows,
            "energy {energy_column}:\n{report}"
        );
    }
    assert_eq!(energy.len(), 8, "{report}");
}

#[test]
fn check_with_kube_prometheus_stack_labels() {
    check_with_exporters(Convention::A);
}

#[test]
fn check_with_prometheus_chart_labels() {
    check_with_exporters(Convention::B);
}

/// A bare exporter: a node-exporter gauge and Scaphandre per-process series without
/// `kubernetes_*` labels (Scaphandre run without `--containers`). Prometheus labels them
/// `instance="127.0.0.1:<port>"`, an address no mapping series names.
struct BareExporter {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareExporter {
    fn start() -> BareExporter {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("cannot bind the exporter");
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("exporter address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else {
                    continue;
                };
                let body = "# TYPE node_procs_running gauge\n\
                            node_procs_running 3\n\
                            # TYPE scaph_process_power_consumption_microwatts gauge\n\
                            scaph_process_power_consumption_microwatts{pid=\"1\",exe=\"init\"} 250000\n\
                            scaph_process_power_consumption_microwatts{pid=\"2\",exe=\"stress\"} 4000000\n";
                let _ = request.respond(tiny_http::Response::from_string(body));
            }
        });
        BareExporter {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BareExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn hints_for_unmapped_addresses_and_scaphandre_without_containers() {
    let exporter = BareExporter::start();
    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", exporter.port)
        .parse()
        .expect("socket address")]);
    let mut report = String::new();
    let lines = wait_for(Duration::from_secs(30), || {
        let output = run_check(prometheus.url(), "exp", "10s");
        report = text(&output);
        let lines = parse_report(&String::from_utf8_lossy(&output.stdout));
        // No pod of namespace "exp": exit 1 with a warning, after the full report.
        (output.status.code() == Some(1)
            && lines
                .get("nodes.num_processes")
                .is_some_and(|l| !l.rows.is_empty()))
        .then_some(lines)
    })
    .unwrap_or_else(|| panic!("the exporter's series never showed up:\n{report}"));
    assert_eq!(
        lines["nodes.num_processes"].rows,
        BTreeSet::from(["127.0.0.1".to_string()]),
        "{report}"
    );
    assert!(
        report.contains("unmapped node addresses: 127.0.0.1"),
        "{report}"
    );
    assert!(
        report.contains("warning: no pod rows of namespace \"exp\""),
        "{report}"
    );
    assert!(
        report.contains(
            "node shown as an IP: kube-state-metrics kube_node_info or node_uname_info missing"
        ),
        "{report}"
    );
    assert_eq!(
        lines["pods.wattage_scaph"].hint.as_deref(),
        Some(
            "Scaphandre per-process series lack kubernetes_* labels: run Scaphandre with --containers"
        ),
        "{report}"
    );
    // Per-process series exist, the host-level one does not.
    assert_eq!(
        lines["nodes.scaph_wattage"].hint.as_deref(),
        Some(
            "Scaphandre is scraped but exports no host power (scaph_host_power_microwatts): \
             can it read the host's RAPL/powercap sensors?"
        ),
        "{report}"
    );
    assert_eq!(
        lines["nodes.wattage_auxilary"].rows,
        BTreeSet::from(["127.0.0.1".to_string()]),
        "{report}"
    );
}
