//! An audit: the checks of `samples`, `estimated` and `values` put together for what is
//! asked: a window (`/quality`, energy rows, `check`), or rows that carry their own problems
//! (`problems=1`: each row's findings over its own `WINDOW`).

use super::values::ValueChecks;
use super::{Finding, estimated, merge, samples};
use crate::eval::history::Chunks;
use crate::eval::{Evaluator, Form, Outcome, Purpose};
use crate::prometheus::QueryError;
use crate::tables::schema::{PerTable, TableKind};
use crate::time::{Grid, Millis, Span, Window, now_ms};

/// Evaluation times a scan of a window's values has at most: a longer window is scanned
/// more coarsely, each step a whole number of live intervals.
const SCAN_STEPS: i64 = 240;

/// What every audit needs.
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    pub evaluator: &'a Evaluator,
    /// `MAX_NODE_WATTS`: no node draws more.
    pub max_node_watts: f64,
}

impl Audit<'_> {
    /// Every finding in `window`, merged, in a stable order. `rows_per_step` (the live
    /// tables' cycle sizes) sizes the scan's chunks.
    pub fn window(&self, window: Window, rows_per_step: usize) -> Result<Vec<Finding>, QueryError> {
        let mut findings = self.of_sources(window, &TableKind::ALL)?;
        let step = self.scan_step(window);
        findings.extend(self.scan(window, step, rows_per_step)?);
        Ok(merge(findings, step))
    }

    /// What the samples and the sources themselves show in `window`: everything but the
    /// checks of the values.
    pub fn of_sources(
        &self,
        window: Window,
        tables: &[TableKind],
    ) -> Result<Vec<Finding>, QueryError> {
        let context = samples::Context {
            evaluator: self.evaluator,
            window,
            max_node_watts: self.max_node_watts,
        };
        let mut findings = samples::check(&context, tables)?;
        findings.extend(
            estimated::check(self.evaluator, window)?
                .into_iter()
                .filter(|f| tables.contains(&f.table)),
        );
        Ok(findings)
    }

    /// The findings of rows evaluated at the steps of `outcome`: each row's own values, and
    /// the source findings that touch its `WINDOW` (`sources` covers every row's window).
    pub fn rows(
        &self,
        outcome: &Outcome,
        times: &[Millis],
        sources: &[Finding],
    ) -> PerTable<Vec<Vec<Vec<Finding>>>> {
        let row_window = self.evaluator.window();
        PerTable::new(|kind| {
            times
                .iter()
                .enumerate()
                .map(|(step, at)| {
                    let mut checks = ValueChecks::new(self.max_node_watts);
                    checks.step(outcome, step, *at);
                    let own = checks.finish();
                    outcome
                        .step(kind, step)
                        .iter()
                        .map(|row| {
                            let of_row = |f: &&Finding| f.table == kind && f.row() == row.name;
                            let mut found: Vec<Finding> =
                                own.iter().filter(of_row).cloned().collect();
                            found.extend(
                                sources
                                    .iter()
                                    .filter(of_row)
                                    .filter(|f| f.concerns(*at, row_window))
                                    .cloned(),
                            );
                            found
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// The step of a window's scan: the live interval, or a multiple of it for long windows.
    fn scan_step(&self, window: Window) -> Millis {
        let interval = self.evaluator.grid().interval();
        let span = (window.end - window.start).max(0);
        let multiple = (span / interval / SCAN_STEPS).max(1);
        interval * multiple
    }

    /// The values of both tables at every scan step of `window`, checked.
    fn scan(
        &self,
        window: Window,
        step: Millis,
        rows_per_step: usize,
    ) -> Result<Vec<Finding>, QueryError> {
        let grid = Grid::every(step);
        let span = Span {
            start: grid.ceil(window.start),
            end: window.end,
            step,
        };
        let mut chunks = Chunks::new(span, rows_per_step);
        let mut checks = ValueChecks::new(self.max_node_watts);
        let plan = self.evaluator.live_plan_both();
        while let Some(steps) = chunks.next_steps(now_ms()) {
            let evaluated =
                self.evaluator
                    .evaluate(Purpose::Quality, plan, steps, Form::History)?;
            for i in 0..steps.count() {
                checks.step(&evaluated.outcome, i, steps.time(i));
            }
        }
        Ok(checks.finish())
    }
}
