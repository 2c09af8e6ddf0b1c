//! Where a real VictoriaMetrics answers the agent's PromQL differently from a
//! real Prometheus, and what makes both give the same rows (docs/engines.md).
//!
//! Each engine scrapes its own synthetic exporter (same scenario, so the same
//! truth); every sample carries the exporter's millisecond timestamp, so the
//! exporter's list of scrape times is exactly the list of stored samples.
//!
//! Needs /usr/bin/prometheus and /usr/bin/victoria-metrics (`scripts/setup`
//! installs both) and curl.

mod support;

use std::time::Duration;

use support::cluster::{Convention, Meter, NAMESPACE, NODE_COLUMNS, POD_COLUMNS, Scenario, now_ms};
use support::engine::{Engine, NOCACHE, Server, WithParams, time_param};
use support::prometheus::wait_for;
use support::promql::{NODE_QUERIES, POD_QUERIES, Rows, tables_with};
use support::stack::Stack;
use support::table::{compare, window_fully_covered};
use support::victoria::VictoriaMetrics;

/// The agent's WINDOW in these tests.
const WINDOW: &str = "10s";
const WINDOW_MS: i64 = 10_000;

/// Relative tolerance of relations that hold exactly up to float rounding (a
/// millisecond of scrape jitter in a 10 s window is 1e-4).
const RELATION: f64 = 1e-7;

/// VictoriaMetrics' default `-search.latencyOffset`.
const LATENCY_OFFSET_MS: i64 = 30_000;

/// The recommended `network_usage` default: `increase(x[w])` becomes
/// `rate(x[w]) * {ws}`, `{ws}` being the window in seconds.
const NETWORK_USAGE_BY_RATE: &str = r#"sum by (node, instance) (rate(node_network_receive_bytes_total{device!~"{phys}"}[{w}]) + rate(node_network_transmit_bytes_total{device!~"{phys}"}[{w}])) * {ws}"#;

/// The default node queries with the recommended `network_usage`, for a window of
/// `window_secs` seconds.
fn recommended_node_queries(window_secs: &str) -> Vec<(&'static str, String)> {
    NODE_QUERIES
        .iter()
        .map(|&(column, query)| {
            let query = if column == "network_usage" {
                NETWORK_USAGE_BY_RATE.replace("{ws}", window_secs)
            } else {
                query.to_string()
            };
            (column, query)
        })
        .collect()
}

fn borrowed<'a>(queries: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    queries.iter().map(|(c, q)| (*c, q.as_str())).collect()
}

/// Both engines, each scraping its own exporter.
struct Engines {
    prometheus: Stack,
    victoria: Stack,
}

impl Engines {
    fn start(convention: Convention) -> Engines {
        Engines {
            prometheus: Stack::on(Engine::Prometheus, convention),
            victoria: Stack::on(Engine::VictoriaMetrics, convention),
        }
    }

    fn both(&self) -> [&Stack; 2] {
        [&self.prometheus, &self.victoria]
    }
}

/// A time at which `stack`'s engine has a full `window_ms` of samples behind
/// it, half a second after a scrape, asked for once that scrape is searchable
/// (VictoriaMetrics makes new samples searchable about once a second).
/// Prometheus also needs samples near both ends of the window to extrapolate
/// exactly.
fn settled_time(stack: &Stack, window_ms: i64) -> i64 {
    wait_for(Duration::from_secs(120), || {
        let scrapes = stack.exporter.scrape_times();
        let first = *scrapes.first()?;
        let time = sample_at_or_before(&scrapes, now_ms() - 3_000)? + 500;
        let covered = match stack.server.engine() {
            Engine::Prometheus => window_fully_covered(&scrapes, time, window_ms),
            Engine::VictoriaMetrics => true,
        };
        (time >= first + window_ms + 2_000 && covered).then_some(time)
    })
    .unwrap_or_else(|| {
        panic!(
            "{} never had a full window:\n{}",
            stack.server.engine().name(),
            stack.server.log()
        )
    })
}

/// Waits until `stack`'s exporter has been scraped for `elapsed_ms`.
fn wait_scraped_for(stack: &Stack, elapsed_ms: i64) -> i64 {
    let first = wait_for(Duration::from_secs(10), || {
        stack.exporter.scrape_times().first().copied()
    })
    .expect("the exporter was never scraped");
    let until = first + elapsed_ms;
    while now_ms() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    first
}

/// Bytes per second worker-1 receives on eth0 in `scenario`.
fn eth0_receive_rate(scenario: &Scenario) -> f64 {
    scenario
        .nodes
        .iter()
        .find(|n| n.name == "worker-1")
        .and_then(|n| n.net.iter().find(|(device, _, _)| *device == "eth0"))
        .map(|(_, rx, _)| *rx)
        .expect("worker-1 eth0")
}

/// The one value of a query expected to give exactly one series.
fn single(server: &Server, query: &str, time_ms: i64) -> f64 {
    let result = server
        .query_with(query, time_ms, NOCACHE)
        .unwrap_or_else(|e| panic!("{}: {e}", server.engine().name()));
    match result.as_slice() {
        [one] => one["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{}: no number in {one}", server.engine().name())),
        other => panic!(
            "{}: {query} at {time_ms} gave {} series: {other:?}",
            server.engine().name(),
            other.len()
        ),
    }
}

/// The newest sample at or before `time_ms`.
fn sample_at_or_before(samples: &[i64], time_ms: i64) -> Option<i64> {
    samples.iter().copied().filter(|&s| s <= time_ms).max()
}

/// A number rounded to 10 significant digits, as the agent prints it.
fn ten_digits(value: f64) -> String {
    let rounded: f64 = format!("{value:.9e}").parse().unwrap_or(f64::NAN);
    format!("{rounded}")
}

fn rounded(rows: &Rows) -> Rows {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell.parse::<f64>() {
                    Ok(v) if !cell.is_empty() => ten_digits(v),
                    _ => cell.clone(),
                })
                .collect()
        })
        .collect()
}

fn header(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

/// The default queries, with `network_usage` as `rate(x[w]) * {ws}`, give the
/// truth on both engines, and on Prometheus the very same rows as the current
/// `increase` form. On VictoriaMetrics, `increase(x[w])` is the growth from the
/// last sample before the window to the last one inside it, not the growth
/// extrapolated to the window: every other column already agrees.
fn default_queries_agree(convention: Convention) {
    let engines = Engines::start(convention);
    let recommended = recommended_node_queries("10");
    let recommended = borrowed(&recommended);
    for stack in engines.both() {
        let engine = stack.server.engine().name();
        let time_ms = settled_time(stack, WINDOW_MS);
        let server = WithParams {
            server: &stack.server,
            params: NOCACHE,
        };
        let (nodes, pods) = tables_with(
            &server,
            &recommended,
            &POD_QUERIES,
            NAMESPACE,
            WINDOW,
            time_ms,
        )
        .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let mut problems = compare(
            "nodes",
            "instance",
            &stack.scenario.expected_nodes(WINDOW_MS as f64 / 1000.0),
            &header(&NODE_COLUMNS),
            &nodes,
        );
        problems.extend(compare(
            "pods",
            "name",
            &stack.scenario.expected_pods(NAMESPACE),
            &header(&POD_COLUMNS),
            &pods,
        ));
        assert!(
            problems.is_empty(),
            "{engine}, convention {}: the recommended queries disagree with the truth at {time_ms}:\n  {}\nnodes: {nodes:?}\npods: {pods:?}",
            convention.describe(),
            problems.join("\n  ")
        );

        let (default_nodes, _) =
            tables_with(&server, &NODE_QUERIES, &[], NAMESPACE, WINDOW, time_ms)
                .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let network_at = NODE_COLUMNS
            .iter()
            .position(|c| *c == "network_usage")
            .expect("network_usage column");
        match stack.server.engine() {
            Engine::Prometheus => {
                assert_eq!(
                    rounded(&default_nodes),
                    rounded(&nodes),
                    "Prometheus: increase(x[w]) and rate(x[w]) * w give different rows"
                );
            }
            Engine::VictoriaMetrics => {
                // Every column but network_usage is the same either way.
                let without_network = |rows: &Rows| -> Rows {
                    rounded(rows)
                        .into_iter()
                        .map(|mut row| {
                            row.remove(network_at);
                            row
                        })
                        .collect()
                };
                assert_eq!(without_network(&default_nodes), without_network(&nodes));
                // increase(): the growth between the last sample at or before
                // the window's start and the last sample inside it.
                let samples = stack.exporter.scrape_times();
                let end = sample_at_or_before(&samples, time_ms).expect("a sample");
                let before = sample_at_or_before(&samples, time_ms - WINDOW_MS).expect("a sample");
                let span_secs = (end - before) as f64 / 1000.0;
                for (row, rate_row) in default_nodes.iter().zip(&nodes) {
                    let increase: f64 = row[network_at].parse().expect("network_usage");
                    let per_second = rate_row[network_at].parse::<f64>().expect("network_usage")
                        / (WINDOW_MS as f64 / 1000.0);
                    let expected = per_second * span_secs;
                    assert!(
                        (increase - expected).abs() <= RELATION * expected,
                        "VictoriaMetrics: increase {increase} for {}, expected rate x {span_secs} s = {expected}",
                        row[0]
                    );
                }
                eprintln!(
                    "VictoriaMetrics at {time_ms}: increase(x[10s]) spans {span_secs} s of samples: {:?} vs rate(x[10s]) * 10: {:?}",
                    default_nodes
                        .iter()
                        .map(|r| r[network_at].as_str())
                        .collect::<Vec<_>>(),
                    nodes
                        .iter()
                        .map(|r| r[network_at].as_str())
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn convention_a_default_queries_agree_with_rate_times_window() {
    default_queries_agree(Convention::A);
}

#[test]
fn convention_b_default_queries_agree_with_rate_times_window() {
    default_queries_agree(Convention::B);
}

/// `increase()` over a window that is not a whole number of scrape intervals:
/// Prometheus extrapolates to the window, VictoriaMetrics counts whole
/// intervals; `rate() * seconds` is the same on both.
#[test]
fn increase_over_a_window_of_three_and_a_half_scrape_intervals() {
    let engines = Engines::start(Convention::A);
    let series = r#"node_network_receive_bytes_total{instance="192.0.2.11:9100", device="eth0"}"#;
    let per_second = eth0_receive_rate(&engines.prometheus.scenario);
    for stack in engines.both() {
        let time_ms = settled_time(stack, 3_500);
        let increase = single(
            &stack.server,
            &format!("increase({series}[3500ms])"),
            time_ms,
        );
        let by_rate = single(
            &stack.server,
            &format!("rate({series}[3500ms]) * 3.5"),
            time_ms,
        );
        let truth = per_second * 3.5;
        assert!(
            (by_rate - truth).abs() <= RELATION * truth,
            "{}: rate * 3.5 = {by_rate}, truth {truth}",
            stack.server.engine().name()
        );
        match stack.server.engine() {
            Engine::Prometheus => assert!(
                (increase - truth).abs() <= RELATION * truth,
                "Prometheus: increase {increase}, truth {truth}"
            ),
            Engine::VictoriaMetrics => {
                let samples = stack.exporter.scrape_times();
                let end = sample_at_or_before(&samples, time_ms).expect("a sample");
                let before = sample_at_or_before(&samples, time_ms - 3_500).expect("a sample");
                let expected = per_second * (end - before) as f64 / 1000.0;
                assert!(
                    (increase - expected).abs() <= RELATION * expected,
                    "VictoriaMetrics: increase {increase}, expected {expected} ({} ms of samples)",
                    end - before
                );
                eprintln!(
                    "VictoriaMetrics: increase(x[3500ms]) = {increase} ({} ms of samples), truth {truth}",
                    end - before
                );
            }
        }
    }
}

/// Instant queries close to now: VictoriaMetrics answers from 30 s earlier
/// (`-search.latencyOffset`) unless the query says `nocache=1`; Prometheus
/// ignores the parameter. `time=` with milliseconds is exact on both.
#[test]
fn instant_queries_near_now_and_millisecond_times() {
    let engines = Engines::start(Convention::A);
    let series = r#"node_procs_running{instance="192.0.2.11:9100"}"#;
    let stamp = format!("timestamp({series})");
    // VictoriaMetrics' plain answer near now needs 30 s of data.
    wait_scraped_for(&engines.victoria, LATENCY_OFFSET_MS + 3_000);
    for stack in engines.both() {
        let engine = stack.server.engine();
        let asked = now_ms();
        let freshest = sample_at_or_before(&stack.exporter.scrape_times(), asked - 500)
            .expect("a sample half a second old");
        let plain = stack.server.query(&stamp, asked).expect("plain query");
        let nocache = stack
            .server
            .query_with(&stamp, asked, NOCACHE)
            .expect("nocache query");
        let answered = now_ms();
        let sample_time = |result: &[serde_json::Value]| -> i64 {
            let value = result
                .first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{}: no sample in {result:?}", engine.name()));
            (value * 1000.0).round() as i64
        };
        let with_nocache = sample_time(&nocache);
        assert!(
            with_nocache >= freshest,
            "{}: nocache=1 answered from the sample of {with_nocache}, older than {freshest}",
            engine.name()
        );
        let without = sample_time(&plain);
        match engine {
            Engine::Prometheus => assert_eq!(without, with_nocache, "Prometheus ignores nocache"),
            Engine::VictoriaMetrics => {
                assert!(
                    without <= answered - LATENCY_OFFSET_MS,
                    "VictoriaMetrics answered time={asked} from the sample of {without}, \
                     expected one at least 30 s older than {answered}"
                );
                eprintln!(
                    "VictoriaMetrics, time={asked}: without nocache the sample of {without} \
                     ({} ms older), with nocache=1 the sample of {with_nocache}",
                    asked - without
                );
            }
        }

        // time= in Unix seconds with three decimals selects exactly that millisecond.
        let samples = stack.exporter.scrape_times();
        let at = sample_at_or_before(&samples, asked - 2_000).expect("a sample");
        let previous = sample_at_or_before(&samples, at - 1).expect("an earlier sample");
        for (time, expected) in [(at, at), (at - 1, previous)] {
            let got = sample_time(
                &stack
                    .server
                    .query_with(&stamp, time, NOCACHE)
                    .expect("query"),
            );
            assert_eq!(
                got,
                expected,
                "{}: time={} selected the sample of {got}",
                engine.name(),
                time_param(time)
            );
        }
    }

    // A NaN is a value on Prometheus and no value on VictoriaMetrics: `or`
    // falls through to its right side there.
    let nan_or = format!("({series} - {series}) / ({series} - {series}) or {series}");
    let time_ms = now_ms() - 2_000;
    let answer = |stack: &Stack| -> Vec<String> {
        stack
            .server
            .query_with(&nan_or, time_ms, NOCACHE)
            .expect("query")
            .iter()
            .filter_map(|s| s["value"][1].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(answer(&engines.prometheus), ["NaN"]);
    assert_eq!(answer(&engines.victoria), ["3"]);
}

/// `query_range`: points at `start + k * step` on both engines when
/// VictoriaMetrics gets `nocache=1` (without it, answers of 50 points or more
/// move to multiples of `step`); each point equals the instant query at its
/// time; and VictoriaMetrics repeats, for points younger than 30 s, the last
/// older point, with or without `nocache=1`.
fn query_range_steps_and_recent_points(engines: &Engines) {
    let series = r#"node_procs_running{instance="192.0.2.11:9100"}"#;
    let first = wait_scraped_for(&engines.victoria, 58_000)
        .max(wait_scraped_for(&engines.prometheus, 58_000));
    let points = |result: &[serde_json::Value]| -> Vec<(i64, String)> {
        result
            .first()
            .and_then(|s| s["values"].as_array())
            .map(|values| {
                values
                    .iter()
                    .filter_map(|p| {
                        let t = p[0].as_f64()?;
                        Some(((t * 1000.0).round() as i64, p[1].as_str()?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    // Step alignment, on a start 137 ms past a multiple of the step.
    let step = 250;
    let start = (first + 2_000) / step * step + step + 137;
    for count in [20, 60] {
        let end = start + (count - 1) * step;
        let requested: Vec<i64> = (0..count).map(|k| start + k * step).collect();
        for stack in engines.both() {
            let engine = stack.server.engine();
            let nocache = stack
                .server
                .query_range_with(series, start, end, step, NOCACHE)
                .expect("query_range");
            let plain = stack
                .server
                .query_range(series, start, end, step)
                .expect("query_range");
            let times =
                |r: &[serde_json::Value]| points(r).into_iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(
                times(&nocache),
                requested,
                "{}: nocache=1, {count} points",
                engine.name()
            );
            let expected_plain: Vec<i64> = match engine {
                Engine::VictoriaMetrics if count >= 50 => {
                    requested.iter().map(|t| t - start % step).collect()
                }
                _ => requested.clone(),
            };
            assert_eq!(
                times(&plain),
                expected_plain,
                "{}: {count} points",
                engine.name()
            );
        }
    }

    // Each point of a range answer equals the instant query at its time, for
    // every default query (the recommended network_usage), both engines.
    let recommended = recommended_node_queries("10");
    let queries: Vec<String> = recommended
        .iter()
        .map(|(_, q)| q.clone())
        .chain(POD_QUERIES.iter().map(|(_, q)| q.to_string()))
        .map(|q| support::promql::render(&q, NAMESPACE, WINDOW))
        .collect();
    let step = 1_000;
    let start = (first + WINDOW_MS + 3_000) / step * step + 137;
    let end = start + 9 * step;
    assert!(
        end < now_ms() - LATENCY_OFFSET_MS - 1_000,
        "range too recent"
    );
    for stack in engines.both() {
        let engine = stack.server.engine().name();
        for query in &queries {
            let range = stack
                .server
                .query_range_with(query, start, end, step, NOCACHE)
                .unwrap_or_else(|e| panic!("{engine}: {e}"));
            for k in 0..10 {
                let time = start + k * step;
                let mut from_range: Vec<(String, String)> = range
                    .iter()
                    .filter_map(|s| {
                        let value = s["values"].as_array()?.iter().find(|p| {
                            p[0].as_f64().map(|t| (t * 1000.0).round() as i64) == Some(time)
                        })?;
                        Some((
                            s["metric"].to_string(),
                            ten_digits(value[1].as_str()?.parse().ok()?),
                        ))
                    })
                    .collect();
                let mut instant: Vec<(String, String)> = stack
                    .server
                    .query_with(query, time, NOCACHE)
                    .unwrap_or_else(|e| panic!("{engine}: {e}"))
                    .iter()
                    .filter_map(|s| {
                        Some((
                            s["metric"].to_string(),
                            ten_digits(s["value"][1].as_str()?.parse().ok()?),
                        ))
                    })
                    .collect();
                from_range.sort();
                instant.sort();
                assert!(
                    !instant.is_empty(),
                    "{engine}: no answer at {time} for {query}"
                );
                assert_eq!(
                    from_range, instant,
                    "{engine}: range point at {time} for {query}"
                );
            }
        }
    }

    // Points younger than -search.latencyOffset: VictoriaMetrics repeats the
    // last older point, even with nocache=1.
    let stamp = format!("timestamp({series})");
    let end = now_ms() / 1000 * 1000;
    let start = end - 40_000;
    for stack in engines.both() {
        let engine = stack.server.engine();
        let range = stack
            .server
            .query_range_with(&stamp, start, end, 1_000, NOCACHE)
            .expect("query_range");
        let answered = now_ms();
        let recent: Vec<(i64, i64)> = points(&range)
            .into_iter()
            .filter(|(t, _)| *t > answered - LATENCY_OFFSET_MS + 5_000)
            .map(|(t, v)| {
                (
                    t,
                    (v.parse::<f64>().unwrap_or(f64::NAN) * 1000.0).round() as i64,
                )
            })
            .collect();
        assert!(
            recent.len() >= 20,
            "{}: recent points {recent:?}",
            engine.name()
        );
        for (time, sample) in &recent {
            match engine {
                Engine::Prometheus => assert!(
                    *sample > answered - LATENCY_OFFSET_MS,
                    "Prometheus: point {time} used the sample of {sample}"
                ),
                Engine::VictoriaMetrics => assert!(
                    *sample <= answered - LATENCY_OFFSET_MS,
                    "VictoriaMetrics: point {time} used the sample of {sample}, expected the last one 30 s before {answered}"
                ),
            }
        }
    }
}

/// Energy over long windows (README, "Energy per window"): `rate(c[N]) * N` and
/// `avg_over_time(g[N]) * N` give the truth on both engines; `increase(c[N])`
/// does on Prometheus and, on VictoriaMetrics, is off by at most one scrape
/// interval's worth. For a series that began inside the window, `rate * N`
/// counts the whole window on VictoriaMetrics; `increase` only what was measured.
fn energy_over_long_windows(engines: &Engines) {
    let scenario = &engines.prometheus.scenario;
    let worker_1 = scenario
        .nodes
        .iter()
        .find(|n| n.name == "worker-1")
        .expect("worker-1");
    let package_watts = worker_1.kepler.as_ref().expect("Kepler").zones.package;
    let Meter::Ipmi(ipmi_watts) = worker_1.meter else {
        panic!("worker-1 has an IPMI meter in convention A");
    };
    let counter = r#"kepler_node_package_joules_total{instance="worker-1"}"#;
    let gauge = "ipmi_dcmi_power_consumption_watts";

    // A window that began before the first sample: 60 s ending 20 s after it.
    for stack in engines.both() {
        let engine = stack.server.engine();
        let first = wait_scraped_for(stack, 22_000);
        let time = first + 20_000;
        let samples = stack.exporter.scrape_times();
        let last = sample_at_or_before(&samples, time).expect("a sample");
        let measured = package_watts * (last - first) as f64 / 1000.0;
        let increase = single(&stack.server, &format!("increase({counter}[60s])"), time);
        let by_rate = single(&stack.server, &format!("rate({counter}[60s]) * 60"), time);
        match engine {
            Engine::Prometheus => {
                // Extrapolated to the window's end and half an interval before
                // the first sample.
                let extrapolated = package_watts * ((time - first) as f64 / 1000.0 + 1.0);
                assert!(
                    increase >= measured && increase <= extrapolated,
                    "Prometheus: increase {increase}, measured {measured}"
                );
                assert!((by_rate - increase).abs() <= RELATION * increase);
            }
            Engine::VictoriaMetrics => {
                assert!(
                    (increase - measured).abs() <= RELATION * measured,
                    "VictoriaMetrics: increase {increase}, measured {measured}"
                );
                assert!(
                    (by_rate - package_watts * 60.0).abs() <= RELATION * by_rate,
                    "VictoriaMetrics: rate * 60 {by_rate}"
                );
            }
        }
        eprintln!(
            "{}: series began {} s before the end of a 60 s window: increase {increase}, rate * 60 {by_rate}, measured {measured}",
            engine.name(),
            (time - first) as f64 / 1000.0
        );
    }

    for stack in engines.both() {
        let engine = stack.server.engine();
        for window_ms in [60_000, 50_500] {
            let time = settled_time(stack, window_ms);
            let n = window_ms as f64 / 1000.0;
            let range = format!("[{window_ms}ms]");
            let increase = single(&stack.server, &format!("increase({counter}{range})"), time);
            let by_rate = single(
                &stack.server,
                &format!("rate({counter}{range}) * {n}"),
                time,
            );
            let average = single(
                &stack.server,
                &format!("avg_over_time({gauge}{range}) * {n}"),
                time,
            );
            let (joules, gauge_joules) = (package_watts * n, ipmi_watts * n);
            let relative = |got: f64, truth: f64| (got - truth).abs() / truth;
            assert!(
                relative(by_rate, joules) <= RELATION,
                "{}: rate * N {by_rate}, truth {joules}",
                engine.name()
            );
            assert!(
                relative(average, gauge_joules) <= RELATION,
                "{}: avg * N {average}, truth {gauge_joules}",
                engine.name()
            );
            match engine {
                Engine::Prometheus => assert!(
                    relative(increase, joules) <= RELATION,
                    "Prometheus: increase {increase}, truth {joules}"
                ),
                Engine::VictoriaMetrics => {
                    let samples = stack.exporter.scrape_times();
                    let end = sample_at_or_before(&samples, time).expect("a sample");
                    let before = sample_at_or_before(&samples, time - window_ms).expect("a sample");
                    let expected = package_watts * (end - before) as f64 / 1000.0;
                    assert!(
                        relative(increase, expected) <= RELATION,
                        "VictoriaMetrics: increase {increase}, expected {expected}"
                    );
                    // Within one scrape interval (plus jitter) of the truth.
                    assert!(
                        relative(increase, joules) <= 1.1 / n,
                        "VictoriaMetrics: increase {increase}, truth {joules}"
                    );
                }
            }
            eprintln!(
                "{}: {n} s window at {time}: increase {increase} ({:+.4} %), rate * N {by_rate}, avg * N {average}; truth {joules} and {gauge_joules}",
                engine.name(),
                (increase / joules - 1.0) * 100.0
            );
        }
    }
}

/// Both need a minute of samples, so they share one setup.
#[test]
fn query_range_and_energy_after_a_minute() {
    let engines = Engines::start(Convention::A);
    query_range_steps_and_recent_points(&engines);
    energy_over_long_windows(&engines);
}

/// A target that stops answering: its samples carry their own timestamps, so
/// neither engine writes staleness markers. Prometheus's `rate` shrinks as the
/// window passes the last sample, VictoriaMetrics' stays; an instant query
/// still shows the last gauge value for 5 minutes on both, but a
/// VictoriaMetrics range point only for five scrape intervals. This
/// VictoriaMetrics runs with `-search.latencyOffset=1s`: without `nocache=1`
/// it answers from one second back.
#[test]
fn series_that_stop_reporting() {
    let prometheus = Stack::on(Engine::Prometheus, Convention::A);
    let victoria = Stack::start_on(Scenario::new(Convention::A), |targets| {
        Server::VictoriaMetrics(VictoriaMetrics::start_with(
            targets,
            &["-search.latencyOffset=1s"],
        ))
    });
    let gauge = r#"node_procs_running{instance="192.0.2.11:9100"}"#;
    let counter = r#"node_network_receive_bytes_total{instance="192.0.2.11:9100", device="eth0"}"#;
    let per_second = eth0_receive_rate(&prometheus.scenario);
    wait_scraped_for(&victoria, WINDOW_MS + 4_000);
    wait_scraped_for(&prometheus, WINDOW_MS + 4_000);
    let stamp = format!("timestamp({gauge})");
    let sample_time = |server: &Server, time: i64, params: &[(&str, &str)]| -> Option<i64> {
        let result = server.query_with(&stamp, time, params).ok()?;
        let value = result.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
        Some((value * 1000.0).round() as i64)
    };

    // The one-second latency offset, while samples still arrive.
    let asked = now_ms();
    let freshest = sample_at_or_before(&victoria.exporter.scrape_times(), asked - 500)
        .expect("a sample half a second old");
    let plain = sample_time(&victoria.server, asked, &[]).expect("an answer");
    let nocache = sample_time(&victoria.server, asked, NOCACHE).expect("an answer");
    let answered = now_ms();
    assert!(
        plain <= answered - 1_000,
        "sample of {plain} for time={asked}"
    );
    assert!(
        nocache >= freshest,
        "sample of {nocache}, older than {freshest}"
    );

    let mut last = Vec::new();
    for stack in [prometheus, victoria] {
        let Stack {
            exporter, server, ..
        } = stack;
        drop(exporter);
        last.push(server);
    }
    std::thread::sleep(Duration::from_secs(2));
    let stopped: Vec<(Server, i64)> = last
        .into_iter()
        .map(|server| {
            let at = sample_time(&server, now_ms(), NOCACHE).expect("the last sample");
            (server, at)
        })
        .collect();
    let latest = stopped.iter().map(|(_, at)| *at).max().unwrap_or(0);
    while now_ms() < latest + WINDOW_MS + 2_000 {
        std::thread::sleep(Duration::from_millis(200));
    }

    for (server, last) in &stopped {
        let engine = server.engine();
        // The gauge, 8 s after its last sample: still there at an instant.
        let at = last + 8_000;
        assert_eq!(single(server, gauge, at), 3.0, "{}", engine.name());
        // rate() 3 s after the last sample.
        let rate = single(server, &format!("rate({counter}[10s])"), last + 3_000);
        match engine {
            Engine::Prometheus => assert!(
                rate < 0.9 * per_second,
                "Prometheus: rate {rate} 3 s after the last sample"
            ),
            Engine::VictoriaMetrics => assert!(
                (rate - per_second).abs() <= RELATION * per_second,
                "VictoriaMetrics: rate {rate} 3 s after the last sample"
            ),
        }
        // Once no sample is left in the window, nothing.
        let empty = server
            .query_with(&format!("rate({counter}[10s])"), last + 10_500, NOCACHE)
            .expect("query");
        assert!(empty.is_empty(), "{}: {empty:?}", engine.name());
        // Range points of the gauge after the last sample.
        let range = server
            .query_range_with(gauge, last - 2_000, last + 9_000, 1_000, NOCACHE)
            .expect("query_range");
        let newest = range
            .first()
            .and_then(|s| s["values"].as_array())
            .and_then(|values| values.last())
            .and_then(|p| p[0].as_f64())
            .map(|t| (t * 1000.0).round() as i64)
            .expect("range points");
        match engine {
            Engine::Prometheus => assert_eq!(newest, last + 9_000),
            Engine::VictoriaMetrics => assert!(
                newest <= last + 5_500,
                "VictoriaMetrics: a range point {} ms after the last sample",
                newest - last
            ),
        }
        eprintln!(
            "{}: after the last sample: rate 3 s later {rate}; gauge instant 8 s later present; last range point {} ms later",
            engine.name(),
            newest - last
        );
    }
}
