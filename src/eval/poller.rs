//! The live schedule: every `UPDATE_INTERVAL`, evaluate the live queries at the latest point
//! of the grid, push the rows into the buffers, record the outcome (docs/design.md, "Time
//! grid").

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use log::{debug, info};

use super::evaluator::{Evaluated, Evaluator, Purpose};
use super::log::FailureLog;
use super::quality::Audit;
use super::quality::rows::{self, Demand};
use crate::buffer::{Buffer, Row};
use crate::prometheus::QueryError;
use crate::status::Status;
use crate::tables::schema::PerTable;
use crate::time::{Grid, Millis, now_ms};

/// A finished live cycle: the rows of both tables, and the evaluation behind them.
#[derive(Debug, Clone)]
pub struct LiveCycle {
    pub rows: PerTable<Vec<Row>>,
    pub evaluated: Evaluated,
}

/// Evaluates the live queries at `observation`; `collection` is when the cycle started.
/// Fails only when Prometheus gave no usable answer at all.
pub fn live_cycle(
    evaluator: &Evaluator,
    purpose: Purpose,
    observation: Millis,
    collection: Millis,
) -> Result<LiveCycle, QueryError> {
    let evaluated = evaluator.live(purpose, observation, collection)?;
    let rows = PerTable::new(|kind| {
        evaluated
            .lines(kind)
            .into_iter()
            .map(|line| Row::new(observation, line.into()))
            .collect()
    });
    Ok(LiveCycle { rows, evaluated })
}

/// What the poller thread needs.
pub struct Poller {
    pub evaluator: Arc<Evaluator>,
    pub grid: Grid,
    pub buffers: PerTable<Arc<Buffer>>,
    pub status: Arc<Status>,
    /// `MAX_NODE_WATTS`, for the rows' data problems.
    pub max_node_watts: f64,
    /// Whether clients want the rows' data problems now.
    pub demand: Arc<Demand>,
}

impl Poller {
    /// Runs cycles on the grid until `shutdown` fires or its sender is dropped. The first
    /// cycle runs at once, evaluated at the latest grid point; a cycle that overruns skips
    /// the grid points it missed instead of bunching cycles.
    pub fn run(self, shutdown: Receiver<()>) {
        let mut failures = FailureLog::default();
        let mut next = self.grid.floor(now_ms());
        loop {
            if !sleep_until(next, &shutdown) {
                return;
            }
            let began = Instant::now();
            match live_cycle(&self.evaluator, Purpose::Live, next, now_ms()) {
                Ok(cycle) => {
                    if self.demand.armed() {
                        self.problems(&cycle, next, &mut failures);
                    }
                    self.record(cycle, began);
                    failures.recovered("cycle");
                }
                Err(e) => {
                    failures.failed("cycle", &format!("{e}; cycle skipped"));
                    self.status.cycle_failed(began.elapsed(), e.to_string());
                }
            }
            let (following, missed) = self.grid.next_tick(next, now_ms());
            if missed > 0 {
                info!("cycle overran the interval; skipping {missed} scheduled cycle(s)");
                self.status.ticks_missed(missed);
            }
            next = following;
        }
    }

    /// The data problems of the cycle's rows, computed with them, and their counts.
    fn problems(&self, cycle: &LiveCycle, at: Millis, failures: &mut FailureLog) {
        let audit = Audit {
            evaluator: &self.evaluator,
            max_node_watts: self.max_node_watts,
        };
        match rows::of_cycle(&audit, &cycle.evaluated.outcome, at) {
            Ok(fields) => {
                failures.recovered("data problems");
                for (kind, fields) in fields.iter() {
                    for (row, field) in cycle.rows.get(kind).iter().zip(fields) {
                        let _ = row.problems.set(field.as_str().into());
                    }
                }
                self.status.data_problems(&fields);
            }
            Err(e) => failures.failed("data problems", &e.to_string()),
        }
    }

    fn record(&self, cycle: LiveCycle, began: Instant) {
        for c in &cycle.evaluated.outcome.columns {
            if let Some(Err(_)) = c.outcome {
                self.status.query_failed(c.table, c.name);
            }
        }
        self.status.server_reported(&cycle.evaluated.outcome.stats);
        let counts = cycle.rows.map(|_, rows| rows.len());
        self.buffers.nodes.push(cycle.rows.nodes);
        self.buffers.pods.push(cycle.rows.pods);
        self.status.cycle_succeeded(began.elapsed(), &counts);
        debug!(
            "cycle: {} node rows, {} pod rows in {:?}",
            counts.nodes,
            counts.pods,
            began.elapsed()
        );
    }
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
