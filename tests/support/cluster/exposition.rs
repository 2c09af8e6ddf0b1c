//! The Prometheus text format (0.0.4): series labelled once, values and timestamps added at
//! each scrape.

use std::fmt::Write as _;

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

/// How a sample's value is computed at scrape time.
#[derive(Clone, Copy, Debug)]
enum Value {
    /// `BASE + rate * elapsed seconds`.
    Counter(f64),
    Gauge(f64),
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: &'static str,
    /// Each series as `name{labels}`, with its value.
    samples: Vec<(String, Value)>,
}

/// A text-format exposition with every series rendered once, each metric
/// family kept together; [`Exposition::render`] only adds values and
/// timestamps, so a scrape of a scaled scenario stays cheap.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub(super) fn counter(&mut self, name: &str, labels: &Labels, rate: f64) {
        self.sample(name, "counter", labels, Value::Counter(rate));
    }

    pub(super) fn gauge(&mut self, name: &str, labels: &Labels, value: f64) {
        self.sample(name, "gauge", labels, Value::Gauge(value));
    }

    fn sample(&mut self, name: &str, kind: &'static str, labels: &Labels, value: Value) {
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
        self.families[index].samples.push((series, value));
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// The exposition at `now_ms`, counters having grown since `t0_ms`.
    pub fn render(&self, t0_ms: i64, now_ms: i64) -> String {
        let elapsed = (now_ms - t0_ms) as f64 / 1000.0;
        let size: usize = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|(series, _)| series.len() + 40)
            .sum();
        let mut out = String::with_capacity(size + 200 * self.families.len());
        for family in &self.families {
            let (name, kind) = (&family.name, family.kind);
            let _ = writeln!(
                out,
                "# HELP {name} Synthetic {kind} of the prometheus-agent tests."
            );
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (series, value) in &family.samples {
                let value = match *value {
                    Value::Counter(rate) => BASE + rate * elapsed,
                    Value::Gauge(value) => value,
                };
                let _ = writeln!(out, "{series} {value} {now_ms}");
            }
        }
        out
    }
}
