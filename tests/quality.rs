//! Data quality against real engines (README, "Data quality"): a synthetic cluster with a
//! fault of every kind switched on at known times on known nodes and pods, on both label
//! conventions and both engines. Every fault is reported for exactly the cells it touches,
//! with `from`/`to` within two scrape intervals of the truth; nothing else is reported but
//! what the clean cluster truly lacks; energy rows and rows asked with `problems=1` carry
//! their rows' problems.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::cluster::{
    Convention, Fault, FaultKind, NAMESPACE, Scenario, Source, Touched, now_ms,
};
use support::engine::Engine;
use support::prometheus::{Agent, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

/// The scrape interval of the tests' engines.
const SCRAPE: i64 = 1_000;
/// The agent's WINDOW in these tests.
const WINDOW: i64 = 10_000;
/// How far a reported span may be from the truth.
const SLACK: i64 = 2 * SCRAPE;

/// One finding of `/quality`.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    table: String,
    row: String,
    column: String,
    problem: String,
    from: i64,
    to: i64,
    detail: String,
}

fn findings(text: &str) -> Vec<Found> {
    let table = Table::parse(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(
        table.header,
        [
            "table", "instance", "name", "column", "problem", "from", "to", "detail"
        ]
    );
    table
        .rows
        .iter()
        .map(|r| Found {
            table: r[0].clone(),
            row: if r[0] == "nodes" {
                r[1].clone()
            } else {
                r[2].clone()
            },
            column: r[3].clone(),
            problem: r[4].clone(),
            from: parse_rfc3339_ms(&r[5]).expect("from"),
            to: parse_rfc3339_ms(&r[6]).expect("to"),
            detail: r[7].clone(),
        })
        .collect()
}

/// What the clean cluster truly lacks: no meter and no Scaphandre on worker-3, no Scaphandre
/// data for two pods.
fn baseline() -> BTreeSet<(String, String, String)> {
    [
        ("nodes", "worker-3", "wattage"),
        ("nodes", "worker-3", "scaph_wattage"),
        ("nodes", "worker-3", "wattage_auxilary"),
        ("pods", "idle-sleeper", "wattage_scaph"),
        ("pods", "loadgen-7bqzn", "wattage_scaph"),
    ]
    .iter()
    .map(|(t, r, c)| (t.to_string(), r.to_string(), c.to_string()))
    .collect()
}

/// A fault of the fixture, what it must be reported as, and what may come with it.
struct Expected {
    fault: Fault,
    problem: &'static str,
    also: &'static [&'static str],
    /// The span the primary problem covers, as the truth has it.
    span: (i64, i64),
}

/// The faults, at times after `t0` (when the exporter starts): each kind once, on rows and
/// sources that do not overlap in a way that would hide one behind another.
fn fixture(convention: Convention, t0: i64) -> Vec<Expected> {
    let s = |seconds: i64| t0 + seconds * 1000;
    let mut faults = vec![
        Expected {
            fault: Fault::gap("worker-1", Some(Source::Kepler), s(30), 20_000),
            problem: "gap",
            also: &["partial", "absent"],
            span: (s(30), s(50)),
        },
        Expected {
            fault: Fault::reset("worker-2", Some(Source::Kepler), s(35)),
            problem: "reset",
            also: &[],
            span: (s(35), s(35)),
        },
        Expected {
            fault: Fault::jump("worker-3", s(40)),
            problem: "implausible",
            also: &["reset"],
            span: (s(40), s(40) + WINDOW),
        },
        Expected {
            fault: Fault::zero("db-0", i64::MIN, i64::MAX),
            problem: "zero",
            also: &[],
            span: (i64::MIN, i64::MAX),
        },
        Expected {
            fault: Fault::absent("worker-3", Source::NodeExporter),
            problem: "absent",
            also: &[],
            span: (i64::MIN, i64::MAX),
        },
        Expected {
            fault: Fault::stop("worker-2", Some(Source::Scaphandre), s(55)),
            problem: "stale",
            also: &["partial", "absent"],
            span: (s(55), i64::MAX),
        },
    ];
    // Kepler <= 0.9 (convention A) says in kepler_node_info when it estimates.
    if convention == Convention::A {
        faults.push(Expected {
            fault: Fault::estimated("worker-1"),
            problem: "estimated",
            also: &[],
            span: (i64::MIN, i64::MAX),
        });
    }
    faults
}

/// The cells a fault touches, in the cluster without faults (a fault that removes an
/// exporter leaves nothing to touch in the cluster with it).
fn cells(convention: Convention, expected: &Expected) -> Vec<Touched> {
    let cells = Scenario::new(convention).touched(&expected.fault);
    assert!(!cells.is_empty(), "{:?} touches nothing", expected.fault);
    cells
}

#[test]
fn faults_on_kube_prometheus_stack_labels_on_prometheus() {
    faults_are_found(Engine::Prometheus, Convention::A);
}

#[test]
fn faults_on_prometheus_chart_labels_on_prometheus() {
    faults_are_found(Engine::Prometheus, Convention::B);
}

#[test]
fn faults_on_kube_prometheus_stack_labels_on_victoria_metrics() {
    faults_are_found(Engine::VictoriaMetrics, Convention::A);
}

#[test]
fn faults_on_prometheus_chart_labels_on_victoria_metrics() {
    faults_are_found(Engine::VictoriaMetrics, Convention::B);
}

fn faults_are_found(engine: Engine, convention: Convention) {
    let t0 = now_ms();
    let expected = fixture(convention, t0);
    let mut scenario = Scenario::new(convention);
    for e in &expected {
        scenario = scenario
            .with_fault(e.fault.clone())
            .expect("a fault of the scenario");
    }
    let stack = Stack::with(engine, scenario);
    let agent = stack.agent("1s", &[]);
    // Every fault has happened, the stop is stale.
    wait_for(Duration::from_secs(120), || {
        (now_ms() > t0 + 70_000).then_some(())
    });
    let start = t0 + 20_000;
    let text = agent
        .get(&format!("/quality?start={}", seconds(start)))
        .expect("/quality");
    let found = findings(&text);
    let end = found.iter().map(|f| f.to).max().unwrap_or(now_ms());
    let report = format!("{} {convention:?}:\n{text}", engine.name());
    // Each fault, for each cell it touches: its problem, over its span.
    let mut allowed: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for e in &expected {
        for cell in cells(convention, e) {
            let key = (
                cell.table.to_string(),
                cell.row.clone(),
                cell.column.to_string(),
            );
            let hits: Vec<&Found> = found
                .iter()
                .filter(|f| {
                    (f.table.as_str(), f.row.as_str(), f.column.as_str())
                        == (cell.table, &cell.row, cell.column)
                })
                .filter(|f| f.problem == e.problem)
                .collect();
            assert!(
                !hits.is_empty(),
                "{}: no {} for {key:?}\n{report}",
                e.fault.describe(),
                e.problem
            );
            let (from, to) = (e.span.0.max(start), e.span.1.min(end));
            assert!(
                hits.iter()
                    .any(|f| (f.from - from).abs() <= SLACK && (f.to - to).abs() <= SLACK),
                "{}: {} of {key:?} not within {SLACK} ms of {from}..{to}: {hits:#?}\n{report}",
                e.fault.describe(),
                e.problem
            );
            for problem in std::iter::once(e.problem).chain(e.also.iter().copied()) {
                allowed.insert((
                    key.0.clone(),
                    key.1.clone(),
                    key.2.clone(),
                    problem.to_string(),
                ));
            }
        }
    }
    // Nothing else: no false alarm.
    for f in &found {
        let cell = (f.table.clone(), f.row.clone(), f.column.clone());
        let ok = allowed.contains(&(
            cell.0.clone(),
            cell.1.clone(),
            cell.2.clone(),
            f.problem.clone(),
        )) || (f.problem == "absent" && baseline().contains(&cell));
        assert!(ok, "a false alarm: {f:?}\n{report}");
    }
    energy_rows_carry_their_problems(&agent, start, end, &found);
    history_rows_carry_their_problems(&agent, &expected[0], &Scenario::new(convention));
}

/// Unix seconds with milliseconds.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The energy column of a live column, as the energy tables name it.
fn energy_column(table: &str, live: &str) -> Option<&'static str> {
    Some(match (table, live) {
        (_, "cpu_usage") => "cpu_seconds",
        ("nodes", "wattage") => "wattage_joules",
        ("nodes", "kepler_wattage") | ("pods", "wattage_kepler") => "kepler_joules",
        ("nodes", "scaph_wattage") | ("pods", "wattage_scaph") => "scaph_joules",
        ("nodes", "wattage_auxilary") => "auxilary_joules",
        _ => return None,
    })
}

/// Energy rows over the same window end in exactly their rows' problems, by energy column.
fn energy_rows_carry_their_problems(agent: &Agent, start: i64, end: i64, found: &[Found]) {
    for (path, table, key) in [
        ("/energy/nodes", "nodes", "instance"),
        ("/energy/pods", "pods", "name"),
    ] {
        let text = agent
            .get(&format!(
                "{path}?start={}&end={}",
                seconds(start),
                seconds(end)
            ))
            .expect("energy");
        let energy = Table::parse(&text).expect("energy CSV");
        let problems = energy.column("problems").expect("problems");
        let name = energy.column(key).expect(key);
        for row in &energy.rows {
            let listed: BTreeSet<&str> =
                row[problems].split(';').filter(|p| !p.is_empty()).collect();
            let expected: BTreeSet<String> = found
                .iter()
                .filter(|f| f.table == table && f.row == row[name])
                .filter_map(|f| {
                    Some(format!(
                        "{}:{}",
                        energy_column(table, &f.column)?,
                        f.problem
                    ))
                })
                .collect();
            let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
            assert_eq!(listed, expected, "{path} {}: {text}", row[name]);
        }
    }
}

/// History rows asked with `problems=1`: rows inside the gap name it, rows long after every
/// fault name only what the clean cluster lacks.
fn history_rows_carry_their_problems(agent: &Agent, gap: &Expected, scenario: &Scenario) {
    assert_eq!(gap.fault.kind, FaultKind::Gap);
    let (from, to) = gap.span;
    let text = agent
        .get(&format!(
            "/nodes?problems=1&start={}",
            seconds(from - 5_000)
        ))
        .expect("history with problems");
    let rows = Table::parse(&text).expect("history CSV");
    assert_eq!(rows.header.last().map(String::as_str), Some("problems"));
    let observed = rows.column("observation_time").expect("observation_time");
    let problems = rows.column("problems").expect("problems");
    let touched: BTreeSet<String> = scenario
        .touched(&gap.fault)
        .iter()
        .filter(|c| c.table == "nodes")
        .map(|c| format!("{}:gap", c.column))
        .collect();
    let mut inside = 0;
    for row in rows.rows.iter().filter(|r| r[0] == "worker-1") {
        let t = parse_rfc3339_ms(&row[observed]).expect("time");
        let listed: BTreeSet<String> = row[problems].split(';').map(str::to_string).collect();
        if t > from + SLACK && t < to - SLACK {
            inside += 1;
            assert!(
                touched.is_subset(&listed),
                "at {t} inside the gap: {listed:?}\n{text}"
            );
        }
        if t > to + WINDOW + SLACK {
            // worker-1 of the clean cluster lacks nothing (its estimated Kepler aside).
            assert!(
                listed
                    .iter()
                    .all(|p| p.is_empty() || p.ends_with(":estimated")),
                "at {t}, long after the gap: {listed:?}\n{text}"
            );
        }
    }
    assert!(inside >= 10, "{inside} rows inside the gap:\n{text}");
}

#[test]
fn the_clean_cluster_raises_no_false_alarm() {
    for engine in Engine::ALL {
        let stack = Stack::on(engine, Convention::B);
        let agent = stack.agent("1s", &[]);
        let first = *stack.exporter.scrape_times().first().expect("scraped");
        wait_for(Duration::from_secs(60), || {
            (now_ms() > first + 25_000).then_some(())
        });
        // A window that ends now, and one in the past.
        let now = now_ms();
        for (start, end) in [(first + 12_000, None), (first + 11_000, Some(now - 5_000))] {
            let end_param = end
                .map(|e| format!("&end={}", seconds(e)))
                .unwrap_or_default();
            let text = agent
                .get(&format!("/quality?start={}{end_param}", seconds(start)))
                .expect("/quality");
            for f in findings(&text) {
                let cell = (f.table.clone(), f.row.clone(), f.column.clone());
                assert!(
                    f.problem == "absent" && baseline().contains(&cell),
                    "{}: {f:?}\n{text}",
                    engine.name()
                );
            }
            // Every true absence is there.
            assert_eq!(
                findings(&text).len(),
                baseline().len(),
                "{}:\n{text}",
                engine.name()
            );
        }
        let _ = NAMESPACE;
    }
}
