//! Query parameters of the table, stream and energy paths (README, "API").
//!
//! Strict on purpose: an unknown or repeated parameter is a 400, so a typo such as `sise=10`
//! is reported instead of silently returning everything. Times are parsed here into numbers;
//! no client text ever travels further. Every time-related refusal shows the agent's clock,
//! since a client's clock may be off the cluster's.

use std::collections::BTreeMap;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::routes;
use crate::buffer::RowFilter;
use crate::config::duration::{EXPECTED, format_duration, parse_duration};
use crate::time::{Grid, Millis, Span, Window, format_time, parse_time};

/// Most steps one history request may span.
pub const MAX_HISTORY_STEPS: i64 = 100_000;
/// How far back a stream may ask to be resumed from history.
pub const MAX_RESUME: Duration = Duration::from_secs(24 * 3600);
/// Shortest and longest history step.
const STEP_RANGE: (Duration, Duration) = (Duration::from_secs(1), MAX_RESUME);

/// What the agent knows when it reads parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// `BUFFER_SIZE`: the largest `size`.
    pub buffer_size: usize,
    /// The live schedule: the default history step, and how far ahead an `end` may be.
    pub grid: Grid,
    /// The agent's clock.
    pub now: Millis,
}

/// A request's parameters: what to send, whether to start with the header line, and whether
/// rows end in their data problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked<T> {
    pub what: T,
    /// `header=0` leaves the header out, so a capture can be appended to safely.
    pub header: bool,
    /// `problems=1` appends the `problems` column to every row.
    pub problems: bool,
}

/// How far back `/quality` looks without a `start`.
pub use crate::eval::quality::DEFAULT_SPAN as QUALITY_DEFAULT;

/// What a table path (`/nodes`, `/download`, `/pods`) was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableRequest {
    /// Rows from the buffer.
    Buffer(RowFilter),
    /// Rows computed from Prometheus for a past span.
    History(Span),
    /// History over a run or a phase of it, with its step if given.
    RunHistory(RunRef, Option<Millis>),
}

/// A run, or one phase of it, standing for a start and an end (`run=R[&phase=N]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    pub run: String,
    /// The phase's number or name; `None`: the whole run (energy: each phase).
    pub phase: Option<String>,
}

/// A window given by its times, or by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Given(Window),
    Run(RunRef),
}

/// `run` and `phase`, when given; checked like mark names, so they never hold anything else.
fn run_param(params: &Params) -> Result<Option<RunRef>, String> {
    let Some(run) = params.get("run") else {
        if params.has("phase") {
            return Err("phase needs run (?run=R&phase=N)".into());
        }
        return Ok(None);
    };
    crate::marks::check_name("run", run)?;
    if let Some(phase) = params.get("phase") {
        crate::marks::check_name("phase", phase)?;
    }
    if params.has("start") || params.has("end") {
        return Err("run stands for start and end: give either".into());
    }
    Ok(Some(RunRef {
        run: run.to_string(),
        phase: params.get("phase").map(str::to_string),
    }))
}

/// The decoded parameters of a query string: only `allowed` names, each at most once.
struct Params {
    found: BTreeMap<String, String>,
}

impl Params {
    fn parse(query: &str, allowed: &[&str]) -> Result<Params, String> {
        let mut found = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(raw)?;
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
        Ok(Params { found })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.found.get(name).map(String::as_str)
    }

    fn has(&self, name: &str) -> bool {
        self.found.contains_key(name)
    }

    fn time(&self, name: &str, now: Millis) -> Result<Option<Millis>, String> {
        self.get(name)
            .map(|value| {
                parse_time(value).ok_or_else(|| {
                    format!(
                        "{name} must be an RFC 3339 time (2026-01-31T12:00:05.123Z) or Unix seconds, got {value:?}{}",
                        clock(now)
                    )
                })
            })
            .transpose()
    }

    /// `header=0` or `header=1` (the default).
    fn header(&self) -> Result<bool, String> {
        self.flag("header", true)
    }

    /// `problems=1` or `problems=0` (the default).
    fn problems(&self) -> Result<bool, String> {
        self.flag("problems", false)
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(other) => Err(format!("{name} must be 0 or 1, got {other:?}")),
        }
    }
}

/// `%XX` decoding; `+` stays `+` (it appears in RFC 3339 offsets, never as a space here).
fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("parameter {text:?} is not UTF-8"))
}

/// The agent's clock, for every time-related refusal.
fn clock(now: Millis) -> String {
    format!(" (agent clock {})", format_time(now))
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

fn filter(params: &Params, context: Context) -> Result<RowFilter, String> {
    Ok(RowFilter {
        size: params
            .get("size")
            .map(|v| size_param(v, context.buffer_size))
            .transpose()?,
        since_ms: params.time("since", context.now)?,
    })
}

/// `size`, `since` and `header` of a stream path. `since` may reach back at most 24 h: older
/// rows come from history.
pub fn stream(query: &str, context: Context) -> Result<Asked<RowFilter>, String> {
    let params = Params::parse(query, &["size", "since", "header", "problems"])?;
    let what = filter(&params, context)?;
    if let Some(since) = what.since_ms
        && since < context.now - MAX_RESUME.as_millis() as Millis
    {
        return Err(format!(
            "since is more than 24h ago: fetch older rows with {}?start=…{}",
            routes::paths_of(routes::Handler::is_table).join(" or "),
            clock(context.now)
        ));
    }
    Ok(Asked {
        what,
        header: params.header()?,
        problems: params.problems()?,
    })
}

/// A table path: `size`/`since` for the buffer, or `start`/`end`/`step` for history; `header`.
pub fn table(query: &str, context: Context) -> Result<Asked<TableRequest>, String> {
    let params = Params::parse(
        query,
        &[
            "size", "since", "start", "end", "step", "header", "problems", "run", "phase",
        ],
    )?;
    let (header, problems) = (params.header()?, params.problems()?);
    if let Some(run) = run_param(&params)? {
        if params.has("size") || params.has("since") {
            return Err("run (history) cannot be combined with size or since (buffer)".into());
        }
        let step = params.get("step").map(step_param).transpose()?;
        return Ok(Asked {
            what: TableRequest::RunHistory(run, step),
            header,
            problems,
        });
    }
    if !params.has("start") {
        if params.has("end") || params.has("step") {
            return Err("end and step need start (history: ?start=T1&end=T2&step=S)".into());
        }
        let what = TableRequest::Buffer(filter(&params, context)?);
        return Ok(Asked {
            what,
            header,
            problems,
        });
    }
    if params.has("size") || params.has("since") {
        return Err("start (history) cannot be combined with size or since (buffer)".into());
    }
    let span = history_span(&params, context)?;
    Ok(Asked {
        what: TableRequest::History(span),
        header,
        problems,
    })
}

/// `start`, `end` (default now) and `step` (default the live grid's interval, with `start`
/// moved to the grid so that rows line up with captured ones).
fn history_span(params: &Params, context: Context) -> Result<Span, String> {
    let now = context.now;
    let start = params.time("start", now)?.unwrap_or(now);
    let (start, step) = match params.get("step") {
        Some(step) => (start, step_param(step)?),
        None => (context.grid.ceil(start), context.grid.interval()),
    };
    let end = end_param(params, context, step)?;
    // Checked against the start as given: a start moved past `end` onto the grid leaves
    // a span without rows, not a mistake.
    if end < params.time("start", now)?.unwrap_or(start) {
        return Err(format!("end is before start{}", clock(now)));
    }
    let span = Span { start, end, step };
    if span.steps() > MAX_HISTORY_STEPS {
        return Err(format!(
            "{} steps requested, at most {MAX_HISTORY_STEPS}: use a larger step or a shorter span",
            span.steps()
        ));
    }
    Ok(span)
}

/// `end`, default now: at most `ahead` (or one live interval) in the future, clamped to now.
fn end_param(params: &Params, context: Context, ahead: Millis) -> Result<Millis, String> {
    let now = context.now;
    let Some(end) = params.time("end", now)? else {
        return Ok(now);
    };
    let allowed = ahead.max(context.grid.interval());
    if end > now + allowed {
        return Err(format!(
            "end is {} ahead of the agent's clock, at most {} is accepted{}",
            format_duration(Duration::from_millis((end - now) as u64)),
            format_duration(Duration::from_millis(allowed as u64)),
            clock(now)
        ));
    }
    Ok(end.min(now))
}

/// `step`: a duration from 1 s to 24 h, in whole milliseconds.
fn step_param(value: &str) -> Result<Millis, String> {
    parse_duration(value)
        .ok()
        .filter(|d| *d >= STEP_RANGE.0 && *d <= STEP_RANGE.1)
        .map(|d| d.as_millis() as Millis)
        .ok_or_else(|| format!("step must be from 1s to 24h, {EXPECTED}, got {value:?}"))
}

/// `start` (required) and `end` (default now), or `run` (and `phase`), of an energy path;
/// `header`.
pub fn energy(query: &str, context: Context) -> Result<Asked<When>, String> {
    let params = Params::parse(query, &["start", "end", "header", "run", "phase"])?;
    if let Some(run) = run_param(&params)? {
        return Ok(Asked {
            what: When::Run(run),
            header: params.header()?,
            problems: true,
        });
    }
    let start = params.time("start", context.now)?.ok_or_else(|| {
        format!(
            "start is required (energy: ?start=T1&end=T2){}",
            clock(context.now)
        )
    })?;
    let end = end_param(&params, context, 0)?;
    if end <= start {
        return Err(format!("end must be after start{}", clock(context.now)));
    }
    Ok(Asked {
        what: When::Given(Window { start, end }),
        header: params.header()?,
        problems: true,
    })
}

/// `start` (default `end` minus 15 minutes) and `end` (default now), or `run` (and `phase`),
/// of `/quality`; `header`.
pub fn quality(query: &str, context: Context) -> Result<Asked<When>, String> {
    let params = Params::parse(query, &["start", "end", "header", "run", "phase"])?;
    if let Some(run) = run_param(&params)? {
        return Ok(Asked {
            what: When::Run(run),
            header: params.header()?,
            problems: true,
        });
    }
    let end = end_param(&params, context, 0)?;
    let start = params
        .time("start", context.now)?
        .unwrap_or(end - QUALITY_DEFAULT);
    if end <= start {
        return Err(format!("end must be after start{}", clock(context.now)));
    }
    Ok(Asked {
        what: When::Given(Window { start, end }),
        header: params.header()?,
        problems: true,
    })
}

/// What `GET /marks` lists: marks between `start` and `end` (default: all), of `run` if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarksQuery {
    pub start: Option<Millis>,
    pub end: Option<Millis>,
    pub run: Option<String>,
}

/// `start`, `end`, `run` and `header` of `GET /marks`.
pub fn marks(query: &str, context: Context) -> Result<Asked<MarksQuery>, String> {
    let params = Params::parse(query, &["start", "end", "run", "header"])?;
    if let Some(run) = params.get("run") {
        crate::marks::check_name("run", run)?;
    }
    Ok(Asked {
        what: MarksQuery {
            start: params.time("start", context.now)?,
            end: params.time("end", context.now)?,
            run: params.get("run").map(str::to_string),
        },
        header: params.header()?,
        problems: false,
    })
}

/// `run` and `name` of `POST /marks` (checked when the mark is stamped); `header`.
pub fn new_mark(query: &str) -> Result<Asked<(String, String)>, String> {
    let params = Params::parse(query, &["run", "name", "header"])?;
    let run = params.get("run").unwrap_or_default().to_string();
    let name = params.get("name").unwrap_or_default().to_string();
    Ok(Asked {
        what: (run, name),
        header: params.header()?,
        problems: false,
    })
}

/// `run` (required) and `header` of `/phases`.
pub fn phases(query: &str) -> Result<Asked<String>, String> {
    let params = Params::parse(query, &["run", "header"])?;
    let run = params.get("run").unwrap_or_default();
    crate::marks::check_name("run", run)?;
    Ok(Asked {
        what: run.to_string(),
        header: params.header()?,
        problems: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_769_860_805_000;

    fn context() -> Context {
        Context {
            buffer_size: 100,
            grid: Grid::every(15_000),
            now: NOW,
        }
    }

    fn buffer(query: &str) -> Result<RowFilter, String> {
        match table(query, context())?.what {
            TableRequest::Buffer(filter) => Ok(filter),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn size_since_and_header() {
        assert_eq!(buffer(""), Ok(RowFilter::default()));
        let f = buffer("size=5&since=1769860805").unwrap();
        assert_eq!(f.size, Some(5));
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
        assert_eq!(buffer("size=0").unwrap().size, Some(0));
        assert_eq!(buffer("size=100").unwrap().size, Some(100));
        assert!(table("", context()).unwrap().header);
        assert!(!table("header=0&size=3", context()).unwrap().header);
        assert!(!stream("header=0", context()).unwrap().header);
        assert!(
            !table("start=1769860000&header=0", context())
                .unwrap()
                .header
        );
        assert!(
            !energy("start=1769860000&header=0", context())
                .unwrap()
                .header
        );
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
            ("since=%zz", "since"),
            ("header=no", "header must be 0 or 1"),
        ] {
            let e = buffer(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
            assert!(!e.contains('\n'));
        }
        // Time-related refusals show the agent's clock.
        let e = buffer("since=yesterday").unwrap_err();
        assert!(e.ends_with("(agent clock 2026-01-31T12:00:05.000Z)"), "{e}");
    }

    fn history(q: &str) -> Result<Span, String> {
        match table(q, context())?.what {
            TableRequest::History(span) => Ok(span),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn history_spans() {
        assert_eq!(
            table("size=3", context()).map(|a| a.what),
            Ok(TableRequest::Buffer(RowFilter {
                size: Some(3),
                since_ms: None
            }))
        );
        // Without a step, start moves to the live grid: rows line up with captured ones.
        let span = history(&format!("start={}", (NOW - 61_000) / 1000)).unwrap();
        assert_eq!(
            span,
            Span {
                start: NOW - 50_000,
                end: NOW,
                step: 15_000
            }
        );
        assert_eq!(span.start % 15_000, 0);
        assert_eq!(span.steps(), 4);
        let q = "start=2026-01-31T11:00:00Z&end=2026-01-31T12:00:00Z&step=1m";
        let span = history(q).unwrap();
        assert_eq!((span.step, span.steps()), (60_000, 61));
        // A start moved onto the grid past end: no rows, not an error.
        let q = format!("start={0}.5&end={0}.5", NOW / 1000 - 20);
        assert_eq!(history(&q).map(|s| s.steps()), Ok(0));
        // A given step keeps start as it is.
        assert_eq!(
            history("start=1.5&end=10&step=2.5").map(|s| s.start),
            Ok(1_500)
        );
        for (q, needle) in [
            ("start=1&size=3", "cannot be combined"),
            ("start=1&since=3", "cannot be combined"),
            ("end=5", "need start"),
            ("start=10&end=5", "end is before start"),
            ("start=x", "start must be"),
            ("start=1&end=x", "end must be"),
            ("start=1&step=0.5", "step must be"),
            ("start=1&step=forever", "step must be"),
            (
                "start=1769860000&end=1769870000",
                "ahead of the agent's clock",
            ),
            ("start=0&end=1769860000&step=1s", "at most 100000"),
        ] {
            let e = history(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn an_end_a_little_ahead_is_clamped_to_now() {
        let e = energy(
            &format!("start=1769860000&end={}", NOW / 1000 + 10),
            context(),
        )
        .unwrap();
        let window = Window {
            start: 1_769_860_000_000,
            end: NOW,
        };
        assert_eq!(e.what, When::Given(window));
        let e = energy(
            &format!("start=1769860000&end={}", NOW / 1000 + 16),
            context(),
        )
        .unwrap_err();
        assert!(
            e.contains("16s ahead of the agent's clock, at most 15s"),
            "{e}"
        );
        assert!(e.contains("agent clock 2026-01-31T12:00:05.000Z"), "{e}");
        let span = history(&format!("start=1769860000&end={}", NOW / 1000 + 5)).unwrap();
        assert_eq!(span.end, NOW);
    }

    #[test]
    fn energy_windows() {
        let given = |q: &str| match energy(q, context()).unwrap().what {
            When::Given(w) => w,
            other => panic!("{other:?}"),
        };
        let w = given("start=1769860000");
        assert_eq!((w.start, w.end), (1_769_860_000_000, NOW));
        let w = given("start=2026-01-31T11:00:00Z&end=2026-01-31T12:00:00Z");
        assert_eq!(w.end - w.start, 3_600_000);
        for (q, needle) in [
            ("", "start is required"),
            ("end=5", "start is required"),
            ("start=5&end=5", "after start"),
            (
                "start=5&end=2999-01-01T00:00:00Z",
                "ahead of the agent's clock",
            ),
            ("start=5&step=1", "unknown parameter"),
        ] {
            let e = energy(q, context()).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn runs_and_phases_stand_for_start_and_end() {
        let run = |phase: Option<&str>| RunRef {
            run: "r1".into(),
            phase: phase.map(str::to_string),
        };
        assert_eq!(
            energy("run=r1", context()).unwrap().what,
            When::Run(run(None))
        );
        assert_eq!(
            quality("run=r1&phase=2", context()).unwrap().what,
            When::Run(run(Some("2")))
        );
        assert_eq!(
            table("run=r1&phase=load&step=5s", context()).unwrap().what,
            TableRequest::RunHistory(run(Some("load")), Some(5_000))
        );
        for (q, needle) in [
            ("run=r1&start=5", "either"),
            ("phase=2", "phase needs run"),
            ("run=a%20b", "may hold only"),
            ("run=r1&phase=%22", "may hold only"),
        ] {
            assert!(energy(q, context()).unwrap_err().contains(needle), "{q}");
        }
        assert!(
            table("run=r1&size=3", context())
                .unwrap_err()
                .contains("cannot be combined")
        );
        assert_eq!(phases("run=r1").unwrap().what, "r1");
        assert!(phases("").unwrap_err().contains("run is required"));
        assert_eq!(
            new_mark("run=r&name=n").unwrap().what,
            ("r".into(), "n".into())
        );
        let m = marks("run=r&start=1769860000", context()).unwrap().what;
        assert_eq!(
            (m.run.as_deref(), m.start),
            (Some("r"), Some(1_769_860_000_000))
        );
    }

    #[test]
    fn streams_resume_at_most_a_day_back() {
        assert!(stream("since=1769800000", context()).is_ok());
        let e = stream("since=1769000000", context()).unwrap_err();
        assert!(e.contains("24h") && e.contains("/nodes"), "{e}");
    }

    #[test]
    fn percent_encoded_time() {
        let f = buffer("since=2026-01-31T13%3A00%3A05%2B01%3A00").unwrap();
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
        let f = buffer("since=2026-01-31T13:00:05+01:00").unwrap();
        assert_eq!(f.since_ms, Some(1_769_860_805_000));
    }
}
