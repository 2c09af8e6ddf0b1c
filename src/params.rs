//! Query parameters of the table, stream and energy paths (README, "API").
//!
//! Strict on purpose: an unknown or repeated parameter is a 400, so a typo such as `sise=10`
//! is reported instead of silently returning everything. Times are parsed here into numbers;
//! no client text ever travels further.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::format::Millis;
use crate::table::RowFilter;

/// Most steps one history request may span.
pub const MAX_HISTORY_STEPS: i64 = 100_000;
/// How far back a stream may ask to be resumed from history.
pub const MAX_RESUME: Duration = Duration::from_secs(24 * 3600);

/// What a table path (`/nodes`, `/download`, `/pods`) was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRequest {
    /// Rows from the buffer.
    Buffer(RowFilter),
    /// Rows computed from Prometheus for a past span.
    History(Span),
}

/// Evaluation times `start + k·step` for every k with `start + k·step <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Millis,
    pub end: Millis,
    pub step: Millis,
}

impl Span {
    pub fn steps(&self) -> i64 {
        (self.end - self.start) / self.step + 1
    }
}

/// An energy window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

/// The parameters of a query string, decoded; only `allowed` names, each at most once.
fn pairs(query: &str, allowed: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut found = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name)?;
        let value = percent_decode(raw)?;
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "unknown parameter {name:?} (known: {})",
                allowed.join(", ")
            ));
        }
        if found.insert(name.clone(), value).is_some() {
            return Err(format!("parameter {name} given twice"));
        }
    }
    Ok(found)
}

fn time_param(name: &str, value: &str) -> Result<Millis, String> {
    parse_time(value).ok_or_else(|| {
        format!(
            "{name} must be an RFC 3339 time (2026-01-31T12:00:05.123Z) or Unix seconds, got {value:?}"
        )
    })
}

fn size_param(value: &str, buffer_size: usize) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= buffer_size)
        .ok_or_else(|| {
            format!("size must be a whole number from 0 to {buffer_size}, got {value:?}")
        })
}

/// `size` and `since` of a stream path. `since` may reach back at most 24 h before `now`:
/// older cycles would come from history.
pub fn parse_stream_filter(
    query: &str,
    buffer_size: usize,
    now: Millis,
) -> Result<RowFilter, String> {
    let filter = parse_filter(query, buffer_size)?;
    if let Some(since) = filter.since_ms
        && since < now - MAX_RESUME.as_millis() as Millis
    {
        return Err(
            "since is more than 24h ago: fetch older rows with /nodes or /pods?start=…".into(),
        );
    }
    Ok(filter)
}

/// `size` and `since` (rows collected and observed after T) of a buffer download or stream.
pub fn parse_filter(query: &str, buffer_size: usize) -> Result<RowFilter, String> {
    let found = pairs(query, &["size", "since"])?;
    Ok(RowFilter {
        size: found
            .get("size")
            .map(|v| size_param(v, buffer_size))
            .transpose()?,
        since_ms: found
            .get("since")
            .map(|v| time_param("since", v))
            .transpose()?,
    })
}

/// A table path: `size`/`since` for the buffer, or `start`/`end`/`step` for history.
/// `step` defaults to `default_step` (the update interval), `end` to `now`.
pub fn parse_table_request(
    query: &str,
    buffer_size: usize,
    default_step: Millis,
    now: Millis,
) -> Result<TableRequest, String> {
    let found = pairs(query, &["size", "since", "start", "end", "step"])?;
    let Some(start) = found.get("start") else {
        if found.contains_key("end") || found.contains_key("step") {
            return Err("end and step need start (history: ?start=T1&end=T2&step=S)".into());
        }
        return parse_filter(query, buffer_size).map(TableRequest::Buffer);
    };
    if found.contains_key("size") || found.contains_key("since") {
        return Err("start (history) cannot be combined with size or since (buffer)".into());
    }
    let start = time_param("start", start)?;
    let end = found
        .get("end")
        .map(|v| time_param("end", v))
        .transpose()?
        .unwrap_or(now);
    let step = found
        .get("step")
        .map(|v| step_param(v))
        .transpose()?
        .unwrap_or(default_step);
    let span = Span { start, end, step };
    if end < start {
        return Err("end is before start".into());
    }
    if end > now + step {
        return Err("end is in the future by more than one step".into());
    }
    if span.steps() > MAX_HISTORY_STEPS {
        return Err(format!(
            "{} steps requested, at most {MAX_HISTORY_STEPS}: use a larger step or a shorter span",
            span.steps()
        ));
    }
    Ok(TableRequest::History(span))
}

/// `step`: humantime (`15s`, `1m`) or seconds, at least 1 s, whole milliseconds.
fn step_param(value: &str) -> Result<Millis, String> {
    let parsed = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Some(Duration::from_secs_f64(secs))
        }
        Ok(_) => None,
        Err(_) => humantime::parse_duration(value).ok(),
    };
    parsed
        .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_RESUME)
        .map(|d| d.as_millis() as Millis)
        .ok_or_else(|| {
            format!("step must be a duration from 1s to 24h, like 15s, 1m or 30, got {value:?}")
        })
}

/// `start` (required) and `end` (default now) of an energy path.
pub fn parse_window(query: &str, now: Millis) -> Result<Window, String> {
    let found = pairs(query, &["start", "end"])?;
    let start = found
        .get("start")
        .ok_or("start is required (energy: ?start=T1&end=T2)")
        .map_err(str::to_string)
        .and_then(|v| time_param("start", v))?;
    let end = found
        .get("end")
        .map(|v| time_param("end", v))
        .transpose()?
        .unwrap_or(now);
    if end <= start {
        return Err("end must be after start".into());
    }
    if end > now {
        return Err("end is in the future".into());
    }
    Ok(Window { start, end })
}

/// `%XX` decoding; `+` stays `+` (it appears in RFC 3339 offsets, never as a space here).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("parameter {s:?} is not UTF-8"))
}

/// RFC 3339 (`Z` or `±hh:mm` offset, optional fraction) or Unix seconds → Unix milliseconds.
pub fn parse_time(s: &str) -> Option<Millis> {
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs.abs() < 1e13).then(|| (secs * 1000.0).floor() as i64);
    }
    parse_rfc3339_ms(s)
}

fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = std::str::from_utf8(&b[start..i]).ok()?;
        if frac.is_empty() {
            return None;
        }
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = padded.parse().ok()?;
    }
    let offset_minutes = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_since() {
        assert_eq!(parse_filter("", 100), Ok(RowFilter::default()));
        let f = parse_filter("size=5&since=1769860805", 100).unwrap();
        assert_eq!(f.size, Some(5));
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
        assert_eq!(parse_filter("size=0", 100).unwrap().size, Some(0));
        assert_eq!(parse_filter("size=100", 100).unwrap().size, Some(100));
    }

    #[test]
    fn bad_parameters_have_reasons() {
        for (q, needle) in [
            ("size=101", "0 to 100"),
            ("size=-1", "size"),
            ("size=abc", "size"),
            ("size=", "size"),
            ("size=1&size=2", "twice"),
            ("since=yesterday", "since"),
            ("sise=10", "unknown parameter \"sise\""),
            ("since=%zz", "percent"),
        ] {
            let e = parse_filter(q, 100).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    const NOW: Millis = 1_769_860_805_000;

    #[test]
    fn history_spans() {
        let history = |q: &str| parse_table_request(q, 100, 15_000, NOW);
        assert_eq!(
            history("size=3"),
            Ok(TableRequest::Buffer(RowFilter {
                size: Some(3),
                since_ms: None
            }))
        );
        let span = Span {
            start: NOW - 60_000,
            end: NOW,
            step: 15_000,
        };
        assert_eq!(
            history(&format!("start={}", (NOW - 60_000) / 1000)),
            Ok(TableRequest::History(span))
        );
        assert_eq!(span.steps(), 5);
        let q = "start=2026-01-31T11:00:00Z&end=2026-01-31T12:00:00Z&step=1m";
        let Ok(TableRequest::History(span)) = history(q) else {
            panic!("{q}")
        };
        assert_eq!((span.step, span.steps()), (60_000, 61));
        assert_eq!(history("start=0&end=0&step=2.5").map(|_| ()), Ok(()));
        for (q, needle) in [
            ("start=1&size=3", "cannot be combined"),
            ("start=1&since=3", "cannot be combined"),
            ("end=5", "need start"),
            ("start=10&end=5", "end is before start"),
            ("start=x", "start must be"),
            ("start=1&end=x", "end must be"),
            ("start=1&step=0.5", "step must be"),
            ("start=1&step=forever", "step must be"),
            ("start=1769860000&end=1769870000", "in the future"),
            ("start=0&end=1769860000&step=1s", "at most 100000"),
        ] {
            let e = history(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn energy_windows() {
        let w = parse_window("start=1769860000", NOW).unwrap();
        assert_eq!((w.start, w.end), (1_769_860_000_000, NOW));
        let w = parse_window("start=2026-01-31T11:00:00Z&end=2026-01-31T12:00:00Z", NOW).unwrap();
        assert_eq!(w.end - w.start, 3_600_000);
        for (q, needle) in [
            ("", "start is required"),
            ("end=5", "start is required"),
            ("start=5&end=5", "after start"),
            ("start=5&end=2999-01-01T00:00:00Z", "future"),
            ("start=5&step=1", "unknown parameter"),
        ] {
            let e = parse_window(q, NOW).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn streams_resume_at_most_a_day_back() {
        assert!(parse_stream_filter("since=1769800000", 10, NOW).is_ok());
        let e = parse_stream_filter("since=1769000000", 10, NOW).unwrap_err();
        assert!(e.contains("24h"), "{e}");
    }

    #[test]
    fn rfc3339_forms() {
        let base = 1_769_860_805_000; // 2026-01-31T12:00:05Z
        assert_eq!(parse_time("2026-01-31T12:00:05Z"), Some(base));
        assert_eq!(parse_time("2026-01-31T12:00:05.123Z"), Some(base + 123));
        assert_eq!(parse_time("2026-01-31T12:00:05.1Z"), Some(base + 100));
        assert_eq!(
            parse_time("2026-01-31T12:00:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(parse_time("2026-01-31T13:00:05+01:00"), Some(base));
        assert_eq!(parse_time("2026-01-31T07:30:05-04:30"), Some(base));
        assert_eq!(parse_time("1769860805.5"), Some(base + 500));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-31T12:00:05",
            "2026-01-31T25:00:05Z",
            "2026-01-31T12:00:05.Z",
            "2026-01-31T12:00:05+1:00",
            "NaN",
            "inf",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_encoded_time() {
        let f = parse_filter("since=2026-01-31T13%3A00%3A05%2B01%3A00", 100).unwrap();
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
        let f = parse_filter("since=2026-01-31T13:00:05+01:00", 100).unwrap();
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
    }
}
