//! Checks of the samples a column rests on (docs/design.md, "Quality"), in two passes so
//! that a clean cluster costs one small query per source:
//!
//! 1. **Survey**: one instant query per source at the window's end, over the window: per
//!    row, the fewest samples any of its series has, and for counters the resets and the
//!    growth; for the source, how densely it is scraped and its newest sample.
//! 2. **Inspection**, only for rows the survey finds short of samples, with resets, or with
//!    an implausible growth: their raw samples, series by series, give the exact spans of
//!    gaps, resets and jumps, a late start and a stale end.

use std::collections::BTreeMap;

use super::sources::{self, ColumnSources, Kind, Source};
use super::{Finding, Problem};
use crate::eval::Evaluator;
use crate::prometheus::{Eval, Labels, QueryError, Series};
use crate::tables::identity::{self, COLUMN_LABEL};
use crate::tables::queries::promql_duration;
use crate::tables::schema::TableKind;
use crate::time::{Millis, Window, format_time};

/// A gap is a hole longer than this many scrape intervals.
const GAP_INTERVALS: f64 = 3.0;
/// Samples a row may lack (scrape jitter) before it is inspected.
const SAMPLES_SLACK: f64 = 2.0;
/// The longest ingestion delay taken as the engine's, not the source's.
const MAX_LAG: Millis = 60_000;
/// The survey's second look at density: a recent stretch this long at most.
const DENSITY_STRETCH: Millis = 300_000;

/// What the sample checks need.
pub struct Context<'a> {
    pub evaluator: &'a Evaluator,
    pub window: Window,
    pub max_node_watts: f64,
}

/// The identity labels that group a source's series into rows.
fn group_labels() -> Vec<&'static str> {
    identity::ROW_LABELS.to_vec()
}

/// A row's series of one source, as the survey saw them.
#[derive(Debug, Clone, Default)]
struct Group {
    /// The identity labels' values ("" for absent labels): what selects the row's series.
    labels: Vec<(&'static str, String)>,
    node_label: String,
    pod: String,
    fewest: Option<f64>,
    resets: f64,
    growth: f64,
}

/// What the survey found of a source.
#[derive(Debug, Default)]
struct Survey {
    groups: BTreeMap<Vec<String>, Group>,
    /// Samples of the densest series over the window, and over a recent stretch.
    densest: Option<f64>,
    densest_recent: Option<f64>,
    newest: Option<f64>,
}

impl Survey {
    /// The scrape interval, from the densest series (ms); `None` without data.
    fn interval(&self, span: Millis, stretch: Millis) -> Option<Millis> {
        let from = |n: Option<f64>, len: Millis| n.filter(|n| *n >= 2.0).map(|n| len as f64 / n);
        let best = match (from(self.densest, span), from(self.densest_recent, stretch)) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(best.round().max(1.0) as Millis)
    }
}

/// The survey's probes of a source, each tagged `source.probe`.
fn survey_probes(
    index: usize,
    source: &Source,
    selector: &str,
    span: Millis,
    stretch: Millis,
) -> Vec<String> {
    let by = group_labels().join(", ");
    let d = promql_duration(std::time::Duration::from_millis(span as u64));
    let s = promql_duration(std::time::Duration::from_millis(stretch as u64));
    let mut probes = vec![
        format!("min by ({by}) (count_over_time({selector}[{d}]))"),
        format!("max(count_over_time({selector}[{d}]))"),
        format!("max(count_over_time({selector}[{s}]))"),
        format!("max(timestamp({selector}))"),
    ];
    if source.kind == Kind::Counter {
        probes.push(format!("max by ({by}) (resets({selector}[{d}]))"));
        probes.push(format!("max by ({by}) (increase({selector}[{d}]))"));
    }
    probes
        .iter()
        .enumerate()
        .map(|(i, p)| format!(r#"label_replace(({p}), "{COLUMN_LABEL}", "{index}.{i}", "", "")"#))
        .collect()
}

/// Surveys every source of `sources` with one query.
fn survey(ctx: &Context, sources: &[(&Source, String)]) -> Result<Vec<Survey>, QueryError> {
    let span = ctx.window.end - ctx.window.start;
    let stretch = span.min(DENSITY_STRETCH);
    let promql = sources
        .iter()
        .enumerate()
        .flat_map(|(i, (source, selector))| survey_probes(i, source, selector, span, stretch))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut found: Vec<Survey> = sources.iter().map(|_| Survey::default()).collect();
    if sources.is_empty() {
        return Ok(found);
    }
    ctx.evaluator
        .source()
        .query(&promql, Eval::At(ctx.window.end), &mut |series| {
            record(&mut found, series)
        })?;
    Ok(found)
}

fn record(found: &mut [Survey], series: Series<'_>) {
    let Some(value) = series
        .points
        .last()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
    else {
        return;
    };
    let tag = series.labels.get(COLUMN_LABEL).unwrap_or("");
    let (source, probe) = tag.split_once('.').unwrap_or((tag, ""));
    let (Ok(source), Ok(probe)) = (source.parse::<usize>(), probe.parse::<u8>()) else {
        return;
    };
    let Some(found) = found.get_mut(source) else {
        return;
    };
    let global = match probe {
        1 => &mut found.densest,
        2 => &mut found.densest_recent,
        3 => &mut found.newest,
        _ => return group_probe(found, probe, series.labels, value),
    };
    *global = Some(global.map_or(value, |g| g.max(value)));
}

fn group_probe(found: &mut Survey, probe: u8, labels: &Labels, value: f64) {
    let values: Vec<(&'static str, String)> = group_labels()
        .into_iter()
        .map(|name| (name, labels.get(name).unwrap_or("").to_string()))
        .collect();
    let key: Vec<String> = values.iter().map(|(_, v)| v.clone()).collect();
    let group = found.groups.entry(key).or_insert_with(|| Group {
        node_label: identity::node_label(labels).unwrap_or("").to_string(),
        pod: identity::pod_label(labels).unwrap_or("").to_string(),
        labels: values,
        ..Group::default()
    });
    match probe {
        0 => group.fewest = Some(value),
        4 => group.resets = value,
        5 => group.growth = value,
        _ => {}
    }
}

/// The sample findings of every default column of `tables` in the window: one survey
/// query per table, then an inspection of the rows it points at.
pub fn check(ctx: &Context, tables: &[TableKind]) -> Result<Vec<Finding>, QueryError> {
    let mut surveyed = Vec::new();
    for table in tables {
        let sources: Vec<(&ColumnSources, &Source, String)> = sources::COLUMNS
            .iter()
            .filter(|c| c.table == *table && is_default(ctx, c))
            .flat_map(|c| {
                c.sources
                    .iter()
                    .map(move |s| (c, s, sources::expand(s.selector, ctx.evaluator.namespace())))
            })
            .collect();
        let asked: Vec<(&Source, String)> =
            sources.iter().map(|(_, s, q)| (*s, q.clone())).collect();
        surveyed.extend(sources.into_iter().zip(survey(ctx, &asked)?));
    }
    let newest = surveyed
        .iter()
        .filter_map(|(_, survey)| survey.newest)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let lag = newest.map_or(0, |newest| {
        (ctx.window.end - (newest * 1000.0) as Millis).clamp(0, MAX_LAG)
    });
    let mut findings = Vec::new();
    for ((column, source, selector), survey) in &surveyed {
        let inspect = Inspect {
            ctx,
            column,
            source,
            selector,
            lag,
        };
        findings.extend(inspect.survey(survey)?);
    }
    Ok(findings)
}

/// Whether the column's query is the default one (its sources are known).
fn is_default(ctx: &Context, column: &ColumnSources) -> bool {
    let plan = ctx.evaluator.live_plan(column.table);
    plan.of_table(column.table)
        .any(|p| p.name == column.column && !p.overridden && p.promql.is_some())
}

/// One source of one column, inspected row by row.
struct Inspect<'a> {
    ctx: &'a Context<'a>,
    column: &'a ColumnSources,
    source: &'a Source,
    selector: &'a str,
    /// How far the engine's newest data lags the window's end.
    lag: Millis,
}

/// What the raw samples of one row's series show.
#[derive(Debug, Default)]
struct Samples {
    first: Option<Millis>,
    last: Option<Millis>,
    findings: Vec<(Problem, Millis, Millis, String)>,
}

impl Inspect<'_> {
    fn survey(&self, survey: &Survey) -> Result<Vec<Finding>, QueryError> {
        let window = self.ctx.window;
        let span = window.end - window.start;
        let Some(interval) = survey.interval(span, span.min(DENSITY_STRETCH)) else {
            return Ok(Vec::new());
        };
        let expected = span as f64 / interval as f64;
        let mut findings = Vec::new();
        for group in survey.groups.values() {
            let short = group.fewest.is_some_and(|n| n < expected - SAMPLES_SLACK);
            let jumped = self.column.power
                && self.source.kind == Kind::Counter
                && group.growth / (span as f64 / 1000.0) > self.ctx.max_node_watts;
            if short || group.resets > 0.0 || jumped {
                findings.extend(self.group(group, interval)?);
            }
        }
        Ok(findings)
    }

    /// The findings of one row's series, from their raw samples.
    fn group(&self, group: &Group, interval: Millis) -> Result<Vec<Finding>, QueryError> {
        let Some((instance, name)) = self.row(group) else {
            return Ok(Vec::new());
        };
        let samples = self.samples(group, interval)?;
        let mut findings = Vec::new();
        let mut add = |problem, from: Millis, to: Millis, detail: String| {
            let window = self.ctx.window;
            if to >= window.start && from <= window.end {
                findings.push(Finding {
                    table: self.column.table,
                    instance: instance.clone(),
                    name: name.clone(),
                    column: self.column.column,
                    problem,
                    from: from.max(window.start),
                    to: to.min(window.end),
                    detail,
                });
            }
        };
        for (problem, from, to, detail) in &samples.findings {
            add(*problem, *from, *to, detail.clone());
        }
        self.ends(&samples, interval, &mut add);
        Ok(findings)
    }

    /// A late first sample (the rows after it read low for one WINDOW) and a stale end.
    fn ends(
        &self,
        samples: &Samples,
        interval: Millis,
        add: &mut impl FnMut(Problem, Millis, Millis, String),
    ) {
        let window = self.ctx.window;
        let row_window = self.ctx.evaluator.window();
        let limit = (GAP_INTERVALS * interval as f64) as Millis;
        let exporter = self.source.exporter;
        if let Some(first) = samples.first.filter(|f| *f > window.start + limit) {
            let detail = format!(
                "{exporter} starts at {}: rates over the first {} rest on fewer samples",
                format_time(first),
                seconds(row_window)
            );
            add(Problem::Partial, first, first + row_window, detail);
        }
        if let Some(last) = samples.last.filter(|l| window.end - self.lag - l > limit) {
            let age = window.end - last;
            let detail = format!(
                "newest sample {} old at the end, scrape interval {}",
                seconds(age),
                seconds(interval)
            );
            add(Problem::Stale, last, window.end, detail);
            let detail = format!("{exporter} sent nothing since {}", format_time(last));
            add(Problem::Partial, last, window.end, detail);
        }
    }

    /// The row of a group: (instance, name) as in the live tables; `None` for a series of
    /// another namespace or without a row.
    fn row(&self, group: &Group) -> Option<(String, String)> {
        let evaluator = self.ctx.evaluator;
        let labels: Vec<(&str, &str)> =
            group.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let labels = Labels::from_pairs(&labels);
        let node = evaluator
            .node_names([group.node_label.as_str()], self.ctx.window.end)
            .pop()
            .unwrap_or_default();
        match self.column.table {
            TableKind::Nodes => (!node.is_empty()).then(|| (node, String::new())),
            TableKind::Pods => {
                let namespace = identity::namespace_label(&labels);
                if namespace.is_some_and(|ns| ns != evaluator.namespace()) || group.pod.is_empty() {
                    return None;
                }
                Some((node, group.pod.clone()))
            }
        }
    }

    /// The raw samples of a group's series over the window, checked series by series.
    fn samples(&self, group: &Group, interval: Millis) -> Result<Samples, QueryError> {
        let window = self.ctx.window;
        let span = promql_duration(std::time::Duration::from_millis(
            (window.end - window.start) as u64,
        ));
        let promql = format!("{}[{span}]", restricted(self.selector, &group.labels));
        let mut samples = Samples::default();
        self.ctx
            .evaluator
            .source()
            .query(&promql, Eval::At(window.end), &mut |series| {
                self.series(&mut samples, series.points, interval)
            })?;
        Ok(samples)
    }

    /// Checks one series' samples: holes, decreases (counters) and jumps (power counters).
    fn series(&self, samples: &mut Samples, points: &[(Millis, f64)], interval: Millis) {
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            return;
        };
        samples.first = Some(samples.first.map_or(first.0, |f| f.min(first.0)));
        samples.last = Some(samples.last.map_or(last.0, |l| l.max(last.0)));
        let own = own_interval(points).unwrap_or(interval);
        let limit = (GAP_INTERVALS * own as f64) as Millis;
        let row_window = self.ctx.evaluator.window();
        for pair in points.windows(2) {
            let ((t0, v0), (t1, v1)) = (pair[0], pair[1]);
            if t1 - t0 > limit {
                let detail = format!(
                    "no sample for {}, scrape interval {}",
                    seconds(t1 - t0),
                    seconds(own)
                );
                samples.findings.push((Problem::Gap, t0, t1, detail));
                let detail = format!(
                    "rates over {} after a gap rest on fewer samples",
                    seconds(row_window)
                );
                samples
                    .findings
                    .push((Problem::Partial, t0, t1 + row_window, detail));
            }
            if self.source.kind == Kind::Counter {
                self.counter_step(samples, (t0, v0), (t1, v1));
            }
        }
    }

    /// A counter's step between two samples: a reset, or a growth no power could give. A
    /// rate over `WINDOW` spreads the step's growth over the window; across a reset it takes
    /// the counter to have restarted from zero, so the growth it sees is the new value.
    fn counter_step(
        &self,
        samples: &mut Samples,
        (t0, v0): (Millis, f64),
        (t1, v1): (Millis, f64),
    ) {
        let exporter = self.source.exporter;
        let row_window = self.ctx.evaluator.window();
        let limit = self.ctx.max_node_watts;
        let window_seconds = row_window.max(1) as f64 / 1000.0;
        let seen = if v1 < v0 { v1 } else { v1 - v0 };
        if v1 < v0 {
            let detail = format!(
                "the {exporter} counter fell from {} to {} (a restart or a wrap): what it counted in between is lost",
                number(v0),
                number(v1)
            );
            samples.findings.push((Problem::Reset, t0, t1, detail));
        }
        if self.column.power && seen / window_seconds > limit {
            let detail = format!(
                "the {exporter} counter grew by {} J in {}: rates over {} read {} W, above MAX_NODE_WATTS ({})",
                number(seen),
                seconds(t1 - t0),
                seconds(row_window),
                number(seen / window_seconds),
                number(limit)
            );
            samples
                .findings
                .push((Problem::Implausible, t0, t1 + row_window, detail));
        }
    }
}

/// The typical spacing of a series' samples: their median (ms).
fn own_interval(points: &[(Millis, f64)]) -> Option<Millis> {
    let mut spacings: Vec<Millis> = points.windows(2).map(|p| p[1].0 - p[0].0).collect();
    if spacings.len() < 2 {
        return None;
    }
    spacings.sort_unstable();
    Some(spacings[spacings.len() / 2].max(1))
}

/// `selector` restricted to the series whose identity labels have these values.
fn restricted(selector: &str, labels: &[(&'static str, String)]) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    let matchers = matchers.join(", ");
    match selector.strip_suffix('}') {
        Some(open) => format!("{open}, {matchers}}}"),
        None => format!("{selector}{{{matchers}}}"),
    }
}

/// A label value from Prometheus as a PromQL string's contents.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A duration for a detail sentence: `21 s`, `1.5 s`, `2 min`.
pub fn seconds(ms: Millis) -> String {
    if ms >= 120_000 && ms % 60_000 == 0 {
        return format!("{} min", ms / 60_000);
    }
    format!("{} s", crate::tables::format::format_seconds(ms))
}

/// A number for a detail sentence, as the tables print them.
pub fn number(x: f64) -> String {
    crate::tables::format::format_value(Some(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_selectors_keep_their_matchers() {
        let labels = vec![
            ("instance", "10.0.0.1:9100".to_string()),
            ("node", String::new()),
        ];
        assert_eq!(
            restricted(r#"node_cpu_seconds_total{mode!~"idle"}"#, &labels),
            r#"node_cpu_seconds_total{mode!~"idle", instance="10.0.0.1:9100", node=""}"#
        );
        assert_eq!(
            restricted("up", &[("pod", "a\"b\\c".to_string())]),
            r#"up{pod="a\"b\\c"}"#
        );
    }

    #[test]
    fn spacing_and_words() {
        let points: Vec<(Millis, f64)> = [0, 1000, 2000, 3000, 25000]
            .iter()
            .map(|t| (*t, 0.0))
            .collect();
        assert_eq!(own_interval(&points), Some(1000));
        assert_eq!(seconds(21_000), "21 s");
        assert_eq!(seconds(1_500), "1.5 s");
        assert_eq!(seconds(900_000), "15 min");
        let survey = Survey {
            densest: Some(60.0),
            densest_recent: Some(30.0),
            ..Survey::default()
        };
        assert_eq!(survey.interval(60_000, 30_000), Some(1_000));
    }
}
