//! The one duration rule, for every variable and parameter that takes a duration
//! (`UPDATE_INTERVAL`, `WINDOW`, timeouts, a history `step`): a number with a unit (`500ms`,
//! `15s`, `1m30s`, `2h`) or plain seconds (`30`, `2.5`), more than zero.

use std::time::Duration;

/// What a duration looks like, for error messages.
pub const EXPECTED: &str = "a number with a unit (500ms, 15s, 1m30s, 2h) or plain seconds (30)";

/// Parses a duration; the error is one line saying what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) if secs <= 0.0 => return Err(format!("{text:?} must be more than zero")),
        Ok(secs) if secs.is_finite() && secs < 1e9 => Some(Duration::from_secs_f64(secs)),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(text).ok(),
    };
    match parsed {
        Some(d) if d.is_zero() => Err(format!("{text:?} must be more than zero")),
        Some(d) => Ok(d),
        None => Err(format!("{text:?} is not a duration: use {EXPECTED}")),
    }
}

/// `d` as text that `parse_duration` reads back (`15s`, `1m`, `1500ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration(" 5 "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn one_clear_message() {
        for bad in ["15x", "fast", "", "1e99", "s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(
                e.contains("is not a duration: use a number with a unit"),
                "{bad}: {e}"
            );
            assert!(!e.contains("variations"), "{e}");
        }
        for zero in ["0", "0s", "-5"] {
            let e = parse_duration(zero).unwrap_err();
            assert!(e.contains("more than zero"), "{zero}: {e}");
        }
    }

    #[test]
    fn formatted_durations_read_back() {
        for d in [
            Duration::from_secs(15),
            Duration::from_secs(90),
            Duration::from_millis(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
