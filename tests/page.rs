//! The live page (README, "The live page") in a real headless Chromium, against the agent, a real Prometheus
//! and the synthetic exporter. The page is opened through a TCP forwarder on another port, as
//! through `kubectl port-forward`, and read back through `window.agentPage` and its DOM:
//! one series per node and pod named as in the CSV, every plotted point equal to the CSV row
//! of its time (empty field = gap), the energy panel equal to `/energy/*`, and no gap and no
//! duplicate after the port-forward and then the agent are restarted.
//!
//! Needs /usr/bin/prometheus, curl and chromium (`scripts/setup` installs them). The
//! screenshots' paths are printed; `PAGE_SCREENSHOT=docs/page.png` also writes one there.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::browser::{Browser, base64_decode};
use support::cluster::Convention;
use support::forward::Forward;
use support::prometheus::{Agent, free_port, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

const INTERVAL: &str = "500ms";
const ENV: &[(&str, &str)] = &[("BUFFER_SIZE", "5000")];
/// What Chromium sends when it opens a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

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

/// Rows served by the agents so far, by table, observation time and node/pod name.
#[derive(Default)]
struct Truth {
    header: BTreeMap<&'static str, Vec<String>>,
    rows: BTreeMap<(&'static str, i64, String), Vec<String>>,
}

impl Truth {
    fn key_column(table: &str) -> &'static str {
        if table == "nodes" { "instance" } else { "name" }
    }

    /// Downloads `/nodes` and `/pods` and remembers their rows.
    fn snapshot(&mut self, agent: &Agent) {
        for table in ["nodes", "pods"] {
            let csv = Table::parse(&agent.get(&format!("/{table}")).expect("download"))
                .expect("CSV download");
            let at = csv.column("observation_time").expect("observation_time");
            let key = csv.column(Truth::key_column(table)).expect("key column");
            for row in &csv.rows {
                let t = parse_rfc3339_ms(&row[at]).expect("observation_time");
                self.rows.insert((table, t, row[key].clone()), row.clone());
            }
            self.header.insert(table, csv.header);
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

fn series(browser: &mut Browser) -> BTreeMap<String, Plot> {
    let value = browser
        .eval("window.agentPage.series()")
        .unwrap_or_else(|e| panic!("{e}\n{}", browser.diagnostics()));
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

/// Waits until the page shows the newest cycle of `agent`, then checks every plot against
/// the rows served so far (`truth`, updated here). `unseen` cycles (rows the page received
/// but no download caught, e.g. just before an agent stopped) are allowed between the ones
/// checked and left unchecked.
fn check_plots(browser: &mut Browser, agent: &Agent, truth: &mut Truth, unseen: usize) {
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
        // No gap: every cycle served within the shown span is plotted; and nothing plotted
        // that no agent served, beyond the allowed unseen cycles.
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
                let same = match (got, want) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    (None, None) => true,
                    _ => false,
                };
                assert!(same, "{id}/{label} at {time}: page {got:?}, CSV {want:?}");
            }
        }
    }
    // The scenario has empty fields (a node without a meter): they must be gaps.
    let gaps = plots
        .values()
        .flat_map(|p| p.values.values())
        .any(|v| v.last().is_some_and(Option::is_none));
    assert!(gaps, "expected some empty fields plotted as gaps");
}

/// The energy panel against `/energy/*` for the same window.
fn check_energy(browser: &mut Browser, agent: &Agent) {
    // The figures and the panel's cells (raw value in data-v) read together: the page may
    // refresh its energy at any time.
    let snapshot = wait_for(Duration::from_secs(30), || {
        let e = browser
            .eval(
                "({energy: window.agentPage.energy(), cells: Object.fromEntries(['nodes', 'pods'].map(t => \
                 [t, [...document.querySelectorAll('#energy-' + t + ' tbody tr')].map(tr => \
                 Object.fromEntries([...tr.cells].map(td => [td.dataset.col, td.dataset.v])))]))})",
            )
            .ok()?;
        let energy = &e["energy"];
        (!energy["start"].is_null() && !energy["pods"]["status"].is_null()).then_some(e)
    })
    .unwrap_or_else(|| panic!("no energy figures on the page:\n{}", browser.diagnostics()));
    let energy = &snapshot["energy"];
    let first = series(browser)["node-kepler"].times[0];
    assert_eq!(
        energy["start"].as_str().and_then(parse_rfc3339_ms),
        Some(first),
        "energy window starts at the first shown cycle: {energy}"
    );
    for table in ["nodes", "pods"] {
        let shown = &energy[table];
        let url = shown["url"].as_str().expect("energy url");
        assert!(
            url.starts_with(&format!("energy/{table}?start=")),
            "relative URL: {url}"
        );
        assert_eq!(shown["status"], 200, "{table}: {shown}");
        let csv = Table::parse(&agent.get(&format!("/{url}")).expect("energy download"))
            .expect("energy CSV");
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
        // And the panel's cells show those values.
        let cells = snapshot["cells"][table]
            .as_array()
            .expect("energy table rows");
        assert_eq!(cells.len(), rows.len(), "{table}: rows in the panel");
        for (cell, row) in cells.iter().zip(rows) {
            for (column, v) in cell.as_object().expect("cells") {
                assert_eq!(&row[column], v, "{table}.{column} in the panel");
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
    assert_eq!(links.len(), 6, "{links:?}");
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
    // History and energy of the shown window: served, with their tables' headers and rows.
    for link in &links[2..] {
        let answer = page_value(
            browser,
            &format!(
                "fetch('{link}').then(async r => [r.status, (await r.text()).trim().split('\\n')])"
            ),
        );
        let lines = answer[1].as_array().expect("lines");
        assert_eq!(answer[0], 200, "{link}: {answer}");
        let header = lines[0].as_str().unwrap_or_default();
        let expected = if link.starts_with("energy") {
            "seconds"
        } else {
            "observation_time"
        };
        assert!(header.contains(expected), "{link}: {header}");
        assert!(lines.len() >= 2, "{link}: no rows");
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
    browser.navigate(&page_url);
    let mut truth = Truth::default();
    check_plots(&mut browser, &agent, &mut truth, 0);
    check_status(&mut browser, &truth);
    check_energy(&mut browser, &agent);
    check_downloads(&mut browser, &agent);
    let first = screenshot(&mut browser, "page.png");
    if let Some(copy) = std::env::var_os("PAGE_SCREENSHOT") {
        std::fs::copy(&first, &copy).expect("cannot copy the screenshot");
        println!("screenshot copied to {}", PathBuf::from(copy).display());
    }

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
    check_energy(&mut browser, &agent);
    let after_restart = page_value(&mut browser, "window.agentPage.reconnects");
    assert!(after_restart.as_u64() > after.as_u64());
    screenshot(&mut browser, "page-after-restarts.png");
    drop(forward);
}
