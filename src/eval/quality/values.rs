//! Checks of the columns' values (docs/design.md, "Quality"): fed the rows of both tables
//! one evaluation time after another (a live cycle, history steps, or a scan of a window),
//! they find columns empty for one row while others report (`absent`), powers no machine
//! draws (`implausible`), power that stays exactly 0 W under load (`zero`), and several
//! series for one row (`duplicate`).

use std::collections::BTreeMap;

use super::samples::number;
use super::sources::{is_power, node_counterpart};
use super::{Finding, Problem};
use crate::eval::{Outcome, RowValues};
use crate::tables::schema::{Measure, PerTable, TableKind, node, pod, value_columns, value_index};
use crate::time::Millis;

/// Cores a pod or node must use on average for 0 W to be implausible.
const BUSY_CORES: f64 = 0.05;

/// A row, as findings name it: (instance, name).
type RowKey = (String, String);

/// What the zero check remembers of a row's power column.
#[derive(Debug, Default, Clone)]
struct ZeroWatch {
    all_zero: bool,
    seen: usize,
    first: Millis,
    last: Millis,
    cpu_sum: f64,
    cpu_seen: usize,
}

/// The value checks over a run of evaluation times.
pub struct ValueChecks {
    max_node_watts: f64,
    findings: Vec<Finding>,
    zero: BTreeMap<(TableKind, RowKey, &'static str), ZeroWatch>,
}

impl ValueChecks {
    pub fn new(max_node_watts: f64) -> ValueChecks {
        ValueChecks {
            max_node_watts,
            findings: Vec::new(),
            zero: BTreeMap::new(),
        }
    }

    /// Checks step `step` of `outcome` (both tables), evaluated at `at`.
    pub fn step(&mut self, outcome: &Outcome, step: usize, at: Millis) {
        let rows = PerTable::new(|kind| outcome.step(kind, step));
        for kind in TableKind::ALL {
            for (column, name) in value_columns(kind, Measure::Live).iter().enumerate() {
                self.absent(kind, rows.get(kind), column, name, at);
                if is_power(kind, name) {
                    self.power(kind, &rows, column, name, at);
                }
            }
        }
        for d in &outcome.duplicates {
            self.duplicate(d.table, &d.row, d.column, &rows, at);
        }
    }

    /// The findings, with the zero checks concluded.
    pub fn finish(mut self) -> Vec<Finding> {
        for ((table, (instance, name), column), watch) in std::mem::take(&mut self.zero) {
            let cpu = watch.cpu_sum / watch.cpu_seen.max(1) as f64;
            if watch.all_zero && watch.seen > 0 && cpu > BUSY_CORES {
                self.findings.push(Finding {
                    table,
                    instance,
                    name,
                    column,
                    problem: Problem::Zero,
                    from: watch.first,
                    to: watch.last,
                    detail: format!(
                        "exactly 0 W throughout while using {} cores on average",
                        number(cpu)
                    ),
                });
            }
        }
        self.findings
    }

    fn add(
        &mut self,
        table: TableKind,
        row: &RowValues,
        column: &'static str,
        problem: Problem,
        at: Millis,
        detail: String,
    ) {
        self.findings.push(Finding {
            table,
            instance: instance(table, row),
            name: name(table, row),
            column,
            problem,
            from: at,
            to: at,
            detail,
        });
    }

    /// A row without a value in `column` while other rows have one.
    fn absent(
        &mut self,
        kind: TableKind,
        rows: &[RowValues],
        column: usize,
        name: &'static str,
        at: Millis,
    ) {
        let reporting = rows.iter().filter(|r| has(r, column)).count();
        if reporting == 0 {
            return;
        }
        for row in rows.iter().filter(|r| !has(r, column)) {
            let detail = format!(
                "empty while {reporting} other {}s report it",
                kind.row_name()
            );
            self.add(kind, row, name, Problem::Absent, at, detail);
        }
    }

    /// Bounds of a power column, a pod's power against its node's, and the zero watch.
    fn power(
        &mut self,
        kind: TableKind,
        rows: &PerTable<&[RowValues]>,
        column: usize,
        name: &'static str,
        at: Millis,
    ) {
        let limit = self.max_node_watts;
        let nodes: BTreeMap<&str, &RowValues> =
            rows.nodes.iter().map(|r| (r.name.as_str(), r)).collect();
        let counterpart =
            node_counterpart(name).and_then(|n| value_index(TableKind::Nodes, Measure::Live, n));
        for row in rows.get(kind).iter() {
            let Some(watts) = value(row, column) else {
                continue;
            };
            if watts < 0.0 || watts > limit {
                let detail = format!(
                    "{} W, outside 0 to MAX_NODE_WATTS ({} W)",
                    number(watts),
                    number(limit)
                );
                self.add(kind, row, name, Problem::Implausible, at, detail);
            }
            let node_watts = counterpart.and_then(|c| value(nodes.get(row.node.as_str())?, c));
            if let Some(node_watts) = node_watts.filter(|n| watts > *n * (1.0 + 1e-9) + 1e-9) {
                let detail = format!(
                    "{} W, above its node's {} W from the same source",
                    number(watts),
                    number(node_watts)
                );
                self.add(kind, row, name, Problem::Implausible, at, detail);
            }
            self.watch_zero(kind, row, name, watts, at);
        }
    }

    fn watch_zero(
        &mut self,
        kind: TableKind,
        row: &RowValues,
        column: &'static str,
        watts: f64,
        at: Millis,
    ) {
        let cpu_column = match kind {
            TableKind::Nodes => node::CPU_USAGE,
            TableKind::Pods => pod::CPU_USAGE,
        };
        let cpu = value_index(kind, Measure::Live, cpu_column).and_then(|c| value(row, c));
        let key = (kind, (instance(kind, row), name(kind, row)), column);
        let watch = self.zero.entry(key).or_insert(ZeroWatch {
            all_zero: true,
            first: at,
            ..ZeroWatch::default()
        });
        watch.all_zero &= watts == 0.0;
        watch.seen += 1;
        watch.last = at;
        if let Some(cpu) = cpu {
            watch.cpu_sum += cpu;
            watch.cpu_seen += 1;
        }
    }

    fn duplicate(
        &mut self,
        table: TableKind,
        row: &str,
        column: usize,
        rows: &PerTable<&[RowValues]>,
        at: Millis,
    ) {
        let Some(name) = value_columns(table, Measure::Live).get(column) else {
            return;
        };
        let found = rows.get(table).iter().find(|r| r.name == row);
        let fallback = RowValues {
            name: row.to_string(),
            node: String::new(),
            values: Vec::new(),
        };
        let row = found.unwrap_or(&fallback).clone();
        let detail = "several series resolve to this row; the first is used".to_string();
        self.add(table, &row, name, Problem::Duplicate, at, detail);
    }
}

fn value(row: &RowValues, column: usize) -> Option<f64> {
    row.values
        .get(column)
        .copied()
        .flatten()
        .filter(|v| v.is_finite())
}

fn has(row: &RowValues, column: usize) -> bool {
    value(row, column).is_some()
}

fn instance(table: TableKind, row: &RowValues) -> String {
    match table {
        TableKind::Nodes => row.name.clone(),
        TableKind::Pods => row.node.clone(),
    }
}

fn name(table: TableKind, row: &RowValues) -> String {
    match table {
        TableKind::Nodes => String::new(),
        TableKind::Pods => row.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Outcome;

    fn row(name: &str, node: &str, values: &[Option<f64>]) -> RowValues {
        RowValues {
            name: name.into(),
            node: node.into(),
            values: values.to_vec(),
        }
    }

    fn outcome(nodes: Vec<RowValues>, pods: Vec<RowValues>) -> Outcome {
        Outcome {
            rows: PerTable {
                nodes: vec![nodes],
                pods: vec![pods],
            },
            columns: Vec::new(),
            unmapped: Vec::new(),
            duplicates: Vec::new(),
            mapping_errors: Vec::new(),
            stats: Default::default(),
        }
    }

    #[test]
    fn absent_implausible_and_zero() {
        // Nodes: cpu, memory, network, wattage, num_processes, kepler, scaph, aux.
        let n = |name: &str, cpu, wattage, kepler| {
            row(
                name,
                "",
                &[
                    Some(cpu),
                    Some(50.0),
                    Some(1.0),
                    wattage,
                    Some(9.0),
                    Some(kepler),
                    None,
                    None,
                ],
            )
        };
        // Pods: cpu, memory, network, kepler, scaph.
        let p = |name: &str, node: &str, cpu, kepler| {
            row(
                name,
                node,
                &[Some(cpu), Some(1.0), Some(1.0), Some(kepler), None],
            )
        };
        let mut checks = ValueChecks::new(5000.0);
        for at in [1_000, 2_000] {
            let o = outcome(
                vec![n("w1", 1.0, Some(100.0), 50.0), n("w2", 1.0, None, 9000.0)],
                vec![
                    p("a", "w1", 0.5, 0.0),
                    p("b", "w1", 0.01, 0.0),
                    p("c", "w1", 1.0, 60.0),
                ],
            );
            checks.step(&o, 0, at);
        }
        let mut found = super::super::merge(checks.finish(), 1_000);
        super::super::sort(&mut found);
        let summary: Vec<String> = found
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {} {}-{}",
                    f.table.name(),
                    f.row(),
                    f.column,
                    f.problem,
                    f.from,
                    f.to
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "nodes w2 wattage absent 1000-2000",
                "nodes w2 kepler_wattage implausible 1000-2000",
                "pods a wattage_kepler zero 1000-2000",
                "pods c wattage_kepler implausible 1000-2000",
            ]
        );
        assert!(
            found[3].detail.contains("above its node's 50 W"),
            "{}",
            found[3].detail
        );
    }
}
