//! Benchmark of the live page opening a long past window from history (`bench/page-history.sh`
//! runs it): a real Prometheus backfilled with an hour of a synthetic cluster scraped every
//! second (20 pods, 4 nodes by default), the agent at `UPDATE_INTERVAL=1s`, and the page opened
//! with `/?start=…&end=…` over 3,600 steps in a real headless Chromium. Prints the time until
//! all history is plotted, the page's JS heap and Chromium's memory, how long the main thread
//! was busy at most (long tasks; how late a script evaluation and a mouse event were handled
//! while it loaded), and checks that every point equals its history row.
//!
//! `PAGE_BENCH_SPAN` (seconds, default 3600), `PAGE_BENCH_PODS` (20), `PAGE_BENCH_NODES` (4).

#[path = "support/past.rs"]
mod past;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use past::{Past, Piece};
use serde_json::{Value, json};
use support::browser::Browser;
use support::cluster::{Convention, Scenario, now_ms};
use support::prometheus::{curl_status, wait_for};
use support::table::{Table, parse_rfc3339_ms};

fn setting(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Memory of Chromium: the proportional set size (PSS, shared pages divided among the
/// processes sharing them, so that the sum is what they use together) of `pid` and every
/// process below it, and of its renderers alone, in KiB.
fn chromium_pss(pid: u32) -> (u64, u64) {
    let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
    let mut info: BTreeMap<u32, (u64, bool)> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let Some(ppid) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let pss = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let renderer = String::from_utf8_lossy(&cmdline).contains("--type=renderer");
        parent.insert(p, ppid);
        info.insert(p, (pss, renderer));
    }
    let below = |mut p: u32| loop {
        if p == pid {
            return true;
        }
        match parent.get(&p) {
            Some(&up) if up != 0 && up != p => p = up,
            _ => return false,
        }
    };
    let (mut all, mut renderers) = (0, 0);
    for (&p, &(pss, renderer)) in &info {
        if below(p) {
            all += pss;
            if renderer {
                renderers += pss;
            }
        }
    }
    (all, renderers)
}

fn metrics(browser: &mut Browser) -> BTreeMap<String, f64> {
    let answer = browser
        .command("Performance.getMetrics", json!({}))
        .expect("Performance.getMetrics");
    answer["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["name"].as_str()?.to_string(), m["value"].as_f64()?)))
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "a benchmark: bench/page-history.sh runs it"]
fn page_opens_an_hour_at_one_second_from_history() {
    let span = setting("PAGE_BENCH_SPAN", 3600);
    let pods = setting("PAGE_BENCH_PODS", 20) as usize;
    let nodes = setting("PAGE_BENCH_NODES", 4) as usize;
    let scenario = Scenario::scaled(Convention::A, nodes, pods, 0);
    let now = now_ms() / 1000 * 1000;
    let from = now - (span + 60) * 1000;
    let backfill = Instant::now();
    let past = Past::start(
        &[Piece {
            scenario: scenario.clone(),
            from_ms: from,
            to_ms: now,
        }],
        scenario,
        from,
    );
    println!(
        "backfilled {} s of {nodes} nodes and {pods} pods scraped every second in {:.0} s",
        span + 60,
        backfill.elapsed().as_secs_f64()
    );
    let agent = past.stack.agent("1s", &[]);
    wait_for(Duration::from_secs(60), || {
        let rows = Table::parse(&agent.get("/pods").ok()?).ok()?;
        (!rows.rows.is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("the agent has no rows:\n{}", agent.log()));

    // 3,600 steps of the live grid, well inside the past.
    let start = from + 30_000;
    let end = start + (span - 1) * 1000;
    let url = format!("{}/?start={}&end={}", agent.url(), start / 1000, end / 1000);
    let mut browser = Browser::start(1400, 900);
    browser
        .command("Performance.enable", json!({}))
        .expect("Performance.enable");
    std::thread::sleep(Duration::from_secs(2));
    let (blank_all, blank_renderers) = chromium_pss(browser.pid());
    let opened = Instant::now();
    browser
        .command("Page.navigate", json!({"url": url}))
        .expect("Page.navigate");

    // While it loads: how late an evaluation and a mouse move over a plot are handled.
    let (mut evals, mut inputs) = (Vec::new(), Vec::new());
    let mut history = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut tick = 0;
    let loaded = loop {
        assert!(
            Instant::now() < deadline,
            "history not plotted within 10 minutes: {history}\n{}",
            browser.diagnostics()
        );
        let asked = Instant::now();
        let answer = browser.eval("window.agentPage ? window.agentPage.history() : null");
        evals.push(asked.elapsed().as_secs_f64() * 1000.0);
        history = answer.unwrap_or(Value::Null);
        if history["state"] == "done" && !history["plotted_ms"].is_null() {
            break opened.elapsed();
        }
        tick += 1;
        if tick % 3 == 0 && !history.is_null() {
            let asked = Instant::now();
            let x = 200 + (tick * 37) % 800;
            browser
                .command(
                    "Input.dispatchMouseEvent",
                    json!({"type": "mouseMoved", "x": x, "y": 220}),
                )
                .expect("Input.dispatchMouseEvent");
            inputs.push(asked.elapsed().as_secs_f64() * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let perf = browser.eval("window.agentPage.perf()").expect("perf");
    let before_gc = metrics(&mut browser);
    let (pss_all, pss_renderers) = chromium_pss(browser.pid());
    browser
        .command("HeapProfiler.collectGarbage", json!({}))
        .expect("HeapProfiler.collectGarbage");
    let after_gc = metrics(&mut browser);

    // Every point is its history row: all 3,600 steps, every pod and node.
    let series = browser.eval("window.agentPage.series()").expect("series");
    let mut checked = 0;
    for table in ["nodes", "pods"] {
        let (status, body) = curl_status(&format!(
            "{}/{table}?start={}&end={}",
            agent.url(),
            start / 1000,
            end / 1000
        ));
        assert_eq!(status, 200, "{table} history: {body}");
        let csv = Table::parse(&body).expect("history CSV");
        let at = csv.column("observation_time").expect("observation_time");
        let key = csv
            .column(if table == "nodes" { "instance" } else { "name" })
            .expect("key column");
        for (id, plot) in series.as_object().expect("series") {
            if plot["table"] != table {
                continue;
            }
            let column = csv
                .column(plot["column"].as_str().expect("column"))
                .expect("plotted column");
            let times: Vec<i64> = plot["times"]
                .as_array()
                .expect("times")
                .iter()
                .filter_map(Value::as_i64)
                .collect();
            assert_eq!(times.len() as i64, span, "{id}: one point per step");
            let index: BTreeMap<i64, usize> =
                times.iter().enumerate().map(|(i, t)| (*t, i)).collect();
            for row in &csv.rows {
                let t = parse_rfc3339_ms(&row[at]).expect("time");
                let got = plot["values"][&row[key]][index[&t]].as_f64();
                let want = (!row[column].is_empty()).then(|| row[column].parse::<f64>().unwrap());
                let same = match (got, want) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    (a, b) => a == b,
                };
                assert!(
                    same,
                    "{id}/{} at {}: page {got:?}, CSV {want:?}",
                    row[key], row[at]
                );
                checked += 1;
            }
        }
    }

    let mut evals_sorted = evals.clone();
    evals_sorted.sort_by(f64::total_cmp);
    let mut inputs_sorted = inputs.clone();
    inputs_sorted.sort_by(f64::total_cmp);
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let rows: i64 = ["nodes", "pods"]
        .iter()
        .map(|t| history["tables"][t]["rows"].as_i64().unwrap_or(0))
        .sum();
    let requests: i64 = ["nodes", "pods"]
        .iter()
        .map(|t| history["tables"][t]["requests"].as_i64().unwrap_or(0))
        .sum();
    println!("page: {url}");
    println!(
        "history: {span} steps, {rows} rows in {requests} requests; all plotted {:.2} s after navigation \
         (the page's own count from its first request: {:.2} s, of which {:.2} s waiting for answers)",
        loaded.as_secs_f64(),
        history["plotted_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        history["wait_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0
    );
    println!(
        "responsiveness while loading: longest main-thread task {:.0} ms ({} tasks over 50 ms); \
         script evaluation answered in median {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} probes); \
         mouse move handled in median {:.0} ms, max {:.0} ms ({} events)",
        perf["longest_task_ms"].as_f64().unwrap_or(f64::NAN),
        perf["long_tasks"],
        percentile(&evals_sorted, 0.5),
        percentile(&evals_sorted, 0.95),
        percentile(&evals_sorted, 1.0),
        evals.len(),
        percentile(&inputs_sorted, 0.5),
        percentile(&inputs_sorted, 1.0),
        inputs.len()
    );
    let kib = |k: u64| k as f64 / 1024.0;
    println!(
        "memory: JS heap used {:.1} MiB (total {:.1} MiB), {:.1} MiB after a garbage collection; \
         DOM nodes {}; Chromium PSS {:.0} MiB in all, renderers {:.0} MiB \
         (with a blank tab before: {:.0} MiB, renderers {:.0} MiB)",
        mib(before_gc["JSHeapUsedSize"]),
        mib(before_gc["JSHeapTotalSize"]),
        mib(after_gc["JSHeapUsedSize"]),
        after_gc["Nodes"],
        kib(pss_all),
        kib(pss_renderers),
        kib(blank_all),
        kib(blank_renderers)
    );
    println!("checked: {checked} plotted points equal to their history field");
}
