//! Running a plan's queries: each table's columns in one combined query while that works,
//! else one by one, each answer folded before the next query is sent (docs/design.md,
//! "Cycle", "Faults").

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::fold::{Fold, RowValues};
use super::plan::{Plan, Planned};
use super::steps::Steps;
use crate::prometheus::{QueryError, QuerySource, QueryStats, Statistics};
use crate::tables::identity::COLUMN_LABEL;
use crate::tables::schema::{PerTable, TableKind};

/// What one column's query gave: the number of series, an error, or `None` when disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnOutcome {
    pub table: TableKind,
    pub column: usize,
    pub name: &'static str,
    pub overridden: bool,
    pub outcome: Option<Result<usize, QueryError>>,
    /// What the server reported about this column's query, when it was asked by itself and
    /// the evaluation asked for statistics (`Batching::with_statistics`).
    pub stats: Option<QueryStats>,
}

/// Rows per step above which a table's columns are asked one by one. Combining saves a
/// request per column (about 0.5 ms of Prometheus's CPU each, and the agent's own), but the
/// `or` chain and the tagging `label_replace` cost Prometheus about 17 µs per series: at 200
/// nodes the combined node query cost it 40 % more than the eight columns asked one by one
/// (95 ms against 68 ms of CPU, Prometheus 2.42). The two cost the same at about 25 rows.
pub const COMBINED_ROWS_MAX: usize = 25;

/// Whether each table's columns are asked in one combined query: fewer round trips for the
/// agent and for Prometheus, which dominate for small tables. Not for tables that had more
/// than `COMBINED_ROWS_MAX` rows last time. Switched off for a table, for good, the first
/// time a combined query fails: the columns are then asked one by one, and a failing one
/// empties only itself.
pub struct Batching {
    /// What the evaluations are for, in the log line when a table is switched off.
    purpose: &'static str,
    enabled: PerTable<AtomicBool>,
    last_rows: PerTable<AtomicUsize>,
    /// What the server is asked to report about each query.
    statistics: Statistics,
}

impl Default for Batching {
    fn default() -> Self {
        Batching::combined("")
    }
}

impl Batching {
    /// Each table's columns combined while that works; `purpose` names the evaluations in logs.
    pub fn combined(purpose: &'static str) -> Batching {
        Batching {
            purpose,
            enabled: PerTable::new(|_| AtomicBool::new(true)),
            last_rows: PerTable::new(|_| AtomicUsize::new(0)),
            statistics: Statistics::None,
        }
    }

    /// The same batching, asking the server to report `statistics` about every query.
    pub fn with_statistics(self, statistics: Statistics) -> Batching {
        Batching { statistics, ..self }
    }

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
    pub fn saw(&self, rows: &PerTable<Vec<Vec<RowValues>>>) {
        for (table, steps) in rows.iter() {
            let most = steps.iter().map(Vec::len).max().unwrap_or(0);
            self.last_rows.get(table).store(most, Ordering::Relaxed);
        }
    }

    fn switch_off(&self, table: TableKind, why: &QueryError) {
        if self.enabled.get(table).swap(false, Ordering::Relaxed) {
            let purpose = self.purpose;
            let space = if purpose.is_empty() { "" } else { " " };
            log::info!(
                "asking the{space}{purpose} {} columns one by one from now on: their combined query failed ({why})",
                table.name()
            );
        }
    }
}

/// What the queries of a cycle gave so far, for the failure rules.
#[derive(Default)]
struct Tally {
    columns: Vec<ColumnOutcome>,
    /// Per table, what the server reported about its queries, summed.
    stats: PerTable<Option<QueryStats>>,
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
        stats: Option<QueryStats>,
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
            stats,
        });
        Ok(())
    }

    /// Adds what the server reported about one query of `table`.
    fn add_stats(&mut self, table: TableKind, stats: Option<QueryStats>) {
        if let Some(stats) = stats {
            let sum = self.stats.get_mut(table);
            *sum = Some(sum.map_or(stats, |s| s.plus(stats)));
        }
    }
}

/// What running a plan's queries gave: each column's outcome, and per table what the server
/// reported about its queries (summed; `None` where it reported nothing).
pub struct Ran {
    pub columns: Vec<ColumnOutcome>,
    pub stats: PerTable<Option<QueryStats>>,
}

/// Runs every planned query, folding each answer before the next query is sent: a table's
/// columns in one combined query while `batching` allows, else one by one.
pub fn run_queries(
    source: &dyn QuerySource,
    plan: &Plan,
    steps: Steps,
    fold: &mut Fold,
    batching: &Batching,
) -> Result<Ran, QueryError> {
    let mut tally = Tally::default();
    let statistics = batching.statistics;
    for table in TableKind::ALL {
        let columns: Vec<&Planned> = plan.of_table(table).collect();
        if columns.is_empty() {
            continue;
        }
        let combined = plan.combined.get(table).as_deref();
        if let Some(promql) = combined.filter(|_| batching.enabled(table)) {
            match run_combined(source, promql, &columns, steps, statistics, fold) {
                Ok((counts, stats)) => {
                    tally.add_stats(table, stats);
                    for (planned, count) in columns.iter().zip(counts) {
                        tally.record(planned, count.map(Ok), None)?;
                    }
                    continue;
                }
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => batching.switch_off(table, &e),
            }
        }
        for planned in columns {
            let (outcome, stats) = match run_one(source, planned, steps, statistics, fold) {
                Some(Ok((series, stats))) => (Some(Ok(series)), stats),
                Some(Err(e)) => (Some(Err(e)), None),
                None => (None, None),
            };
            tally.add_stats(table, stats);
            tally.record(planned, outcome, stats)?;
        }
    }
    match tally.first_error {
        Some(e) if !tally.any_success => Err(e),
        _ => Ok(Ran {
            columns: tally.columns,
            stats: tally.stats,
        }),
    }
}

/// One column's query; what it folded is discarded if it fails. `None` when disabled.
fn run_one(
    source: &dyn QuerySource,
    planned: &Planned,
    steps: Steps,
    statistics: Statistics,
    fold: &mut Fold,
) -> Option<Result<(usize, Option<QueryStats>), QueryError>> {
    let promql = planned.promql.as_ref()?;
    let answer = source.query_with_stats(promql, steps.eval(), statistics, &mut |series| {
        fold.add(planned.table, planned.column, series)
    });
    if answer.is_err() {
        fold.discard(planned.table, planned.column);
    }
    Some(answer)
}

/// Runs a combined query; the series count of each column (`None` for a disabled one) and
/// what the server reported. On error, nothing of the table's columns stays folded.
fn run_combined(
    source: &dyn QuerySource,
    promql: &str,
    columns: &[&Planned],
    steps: Steps,
    statistics: Statistics,
    fold: &mut Fold,
) -> Result<(Vec<Option<usize>>, Option<QueryStats>), QueryError> {
    let table = columns[0].table;
    let mut counts: Vec<Option<usize>> = columns
        .iter()
        .map(|p| p.promql.as_ref().map(|_| 0))
        .collect();
    let answer = source.query_with_stats(promql, steps.eval(), statistics, &mut |series| {
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
    match answer {
        Ok((_, stats)) => Ok((counts, stats)),
        Err(e) => {
            for planned in columns {
                fold.discard(table, planned.column);
            }
            Err(e)
        }
    }
}
