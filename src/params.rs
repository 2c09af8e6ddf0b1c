//! Query parameters of the table and stream paths: `size` and `since` (SPEC §5).
//!
//! Strict on purpose: an unknown or repeated parameter is a 400, so a typo such as `sise=10`
//! is reported instead of silently returning everything.

use crate::table::RowFilter;

/// Parses the query string (without `?`) into a filter; the error is a one-line reason.
pub fn parse_filter(query: &str, buffer_size: usize) -> Result<RowFilter, String> {
    let mut filter = RowFilter::default();
    let mut seen_size = false;
    let mut seen_since = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name)?;
        let value = percent_decode(raw)?;
        match name.as_str() {
            "size" => {
                if std::mem::replace(&mut seen_size, true) {
                    return Err("parameter size given twice".into());
                }
                filter.size = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= buffer_size)
                        .ok_or_else(|| {
                            format!(
                                "size must be a whole number from 0 to {buffer_size}, got {value:?}"
                            )
                        })?,
                );
            }
            "since" => {
                if std::mem::replace(&mut seen_since, true) {
                    return Err("parameter since given twice".into());
                }
                filter.since_ms = Some(parse_since(&value).ok_or_else(|| {
                    format!(
                        "since must be an RFC 3339 time (2026-01-31T12:00:05.123Z) or Unix seconds, got {value:?}"
                    )
                })?);
            }
            other => {
                return Err(format!("unknown parameter {other:?} (known: size, since)"));
            }
        }
    }
    Ok(filter)
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
pub fn parse_since(s: &str) -> Option<i64> {
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

    #[test]
    fn rfc3339_forms() {
        let base = 1_769_860_805_000; // 2026-01-31T12:00:05Z
        assert_eq!(parse_since("2026-01-31T12:00:05Z"), Some(base));
        assert_eq!(parse_since("2026-01-31T12:00:05.123Z"), Some(base + 123));
        assert_eq!(parse_since("2026-01-31T12:00:05.1Z"), Some(base + 100));
        assert_eq!(
            parse_since("2026-01-31T12:00:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(parse_since("2026-01-31T13:00:05+01:00"), Some(base));
        assert_eq!(parse_since("2026-01-31T07:30:05-04:30"), Some(base));
        assert_eq!(parse_since("1769860805.5"), Some(base + 500));
        assert_eq!(parse_since("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_since("1970-01-01T00:00:00Z"), Some(0));
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
            assert_eq!(parse_since(bad), None, "{bad}");
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
