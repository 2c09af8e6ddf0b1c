//! The test support's own tests, run once here rather than in every test binary that
//! includes `support`.

mod support;

use support::table::{parse_rfc3339_ms, plain_decimal, window_fully_covered};

#[test]
fn parses_rfc3339_milliseconds() {
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(
        parse_rfc3339_ms("2026-01-31T12:00:05.123Z"),
        Some(1_769_860_805_123)
    );
    assert_eq!(parse_rfc3339_ms("2026-01-31T12:00:05Z"), None);
    assert_eq!(parse_rfc3339_ms("2026-01-31T12:00:05.123+00:00"), None);
}

#[test]
fn plain_decimals_only() {
    assert!(plain_decimal("45") && plain_decimal("0.5625") && plain_decimal("-1.5"));
    assert!(!plain_decimal("1e6") && !plain_decimal("NaN") && !plain_decimal("inf"));
    assert!(!plain_decimal("") && !plain_decimal("1.2.3"));
}

#[test]
fn coverage_needs_samples_near_both_ends() {
    let samples: Vec<i64> = (0..20).map(|i| 1_000 + i * 1_000).collect();
    assert!(window_fully_covered(&samples, 15_500, 10_000));
    assert!(!window_fully_covered(&samples, 30_000, 10_000));
    assert!(!window_fully_covered(&samples, 8_000, 10_000));
    // Just after a scrape: exact whether or not that scrape was stored.
    assert!(window_fully_covered(&samples, 15_030, 10_000));
    assert!(window_fully_covered(&samples, 15_080, 10_000));
    // A missed scrape before the end of the window.
    let gap: Vec<i64> = samples.iter().copied().filter(|&s| s != 15_000).collect();
    assert!(!window_fully_covered(&gap, 15_500, 10_000));
}

// The synthetic cluster over time: a load schedule and faults, first in the rendered
// exposition, then as a real Prometheus stores them.

use std::time::Duration;

use support::cluster::{
    BASE, Cell, Convention, Fault, FaultKind, JUMP_JOULES, Scenario, Schedule, Source, now_ms,
    rfc3339,
};
use support::engine::Engine;
use support::stack::Stack;

/// The value of an exposition line `series value timestamp`.
fn sample_value(line: &str) -> f64 {
    let value = line.rsplit(' ').nth(1).expect("value");
    value
        .parse()
        .unwrap_or_else(|_| panic!("not a number in {line:?}"))
}

/// The value of the one series of `text` whose line starts with `name{` and contains every
/// label of `labels`; `None` when no such series is exposed.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let found: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .map(sample_value)
        .collect();
    assert!(found.len() <= 1, "several {name} {labels:?}: {found:?}");
    found.first().copied()
}

const W1_PACKAGE: (&str, &[&str]) = (
    "kepler_node_package_joules_total",
    &["instance=\"worker-1\""],
);
const W1_IPMI: (&str, &[&str]) = (
    "ipmi_dcmi_power_consumption_watts",
    &["instance=\"192.0.2.11:9290\""],
);

fn at(scenario: &Scenario, t0: i64, t: i64, (name, labels): (&str, &[&str])) -> Option<f64> {
    value(&scenario.render(t0, t), name, labels)
}

#[test]
fn a_constant_scenario_grows_linearly_and_tells_kepler_measures() {
    let scenario = Scenario::new(Convention::A);
    let t0 = 1_700_000_000_000;
    assert_eq!(
        at(&scenario, t0, t0 + 8_000, W1_PACKAGE),
        Some(BASE + 64.25 * 8.0)
    );
    assert_eq!(at(&scenario, t0, t0 + 8_000, W1_IPMI), Some(182.5));
    let text = scenario.render(t0, t0);
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("kepler_node_info{"))
        .collect();
    assert_eq!(info.len(), 3, "{info:?}");
    assert!(
        info.iter()
            .all(|l| l.contains("components_power_source=\"rapl-sysfs\""))
    );
    // Kepler >= 0.10 has no kepler_node_info.
    let text = Scenario::new(Convention::B).render(t0, t0);
    assert!(!text.contains("kepler_node_info"));
}

#[test]
fn schedules_parse_and_integrate() {
    let schedule = Schedule::parse("idle=10s,load=10s", 0).expect("schedule");
    assert_eq!(schedule.period_ms(), 20_000);
    assert_eq!(
        (
            schedule.factor_at(0),
            schedule.factor_at(9_999),
            schedule.factor_at(10_000)
        ),
        (0.25, 0.25, 1.0)
    );
    // Repeating, also before the origin.
    assert_eq!(schedule.factor_at(-1), 1.0);
    assert_eq!(schedule.factor_at(45_000), 0.25);
    assert_eq!(schedule.integral(0, 20_000), 12.5);
    assert_eq!(schedule.integral(5_000, 15_000), 1.25 + 5.0);
    assert_eq!(schedule.mean(12_000, 18_000), 1.0);
    assert_eq!(schedule.mean(5_000, 15_000), 0.625);
    let spans = schedule.spans(15_000, 42_000);
    let starts: Vec<(i64, &str)> = spans
        .iter()
        .map(|s| (s.from_ms, s.phase.name.as_str()))
        .collect();
    assert_eq!(
        starts,
        [
            (10_000, "load"),
            (20_000, "idle"),
            (30_000, "load"),
            (40_000, "idle")
        ]
    );
    let custom = Schedule::parse("idle=1m, half=500ms*0.5 ,load=2", 0).expect("custom");
    let lengths: Vec<(i64, f64)> = custom.phases.iter().map(|p| (p.ms, p.factor)).collect();
    assert_eq!(lengths, [(60_000, 0.25), (500, 0.5), (2_000, 1.0)]);
    for bad in [
        "",
        "idle",
        "busy=10s",
        "load=0s",
        "peak=1s*1.5",
        "idle=soon",
    ] {
        assert!(Schedule::parse(bad, 0).is_err(), "{bad:?}");
    }
}

#[test]
fn a_schedule_scales_rates_and_gauges_and_keeps_counters_exact() {
    let t0 = 1_700_000_000_000;
    let scenario = Scenario::new(Convention::A)
        .with_load(Schedule::parse("idle=10s,load=10s", t0).expect("schedule"));
    let v = |t: i64| at(&scenario, t0, t0 + t, W1_PACKAGE).expect("exposed");
    // BASE plus the integral of the rate: 64.25 W × 0.25 for 10 s, then × 1.
    assert_eq!(v(4_000), BASE + 64.25 * 0.25 * 4.0);
    assert_eq!(v(16_000), BASE + 64.25 * (2.5 + 6.0));
    assert_eq!(v(27_000), BASE + 64.25 * (12.5 + 1.75));
    assert!(((v(9_000) - v(3_000)) / 6.0 - 64.25 * 0.25).abs() < 1e-9);
    assert!(((v(19_000) - v(11_000)) / 8.0 - 64.25).abs() < 1e-9);
    assert_eq!(at(&scenario, t0, t0 + 3_000, W1_IPMI), Some(182.5 * 0.25));
    assert_eq!(at(&scenario, t0, t0 + 13_000, W1_IPMI), Some(182.5));
    // Every CPU still counts one second per second: idle takes up what the load leaves.
    let cpu0 = |t: i64| -> f64 {
        let text = scenario.render(t0, t0 + t);
        text.lines()
            .filter(|l| {
                l.starts_with("node_cpu_seconds_total{")
                    && l.contains("192.0.2.11:9100")
                    && l.contains("cpu=\"0\"")
            })
            .map(|l| sample_value(l) - BASE)
            .sum()
    };
    assert!((cpu0(16_000) - cpu0(2_000) - 14.0).abs() < 1e-9);
    // The truth of a phase is the scenario at that level.
    let idle = scenario.at_level(0.25).expected_nodes(10.0);
    let worker_1 = idle
        .iter()
        .find(|r| r.text("instance") == "worker-1")
        .expect("row");
    assert_eq!(
        worker_1.get("kepler_wattage"),
        Some(&Cell::Num(Some(64.25 * 0.25 + 8.5 * 0.25)))
    );
    assert_eq!(worker_1.get("memory_usage"), Some(&Cell::Num(Some(62.5))));
    assert_eq!(
        worker_1.get("cpu_usage"),
        Some(&Cell::Num(Some(1.296875 * 0.25)))
    );
}

#[test]
fn faults_parse_from_their_spec() {
    let origin = 1_000_000;
    let gap = Fault::parse("gap:worker-1:kepler:20s@+60s", origin).expect("gap");
    assert_eq!(
        gap,
        Fault::gap("worker-1", Some(Source::Kepler), origin + 60_000, 20_000)
    );
    let stop = Fault::parse("stop:worker-2:scaphandre@1700000000", origin).expect("stop");
    assert_eq!(
        stop,
        Fault::stop("worker-2", Some(Source::Scaphandre), 1_700_000_000_000)
    );
    let jump = Fault::parse("jump:worker-1@+30s", origin).expect("jump");
    assert_eq!(jump, Fault::jump("worker-1", origin + 30_000));
    let zero = Fault::parse("zero:db-0:30s@+20s", origin).expect("zero");
    assert_eq!(zero, Fault::zero("db-0", origin + 20_000, origin + 50_000));
    let always = Fault::parse("zero:worker-3", origin).expect("zero all along");
    assert_eq!((always.from_ms, always.until_ms), (i64::MIN, i64::MAX));
    let absent = Fault::parse("absent:worker-3:node-exporter", origin).expect("absent");
    assert_eq!(absent, Fault::absent("worker-3", Source::NodeExporter));
    assert_eq!(
        Fault::parse("estimated:worker-3", origin).expect("estimated"),
        Fault::estimated("worker-3")
    );
    for bad in [
        "gap:worker-1:kepler@+60s",
        "gap:worker-1:20s",
        "lag:worker-1:kepler:20s@+60s",
        "stop:worker-1:kepler:5s@+1s",
        "jump:worker-1:ipmi@+1s",
        "absent:worker-3",
        "estimated:worker-3@+5s",
        "reset::kepler@+5s",
        "gap:worker-1:sensors:1s@+1s",
    ] {
        assert!(Fault::parse(bad, origin).is_err(), "{bad:?}");
    }
    // Checked against the cluster.
    let scenario = || Scenario::new(Convention::A);
    assert!(
        scenario()
            .with_fault(Fault::gap("worker-9", None, 0, 1))
            .is_err()
    );
    assert!(
        scenario()
            .with_fault(Fault::stop("worker-3", Some(Source::Scaphandre), 0))
            .is_err()
    );
    assert!(
        scenario()
            .with_fault(Fault::stop("db-0", Some(Source::NodeExporter), 0))
            .is_err()
    );
    assert!(
        Scenario::new(Convention::B)
            .with_fault(Fault::estimated("worker-3"))
            .is_err()
    );
    assert!(
        scenario()
            .with_fault(Fault::absent("db-0", Source::Kepler))
            .is_err()
    );
}

#[test]
fn faults_show_where_and_when_they_are() {
    let t0 = 1_700_000_000_000;
    let faulty = |fault: Fault| {
        Scenario::new(Convention::A)
            .with_fault(fault)
            .expect("fits the scenario")
    };
    let kepler_w1 = |s: &Scenario, t: i64| at(s, t0, t0 + t, W1_PACKAGE);

    // A gap: not exposed for its span, then as if nothing happened.
    let s = faulty(Fault::gap(
        "worker-1",
        Some(Source::Kepler),
        t0 + 5_000,
        3_000,
    ));
    assert_eq!(kepler_w1(&s, 4_999), Some(BASE + 64.25 * 4.999));
    assert_eq!(kepler_w1(&s, 5_000), None);
    assert_eq!(kepler_w1(&s, 7_999), None);
    assert_eq!(kepler_w1(&s, 8_000), Some(BASE + 64.25 * 8.0));
    // Only that exporter of that node.
    assert!(at(&s, t0, t0 + 6_000, W1_IPMI).is_some());
    let text = s.render(t0, t0 + 6_000);
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("kepler_") && l.contains("worker-1"))
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("kepler_") && l.contains("worker-2"))
    );

    // A stop: gone for good.
    let s = faulty(Fault::stop("worker-1", None, t0 + 5_000));
    let text = s.render(t0, t0 + 60_000);
    for gone in [
        "192.0.2.11:",
        "instance=\"worker-1\"",
        "instance=\"198.51.100.21:8080\"",
    ] {
        assert!(!text.contains(gone), "{gone} still exposed");
    }
    // kube-state-metrics runs on worker-2: it still lists worker-1's pods.
    assert!(text.contains("192.0.2.12:9100") && text.contains("pod=\"scaphandre-7xk2p\""));

    // A reset: from 0 at T, then growing at the same rate.
    let s = faulty(Fault::reset("worker-1", Some(Source::Kepler), t0 + 5_000));
    assert_eq!(kepler_w1(&s, 4_000), Some(BASE + 64.25 * 4.0));
    assert_eq!(kepler_w1(&s, 5_000), Some(0.0));
    assert_eq!(kepler_w1(&s, 7_000), Some(64.25 * 2.0));
    // Gauges and other exporters go on.
    assert_eq!(at(&s, t0, t0 + 7_000, W1_IPMI), Some(182.5));

    // A jump: one series, for its span only.
    let s = faulty(Fault::jump("worker-1", t0 + 5_000));
    assert_eq!(kepler_w1(&s, 5_500), Some(BASE + 64.25 * 5.5 + JUMP_JOULES));
    assert_eq!(kepler_w1(&s, 6_000), Some(BASE + 64.25 * 6.0));
    let jumped = |t| {
        s.render(t0, t0 + t)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| sample_value(l) > 1e14)
            .count()
    };
    assert_eq!((jumped(4_999), jumped(5_000), jumped(6_000)), (0, 1, 0));
    let s = faulty(Fault::jump("db-0", t0));
    let pod = (
        "kepler_container_package_joules_total",
        &["pod_name=\"db-0\""][..],
    );
    assert_eq!(
        at(&s, t0, t0 + 500, pod),
        Some(BASE + 3.25 * 0.5 + JUMP_JOULES)
    );

    // Zero: db-0's Kepler counters stand still while its CPU counter goes on.
    let s = faulty(Fault::zero("db-0", t0 + 2_000, t0 + 6_000));
    let cpu = (
        "container_cpu_usage_seconds_total",
        &["pod=\"db-0\"", "container=\"postgres\""][..],
    );
    assert_eq!(at(&s, t0, t0 + 4_000, pod), Some(BASE + 3.25 * 2.0));
    // Exactly the same number all through the span, so that rate() is exactly 0.
    for t in [2_001, 3_333, 4_567, 5_999] {
        assert_eq!(
            at(&s, t0, t0 + t, pod),
            Some(BASE + 3.25 * 2.0),
            "at +{t} ms"
        );
    }
    assert_eq!(at(&s, t0, t0 + 6_000, pod), Some(BASE + 3.25 * 2.0));
    assert_eq!(at(&s, t0, t0 + 8_000, pod), Some(BASE + 3.25 * 4.0));
    assert_eq!(at(&s, t0, t0 + 4_000, cpu), Some(BASE + 0.25 * 4.0));
    // Other pods' Kepler and the node's own go on.
    assert_eq!(kepler_w1(&s, 4_000), Some(BASE + 64.25 * 4.0));

    // Estimated: worker-3's Kepler says so.
    let s = faulty(Fault::estimated("worker-3"));
    let text = s.render(t0, t0);
    let info = |node: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("kepler_node_info{") && l.contains(&format!("instance=\"{node}\""))
            })
            .expect("kepler_node_info")
            .to_string()
    };
    assert!(info("worker-3").contains("components_power_source=\"estimator\""));
    assert!(info("worker-3").contains("platform_power_source=\"none\""));
    assert!(info("worker-1").contains("components_power_source=\"rapl-sysfs\""));

    // Absent: no node-exporter on worker-3, and its figures are empty in the truth.
    let s = faulty(Fault::absent("worker-3", Source::NodeExporter));
    assert!(!s.render(t0, t0).contains("192.0.2.13:9100"));
    let rows = s.expected_nodes(10.0);
    let worker_3 = rows
        .iter()
        .find(|r| r.text("instance") == "worker-3")
        .expect("row");
    assert_eq!(worker_3.get("cpu_usage"), Some(&Cell::Num(None)));
    assert_eq!(worker_3.get("kepler_wattage"), Some(&Cell::Num(Some(14.0))));

    // Where each one is, in the agent's tables.
    let scenario = Scenario::new(Convention::A);
    let touched = |fault: &Fault| -> Vec<String> {
        scenario
            .touched(fault)
            .into_iter()
            .map(|t| format!("{}:{}.{}", t.table, t.row, t.column))
            .collect()
    };
    assert_eq!(
        touched(&Fault::zero("db-0", 0, 1)),
        ["pods:db-0.wattage_kepler"]
    );
    assert_eq!(
        touched(&Fault::gap("worker-2", Some(Source::Kepler), 0, 1)),
        [
            "nodes:worker-2.kepler_wattage",
            "nodes:worker-2.wattage",
            "pods:db-0.wattage_kepler"
        ]
    );
    assert_eq!(
        touched(&Fault::jump("worker-1", 0)),
        ["nodes:worker-1.kepler_wattage"]
    );
    let gap = Fault::gap("worker-1", None, t0 + 5_000, 3_000);
    assert_eq!(
        gap.samples(&[t0 + 4_000, t0 + 5_000, t0 + 7_999, t0 + 8_000]),
        [t0 + 5_000, t0 + 7_999]
    );
    assert_eq!(gap.kind, FaultKind::Gap);
    assert!(
        gap.describe().contains(&rfc3339(t0 + 5_000)),
        "{}",
        gap.describe()
    );
    assert_eq!(rfc3339(1_769_860_805_123), "2026-01-31T12:00:05.123Z");
}

/// Every sample Prometheus stored of the one series `selector` over the `range_s` seconds
/// before `time_ms`: (timestamp in ms, value).
fn stored(stack: &Stack, selector: &str, range_s: u32, time_ms: i64) -> Vec<(i64, f64)> {
    let query = format!("{selector}[{range_s}s]");
    let result = stack
        .server
        .prometheus()
        .query(&query, time_ms)
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(result.len(), 1, "{query}: {result:?}");
    result[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|point| {
            let t = (point[0].as_f64().expect("time") * 1000.0).round() as i64;
            (
                t,
                point[1].as_str().expect("value").parse().expect("number"),
            )
        })
        .collect()
}

/// The single value of an instant query.
fn instant(stack: &Stack, query: &str, time_ms: i64) -> f64 {
    let result = stack
        .server
        .query(query, time_ms)
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(result.len(), 1, "{query}: {result:?}");
    result[0]["value"][1]
        .as_str()
        .expect("value")
        .parse()
        .expect("number")
}

/// Waits until the wall clock passes `t_ms`.
fn sleep_until(t_ms: i64) {
    let wait = t_ms - now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
}

#[test]
fn prometheus_sees_the_schedule_phase_by_phase() {
    const WINDOW_MS: i64 = 3_000;
    let origin = now_ms() / 1000 * 1000;
    let schedule = Schedule::parse("idle=6s,load=6s", origin).expect("schedule");
    let stack = Stack::with(
        Engine::Prometheus,
        Scenario::new(Convention::A).with_load(schedule.clone()),
    );
    let started = stack.exporter.scrape_times()[0];
    // A window of each phase, ending 1 s before the phase does, that the scrapes covered
    // (Prometheus extrapolates to the window's ends only from samples near them).
    let mut checked = Vec::new();
    for span in schedule.spans(started + WINDOW_MS, started + 5 * schedule.period_ms()) {
        if checked.iter().any(|(name, _)| *name == span.phase.name) {
            continue;
        }
        let t = span.until_ms - 1_000;
        sleep_until(t + 1_500);
        if !stack.settled(t, WINDOW_MS, 0) {
            continue;
        }
        let factor = span.phase.factor;
        let rate = instant(
            &stack,
            "rate(kepler_node_package_joules_total{instance=\"worker-1\"}[3s])",
            t,
        );
        assert!(
            (rate - 64.25 * factor).abs() < 1e-9,
            "{} at {}: rate {rate}, scheduled {}",
            span.phase.name,
            rfc3339(t),
            64.25 * factor
        );
        let watts = instant(
            &stack,
            "avg_over_time(ipmi_dcmi_power_consumption_watts{instance=\"192.0.2.11:9290\"}[3s])",
            t,
        );
        assert_eq!(
            watts,
            182.5 * factor,
            "{} at {}",
            span.phase.name,
            rfc3339(t)
        );
        checked.push((span.phase.name.clone(), rate));
        if checked.len() == 2 {
            break;
        }
    }
    assert_eq!(checked.len(), 2, "not both phases checked: {checked:?}");
    // Counters only ever grow, idle CPU time included.
    let resets = stack
        .server
        .query("sum(resets(node_cpu_seconds_total[1m]))", now_ms() - 1_000)
        .expect("resets");
    assert_eq!(resets[0]["value"][1], "0", "{resets:?}");
}

#[test]
fn prometheus_sees_each_fault_where_it_was_put() {
    let origin = now_ms();
    let at = |s: i64| origin + s * 1000;
    // A jump of 3 s: at least one stored sample carries it, even with a late scrape.
    let jump = Fault {
        until_ms: at(13),
        ..Fault::jump("worker-1", at(10))
    };
    let reset = Fault::reset("worker-2", Some(Source::Kepler), at(11));
    let gap = Fault::gap("worker-1", Some(Source::NodeExporter), at(12), 3_000);
    let zero = Fault::zero("db-0", at(10), at(18));
    let stop = Fault::stop("worker-2", Some(Source::Scaphandre), at(14));
    let mut scenario = Scenario::new(Convention::A);
    for fault in [
        &jump,
        &reset,
        &gap,
        &zero,
        &stop,
        &Fault::estimated("worker-3"),
    ] {
        scenario = scenario.with_fault(fault.clone()).expect("fits");
    }
    let stack = Stack::with(Engine::Prometheus, scenario);
    let first = stack.exporter.scrape_times()[0];
    assert!(
        first < at(9),
        "Prometheus scraped first at {}",
        rfc3339(first)
    );
    sleep_until(at(20) + 1_500);
    let t = at(20);
    let range = ((t - origin) / 1000 + 1) as u32;

    // The jump: on exactly the stored samples within its span.
    let package = stored(
        &stack,
        "kepler_node_package_joules_total{instance=\"worker-1\"}",
        range,
        t,
    );
    let high: Vec<i64> = package
        .iter()
        .filter(|(_, v)| *v > 1e14)
        .map(|(t, _)| *t)
        .collect();
    let within: Vec<i64> = package
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| jump.is_on(*t))
        .collect();
    assert!(
        !high.is_empty() && high == within,
        "jump on {high:?}, span holds {within:?}"
    );
    let resets = |selector: &str| instant(&stack, &format!("resets({selector}[{range}s])"), t);
    // Up, then back: Prometheus sees the way back as a reset.
    assert_eq!(
        resets("kepler_node_package_joules_total{instance=\"worker-1\"}"),
        1.0
    );

    // The reset: once, from 0.
    let selector = "kepler_node_package_joules_total{instance=\"worker-2\"}";
    assert_eq!(resets(selector), 1.0);
    for (when, v) in stored(&stack, selector, range, t) {
        // At most 30.5 W for the 9 s since the reset.
        let fits = if when < reset.from_ms {
            v >= BASE
        } else {
            v < 30.5 * 10.0
        };
        assert!(fits, "{selector} at {}: {v}", rfc3339(when));
    }

    // The gap: no sample within it, samples on both sides.
    let memory = stored(
        &stack,
        "node_memory_MemTotal_bytes{instance=\"192.0.2.11:9100\"}",
        range,
        t,
    );
    let times: Vec<i64> = memory.iter().map(|(t, _)| *t).collect();
    assert!(
        times.iter().all(|t| !gap.is_on(*t)),
        "{times:?} within {}",
        gap.describe()
    );
    assert!(times.iter().any(|t| *t < gap.from_ms) && times.iter().any(|t| *t >= gap.until_ms));

    // Zero: db-0's Kepler power is exactly 0 W inside the span while its CPU load goes on.
    let inside = at(17);
    let kepler = "rate(kepler_container_package_joules_total{pod_name=\"db-0\"}[3s])";
    assert_eq!(instant(&stack, kepler, inside), 0.0);
    let cpu = "rate(container_cpu_usage_seconds_total{pod=\"db-0\",container=\"postgres\"}[3s])";
    assert!(instant(&stack, cpu, inside) > 0.2);

    // The stop: worker-2's Scaphandre exposes nothing after it, worker-1's goes on.
    let host = |instance: &str| {
        stored(
            &stack,
            &format!("scaph_host_power_microwatts{{instance=\"{instance}\"}}"),
            range,
            t,
        )
    };
    let last = |samples: Vec<(i64, f64)>| samples.last().map(|(t, _)| *t).expect("samples");
    assert!(last(host("198.51.100.22:8080")) < stop.from_ms);
    assert!(last(host("198.51.100.21:8080")) > stop.from_ms);

    // Estimated: only worker-3's Kepler says its figures come from its model.
    let estimators = stack
        .server
        .query("kepler_node_info{components_power_source=\"estimator\"}", t)
        .expect("query");
    let nodes: Vec<&str> = estimators
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    assert_eq!(nodes, ["worker-3"]);
}
