//! Rows for any past span, computed from Prometheus with the live queries (docs/design.md,
//! "History"): for history downloads and for the cycles a resumed stream missed.
//!
//! A span is evaluated with `query_range` in chunks of at most 1,000 steps, fewer when the
//! table has many rows per step, and each chunk is written as live rows are, so a history row
//! equals the live row of the same observation time (except `collection_time`, which is the
//! evaluation time here). Memory stays bounded whatever the span: rows leave as soon as their
//! chunk is written.

use super::evaluator::{Evaluated, Evaluator, Purpose};
use super::quality::{Audit, Finding, rows};
use super::render::{self, Form};
use super::steps::Steps;
use crate::prometheus::QueryError;
use crate::tables::schema::TableKind;
use crate::time::{Millis, Span, Window, now_ms};

/// Most steps asked for in one range query (Prometheus refuses more than 11,000 points).
pub const MAX_CHUNK_STEPS: usize = 1_000;
/// Rows one chunk may hold, whatever the cluster's size.
const CHUNK_ROWS: usize = 5_000;
/// Steps newer than this are asked with instant queries, as live cycles ask: VictoriaMetrics
/// fills the last 30 s of a range answer with older points (docs/engines.md).
const RECENT: Millis = 60_000;

/// The steps of a span, chunk by chunk: ranges of steps old enough for every engine, then
/// each recent step as an instant query, the way a live cycle asks.
#[derive(Debug, Clone, Copy)]
pub struct Chunks {
    span: Span,
    /// Index of the next step to hand out.
    next: i64,
    per_chunk: usize,
}

impl Chunks {
    /// Chunks of `span` for a table of `rows_per_step` rows (at most 5,000 rows a chunk).
    pub fn new(span: Span, rows_per_step: usize) -> Chunks {
        Chunks {
            span,
            next: 0,
            per_chunk: (CHUNK_ROWS / rows_per_step.max(1)).clamp(1, MAX_CHUNK_STEPS),
        }
    }

    /// The steps of the next chunk, as of `now`; `None` when the span is done.
    pub fn next_steps(&mut self, now: Millis) -> Option<Steps> {
        let total = self.span.steps();
        if self.next >= total {
            return None;
        }
        let first = self.span.start + self.next * self.span.step;
        let settled_before = now - RECENT;
        let steps = if first > settled_before {
            Steps::at(first)
        } else {
            let settled = (settled_before - first) / self.span.step + 1;
            let count = (total - self.next).min(self.per_chunk as i64).min(settled);
            Steps::range(first, self.span.step, count as usize)
        };
        self.next += steps.count() as i64;
        Some(steps)
    }
}

/// The rows of one table over a span, chunk by chunk, in time order.
pub struct Export<'a> {
    evaluator: &'a Evaluator,
    kind: TableKind,
    chunks: Chunks,
    /// With `problems=1`: the audit, and the source findings of the whole span.
    problems: Option<(Audit<'a>, Vec<Finding>)>,
}

impl<'a> Export<'a> {
    /// An export of `kind` rows for `span`; `rows_per_step` (the live table's cycle size)
    /// sizes the chunks.
    pub fn new(
        evaluator: &'a Evaluator,
        kind: TableKind,
        span: Span,
        rows_per_step: usize,
    ) -> Export<'a> {
        Export {
            evaluator,
            kind,
            chunks: Chunks::new(span, rows_per_step),
            problems: None,
        }
    }

    /// Rows that end in their data problems: the sources are audited over the whole span
    /// (and the `WINDOW` before it) once, and each row gets the findings of its own window.
    pub fn with_problems(mut self, audit: Audit<'a>, span: Span) -> Result<Self, QueryError> {
        let window = Window {
            start: span.start - self.evaluator.window(),
            end: span.end,
        };
        let sources = audit.of_sources(window, &TableKind::ALL)?;
        self.problems = Some((audit, sources));
        Ok(self)
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The next chunk's rows, evaluated; `None` when the span is done. An error means
    /// Prometheus gave no usable answer: the export cannot go on.
    pub fn next_evaluated(&mut self) -> Option<Result<Evaluated, QueryError>> {
        let steps = self.chunks.next_steps(now_ms())?;
        Some(self.evaluator.history(self.kind, steps))
    }

    /// The CSV lines of the next chunk, `None` when the span is done.
    pub fn next_chunk(&mut self) -> Option<Result<Vec<String>, QueryError>> {
        let kind = self.kind;
        let Some((audit, sources)) = &self.problems else {
            return self
                .next_evaluated()
                .map(|evaluated| evaluated.map(|e| e.lines(kind)));
        };
        // Pods are checked against their nodes: both tables are evaluated.
        let steps = self.chunks.next_steps(now_ms())?;
        let plan = self.evaluator.live_plan_both();
        let evaluated = match self
            .evaluator
            .evaluate(Purpose::History, plan, steps, Form::History)
        {
            Ok(evaluated) => evaluated,
            Err(e) => return Some(Err(e)),
        };
        let times: Vec<Millis> = (0..steps.count()).map(|i| steps.time(i)).collect();
        let fields = rows::fields(audit, &evaluated.outcome, &times, sources);
        let namespace = self.evaluator.namespace();
        let lines = times
            .iter()
            .enumerate()
            .flat_map(|(i, at)| {
                let rows = evaluated.outcome.step(kind, i);
                render::lines_with(
                    kind,
                    rows,
                    Form::History,
                    *at,
                    namespace,
                    Some(&fields.get(kind)[i]),
                )
            })
            .collect();
        Some(Ok(lines))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::prometheus::{Eval, QuerySource, Series};
    use crate::tables::queries::Queries;

    struct Nothing;

    impl QuerySource for Nothing {
        fn query(
            &self,
            _: &str,
            _: Eval,
            _: &mut dyn FnMut(Series<'_>),
        ) -> Result<usize, QueryError> {
            Ok(0)
        }
    }

    fn evaluator() -> Evaluator {
        let queries = Queries::build(
            "exp",
            std::time::Duration::from_secs(60),
            &Default::default(),
        );
        let grid = crate::time::Grid::every(1_000);
        Evaluator::new(Arc::new(Nothing), queries.unwrap(), "exp", grid, 60_000)
    }

    #[test]
    fn chunks_are_bounded_and_recent_steps_are_instant() {
        let evaluator = evaluator();
        let now = 10_000_000;
        let span = Span {
            start: now - 3_000_000,
            end: now,
            step: 1_000,
        };
        // Three rows per step: 1,000 steps per range chunk.
        let mut steps = Chunks::new(span, 3);
        let mut chunks = Vec::new();
        while let Some(next) = steps.next_steps(now) {
            chunks.push(next);
        }
        assert_eq!(chunks.iter().map(Steps::count).sum::<usize>(), 3_001);
        assert!(
            chunks[..2]
                .iter()
                .all(|s| s.count() == 1_000 && matches!(s.eval(), Eval::Range { .. }))
        );
        // The range chunks end one minute before now; every later step is an instant query.
        assert_eq!(
            chunks[2].eval(),
            Eval::Range {
                start: now - 1_000_000,
                end: now - 60_000,
                step: 1_000
            }
        );
        let instants = &chunks[3..];
        assert_eq!(instants.len(), 60);
        assert_eq!(instants[0].eval(), Eval::At(now - 59_000));
        assert_eq!(instants[59].eval(), Eval::At(now));
        // A large table gets smaller chunks.
        assert_eq!(
            Chunks::new(span, 2_000).next_steps(now).map(|s| s.count()),
            Some(2)
        );
        let mut export = Export::new(&evaluator, TableKind::Pods, span, 2_000);
        assert!(matches!(export.next_chunk(), Some(Ok(lines)) if lines.is_empty()));
    }
}
