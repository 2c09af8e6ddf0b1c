//! Rows for any past span, computed from Prometheus with the live queries (history), and
//! the cycles a resumed stream missed.
//!
//! A span is evaluated with `query_range` in chunks of at most 1,000 steps, fewer when the
//! table has many rows per step, and each chunk goes through the same fold and render as a
//! live cycle, so a history row equals the live row of the same observation time (except
//! `collection_time`, which is the evaluation time here). Memory stays bounded whatever the
//! span: rows leave as soon as their chunk is rendered.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use log::warn;

use crate::cycle::{self, Batching, Plan, Steps, render};
use crate::format::{Millis, now_ms};
use crate::identity::NodeNames;
use crate::params::Span;
use crate::prometheus::{QueryError, QuerySource};
use crate::queries::Queries;
use crate::schema::{Measure, PerTable, TableKind, header};

/// Most steps asked for in one range query (Prometheus refuses more than 11,000 points).
pub const MAX_CHUNK_STEPS: usize = 1_000;
/// Rows one chunk may hold, whatever the cluster's size.
const CHUNK_ROWS: usize = 5_000;
/// Steps newer than this are asked with instant queries: VictoriaMetrics fills the last 30 s
/// of a range answer with older points (docs/engines.md).
const RECENT: Millis = 60_000;
/// History and energy requests served at once; more get 503.
pub const MAX_CONCURRENT: usize = 2;

/// What history and energy requests share: the query source, the node-name cache, the
/// queries, and the count of requests in flight.
pub struct Past {
    pub source: Arc<dyn QuerySource + Send + Sync>,
    pub names: Arc<Mutex<NodeNames>>,
    pub namespace: String,
    live: PerTable<Plan>,
    pub queries: Arc<Queries>,
    busy: AtomicUsize,
    history_batching: Batching,
    pub energy_batching: Batching,
}

/// One of the `MAX_CONCURRENT` places, held until dropped.
pub struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Past {
    pub fn new(
        source: Arc<dyn QuerySource + Send + Sync>,
        names: Arc<Mutex<NodeNames>>,
        queries: Arc<Queries>,
        namespace: &str,
    ) -> Past {
        Past {
            source,
            names,
            namespace: namespace.to_string(),
            live: PerTable::new(|kind| cycle::plan(&queries, &[kind], Measure::Live, 0)),
            queries,
            busy: AtomicUsize::new(0),
            // Over up to 1,000 steps per query the round trips hardly count, while `or` makes
            // Prometheus match every series of every step: ask column by column.
            history_batching: Batching::one_by_one(),
            energy_batching: Batching::default(),
        }
    }

    /// A place for one request, or `None` when `MAX_CONCURRENT` are running.
    pub fn try_slot(&self) -> Option<Slot<'_>> {
        self.busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_CONCURRENT).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(&self.busy))
    }

    /// An export of `kind` rows for `span`; `rows_per_step` (the live table's cycle size)
    /// sizes the chunks.
    pub fn export(&self, kind: TableKind, span: Span, rows_per_step: usize) -> Export<'_> {
        let per_chunk = (CHUNK_ROWS / rows_per_step.max(1)).clamp(1, MAX_CHUNK_STEPS);
        Export {
            past: self,
            kind,
            span,
            next: 0,
            per_chunk,
            warned: Vec::new(),
        }
    }
}

/// The rows of one table over a span, chunk by chunk, in time order.
pub struct Export<'a> {
    past: &'a Past,
    kind: TableKind,
    span: Span,
    /// Index of the next step to evaluate.
    next: i64,
    per_chunk: usize,
    /// Columns already reported as failing in this export.
    warned: Vec<usize>,
}

impl Export<'_> {
    /// The CSV lines of the next chunk, `None` when the span is done. An error means
    /// Prometheus gave no usable answer: the export cannot go on.
    pub fn next_chunk(&mut self) -> Option<Result<Vec<String>, QueryError>> {
        let steps = self.next_steps(now_ms())?;
        self.next += steps.count() as i64;
        Some(self.chunk(steps))
    }

    /// The steps of the next chunk: a range of steps old enough for every engine, or one
    /// recent step as an instant query, the way a live cycle asks.
    fn next_steps(&self, now: Millis) -> Option<Steps> {
        let total = self.span.steps();
        if self.next >= total {
            return None;
        }
        let first = self.span.start + self.next * self.span.step;
        let settled_before = now - RECENT;
        if first > settled_before {
            return Some(Steps::at(first));
        }
        let settled = (settled_before - first) / self.span.step + 1;
        let count = (total - self.next).min(self.per_chunk as i64).min(settled);
        Some(Steps::range(first, self.span.step, count as usize))
    }

    fn chunk(&mut self, steps: Steps) -> Result<Vec<String>, QueryError> {
        let past = self.past;
        let plan = past.live.get(self.kind);
        let outcome = cycle::evaluate(
            &*past.source,
            &past.names,
            plan,
            steps,
            &past.namespace,
            &past.history_batching,
        )?;
        for c in &outcome.columns {
            if let Some(Err(e)) = &c.outcome
                && !self.warned.contains(&c.column)
            {
                self.warned.push(c.column);
                warn!(
                    "history {}.{} query failed (column left empty): {e}",
                    self.kind.name(),
                    c.name
                );
            }
        }
        let mut lines = Vec::new();
        for (i, rows) in outcome.rows.get(self.kind).iter().enumerate() {
            let t = steps.time(i);
            let stamp = render::Stamp {
                collection: t,
                observation: t,
            };
            lines.extend(render::measurement_lines(
                self.kind,
                rows,
                stamp,
                &past.namespace,
            ));
        }
        Ok(lines)
    }
}

/// A history export as a byte stream: the CSV header, then each chunk as it is answered.
/// A failure after the first chunk is a read error, so the HTTP response ends without its
/// final chunk and the client sees an incomplete transfer rather than a short file.
pub struct ExportReader<'a> {
    export: Export<'a>,
    buffer: Vec<u8>,
    at: usize,
    /// Keeps the export's place among the concurrent requests.
    _slot: Option<Slot<'a>>,
}

impl<'a> ExportReader<'a> {
    /// Starts with the header and the first chunk already in hand, so that a Prometheus that
    /// cannot answer at all is reported as an error status before anything is sent.
    pub fn start(mut export: Export<'a>, slot: Option<Slot<'a>>) -> Result<Self, QueryError> {
        let mut buffer = header(export.kind, Measure::Live).into_bytes();
        if let Some(first) = export.next_chunk() {
            for line in first? {
                buffer.extend_from_slice(line.as_bytes());
            }
        }
        Ok(ExportReader {
            export,
            buffer,
            at: 0,
            _slot: slot,
        })
    }
}

impl Read for ExportReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buffer.len() {
            self.buffer.clear();
            self.at = 0;
            match self.export.next_chunk() {
                None => return Ok(0),
                Some(Ok(lines)) => {
                    for line in lines {
                        self.buffer.extend_from_slice(line.as_bytes());
                    }
                }
                Some(Err(e)) => {
                    warn!(
                        "history export of {} ended early: {e}",
                        self.export.kind.name()
                    );
                    return Err(std::io::Error::other(e.to_string()));
                }
            }
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The grid points a resumed stream missed: those after `since` and before the oldest
/// buffered cycle (or `now` when the buffer is empty), on the live schedule's grid.
pub fn missed_span(
    since: Millis,
    oldest_buffered: Option<Millis>,
    interval: Millis,
    now: Millis,
) -> Option<Span> {
    let start = (since.div_euclid(interval) + 1) * interval;
    let end = match oldest_buffered {
        Some(oldest) => oldest - interval,
        None => now.div_euclid(interval) * interval - interval,
    };
    (end >= start).then_some(Span {
        start,
        end,
        step: interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{Eval, Series};

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

    fn past() -> Past {
        let queries = Queries::build(
            "exp",
            std::time::Duration::from_secs(60),
            &Default::default(),
        );
        Past::new(
            Arc::new(Nothing),
            Arc::new(Mutex::new(NodeNames::new())),
            Arc::new(queries.unwrap()),
            "exp",
        )
    }

    #[test]
    fn chunks_are_bounded_and_recent_steps_are_instant() {
        let past = past();
        let now = 10_000_000;
        let span = Span {
            start: now - 3_000_000,
            end: now,
            step: 1_000,
        };
        // Three rows per step: 1,000 steps per range chunk.
        let mut export = past.export(TableKind::Nodes, span, 3);
        let mut chunks = Vec::new();
        while let Some(steps) = export.next_steps(now) {
            export.next += steps.count() as i64;
            chunks.push(steps);
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
        let export = past.export(TableKind::Pods, span, 2_000);
        assert_eq!(export.next_steps(now).map(|s| s.count()), Some(2));
    }

    #[test]
    fn missed_cycles_lie_between_since_and_the_buffer() {
        // Last received cycle observed at 30 s, collected at 30.2 s; the buffer starts at 90 s.
        assert_eq!(
            missed_span(30_200, Some(90_000), 15_000, 100_000),
            Some(Span {
                start: 45_000,
                end: 75_000,
                step: 15_000
            })
        );
        // Nothing missed: the next cycle is in the buffer.
        assert_eq!(missed_span(30_200, Some(45_000), 15_000, 100_000), None);
        // Empty buffer: up to the grid point before the latest (its cycle is still to come).
        assert_eq!(
            missed_span(30_200, None, 15_000, 61_000),
            Some(Span {
                start: 45_000,
                end: 45_000,
                step: 15_000
            })
        );
    }
}
