//! End-to-end tests with real parts: a real Prometheus or VictoriaMetrics scrapes
//! the synthetic exporter (tests/support/cluster/), the agent binary polls
//! it, and its CSV tables, fetched with the real `curl`, must equal the
//! scenario's truth column by column, under both label conventions
//! (docs/design.md, "Identity").
//!
//! Needs /usr/bin/prometheus, /usr/bin/victoria-metrics (`scripts/setup`
//! installs them) and curl.

mod support;

use std::time::{Duration, Instant};

use support::cluster::Row;
use support::cluster::{
    Convention, NAMESPACE, NODE_COLUMNS, OTHER_NAMESPACE, POD_COLUMNS, Scenario, now_ms,
};
use support::engine::Engine;
use support::prometheus::{Agent, wait_for};
use support::promql::spec_tables;
use support::stack::Stack;
use support::table::{Table, compare, coverage_report, parse_rfc3339_ms};

/// The agent's WINDOW: rates and averages span this much.
const WINDOW: &str = "10s";
const WINDOW_MS: i64 = 10_000;
/// Extra scraping time on top of the window before the truth is exact.
const MARGIN_MS: i64 = 3_000;
/// How long a test waits for a cycle that covers a full window.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The newest cycle of one table of the agent, once it covers a full window.
struct Cycle {
    table: Table,
    rows: Vec<Vec<String>>,
    /// Its observation time, Unix milliseconds.
    observed: i64,
}

impl Cycle {
    /// The header and the compared rows, as CSV, for failure messages.
    fn compared_csv(&self) -> String {
        let mut out = self.table.header.join(",");
        for row in &self.rows {
            out.push('\n');
            out.push_str(&row.join(","));
        }
        out.push('\n');
        out
    }
}

fn settled_cycle(stack: &Stack, agent: &Agent, path: &str) -> Cycle {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last_seen = String::from("nothing fetched yet");
    let mut skipped = 0;
    let mut skipped_at = None;
    while Instant::now() < deadline {
        match agent.get(path) {
            Err(error) => last_seen = format!("GET {path} failed: {error}"),
            Ok(csv) => {
                let table = Table::parse(&csv)
                    .unwrap_or_else(|e| panic!("GET {path}: {e}\n{csv}\n{}", agent.log()));
                let rows = table.last_cycle();
                let observed = table
                    .column("observation_time")
                    .and_then(|at| rows.first().and_then(|row| parse_rfc3339_ms(&row[at])));
                if let Some(observed) = observed {
                    if stack.settled(observed, WINDOW_MS, MARGIN_MS) {
                        if skipped > 0 {
                            eprintln!("{path}: skipped {skipped} cycle(s) not covering the window");
                        }
                        return Cycle {
                            table,
                            rows,
                            observed,
                        };
                    }
                    let scrapes = stack.exporter.scrape_times();
                    let old_enough = scrapes
                        .first()
                        .is_some_and(|&first| observed >= first + WINDOW_MS + MARGIN_MS);
                    if old_enough && skipped_at != Some(observed) {
                        skipped += 1;
                        skipped_at = Some(observed);
                    }
                }
                last_seen = csv;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let coverage = skipped_at.map_or_else(String::new, |t| {
        format!(
            "last skipped cycle: {}\n",
            coverage_report(&stack.exporter.scrape_times(), t, WINDOW_MS)
        )
    });
    panic!(
        "no settled cycle on {path} within {SETTLE_TIMEOUT:?} ({skipped} cycle(s) did not cover \
         the window); {coverage}last answer:\n{last_seen}\nagent log:\n{}\nprometheus log:\n{}",
        agent.log(),
        stack.server.log()
    );
}

/// Every check on one table; returns the list of problems.
fn check_table(
    what: &str,
    cycle: &Cycle,
    columns: &[&str],
    key: &str,
    expected: &[Row],
) -> Vec<String> {
    let mut problems = Vec::new();
    if cycle.table.header != columns {
        problems.push(format!(
            "{what}: header {:?}, expected {columns:?}",
            cycle.table.header
        ));
        return problems;
    }
    for row in &cycle.table.rows {
        if row.len() != columns.len() {
            problems.push(format!("{what}: row of {} fields: {row:?}", row.len()));
            continue;
        }
        for at in [1, 2] {
            if parse_rfc3339_ms(&row[at]).is_none() {
                problems.push(format!(
                    "{what}: {} `{}` is not YYYY-MM-DDTHH:MM:SS.mmmZ",
                    columns[at], row[at]
                ));
            }
        }
    }
    let observed: Vec<&str> = cycle.rows.iter().map(|row| row[2].as_str()).collect();
    if observed.windows(2).any(|pair| pair[0] != pair[1]) {
        problems.push(format!(
            "{what}: one cycle has several observation times {observed:?}"
        ));
    }
    let key_at = columns.iter().position(|c| *c == key).unwrap_or(0);
    let keys: Vec<&str> = cycle.rows.iter().map(|row| row[key_at].as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    if keys != sorted {
        problems.push(format!("{what}: rows not sorted by {key}: {keys:?}"));
    }
    problems.extend(compare(
        what,
        key,
        expected,
        columns_owned(columns).as_slice(),
        &cycle.rows,
    ));
    problems
}

fn columns_owned(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

fn fail_if_any(problems: Vec<String>, stack: &Stack, agent: &Agent, cycles: &[&Cycle]) {
    if problems.is_empty() {
        return;
    }
    let tables: Vec<String> = cycles.iter().map(|c| c.compared_csv()).collect();
    panic!(
        "{} problem(s), {}, convention {}:\n  {}\n\nrows compared:\n{}\nagent log:\n{}",
        problems.len(),
        stack.server.engine().name(),
        stack.scenario.convention.describe(),
        problems.join("\n  "),
        tables.join("\n"),
        agent.log()
    );
}

fn agent_matches_truth(engine: Engine, scenario: Scenario) {
    let started = Instant::now();
    let convention = scenario.convention;
    let stack = Stack::with(engine, scenario);
    let agent = stack.agent("1s", &[]);
    let nodes = settled_cycle(&stack, &agent, "/nodes");
    let pods = settled_cycle(&stack, &agent, "/pods");
    let mut problems = check_table(
        "nodes",
        &nodes,
        &NODE_COLUMNS,
        "instance",
        &stack.scenario.expected_nodes(WINDOW_MS as f64 / 1000.0),
    );
    problems.extend(check_table(
        "pods",
        &pods,
        &POD_COLUMNS,
        "name",
        &stack.scenario.expected_pods(NAMESPACE),
    ));
    fail_if_any(problems, &stack, &agent, &[&nodes, &pods]);
    eprintln!(
        "{}, convention {}: agent matches the truth after {:.1} s ({})",
        engine.name(),
        convention.describe(),
        started.elapsed().as_secs_f64(),
        coverage_report(&stack.exporter.scrape_times(), nodes.observed, WINDOW_MS)
    );
}

#[test]
fn kube_prometheus_stack_labels_on_prometheus_match_truth() {
    agent_matches_truth(Engine::Prometheus, Scenario::new(Convention::A));
}

#[test]
fn prometheus_chart_labels_on_prometheus_match_truth() {
    agent_matches_truth(Engine::Prometheus, Scenario::new(Convention::B));
}

#[test]
fn kube_prometheus_stack_labels_on_victoria_metrics_match_truth() {
    agent_matches_truth(Engine::VictoriaMetrics, Scenario::new(Convention::A));
}

#[test]
fn prometheus_chart_labels_on_victoria_metrics_match_truth() {
    agent_matches_truth(Engine::VictoriaMetrics, Scenario::new(Convention::B));
}

/// The benchmarks' scale mode, kept small here: its generated cluster has a
/// truth the agent matches, under both conventions.
#[test]
fn scaled_cluster_matches_truth() {
    let a = std::thread::spawn(|| {
        agent_matches_truth(Engine::Prometheus, Scenario::scaled(Convention::A, 5, 9, 4))
    });
    agent_matches_truth(Engine::Prometheus, Scenario::scaled(Convention::B, 4, 7, 3));
    if let Err(panic) = a.join() {
        std::panic::resume_unwind(panic);
    }
}

/// The pod filter is the agent's NAMESPACE, not a fixed name: observing the
/// other namespace shows its pod, and none of the experiment's.
#[test]
fn pod_table_follows_the_agent_namespace() {
    let stack = Stack::start(Convention::A);
    let agent = stack.agent_for(OTHER_NAMESPACE, "1s", &[]);
    let pods = settled_cycle(&stack, &agent, "/pods");
    let expected = stack.scenario.expected_pods(OTHER_NAMESPACE);
    assert!(
        !expected.is_empty(),
        "the scenario has pods in {OTHER_NAMESPACE}"
    );
    let problems = check_table("pods", &pods, &POD_COLUMNS, "name", &expected);
    fail_if_any(problems, &stack, &agent, &[&pods]);
}

/// The specified default queries, sent straight to Prometheus and resolved by
/// the identity rules, give the truth: the scenario and its truth agree with
/// real PromQL, whatever the agent does.
#[test]
fn spec_default_queries_give_truth_directly() {
    let stacks = [Stack::start(Convention::A), Stack::start(Convention::B)];
    for stack in &stacks {
        let time_ms = wait_for(SETTLE_TIMEOUT, || {
            // Half a second after the newest scrape, once it is stored.
            let last = *stack.exporter.scrape_times().last()?;
            let time_ms = last + 500;
            (now_ms() >= time_ms + 200 && stack.settled(time_ms, WINDOW_MS, MARGIN_MS))
                .then_some(time_ms)
        })
        .unwrap_or_else(|| {
            panic!(
                "Prometheus never covered a full window:\n{}",
                stack.server.log()
            )
        });
        let (node_rows, pod_rows) = spec_tables(&stack.server, NAMESPACE, WINDOW, time_ms)
            .unwrap_or_else(|e| panic!("{}: {e}", stack.scenario.convention.describe()));
        let header = |columns: &[&str]| columns_owned(columns);
        let mut problems = compare(
            "nodes",
            "instance",
            &stack.scenario.expected_nodes(WINDOW_MS as f64 / 1000.0),
            &header(&NODE_COLUMNS),
            &node_rows,
        );
        problems.extend(compare(
            "pods",
            "name",
            &stack.scenario.expected_pods(NAMESPACE),
            &header(&POD_COLUMNS),
            &pod_rows,
        ));
        eprintln!(
            "convention {}: default queries at {time_ms}:\n{node_rows:?}\n{pod_rows:?}",
            stack.scenario.convention.describe()
        );
        assert!(
            problems.is_empty(),
            "convention {}: the default queries disagree with the truth:\n  {}\nnodes: {node_rows:?}\npods: {pod_rows:?}",
            stack.scenario.convention.describe(),
            problems.join("\n  ")
        );
    }
}
