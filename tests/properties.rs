//! Property tests of everything that reads outside input: Prometheus answers, query
//! parameters and the queries file. Arbitrary input gives a value or an error, never a panic,
//! and reading an answer allocates the same small amount however many series it holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use proptest::prelude::*;

use prometheus_agent::http::params::{self, Context, MAX_HISTORY_STEPS, TableRequest};
use prometheus_agent::prometheus::{Labels, Limits, QueryError, read_answer};
use prometheus_agent::tables::queries::{Queries, parse_overrides};
use prometheus_agent::time::Grid;

/// What the parameter parsers know: a buffer of 100 rows, a 15 s live grid, the clock.
fn context(now: i64) -> Context {
    Context {
        buffer_size: 100,
        grid: Grid::every(15_000),
        now,
    }
}

/// Counts the bytes this thread allocates while `tracking` is on, and their peak.
struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    if TRACKING.with(Cell::get) {
        let live = LIVE.with(|l| {
            l.set(l.get() + delta);
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result and the peak bytes it had allocated at once.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, isize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let value = f();
    TRACKING.with(|t| t.set(false));
    (value, PEAK.with(Cell::get))
}

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_series: 10_000,
};

/// A label name: mostly ones the agent reads, some it skips.
fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "node",
            "instance",
            "pod",
            "namespace",
            "pod_name",
            "job"
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
    ]
}

/// A value string as Prometheus writes them, or something odd.
fn sample_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        Just("NaN".to_string()),
        Just("+Inf".to_string()),
        Just("-Inf".to_string()),
        "[0-9a-z.+-]{0,8}",
    ]
}

/// One series as JSON, with its labels.
fn series_json() -> impl Strategy<Value = String> {
    (
        prop::collection::btree_map(label_name(), "[ -~]{0,20}", 0..6),
        1_000_000_000u64..2_000_000_000,
        sample_value(),
    )
        .prop_map(|(labels, t, v)| {
            serde_json::json!({"metric": labels, "value": [t as f64 + 0.5, v]}).to_string()
        })
}

fn vector_answer(series: &[String]) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_an_error_or_a_value(body in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut seen = 0;
        let result = read_answer(&body[..], 200, LIMITS, &mut |_| seen += 1);
        if let Ok(n) = result {
            prop_assert!(seen <= n);
        }
    }

    #[test]
    fn answers_with_arbitrary_series_parse_completely(series in prop::collection::vec(series_json(), 0..40)) {
        let body = vector_answer(&series);
        let mut seen = 0;
        let n = read_answer(body.as_bytes(), 200, LIMITS, &mut |s| {
            seen += 1;
            assert_eq!(s.points.len(), 1);
        });
        prop_assert_eq!(n, Ok(series.len()));
        prop_assert_eq!(seen, series.len());
    }

    #[test]
    fn truncated_answers_are_errors(series in prop::collection::vec(series_json(), 1..10), cut in 1usize..200) {
        let body = vector_answer(&series);
        let cut = body.len().saturating_sub(cut).max(1);
        let result = read_answer(&body.as_bytes()[..cut], 200, LIMITS, &mut |_| {});
        prop_assert!(result.is_err());
    }

    #[test]
    fn limits_bound_what_is_read(series in prop::collection::vec(series_json(), 1..60), max_series in 1usize..30) {
        let body = vector_answer(&series);
        let limits = Limits { max_bytes: 1024, max_series };
        let mut seen = 0;
        let result = read_answer(body.as_bytes(), 200, limits, &mut |_| seen += 1);
        prop_assert!(seen <= max_series);
        match result {
            Ok(n) => prop_assert!(n <= max_series && body.len() <= 1024),
            Err(QueryError::TooLarge(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }


    #[test]
    fn history_spans_are_bounded(start in 0i64..1_900_000_000, len in 0i64..10_000_000, step in 1i64..86_400) {
        let now = 2_000_000_000_000;
        let query = format!("start={start}&end={}&step={step}", start + len);
        match params::table(&query, context(now)).map(|a| a.what) {
            Ok(TableRequest::History(span)) => {
                prop_assert_eq!(span.step, step * 1000);
                prop_assert!(span.steps() <= MAX_HISTORY_STEPS);
                prop_assert!(len / step < MAX_HISTORY_STEPS);
            }
            Ok(other) => prop_assert!(false, "{other:?}"),
            Err(reason) => prop_assert!(len / step + 1 > MAX_HISTORY_STEPS, "{reason}"),
        }
    }

    #[test]
    fn queries_files_never_panic(text in "[ -~\n]{0,200}") {
        if let Ok(overrides) = parse_overrides(&text) {
            let _ = Queries::build("exp", Duration::from_secs(60), &overrides);
        }
    }

    #[test]
    fn queries_file_names_are_checked(
        table in prop::sample::select(vec!["nodes", "pods", "energy_nodes", "energy_pods", "node", "containers"]),
        column in prop::sample::select(vec!["cpu_usage", "wattage", "wattage_kepler", "kepler_joules", "watts"]),
    ) {
        let text = serde_json::json!({table: {column: "up"}}).to_string();
        let overrides = parse_overrides(&text).map_err(TestCaseError::fail)?;
        let built = Queries::build("exp", Duration::from_secs(60), &overrides);
        let known = match table {
            "nodes" => ["cpu_usage", "wattage"].contains(&column),
            "pods" => ["cpu_usage", "wattage_kepler"].contains(&column),
            "energy_nodes" | "energy_pods" => column == "kepler_joules",
            _ => false,
        };
        prop_assert_eq!(built.is_ok(), known, "{}", text);
    }
}

/// The agent's clock in the query-parameter cases.
const NOW_MS: i64 = 1_769_860_805_000;

/// A time as clients write them: Unix seconds (whole or not) or RFC 3339, mostly within a
/// day before [`NOW_MS`], sometimes ahead of it or far off.
fn time_value() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        8 => -86_400_000i64..0,
        1 => 0i64..120_000,
        1 => -4_000_000_000_000i64..4_000_000_000_000,
    ];
    (offset, 0..3u8).prop_map(|(offset, form)| {
        let t = NOW_MS + offset;
        match form {
            0 => (t / 1000).to_string(),
            1 => format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000)),
            _ => rfc3339(t),
        }
    })
}

/// `2026-01-31T12:00:05.123Z` (or a negative year, which must be refused).
fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// A `step` value: humantime or seconds, in range or not.
fn step_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1s", "15s", "1m", "30", "0.5", "1.5", "2h", "25h", "0", "-1"
        ])
        .prop_map(str::to_string),
        (1u32..100_000).prop_map(|s| s.to_string()),
    ]
}

/// A history request as a client would write it: `start` within the last day, often `end`
/// (usually after it) and `step`, in any order.
fn history_query() -> impl Strategy<Value = String> {
    (
        -86_400_000i64..0,
        prop::option::of(-60_000i64..7_200_000),
        prop::option::of(step_value()),
        any::<bool>(),
    )
        .prop_map(|(start, end, step, reversed)| {
            let start = NOW_MS + start;
            let mut pairs = vec![format!("start={}", rfc3339(start))];
            if let Some(length) = end {
                pairs.push(format!("end={}", (start + length) / 1000));
            }
            if let Some(step) = step {
                pairs.push(format!("step={step}"));
            }
            if reversed {
                pairs.reverse();
            }
            pairs.join("&")
        })
}

/// A query string of the table, stream and energy paths: their parameters with values that
/// parse and values that do not, sometimes repeated or unknown, now and then raw noise.
fn query_string() -> impl Strategy<Value = String> {
    let step = step_value();
    let size = prop_oneof![
        (0u32..150).prop_map(|n| n.to_string()),
        Just("-1".to_string())
    ];
    let noise = "[a-z0-9%:.+-]{0,12}";
    let pair = prop_oneof![
        4 => time_value().prop_map(|v| format!("start={v}")),
        3 => time_value().prop_map(|v| format!("end={v}")),
        3 => step.prop_map(|v| format!("step={v}")),
        1 => size.prop_map(|v| format!("size={v}")),
        1 => time_value().prop_map(|v| format!("since={v}")),
        1 => ("[a-z]{1,6}", noise).prop_map(|(name, v)| format!("{name}={v}")),
        1 => noise.prop_map(|v| format!("start={v}")),
    ];
    prop_oneof![
        4 => history_query(),
        5 => prop::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&")),
        1 => "[a-z=&%0-9A-Z:.+-]{0,60}".prop_map(|s| s),
    ]
}

/// How the generated query strings fared.
#[derive(Debug, Default)]
struct Outcomes {
    history: usize,
    buffer: usize,
    refused: usize,
}

/// Every path's parser on arbitrary query strings: a value or a 400, never a panic; what a
/// history request is granted stays within its bounds. Counts the outcomes, so that the
/// history assertions are seen to run.
#[test]
fn query_parameters_never_panic() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::RefCell;
    const CASES: u32 = 2_000;
    let outcomes = RefCell::new(Outcomes::default());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&query_string(), |query| {
        let _ = params::stream(&query, context(NOW_MS));
        let _ = params::energy(&query, context(NOW_MS));
        let _ = params::quality(&query, context(NOW_MS));
        let mut outcomes = outcomes.borrow_mut();
        match params::table(&query, context(NOW_MS)).map(|a| a.what) {
            Ok(TableRequest::History(span)) => {
                outcomes.history += 1;
                // A start moved onto the grid past end leaves no step, not a mistake.
                prop_assert!(
                    span.start <= span.end || span.steps() == 0,
                    "{query}: {span:?}"
                );
                prop_assert!(
                    (1000..=86_400_000).contains(&span.step),
                    "{query}: {span:?}"
                );
                // An end ahead of the agent's clock is the agent's now.
                prop_assert!(span.end <= NOW_MS, "{query}: {span:?}");
                prop_assert!(span.steps() <= MAX_HISTORY_STEPS, "{query}: {span:?}");
                prop_assert!(query.contains("start="), "{query}");
            }
            Ok(TableRequest::Buffer(filter)) => {
                outcomes.buffer += 1;
                prop_assert!(filter.size.is_none_or(|n| n <= 100), "{query}: {filter:?}");
                prop_assert!(!query.contains("start="), "{query}");
            }
            Ok(other) => prop_assert!(false, "{query}: {other:?}"),
            Err(_) => outcomes.refused += 1,
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let outcomes = outcomes.into_inner();
    eprintln!("{CASES} query strings: {outcomes:?}");
    // Each kind of outcome is common enough for its assertions to be exercised. Measured
    // over many runs: history about 37 %, buffer about 10 %, refused about 52 %; the bounds
    // lie at least eight standard deviations below.
    let share = |n: usize| n as f64 / f64::from(CASES);
    assert!(
        share(outcomes.history) >= 0.2
            && share(outcomes.buffer) >= 0.05
            && share(outcomes.refused) >= 0.2,
        "{outcomes:?}"
    );
}

/// Reading an answer keeps one series at a time: its allocation does not grow with the
/// number of series (the JSON of 100,000 series here is about 22 MB).
#[test]
fn reading_an_answer_allocates_the_same_for_20000_or_100000_series() {
    let item = |i: usize| {
        format!(
            r#"{{"metric":{{"__name__":"container_cpu_usage_seconds_total","pod":"pod-{i}","namespace":"exp","node":"node-{}","image":"registry.example/app:1.2.3","id":"/kubepods/burstable/pod{i}"}},"value":[1700000000.5,"0.{i}"]}}"#,
            i % 50
        )
    };
    let answer = |n: usize| vector_answer(&(0..n).map(item).collect::<Vec<_>>());
    let limits = Limits {
        max_bytes: 64 << 20,
        max_series: 1_000_000,
    };
    let measure = |body: &str| {
        let mut pods = 0;
        let (result, peak) = peak_allocation(|| {
            read_answer(body.as_bytes(), 200, limits, &mut |s| {
                pods += usize::from(s.labels.get("pod").is_some());
            })
        });
        (result, pods, peak)
    };
    let (result, pods, small_peak) = measure(&answer(20_000));
    assert_eq!((result, pods), (Ok(20_000), 20_000));
    let large = answer(100_000);
    let (result, pods, large_peak) = measure(&large);
    assert_eq!((result, pods), (Ok(100_000), 100_000));
    assert!(
        large_peak <= small_peak + 1024,
        "peak {large_peak} bytes for 100,000 series against {small_peak} for 20,000 ({} bytes of JSON)",
        large.len()
    );
    // Measured: 82,189 bytes (the 64 KiB read buffer and one series); 1.5 times that.
    assert!(large_peak < 120 * 1024, "peak {large_peak} bytes");
    // A small answer is read whole into one 64 KiB buffer, then parsed. Measured: 65,653
    // bytes; 1.5 times that.
    let (result, _, peak) = measure(&answer(100));
    assert_eq!(result, Ok(100));
    assert!(peak < 96 * 1024, "peak {peak} bytes for 100 series");
    assert_eq!(Labels::default().get("pod"), None);
}
