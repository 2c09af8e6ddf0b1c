//! The live page (README, "The live page") in a real headless Chromium, against the agent, a real
//! Prometheus and the synthetic exporter. The page is opened through a TCP forwarder on another
//! port, as through `kubectl port-forward`, and read back through `window.agentPage`, its DOM and
//! its canvases:
//! - one series per node and pod named as in the CSV, every plotted point equal to the CSV row
//!   of its time (empty field = gap): rows streamed live, and rows the page loaded from
//!   history (the last 15 minutes by default, a window or a run given in its address), joined
//!   without a gap and without a row twice, also after the port-forward and then the agent
//!   are restarted;
//! - the energy panel equal to `/energy/*` (of the shown window, or per phase of a run);
//! - the data-quality panel and the shaded spans equal to `/quality` of the shown window;
//! - marks stamped with the page's button as labelled bands at the marks' times on every plot.
//!
//! Needs /usr/bin/prometheus, promtool, curl and chromium (`scripts/setup` installs them). The
//! screenshots' paths are printed; `PAGE_SCREENSHOT=docs/page.png` also writes the one of a
//! run opened by its address (bands, energy per phase, data quality) there.

#[path = "support/past.rs"]
mod past;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use past::{Past, Piece};
use serde_json::Value;
use support::browser::{Browser, base64_decode};
use support::cluster::{Convention, Scenario, now_ms};
use support::engine::time_param;
use support::forward::Forward;
use support::prometheus::{Agent, curl_status, free_port, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

const INTERVAL: &str = "500ms";
const ENV: &[(&str, &str)] = &[("BUFFER_SIZE", "5000")];
/// What Chromium sends when it opens a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// One browser test at a time: each runs Chromium, Prometheus and agents, and a 2-core
/// machine running two of them at once makes every timeout a guess.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `curl -i` with an Accept header: (status line and headers, body).
fn curl_accept(url: &str, accept: &str) -> (String, String) {
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(url)
        .output()
        .expect("cannot run curl");
    assert!(output.status.success(), "curl {url}: {output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.to_ascii_lowercase(), body.to_string())
}

/// A GET of the agent that waits while it is busy (503: the page's own history, energy and
/// quality requests take the agent's two slots at times).
fn get_ok(agent: &Agent, path: &str) -> String {
    let url = format!("{}/{}", agent.url(), path.trim_start_matches('/'));
    wait_for(Duration::from_secs(60), || {
        let (status, body) = curl_status(&url);
        match status {
            200 => Some(body),
            503 | 0 => None,
            other => panic!("GET {url}: HTTP {other}: {body}"),
        }
    })
    .unwrap_or_else(|| panic!("GET {url}: busy for a minute:\n{}", agent.log()))
}

fn csv(agent: &Agent, path: &str) -> Table {
    Table::parse(&get_ok(agent, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `time` as the API takes it (Unix seconds with milliseconds).
fn at(ms: i64) -> String {
    time_param(ms)
}

fn ms(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(parse_rfc3339_ms)
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

/// Rows served by the agents so far, by table, observation time and node/pod name: from
/// their buffers, and from history where the page loaded history.
#[derive(Default)]
struct Truth {
    header: BTreeMap<&'static str, Vec<String>>,
    rows: BTreeMap<(&'static str, i64, String), Vec<String>>,
    /// Times the page took from history.
    history: BTreeMap<&'static str, BTreeSet<i64>>,
}

impl Truth {
    fn key_column(table: &str) -> &'static str {
        if table == "nodes" { "instance" } else { "name" }
    }

    fn insert(&mut self, table: &'static str, csv: &Table) -> BTreeSet<i64> {
        let at = csv.column("observation_time").expect("observation_time");
        let key = csv.column(Truth::key_column(table)).expect("key column");
        let mut times = BTreeSet::new();
        for row in &csv.rows {
            let t = parse_rfc3339_ms(&row[at]).expect("observation_time");
            times.insert(t);
            self.rows.insert((table, t, row[key].clone()), row.clone());
        }
        self.header.insert(table, csv.header.clone());
        times
    }

    /// Downloads `/nodes` and `/pods` and remembers their rows.
    fn snapshot(&mut self, agent: &Agent) {
        for table in ["nodes", "pods"] {
            let csv = Table::parse(&agent.get(&format!("/{table}")).expect("download"))
                .expect("CSV download");
            self.insert(table, &csv);
        }
    }

    /// The history the page loaded (`agentPage.history()`), asked from the agent in one
    /// request per table. It must end before the first row the page's stream gave.
    fn add_history(&mut self, agent: &Agent, history: &Value) {
        for table in ["nodes", "pods"] {
            let t = &history["tables"][table];
            if t["from"].is_null() || t["to"].is_null() {
                continue;
            }
            let (from, to) = (ms(&t["from"]), ms(&t["to"]));
            if !t["stream_from"].is_null() {
                assert!(
                    to < ms(&t["stream_from"]),
                    "{table}: history up to {to} overlaps the stream from {}",
                    t["stream_from"]
                );
            }
            let rows = csv(
                agent,
                &format!("/{table}?start={}&end={}", at(from), at(to)),
            );
            let times = self.insert(table, &rows);
            self.history.entry(table).or_default().extend(times);
        }
    }

    fn times(&self, table: &str) -> BTreeSet<i64> {
        self.rows
            .keys()
            .filter(|(t, ..)| *t == table)
            .map(|(_, time, _)| *time)
            .collect()
    }

    fn names(&self, table: &str) -> BTreeSet<String> {
        self.rows
            .keys()
            .filter(|(t, ..)| *t == table)
            .map(|(.., name)| name.clone())
            .collect()
    }

    /// The value a plot must show: the CSV field as a number, `None` for an empty field or
    /// no row at that time.
    fn value(&self, table: &'static str, time: i64, name: &str, column: &str) -> Option<f64> {
        let at = self.header[table].iter().position(|c| c == column)?;
        let row = self.rows.get(&(table, time, name.to_string()))?;
        (!row[at].is_empty()).then(|| row[at].parse().expect("numeric field"))
    }
}

/// `window.agentPage.series()`: plot id → (table, column, labels, times, values per label).
struct Plot {
    table: &'static str,
    column: String,
    labels: Vec<String>,
    times: Vec<i64>,
    values: BTreeMap<String, Vec<Option<f64>>>,
}

/// What the plots show once they show every row the page has (drawing takes a few tasks).
fn series(browser: &mut Browser) -> BTreeMap<String, Plot> {
    let value = wait_for(Duration::from_secs(30), || {
        let value = browser
            .eval("window.agentPage.settled() ? window.agentPage.series() : null")
            .ok()?;
        (!value.is_null()).then_some(value)
    })
    .unwrap_or_else(|| panic!("the plots never settled:\n{}", browser.diagnostics()));
    let mut plots = BTreeMap::new();
    for (id, p) in value.as_object().expect("series object") {
        let table = if p["table"] == "nodes" {
            "nodes"
        } else {
            "pods"
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        };
        let labels = strings(&p["labels"]);
        let times = p["times"]
            .as_array()
            .expect("times")
            .iter()
            .map(|t| t.as_i64().expect("time in ms"))
            .collect();
        let values = labels
            .iter()
            .map(|l| {
                let points = p["values"][l]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(Value::as_f64)
                    .collect();
                (l.clone(), points)
            })
            .collect();
        plots.insert(
            id.clone(),
            Plot {
                table,
                column: p["column"].as_str().expect("column").to_string(),
                labels,
                times,
                values,
            },
        );
    }
    plots
}

fn page_value(browser: &mut Browser, expression: &str) -> Value {
    browser
        .eval(expression)
        .unwrap_or_else(|e| panic!("{e}\n{}", browser.diagnostics()))
}

fn same_number(got: Option<f64>, want: Option<f64>) -> bool {
    match (got, want) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Waits until the page's history is loaded and plotted.
fn history_loaded(browser: &mut Browser) -> Value {
    wait_for(Duration::from_secs(120), || {
        let h = browser.eval("window.agentPage.history()").ok()?;
        (h["state"] == "done" && !h["plotted_ms"].is_null()).then_some(h)
    })
    .unwrap_or_else(|| {
        let h = browser.eval("window.agentPage.history()");
        panic!(
            "the page never finished loading history: {h:?}\n{}",
            browser.diagnostics()
        )
    })
}

/// Waits until the page shows the newest cycle of `agent`, then checks every plot against
/// the rows served so far (`truth`, updated here, with the history the page loaded).
/// `unseen` cycles (rows the page received but no download caught, e.g. just before an agent
/// stopped) are allowed between the ones checked and left unchecked.
fn check_plots(browser: &mut Browser, agent: &Agent, truth: &mut Truth, unseen: usize) {
    let history = history_loaded(browser);
    truth.add_history(agent, &history);
    let caught_up = wait_for(Duration::from_secs(30), || {
        let plots = series(browser);
        truth.snapshot(agent);
        let newest = |table| truth.times(table).last().copied();
        let last = |id: &str| plots.get(id).and_then(|p| p.times.last().copied());
        (last("node-kepler") == newest("nodes") && last("pod-cpu") == newest("pods"))
            .then_some(plots)
    });
    let plots = caught_up.unwrap_or_else(|| {
        panic!(
            "the page never showed the agent's newest cycle:\n{}\n{}",
            browser.diagnostics(),
            agent.log()
        )
    });
    assert_eq!(plots.len(), 6, "plots: {:?}", plots.keys());
    for (id, plot) in &plots {
        let names: Vec<String> = truth.names(plot.table).into_iter().collect();
        assert_eq!(plot.labels, names, "{id}: one series per name of the CSV");
        assert!(plot.times.len() >= 3, "{id}: {} points", plot.times.len());
        assert!(
            plot.times.windows(2).all(|w| w[0] < w[1]),
            "{id}: times not strictly increasing (duplicates?): {:?}",
            plot.times
        );
        // No gap: every cycle served within the shown span is plotted, history and live
        // alike; and nothing plotted that no agent served, beyond the allowed unseen cycles.
        let (first, last) = (plot.times[0], plot.times[plot.times.len() - 1]);
        let served = truth.times(plot.table);
        let plotted: BTreeSet<i64> = plot.times.iter().copied().collect();
        let missing: Vec<&i64> = served
            .range(first..=last)
            .filter(|t| !plotted.contains(t))
            .collect();
        assert!(
            missing.is_empty(),
            "{id}: served cycles missing from the plot: {missing:?}"
        );
        let extra: Vec<&i64> = plotted.difference(&served).collect();
        assert!(
            extra.len() <= unseen,
            "{id}: plotted cycles no agent served: {extra:?}"
        );
        // Every point equals its CSV field; an empty field is a gap (null), never 0.
        for (label, values) in &plot.values {
            assert_eq!(values.len(), plot.times.len(), "{id}/{label}");
            for (time, got) in plot.times.iter().zip(values) {
                if !served.contains(time) {
                    continue;
                }
                let want = truth.value(plot.table, *time, label, &plot.column);
                assert!(
                    same_number(*got, want),
                    "{id}/{label} at {time}: page {got:?}, CSV {want:?}"
                );
            }
        }
    }
    // The scenario has empty fields (a node without a meter): they must be gaps.
    let gaps = plots
        .values()
        .flat_map(|p| p.values.values())
        .any(|v| v.last().is_some_and(Option::is_none));
    assert!(gaps, "expected some empty fields plotted as gaps");
    let status = page_value(browser, "window.agentPage.status()");
    for table in ["nodes", "pods"] {
        assert_eq!(status["duplicates"][table], 0, "{status}");
        assert_eq!(status["overlap"][table], 0, "{status}");
    }
}

/// Every plotted point of a window the page loaded from history alone (a run, or
/// `?start&end`) equals the agent's history rows of that window, and nothing else is plotted.
fn check_history_plots(browser: &mut Browser, agent: &Agent, query: &str) {
    let plots = series(browser);
    for table in ["nodes", "pods"] {
        let rows = csv(agent, &format!("/{table}?{query}"));
        let mut truth = Truth::default();
        let times = truth.insert(table, &rows);
        assert!(times.len() >= 3, "{table}?{query}: {} steps", times.len());
        for (id, plot) in plots.iter().filter(|(_, p)| p.table == table) {
            let plotted: BTreeSet<i64> = plot.times.iter().copied().collect();
            assert_eq!(plotted, times, "{id}: the steps of {table}?{query}");
            let names: Vec<String> = truth.names(table).into_iter().collect();
            assert_eq!(plot.labels, names, "{id}");
            for (label, values) in &plot.values {
                for (time, got) in plot.times.iter().zip(values) {
                    let want = truth.value(table, *time, label, &plot.column);
                    assert!(
                        same_number(*got, want),
                        "{id}/{label} at {time}: page {got:?}, history {want:?}"
                    );
                }
            }
        }
    }
}

/// `window.agentPage.shown()`: the window's start and end (ms), its mode.
fn shown(browser: &mut Browser) -> (i64, i64, Value) {
    let s = page_value(browser, "window.agentPage.shown()");
    (ms(&s["start"]), ms(&s["end"]), s)
}

/// The energy panel against `/energy/*` for the same window, or the same run (`run`): one
/// row per node (pod), or per node (pod) and phase.
fn check_energy(browser: &mut Browser, agent: &Agent, run: Option<&str>) {
    let mode = if run.is_some() { "run" } else { "window" };
    let run_end = run.map(|run| {
        let phases = csv(agent, &format!("/phases?run={run}"));
        phases.rows.last().expect("phases of the run")[3].clone()
    });
    // The figures and the panel's cells (raw value in data-v) read together: the page may
    // refresh its energy at any time.
    let snapshot = wait_for(Duration::from_secs(60), || {
        let e = browser
            .eval(
                "({energy: window.agentPage.energy(), cells: Object.fromEntries(['nodes', 'pods'].map(t => \
                 [t, [...document.querySelectorAll('#energy-' + t + ' tbody tr')].map(tr => \
                 Object.fromEntries([...tr.cells].map(td => [td.dataset.col, td.dataset.v])))]))})",
            )
            .ok()?;
        let energy = &e["energy"];
        let ready = !energy["start"].is_null()
            && energy["mode"] == mode
            && energy["pods"]["status"] == 200
            && energy["nodes"]["status"] == 200;
        // A run's figures once it is closed: until its end.
        let of_run = run.is_none_or(|r| energy["run"] == r && energy["end"].as_str() == run_end.as_deref());
        (ready && of_run).then_some(e)
    })
    .unwrap_or_else(|| panic!("no energy figures on the page:\n{}", browser.diagnostics()));
    let energy = &snapshot["energy"];
    let start = match run {
        Some(run) => ms(&Value::from(
            csv(agent, &format!("/phases?run={run}")).rows[0][2].clone(),
        )),
        None => shown(browser).0,
    };
    assert_eq!(
        ms(&energy["start"]),
        start,
        "energy of the shown window, or of the run: {energy}"
    );
    for table in ["nodes", "pods"] {
        let shown = &energy[table];
        let url = shown["url"].as_str().expect("energy url");
        let expected = match run {
            Some(run) => format!("energy/{table}?run={run}"),
            None => format!("energy/{table}?start="),
        };
        assert!(url.starts_with(&expected), "relative URL: {url}");
        let csv = csv(agent, &format!("/{url}"));
        let header: Vec<String> = shown["header"]
            .as_array()
            .expect("header")
            .iter()
            .map(|h| h.as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(header, csv.header, "{table}: energy header");
        let rows = shown["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), csv.rows.len(), "{table}: energy rows");
        assert!(!rows.is_empty(), "{table}: no energy rows");
        // The same window asked again: text fields equal, numbers equal up to samples
        // Prometheus ingested between the two requests.
        for (row, want) in rows.iter().zip(&csv.rows) {
            for (column, want) in csv.header.iter().zip(want) {
                let got = row[column].as_str().unwrap_or("");
                match (got.parse::<f64>(), want.parse::<f64>()) {
                    (Ok(a), Ok(b)) => assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{table}.{column}: page {a}, CSV {b}"
                    ),
                    _ => assert_eq!(got, want, "{table}.{column}"),
                }
            }
        }
        // And the panel's cells show those values (per phase: the phase's name first).
        let cells = snapshot["cells"][table]
            .as_array()
            .expect("energy table rows");
        assert_eq!(cells.len(), rows.len(), "{table}: rows in the panel");
        for (cell, row) in cells.iter().zip(rows) {
            for (column, v) in cell.as_object().expect("cells") {
                assert_eq!(&row[column], v, "{table}.{column} in the panel");
            }
            assert_eq!(cell.get("phase").is_some(), run.is_some(), "{cell}");
        }
    }
}

/// The data-quality panel and the shaded spans against `/quality` for the page's window:
/// the same findings, in the panel's rows, and shaded on the plots of their table and column.
/// A live window is asked again until the page's figures and the agent's agree (the page
/// refreshes them every 30 s; the newest samples of a live window may still be arriving).
fn check_quality(browser: &mut Browser, agent: &Agent) -> Vec<BTreeMap<String, String>> {
    let mut last = String::new();
    let found = wait_for(Duration::from_secs(120), || {
        let q = browser.eval("window.agentPage.quality()").ok()?;
        if q["status"] != 200 {
            return None;
        }
        let url = q["url"].as_str()?.to_string();
        let want = csv(agent, &format!("/{url}"));
        let got: Vec<Vec<String>> = q["findings"]
            .as_array()?
            .iter()
            .map(|f| {
                want.header
                    .iter()
                    .map(|c| f[c].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .collect();
        let header: Vec<&str> = q["header"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if header == want.header && got == want.rows {
            Some((q, url, want))
        } else {
            last = format!("page {got:?}\nagent {:?}", want.rows);
            None
        }
    });
    let Some((q, url, want)) = found else {
        panic!(
            "the page's findings never equalled /quality:\n{last}\n{}",
            browser.diagnostics()
        );
    };
    assert!(url.starts_with("quality?start="), "{url}");
    // The window of the panel is the window shown (a live window's start, which stays).
    let (start, end, mode) = shown(browser);
    assert_eq!(ms(&q["start"]), start, "quality of the shown window: {q}");
    if mode["follow"] == false {
        assert_eq!(ms(&q["end"]), end, "quality of the shown window: {q}");
    }
    let findings: Vec<BTreeMap<String, String>> = want
        .rows
        .iter()
        .map(|row| {
            want.header
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect()
        })
        .collect();
    // The panel's rows.
    let cells = page_value(
        browser,
        "[...document.querySelectorAll('#quality-table tbody tr')].map(tr => Object.assign({table: tr.dataset.table}, \
         Object.fromEntries([...tr.cells].map(td => [td.dataset.col, td.dataset.v]))))",
    );
    let cells = cells.as_array().expect("quality rows");
    assert_eq!(cells.len(), findings.len(), "rows in the quality panel");
    for (cell, finding) in cells.iter().zip(&findings) {
        for (column, value) in finding {
            assert_eq!(
                cell[column].as_str(),
                Some(value.as_str()),
                "{column} in the panel: {cell}"
            );
        }
    }
    if findings.is_empty() {
        let note = page_value(
            browser,
            "document.getElementById('quality-note').textContent",
        );
        assert!(
            note.as_str()
                .unwrap_or("")
                .starts_with("no problem found between"),
            "{note}"
        );
    }
    // Shaded where they belong: each plot shows the findings of its table and column, as
    // drawn on its canvas.
    let drawn = page_value(browser, "window.agentPage.drawn()");
    let plots = series(browser);
    for (id, plot) in &plots {
        let expected: Vec<&BTreeMap<String, String>> = findings
            .iter()
            .filter(|f| f["table"] == plot.table && f["column"] == plot.column)
            .collect();
        for (name, shading) in [
            ("shading", &q["shading"][id]),
            ("drawn", &drawn[id]["shading"]),
        ] {
            let got: Vec<BTreeMap<String, String>> = shading
                .as_array()
                .unwrap_or_else(|| panic!("{id}: no {name}"))
                .iter()
                .map(|f| {
                    f.as_object()
                        .expect("finding")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .collect();
            let want: Vec<BTreeMap<String, String>> =
                expected.iter().map(|f| (*f).clone()).collect();
            assert_eq!(got, want, "{id}: {name} spans");
        }
    }
    findings
}

/// A mark stamped with the page's own button (or its "End run" button for `end`).
fn mark_with_button(browser: &mut Browser, agent: &Agent, run: &str, name: &str) -> i64 {
    let button = if name == "end" {
        "mark-end"
    } else {
        "mark-button"
    };
    page_value(
        browser,
        &format!(
            "(() => {{ document.getElementById('mark-run').value = '{run}'; \
             document.getElementById('mark-name').value = '{name}'; \
             document.getElementById('{button}').click(); return true; }})()"
        ),
    );
    let said = wait_for(Duration::from_secs(30), || {
        let text = browser
            .eval("document.getElementById('mark-result').textContent")
            .ok()?;
        let text = text.as_str()?.to_string();
        text.starts_with(&format!("marked {name} of run {run} at "))
            .then_some(text)
    })
    .unwrap_or_else(|| panic!("the page did not mark {name}:\n{}", browser.diagnostics()));
    let marks = csv(agent, &format!("/marks?run={run}"));
    let time = marks
        .rows
        .iter()
        .rev()
        .find(|row| row[2] == name)
        .map(|row| parse_rfc3339_ms(&row[0]).expect("mark time"))
        .unwrap_or_else(|| panic!("the agent has no mark {name} of {run}: {:?}", marks.rows));
    assert!(said.contains(&clock_of(time)), "{said}");
    time
}

/// `HH:MM:SS` of a time, as the page prints it.
fn clock_of(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Marks and phases of `run` as the page draws them on every plot: a band from each mark to
/// the next, the mark's line at its time (checked on the canvas's pixels too), and, with
/// `labels`, its name written beside it.
fn check_bands(browser: &mut Browser, agent: &Agent, run: &str, labels: bool) {
    let marks = csv(agent, &format!("/marks?run={run}"));
    let marks: Vec<(i64, String)> = marks
        .rows
        .iter()
        .map(|r| (parse_rfc3339_ms(&r[0]).expect("time"), r[2].clone()))
        .collect();
    let phases = csv(agent, &format!("/phases?run={run}"));
    // The page knows the run's marks and phases as the agent does.
    let page_marks = page_value(browser, "window.agentPage.marks()");
    for (time, name) in &marks {
        assert!(
            page_marks.as_array().expect("marks").iter().any(|m| {
                m["run"] == run && m["name"] == name.as_str() && ms(&m["time"]) == *time
            }),
            "the page lacks mark {name} at {time}: {page_marks}"
        );
    }
    let page_phases = page_value(browser, "window.agentPage.phases()");
    let of_run: Vec<&Value> = page_phases
        .as_array()
        .expect("phases")
        .iter()
        .filter(|p| p["run"] == run)
        .collect();
    assert_eq!(of_run.len(), phases.rows.len(), "{page_phases}");
    for (p, row) in of_run.iter().zip(&phases.rows) {
        assert_eq!(p["name"].as_str(), Some(row[1].as_str()), "{p}");
        assert_eq!(ms(&p["start"]), parse_rfc3339_ms(&row[2]).unwrap(), "{p}");
        assert_eq!(ms(&p["end"]), parse_rfc3339_ms(&row[3]).unwrap(), "{p}");
    }
    // What each plot drew and, from the same moment, its pixels: opaque ones of a mark's
    // colour in the mark's column, dark ones where its name is written (the canvas is
    // transparent where nothing is drawn, and the bands are faint tints of the marks' colour).
    let expected_marks = |from: i64, to: i64| {
        marks
            .iter()
            .filter(|(t, _)| (from..=to).contains(t))
            .count()
    };
    let snapshot = wait_for(Duration::from_secs(30), || {
        let snapshot = browser
            .eval(
                "(() => { const drawn = window.agentPage.drawn(), pixels = {}, ink = {}; \
                 for (const [id, d] of Object.entries(drawn)) { \
                   const canvas = document.querySelector('#plot-' + id + ' canvas'); \
                   const ctx = canvas.getContext('2d'); const r = canvas.width / canvas.clientWidth; \
                   pixels[id] = d.marks.map(m => { \
                     const x = Math.round(m.x * r), top = Math.round(d.plot.top * r), h = Math.round(d.plot.height * r); \
                     const px = ctx.getImageData(x, top, 1, h).data; \
                     const want = m.name === 'end' ? [29, 35, 43] : [47, 93, 138]; let hits = 0; \
                     for (let i = 0; i < h; i++) { \
                       if (px[4 * i + 3] > 200 && Math.abs(px[4 * i] - want[0]) + Math.abs(px[4 * i + 1] - want[1]) + \
                           Math.abs(px[4 * i + 2] - want[2]) < 40) hits++; } \
                     return hits / h; }); \
                   const dark = (c, b) => { const img = c.getImageData(Math.round(b.x * r), Math.round(b.y * r), \
                       Math.max(1, Math.round(b.width * r)), Math.round(b.height * r)).data; let n = 0; \
                     for (let i = 0; i < img.length; i += 4) if (img[i + 3] > 160 && img[i] + img[i + 1] + img[i + 2] < 330) n++; \
                     return n; }; \
                   ink[id] = d.marks.map(m => { if (!m.box) return null; \
                     const alone = document.createElement('canvas').getContext('2d', {willReadFrequently: true}); \
                     alone.canvas.width = Math.ceil((m.box.width + 2) * r); alone.canvas.height = Math.ceil(m.box.height * r); \
                     alone.fillStyle = '#fff'; alone.fillRect(0, 0, alone.canvas.width, alone.canvas.height); \
                     alone.font = m.box.font; alone.textAlign = 'left'; alone.textBaseline = 'top'; \
                     alone.fillStyle = '#1d232b'; alone.fillText(m.label, 0, 0); \
                     return [dark(ctx, m.box), dark(alone, {x: 0, y: 0, width: m.box.width, height: m.box.height})]; }); } \
                 return {drawn, pixels, ink}; })()",
            )
            .ok()?;
        let drawn = snapshot["drawn"].as_object()?;
        let complete = drawn.values().all(|d| {
            let (from, to) = (ms(&d["plot"]["from"]), ms(&d["plot"]["to"]));
            d["marks"].as_array().is_some_and(|m| {
                m.iter().filter(|m| m["run"] == run).count() == expected_marks(from, to)
            }) && expected_marks(from, to) > 0
        });
        (drawn.len() == 6 && complete).then_some(snapshot)
    })
    .unwrap_or_else(|| {
        panic!(
            "the plots never showed the marks of {run}:\n{}",
            browser.diagnostics()
        )
    });
    let (drawn, pixels, ink) = (&snapshot["drawn"], &snapshot["pixels"], &snapshot["ink"]);
    for (id, d) in drawn.as_object().expect("drawn") {
        let plot = &d["plot"];
        let (left, width) = (
            plot["left"].as_f64().unwrap(),
            plot["width"].as_f64().unwrap(),
        );
        let (start, end) = (ms(&plot["from"]), ms(&plot["to"]));
        // Bands: one per phase in view, from its mark to the next.
        let bands: Vec<(String, i64, i64)> = d["bands"]
            .as_array()
            .expect("bands")
            .iter()
            .filter(|b| b["run"] == run)
            .map(|b| {
                (
                    b["name"].as_str().unwrap().to_string(),
                    ms(&b["from"]),
                    ms(&b["to"]),
                )
            })
            .collect();
        let want: Vec<(String, i64, i64)> = phases
            .rows
            .iter()
            .map(|r| {
                (
                    r[1].clone(),
                    parse_rfc3339_ms(&r[2]).unwrap(),
                    parse_rfc3339_ms(&r[3]).unwrap(),
                )
            })
            .filter(|(_, from, to)| *from <= end && *to >= start)
            .collect();
        assert_eq!(bands, want, "{id}: bands of {run}");
        let drawn_marks: Vec<&Value> = d["marks"]
            .as_array()
            .expect("marks")
            .iter()
            .filter(|m| m["run"] == run)
            .collect();
        for (i, m) in drawn_marks.iter().enumerate() {
            let time = ms(&m["time"]);
            assert!(
                marks.contains(&(time, m["name"].as_str().unwrap().to_string())),
                "{m}"
            );
            // At the mark's time on the window's linear time axis.
            let x = m["x"].as_f64().unwrap();
            let expected = left + (time - start) as f64 / (end - start) as f64 * width;
            assert!(
                (x - expected).abs() <= 1.5,
                "{id}: {m} drawn at {x}, its time is at {expected}"
            );
            let hits = pixels[id][i].as_f64().unwrap_or(0.0);
            assert!(
                hits >= 0.3,
                "{id}: the line of {m} covers {hits} of its column"
            );
            if labels {
                assert_eq!(m["label"], m["name"], "{id}: name written beside {m}");
            }
            // A name said to be written is on the canvas where it says: about as many dark
            // pixels there as the name written alone.
            if !m["label"].is_null() {
                let (got, alone) = (
                    ink[id][i][0].as_f64().unwrap_or(0.0),
                    ink[id][i][1].as_f64().unwrap_or(0.0),
                );
                assert!(
                    alone >= 8.0 && got >= 0.8 * alone,
                    "{id}: {got} dark pixels where {m} is written, {alone} in the name alone"
                );
            }
        }
    }
}

/// Readiness and last cycle as shown in the header.
fn check_status(browser: &mut Browser, truth: &Truth) {
    let status = wait_for(Duration::from_secs(15), || {
        let s = browser.eval("window.agentPage.status()").ok()?;
        (s["ready"] == true && s["streams"]["nodes"] == "live" && s["streams"]["pods"] == "live")
            .then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "page never showed ready and live:\n{}",
            browser.diagnostics()
        )
    });
    assert_eq!(status["readyz"], "ok");
    let shown = page_value(browser, "document.getElementById('ready').textContent");
    assert_eq!(shown, "ready");
    let last = status["last_cycle"].as_str().and_then(parse_rfc3339_ms);
    let newest = truth.times("nodes").last().copied();
    assert!(
        last.is_some() && last >= newest,
        "last cycle {status} before {newest:?}"
    );
    assert_eq!(status["duplicates"]["nodes"], 0, "{status}");
    assert_eq!(status["duplicates"]["pods"], 0, "{status}");
}

/// Download links: relative, and the buffer ones give the same CSV as `/nodes`, `/pods`.
fn check_downloads(browser: &mut Browser, agent: &Agent) {
    let links = page_value(
        browser,
        "[...document.querySelectorAll('#downloads a')].map(a => a.getAttribute('href'))",
    );
    let links: Vec<&str> = links
        .as_array()
        .expect("links")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(links.len(), 8, "{links:?}");
    assert_eq!(links[..2], ["nodes", "pods"]);
    for link in &links[2..] {
        assert!(link.contains("?start=") && link.contains("&end="), "{link}");
        assert!(!link.starts_with('/'), "{link} must be relative");
    }
    // The page downloads what curl downloads: same header, rows from the same buffer.
    for (link, table) in [(links[0], "nodes"), (links[1], "pods")] {
        let through_page = page_value(
            browser,
            &format!("fetch('{link}').then(r => r.text()).then(t => t.split('\\n')[0])"),
        );
        let header = agent.get(&format!("/{table}")).expect("download");
        assert_eq!(through_page.as_str(), header.lines().next(), "{link}");
    }
    // History, energy, quality and marks of the shown window: served, with their headers.
    for link in &links[2..] {
        let answer = wait_for(Duration::from_secs(60), || {
            let answer = browser
                .eval(&format!(
                    "fetch('{link}').then(async r => [r.status, (await r.text()).trim().split('\\n')])"
                ))
                .ok()?;
            (answer[0] != 503).then_some(answer)
        })
        .unwrap_or_else(|| panic!("{link}: busy for a minute"));
        let lines = answer[1].as_array().expect("lines");
        assert_eq!(answer[0], 200, "{link}: {answer}");
        let header = lines[0].as_str().unwrap_or_default();
        let (expected, rows) = if link.starts_with("energy") {
            ("seconds", true)
        } else if link.starts_with("quality") {
            ("problem", true)
        } else if link.starts_with("marks") {
            ("time,run,name", false)
        } else {
            ("observation_time", true)
        };
        assert!(header.contains(expected), "{link}: {header}");
        assert!(!rows || lines.len() >= 2, "{link}: no rows");
    }
}

fn screenshot(browser: &mut Browser, name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    browser.screenshot(&path);
    println!("screenshot: {}", path.display());
    path
}

#[test]
fn base64_decoding_of_cdp_data() {
    assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
    assert_eq!(base64_decode("Zg==").as_deref(), Some(&b"f"[..]));
    assert_eq!(base64_decode("Zm8=").as_deref(), Some(&b"fo"[..]));
    assert_eq!(base64_decode("Zm9vYmFy").as_deref(), Some(&b"foobar"[..]));
    assert_eq!(
        base64_decode("iVBO\nRw0K").as_deref(),
        Some(&b"\x89PNG\r\n"[..])
    );
    assert_eq!(base64_decode("Zm9v!mFy"), None);
}

#[test]
fn live_page_in_chromium_follows_the_agent_through_restarts() {
    let _one = one_at_a_time();
    let stack = Stack::start(Convention::A);
    let agent_port = free_port();
    let mut agent = stack.agent_on(agent_port, INTERVAL, ENV);
    let agent_addr: SocketAddr = ([127, 0, 0, 1], agent_port).into();
    let mut forward = Forward::start(0, agent_addr);
    let page_url = format!("http://127.0.0.1:{}/", forward.port());

    // curl keeps the text index; a browser's Accept gets the page and its library.
    for base in [
        agent.url().to_string(),
        page_url.trim_end_matches('/').to_string(),
    ] {
        let (head, body) = curl_accept(&format!("{base}/"), "*/*");
        assert!(head.contains("content-type: text/plain"), "{head}");
        assert!(body.starts_with("prometheus-agent: "), "{body}");
        let (head, body) = curl_accept(&format!("{base}/"), BROWSER_ACCEPT);
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(body.starts_with("<!doctype html>"), "{body}");
    }
    let (head, body) = curl_accept(
        &format!("{}/page/uPlot-1.6.32.iife.min.js", agent.url()),
        "*/*",
    );
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(head.contains("cache-control: public, max-age=31536000, immutable"));
    assert!(body.contains("uPlot"));
    let plain = support::prometheus::curl(&format!("{}/", agent.url())).expect("curl /");
    assert!(plain.contains("/metrics/pods"), "{plain}");

    wait_for(Duration::from_secs(60), || {
        let pods = Table::parse(&agent.get("/pods").ok()?).ok()?;
        (pods.rows.len() >= 8).then_some(())
    })
    .unwrap_or_else(|| panic!("the agent has no rows:\n{}", agent.log()));

    let mut browser = Browser::start(1400, 900);
    let mut truth = Truth::default();
    truth.snapshot(&agent);
    browser.navigate(&page_url);
    check_plots(&mut browser, &agent, &mut truth, 0);
    check_status(&mut browser, &truth);
    check_energy(&mut browser, &agent, None);
    let findings = check_quality(&mut browser, &agent);
    // The synthetic cluster's true gaps: worker-3 has no meter and no Scaphandre.
    assert!(
        findings.iter().any(|f| f["instance"] == "worker-3"
            && f["column"] == "wattage"
            && f["problem"] == "absent"),
        "{findings:?}"
    );
    check_downloads(&mut browser, &agent);
    screenshot(&mut browser, "page.png");

    // The port-forward dies for a few cycles and is started again on the same port: the
    // page reconnects with `since` and gets exactly the rows it missed.
    let reconnects = page_value(&mut browser, "window.agentPage.reconnects");
    let port = forward.port();
    forward.stop();
    wait_for(Duration::from_secs(15), || {
        let text = browser
            .eval("document.getElementById('stream-nodes').textContent")
            .ok()?;
        text.as_str()?.contains("reconnecting").then_some(())
    })
    .unwrap_or_else(|| panic!("the page did not notice the lost connection"));
    std::thread::sleep(Duration::from_secs(3));
    forward = Forward::start(port, agent_addr);
    check_plots(&mut browser, &agent, &mut truth, 0);
    check_status(&mut browser, &truth);
    let after = page_value(&mut browser, "window.agentPage.reconnects");
    assert!(
        after.as_u64() > reconnects.as_u64(),
        "{reconnects} → {after}"
    );

    // The agent itself is replaced by a new process on the same port. Rows it made between
    // the last download and its exit may be plotted without having been downloaded (one
    // cycle at most).
    truth.snapshot(&agent);
    let (status, _) = agent.signal_and_wait("TERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "agent exit");
    drop(agent);
    let agent = stack.agent_on(agent_port, INTERVAL, ENV);
    check_plots(&mut browser, &agent, &mut truth, 1);
    check_status(&mut browser, &truth);
    check_energy(&mut browser, &agent, None);
    let after_restart = page_value(&mut browser, "window.agentPage.reconnects");
    assert!(after_restart.as_u64() > after.as_u64());
    screenshot(&mut browser, "page-after-restarts.png");
    drop(forward);
}

/// A new user's first minutes: the node exporters were scraped for a minute and the pods of
/// the experiment for the last 45 s before the agent even started; the page opened on `/`
/// shows all of it from history (the last 15 minutes), then live rows after it without a
/// gap; the user marks a run's phases with the page's button, sees them as bands and the
/// energy per phase, then opens the run (`/?run=R`) and a window (`/?start&end`) by address:
/// plotted exactly as the agent's history rows, with the data quality of that window.
#[test]
fn new_user_sees_history_marks_a_run_and_opens_it_by_address() {
    let _one = one_at_a_time();
    let full = Scenario::new(Convention::A);
    let mut nodes_only = full.clone();
    nodes_only.pods.clear();
    let now = now_ms() / 1000 * 1000;
    let (nodes_from, pods_from) = (now - 60_000, now - 45_000);
    let past = Past::start(
        &[
            Piece {
                scenario: nodes_only,
                from_ms: nodes_from,
                to_ms: pods_from - 1000,
            },
            Piece {
                scenario: full.clone(),
                from_ms: pods_from,
                to_ms: now,
            },
        ],
        full,
        nodes_from,
    );
    let agent_port = free_port();
    let agent = past
        .stack
        .agent_on(agent_port, INTERVAL, &[("BUFFER_SIZE", "1000")]);
    let agent_started = now_ms();
    wait_for(Duration::from_secs(60), || {
        let pods = Table::parse(&agent.get("/pods").ok()?).ok()?;
        (pods.rows.len() >= 8).then_some(())
    })
    .unwrap_or_else(|| panic!("the agent has no rows:\n{}", agent.log()));
    let forward = Forward::start(0, ([127, 0, 0, 1], agent_port).into());
    let page_url = format!("http://127.0.0.1:{}/", forward.port());

    let mut browser = Browser::start(1400, 900);
    let mut truth = Truth::default();
    truth.snapshot(&agent);
    browser.navigate(&page_url);
    check_plots(&mut browser, &agent, &mut truth, 0);
    check_status(&mut browser, &truth);

    // From history: the last 15 minutes were asked, and the rows from before the page (and
    // the agent) plotted, nodes from their first scrape on, pods 15 s later.
    let (start, _, view) = shown(&mut browser);
    assert_eq!(view["mode"], "live", "{view}");
    let history = page_value(&mut browser, "window.agentPage.history()");
    for table in ["nodes", "pods"] {
        let from = ms(&history["tables"][table]["from"]);
        assert!(
            from <= now - 14 * 60_000,
            "{table}: history from {from}: {history}"
        );
        let loaded = truth.history.get(table).map_or(0, BTreeSet::len);
        assert!(
            loaded >= 20,
            "{table}: {loaded} cycles from history: {history}"
        );
    }
    let plots = series(&mut browser);
    let first = |id: &str| plots[id].times[0];
    assert!(
        (nodes_from..nodes_from + 2_000).contains(&first("node-kepler")),
        "nodes from {} on, the first plotted at {}",
        nodes_from,
        first("node-kepler")
    );
    assert!(
        (pods_from..pods_from + 2_000).contains(&first("pod-cpu")),
        "pods from {pods_from} on, the first plotted at {}",
        first("pod-cpu")
    );
    assert_eq!(
        start,
        first("node-kepler"),
        "the window starts with the first row"
    );
    let before_agent = plots["pod-cpu"]
        .times
        .iter()
        .filter(|t| **t < agent_started - 2_000)
        .count();
    assert!(
        before_agent >= 40,
        "{before_agent} pod cycles from before the agent"
    );
    let findings = check_quality(&mut browser, &agent);
    assert!(
        findings.iter().any(|f| f["name"] == "idle-sleeper"
            && f["column"] == "wattage_scaph"
            && f["problem"] == "absent"),
        "{findings:?}"
    );

    // A name the agent would refuse is refused on the page, and nothing is stamped.
    page_value(
        &mut browser,
        "(() => { document.getElementById('mark-run').value = 'trial-1'; \
         document.getElementById('mark-name').value = 'warm up'; \
         document.getElementById('mark-button').click(); return true; })()",
    );
    let said = page_value(
        &mut browser,
        "document.getElementById('mark-result').textContent",
    );
    assert!(
        said.as_str().unwrap_or("").contains("letters, digits"),
        "{said}"
    );
    assert!(csv(&agent, "/marks").rows.is_empty(), "nothing stamped");

    // A run marked with the page's button: bands on every plot, energy per phase.
    let run = "trial-1";
    let baseline = mark_with_button(&mut browser, &agent, run, "baseline");
    std::thread::sleep(Duration::from_millis(2500));
    mark_with_button(&mut browser, &agent, run, "load");
    std::thread::sleep(Duration::from_millis(2500));
    let end = mark_with_button(&mut browser, &agent, run, "end");
    check_bands(&mut browser, &agent, run, false);
    // One scrape interval: the run's last samples reach Prometheus.
    std::thread::sleep(Duration::from_secs(2));
    page_value(
        &mut browser,
        "(() => { const s = document.getElementById('energy-mode'); s.value = 'trial-1'; \
         s.dispatchEvent(new Event('change')); return true; })()",
    );
    check_energy(&mut browser, &agent, Some(run));
    screenshot(&mut browser, "page-new-user.png");

    // The run, opened by its address: its window, from history only.
    browser.navigate(&format!("{page_url}?run={run}"));
    history_loaded(&mut browser);
    let (start, stop, view) = shown(&mut browser);
    assert_eq!((start, stop), (baseline, end), "{view}");
    assert_eq!(view["mode"], "run", "{view}");
    assert_eq!(view["follow"], false, "{view}");
    check_history_plots(&mut browser, &agent, &format!("run={run}"));
    check_bands(&mut browser, &agent, run, true);
    check_energy(&mut browser, &agent, Some(run));
    check_quality(&mut browser, &agent);
    let status = page_value(&mut browser, "window.agentPage.status()");
    assert_eq!(
        status["rows"]["nodes"], 0,
        "no stream for a past run: {status}"
    );
    let run_shot = screenshot(&mut browser, "page-run.png");
    if let Some(copy) = std::env::var_os("PAGE_SCREENSHOT") {
        std::fs::copy(&run_shot, &copy).expect("cannot copy the screenshot");
        println!("screenshot copied to {}", PathBuf::from(copy).display());
    }

    // A window by address, not on the agent's grid: the same rows as its history.
    let (from, to) = (pods_from - 5_250, now - 20_000);
    browser.navigate(&format!("{page_url}?start={}&end={}", at(from), at(to)));
    history_loaded(&mut browser);
    let (start, stop, view) = shown(&mut browser);
    assert_eq!((start, stop), (from, to), "{view}");
    assert_eq!(view["mode"], "window", "{view}");
    check_history_plots(
        &mut browser,
        &agent,
        &format!("start={}&end={}", at(from), at(to)),
    );
    check_quality(&mut browser, &agent);
    check_energy(&mut browser, &agent, None);
    drop(forward);
}
