//! The Prometheus text format of `/agent/metrics`: every figure of the agent goes through this
//! one renderer, so names, types and escaping follow one set of rules (Prometheus's naming
//! conventions: `_total` only on counters, base units in the name, a summary's `_sum` and
//! `_count` under its own `TYPE`).

use std::fmt::Write as _;

/// A metric's type line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Only `_sum` and `_count` samples (no quantiles).
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// One sample: a suffix of the family's name (`_sum`, `_count`, or none), labels, a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn new(value: f64) -> Sample {
        Sample {
            suffix: "",
            labels: Vec::new(),
            value,
        }
    }

    pub fn labelled(labels: &[(&'static str, &str)], value: f64) -> Sample {
        Sample {
            suffix: "",
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        }
    }
}

/// One metric family: name, type, help, samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family of one unlabelled sample.
    pub fn one(name: &'static str, kind: Kind, help: &'static str, value: f64) -> Family {
        Family {
            name,
            kind,
            help,
            samples: vec![Sample::new(value)],
        }
    }

    /// A summary of `count` observations adding up to `sum`.
    pub fn summary(name: &'static str, help: &'static str, sum: f64, count: u64) -> Family {
        let sample = |suffix, value| Sample {
            suffix,
            labels: Vec::new(),
            value,
        };
        Family {
            name,
            kind: Kind::Summary,
            help,
            samples: vec![sample("_sum", sum), sample("_count", count as f64)],
        }
    }
}

/// The text exposition of `families`, in order.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        debug_assert_eq!(
            f.kind == Kind::Counter,
            f.name.ends_with("_total"),
            "{}: _total is for counters only",
            f.name
        );
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
        for s in &f.samples {
            let _ = writeln!(
                out,
                "{}{}{} {}",
                f.name,
                s.suffix,
                labels(&s.labels),
                s.value
            );
        }
    }
    out
}

fn labels(pairs: &[(&'static str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_types_labels_and_escaping() {
        let text = render(&[
            Family::one("a_total", Kind::Counter, "A counter.", 3.0),
            Family {
                name: "b_bytes",
                kind: Kind::Gauge,
                help: "A gauge.",
                samples: vec![Sample::labelled(
                    &[("table", "nodes"), ("x", "a\"b\\c\nd")],
                    1.5,
                )],
            },
            Family::summary("c_seconds", "A summary.", 2.5, 4),
        ]);
        assert_eq!(
            text,
            "# HELP a_total A counter.\n# TYPE a_total counter\na_total 3\n\
             # HELP b_bytes A gauge.\n# TYPE b_bytes gauge\nb_bytes{table=\"nodes\",x=\"a\\\"b\\\\c\\nd\"} 1.5\n\
             # HELP c_seconds A summary.\n# TYPE c_seconds summary\nc_seconds_sum 2.5\nc_seconds_count 4\n"
        );
    }
}
