//! The cycle's steps against a fake query source whose answers are known.

use std::cell::RefCell;

use std::sync::Mutex;

use super::*;
use crate::prometheus::{Eval, Labels, QueryError, QuerySource, Series};
use crate::tables::identity::{COLUMN_LABEL, NodeNames};
use crate::tables::queries::Queries;
use crate::tables::schema::{Measure, TableKind};
use crate::time::Millis;

/// A series the fake answers with: labels, and one value at every evaluation time.
struct Fixed {
    labels: Vec<(&'static str, &'static str)>,
    value: f64,
}

fn series(labels: &[(&'static str, &'static str)], value: f64) -> Fixed {
    Fixed {
        labels: labels.to_vec(),
        value,
    }
}

enum Answer {
    Series(Vec<Fixed>),
    Fail(QueryError),
    /// Some series, then an error: a truncated or oversized answer.
    Partial(Vec<Fixed>, QueryError),
}

/// Answers the first entry whose needle the query contains; no entry, no series.
struct Fake {
    answers: Vec<(&'static str, Answer)>,
    asked: RefCell<Vec<(String, Eval)>>,
}

impl Fake {
    fn new(answers: Vec<(&'static str, Answer)>) -> Fake {
        Fake {
            answers,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn asked_containing(&self, needle: &str) -> usize {
        self.asked
            .borrow()
            .iter()
            .filter(|(q, _)| q.contains(needle))
            .count()
    }
}

fn deliver(list: &[Fixed], eval: Eval, extra: &[(&str, &str)], sink: &mut dyn FnMut(Series<'_>)) {
    let times: Vec<Millis> = match eval {
        Eval::At(t) => vec![t],
        Eval::Range { start, end, step } => (0..)
            .map(|k| start + k * step)
            .take_while(|t| *t <= end)
            .collect(),
    };
    for fixed in list {
        let mut pairs = fixed.labels.clone();
        pairs.extend_from_slice(extra);
        let labels = Labels::from_pairs(&pairs);
        let points: Vec<(Millis, f64)> = times.iter().map(|t| (*t, fixed.value)).collect();
        sink(Series {
            labels: &labels,
            points: &points,
        });
    }
}

impl Fake {
    fn answer(&self, promql: &str) -> Option<&Answer> {
        self.answers
            .iter()
            .find(|(needle, _)| promql.contains(needle))
            .map(|(_, a)| a)
    }
}

/// The parts of a combined query, as `combined_query` writes them: (column, query).
fn combined_parts(promql: &str) -> Option<Vec<(&str, &str)>> {
    let tag = format!(r#"), "{COLUMN_LABEL}", ""#);
    promql
        .strip_prefix("label_replace((")?
        .split(" or label_replace((")
        .map(|part| {
            let (query, rest) = part.split_once(tag.as_str())?;
            Some((rest.split('"').next()?, query))
        })
        .collect()
}

impl QuerySource for Fake {
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError> {
        self.asked.borrow_mut().push((promql.to_string(), eval));
        let Some(parts) = combined_parts(promql) else {
            return match self.answer(promql) {
                None => Ok(0),
                Some(Answer::Series(list)) => {
                    deliver(list, eval, &[], sink);
                    Ok(list.len())
                }
                Some(Answer::Fail(e)) => Err(e.clone()),
                Some(Answer::Partial(list, e)) => {
                    deliver(list, eval, &[], sink);
                    Err(e.clone())
                }
            };
        };
        // Like Prometheus, a combined query fails as a whole, before any series.
        let mut answers = Vec::new();
        for (column, part) in parts {
            match self.answer(part) {
                None => {}
                Some(Answer::Series(list)) => answers.push((column, list)),
                Some(Answer::Fail(e) | Answer::Partial(_, e)) => return Err(e.clone()),
            }
        }
        let mut n = 0;
        for (column, list) in answers {
            deliver(list, eval, &[(COLUMN_LABEL, column)], sink);
            n += list.len();
        }
        Ok(n)
    }
}

fn planned(table: TableKind, column: usize, promql: &'static str) -> Planned {
    Planned {
        table,
        column,
        name: promql,
        promql: Some(promql.to_string()),
        overridden: false,
    }
}

/// Two node columns (`n0`, `n1`) and two pod columns (`p0`, `p1`).
fn plan() -> Plan {
    Plan::new(plan_columns())
}

fn plan_columns() -> Vec<Planned> {
    vec![
        planned(TableKind::Nodes, 0, "n0"),
        planned(TableKind::Nodes, 1, "n1"),
        planned(TableKind::Pods, 0, "p0"),
        planned(TableKind::Pods, 1, "p1"),
    ]
}

const NS: &str = "exp";

/// Column by column, as the failure rules are stated.
fn evaluate_at(fake: &Fake, names: &Mutex<NodeNames>) -> Result<Outcome, QueryError> {
    evaluate(
        fake,
        names,
        &plan(),
        Steps::at(60_000),
        NS,
        &Batching::one_by_one(),
    )
}

fn rows(outcome: &Outcome, table: TableKind) -> Vec<(String, String, Vec<Option<f64>>)> {
    outcome.rows.get(table)[0]
        .iter()
        .map(|r| (r.name.clone(), r.node.clone(), r.values.clone()))
        .collect()
}

fn api_error() -> QueryError {
    QueryError::Api {
        http_status: 400,
        error_type: "bad_data".into(),
        error: "parse error".into(),
    }
}

#[test]
fn rows_are_sorted_and_a_row_needs_one_value() {
    let fake = Fake::new(vec![
        (
            "n0",
            Answer::Series(vec![
                series(&[("node", "w2")], 2.0),
                series(&[("node", "w1")], 1.0),
            ]),
        ),
        (
            "n1",
            Answer::Series(vec![
                series(&[("node", "w3")], 3.0),
                series(&[("job", "x")], 9.0),
            ]),
        ),
    ]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    assert_eq!(
        rows(&outcome, TableKind::Nodes),
        [
            ("w1".into(), "".into(), vec![Some(1.0), None]),
            ("w2".into(), "".into(), vec![Some(2.0), None]),
            ("w3".into(), "".into(), vec![None, Some(3.0)]),
        ]
    );
    assert!(rows(&outcome, TableKind::Pods).is_empty());
    assert_eq!(outcome.rows_with(TableKind::Nodes, 0, 0), ["w1", "w2"]);
}

#[test]
fn duplicate_series_first_wins_even_across_address_mapping() {
    let fake = Fake::new(vec![
        (
            "n0",
            Answer::Series(vec![
                series(&[("instance", "192.0.2.1:9100")], 1.0),
                series(&[("node", "worker-1")], 2.0),
                series(&[("node", "worker-2")], 5.0),
                series(&[("node", "worker-2")], 6.0),
            ]),
        ),
        (
            "kube_node_info",
            Answer::Series(vec![series(
                &[("internal_ip", "192.0.2.1"), ("node", "worker-1")],
                1.0,
            )]),
        ),
    ]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    assert_eq!(
        rows(&outcome, TableKind::Nodes),
        [
            ("worker-1".into(), "".into(), vec![Some(1.0), None]),
            ("worker-2".into(), "".into(), vec![Some(5.0), None]),
        ]
    );
    let mut duplicated: Vec<&str> = outcome.duplicates.iter().map(|d| d.row.as_str()).collect();
    duplicated.sort();
    assert_eq!(duplicated, ["worker-1", "worker-2"]);
}

#[test]
fn pods_of_other_namespaces_are_dropped() {
    let fake = Fake::new(vec![(
        "p0",
        Answer::Series(vec![
            series(&[("pod", "mine"), ("namespace", "exp")], 1.0),
            series(&[("pod", "theirs"), ("namespace", "other")], 2.0),
            // Kepler under kube-prometheus-stack: `namespace` is the exporter's, the workload
            // namespace label wins.
            series(
                &[
                    ("pod_name", "work"),
                    ("container_namespace", "exp"),
                    ("namespace", "kepler"),
                ],
                3.0,
            ),
            series(
                &[
                    ("pod_name", "alien"),
                    ("container_namespace", "other"),
                    ("namespace", "exp"),
                ],
                4.0,
            ),
            series(&[("pod", "unlabelled")], 5.0),
            series(&[("namespace", "exp")], 6.0),
        ]),
    )]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    let names: Vec<String> = rows(&outcome, TableKind::Pods)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(names, ["mine", "unlabelled", "work"]);
}

#[test]
fn nan_and_infinity_keep_the_row_with_an_empty_field() {
    let fake = Fake::new(vec![
        (
            "n0",
            Answer::Series(vec![series(&[("node", "w1")], f64::NAN)]),
        ),
        (
            "n1",
            Answer::Series(vec![series(&[("node", "w1")], f64::INFINITY)]),
        ),
    ]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    let rows = &outcome.rows.nodes[0];
    assert_eq!(rows.len(), 1);
    assert_eq!(
        render::lines(TableKind::Nodes, rows, Form::History, 60_000, NS),
        ["w1,1970-01-01T00:01:00.000Z,1970-01-01T00:01:00.000Z,,\n"]
    );
}

#[test]
fn addresses_map_to_node_names_once_and_unknown_ones_stay() {
    let fake = Fake::new(vec![
        (
            "n0",
            Answer::Series(vec![
                series(&[("instance", "192.0.2.1:9100")], 1.0),
                series(&[("instance", "192.0.2.9:9100")], 9.0),
            ]),
        ),
        (
            "p0",
            Answer::Series(vec![series(
                &[("pod", "db-0"), ("instance", "198.51.100.7:8080")],
                4.0,
            )]),
        ),
        (
            "kube_node_info",
            Answer::Series(vec![series(
                &[("internal_ip", "192.0.2.1"), ("node", "worker-1")],
                1.0,
            )]),
        ),
        (
            "kube_pod_info",
            Answer::Series(vec![series(
                &[("pod_ip", "198.51.100.7"), ("node", "worker-2")],
                1.0,
            )]),
        ),
    ]);
    let names = Mutex::new(NodeNames::new());
    let outcome = evaluate_at(&fake, &names).unwrap();
    let nodes: Vec<String> = rows(&outcome, TableKind::Nodes)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(nodes, ["192.0.2.9", "worker-1"]);
    assert_eq!(rows(&outcome, TableKind::Pods)[0].1, "worker-2");
    assert_eq!(outcome.unmapped, ["192.0.2.9"]);
    assert_eq!(fake.asked_containing("kube_node_info"), 1);
    // Known and recently unmappable addresses are not asked for again.
    evaluate_at(&fake, &names).unwrap();
    assert_eq!(fake.asked_containing("kube_node_info"), 1);
    // Mapping queries are evaluated at the cycle's time.
    let asked = fake.asked.borrow();
    assert!(
        asked.iter().all(|(_, eval)| *eval == Eval::At(60_000)),
        "{:?}",
        *asked
    );
}

#[test]
fn a_failing_column_is_left_empty_and_the_others_kept() {
    let fake = Fake::new(vec![
        ("n0", Answer::Fail(api_error())),
        ("n1", Answer::Series(vec![series(&[("node", "w1")], 1.0)])),
        (
            "p0",
            Answer::Partial(
                vec![series(&[("pod", "half")], 7.0)],
                QueryError::TooLarge("more than 1 series".into()),
            ),
        ),
        ("p1", Answer::Series(vec![series(&[("pod", "whole")], 2.0)])),
    ]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    assert_eq!(
        rows(&outcome, TableKind::Nodes),
        [("w1".into(), "".into(), vec![None, Some(1.0)])]
    );
    // What the truncated answer gave is discarded, and so is the row it alone made.
    assert_eq!(
        rows(&outcome, TableKind::Pods),
        [("whole".into(), "".into(), vec![None, Some(2.0)])]
    );
    assert_eq!(outcome.columns[0].outcome, Some(Err(api_error())));
    assert!(matches!(
        outcome.columns[2].outcome,
        Some(Err(QueryError::TooLarge(_)))
    ));
    assert_eq!(outcome.columns[3].outcome, Some(Ok(1)));
}

#[test]
fn a_disabled_column_sends_no_query() {
    let mut columns = plan_columns();
    columns[1].promql = None;
    let plan = Plan::new(columns);
    let fake = Fake::new(vec![(
        "n0",
        Answer::Series(vec![series(&[("node", "w1")], 1.0)]),
    )]);
    let outcome = evaluate(
        &fake,
        &Mutex::new(NodeNames::new()),
        &plan,
        Steps::at(0),
        NS,
        &Batching::one_by_one(),
    )
    .unwrap();
    assert_eq!(outcome.columns[1].outcome, None);
    assert_eq!(fake.asked.borrow().len(), 3);
}

#[test]
fn one_timeout_empties_a_column_and_a_second_fails_the_cycle() {
    let timeout = || QueryError::Timeout("timed out".into());
    let fake = Fake::new(vec![
        ("n0", Answer::Fail(timeout())),
        ("n1", Answer::Series(vec![series(&[("node", "w1")], 1.0)])),
    ]);
    let outcome = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap();
    assert_eq!(outcome.columns[0].outcome, Some(Err(timeout())));
    assert_eq!(rows(&outcome, TableKind::Nodes).len(), 1);

    let fake = Fake::new(vec![
        ("n0", Answer::Fail(timeout())),
        ("n1", Answer::Series(vec![series(&[("node", "w1")], 1.0)])),
        ("p0", Answer::Fail(timeout())),
    ]);
    let e = evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap_err();
    assert!(e.is_timeout());
    // The cycle stops at the second timeout: p1 is never asked.
    assert_eq!(fake.asked_containing("p1"), 0);
}

#[test]
fn unreachable_or_all_failing_fails_the_cycle() {
    let refused = QueryError::Transport("connection refused".into());
    let fake = Fake::new(vec![("n1", Answer::Fail(refused.clone()))]);
    assert_eq!(
        evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap_err(),
        refused
    );
    assert_eq!(fake.asked.borrow().len(), 2);
    let fake = Fake::new(vec![("", Answer::Fail(api_error()))]);
    assert_eq!(
        evaluate_at(&fake, &Mutex::new(NodeNames::new())).unwrap_err(),
        api_error()
    );
}

#[test]
fn range_points_land_on_their_steps() {
    let fake = Fake::new(vec![(
        "n0",
        Answer::Series(vec![series(&[("node", "w1")], 1.5)]),
    )]);
    let steps = Steps::range(60_000, 15_000, 3);
    assert_eq!(
        steps.eval(),
        Eval::Range {
            start: 60_000,
            end: 90_000,
            step: 15_000
        }
    );
    let outcome = evaluate(
        &fake,
        &Mutex::new(NodeNames::new()),
        &plan(),
        steps,
        NS,
        &Batching::default(),
    )
    .unwrap();
    assert_eq!(outcome.rows.nodes.len(), 3);
    for step in &outcome.rows.nodes {
        assert_eq!(step[0].values, [Some(1.5), None]);
    }
    // Only points exactly on a step count.
    assert_eq!(steps.index(75_000), Some(1));
    assert_eq!(steps.index(75_001), None);
    assert_eq!(steps.index(45_000), None);
    assert_eq!(steps.index(105_000), None);
    assert_eq!(Steps::at(5).index(123), Some(0));
}

#[test]
fn plans_fill_energy_spans_and_keep_column_order() {
    let queries = Queries::build(
        "exp",
        std::time::Duration::from_secs(60),
        &Default::default(),
    )
    .unwrap();
    let live = plan_for(&queries, Measure::Live);
    assert_eq!(live.len(), 13);
    assert_eq!(
        (live[8].table, live[8].column, live[8].name),
        (TableKind::Pods, 0, "cpu_usage")
    );
    let energy = super::plan::plan(&queries, &[TableKind::Pods], Measure::Energy, 90_000).columns;
    assert_eq!(energy.len(), 3);
    let text = energy[2].promql.as_deref().unwrap();
    assert!(text.contains("[90s]") && text.ends_with("* 90"), "{text}");
}

fn plan_for(queries: &Queries, measure: Measure) -> Vec<Planned> {
    super::plan::plan(queries, &TableKind::ALL, measure, 0).columns
}

#[test]
fn combined_queries_ask_each_table_once_with_the_same_rows() {
    let answers = || {
        vec![
            (
                "n0",
                Answer::Series(vec![
                    series(&[("node", "w2")], 2.0),
                    series(&[("node", "w1")], 1.0),
                ]),
            ),
            (
                "n1",
                Answer::Series(vec![series(&[("instance", "192.0.2.1:9100")], 3.0)]),
            ),
            (
                "p0",
                Answer::Series(vec![series(&[("pod", "a"), ("node", "w1")], 4.0)]),
            ),
            (
                "p1",
                Answer::Series(vec![series(&[("pod", "a")], f64::INFINITY)]),
            ),
            (
                "kube_node_info",
                Answer::Series(vec![series(
                    &[("internal_ip", "192.0.2.1"), ("node", "w1")],
                    1.0,
                )]),
            ),
        ]
    };
    let combined = Fake::new(answers());
    let batching = Batching::default();
    let names = Mutex::new(NodeNames::new());
    let together = evaluate(&combined, &names, &plan(), Steps::at(60_000), NS, &batching).unwrap();
    let apart = evaluate_at(&Fake::new(answers()), &Mutex::new(NodeNames::new())).unwrap();
    for table in TableKind::ALL {
        assert_eq!(rows(&together, table), rows(&apart, table), "{table:?}");
    }
    assert_eq!(together.columns, apart.columns);
    let asked = combined.asked.borrow();
    let data: Vec<&String> = asked
        .iter()
        .map(|(q, _)| q)
        .filter(|q| !q.contains("_info"))
        .collect();
    assert_eq!(data.len(), 2, "{data:?}");
    assert!(data[0].contains("n0") && data[0].contains("n1") && data[0].contains(COLUMN_LABEL));
}

#[test]
fn a_failing_combined_query_falls_back_to_columns_for_good() {
    let fake = Fake::new(vec![
        ("n0", Answer::Fail(api_error())),
        ("n1", Answer::Series(vec![series(&[("node", "w1")], 1.0)])),
        ("p0", Answer::Series(vec![series(&[("pod", "a")], 2.0)])),
    ]);
    let batching = Batching::default();
    let names = Mutex::new(NodeNames::new());
    let run = || evaluate(&fake, &names, &plan(), Steps::at(0), NS, &batching).unwrap();
    let outcome = run();
    // The failing column alone is empty, exactly as when asked column by column.
    assert_eq!(outcome.columns[0].outcome, Some(Err(api_error())));
    assert_eq!(
        rows(&outcome, TableKind::Nodes),
        [("w1".into(), "".into(), vec![None, Some(1.0)])]
    );
    assert_eq!(
        rows(&outcome, TableKind::Pods),
        [("a".into(), "".into(), vec![Some(2.0), None])]
    );
    // Asked: nodes combined (failed), n0, n1, pods combined. Then nodes one by one for good.
    assert_eq!(fake.asked.borrow().len(), 4);
    run();
    let asked = fake.asked.borrow();
    let second: Vec<bool> = asked[4..]
        .iter()
        .map(|(q, _)| q.contains(COLUMN_LABEL))
        .collect();
    assert_eq!(second, [false, false, true]);
}

#[test]
fn large_tables_are_asked_column_by_column() {
    let many: Vec<Fixed> = (0..=super::run::COMBINED_ROWS_MAX)
        .map(|i| Fixed {
            labels: vec![("pod", Box::leak(format!("pod-{i}").into_boxed_str()))],
            value: 1.0,
        })
        .collect();
    let fake = Fake::new(vec![("p0", Answer::Series(many))]);
    let batching = Batching::default();
    let names = Mutex::new(NodeNames::new());
    let run = || evaluate(&fake, &names, &plan(), Steps::at(0), NS, &batching).unwrap();
    run();
    let first = fake.asked.borrow().len();
    run();
    let asked = fake.asked.borrow();
    let second: Vec<bool> = asked[first..]
        .iter()
        .map(|(q, _)| q.contains(COLUMN_LABEL))
        .collect();
    // Nodes (no rows) stay combined; more pods than COMBINED_ROWS_MAX are asked one column
    // at a time.
    assert_eq!(second, [true, false, false]);
}
