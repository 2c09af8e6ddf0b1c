//! `prometheus-agent check`: one cycle against Prometheus, explained (SPEC §6).
//!
//! Prints, for every column, how many series its query answered and which rows (nodes or
//! pods) they resolved to, or the query's error; for a column that stays empty it asks
//! Prometheus a few fixed diagnostic queries and prints a hint naming the likely cause
//! (exporter not scraped, Scaphandre without `--containers`, a window shorter than two
//! scrapes, ...). Exit status: 0 when Prometheus answered, even with empty columns;
//! 1 when it could not be queried at all; 2 for a bad configuration.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::SystemTime;

use crate::config::{Config, ConfigError};
use crate::poller::{ColumnReport, Cycle, Poller};
use crate::prometheus::{Client, QueryError};
use crate::queries::{QuerySet, TableKind};
use crate::table;

/// Exit code for invalid configuration, as at normal start.
const EXIT_CONFIG: u8 = 2;
/// Rows named per column; the rest are counted.
const ROWS_SHOWN: usize = 10;

/// A diagnostic query and the hint printed when it finds nothing. `{ns}` is the namespace.
type Probe = (&'static str, &'static str);

/// How to explain an empty column: probes tried in order, the first that finds nothing
/// gives the hint; when all find something, `otherwise` is the hint.
struct Diagnosis {
    probes: &'static [Probe],
    otherwise: &'static str,
}

const WINDOW_HINT: &str = "the series exist but gave no value at this time: is WINDOW at least \
                           twice the scrape interval, and are the targets still up?";

fn diagnosis(kind: TableKind, column: &str) -> Option<Diagnosis> {
    let d = |probes, otherwise| Some(Diagnosis { probes, otherwise });
    match (kind, column) {
        (TableKind::Nodes, "cpu_usage") => d(
            &[(
                "count(node_cpu_seconds_total)",
                "no node-exporter series (node_cpu_seconds_total): is node-exporter installed \
                 and scraped?",
            )],
            WINDOW_HINT,
        ),
        (TableKind::Nodes, "memory_usage") => d(
            &[(
                "count(node_memory_MemAvailable_bytes)",
                "no node-exporter memory series (node_memory_MemAvailable_bytes): is \
                 node-exporter installed and scraped?",
            )],
            WINDOW_HINT,
        ),
        (TableKind::Nodes, "network_usage") => d(
            &[(
                "count(node_network_receive_bytes_total)",
                "no node-exporter network series (node_network_receive_bytes_total): is \
                 node-exporter installed and scraped?",
            )],
            "only virtual interfaces (lo, veth, cni, ...) report traffic, or WINDOW is \
             shorter than two scrape intervals",
        ),
        (TableKind::Nodes, "wattage") => d(
            &[(
                "count(ipmi_dcmi_power_consumption_watts) or count(kepler_node_platform_joules_total)",
                "no IPMI/DCMI power meter or Kepler platform series: wattage needs \
                 ipmi_exporter's dcmi collector or Kepler with platform power",
            )],
            WINDOW_HINT,
        ),
        (TableKind::Nodes, "num_processes") => d(
            &[(
                "count(node_processes_pids) or count(node_procs_running)",
                "no node-exporter process series (node_procs_running; node_processes_pids \
                 needs --collector.processes): is node-exporter installed and scraped?",
            )],
            WINDOW_HINT,
        ),
        (TableKind::Nodes, "kepler_wattage") => d(
            &[(
                r#"count({__name__=~"kepler_node_.+"})"#,
                "no Kepler series: is Kepler installed and scraped?",
            )],
            "Kepler node series exist but no package or DRAM energy: can Kepler read RAPL on \
             these nodes, and is WINDOW at least twice the scrape interval?",
        ),
        (TableKind::Nodes, "scaph_wattage") => d(
            &[
                (
                    r#"count({__name__=~"scaph_.+"})"#,
                    "no Scaphandre series: is Scaphandre installed and scraped?",
                ),
                (
                    "count(scaph_host_power_microwatts)",
                    "Scaphandre is scraped but exports no host power \
                     (scaph_host_power_microwatts): can it read the host's RAPL/powercap \
                     sensors?",
                ),
            ],
            WINDOW_HINT,
        ),
        (TableKind::Nodes, "wattage_auxilary") => d(
            &[
                (
                    r#"count({__name__=~"scaph_.+"})"#,
                    "no Scaphandre series: is Scaphandre installed and scraped?",
                ),
                (
                    "count(scaph_process_power_consumption_microwatts)",
                    "Scaphandre is scraped but exports no per-process power \
                     (scaph_process_power_consumption_microwatts)",
                ),
            ],
            "every Scaphandre process series names a container (container_id); none is left \
             for processes outside containers",
        ),
        (TableKind::Pods, "cpu_usage") => d(
            &[
                (
                    "count(container_cpu_usage_seconds_total)",
                    "no cAdvisor series (container_cpu_usage_seconds_total): is the kubelet's \
                     /metrics/cadvisor endpoint scraped?",
                ),
                (
                    r#"count(container_cpu_usage_seconds_total{namespace="{ns}"})"#,
                    "no cAdvisor series for this namespace: does it run pods, and is NAMESPACE \
                     the experiment's namespace?",
                ),
            ],
            WINDOW_HINT,
        ),
        (TableKind::Pods, "memory_usage") => d(
            &[
                (
                    "count(container_memory_working_set_bytes)",
                    "no cAdvisor series (container_memory_working_set_bytes): is the kubelet's \
                     /metrics/cadvisor endpoint scraped?",
                ),
                (
                    r#"count(container_memory_working_set_bytes{namespace="{ns}"})"#,
                    "no cAdvisor series for this namespace: does it run pods, and is NAMESPACE \
                     the experiment's namespace?",
                ),
            ],
            WINDOW_HINT,
        ),
        (TableKind::Pods, "network_usage") => d(
            &[
                (
                    "count(container_network_receive_bytes_total)",
                    "no cAdvisor network series (container_network_receive_bytes_total): is the \
                     kubelet's /metrics/cadvisor endpoint scraped?",
                ),
                (
                    r#"count(container_network_receive_bytes_total{namespace="{ns}"})"#,
                    "no cAdvisor network series for this namespace: does it run pods, and is \
                     NAMESPACE the experiment's namespace?",
                ),
            ],
            WINDOW_HINT,
        ),
        (TableKind::Pods, "wattage_kepler") => d(
            &[
                (
                    r#"count({__name__=~"kepler_(container|pod)_.+"})"#,
                    "no Kepler series: is Kepler installed and scraped?",
                ),
                (
                    r#"count({__name__=~"kepler_(container|pod)_.+", container_namespace="{ns}"}) or count({__name__=~"kepler_(container|pod)_.+", pod_namespace="{ns}"})"#,
                    "Kepler reports no container of this namespace: does it run pods?",
                ),
            ],
            WINDOW_HINT,
        ),
        (TableKind::Pods, "wattage_scaph") => d(
            &[
                (
                    r#"count({__name__=~"scaph_.+"})"#,
                    "no Scaphandre series: is Scaphandre installed and scraped?",
                ),
                (
                    "count(scaph_process_power_consumption_microwatts)",
                    "Scaphandre is scraped but exports no per-process power \
                     (scaph_process_power_consumption_microwatts)",
                ),
                (
                    r#"count(scaph_process_power_consumption_microwatts{kubernetes_pod_name!=""})"#,
                    "Scaphandre per-process series lack kubernetes_* labels: run Scaphandre \
                     with --containers",
                ),
                (
                    r#"count(scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"})"#,
                    "Scaphandre reports no process of this namespace: does it run pods?",
                ),
            ],
            WINDOW_HINT,
        ),
        _ => None,
    }
}

const UNMAPPED_HINT: &str = "node shown as an IP: kube-state-metrics kube_node_info or \
                             node_uname_info missing (or they do not name this address)";

/// What a diagnostic query found: `Ok(true)` some series, `Ok(false)` none.
pub type ProbeResult = Result<bool, QueryError>;

/// The hint for one column, or `None` when the column has values.
///
/// `custom`: the column's query comes from QUERIES_FILE, so the default diagnosis does not
/// apply. `probe` runs a diagnostic PromQL query.
pub fn hint(
    report: &ColumnReport,
    custom: bool,
    namespace: &str,
    probe: &mut dyn FnMut(&str) -> ProbeResult,
) -> Option<String> {
    let series = match &report.outcome {
        None => return Some("disabled in QUERIES_FILE".to_string()),
        Some(Err(_)) => {
            return Some(if custom {
                "the query from QUERIES_FILE failed: fix it or remove it to use the default"
                    .to_string()
            } else {
                "the default query failed: see the error above".to_string()
            });
        }
        Some(Ok(n)) => *n,
    };
    if !report.rows.is_empty() {
        return None;
    }
    if series > 0 {
        return Some(match report.table {
            TableKind::Nodes => {
                "series answered but none names a node (node, node_name, kubernetes_node_name, \
                 nodename or instance label)"
                    .to_string()
            }
            TableKind::Pods => format!(
                "series answered but none names a pod (pod_name, kubernetes_pod_name or pod \
                 label) of namespace {namespace:?}"
            ),
        });
    }
    if custom {
        return Some("the query from QUERIES_FILE returned no series".to_string());
    }
    let Some(diagnosis) = diagnosis(report.table, report.column) else {
        return Some("no series".to_string());
    };
    for (template, text) in diagnosis.probes {
        let promql = template.replace("{ns}", namespace);
        match probe(&promql) {
            Ok(true) => continue,
            Ok(false) => return Some((*text).to_string()),
            Err(e) => return Some(format!("no series (diagnostic query failed: {e})")),
        }
    }
    Some(diagnosis.otherwise.to_string())
}

/// The text `check` prints for a cycle: one line per column, hints indented below.
pub fn render(cycle: &Cycle, hints: &[Option<String>], header: &str, namespace: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<6} {:<17} {:>8}  ROWS", "TABLE", "COLUMN", "SERIES");
    let mut with_values = 0;
    for (i, report) in cycle.columns.iter().enumerate() {
        let (series, rest) = match &report.outcome {
            None => ("-".to_string(), "disabled".to_string()),
            Some(Err(e)) => ("error".to_string(), one_line(&e.to_string())),
            Some(Ok(n)) => (n.to_string(), rows_text(&report.rows)),
        };
        if !report.rows.is_empty() {
            with_values += 1;
        }
        let _ = writeln!(
            out,
            "{:<6} {:<17} {:>8}  {rest}",
            report.table.name(),
            report.column,
            series
        );
        if let Some(Some(h)) = hints.get(i) {
            let _ = writeln!(out, "{:<6} {:<17} {:>8}  hint: {h}", "", "", "");
        }
    }
    let _ = writeln!(out);
    if !cycle.unmapped.is_empty() {
        let _ = writeln!(
            out,
            "unmapped node addresses: {}",
            rows_text(&cycle.unmapped)
        );
        let _ = writeln!(out, "  hint: {UNMAPPED_HINT}");
    }
    let _ = writeln!(
        out,
        "{with_values} of {} columns have values: {} node rows, {} pod rows of namespace {namespace:?}",
        cycle.columns.len(),
        cycle.node_rows.len(),
        cycle.pod_rows.len()
    );
    out
}

fn rows_text(rows: &[String]) -> String {
    if rows.is_empty() {
        return "(none)".to_string();
    }
    let mut sorted: Vec<&String> = rows.iter().collect();
    sorted.sort();
    let mut text = sorted
        .into_iter()
        .take(ROWS_SHOWN)
        .map(|r| one_line(r))
        .collect::<Vec<_>>()
        .join(", ");
    if rows.len() > ROWS_SHOWN {
        let _ = write!(text, ", ... and {} more", rows.len() - ROWS_SHOWN);
    }
    text
}

/// Prometheus error texts and label values may hold newlines; the report keeps one line each.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs `prometheus-agent check` with a validated configuration.
pub fn run(config: &Config) -> ExitCode {
    let prepared = (|| {
        let queries = QuerySet::load(
            &config.namespace,
            config.window,
            config.queries_file.as_deref(),
        )?;
        let defaults = QuerySet::load(&config.namespace, config.window, None)?;
        let client = Client::new(config)?;
        let probe_client = Client::new(config)?;
        Ok::<_, ConfigError>((queries, defaults, client, probe_client))
    })();
    let (queries, defaults, client, probe_client) = match prepared {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("prometheus-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let observation = SystemTime::now();
    let mut poller = Poller::new(client, queries.clone(), config.namespace.clone());
    let cycle = match poller.cycle(observation) {
        Ok(cycle) => cycle,
        Err(e) => {
            eprintln!(
                "prometheus-agent check: cannot query Prometheus at {}: {}",
                config.prometheus_url,
                one_line(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };

    let mut probe = |promql: &str| -> ProbeResult {
        probe_client
            .query(promql, observation)
            .map(|samples| samples.iter().any(|s| s.value > 0.0))
    };
    let hints: Vec<Option<String>> = cycle
        .columns
        .iter()
        .map(|report| {
            let default = defaults
                .table(report.table)
                .iter()
                .find(|q| q.column == report.column);
            let configured = queries
                .table(report.table)
                .iter()
                .find(|q| q.column == report.column);
            let custom = match (default, configured) {
                (Some(d), Some(c)) => d.promql != c.promql,
                _ => true,
            };
            hint(report, custom, &config.namespace, &mut probe)
        })
        .collect();

    let header = format!(
        "prometheus-agent check: {} at {}, namespace {:?}, window {}",
        config.prometheus_url,
        table::format_time(observation),
        config.namespace,
        humantime::format_duration(config.window)
    );
    let header = if config.namespace_source == "fallback" {
        format!(
            "{header}\nhint: no NAMESPACE, POD_NAMESPACE or service-account namespace: \
             observing \"default\""
        )
    } else {
        header
    };
    print!("{}", render(&cycle, &hints, &header, &config.namespace));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        table: TableKind,
        column: &'static str,
        outcome: Option<Result<usize, QueryError>>,
        rows: &[&str],
    ) -> ColumnReport {
        ColumnReport {
            table,
            column,
            outcome,
            rows: rows.iter().map(|r| r.to_string()).collect(),
        }
    }

    /// A probe that answers from a fixed list of queries that find series.
    fn probe_with(found: &'static [&'static str]) -> impl FnMut(&str) -> ProbeResult {
        move |q: &str| Ok(found.iter().any(|f| q.contains(f)))
    }

    #[test]
    fn columns_with_rows_get_no_hint() {
        let r = report(TableKind::Nodes, "cpu_usage", Some(Ok(2)), &["a", "b"]);
        assert_eq!(hint(&r, false, "ns", &mut probe_with(&[])), None);
    }

    #[test]
    fn disabled_and_failed_columns() {
        let r = report(TableKind::Nodes, "wattage", None, &[]);
        let h = hint(&r, true, "ns", &mut probe_with(&[])).unwrap();
        assert_eq!(h, "disabled in QUERIES_FILE");
        let e = QueryError::Api {
            http_status: 400,
            error_type: "bad_data".into(),
            error: "parse error".into(),
        };
        let r = report(TableKind::Nodes, "wattage", Some(Err(e)), &[]);
        let h = hint(&r, true, "ns", &mut probe_with(&[])).unwrap();
        assert!(h.contains("QUERIES_FILE"), "{h}");
    }

    #[test]
    fn exporter_missing_hints() {
        let mut none = probe_with(&[]);
        let r = report(TableKind::Nodes, "kepler_wattage", Some(Ok(0)), &[]);
        assert_eq!(
            hint(&r, false, "ns", &mut none).unwrap(),
            "no Kepler series: is Kepler installed and scraped?"
        );
        let r = report(TableKind::Nodes, "wattage", Some(Ok(0)), &[]);
        let h = hint(&r, false, "ns", &mut none).unwrap();
        assert!(
            h.starts_with("no IPMI/DCMI power meter or Kepler platform series"),
            "{h}"
        );
        let r = report(TableKind::Pods, "cpu_usage", Some(Ok(0)), &[]);
        assert!(
            hint(&r, false, "ns", &mut none)
                .unwrap()
                .contains("cAdvisor")
        );
    }

    #[test]
    fn scaphandre_without_containers() {
        // Per-process series exist, but none carries kubernetes_pod_name.
        let mut probe = probe_with(&[
            "scaph_.+",
            "count(scaph_process_power_consumption_microwatts)",
        ]);
        let r = report(TableKind::Pods, "wattage_scaph", Some(Ok(0)), &[]);
        assert_eq!(
            hint(&r, false, "exp", &mut probe).unwrap(),
            "Scaphandre per-process series lack kubernetes_* labels: run Scaphandre with --containers"
        );
        // Labels present, but not for this namespace: the probe names the namespace.
        let mut seen = Vec::new();
        let mut probe = |q: &str| {
            seen.push(q.to_string());
            Ok(!q.contains("kubernetes_pod_namespace"))
        };
        let h = hint(&r, false, "exp", &mut probe).unwrap();
        assert!(h.contains("no process of this namespace"), "{h}");
        assert!(
            seen[3].contains(r#"kubernetes_pod_namespace="exp""#),
            "{seen:?}"
        );
    }

    #[test]
    fn series_without_rows_and_custom_queries() {
        let r = report(TableKind::Pods, "cpu_usage", Some(Ok(3)), &[]);
        let h = hint(&r, false, "exp", &mut probe_with(&[])).unwrap();
        assert!(h.contains("none names a pod"), "{h}");
        let r = report(TableKind::Nodes, "cpu_usage", Some(Ok(0)), &[]);
        let h = hint(&r, true, "exp", &mut probe_with(&[])).unwrap();
        assert_eq!(h, "the query from QUERIES_FILE returned no series");
        // All probes find series: the window is the likely cause.
        let h = hint(&r, false, "exp", &mut |_: &str| Ok(true)).unwrap();
        assert_eq!(h, WINDOW_HINT);
        // A failing probe is reported, not hidden.
        let h = hint(&r, false, "exp", &mut |_: &str| {
            Err(QueryError::Transport("refused".into()))
        })
        .unwrap();
        assert!(h.contains("diagnostic query failed"), "{h}");
    }

    #[test]
    fn every_default_column_has_a_diagnosis() {
        for kind in [TableKind::Nodes, TableKind::Pods] {
            for (column, _) in kind.defaults() {
                assert!(diagnosis(kind, column).is_some(), "{kind:?} {column}");
            }
        }
    }

    #[test]
    fn render_lists_columns_rows_hints_and_unmapped() {
        let rows: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
        let cycle = Cycle {
            node_rows: Vec::new(),
            pod_rows: Vec::new(),
            columns: vec![
                ColumnReport {
                    table: TableKind::Nodes,
                    column: "cpu_usage",
                    outcome: Some(Ok(12)),
                    rows,
                },
                report(TableKind::Nodes, "wattage", Some(Ok(0)), &[]),
                report(
                    TableKind::Pods,
                    "cpu_usage",
                    Some(Err(QueryError::Api {
                        http_status: 422,
                        error_type: "execution".into(),
                        error: "many-to-many\nmatching".into(),
                    })),
                    &[],
                ),
            ],
            unmapped: vec!["10.0.0.7".into()],
        };
        let hints = vec![None, Some("no meter".to_string()), None];
        let text = render(&cycle, &hints, "HEADER", "exp");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "HEADER");
        assert!(lines[3].starts_with("nodes  cpu_usage"), "{text}");
        assert!(lines[3].contains("      12  n00, n01"), "{text}");
        assert!(lines[3].ends_with("n09, ... and 2 more"), "{text}");
        assert!(lines[4].contains("(none)"), "{text}");
        assert!(
            lines[5].trim_start().starts_with("hint: no meter"),
            "{text}"
        );
        assert!(lines[6].contains("error") && lines[6].contains("many-to-many matching"));
        assert!(text.contains("unmapped node addresses: 10.0.0.7"), "{text}");
        assert!(text.contains(UNMAPPED_HINT), "{text}");
        assert!(text.contains("1 of 3 columns have values"), "{text}");
    }
}
