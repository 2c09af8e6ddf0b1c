//! Rows that carry their own doubts (`problems=1`): each row's `problems` field lists the
//! findings of its own `WINDOW` (its sources' samples, and its values at its time), computed
//! with the row. Nothing is computed while no client asks: a request arms the poller for a
//! while (`Demand`), and rows from before that are filled in on demand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Audit, Finding, problems_field};
use crate::buffer::Row;
use crate::eval::{Outcome, RowValues};
use crate::prometheus::QueryError;
use crate::tables::schema::{Key, Measure, PerTable, TableKind, key_columns, value_columns};
use crate::time::{Millis, Window, now_ms};

/// How long one request for problems keeps the poller computing them.
const ARMED_FOR: Millis = 15 * 60_000;

/// Whether, and until when, clients want rows' problems.
#[derive(Default)]
pub struct Demand {
    until: AtomicI64,
}

impl Demand {
    /// A client asked for problems: compute them with every cycle for a while.
    pub fn ask(&self) {
        self.until
            .fetch_max(now_ms() + ARMED_FOR, Ordering::Relaxed);
    }

    pub fn armed(&self) -> bool {
        self.until.load(Ordering::Relaxed) > now_ms()
    }
}

/// The `problems` field of every row of one cycle evaluated at `at`, per table.
pub fn of_cycle(
    audit: &Audit,
    outcome: &Outcome,
    at: Millis,
) -> Result<PerTable<Vec<String>>, QueryError> {
    let row_window = audit.evaluator.window();
    let window = Window {
        start: at - row_window,
        end: at,
    };
    let sources = audit.of_sources(window, &TableKind::ALL)?;
    Ok(fields(audit, outcome, &[at], &sources).map(|_, steps| steps.concat()))
}

/// The `problems` fields of the rows of `outcome` at `times`, per table and step, given the
/// source findings that cover their windows.
pub fn fields(
    audit: &Audit,
    outcome: &Outcome,
    times: &[Millis],
    sources: &[Finding],
) -> PerTable<Vec<Vec<String>>> {
    audit.rows(outcome, times, sources).map(|kind, steps| {
        let columns = value_columns(kind, Measure::Live);
        steps
            .iter()
            .map(|rows| {
                rows.iter()
                    .map(|found| problems_field(found, columns, Some))
                    .collect()
            })
            .collect()
    })
}

/// Fills in the problems of `rows` (of `kind`) that have none yet, cycle by cycle; `cycle`
/// gives the buffered rows of both tables observed at a time (pods are checked against
/// their nodes).
pub fn fill(
    audit: &Audit,
    kind: TableKind,
    rows: &[Row],
    cycle: impl Fn(Millis) -> PerTable<Vec<Row>>,
) -> Result<(), QueryError> {
    let mut missing: BTreeMap<Millis, ()> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.problems.get().is_none()) {
        missing.insert(row.observation_ms, ());
    }
    for at in missing.into_keys() {
        let buffered = cycle(at);
        let outcome = outcome_of(&buffered);
        let fields = of_cycle(audit, &outcome, at)?;
        for (row, field) in buffered.get(kind).iter().zip(fields.get(kind)) {
            let _ = row.problems.set(field.as_str().into());
        }
    }
    Ok(())
}

/// The values of buffered rows, read back from their lines.
fn outcome_of(rows: &PerTable<Vec<Row>>) -> Outcome {
    Outcome {
        rows: rows.map(|kind, rows| vec![rows.iter().map(|r| values(kind, &r.line)).collect()]),
        columns: Vec::new(),
        unmapped: Vec::new(),
        duplicates: Vec::new(),
        mapping_errors: Vec::new(),
        stats: Default::default(),
    }
}

/// A row's values from its CSV line (names never hold commas: they are DNS names).
fn values(kind: TableKind, line: &str) -> RowValues {
    let fields: Vec<&str> = line.trim_end_matches('\n').split(',').collect();
    let keys = key_columns(kind, Measure::Live);
    let key = |wanted: Key| {
        keys.iter()
            .position(|k| *k == wanted)
            .and_then(|i| fields.get(i))
            .map_or(String::new(), |f| f.to_string())
    };
    let (name, node) = match kind {
        TableKind::Nodes => (key(Key::Instance), String::new()),
        TableKind::Pods => (key(Key::Name), key(Key::Instance)),
    };
    RowValues {
        name,
        node,
        values: fields
            .iter()
            .skip(keys.len())
            .take(value_columns(kind, Measure::Live).len())
            .map(|f| f.parse::<f64>().ok())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_from_lines() {
        let row = values(
            TableKind::Pods,
            "w2,2026-01-31T12:00:05.123Z,2026-01-31T12:00:00.000Z,db-0,exp,0.25,,1.5,0,\n",
        );
        assert_eq!((row.name.as_str(), row.node.as_str()), ("db-0", "w2"));
        assert_eq!(row.values, [Some(0.25), None, Some(1.5), Some(0.0), None]);
        let demand = Demand::default();
        assert!(!demand.armed());
        demand.ask();
        assert!(demand.armed());
    }
}
