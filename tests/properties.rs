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
    fn query_parameters_never_panic(query in "[a-z=&%0-9A-Z:.+-]{0,60}") {
        let now = 1_769_860_805_000;
        let _ = params::stream(&query, context(now));
        let _ = params::energy(&query, context(now));
        if let Ok(TableRequest::History(span)) = params::table(&query, context(now)).map(|a| a.what) {
            prop_assert!(span.start <= span.end && span.step >= 1000);
            prop_assert!(span.steps() <= MAX_HISTORY_STEPS);
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
    assert!(large_peak < 256 * 1024, "peak {large_peak} bytes");
    // A small answer is read whole into one 64 KiB buffer, then parsed.
    let (result, _, peak) = measure(&answer(100));
    assert_eq!(result, Ok(100));
    assert!(peak < 96 * 1024, "peak {peak} bytes for 100 series");
    assert_eq!(Labels::default().get("pod"), None);
}
