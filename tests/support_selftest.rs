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
