//! `prometheus-agent check`: one cycle against Prometheus, explained (README,
//! "Troubleshooting").
//!
//! Prints, for every column, how many series its query answered, which rows (nodes or pods)
//! they resolved to and which rows of the table they left empty, or the query's error; for a
//! column that stays empty it asks Prometheus a few fixed diagnostic queries (`diagnoses`)
//! and prints a hint naming the likely cause; then what each column's query cost the server
//! (`cost`: columns are asked one by one, with `stats=all`); then one history step and one
//! energy window, per column, and the data problems of the last 15 minutes. Exit status: 0
//! when Prometheus answered with rows of both tables, even with empty fields; 1 when it could
//! not be queried at all or the namespace has no pod rows; 2 for a bad configuration.

mod cost;
mod diagnoses;

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::agent;
use crate::cli;
use crate::config::{Config, NamespaceSource};
use crate::eval::poller::live_cycle;
use crate::eval::quality::{Audit, DEFAULT_SPAN as QUALITY_DEFAULT, Finding};
use crate::eval::{Evaluator, Form, Outcome, Purpose, Steps};
use crate::prometheus::{Eval, QueryError};
use crate::tables::schema::TableKind;
use crate::time::{Millis, Window, format_time, now_ms};

pub use diagnoses::{Diagnosis, WINDOW_HINT, diagnosis};

/// Rows named per column; the rest are counted.
const ROWS_SHOWN: usize = 10;

const UNMAPPED_HINT: &str = "node shown as an IP: kube-state-metrics kube_node_info or \
                             node_uname_info missing (or they do not name this address)";

/// What a diagnostic query found: `Ok(true)` some series, `Ok(false)` none.
pub type ProbeResult = Result<bool, QueryError>;

/// One column's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnReport {
    pub table: TableKind,
    pub column: &'static str,
    /// The query comes from QUERIES_FILE.
    pub overridden: bool,
    /// Series answered, the query's error, or `None` when disabled.
    pub outcome: Option<Result<usize, QueryError>>,
    /// Rows (node or pod names) that got a value from this column.
    pub rows: Vec<String>,
    /// Rows of the table this column left empty (when it filled some).
    pub missing: Vec<String>,
}

/// The report lines of an evaluation, for its first step.
pub fn reports(outcome: &Outcome) -> Vec<ColumnReport> {
    outcome
        .columns
        .iter()
        .map(|c| {
            let rows = outcome.rows_with(c.table, c.column, 0);
            let missing = if rows.is_empty() {
                Vec::new()
            } else {
                outcome
                    .step(c.table, 0)
                    .iter()
                    .filter(|row| !rows.contains(&row.name))
                    .map(|row| row.name.clone())
                    .collect()
            };
            ColumnReport {
                table: c.table,
                column: c.name,
                overridden: c.overridden,
                outcome: c.outcome.clone(),
                rows,
                missing,
            }
        })
        .collect()
}

/// The hint for one column, or `None` when the column has values.
///
/// A column whose query comes from QUERIES_FILE gets no default diagnosis. `probe` runs a
/// diagnostic PromQL query.
pub fn hint(
    report: &ColumnReport,
    namespace: &str,
    probe: &mut dyn FnMut(&str) -> ProbeResult,
) -> Option<String> {
    let custom = report.overridden;
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

/// The column table: one line per column, hints indented below.
fn column_lines(out: &mut String, reports: &[ColumnReport], hints: &[Option<String>]) {
    let _ = writeln!(out, "{:<6} {:<17} {:>8}  ROWS", "TABLE", "COLUMN", "SERIES");
    for (i, report) in reports.iter().enumerate() {
        let (series, rest) = match &report.outcome {
            None => ("-".to_string(), "disabled".to_string()),
            Some(Err(e)) => ("error".to_string(), one_line(&e.to_string())),
            Some(Ok(n)) => (n.to_string(), rows_text(&report.rows)),
        };
        let _ = writeln!(
            out,
            "{:<6} {:<17} {:>8}  {rest}",
            report.table.name(),
            report.column,
            series
        );
        if !report.missing.is_empty() {
            let text = rows_text(&report.missing);
            let _ = writeln!(out, "{:<6} {:<17} {:>8}  empty for: {text}", "", "", "");
        }
        if let Some(Some(h)) = hints.get(i) {
            let _ = writeln!(out, "{:<6} {:<17} {:>8}  hint: {h}", "", "", "");
        }
    }
}

/// The text `check` prints for a live cycle: the column table, unmapped addresses, a summary.
pub fn render(
    outcome: &Outcome,
    hints: &[Option<String>],
    header: &str,
    namespace: &str,
) -> String {
    let reports = reports(outcome);
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out);
    column_lines(&mut out, &reports, hints);
    let _ = writeln!(out);
    if !outcome.unmapped.is_empty() {
        let _ = writeln!(
            out,
            "unmapped node addresses: {}",
            rows_text(&outcome.unmapped)
        );
        let _ = writeln!(out, "  hint: {UNMAPPED_HINT}");
    }
    let _ = writeln!(out, "{}", summary(&reports, outcome, namespace));
    if outcome.step(TableKind::Pods, 0).is_empty() {
        let _ = writeln!(out, "warning: {}", no_pods(namespace));
    }
    out
}

fn no_pods(namespace: &str) -> String {
    format!(
        "no pod rows of namespace {namespace:?}: is NAMESPACE the experiment's namespace, and \
         are its pods running and scraped by cAdvisor?"
    )
}

/// How many columns have values, how many leave some rows empty, and how many rows.
fn summary(reports: &[ColumnReport], outcome: &Outcome, namespace: &str) -> String {
    let with_values = reports.iter().filter(|r| !r.rows.is_empty()).count();
    let partial: Vec<String> = reports
        .iter()
        .filter(|r| !r.missing.is_empty())
        .map(|r| format!("{}.{}", r.table.name(), r.column))
        .collect();
    let partial = match partial.len() {
        0 => String::new(),
        n => format!(" ({n} empty for some rows: {})", partial.join(", ")),
    };
    format!(
        "{with_values} of {} columns have values{partial}: {} node rows, {} pod rows of namespace {namespace:?}",
        reports.len(),
        outcome.step(TableKind::Nodes, 0).len(),
        outcome.step(TableKind::Pods, 0).len()
    )
}

/// A section for a history step or an energy window: a title and its column table.
fn section(title: &str, evaluated: Result<Outcome, QueryError>) -> String {
    let mut out = format!("\n{title}\n");
    match evaluated {
        Ok(outcome) => column_lines(&mut out, &reports(&outcome), &[]),
        Err(e) => {
            let _ = writeln!(out, "failed: {}", one_line(&e.to_string()));
        }
    }
    out
}

/// What history and energy requests would get now: one range step on the grid, and the
/// energy of the last `WINDOW`.
fn past_sections(evaluator: &Evaluator, config: &Config, now: Millis) -> String {
    let grid = evaluator.grid();
    let step = grid.floor(now) - grid.interval();
    let history = evaluator
        .evaluate(
            Purpose::Check,
            evaluator.live_plan_both(),
            Steps::range(step, grid.interval(), 1),
            Form::History,
        )
        .map(|e| e.outcome);
    let span = config.window.as_millis() as Millis;
    let window = Window {
        start: now - span,
        end: now,
    };
    let energy = evaluator
        .energy(Purpose::Check, &TableKind::ALL, window)
        .map(|e| e.outcome);
    section(
        &format!(
            "history: one query_range step at {} (as /nodes?start=…)",
            format_time(step)
        ),
        history,
    ) + &section(
        &format!(
            "energy: {} to {} (as /energy?start=…&end=…)",
            format_time(window.start),
            format_time(window.end)
        ),
        energy,
    )
}

/// The data problems of the last 15 minutes, per column.
fn quality_section(evaluator: &Evaluator, config: &Config, now: Millis) -> String {
    let window = Window {
        start: now - QUALITY_DEFAULT,
        end: now,
    };
    let audit = Audit {
        evaluator,
        max_node_watts: config.max_node_watts,
    };
    let mut out = format!(
        "\ndata quality: {} to {} (as /quality)\n",
        format_time(window.start),
        format_time(window.end)
    );
    match audit.window(window, 0) {
        Ok(findings) if findings.is_empty() => out.push_str("no problem found\n"),
        Ok(findings) => out.push_str(&findings_text(&findings)),
        Err(e) => {
            let _ = writeln!(out, "failed: {}", one_line(&e.to_string()));
        }
    }
    out
}

/// Findings grouped by column: one line per column and problem, naming the rows.
fn findings_text(findings: &[Finding]) -> String {
    let mut out = format!("{:<6} {:<17} {:<11} ROWS\n", "TABLE", "COLUMN", "PROBLEM");
    let mut groups: Vec<(TableKind, &str, String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        match groups
            .iter_mut()
            .find(|g| (g.0, g.1, g.2.as_str()) == (f.table, f.column, f.problem.code()))
        {
            Some(group) => group.3.push(f),
            None => groups.push((f.table, f.column, f.problem.code().to_string(), vec![f])),
        }
    }
    for (table, column, problem, found) in groups {
        let mut rows: Vec<String> = found.iter().map(|f| f.row().to_string()).collect();
        rows.dedup();
        let _ = writeln!(
            out,
            "{:<6} {:<17} {:<11} {}",
            table.name(),
            column,
            problem,
            rows_text(&rows)
        );
        let _ = writeln!(
            out,
            "{:<36} e.g. {}: {}",
            "",
            found[0].row(),
            one_line(&found[0].detail)
        );
    }
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
    let evaluator = match agent::evaluator(config) {
        Ok(evaluator) => evaluator,
        Err(e) => return agent::fail_config(&e),
    };
    let now = now_ms();
    let cycle = match live_cycle(&evaluator, Purpose::Check, now, now) {
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
        let mut found = false;
        evaluator
            .source()
            .query(promql, Eval::At(now), &mut |s| {
                found |= s.points.iter().any(|(_, v)| *v > 0.0)
            })
            .map(|_| found)
    };
    let hints: Vec<Option<String>> = reports(&cycle.evaluated.outcome)
        .iter()
        .map(|report| hint(report, &config.namespace, &mut probe))
        .collect();
    let outcome = &cycle.evaluated.outcome;
    let report = render(outcome, &hints, &header(config, now), &config.namespace);
    let printed = cli::print(&report)
        && cli::print(&cost::section(outcome))
        && cli::print(&past_sections(&evaluator, config, now))
        && cli::print(&quality_section(&evaluator, config, now));
    if cycle.rows.pods.is_empty() {
        if !printed {
            eprintln!("prometheus-agent check: {}", no_pods(&config.namespace));
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn header(config: &Config, now: Millis) -> String {
    let mut header = format!(
        "prometheus-agent check: {} at {}, namespace {:?}, window {}",
        config.prometheus_url,
        format_time(now),
        config.namespace,
        humantime::format_duration(config.window)
    );
    if config.namespace_source == NamespaceSource::Fallback {
        header.push_str(
            "\nhint: no NAMESPACE, POD_NAMESPACE or service-account namespace: observing \"default\"",
        );
    }
    header
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
            overridden: false,
            outcome,
            rows: rows.iter().map(|r| r.to_string()).collect(),
            missing: Vec::new(),
        }
    }

    /// The same report for a query from QUERIES_FILE.
    fn custom(report: ColumnReport) -> ColumnReport {
        ColumnReport {
            overridden: true,
            ..report
        }
    }

    /// A probe that answers from a fixed list of queries that find series.
    fn probe_with(found: &'static [&'static str]) -> impl FnMut(&str) -> ProbeResult {
        move |q: &str| Ok(found.iter().any(|f| q.contains(f)))
    }

    #[test]
    fn columns_with_rows_get_no_hint() {
        let r = report(TableKind::Nodes, "cpu_usage", Some(Ok(2)), &["a", "b"]);
        assert_eq!(hint(&r, "ns", &mut probe_with(&[])), None);
    }

    #[test]
    fn disabled_and_failed_columns() {
        let r = report(TableKind::Nodes, "wattage", None, &[]);
        let h = hint(&custom(r.clone()), "ns", &mut probe_with(&[])).unwrap();
        assert_eq!(h, "disabled in QUERIES_FILE");
        let e = QueryError::Api {
            http_status: 400,
            error_type: "bad_data".into(),
            error: "parse error".into(),
        };
        let r = report(TableKind::Nodes, "wattage", Some(Err(e)), &[]);
        let h = hint(&custom(r.clone()), "ns", &mut probe_with(&[])).unwrap();
        assert!(h.contains("QUERIES_FILE"), "{h}");
    }

    #[test]
    fn exporter_missing_hints() {
        let mut none = probe_with(&[]);
        let r = report(TableKind::Nodes, "kepler_wattage", Some(Ok(0)), &[]);
        assert_eq!(
            hint(&r, "ns", &mut none).unwrap(),
            "no Kepler series: is Kepler installed and scraped?"
        );
        let r = report(TableKind::Nodes, "wattage", Some(Ok(0)), &[]);
        let h = hint(&r, "ns", &mut none).unwrap();
        assert!(
            h.starts_with("no IPMI/DCMI power meter or Kepler platform series"),
            "{h}"
        );
        let r = report(TableKind::Pods, "cpu_usage", Some(Ok(0)), &[]);
        assert!(hint(&r, "ns", &mut none).unwrap().contains("cAdvisor"));
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
            hint(&r, "exp", &mut probe).unwrap(),
            "Scaphandre per-process series lack kubernetes_* labels: run Scaphandre with --containers"
        );
        // Labels present, but not for this namespace: the probe names the namespace.
        let mut seen = Vec::new();
        let mut probe = |q: &str| {
            seen.push(q.to_string());
            Ok(!q.contains("kubernetes_pod_namespace"))
        };
        let h = hint(&r, "exp", &mut probe).unwrap();
        assert!(h.contains("no process of this namespace"), "{h}");
        assert!(
            seen[3].contains(r#"kubernetes_pod_namespace="exp""#),
            "{seen:?}"
        );
    }

    #[test]
    fn series_without_rows_and_custom_queries() {
        let r = report(TableKind::Pods, "cpu_usage", Some(Ok(3)), &[]);
        let h = hint(&r, "exp", &mut probe_with(&[])).unwrap();
        assert!(h.contains("none names a pod"), "{h}");
        let r = report(TableKind::Nodes, "cpu_usage", Some(Ok(0)), &[]);
        let h = hint(&custom(r.clone()), "exp", &mut probe_with(&[])).unwrap();
        assert_eq!(h, "the query from QUERIES_FILE returned no series");
        // All probes find series: the window is the likely cause.
        let h = hint(&r, "exp", &mut |_: &str| Ok(true)).unwrap();
        assert_eq!(h, WINDOW_HINT);
        // A failing probe is reported, not hidden.
        let h = hint(&r, "exp", &mut |_: &str| {
            Err(QueryError::Transport("refused".into()))
        })
        .unwrap();
        assert!(h.contains("diagnostic query failed"), "{h}");
    }

    #[test]
    fn every_default_column_has_a_diagnosis() {
        for kind in TableKind::ALL {
            for column in
                crate::tables::schema::value_columns(kind, crate::tables::schema::Measure::Live)
            {
                assert!(diagnosis(kind, column).is_some(), "{kind:?} {column}");
            }
        }
    }

    #[test]
    fn render_lists_columns_rows_hints_and_unmapped() {
        use crate::eval::{ColumnOutcome, RowValues};
        use crate::tables::schema::PerTable;
        // Twelve nodes: all have cpu_usage, two lack memory_usage.
        let node = |i: usize| RowValues {
            name: format!("n{i:02}"),
            node: String::new(),
            values: vec![Some(1.0), (i < 10).then_some(1.0), None],
        };
        let column = |table, column, name, outcome| ColumnOutcome {
            table,
            column,
            name,
            overridden: false,
            outcome,
            stats: None,
        };
        let error = QueryError::Api {
            http_status: 422,
            error_type: "execution".into(),
            error: "many-to-many\nmatching".into(),
        };
        let outcome = Outcome {
            rows: PerTable {
                nodes: vec![(0..12).map(node).collect()],
                pods: vec![Vec::new()],
            },
            columns: vec![
                column(TableKind::Nodes, 0, "cpu_usage", Some(Ok(12))),
                column(TableKind::Nodes, 1, "memory_usage", Some(Ok(10))),
                column(TableKind::Nodes, 2, "wattage", Some(Ok(0))),
                column(TableKind::Pods, 0, "cpu_usage", Some(Err(error))),
            ],
            stats: PerTable::default(),
            unmapped: vec!["10.0.0.7".into()],
            duplicates: Vec::new(),
            mapping_errors: Vec::new(),
        };
        let hints = vec![None, None, Some("no meter".to_string()), None];
        let text = render(&outcome, &hints, "HEADER", "exp");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "HEADER");
        assert!(lines[3].starts_with("nodes  cpu_usage"), "{text}");
        assert!(lines[3].contains("      12  n00, n01"), "{text}");
        assert!(lines[3].ends_with("n09, ... and 2 more"), "{text}");
        assert!(lines[4].starts_with("nodes  memory_usage"), "{text}");
        assert!(lines[5].trim_start() == "empty for: n10, n11", "{text}");
        assert!(lines[6].contains("(none)"), "{text}");
        assert!(
            lines[7].trim_start().starts_with("hint: no meter"),
            "{text}"
        );
        assert!(lines[8].contains("error") && lines[8].contains("many-to-many matching"));
        assert!(text.contains("unmapped node addresses: 10.0.0.7"), "{text}");
        assert!(text.contains(UNMAPPED_HINT), "{text}");
        assert!(
            text.contains("2 of 4 columns have values (1 empty for some rows: nodes.memory_usage): 12 node rows, 0 pod rows"),
            "{text}"
        );
        assert!(
            text.contains("warning: no pod rows of namespace \"exp\""),
            "{text}"
        );
    }
}
