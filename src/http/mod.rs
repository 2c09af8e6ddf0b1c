//! The HTTP layer (README, "API"): `server` accepts and hands each request to a responder
//! (`responders`), `handlers` route it by the table in `routes` and answer it, reading
//! parameters with `params` and writing `reply`s; `streams` serve live rows, `export` streams
//! history, `page` is the live page, `slots` bound the work running at once.

pub mod export;
pub mod handlers;
pub mod page;
pub mod params;
pub mod reply;
pub mod responders;
pub mod routes;
pub mod runs;
pub mod server;
pub mod slots;
pub mod streams;

use std::sync::Arc;

use crate::buffer::Buffer;
use crate::eval::Evaluator;
use crate::eval::quality::Audit;
use crate::eval::quality::rows::Demand;
use crate::marks::Marks;
use crate::status::Status;
use crate::tables::schema::PerTable;

pub use server::{Http, start};

/// Everything a request may need.
pub struct App {
    pub buffers: PerTable<Arc<Buffer>>,
    pub status: Arc<Status>,
    pub evaluator: Arc<Evaluator>,
    pub streams: streams::Streams,
    /// Places for requests that make Prometheus work (history, energy, resumed streams).
    pub past: Arc<slots::Slots>,
    pub buffer_size: usize,
    /// `MAX_NODE_WATTS`, for the data-quality checks.
    pub max_node_watts: f64,
    /// Whether clients want rows' data problems (shared with the poller).
    pub demand: Arc<Demand>,
    /// The marks of runs this agent stamped.
    pub marks: Arc<Marks>,
}

impl App {
    /// The data-quality audit.
    pub fn audit(&self) -> Audit<'_> {
        Audit {
            evaluator: &self.evaluator,
            max_node_watts: self.max_node_watts,
        }
    }

    /// Rows per cycle of both live tables: sizes the chunks of work over a span.
    pub fn rows_per_step(&self) -> usize {
        self.buffers.iter().map(|(_, b)| b.newest_cycle_len()).sum()
    }
}

/// The one-line reason of a 503 for work beyond `slots::MAX_CONCURRENT`.
pub fn busy_text() -> String {
    format!(
        "too many history, energy or quality requests at once (at most {}); retry later",
        slots::MAX_CONCURRENT
    )
}

#[cfg(test)]
mod tests;
