//! A past for the synthetic cluster: the exporter's expositions at regular times, written
//! as TSDB blocks for a real Prometheus (`promtool tsdb create-blocks-from openmetrics`) or
//! imported into a real VictoriaMetrics (`/api/v1/import/prometheus`). An exporter started
//! with the same `t0` (`Exporter::start_at`) continues the same series.
//!
//! Depends on `cluster/` only, so that `examples/backfill.rs` (used by
//! `bench/history-export.sh`) can include it too.

// Shared by the integration tests and the `backfill` example, each using a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cluster::Scenario;

/// Where Debian's `prometheus` package puts promtool; `PROMTOOL_BIN` overrides it.
const DEFAULT_PROMTOOL: &str = "/usr/bin/promtool";

/// promtool's block range: a piece of this length, aligned on the epoch, becomes exactly one
/// block and is read once.
const PIECE_MS: i64 = 2 * 3600 * 1000;

/// Expositions per VictoriaMetrics import request (about 60 KB each).
const IMPORT_BATCH: usize = 300;

/// The scraping to pretend happened: the exporter (counters growing since `t0_ms`) scraped
/// at `from_ms + k·interval_ms` for every such time up to `to_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Backfill {
    pub t0_ms: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
}

impl Backfill {
    /// The scrape times, oldest first.
    pub fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (from, to, interval) = (self.from_ms, self.to_ms, self.interval_ms.max(1));
        (0..)
            .map(move |k| from + k * interval)
            .take_while(move |t| *t <= to)
    }

    /// Scrape times in epoch-aligned pieces of at most `piece_ms`.
    fn pieces(&self, piece_ms: i64) -> Vec<Vec<i64>> {
        let mut pieces: Vec<Vec<i64>> = Vec::new();
        let mut current = None;
        for t in self.times() {
            let piece = t.div_euclid(piece_ms);
            if current != Some(piece) {
                pieces.push(Vec::new());
                current = Some(piece);
            }
            if let Some(last) = pieces.last_mut() {
                last.push(t);
            }
        }
        pieces
    }
}

/// One metric family of an exposition: its type and each series' samples.
struct Family {
    name: String,
    kind: String,
    series: Vec<(String, Vec<(i64, f64)>)>,
}

/// The expositions of `scenario` at `times` as OpenMetrics: each family once, each series'
/// samples together and in time order, timestamps in seconds, `# EOF` at the end. Returns
/// the number of samples.
pub fn write_openmetrics(
    scenario: &Scenario,
    t0_ms: i64,
    times: &[i64],
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let mut families: Vec<Family> = Vec::new();
    // Series text → (family, series) positions.
    let mut index: HashMap<String, (usize, usize)> = HashMap::new();
    // The labels of every series, rendered once: only values and timestamps change.
    let exposition = scenario.exposition();
    for &t in times {
        let text = exposition.render(t0_ms, t);
        let mut family = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
                let at = match families.iter().position(|f| f.name == name) {
                    Some(at) => at,
                    None => {
                        families.push(Family {
                            name: name.to_string(),
                            kind: kind.to_string(),
                            series: Vec::new(),
                        });
                        families.len() - 1
                    }
                };
                family = Some(at);
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            // `name{labels} value timestamp_ms`; label values may contain spaces.
            let mut fields = line.rsplitn(3, ' ');
            let (Some(stamp), Some(value), Some(series)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(std::io::Error::other(format!("unexpected line {line:?}")));
            };
            let (Ok(stamp), Ok(value)) = (stamp.parse::<i64>(), value.parse::<f64>()) else {
                return Err(std::io::Error::other(format!("unexpected sample {line:?}")));
            };
            let Some(f) = family else {
                return Err(std::io::Error::other(format!("{line:?} before any # TYPE")));
            };
            let (f, s) = match index.get(series) {
                Some(at) => *at,
                None => {
                    families[f].series.push((series.to_string(), Vec::new()));
                    let at = (f, families[f].series.len() - 1);
                    index.insert(series.to_string(), at);
                    at
                }
            };
            families[f].series[s].1.push((stamp, value));
        }
    }
    let mut samples = 0;
    for family in &families {
        // OpenMetrics names a counter family without its `_total` suffix.
        let name = match family.kind.as_str() {
            "counter" => family.name.strip_suffix("_total").unwrap_or(&family.name),
            _ => family.name.as_str(),
        };
        writeln!(out, "# TYPE {name} {}", family.kind)?;
        for (series, points) in &family.series {
            for (stamp, value) in points {
                let (secs, millis) = (stamp.div_euclid(1000), stamp.rem_euclid(1000));
                writeln!(out, "{series} {value} {secs}.{millis:03}")?;
                samples += 1;
            }
        }
    }
    writeln!(out, "# EOF")?;
    Ok(samples)
}

fn promtool_binary() -> PathBuf {
    let path = std::env::var_os("PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROMTOOL));
    if !path.is_file() {
        panic!(
            "\n\npromtool not found at {}.\n\
             Backfilling Prometheus needs promtool: run `scripts/setup` (it comes with the \
             Debian package `prometheus`), or point PROMTOOL_BIN at a promtool binary.\n",
            path.display()
        );
    }
    path
}

/// Writes `past` as TSDB blocks into `data_dir` (a Prometheus `--storage.tsdb.path`), one
/// promtool run per epoch-aligned two-hour piece, with `scratch` holding each piece's
/// OpenMetrics file meanwhile. Returns the number of samples.
pub fn create_blocks(
    scenario: &Scenario,
    past: &Backfill,
    data_dir: &Path,
    scratch: &Path,
) -> Result<usize, String> {
    let promtool = promtool_binary();
    fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let input = scratch.join("backfill.om");
    let mut samples = 0;
    for times in past.pieces(PIECE_MS) {
        let file = fs::File::create(&input).map_err(|e| format!("{}: {e}", input.display()))?;
        let mut out = BufWriter::new(file);
        samples += write_openmetrics(scenario, past.t0_ms, &times, &mut out)
            .and_then(|n| out.flush().map(|()| n))
            .map_err(|e| format!("{}: {e}", input.display()))?;
        drop(out);
        let output = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(data_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", promtool.display()))?;
        if !output.status.success() {
            return Err(format!(
                "promtool failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let _ = fs::remove_file(&input);
    Ok(samples)
}

/// Sends `past` to a VictoriaMetrics at `url` through `/api/v1/import/prometheus` (the text
/// exposition with millisecond timestamps), then makes it searchable. Returns the number of
/// expositions sent.
pub fn import_into_victoria(
    scenario: &Scenario,
    past: &Backfill,
    url: &str,
) -> Result<usize, String> {
    let times: Vec<i64> = past.times().collect();
    for batch in times.chunks(IMPORT_BATCH) {
        let mut body = String::new();
        for &t in batch {
            body.push_str(&scenario.render(past.t0_ms, t));
        }
        post(&format!("{url}/api/v1/import/prometheus"), body.as_bytes())?;
    }
    // Imported rows are searchable only once flushed (about every second otherwise).
    let output = Command::new("curl")
        .args(["-sS", "-f", "--max-time", "30"])
        .arg(format!("{url}/internal/force_flush"))
        .output()
        .map_err(|e| format!("cannot run curl ({e}): is curl installed?"))?;
    if !output.status.success() {
        return Err(format!(
            "force_flush: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(times.len())
}

/// `curl -f --data-binary @-` of `body` to `url`.
fn post(url: &str, body: &[u8]) -> Result<(), String> {
    let mut child = Command::new("curl")
        .args(["-sS", "-f", "--max-time", "60", "--data-binary", "@-", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run curl ({e}): is curl installed?"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body)
            .map_err(|e| format!("writing to curl: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("curl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "POST {url}: {}{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        ))
    }
}
