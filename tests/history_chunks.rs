//! History spans longer than one chunk, over a past with data in every step: a real
//! Prometheus (blocks written by promtool) and a real VictoriaMetrics (imported samples)
//! hold 35 minutes of the synthetic cluster scraped every second. Every step of a span of
//! more than 1,000 steps comes exactly once, in time order, with the scenario's rows.
//!
//! Needs /usr/bin/prometheus, /usr/bin/promtool, /usr/bin/victoria-metrics and curl
//! (`scripts/setup` installs them).

mod support;

use std::time::Duration;

use support::backfilled::Backfilled;
use support::cluster::{Convention, NAMESPACE, NODE_COLUMNS, POD_COLUMNS, Row, now_ms};
use support::engine::{Engine, time_param};
use support::prometheus::{Agent, curl_status};
use support::table::{Table, compare, parse_rfc3339_ms};

/// The agent's WINDOW (`Stack::agent`), in seconds.
const WINDOW_SECS: f64 = 10.0;

/// One history request and what it must give.
struct Span<'a> {
    path: &'a str,
    start: i64,
    /// May lie between two steps: the last step is the one at or before it.
    end: i64,
    step: i64,
    columns: &'a [&'a str],
    key: &'a str,
    expected: &'a [Row],
}

/// Asks for `span` and checks it step by step; returns the number of steps.
fn check(agent: &Agent, engine: Engine, span: &Span) -> usize {
    let steps = ((span.end - span.start) / span.step + 1) as usize;
    let url = format!(
        "{}{}?start={}&end={}&step={}",
        agent.url(),
        span.path,
        time_param(span.start),
        time_param(span.end),
        time_param(span.step)
    );
    let asked = now_ms();
    let (status, body) = curl_status(&url);
    let what = format!("{} {} step {} ms", engine.name(), span.path, span.step);
    assert_eq!(status, 200, "{what}: {body}\n{}", agent.log());
    let table = Table::parse(&body).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(table.header, span.columns, "{what}");

    // The steps in the order the rows came, one entry per run of rows with the same time.
    let mut runs: Vec<(i64, Vec<Vec<String>>)> = Vec::new();
    for row in &table.rows {
        let observed =
            parse_rfc3339_ms(&row[2]).unwrap_or_else(|| panic!("{what}: observation_time {row:?}"));
        assert_eq!(row[1], row[2], "{what}: collection_time is the step's time");
        match runs.last_mut() {
            Some((t, rows)) if *t == observed => rows.push(row.clone()),
            _ => runs.push((observed, vec![row.clone()])),
        }
    }
    let times: Vec<i64> = runs.iter().map(|(t, _)| *t).collect();
    let expected: Vec<i64> = (0..steps as i64)
        .map(|k| span.start + k * span.step)
        .collect();
    if times != expected {
        let missing: Vec<&i64> = expected.iter().filter(|t| !times.contains(t)).collect();
        let mut seen = std::collections::BTreeSet::new();
        let repeated: Vec<&i64> = times.iter().filter(|t| !seen.insert(**t)).collect();
        let stray: Vec<&i64> = times.iter().filter(|t| !expected.contains(t)).collect();
        panic!(
            "{what}: {} steps instead of {steps}; missing {missing:?}, repeated or out of \
             order {repeated:?}, off the grid {stray:?}",
            times.len()
        );
    }

    let mut problems = Vec::new();
    for (t, rows) in &runs {
        problems.extend(compare(
            &format!("{what} at {t}"),
            span.key,
            span.expected,
            &table.header,
            rows,
        ));
    }
    assert!(
        problems.is_empty(),
        "{what}: {} disagreements with the truth, the first:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
    let recent = expected.iter().filter(|t| **t > asked - 60_000).count();
    eprintln!(
        "{what}: {steps} steps, {} rows equal the truth ({recent} steps in the last minute)",
        table.rows.len()
    );
    steps
}

fn every_step_once_with_the_truth(engine: Engine) {
    let backfilled = Backfilled::start(engine, Convention::A, Duration::from_secs(35 * 60));
    let (stack, past) = (&backfilled.stack, backfilled.past);
    let agent = stack.agent("1s", &[]);
    let nodes = stack.scenario.expected_nodes(WINDOW_SECS);
    let pods = stack.scenario.expected_pods(NAMESPACE);
    // 1,500 steps at 1 s, on whole seconds, ending a second before the backfill does: two
    // range chunks, then instant queries for the steps of the last minute.
    let one_second = |path, columns, key, expected| Span {
        path,
        start: past.to_ms - 1_500_000,
        end: past.to_ms - 1_000,
        step: 1_000,
        columns,
        key,
        expected,
    };
    // 1,010 steps at 2 s starting half a second off both the step's grid and the scrapes,
    // 20 s after the past begins, so that every step's window is fully scraped.
    let two_seconds = |path, columns, key, expected| Span {
        path,
        start: past.from_ms + 20_500,
        end: past.from_ms + 20_500 + 1_009 * 2_000 + 700,
        step: 2_000,
        columns,
        key,
        expected,
    };
    for span in [
        one_second("/nodes", &NODE_COLUMNS[..], "instance", &nodes[..]),
        one_second("/pods", &POD_COLUMNS[..], "name", &pods[..]),
        two_seconds("/nodes", &NODE_COLUMNS[..], "instance", &nodes[..]),
        two_seconds("/pods", &POD_COLUMNS[..], "name", &pods[..]),
    ] {
        assert!(span.start - 10_000 >= past.from_ms && span.end < past.to_ms);
        check(&agent, engine, &span);
    }
    assert!(
        !agent.full_log().contains("WARN"),
        "warnings in the agent's log:\n{}",
        agent.log()
    );
}

#[test]
fn spans_longer_than_a_chunk_give_every_step_once_on_prometheus() {
    every_step_once_with_the_truth(Engine::Prometheus);
}

#[test]
fn spans_longer_than_a_chunk_give_every_step_once_on_victoria_metrics() {
    every_step_once_with_the_truth(Engine::VictoriaMetrics);
}
