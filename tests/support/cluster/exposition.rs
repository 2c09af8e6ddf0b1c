//! The Prometheus text format (0.0.4): series labelled once, values and timestamps added at
//! each scrape.

use std::fmt::Write as _;

use super::Schedule;
use super::faults::{FaultKind, JUMP_JOULES, Origin, Resolved};

/// Starting value of every counter: large enough that Prometheus never limits
/// its extrapolation at the counter's zero point.
pub const BASE: f64 = 1e6;

pub(super) type Labels = Vec<(String, String)>;

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn with(base: &Labels, extra: &[(&str, &str)]) -> Labels {
    let mut all = base.clone();
    all.extend(labels(extra));
    all
}

/// How a sample's value is computed at scrape time. "Load" is the schedule's factor (1
/// without a schedule); counters are `BASE` plus their growth since the exporter started.
#[derive(Clone, Copy, Debug)]
enum Value {
    /// Grows by `rate` per second at full load: `rate × ∫ load`.
    Counter(f64),
    /// A CPU's idle seconds: `rate` per second plus what its busy modes (`busy` per second at
    /// full load) leave unused.
    Idle {
        rate: f64,
        busy: f64,
    },
    Gauge(f64),
    /// `value × load`.
    LoadGauge(f64),
}

#[derive(Debug)]
struct Sample {
    /// `name{labels}`.
    series: String,
    value: Value,
    /// Indices of the faults that apply to it.
    faults: Box<[u16]>,
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: &'static str,
    samples: Vec<Sample>,
}

/// A text-format exposition with every series rendered once, each metric
/// family kept together; [`Exposition::render`] only adds values and
/// timestamps, so a scrape of a scaled scenario stays cheap.
#[derive(Debug)]
pub struct Exposition {
    families: Vec<Family>,
    load: Option<Schedule>,
    faults: Vec<Resolved>,
    /// Where the series being added come from.
    origin: Option<Origin>,
}

impl Exposition {
    pub(super) fn new(load: Option<Schedule>, faults: Vec<Resolved>) -> Exposition {
        assert!(faults.len() <= usize::from(u16::MAX), "too many faults");
        Exposition {
            families: Vec::new(),
            load,
            faults,
            origin: None,
        }
    }

    /// The series added next come from `origin`.
    pub(super) fn from(&mut self, origin: Origin) {
        self.origin = Some(origin);
    }

    pub(super) fn counter(&mut self, name: &str, labels: &Labels, rate: f64) {
        self.sample(name, "counter", labels, Value::Counter(rate), false);
    }

    /// The package counter of a node or pod: the one a `jump` fault hits.
    pub(super) fn package_counter(&mut self, name: &str, labels: &Labels, rate: f64) {
        self.sample(name, "counter", labels, Value::Counter(rate), true);
    }

    pub(super) fn idle_counter(&mut self, name: &str, labels: &Labels, rate: f64, busy: f64) {
        self.sample(name, "counter", labels, Value::Idle { rate, busy }, false);
    }

    pub(super) fn gauge(&mut self, name: &str, labels: &Labels, value: f64) {
        self.sample(name, "gauge", labels, Value::Gauge(value), false);
    }

    /// A gauge that follows the load (power).
    pub(super) fn load_gauge(&mut self, name: &str, labels: &Labels, value: f64) {
        self.sample(name, "gauge", labels, Value::LoadGauge(value), false);
    }

    fn sample(
        &mut self,
        name: &str,
        kind: &'static str,
        labels: &Labels,
        value: Value,
        jumpable: bool,
    ) {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(index) => index,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let mut series = String::with_capacity(name.len() + 32 * labels.len());
        series.push_str(name);
        series.push('{');
        for (i, (key, val)) in labels.iter().enumerate() {
            if i > 0 {
                series.push(',');
            }
            let escaped = val
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(series, "{key}=\"{escaped}\"");
        }
        series.push('}');
        let faults = match self.origin {
            Some(origin) => self
                .faults
                .iter()
                .enumerate()
                .filter(|(_, f)| f.applies(origin, jumpable))
                .map(|(i, _)| i as u16)
                .collect(),
            None => Box::default(),
        };
        self.families[index].samples.push(Sample {
            series,
            value,
            faults,
        });
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// The exposition at `now_ms`, counters having grown since `t0_ms`.
    pub fn render(&self, t0_ms: i64, now_ms: i64) -> String {
        let elapsed = (now_ms - t0_ms) as f64 / 1000.0;
        // What a counter of rate 1 grew by, and the load now.
        let (grown, load) = match &self.load {
            None => (elapsed, 1.0),
            Some(schedule) => (schedule.integral(t0_ms, now_ms), schedule.factor_at(now_ms)),
        };
        let size: usize = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|s| s.series.len() + 40)
            .sum();
        let mut out = String::with_capacity(size + 200 * self.families.len());
        for family in &self.families {
            let (name, kind) = (&family.name, family.kind);
            let _ = writeln!(
                out,
                "# HELP {name} Synthetic {kind} of the prometheus-agent tests."
            );
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for sample in &family.samples {
                let value = if sample.faults.is_empty() {
                    match sample.value {
                        Value::Counter(rate) => BASE + rate * grown,
                        Value::Idle { rate, busy } => {
                            BASE + rate * elapsed + busy * (elapsed - grown)
                        }
                        Value::Gauge(value) => value,
                        Value::LoadGauge(value) => value * load,
                    }
                } else {
                    match self.faulty(sample, t0_ms, now_ms) {
                        Some(value) => value,
                        None => continue,
                    }
                };
                let _ = writeln!(out, "{} {value} {now_ms}", sample.series);
            }
        }
        out
    }

    /// A sample's value under its faults at `now_ms`; `None` when it is not exposed.
    fn faulty(&self, sample: &Sample, t0_ms: i64, now_ms: i64) -> Option<f64> {
        let faults = || sample.faults.iter().map(|&i| &self.faults[usize::from(i)]);
        let on = |kind: FaultKind| faults().filter(move |f| f.kind == kind && f.is_on(now_ms));
        if on(FaultKind::Gap)
            .chain(on(FaultKind::Stop))
            .next()
            .is_some()
        {
            return None;
        }
        let value = match sample.value {
            Value::Gauge(value) => value,
            Value::LoadGauge(value) => value * self.load_at(now_ms),
            Value::Counter(_) | Value::Idle { .. } => {
                let growth = |t: i64| self.growth(sample, t0_ms, t);
                let reset = faults()
                    .filter(|f| f.kind == FaultKind::Reset && f.from_ms <= now_ms)
                    .map(|f| f.from_ms.max(t0_ms))
                    .max();
                let value = match reset {
                    Some(at) => growth(now_ms) - growth(at),
                    None => BASE + growth(now_ms),
                };
                let jump = on(FaultKind::Jump).next().is_some();
                value + if jump { JUMP_JOULES } else { 0.0 }
            }
        };
        Some(value)
    }

    /// What a counter grew by from `t0_ms` to `t_ms`, not counting the spans a `zero` fault
    /// held it flat: summed over the pieces between those spans, so that it is exactly the
    /// same number all through a span.
    fn growth(&self, sample: &Sample, t0_ms: i64, t_ms: i64) -> f64 {
        let elapsed = (t_ms - t0_ms) as f64 / 1000.0;
        let integral = |from: i64, to: i64| match &self.load {
            None => (to - from) as f64 / 1000.0,
            Some(schedule) => schedule.integral(from, to),
        };
        match sample.value {
            Value::Counter(rate) => {
                let mut flat: Vec<(i64, i64)> = sample
                    .faults
                    .iter()
                    .map(|&i| &self.faults[usize::from(i)])
                    .filter(|f| f.kind == FaultKind::Zero)
                    .map(|f| (f.from_ms.max(t0_ms), f.until_ms.min(t_ms)))
                    .filter(|(from, until)| from < until)
                    .collect();
                flat.sort_unstable();
                let (mut grown, mut at) = (0.0, t0_ms);
                for (from, until) in flat {
                    if from > at {
                        grown += integral(at, from);
                    }
                    at = at.max(until);
                }
                if t_ms > at {
                    grown += integral(at, t_ms);
                }
                rate * grown
            }
            Value::Idle { rate, busy } => rate * elapsed + busy * (elapsed - integral(t0_ms, t_ms)),
            Value::Gauge(_) | Value::LoadGauge(_) => 0.0,
        }
    }

    fn load_at(&self, t_ms: i64) -> f64 {
        self.load.as_ref().map_or(1.0, |s| s.factor_at(t_ms))
    }
}
