//! Data quality (docs/design.md, "Quality"): which values the sources' data makes doubtful,
//! found on demand from Prometheus. Each finding names a row (node or pod), a live column, a
//! problem with a fixed code, the span it affects and one sentence with the numbers.
//!
//! Two kinds of evidence: the samples of the series a column rests on (`samples`: gaps,
//! resets, a stale end, the partial windows they leave; `estimated`: what the sources say of
//! themselves), and the column's values (`values`: absent, implausible, zero, duplicate).
//! `audit` puts them together for a window, for a row's own window, or for a span of rows.

pub mod audit;
pub mod estimated;
pub mod rows;
pub mod samples;
pub mod sources;
pub mod values;

use std::fmt;

use crate::tables::format::CsvLines;
use crate::tables::schema::{Measure, TableKind, value_index};
use crate::time::{Millis, format_time};

pub use audit::Audit;

/// The window an audit covers when asked without a start (`/quality`, `check`): 15 minutes.
pub const DEFAULT_SPAN: Millis = 15 * 60_000;

/// A problem, by its fixed code (README, "Data quality").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    /// A series the column rests on had no sample for longer than 3 of its scrape intervals.
    Gap,
    /// The column is empty for this row while the same source reports for others.
    Absent,
    /// A counter the column rests on reset (an exporter restart, a wrap, a glitch).
    Reset,
    /// A power below 0, above `MAX_NODE_WATTS`, or a pod's above its node's.
    Implausible,
    /// Exactly 0 W over the whole window while the row used more than 0.05 cores.
    Zero,
    /// The source says its power is estimated (a model), not measured.
    Estimated,
    /// At the end, the newest sample is older than 3 scrape intervals.
    Stale,
    /// The value rests on fewer samples than its `WINDOW` should hold, so it reads low.
    Partial,
    /// Several series of the column resolve to this row; the first is used.
    Duplicate,
}

impl Problem {
    pub const ALL: [Problem; 9] = [
        Problem::Gap,
        Problem::Absent,
        Problem::Reset,
        Problem::Implausible,
        Problem::Zero,
        Problem::Estimated,
        Problem::Stale,
        Problem::Partial,
        Problem::Duplicate,
    ];

    /// Whether a finding's span is the time of the rows it affects (`partial`: the rows that
    /// read low), rather than the time of the samples (`gap`: rows whose `WINDOW` holds it).
    pub fn spans_rows(self) -> bool {
        !matches!(self, Problem::Gap | Problem::Reset | Problem::Estimated)
    }

    /// The code in `/quality`, `problems` columns and `/agent/metrics`.
    pub fn code(self) -> &'static str {
        match self {
            Problem::Gap => "gap",
            Problem::Absent => "absent",
            Problem::Reset => "reset",
            Problem::Implausible => "implausible",
            Problem::Zero => "zero",
            Problem::Estimated => "estimated",
            Problem::Stale => "stale",
            Problem::Partial => "partial",
            Problem::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One finding: a row, a live column, a problem, the span it affects, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub table: TableKind,
    /// The node (node rows), or the node the pod runs on (pod rows), as in the live tables.
    pub instance: String,
    /// The pod (pod rows); empty for node rows.
    pub name: String,
    pub column: &'static str,
    pub problem: Problem,
    pub from: Millis,
    pub to: Millis,
    pub detail: String,
}

impl Finding {
    /// The row's name in its table: the node, or the pod.
    pub fn row(&self) -> &str {
        match self.table {
            TableKind::Nodes => &self.instance,
            TableKind::Pods => &self.name,
        }
    }

    /// Whether the finding touches the span from `from` to `to`.
    pub fn overlaps(&self, from: Millis, to: Millis) -> bool {
        self.from <= to && self.to >= from
    }

    /// Whether it concerns a row evaluated at `at` over the `window` before it.
    pub fn concerns(&self, at: Millis, window: Millis) -> bool {
        if self.problem.spans_rows() {
            self.overlaps(at, at)
        } else {
            self.overlaps(at - window + 1, at)
        }
    }
}

/// The header of `/quality`.
pub const HEADER: &str = "table,instance,name,column,problem,from,to,detail\n";

/// The CSV lines of `findings`, without the header.
pub fn lines(findings: &[Finding]) -> Vec<String> {
    let mut csv = CsvLines::new();
    findings
        .iter()
        .map(|f| {
            csv.push(&[
                f.table.name(),
                &f.instance,
                &f.name,
                f.column,
                f.problem.code(),
                &format_time(f.from),
                &format_time(f.to),
                &f.detail,
            ])
        })
        .collect()
}

/// Findings in a stable order: table, row, column (in table order), problem, time.
pub fn sort(findings: &mut [Finding]) {
    let position =
        |f: &Finding| value_index(f.table, Measure::Live, f.column).unwrap_or(usize::MAX);
    findings.sort_by(|a, b| {
        (a.table, a.row(), position(a), a.problem, a.from).cmp(&(
            b.table,
            b.row(),
            position(b),
            b.problem,
            b.from,
        ))
    });
}

/// The `problems` field of a row: `column:problem` pairs joined with `;`, each once, in
/// column order of `columns`; empty when clean.
pub fn problems_field<'a>(
    findings: impl IntoIterator<Item = &'a Finding>,
    columns: &[&str],
    rename: impl Fn(&'static str) -> Option<&'static str>,
) -> String {
    let mut pairs: Vec<(usize, Problem, &'static str)> = Vec::new();
    for f in findings {
        let Some(column) = rename(f.column) else {
            continue;
        };
        let at = columns
            .iter()
            .position(|c| *c == column)
            .unwrap_or(usize::MAX);
        if !pairs.contains(&(at, f.problem, column)) {
            pairs.push((at, f.problem, column));
        }
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(_, problem, column)| format!("{column}:{problem}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Merges findings of the same row, column and problem whose spans touch (within `slack`),
/// keeping the first detail.
pub fn merge(findings: Vec<Finding>, slack: Millis) -> Vec<Finding> {
    let mut sorted = findings;
    sort(&mut sorted);
    let mut out: Vec<Finding> = Vec::with_capacity(sorted.len());
    for f in sorted {
        if let Some(last) = out.last_mut()
            && (last.table, last.row(), last.column, last.problem)
                == (f.table, f.row(), f.column, f.problem)
            && f.from <= last.to + slack
        {
            last.to = last.to.max(f.to);
            continue;
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        row: &str,
        column: &'static str,
        problem: Problem,
        from: Millis,
        to: Millis,
    ) -> Finding {
        Finding {
            table: TableKind::Pods,
            instance: "w1".into(),
            name: row.into(),
            column,
            problem,
            from,
            to,
            detail: format!("{from}"),
        }
    }

    #[test]
    fn findings_merge_sort_and_print() {
        let merged = merge(
            vec![
                finding("b", "cpu_usage", Problem::Gap, 5_000, 6_000),
                finding("a", "wattage_scaph", Problem::Gap, 1_000, 2_000),
                finding("a", "wattage_scaph", Problem::Gap, 2_500, 3_000),
                finding("a", "wattage_scaph", Problem::Gap, 9_000, 9_500),
            ],
            1_000,
        );
        assert_eq!(merged.len(), 3);
        assert_eq!((merged[0].from, merged[0].to), (1_000, 3_000));
        assert_eq!(merged[1].from, 9_000);
        assert_eq!(merged[2].name, "b");
        assert_eq!(
            lines(&merged[..1]),
            [
                "pods,w1,a,wattage_scaph,gap,1970-01-01T00:00:01.000Z,1970-01-01T00:00:03.000Z,1000\n"
            ]
        );
    }

    #[test]
    fn problems_fields_follow_column_order() {
        let found = [
            finding("a", "wattage_scaph", Problem::Stale, 0, 1),
            finding("a", "wattage_kepler", Problem::Partial, 0, 1),
            finding("a", "wattage_scaph", Problem::Stale, 2, 3),
            finding("a", "memory_usage", Problem::Gap, 0, 1),
        ];
        let columns = [
            "cpu_usage",
            "memory_usage",
            "network_usage",
            "wattage_kepler",
            "wattage_scaph",
        ];
        assert_eq!(
            problems_field(&found, &columns, Some),
            "memory_usage:gap;wattage_kepler:partial;wattage_scaph:stale"
        );
        // Energy rows rename live columns and drop those they do not carry.
        let energy = ["cpu_seconds", "kepler_joules", "scaph_joules"];
        let rename = |c: &'static str| match c {
            "wattage_kepler" => Some("kepler_joules"),
            "wattage_scaph" => Some("scaph_joules"),
            _ => None,
        };
        assert_eq!(
            problems_field(&found, &energy, rename),
            "kepler_joules:partial;scaph_joules:stale"
        );
        assert_eq!(problems_field(&[], &columns, Some), "");
    }
}
