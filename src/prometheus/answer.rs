//! Prometheus API answers, read as a stream.
//!
//! An answer is never held in memory: the JSON is parsed as it arrives and each series is
//! handed to a sink, with only the labels the agent looks at (identity and address mapping)
//! and its points. So a cycle's memory grows with the rows it produces, not with the size of
//! Prometheus's JSON, and an answer over a byte or series limit is an error, not an
//! out-of-memory kill. Protocol only: the bytes come from any `Read`.

use std::cell::Cell;
use std::fmt;
use std::io::{BufReader, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::time::Millis;

/// Labels the agent reads (`tables::identity`, where the readers are); all others are
/// skipped unread.
pub use crate::tables::identity::KEPT_LABELS;

const _: () = assert!(
    KEPT_LABELS.len() <= 32,
    "Labels keeps a 32-bit presence mask"
);

/// The kept labels of one series.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    values: [String; KEPT_LABELS.len()],
    present: u32,
}

impl Labels {
    /// Labels from name/value pairs; names the agent does not read are dropped.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Labels {
        let mut labels = Labels::default();
        for (name, value) in pairs {
            if let Some(at) = kept_index(name) {
                labels.set(at, value);
            }
        }
        labels
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let at = kept_index(name);
        debug_assert!(
            at.is_some(),
            "label {name:?} is read but not in KEPT_LABELS"
        );
        let at = at?;
        (self.present & (1 << at) != 0).then(|| self.values[at].as_str())
    }

    fn set(&mut self, at: usize, value: &str) {
        self.values[at].clear();
        self.values[at].push_str(value);
        self.present |= 1 << at;
    }

    fn clear(&mut self) {
        self.present = 0;
    }
}

impl PartialEq for Labels {
    /// Equal when the same labels are present with the same values (buffers are reused).
    fn eq(&self, other: &Labels) -> bool {
        KEPT_LABELS
            .iter()
            .all(|name| self.get(name) == other.get(name))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = KEPT_LABELS
            .iter()
            .filter_map(|name| Some(format!("{name}={:?}", self.get(name)?)))
            .collect();
        write!(f, "{{{}}}", pairs.join(", "))
    }
}

fn kept_index(name: &str) -> Option<usize> {
    KEPT_LABELS.iter().position(|kept| *kept == name)
}

/// One series of an answer: one point for an instant query, one per step for a range query.
/// NaN and ±Inf are kept as such; the table turns them into empty fields.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub labels: &'a Labels,
    pub points: &'a [(Millis, f64)],
}

/// What the server reported about its work on one query, where it did: Prometheus with
/// `stats=all` (`data.stats`), VictoriaMetrics with `trace=1` (the trace's duration only; it
/// reports no sample counts before v1.90).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    /// Seconds spent evaluating: Prometheus's `evalTotalTime`, VictoriaMetrics' trace
    /// `duration_msec` (the whole request) in seconds.
    pub eval_seconds: f64,
    /// Samples read (`totalQueryableSamples`); `None` where not reported.
    pub samples: Option<u64>,
    /// Most samples held at once (`peakSamples`); `None` where not reported.
    pub peak_samples: Option<u64>,
}

impl QueryStats {
    /// The statistics of two queries together (samples only when both reported them).
    pub fn plus(self, other: QueryStats) -> QueryStats {
        QueryStats {
            eval_seconds: self.eval_seconds + other.eval_seconds,
            samples: self.samples.zip(other.samples).map(|(a, b)| a + b),
            peak_samples: self
                .peak_samples
                .zip(other.peak_samples)
                .map(|(a, b)| a.max(b)),
        }
    }
}

/// Bounds on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_series: usize,
}

/// Why a query gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// No HTTP answer at all: connection refused, TLS, DNS. The whole cycle is skipped.
    Transport(String),
    /// No complete answer within `PROMETHEUS_TIMEOUT`: a heavy query or an overloaded server.
    Timeout(String),
    /// Prometheus answered with `status: error` (bad query, 4xx/5xx, timeout on its side).
    Api {
        http_status: u16,
        error_type: String,
        error: String,
    },
    /// An answer that is not a Prometheus API response (wrong URL, proxy page, truncated).
    Garbage { http_status: u16, detail: String },
    /// An answer over `PROMETHEUS_MAX_ANSWER_BYTES` or `PROMETHEUS_MAX_SERIES`.
    TooLarge(String),
}

impl QueryError {
    /// Whether Prometheus (or whatever listens there) could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, QueryError::Transport(_))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, QueryError::Timeout(_))
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Transport(e) => write!(f, "Prometheus unreachable: {e}"),
            QueryError::Timeout(e) => write!(f, "Prometheus did not answer in time: {e}"),
            QueryError::Api {
                http_status,
                error_type,
                error,
            } => write!(
                f,
                "Prometheus error (HTTP {http_status}, {error_type}): {error}"
            ),
            QueryError::Garbage {
                http_status,
                detail,
            } => {
                write!(
                    f,
                    "not a Prometheus API answer (HTTP {http_status}): {detail}"
                )?;
                if *http_status == 404 {
                    write!(
                        f,
                        " (is PROMETHEUS_URL the server's base URL, with its path prefix if any?)"
                    )?;
                }
                Ok(())
            }
            QueryError::TooLarge(what) => write!(f, "answer too large: {what}"),
        }
    }
}

/// Reads one API answer from `body`, handing every series to `sink` as it is parsed; returns
/// the number of series. On error, `sink` may already have seen some series: the caller
/// discards what it folded from this answer.
pub fn read_answer(
    body: impl Read,
    http_status: u16,
    limits: Limits,
    sink: &mut dyn FnMut(Series<'_>),
) -> Result<usize, QueryError> {
    read_answer_with_stats(body, http_status, limits, sink).map(|(series, _)| series)
}

/// `read_answer`, also returning the statistics the answer carries, if any (`QueryStats`).
pub fn read_answer_with_stats(
    mut body: impl Read,
    http_status: u16,
    limits: Limits,
    sink: &mut dyn FnMut(Series<'_>),
) -> Result<(usize, Option<QueryStats>), QueryError> {
    // Most answers are small: read them whole and parse from memory, which is several times
    // cheaper than byte by byte from a reader. Larger ones are parsed as they arrive.
    let whole = SMALL_ANSWER.min(limits.max_bytes.saturating_add(1));
    let mut head = Vec::new();
    if let Err(e) = read_head(&mut body, whole, &mut head) {
        return Err(read_failure(e.kind(), &e, http_status));
    }
    let mut state = State::new(sink, limits.max_series);
    let mut failed = Failed {
        http_status,
        limits,
        bytes: head.len() as u64,
        start: Vec::new(),
    };
    let parsed = if (head.len() as u64) < whole {
        let parsed = parse(serde_json::Deserializer::from_slice(&head), &mut state);
        if parsed.is_err() {
            failed.start = head.iter().take(START_KEPT).copied().collect();
        }
        parsed
    } else {
        let counted = Cell::new(0u64);
        // The parser reads byte by byte: buffer after counting, so the count sees whole reads.
        let reader = BufReader::with_capacity(
            READ_BUFFER,
            CountingReader {
                inner: std::io::Cursor::new(head).chain(body),
                count: &counted,
                limit: limits.max_bytes,
                start: &mut failed.start,
            },
        );
        let parsed = parse(serde_json::Deserializer::from_reader(reader), &mut state);
        failed.bytes = counted.get();
        parsed
    };
    match parsed {
        Err(e) => Err(failed.parse_error(&e, &state)),
        Ok(()) => {
            let stats = state.stats;
            state.outcome(http_status).map(|series| (series, stats))
        }
    }
}

/// Answers up to this size are read whole before parsing.
const SMALL_ANSWER: u64 = 64 * 1024;

/// Reads up to `limit` bytes into `head`, allocated once at that size (not zeroed).
fn read_head(body: &mut impl Read, limit: u64, head: &mut Vec<u8>) -> std::io::Result<()> {
    head.reserve_exact(limit as usize);
    body.take(limit).read_to_end(head).map(|_| ())
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    state: &mut State<'_>,
) -> Result<(), serde_json::Error> {
    Envelope(state).deserialize(&mut de)?;
    de.end()
}

/// A failure to read the answer's bytes.
fn read_failure(
    kind: std::io::ErrorKind,
    e: &dyn std::fmt::Display,
    http_status: u16,
) -> QueryError {
    match kind {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            QueryError::Timeout(e.to_string())
        }
        _ => QueryError::Garbage {
            http_status,
            detail: format!("cannot read the answer: {e}"),
        },
    }
}

/// What is known when parsing stopped early, to say why.
struct Failed {
    http_status: u16,
    limits: Limits,
    bytes: u64,
    /// The first bytes of the answer.
    start: Vec<u8>,
}

impl Failed {
    fn parse_error(&self, e: &serde_json::Error, state: &State<'_>) -> QueryError {
        if state.over_series {
            return QueryError::TooLarge(format!(
                "more than {} series (PROMETHEUS_MAX_SERIES)",
                self.limits.max_series
            ));
        }
        if self.bytes > self.limits.max_bytes {
            return QueryError::TooLarge(format!(
                "more than {} bytes (PROMETHEUS_MAX_ANSWER_BYTES)",
                self.limits.max_bytes
            ));
        }
        match e.io_error_kind() {
            Some(kind) => read_failure(kind, e, self.http_status),
            None => state
                .unexpected_result_type(self.http_status)
                .unwrap_or_else(|| QueryError::Garbage {
                    http_status: self.http_status,
                    detail: format!(
                        "{e}; answer starts {:?}",
                        String::from_utf8_lossy(&self.start)
                    ),
                }),
        }
    }
}

/// Read buffer for answers: large enough that parsing is not dominated by read calls.
const READ_BUFFER: usize = 16 * 1024;

/// Bytes kept from the start of an answer for error messages (a login page, a proxy error).
const START_KEPT: usize = 120;

/// Counts bytes read, fails past the limit, and keeps the first bytes for error messages.
struct CountingReader<'a, R> {
    inner: R,
    count: &'a Cell<u64>,
    limit: u64,
    start: &'a mut Vec<u8>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.count.get() + n as u64;
        self.count.set(total);
        if self.start.len() < START_KEPT {
            let keep = (START_KEPT - self.start.len()).min(n);
            self.start.extend_from_slice(&buf[..keep]);
        }
        if total > self.limit {
            return Err(std::io::Error::other("answer over the byte limit"));
        }
        Ok(n)
    }
}

/// Parser state shared by the nested seeds below.
struct State<'s> {
    sink: &'s mut dyn FnMut(Series<'_>),
    labels: Labels,
    points: Vec<(Millis, f64)>,
    series: usize,
    max_series: usize,
    over_series: bool,
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    result_type: Option<String>,
    stats: Option<QueryStats>,
}

impl<'s> State<'s> {
    fn new(sink: &'s mut dyn FnMut(Series<'_>), max_series: usize) -> State<'s> {
        State {
            sink,
            labels: Labels::default(),
            points: Vec::new(),
            series: 0,
            max_series,
            over_series: false,
            status: None,
            error_type: None,
            error: None,
            result_type: None,
            stats: None,
        }
    }

    /// The result of a completely parsed answer: its series, or Prometheus's own error.
    fn outcome(self, http_status: u16) -> Result<usize, QueryError> {
        let garbage = |detail: &str| QueryError::Garbage {
            http_status,
            detail: detail.to_string(),
        };
        match self.status.as_deref() {
            Some("success") => {}
            Some(status) => {
                return Err(QueryError::Api {
                    http_status,
                    error_type: self.error_type.unwrap_or_else(|| "unknown".into()),
                    error: self
                        .error
                        .unwrap_or_else(|| format!("status {status:?} without error text")),
                });
            }
            None => return Err(garbage("no status in the answer")),
        }
        if let Some(unexpected) = self.unexpected_result_type(http_status) {
            return Err(unexpected);
        }
        match self.result_type {
            Some(_) => Ok(self.series),
            None => Err(garbage("success without data")),
        }
    }

    /// The error for a result that is not a vector or matrix, e.g. a scalar query.
    fn unexpected_result_type(&self, http_status: u16) -> Option<QueryError> {
        let kind = self.result_type.as_deref()?;
        (kind != "vector" && kind != "matrix").then(|| QueryError::Api {
            http_status,
            error_type: "unexpected_result".into(),
            error: format!("query returned a {kind}, expected an instant vector"),
        })
    }
}

/// `{"status": …, "data": {…}, "errorType": …, "error": …}`
struct Envelope<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Envelope<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Prometheus API answer object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => self.0.status = Some(map.next_value()?),
                "errorType" => self.0.error_type = map.next_value()?,
                "error" => self.0.error = map.next_value()?,
                "data" => map.next_value_seed(Data(&mut *self.0))?,
                "trace" => {
                    if let [Some(ms)] = map.next_value_seed(Numbers(["duration_msec"]))? {
                        let stats = self.0.stats.get_or_insert_with(QueryStats::default);
                        stats.eval_seconds = ms / 1000.0;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `{"resultType": …, "result": [...]}`, or null.
struct Data<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Data<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Data<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a data object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => self.0.result_type = Some(map.next_value()?),
                "result" => map.next_value_seed(SeriesList(&mut *self.0))?,
                "stats" => self.0.stats = Some(map.next_value_seed(StatsObject)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Prometheus's `data.stats` (`stats=all`): `{"timings": {"evalTotalTime": …, …},
/// "samples": {"totalQueryableSamples": …, "peakSamples": …}}`; every other field skipped.
struct StatsObject;

impl<'de> DeserializeSeed<'de> for StatsObject {
    type Value = QueryStats;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<QueryStats, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StatsObject {
    type Value = QueryStats;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stats object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<QueryStats, A::Error> {
        let mut stats = QueryStats::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "timings" => {
                    let [eval] = map.next_value_seed(Numbers(["evalTotalTime"]))?;
                    stats.eval_seconds = eval.unwrap_or(0.0);
                }
                "samples" => {
                    let [total, peak] =
                        map.next_value_seed(Numbers(["totalQueryableSamples", "peakSamples"]))?;
                    stats.samples = total.map(|n| n as u64);
                    stats.peak_samples = peak.map(|n| n as u64);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(stats)
    }
}

/// The numbers named `N` of an object, every other field skipped (VictoriaMetrics' `trace`
/// is a tree of children below its `duration_msec`).
struct Numbers<const N: usize>([&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Numbers<N> {
    type Value = [Option<f64>; N];
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Numbers<N> {
    type Value = [Option<f64>; N];
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of numbers")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(key) = map.next_key::<String>()? {
            match self.0.iter().position(|name| *name == key) {
                Some(at) => found[at] = Some(map.next_value::<f64>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// `[series, series, …]`: each is handed to the sink, then forgotten.
struct SeriesList<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for SeriesList<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SeriesList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        loop {
            state.labels.clear();
            state.points.clear();
            if seq.next_element_seed(OneSeries(&mut *state))?.is_none() {
                return Ok(());
            }
            state.series += 1;
            if state.series > state.max_series {
                state.over_series = true;
                return Err(de::Error::custom("too many series"));
            }
            if !state.points.is_empty() {
                (state.sink)(Series {
                    labels: &state.labels,
                    points: &state.points,
                });
            }
        }
    }
}

/// `{"metric": {…}, "value": [t, "v"]}` or `{"metric": {…}, "values": [[t, "v"], …]}`.
struct OneSeries<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for OneSeries<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OneSeries<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a series object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metric" => map.next_value_seed(Metric(&mut self.0.labels))?,
                "value" => {
                    let point = map.next_value_seed(Point)?;
                    self.0.points.push(point);
                }
                "values" => map.next_value_seed(Points(&mut self.0.points))?,
                // Native histograms and anything newer carry no plain value.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The label set: only kept labels are copied, into reused buffers.
struct Metric<'a>(&'a mut Labels);

impl<'de> DeserializeSeed<'de> for Metric<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Metric<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label set")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(kept) = map.next_key_seed(LabelName)? {
            match kept {
                Some(at) => map.next_value_seed(LabelValue(&mut *self.0, at))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A label name, looked up without allocating: `Some(index)` when kept.
struct LabelName;

impl<'de> DeserializeSeed<'de> for LabelName {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for LabelName {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        Ok(kept_index(name))
    }
}

struct LabelValue<'a>(&'a mut Labels, usize);

impl<'de> DeserializeSeed<'de> for LabelValue<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for LabelValue<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a label value")
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.set(self.1, value);
        Ok(())
    }
}

/// `[[t, "v"], …]`
struct Points<'a>(&'a mut Vec<(Millis, f64)>);

impl<'de> DeserializeSeed<'de> for Points<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Points<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of [time, value] points")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(point) = seq.next_element_seed(Point)? {
            self.0.push(point);
        }
        Ok(())
    }
}

/// `[1700000000.5, "0.5625"]`: seconds with a fraction, and the value as a string.
struct Point;

impl<'de> DeserializeSeed<'de> for Point {
    type Value = (Millis, f64);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(Millis, f64), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Point {
    type Value = (Millis, f64);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [time, \"value\"] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Millis, f64), A::Error> {
        let secs: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let value = seq
            .next_element_seed(SampleValue)?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        if !secs.is_finite() {
            return Err(de::Error::custom("timestamp is not a number"));
        }
        Ok(((secs * 1000.0).round() as Millis, value))
    }
}

/// Prometheus encodes values as strings: `"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`.
struct SampleValue;

impl<'de> DeserializeSeed<'de> for SampleValue {
    type Value = f64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for SampleValue {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sample value string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
        Ok(match s {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => s.parse::<f64>().unwrap_or(f64::NAN),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_series: 100,
    };

    type Seen = Vec<(Labels, Vec<(Millis, f64)>)>;

    /// Parses `body`, returning every series handed to the sink.
    fn read(body: &str, limits: Limits) -> Result<Seen, QueryError> {
        let mut seen = Vec::new();
        read_answer(body.as_bytes(), 200, limits, &mut |s| {
            seen.push((s.labels.clone(), s.points.to_vec()))
        })
        .map(|n| {
            assert!(n >= seen.len());
            seen
        })
    }

    #[test]
    fn instant_vector_with_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"node":"a","job":"x"},"value":[1700000000.5,"0.5625"]},
            {"metric":{"node":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{},"value":[1700000000.5,"+Inf"]},
            {"metric":{"pod":"p\"q"},"value":[1700000000,"-Inf"]}]}}"#;
        let series = read(body, LIMITS).unwrap();
        assert_eq!(series.len(), 4);
        assert_eq!(series[0].0.get("node"), Some("a"));
        assert!(
            !series[0].0.to_string().contains("job"),
            "unread labels are dropped"
        );
        assert_eq!(series[0].1, vec![(1_700_000_000_500, 0.5625)]);
        assert!(series[1].1[0].1.is_nan());
        assert_eq!(series[2].1[0].1, f64::INFINITY);
        assert_eq!(series[3].0.get("pod"), Some("p\"q"));
        assert_eq!(series[3].1[0], (1_700_000_000_000, f64::NEG_INFINITY));
        // Labels of one series never leak into the next.
        assert_eq!(series[1].0.get("node"), Some("b"));
        assert_eq!(series[2].0, Labels::default());
    }

    #[test]
    fn range_matrix_and_field_order() {
        let body = r#"{"data":{"result":[{"values":[[10,"1"],[11.5,"2"]],"metric":{"instance":"10.0.0.1:9100"}}],"resultType":"matrix"},"status":"success"}"#;
        let series = read(body, LIMITS).unwrap();
        assert_eq!(series[0].0.get("instance"), Some("10.0.0.1:9100"));
        assert_eq!(series[0].1, vec![(10_000, 1.0), (11_500, 2.0)]);
    }

    #[test]
    fn keeps_prometheus_error_text() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected <EOF>"}"#;
        let e = read_answer(body.as_bytes(), 400, LIMITS, &mut |_| {}).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("HTTP 400"), "{text}");
        assert!(text.contains("bad_data"), "{text}");
        assert!(text.contains("parse error: unexpected <EOF>"), "{text}");
        assert!(!e.is_unreachable());
    }

    #[test]
    fn garbage_and_wrong_types() {
        let e = read("<html>login</html>", LIMITS).unwrap_err();
        assert!(matches!(e, QueryError::Garbage { .. }), "{e}");
        assert!(e.to_string().contains("<html>login"), "{e}");
        let e = read(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
            LIMITS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("scalar"), "{e}");
        for bad in [
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"x"}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2",3]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
            r#"{"status":"success","data":{"resultType":"vector","result":["#,
            r#"{"status":"success"}"#,
            r#"{"data":{"resultType":"vector","result":[]}}"#,
        ] {
            let e = read(bad, LIMITS).unwrap_err();
            assert!(matches!(e, QueryError::Garbage { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_are_errors_not_allocations() {
        let item = r#"{"metric":{"node":"n"},"value":[1,"1"]}"#;
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            [item; 5].join(",")
        );
        let few = Limits {
            max_bytes: 1 << 20,
            max_series: 4,
        };
        let e = read(&body, few).unwrap_err();
        assert!(e.to_string().contains("more than 4 series"), "{e}");
        let small = Limits {
            max_bytes: 100,
            max_series: 100,
        };
        let e = read(&body, small).unwrap_err();
        assert!(e.to_string().contains("more than 100 bytes"), "{e}");
        assert_eq!(read(&body, LIMITS).unwrap().len(), 5);
    }

    fn read_stats(body: &str) -> (usize, Option<QueryStats>) {
        read_answer_with_stats(body.as_bytes(), 200, LIMITS, &mut |_| {}).unwrap()
    }

    #[test]
    fn prometheus_stats_are_read() {
        // Prometheus 2.42 with stats=all; per-step samples with its feature flag on.
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"node":"a"},"value":[1,"2"]}],"stats":{"timings":{"evalTotalTime":0.024,"resultSortTime":0,"queryPreparationTime":0.0001,"innerEvalTime":0.02,"execQueueTime":0.00001,"execTotalTime":0.025},"samples":{"totalQueryableSamplesPerStep":[[1,9600]],"totalQueryableSamples":9600,"peakSamples":10400}}}}"#;
        let (series, stats) = read_stats(body);
        assert_eq!(series, 1);
        assert_eq!(
            stats,
            Some(QueryStats {
                eval_seconds: 0.024,
                samples: Some(9600),
                peak_samples: Some(10400),
            })
        );
        // Before the result, or without samples: read all the same.
        let body = r#"{"status":"success","data":{"stats":{"timings":{"evalTotalTime":1.5}},"resultType":"vector","result":[]}}"#;
        let (_, stats) = read_stats(body);
        assert_eq!(
            stats.map(|s| (s.eval_seconds, s.samples)),
            Some((1.5, None))
        );
        let plain = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(read_stats(plain), (0, None));
        // An error answer has no statistics to give.
        let body = r#"{"status":"error","errorType":"bad_data","error":"x","data":{"stats":{"timings":{"evalTotalTime":1}}}}"#;
        assert!(read_answer_with_stats(body.as_bytes(), 400, LIMITS, &mut |_| {}).is_err());
    }

    #[test]
    fn victoria_metrics_trace_duration_is_read() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]},"trace":{"duration_msec":12.5,"message":"/api/v1/query: query=count(up): series=1","children":[{"duration_msec":0.5,"message":"eval","children":[]}]}}"#;
        let (_, stats) = read_stats(body);
        assert_eq!(
            stats,
            Some(QueryStats {
                eval_seconds: 0.0125,
                samples: None,
                peak_samples: None,
            })
        );
        let sum = stats.unwrap().plus(QueryStats {
            eval_seconds: 0.5,
            samples: Some(3),
            peak_samples: Some(4),
        });
        assert_eq!((sum.eval_seconds, sum.samples), (0.5125, None));
    }

    #[test]
    fn victoria_metrics_extras_are_ignored() {
        let body = r#"{"status":"success","isPartial":false,"data":{"resultType":"vector","result":[{"metric":{"node":"a"},"value":[1,"2"]}]},"stats":{"seriesFetched":"1"}}"#;
        assert_eq!(read(body, LIMITS).unwrap().len(), 1);
    }
}
