//! Reading the agent's CSV tables and comparing them with the truth.

use super::cluster::{Cell, Row};

/// Relative tolerance of numeric comparisons.
pub const TOLERANCE: f64 = 1e-6;

/// A CSV table as served by the agent.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| format!("bad CSV header: {e}"))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| format!("bad CSV record: {e}"))?;
            rows.push(record.iter().map(str::to_string).collect());
        }
        Ok(Table { header, rows })
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|c| c == name)
    }

    /// The rows of the newest cycle: all rows sharing the greatest `collection_time`.
    pub fn last_cycle(&self) -> Vec<Vec<String>> {
        let Some(at) = self.column("collection_time") else {
            return Vec::new();
        };
        let newest = self
            .rows
            .iter()
            .filter_map(|row| parse_rfc3339_ms(&row[at]))
            .max();
        self.rows
            .iter()
            .filter(|row| newest.is_some() && parse_rfc3339_ms(&row[at]) == newest)
            .cloned()
            .collect()
    }
}

/// Parses the exact form `YYYY-MM-DDTHH:MM:SS.mmmZ` into Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ];
    if !digits.iter().all(|&i| b[i].is_ascii_digit()) || !separators.iter().all(|&(i, c)| b[i] == c)
    {
        return None;
    }
    let num = |from: usize, to: usize| text[from..to].parse::<i64>().ok();
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (proleptic Gregorian), after Howard Hinnant.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// Whether Prometheus's extrapolation in `rate()`/`increase()` over
/// `[t - window, t]` reaches both ends of the window given the sample times,
/// which makes the results of linear counters exact.
pub fn window_fully_covered(samples: &[i64], t_ms: i64, window_ms: i64) -> bool {
    let inside = samples_in_window(samples, t_ms, window_ms);
    match inside.last() {
        // A scrape this close before `t` may not have been stored yet when
        // the query ran: the result must be exact with or without it.
        Some(&last) if t_ms - last < 50 => {
            extrapolates_fully(&inside, t_ms, window_ms)
                && extrapolates_fully(&inside[..inside.len() - 1], t_ms, window_ms)
        }
        _ => extrapolates_fully(&inside, t_ms, window_ms),
    }
}

/// How the samples sit in `[t - window, t]`, for failure messages.
pub fn coverage_report(samples: &[i64], t_ms: i64, window_ms: i64) -> String {
    let inside = samples_in_window(samples, t_ms, window_ms);
    match (inside.first(), inside.last()) {
        (Some(first), Some(last)) => format!(
            "{} samples in the window, first {} ms after its start, last {} ms before its end",
            inside.len(),
            first - (t_ms - window_ms),
            t_ms - last
        ),
        _ => "no sample in the window".to_string(),
    }
}

fn samples_in_window(samples: &[i64], t_ms: i64, window_ms: i64) -> Vec<i64> {
    samples
        .iter()
        .copied()
        .filter(|&s| s >= t_ms - window_ms && s <= t_ms)
        .collect()
}

/// Prometheus 2.x's rule (`extrapolatedRate`): a window end is reached when
/// the gap to the nearest sample is below 1.1 times the average interval.
fn extrapolates_fully(inside: &[i64], t_ms: i64, window_ms: i64) -> bool {
    if inside.len() < 3 {
        return false;
    }
    let (first, last) = (inside[0], inside[inside.len() - 1]);
    let average = (last - first) as f64 / (inside.len() - 1) as f64;
    // One millisecond less for the rounding of `t` to milliseconds.
    let threshold = average * 1.1 - 1.0;
    ((first - (t_ms - window_ms)) as f64) < threshold && ((t_ms - last) as f64) < threshold
}

/// Whether `text` is a number in plain decimal (no exponent, no NaN/inf).
pub fn plain_decimal(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        && body.chars().filter(|&c| c == '.').count() <= 1
        && !body.starts_with('.')
        && !body.ends_with('.')
}

/// Numbers equal within [`TOLERANCE`] (relative).
pub fn close(expected: f64, got: f64) -> bool {
    (expected - got).abs() <= TOLERANCE * expected.abs().max(got.abs())
}

/// Compares `rows` (with `header`) against `expected`, keyed by the column
/// `key`; returns one line per disagreement.
pub fn compare(
    what: &str,
    key: &str,
    expected: &[Row],
    header: &[String],
    rows: &[Vec<String>],
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(key_at) = header.iter().position(|c| c == key) else {
        return vec![format!("{what}: no `{key}` column in {header:?}")];
    };
    for row in rows {
        if !expected.iter().any(|e| e.text(key) == row[key_at]) {
            problems.push(format!("{what}: unexpected row `{}`: {row:?}", row[key_at]));
        }
    }
    for want in expected {
        let name = want.text(key);
        let got: Vec<&Vec<String>> = rows.iter().filter(|r| r[key_at] == name).collect();
        let got = match got.as_slice() {
            [one] => *one,
            [] => {
                problems.push(format!("{what}: missing row `{name}`"));
                continue;
            }
            many => {
                problems.push(format!("{what}: {} rows `{name}` in one cycle", many.len()));
                continue;
            }
        };
        for (column, cell) in &want.cells {
            let Some(at) = header.iter().position(|c| c == column) else {
                problems.push(format!("{what}: no column `{column}`"));
                continue;
            };
            let value = got[at].as_str();
            let ok = match cell {
                Cell::Text(text) => value == text,
                Cell::Num(None) => value.is_empty(),
                Cell::Num(Some(number)) => {
                    plain_decimal(value) && value.parse::<f64>().is_ok_and(|v| close(*number, v))
                }
            };
            if !ok {
                let expected = match cell {
                    Cell::Num(None) => "(empty)".to_string(),
                    other => other.render(),
                };
                let got = if value.is_empty() { "(empty)" } else { value };
                problems.push(format!(
                    "{what}: row `{name}`, column {column}: expected {expected}, got {got}"
                ));
            }
        }
    }
    problems
}
