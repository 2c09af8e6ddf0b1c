//! The past, computed from a real Prometheus and a real VictoriaMetrics: history rows equal
//! the live rows of the same observation time, energy per window matches the exporter's
//! truth, a resumed stream gets every cycle exactly once, observation times stay on the grid
//! across a restart, and every bad request gets its 400 (or 503 beyond two at once).
//!
//! Needs /usr/bin/prometheus, /usr/bin/victoria-metrics, curl and websocat (`scripts/setup`
//! installs them).

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::cluster::{Cell, Convention, NAMESPACE, Row};
use support::energy::{expected_node_energy, expected_pod_energy};
use support::engine::Engine;
use support::prometheus::{Agent, TempDir, curl_status, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

fn table(agent: &Agent, path: &str) -> Table {
    let (status, body) = curl_status(&format!("{}{path}", agent.url()));
    assert_eq!(status, 200, "{path}: {body}\n{}", agent.log());
    Table::parse(&body).unwrap_or_else(|e| panic!("{path}: {e}\n{body}"))
}

/// Rows grouped by observation time.
fn cycles(table: &Table) -> BTreeMap<i64, Vec<Vec<String>>> {
    let at = table.column("observation_time").expect("observation_time");
    let mut cycles: BTreeMap<i64, Vec<Vec<String>>> = BTreeMap::new();
    for row in &table.rows {
        let t = parse_rfc3339_ms(&row[at]).expect("observation time");
        cycles.entry(t).or_default().push(row.clone());
    }
    cycles
}

/// A live cycle at `t` saw every scrape up to `t` when no scrape landed within `margin` ms
/// before it (Prometheus may not have stored that one yet).
fn no_scrape_in_flight(scrapes: &[i64], t: i64, margin: i64) -> bool {
    !scrapes.iter().any(|s| *s > t - margin && *s <= t)
}

/// Every column but `collection_time`, which is the evaluation time in history.
fn without_collection_time(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect()
}

/// Rows equal field by field, numbers within 1e-9 relative.
fn assert_rows_close(past: &[Vec<String>], live: &[Vec<String>], what: &str) {
    assert_eq!(past.len(), live.len(), "{what}: {past:?} vs {live:?}");
    for (p, l) in past.iter().zip(live) {
        assert_eq!(p.len(), l.len(), "{what}");
        for (a, b) in p.iter().zip(l) {
            let same = a == b
                || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y))
                    if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()));
            assert!(same, "{what}: {a} vs {b} in {p:?} vs {l:?}");
        }
    }
}

fn history_equals_live(engine: Engine, convention: Convention) {
    let stack = Stack::on(engine, convention);
    // Cycles 1.3 s apart meet the 1 s scrapes at every phase, so some always run with no
    // scrape in flight, wherever Prometheus puts its scrapes within the second.
    // A cycle that ran while a scrape was being stored saw one sample less than history does:
    // Prometheus extrapolates differently then, VictoriaMetrics takes another pair of samples.
    let in_flight_margin = match engine {
        Engine::Prometheus => 300,
        // Samples become searchable about once a second.
        Engine::VictoriaMetrics => 1_100,
    };
    let agent = stack.agent("1300ms", &[]);
    for path in ["/nodes", "/pods"] {
        let live = wait_for(Duration::from_secs(60), || {
            let live = table(&agent, path);
            (cycles(&live).len() >= 10).then_some(live)
        })
        .unwrap_or_else(|| panic!("{path}: not 10 cycles:\n{}", agent.log()));
        let live = cycles(&live);
        let (first, last) = (*live.keys().next().unwrap(), *live.keys().last().unwrap());
        let history = table(
            &agent,
            &format!(
                "{path}?start={}.{:03}&end={}.{:03}&step=1.3",
                first / 1000,
                first % 1000,
                last / 1000,
                last % 1000
            ),
        );
        for row in &history.rows {
            assert_eq!(
                row[1], row[2],
                "history rows carry the evaluation time twice: {row:?}"
            );
        }
        let history = cycles(&history);
        // Every step of the span, including any the live schedule skipped after an overrun.
        let steps: Vec<i64> = (0..=(last - first) / 1300)
            .map(|k| first + k * 1300)
            .collect();
        assert_eq!(
            history.keys().copied().collect::<Vec<_>>(),
            steps,
            "{path}: one cycle per step"
        );
        let scrapes = stack.exporter.scrape_times();
        let (mut identical, mut close) = (0, 0);
        for (t, rows) in &live {
            let what = format!(
                "{path} at {t}, {}, convention {}",
                engine.name(),
                convention.describe()
            );
            let live = without_collection_time(rows);
            let past = without_collection_time(&history[t]);
            if no_scrape_in_flight(&scrapes, *t, in_flight_margin) {
                assert_eq!(past, live, "{what}");
                identical += 1;
            } else if engine == Engine::VictoriaMetrics {
                // The live cycle may have seen one sample less, so VictoriaMetrics took another
                // pair of samples: the same figures, up to float noise in the 10th digit.
                assert_rows_close(&past, &live, &what);
                close += 1;
            }
            // On Prometheus one sample less changes the extrapolation: a real difference.
        }
        assert!(
            identical + close >= 4,
            "{path}: {identical} + {close} cycles compared"
        );
        eprintln!(
            "{}, {path}: {identical} cycles identical to history, {close} within float noise",
            engine.name()
        );
    }
}

#[test]
fn history_equals_live_kube_prometheus_stack_on_prometheus() {
    history_equals_live(Engine::Prometheus, Convention::A);
}

#[test]
fn history_equals_live_prometheus_chart_on_prometheus() {
    history_equals_live(Engine::Prometheus, Convention::B);
}

#[test]
fn history_equals_live_kube_prometheus_stack_on_victoria_metrics() {
    history_equals_live(Engine::VictoriaMetrics, Convention::A);
}

#[test]
fn history_equals_live_prometheus_chart_on_victoria_metrics() {
    history_equals_live(Engine::VictoriaMetrics, Convention::B);
}

/// Compares energy rows with the truth within 1 %; returns the problems.
fn compare_energy(what: &str, key: &str, expected: &[Row], got: &Table) -> Vec<String> {
    let mut problems = Vec::new();
    let key_at = got.column(key).expect("key column");
    if got.rows.len() != expected.len() {
        problems.push(format!(
            "{what}: {} rows, expected {}",
            got.rows.len(),
            expected.len()
        ));
    }
    for want in expected {
        let name = want.text(key);
        let Some(row) = got.rows.iter().find(|r| r[key_at] == name) else {
            problems.push(format!("{what}: no row {name}"));
            continue;
        };
        for (column, cell) in &want.cells {
            let at = got.column(column).expect("column");
            let value = &row[at];
            let ok = match cell {
                Cell::Text(text) => value == text,
                Cell::Num(None) => value.is_empty(),
                Cell::Num(Some(expected)) => value
                    .parse::<f64>()
                    .is_ok_and(|v| (v - expected).abs() <= 0.01 * expected.abs()),
            };
            if !ok {
                problems.push(format!(
                    "{what} {name} {column}: expected {}, got {value:?}",
                    cell.render()
                ));
            }
        }
    }
    problems
}

/// The `problems` a clean row has: `column:absent` for each column it lacks while another
/// row has it, in column order.
fn absent_in(truth: &[Row], row: &Row) -> String {
    row.cells
        .iter()
        .filter(|(column, cell)| {
            matches!(cell, Cell::Num(None))
                && truth
                    .iter()
                    .any(|other| matches!(other.get(column), Some(Cell::Num(Some(_)))))
        })
        .map(|(column, _)| format!("{column}:absent"))
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn energy_matches_the_truth_on_prometheus() {
    energy_matches_the_truth(Engine::Prometheus, Convention::B);
}

#[test]
fn energy_matches_the_truth_on_victoria_metrics() {
    energy_matches_the_truth(Engine::VictoriaMetrics, Convention::A);
}

fn energy_matches_the_truth(engine: Engine, convention: Convention) {
    let stack = Stack::on(engine, convention);
    let agent = stack.agent("1s", &[]);
    // A window of 20 s, ending 2 s ago, that Prometheus scraped from start to end.
    let started = stack.exporter.started_ms();
    let first_scrape = *stack.exporter.scrape_times().first().expect("scraped");
    wait_for(Duration::from_secs(60), || {
        (support::cluster::now_ms() > first_scrape + 24_000).then_some(())
    });
    let end = support::cluster::now_ms() - 2_000;
    let start = end - 20_000;
    let query = format!(
        "start={}.{:03}&end={}.{:03}",
        start / 1000,
        start % 1000,
        end / 1000,
        end % 1000
    );
    let nodes = table(&agent, &format!("/energy/nodes?{query}"));
    let pods = table(&agent, &format!("/energy/pods?{query}"));
    assert_eq!(
        nodes.header,
        [
            "instance",
            "start",
            "end",
            "seconds",
            "cpu_seconds",
            "wattage_joules",
            "kepler_joules",
            "scaph_joules",
            "auxilary_joules",
            "problems"
        ]
    );
    assert_eq!(
        pods.header,
        [
            "instance",
            "name",
            "namespace",
            "start",
            "end",
            "seconds",
            "cpu_seconds",
            "kepler_joules",
            "scaph_joules",
            "problems"
        ]
    );
    for row in nodes.rows.iter().chain(&pods.rows) {
        assert!(row.contains(&"20".to_string()), "seconds column: {row:?}");
    }
    let mut problems = compare_energy(
        "nodes",
        "instance",
        &expected_node_energy(&stack.scenario, 20.0),
        &nodes,
    );
    problems.extend(compare_energy(
        "pods",
        "name",
        &expected_pod_energy(&stack.scenario, NAMESPACE, 20.0),
        &pods,
    ));
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        agent.log()
    );
    // The clean cluster's only data problems: sources a row truly lacks while others have.
    for (table, key, truth) in [
        (
            &nodes,
            "instance",
            expected_node_energy(&stack.scenario, 20.0),
        ),
        (
            &pods,
            "name",
            expected_pod_energy(&stack.scenario, NAMESPACE, 20.0),
        ),
    ] {
        let column = table.column("problems").expect("problems column");
        for want in &truth {
            let row = table
                .rows
                .iter()
                .find(|r| r[table.column(key).expect(key)] == want.text(key));
            let row = row.unwrap_or_else(|| panic!("no row {}", want.text(key)));
            assert_eq!(row[column], absent_in(&truth, want), "{}", want.text(key));
        }
    }
    // `/energy` is `/energy/nodes`.
    assert_eq!(table(&agent, &format!("/energy?{query}")).rows, nodes.rows);
    // A window before any data: every row empty, so no rows.
    let early = table(
        &agent,
        &format!(
            "/energy/nodes?start={}&end={}",
            started / 1000 - 600,
            started / 1000 - 300
        ),
    );
    assert!(early.rows.is_empty(), "{:?}", early.rows);
    // A window too short for any counter to grow in it (one grid point, no two scrapes): no
    // counter has energy there, yet every node and pod with a live row in it gets a row.
    let short = format!("start={}.800&end={}.200", end / 1000 - 1, end / 1000);
    for (path, key, truth) in [
        (
            "/energy/nodes",
            "instance",
            stack.scenario.expected_nodes(10.0).len(),
        ),
        (
            "/energy/pods",
            "name",
            stack.scenario.expected_pods(NAMESPACE).len(),
        ),
    ] {
        let t = table(&agent, &format!("{path}?{short}"));
        assert_eq!(t.rows.len(), truth, "{path}: {:?}", t.rows);
        // On Prometheus counters need two samples in the window, so they are empty there and
        // only the live rows keep the rows (a gauge may have one sample in it).
        // VictoriaMetrics' increase counts from the sample before the window (docs/engines.md).
        let counters = ["cpu_seconds", "kepler_joules"].map(|c| t.column(c).expect(c));
        for row in &t.rows {
            assert!(!row[t.column(key).expect(key)].is_empty(), "{row:?}");
            if engine == Engine::Prometheus {
                assert!(
                    counters.iter().all(|c| row[*c].is_empty()),
                    "{path}: {row:?}"
                );
            }
        }
    }
    // An end a little ahead of the agent's clock is the agent's now; further ahead is a 400
    // that shows the agent's clock.
    let now = support::cluster::now_ms() / 1000;
    let ahead = table(
        &agent,
        &format!("/energy/nodes?start={}&end={}", now - 10, now + 1),
    );
    let end_column = ahead.column("end").expect("end");
    for row in &ahead.rows {
        let end = support::table::parse_rfc3339_ms(&row[end_column]).expect("end");
        assert!(end <= support::cluster::now_ms(), "{row:?}");
    }
    let (status, body) = support::prometheus::curl_status(&format!(
        "{}/energy/nodes?start={}&end={}",
        agent.url(),
        now - 10,
        now + 30
    ));
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("ahead of the agent's clock") && body.contains("agent clock 20"),
        "{body}"
    );
}

/// `websocat -U url` in the background; [`Background::stop`] gives what it captured.
struct Background(Child);

impl Background {
    fn start(url: &str) -> Background {
        let child = Command::new("websocat")
            .args(["-U", url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start websocat (scripts/setup installs it)");
        Background(child)
    }

    fn stop(mut self) -> String {
        let _ = self.0.kill();
        let output = self.0.wait_with_output().expect("websocat output");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// `websocat` capturing `url` for `duration`; the captured text.
fn capture_for(url: &str, duration: Duration) -> String {
    let capture = Background::start(url);
    std::thread::sleep(duration);
    capture.stop()
}

#[test]
fn a_resumed_stream_gets_every_missed_cycle_exactly_once_on_prometheus() {
    resumed_stream(Engine::Prometheus);
}

#[test]
fn a_resumed_stream_gets_every_missed_cycle_exactly_once_on_victoria_metrics() {
    resumed_stream(Engine::VictoriaMetrics);
}

/// Cycles the agent says it did not run: ticks skipped after an overrun, and failed cycles.
fn cycles_not_run(agent: &Agent) -> f64 {
    agent.figure("prometheus_agent_ticks_missed_total")
        + agent.figure("prometheus_agent_cycle_errors_total")
}

/// A stream client captures 3.5 s, leaves for 5 s (beyond the one-cycle buffer) and resumes
/// with `since`, as the README's one-liner does: together the two captures hold every cycle
/// exactly once. Every cycle: every grid point the agent ran live (a witness stream, connected
/// all along, shows which; the live schedule skips a grid point a cycle overran, and
/// `/agent/metrics` counts those), and, before the resumed stream's buffered cycle, every grid
/// point, from history.
fn resumed_stream(engine: Engine) {
    const INTERVAL_MS: i64 = 1000;
    let stack = Stack::on(engine, Convention::A);
    // The buffer holds one cycle of three nodes: a gap of a few seconds is beyond it.
    let agent = stack.agent("1s", &[("BUFFER_SIZE", "3")]);
    let ws = agent.url().replace("http://", "ws://");
    let witness = Background::start(&format!("{ws}/metrics"));
    // Connected before the first capture, so it has every cycle that one has.
    wait_for(Duration::from_secs(30), || {
        (agent.figure("prometheus_agent_streams_open") == 1.0).then_some(())
    })
    .unwrap_or_else(|| panic!("the witness stream did not open:\n{}", agent.log()));
    let first = capture_for(&format!("{ws}/metrics"), Duration::from_millis(3500));
    let first = Table::parse(&first).expect("first capture");
    // Resume after the last complete cycle, as the README's one-liner does.
    let last = first.rows.last().expect("rows captured")[1].clone();
    std::thread::sleep(Duration::from_secs(5));
    let resumed_at = support::cluster::now_ms();
    let resumed = capture_for(
        &format!("{ws}/metrics?since={last}"),
        Duration::from_millis(2500),
    );
    let witness = Table::parse(&witness.stop()).expect("witness capture");
    // Counted since the agent started: a tick skipped right after its first cycle may
    // precede the witness's first cycle.
    let not_run = cycles_not_run(&agent);
    let resumed = Table::parse(&resumed).expect("resumed capture");
    assert_eq!(resumed.header, first.header);

    let (first, resumed, witness) = (cycles(&first), cycles(&resumed), cycles(&witness));
    let times = |c: &BTreeMap<i64, Vec<Vec<String>>>| c.keys().copied().collect::<Vec<i64>>();
    let (f, r, w) = (times(&first), times(&resumed), times(&witness));
    let skipped_live = grid_gaps(&w, INTERVAL_MS);
    let overruns: Vec<String> = agent
        .full_log()
        .lines()
        .filter(|l| l.contains("overran") || l.contains("cycle skipped"))
        .map(str::to_string)
        .collect();
    let context = format!(
        "first capture {f:?}\nresumed capture (since {last}, started at {resumed_at}) {r:?}\n\
         witness stream {w:?}\nthe witness lacks {skipped_live:?}; /agent/metrics counts \
         {not_run} cycle(s) not run (prometheus_agent_ticks_missed_total + \
         prometheus_agent_cycle_errors_total); log: {overruns:?}"
    );
    assert!(
        skipped_live.len() as f64 <= not_run,
        "the agent ran no cycle at {skipped_live:?} but reports only {not_run} not run\n{context}"
    );
    eprintln!(
        "{}: resumed stream, witness lacks {skipped_live:?}, {not_run} cycle(s) not run by \
         /agent/metrics",
        engine.name()
    );
    let problems = resume_problems(&f, &r, &witness, resumed_at, INTERVAL_MS);
    assert!(
        problems.is_empty(),
        "{}\n{context}\n{}",
        problems.join("\n"),
        agent.log()
    );
    assert!(f.len() + r.len() >= 10, "{context}");
    for (t, rows) in first.iter().chain(&resumed) {
        let mut names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["worker-1", "worker-2", "worker-3"],
            "cycle {t} not exactly once"
        );
    }
    assert!(
        agent.full_log().contains("resuming from history"),
        "{}",
        agent.log()
    );
}

/// Grid points missing between the first and the last of `times`.
fn grid_gaps(times: &[i64], interval: i64) -> Vec<i64> {
    let mut gaps = Vec::new();
    for pair in times.windows(2) {
        gaps.extend((pair[0] + interval..pair[1]).step_by(interval as usize));
    }
    gaps
}

/// What the two captures got wrong, measured against the witness stream `witness` (every
/// cycle the agent ran live, with its collection time) and the grid.
fn resume_problems(
    first: &[i64],
    resumed: &[i64],
    witness: &BTreeMap<i64, Vec<Vec<String>>>,
    resumed_at: i64,
    interval: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let ran = |t: &i64| witness.contains_key(t);
    let (Some(&first_from), Some(&first_to)) = (first.first(), first.last()) else {
        return vec!["the first capture got no cycle".into()];
    };
    let Some(&resumed_to) = resumed.last() else {
        return vec!["the resumed capture got no cycle".into()];
    };
    if resumed[0] <= first_to {
        problems.push(format!("the resumed capture repeats {:?}", &resumed[..1]));
    }
    let lacked: Vec<i64> = witness
        .range(first_from..=first_to)
        .map(|(t, _)| *t)
        .filter(|t| !first.contains(t))
        .collect();
    if !lacked.is_empty() {
        problems.push(format!(
            "the first capture lacked {lacked:?}, which the agent ran live (the witness has them)"
        ));
    }
    let never_ran: Vec<i64> = first.iter().copied().filter(|t| !ran(t)).collect();
    if !never_ran.is_empty() {
        problems.push(format!(
            "the first capture has {never_ran:?}, which the witness never got"
        ));
    }
    // Every grid point after the first capture up to the end of the resumed one.
    let missing: Vec<i64> = (first_to + interval..=resumed_to)
        .step_by(interval as usize)
        .filter(|t| !resumed.contains(t))
        .collect();
    let lacked_live: Vec<i64> = missing.iter().copied().filter(|t| ran(t)).collect();
    if !lacked_live.is_empty() {
        problems.push(format!(
            "the resumed capture lacked {lacked_live:?}, which the agent ran live"
        ));
    }
    // A grid point the agent skipped comes from history if a later cycle was already
    // buffered when the stream resumed: one followed by a cycle that started before then.
    let collected =
        |t: i64| -> i64 { parse_rfc3339_ms(&witness[&t][0][1]).expect("collection time") };
    let from_history: Vec<i64> = missing
        .iter()
        .copied()
        .filter(|t| !ran(t))
        .filter(|t| {
            let mut later = witness.range(t + 1..).map(|(t, _)| *t);
            later.next().is_some() && later.next().is_some_and(|z| collected(z) <= resumed_at)
        })
        .collect();
    if !from_history.is_empty() {
        problems.push(format!(
            "the resumed capture lacked {from_history:?}: the agent had skipped them live, but \
             they lie before the cycle it had buffered, so history must give them"
        ));
    }
    problems
}

/// The resume check itself, on made-up captures: skipped ticks pass where the agent skipped
/// them live, every other gap is named.
#[test]
fn resume_problems_tell_skipped_ticks_from_lost_cycles() {
    // The witness: cycles at these seconds, each collected 100 ms after its grid point.
    let witness = |seconds: &[i64]| -> BTreeMap<i64, Vec<Vec<String>>> {
        seconds
            .iter()
            .map(|s| {
                let collected = support::cluster::rfc3339(s * 1000 + 100);
                (s * 1000, vec![vec!["worker-1".to_string(), collected]])
            })
            .collect()
    };
    let ms = |seconds: &[i64]| seconds.iter().map(|s| s * 1000).collect::<Vec<i64>>();
    let problems = |first: &[i64], resumed: &[i64], ran: &[i64], resumed_at: i64| {
        resume_problems(
            &ms(first),
            &ms(resumed),
            &witness(ran),
            resumed_at * 1000,
            1000,
        )
    };
    let all: Vec<i64> = (10..=30).collect();
    // Nothing skipped, nothing lost.
    assert!(problems(&[10, 11, 12], &(13..=30).collect::<Vec<_>>(), &all, 25).is_empty());
    // Skipped live at 11 (in the first capture) and at 28 (after the resume began): fine.
    let ran: Vec<i64> = all
        .iter()
        .copied()
        .filter(|s| ![11, 28].contains(s))
        .collect();
    let resumed: Vec<i64> = (13..=30).filter(|s| *s != 28).collect();
    assert!(problems(&[10, 12], &resumed, &ran, 25).is_empty());
    // A cycle the agent ran, lost by a capture.
    let lost = problems(&[10, 12], &(13..=30).collect::<Vec<_>>(), &all, 25);
    assert!(lost[0].contains("first capture lacked [11000]"), "{lost:?}");
    let lost = problems(&[10, 11, 12], &[13, 14, 16, 17], &all, 25);
    assert!(
        lost[0].contains("resumed capture lacked [15000]"),
        "{lost:?}"
    );
    // Skipped live at 15, long before the resume at 25: history must have given it.
    let ran: Vec<i64> = all.iter().copied().filter(|s| *s != 15).collect();
    let lost = problems(&[10, 11, 12], &[13, 14, 16, 17], &ran, 25);
    assert!(
        lost[0].contains("[15000]: the agent had skipped them live"),
        "{lost:?}"
    );
    // A repeat.
    let lost = problems(&[10, 11, 12], &[12, 13], &all, 25);
    assert!(lost[0].contains("repeats"), "{lost:?}");
}

#[test]
fn observation_times_stay_on_the_grid_across_a_restart() {
    let stack = Stack::start(Convention::A);
    let mut times = Vec::new();
    for _ in 0..2 {
        let agent = stack.agent("700ms", &[]);
        let nodes = wait_for(Duration::from_secs(30), || {
            let t = table(&agent, "/nodes");
            (cycles(&t).len() >= 3).then_some(t)
        })
        .expect("three cycles");
        times.extend(cycles(&nodes).into_keys());
    }
    assert!(
        times.iter().all(|t| t % 700 == 0),
        "off the grid: {times:?}"
    );
}

/// A capture resumed from an agent restarted within one interval: the new agent evaluates the
/// old agent's last grid point again, and the resumed stream must not repeat that cycle.
#[test]
fn a_stream_resumed_across_a_restart_repeats_no_cycle() {
    const INTERVAL_MS: i64 = 10_000;
    let stack = Stack::start(Convention::A);
    // Start just after the next grid point (the stack has data there), so both agents' first
    // cycles evaluate that point.
    let into = support::cluster::now_ms() % INTERVAL_MS;
    std::thread::sleep(Duration::from_millis((INTERVAL_MS - into + 200) as u64));
    let nodes_of = |agent: &Agent| {
        wait_for(Duration::from_secs(5), || {
            let t = table(agent, "/nodes");
            (!t.rows.is_empty()).then_some(t)
        })
        .unwrap_or_else(|| panic!("no rows:\n{}", agent.log()))
    };
    let mut old = stack.agent("10s", &[]);
    let before = nodes_of(&old);
    let grid: Vec<i64> = cycles(&before).into_keys().collect();
    let last = before.rows.last().expect("rows")[1].clone();
    let (status, _) = old.signal_and_wait("TERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "agent exit");
    drop(old);

    let new = stack.agent("10s", &[]);
    let again = nodes_of(&new);
    assert_eq!(
        cycles(&again).into_keys().collect::<Vec<_>>(),
        grid,
        "the restarted agent's first cycle is not the old one's grid point"
    );
    let ws = new.url().replace("http://", "ws://");
    let resumed = capture_for(
        &format!("{ws}/metrics/nodes?since={last}"),
        Duration::from_millis(1500),
    );
    let resumed = Table::parse(&resumed).expect("resumed capture");
    assert_eq!(resumed.header, before.header);
    assert!(resumed.rows.is_empty(), "repeated: {:?}", resumed.rows);
    assert!(table(&new, &format!("/nodes?since={last}")).rows.is_empty());
    // The cycle is there for a client that has not seen it.
    let earlier = format!("{}.999", grid[0] / 1000 - 1);
    assert_eq!(
        table(&new, &format!("/nodes?since={earlier}")).rows,
        again.rows
    );
}

#[test]
fn bad_requests_get_400_and_a_third_concurrent_request_503() {
    let stack = Stack::start(Convention::A);
    let agent = stack.agent("1s", &[]);
    let now = support::cluster::now_ms() / 1000;
    for path in [
        format!("/nodes?start={now}&size=3"),
        format!("/pods?start={now}&since={now}"),
        format!("/nodes?start={}&end={}", now, now - 10),
        format!("/nodes?start={now}&end={}", now + 3600),
        format!("/nodes?start={}&step=1s", now - 200_000),
        format!("/nodes?start={now}&step=0.1"),
        "/nodes?start=yesterday".to_string(),
        format!("/nodes?end={now}"),
        "/energy/nodes".to_string(),
        format!("/energy/pods?start={now}&end={now}"),
        format!("/energy?start={}&end={}", now - 60, now + 60),
        format!("/energy?start={now}&step=1s"),
        "/metrics?since=1".to_string(),
    ] {
        let (status, body) = curl_status(&format!("{}{path}", agent.url()));
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body.trim_end().lines().count(), 1, "{path}: {body:?}");
    }
    // Two history downloads hold both places, so a third request gets 503. Their clients
    // prove it: each has its 200 (a place taken: the first chunk is computed before the
    // status line) and has read so little of its long answer that the export is still
    // running (the answer far exceeds the socket buffers plus the chunk in hand).
    const NAME_BYTES: usize = 300;
    const STEPS: i64 = 10_000;
    let dir = TempDir::new("big-rows");
    let queries = dir.path().join("queries.json");
    // One row per step whatever the span, with a long node name.
    let name = format!("slow-{}", "x".repeat(NAME_BYTES - 5));
    std::fs::write(
        &queries,
        format!(
            r#"{{"nodes": {{"cpu_usage": "label_replace(vector(1), \"node\", \"{name}\", \"\", \"\")"}}}}"#
        ),
    )
    .expect("queries file");
    let big = stack.agent("1s", &[("QUERIES_FILE", &queries.to_string_lossy())]);
    let addr: std::net::SocketAddr = big
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    // Settled steps well before the stack started: range queries, one row each.
    let end = now - 120;
    let request = format!(
        "GET /nodes?start={}&end={end}&step=1s HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        end - STEPS + 1
    );
    let answer_bytes = STEPS as usize * (NAME_BYTES + 50);
    // Kernel buffers on both sides (the agent's send buffer is 64 KiB, doubled), the chunk
    // of 1,000 rows the export holds, and slack.
    let in_transit = 1 << 20;
    let slow: Vec<SlowReader> = (0..2).map(|_| SlowReader::start(addr, &request)).collect();
    for client in &slow {
        let head = client.head(Duration::from_secs(60));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", big.log());
    }
    let (status, body) = curl_status(&format!("{}/energy?start={}", big.url(), now - 10));
    let received: Vec<usize> = slow.iter().map(SlowReader::received).collect();
    eprintln!("history clients had read {received:?} of at least {answer_bytes} bytes each");
    assert!(
        received.iter().all(|r| r + in_transit < answer_bytes),
        "the history clients received {received:?} of at least {answer_bytes} bytes each: \
         their exports may have ended"
    );
    assert_eq!(
        status,
        503,
        "third request while two history exports run: {body}\n{}",
        big.log()
    );
    assert!(body.contains("at most 2"), "{body}");
}

/// A client that sends `request`, then reads its answer slowly (1 KiB every 50 ms through a
/// small receive buffer): the agent's writes never wait long enough to time out, and an
/// answer of megabytes lasts minutes.
struct SlowReader {
    state: std::sync::Arc<std::sync::Mutex<(String, usize)>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowReader {
    fn start(addr: std::net::SocketAddr, request: &str) -> SlowReader {
        use std::io::{Read, Write};
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        let mut stream: std::net::TcpStream = socket.into();
        stream.write_all(request.as_bytes()).expect("request");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let state = std::sync::Arc::new(std::sync::Mutex::new((String::new(), 0)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                let mut head = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match stream.read(&mut buffer) {
                        Ok(0) => return,
                        Ok(n) => {
                            let mut state = state.lock().expect("state");
                            state.1 += n;
                            if state.0.is_empty() {
                                head.extend_from_slice(&buffer[..n]);
                                let text = String::from_utf8_lossy(&head);
                                if let Some((line, _)) = text.split_once("\r\n") {
                                    state.0 = line.to_string();
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return,
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        SlowReader {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The status line, once it has arrived.
    fn head(&self, timeout: Duration) -> String {
        wait_for(timeout, || {
            let state = self.state.lock().expect("state");
            (!state.0.is_empty()).then(|| state.0.clone())
        })
        .unwrap_or_else(|| "no status line".to_string())
    }

    fn received(&self) -> usize {
        self.state.lock().expect("state").1
    }
}

impl Drop for SlowReader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
