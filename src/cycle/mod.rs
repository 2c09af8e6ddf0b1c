//! One cycle as pure steps: run the queries, map node addresses, fold series into rows,
//! render. The same steps serve a live cycle (instant queries at one time), a history chunk
//! (range queries over up to 1,000 steps) and an energy window (instant queries over a
//! span); only the `QuerySource` talks to the network.
//!
//! Failure rules (docs/design.md, "Faults"): a column whose query fails is left empty; an
//! unreachable Prometheus, a second timeout in one cycle, or every query failing fails the
//! whole cycle.

pub mod fold;
pub mod render;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::format::Millis;
use crate::identity::{self, NodeNames};
use crate::prometheus::{Eval, QueryError, QuerySource};
use crate::queries::{ColumnQuery, Queries, energy_promql};
use crate::schema::{Measure, PerTable, TableKind};

pub use fold::{Duplicate, Fold, RowValues};

/// The evaluation times of a cycle (one) or a history chunk (`first + k·step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    first: Millis,
    step: Millis,
    count: usize,
    range: bool,
}

impl Steps {
    /// One instant query at `t`.
    pub fn at(t: Millis) -> Steps {
        Steps {
            first: t,
            step: 1,
            count: 1,
            range: false,
        }
    }

    /// `count` range steps from `first`, `step` apart (`step` > 0, `count` ≥ 1).
    pub fn range(first: Millis, step: Millis, count: usize) -> Steps {
        Steps {
            first,
            step: step.max(1),
            count: count.max(1),
            range: true,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The evaluation time of step `i`.
    pub fn time(&self, i: usize) -> Millis {
        self.first + self.step * i as Millis
    }

    pub fn last(&self) -> Millis {
        self.time(self.count - 1)
    }

    /// How Prometheus is asked.
    pub fn eval(&self) -> Eval {
        if self.range {
            Eval::Range {
                start: self.first,
                end: self.last(),
                step: self.step,
            }
        } else {
            Eval::At(self.first)
        }
    }

    /// The step a point at `t` belongs to: any point of an instant query, and only points
    /// exactly on a step of a range query.
    pub fn index(&self, t: Millis) -> Option<usize> {
        if !self.range {
            return Some(0);
        }
        let offset = t - self.first;
        let i = offset / self.step;
        (offset >= 0 && offset % self.step == 0 && (i as usize) < self.count).then_some(i as usize)
    }
}

/// A query to run for one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub table: TableKind,
    /// Position among the table's value columns.
    pub column: usize,
    pub name: &'static str,
    /// `None`: disabled, the column stays empty.
    pub promql: Option<String>,
    pub overridden: bool,
}

/// The queries of a cycle: each column's, and each table's columns combined into one, built
/// once for every cycle that runs them.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub columns: Vec<Planned>,
    /// `None` for a table with fewer than two enabled columns or a combined query too long.
    combined: PerTable<Option<String>>,
}

impl Plan {
    pub fn new(columns: Vec<Planned>) -> Plan {
        let combined = PerTable::new(|table| {
            let of_table: Vec<&Planned> = columns.iter().filter(|p| p.table == table).collect();
            combined_query(&of_table)
        });
        Plan { columns, combined }
    }
}

/// The queries of `tables` for `measure`; energy queries are filled in for a span of
/// `span_ms`.
pub fn plan(queries: &Queries, tables: &[TableKind], measure: Measure, span_ms: Millis) -> Plan {
    let planned = |table: TableKind, (column, q): (usize, &ColumnQuery)| Planned {
        table,
        column,
        name: q.column,
        promql: q.promql.as_ref().map(|text| match measure {
            Measure::Live => text.clone(),
            Measure::Energy => energy_promql(text, span_ms),
        }),
        overridden: q.overridden,
    };
    Plan::new(
        tables
            .iter()
            .flat_map(|table| {
                queries
                    .table(*table, measure)
                    .iter()
                    .enumerate()
                    .map(move |entry| planned(*table, entry))
            })
            .collect(),
    )
}

/// What one column's query gave: the number of series, an error, or `None` when disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnOutcome {
    pub table: TableKind,
    pub column: usize,
    pub name: &'static str,
    pub overridden: bool,
    pub outcome: Option<Result<usize, QueryError>>,
}

/// The result of evaluating a plan.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per table, per step: the rows, sorted by name.
    pub rows: PerTable<Vec<Vec<RowValues>>>,
    pub columns: Vec<ColumnOutcome>,
    /// Node addresses that no mapping series names; they stay as IPs.
    pub unmapped: Vec<String>,
    pub duplicates: Vec<Duplicate>,
    /// Failed mapping queries (addresses stay as they are for now).
    pub mapping_errors: Vec<QueryError>,
}

impl Outcome {
    /// The rows of step `step` of `table` that got a value from `column`.
    pub fn rows_with(&self, table: TableKind, column: usize, step: usize) -> Vec<String> {
        self.rows
            .get(table)
            .get(step)
            .map(|rows| {
                rows.iter()
                    .filter(|row| row.values.get(column).is_some_and(Option::is_some))
                    .map(|row| row.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs `plan` at `steps` through `source` and folds the answers into rows.
/// Fails only when Prometheus gave no usable answer at all.
pub fn evaluate(
    source: &dyn QuerySource,
    names: &Mutex<NodeNames>,
    plan: &Plan,
    steps: Steps,
    namespace: &str,
    batching: &Batching,
) -> Result<Outcome, QueryError> {
    let widths = PerTable::new(|table| plan.columns.iter().filter(|p| p.table == table).count());
    let mut fold = Fold::new(steps, namespace, widths);
    let columns = run_queries(source, plan, steps, &mut fold, batching)?;
    let mapping_errors = map_addresses(source, names, &fold, steps.last());
    let names = names.lock().unwrap_or_else(|p| p.into_inner());
    let unmapped: BTreeSet<String> = fold
        .node_labels()
        .filter(|label| names.is_unmapped_address(label))
        .map(str::to_string)
        .collect();
    let (rows, duplicates) = fold.finish(&names);
    batching.saw(&rows);
    Ok(Outcome {
        rows,
        columns,
        unmapped: unmapped.into_iter().collect(),
        duplicates,
        mapping_errors,
    })
}

/// Label that tags each series of a combined query with its column.
pub const COLUMN_LABEL: &str = "prometheus_agent_column";
/// Longest combined query sent; longer ones go column by column.
const COMBINED_MAX: usize = 8 * 1024;

/// Rows per step above which a table's columns are asked one by one: the round trips saved
/// then matter less to Prometheus than matching every series through `or`.
const COMBINED_ROWS_MAX: usize = 1_000;

/// Whether each table's columns are asked in one combined query: fewer round trips for the
/// agent and for Prometheus, which dominate for small tables. Not for tables that had more
/// than `COMBINED_ROWS_MAX` rows last time. Switched off for a table, for good, the first
/// time a combined query fails: the columns are then asked one by one, and a failing one
/// empties only itself.
pub struct Batching {
    enabled: PerTable<AtomicBool>,
    last_rows: PerTable<AtomicUsize>,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            enabled: PerTable::new(|_| AtomicBool::new(true)),
            last_rows: PerTable::new(|_| AtomicUsize::new(0)),
        }
    }
}

impl Batching {
    /// Every column asked by itself.
    pub fn one_by_one() -> Batching {
        let batching = Batching::default();
        for table in TableKind::ALL {
            batching.enabled.get(table).store(false, Ordering::Relaxed);
        }
        batching
    }

    fn enabled(&self, table: TableKind) -> bool {
        self.enabled.get(table).load(Ordering::Relaxed)
            && self.last_rows.get(table).load(Ordering::Relaxed) <= COMBINED_ROWS_MAX
    }

    /// Remembers how many rows a step of each table had.
    fn saw(&self, rows: &PerTable<Vec<Vec<RowValues>>>) {
        for (table, steps) in rows.iter() {
            let most = steps.iter().map(Vec::len).max().unwrap_or(0);
            self.last_rows.get(table).store(most, Ordering::Relaxed);
        }
    }

    fn switch_off(&self, table: TableKind, why: &QueryError) {
        if self.enabled.get(table).swap(false, Ordering::Relaxed) {
            log::info!(
                "asking the {} columns one by one from now on: their combined query failed ({why})",
                table.name()
            );
        }
    }
}

/// What the queries of a cycle gave so far, for the failure rules.
#[derive(Default)]
struct Tally {
    columns: Vec<ColumnOutcome>,
    first_error: Option<QueryError>,
    any_success: bool,
    timeouts: usize,
}

impl Tally {
    /// Records one column's outcome; an error here fails the whole cycle.
    fn record(
        &mut self,
        planned: &Planned,
        outcome: Option<Result<usize, QueryError>>,
    ) -> Result<(), QueryError> {
        match &outcome {
            Some(Err(e)) if e.is_unreachable() => return Err(e.clone()),
            // One heavy query only empties its column; a second timeout means Prometheus is
            // overloaded, and waiting for every query would only add to its load.
            Some(Err(e)) if e.is_timeout() && self.timeouts > 0 => return Err(e.clone()),
            Some(Err(e)) => {
                self.timeouts += usize::from(e.is_timeout());
                self.first_error.get_or_insert_with(|| e.clone());
            }
            Some(Ok(_)) => self.any_success = true,
            None => {}
        }
        self.columns.push(ColumnOutcome {
            table: planned.table,
            column: planned.column,
            name: planned.name,
            overridden: planned.overridden,
            outcome,
        });
        Ok(())
    }
}

/// Runs every planned query, folding each answer before the next query is sent: a table's
/// columns in one combined query while `batching` allows, else one by one.
pub fn run_queries(
    source: &dyn QuerySource,
    plan: &Plan,
    steps: Steps,
    fold: &mut Fold,
    batching: &Batching,
) -> Result<Vec<ColumnOutcome>, QueryError> {
    let mut tally = Tally::default();
    for table in TableKind::ALL {
        let columns: Vec<&Planned> = plan.columns.iter().filter(|p| p.table == table).collect();
        if columns.is_empty() {
            continue;
        }
        let combined = plan.combined.get(table).as_deref();
        if let Some(promql) = combined.filter(|_| batching.enabled(table)) {
            match run_combined(source, promql, &columns, steps, fold) {
                Ok(counts) => {
                    for (planned, count) in columns.iter().zip(counts) {
                        tally.record(planned, count.map(Ok))?;
                    }
                    continue;
                }
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => batching.switch_off(table, &e),
            }
        }
        for planned in columns {
            let outcome = run_one(source, planned, steps, fold);
            tally.record(planned, outcome)?;
        }
    }
    match tally.first_error {
        Some(e) if !tally.any_success => Err(e),
        _ => Ok(tally.columns),
    }
}

/// One column's query; what it folded is discarded if it fails. `None` when disabled.
fn run_one(
    source: &dyn QuerySource,
    planned: &Planned,
    steps: Steps,
    fold: &mut Fold,
) -> Option<Result<usize, QueryError>> {
    let promql = planned.promql.as_ref()?;
    let answer = source.query(promql, steps.eval(), &mut |series| {
        fold.add(planned.table, planned.column, series)
    });
    if answer.is_err() {
        fold.discard(planned.table, planned.column);
    }
    Some(answer)
}

/// The columns' queries as one, each series tagged with its column; `None` when fewer than
/// two columns are enabled or the result would be too long.
fn combined_query(columns: &[&Planned]) -> Option<String> {
    let parts: Vec<String> = columns
        .iter()
        .filter_map(|p| {
            let promql = p.promql.as_ref()?;
            Some(format!(
                r#"label_replace(({promql}), "{COLUMN_LABEL}", "{}", "", "")"#,
                p.column
            ))
        })
        .collect();
    let promql = parts.join(" or ");
    (parts.len() >= 2 && promql.len() <= COMBINED_MAX).then_some(promql)
}

/// Runs a combined query; the series count of each column (`None` for a disabled one). On
/// error, nothing of the table's columns stays folded.
fn run_combined(
    source: &dyn QuerySource,
    promql: &str,
    columns: &[&Planned],
    steps: Steps,
    fold: &mut Fold,
) -> Result<Vec<Option<usize>>, QueryError> {
    let table = columns[0].table;
    let mut counts: Vec<Option<usize>> = columns
        .iter()
        .map(|p| p.promql.as_ref().map(|_| 0))
        .collect();
    let answer = source.query(promql, steps.eval(), &mut |series| {
        let column = series
            .labels
            .get(COLUMN_LABEL)
            .and_then(|c| c.parse::<usize>().ok());
        let at = column.and_then(|c| columns.iter().position(|p| p.column == c));
        if let (Some(column), Some(count)) = (column, at.and_then(|i| counts[i].as_mut())) {
            *count += 1;
            fold.add(table, column, series);
        }
    });
    if let Err(e) = answer {
        for planned in columns {
            fold.discard(table, planned.column);
        }
        return Err(e);
    }
    Ok(counts)
}

/// Asks for the node names of addresses seen for the first time, at time `at`, and caches
/// them. The lock is not held while Prometheus answers.
pub fn map_addresses(
    source: &dyn QuerySource,
    names: &Mutex<NodeNames>,
    fold: &Fold,
    at: Millis,
) -> Vec<QueryError> {
    let unknown: Vec<IpAddr> = {
        let names = names.lock().unwrap_or_else(|p| p.into_inner());
        names.unknown(fold.node_labels(), Instant::now())
    };
    let mut errors = Vec::new();
    for batch in unknown.chunks(identity::LOOKUP_BATCH) {
        let mut found = Vec::new();
        let mut failed = false;
        for query in identity::mapping_queries(batch) {
            let answer = source.query(&query, Eval::At(at), &mut |series| {
                found.extend(identity::mapping_from(series.labels))
            });
            if let Err(e) = answer {
                failed = true;
                errors.push(e);
            }
        }
        // After a failed lookup the addresses are asked for again next time.
        let asked = if failed { &[][..] } else { batch };
        let mut names = names.lock().unwrap_or_else(|p| p.into_inner());
        names.learn(asked, found, Instant::now());
    }
    errors
}

#[cfg(test)]
mod tests;
