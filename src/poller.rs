//! The live cycle and its schedule: every `UPDATE_INTERVAL`, evaluate the live queries at
//! the latest point of the epoch grid, push the rows into the tables, record the outcome.
//!
//! Observation times are multiples of `UPDATE_INTERVAL` since the Unix epoch, so captures
//! from a restarted agent, from agents in two namespaces, and history all line up row for
//! row (docs/design.md, "Time grid").

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::cycle::{self, Batching, Outcome, Plan, Steps, render};
use crate::format::{Millis, now_ms};
use crate::identity::NodeNames;
use crate::prometheus::{QueryError, QuerySource};
use crate::queries::Queries;
use crate::schema::{Measure, PerTable, TableKind};
use crate::status::Status;
use crate::table::{Row, Table};

/// A finished live cycle: the rows of both tables and how each column fared.
#[derive(Debug, Clone)]
pub struct CycleRows {
    pub rows: PerTable<Vec<Row>>,
    pub outcome: Outcome,
}

/// Runs live cycles against one query source and logs what goes wrong, once.
pub struct Poller {
    source: Arc<dyn QuerySource + Send + Sync>,
    names: Arc<Mutex<NodeNames>>,
    namespace: String,
    plan: Plan,
    batching: Batching,
    warned_duplicates: HashSet<(TableKind, usize, String)>,
    failures: FailureLog,
}

/// Duplicate-series warnings remembered; beyond this they are not repeated.
const DUPLICATE_WARNINGS: usize = 10_000;

impl Poller {
    pub fn new(
        source: Arc<dyn QuerySource + Send + Sync>,
        names: Arc<Mutex<NodeNames>>,
        queries: &Queries,
        namespace: &str,
    ) -> Poller {
        Poller {
            source,
            names,
            namespace: namespace.to_string(),
            plan: cycle::plan(queries, &TableKind::ALL, Measure::Live, 0),
            batching: Batching::default(),
            warned_duplicates: HashSet::new(),
            failures: FailureLog::default(),
        }
    }

    /// The source the poller queries, for diagnostics that ask more (`check`).
    pub fn source(&self) -> &dyn QuerySource {
        &*self.source
    }

    /// Evaluates every live query at `observation`; `collection` is when the cycle started.
    /// Fails only when Prometheus gave no usable answer at all.
    pub fn cycle(
        &mut self,
        observation: Millis,
        collection: Millis,
    ) -> Result<CycleRows, QueryError> {
        let outcome = cycle::evaluate(
            &*self.source,
            &self.names,
            &self.plan,
            Steps::at(observation),
            &self.namespace,
            &self.batching,
        )?;
        self.log_outcome(&outcome);
        let stamp = render::Stamp {
            collection,
            observation,
        };
        let rows = outcome.rows.map(|kind, steps| {
            let rows = steps.first().map(Vec::as_slice).unwrap_or_default();
            render::measurement_lines(kind, rows, stamp, &self.namespace)
                .into_iter()
                .map(|line| Row {
                    observation_ms: observation,
                    line: line.into(),
                })
                .collect()
        });
        Ok(CycleRows { rows, outcome })
    }

    fn log_outcome(&mut self, outcome: &Outcome) {
        for c in &outcome.columns {
            let what = format!("{}.{} query (column left empty)", c.table.name(), c.name);
            match &c.outcome {
                Some(Err(e)) => self.failures.failed(&what, &e.to_string()),
                _ => self.failures.recovered(&what),
            }
        }
        match outcome.mapping_errors.first() {
            Some(e) => self.failures.failed("node address mapping", &e.to_string()),
            None => self.failures.recovered("node address mapping"),
        }
        for d in &outcome.duplicates {
            let key = (d.table, d.column, d.row.clone());
            if self.warned_duplicates.len() < DUPLICATE_WARNINGS
                && self.warned_duplicates.insert(key)
            {
                let column = self.column_name(d.table, d.column);
                warn!(
                    "{}.{column}: several series resolve to {:?}; keeping the first{}",
                    d.table.name(),
                    d.row,
                    d.ignored
                        .as_ref()
                        .map(|l| format!(", ignoring {l}"))
                        .unwrap_or_default()
                );
            }
        }
    }

    fn column_name(&self, table: TableKind, column: usize) -> &'static str {
        self.plan
            .columns
            .iter()
            .find(|p| p.table == table && p.column == column)
            .map_or("?", |p| p.name)
    }
}

/// Logs a persisting failure once (again when its text changes) and its recovery, so a
/// broken column does not write the same warning every cycle.
#[derive(Default)]
struct FailureLog {
    last: HashMap<String, String>,
}

impl FailureLog {
    fn failed(&mut self, what: &str, error: &str) {
        if self.last.get(what).map(String::as_str) == Some(error) {
            debug!("{what} failed again: {error}");
        } else {
            warn!("{what} failed: {error}");
            self.last.insert(what.to_string(), error.to_string());
        }
    }

    fn recovered(&mut self, what: &str) {
        if self.last.remove(what).is_some() {
            info!("{what} works again");
        }
    }
}

/// The latest grid point at or before `t`.
pub fn grid_floor(t: Millis, interval: Millis) -> Millis {
    t.div_euclid(interval) * interval
}

/// Runs cycles on the epoch grid until `shutdown` fires or its sender is dropped. The first
/// cycle runs at once, evaluated at the latest grid point; a cycle that overruns skips the
/// grid points it missed instead of bunching cycles.
pub fn run(
    mut poller: Poller,
    interval: Duration,
    tables: PerTable<Arc<Table>>,
    status: Arc<Status>,
    shutdown: Receiver<()>,
) {
    let interval = (interval.as_millis() as Millis).max(1);
    let mut next = grid_floor(now_ms(), interval);
    loop {
        if !sleep_until(next, &shutdown) {
            return;
        }
        let began = Instant::now();
        match poller.cycle(next, now_ms()) {
            Ok(cycle) => {
                record(cycle, &tables, &status, began);
                poller.failures.recovered("cycle");
            }
            Err(e) => {
                poller
                    .failures
                    .failed("cycle", &format!("{e}; cycle skipped"));
                status.cycle_failed(began.elapsed(), e.to_string());
            }
        }
        let (following, missed) = next_tick(next, interval, now_ms());
        if missed > 0 {
            info!("cycle overran the interval; skipping {missed} scheduled cycle(s)");
            status.ticks_missed(missed);
        }
        next = following;
    }
}

/// The grid point after `current` that is still ahead of `now`, and how many were skipped.
pub fn next_tick(current: Millis, interval: Millis, now: Millis) -> (Millis, u64) {
    let following = current + interval;
    if following > now {
        return (following, 0);
    }
    let upcoming = grid_floor(now, interval) + interval;
    (upcoming, ((upcoming - following) / interval) as u64)
}

/// Waits until the wall clock reaches `t`; false when shutdown was asked for.
fn sleep_until(t: Millis, shutdown: &Receiver<()>) -> bool {
    loop {
        let wait = t - now_ms();
        if wait <= 0 {
            return true;
        }
        match shutdown.recv_timeout(Duration::from_millis(wait as u64)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

fn record(cycle: CycleRows, tables: &PerTable<Arc<Table>>, status: &Status, began: Instant) {
    for c in &cycle.outcome.columns {
        if let Some(Err(_)) = c.outcome {
            status.query_failed(c.table, c.name);
        }
    }
    let counts = cycle.rows.map(|_, rows| rows.len());
    tables.nodes.push(cycle.rows.nodes);
    tables.pods.push(cycle.rows.pods);
    status.cycle_succeeded(began.elapsed(), &counts);
    debug!(
        "cycle: {} node rows, {} pod rows in {:?}",
        counts.nodes,
        counts.pods,
        began.elapsed()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_ticks() {
        assert_eq!(grid_floor(1_700_000_012_345, 15_000), 1_700_000_010_000);
        assert_eq!(grid_floor(30_000, 15_000), 30_000);
        // On time: the next grid point.
        assert_eq!(next_tick(30_000, 15_000, 31_000), (45_000, 0));
        // Overran past two grid points: skip them.
        assert_eq!(next_tick(30_000, 15_000, 61_000), (75_000, 2));
        assert_eq!(next_tick(30_000, 15_000, 45_000), (60_000, 1));
    }
}
