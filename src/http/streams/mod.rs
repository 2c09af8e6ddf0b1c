//! Live streams of new rows (README, "Streams"), over WebSocket
//! (`websocket`) or chunked HTTP (`chunked`); what they send, in order, is the `feed`.
//!
//! Each client has its own thread and its own subscription on the buffer, so every client
//! gets every row, in order, exactly once, whatever the others do. A client resuming with a
//! `since` older than the buffer first gets the cycles it missed, computed from Prometheus on
//! the live grid, then the buffer, then live rows: no gap, no duplicate.

mod chunked;
mod deadline;
mod feed;
mod websocket;

pub use deadline::MESSAGE_DEADLINE;
pub use feed::PING_INTERVAL;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use log::{debug, info, warn};
use tiny_http::{Request, Response};

use super::slots::{Slot, Slots};
use super::{App, busy_text};
use crate::buffer::{Buffer, Ended, RowFilter};
use crate::eval::history::Export;
use crate::status::metrics::{Family, Kind};
use crate::tables::schema::{Measure, header_with};
use crate::time::now_ms;
use feed::{Exit, Feed};

/// The stream clients: their `MAX_STREAMS` places and what they were sent.
pub struct Streams {
    pub slots: Arc<Slots>,
    rows_sent: AtomicU64,
    dropped_slow: AtomicU64,
}

impl Streams {
    pub fn new(max: usize) -> Streams {
        Streams {
            slots: Slots::new(max),
            rows_sent: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.slots.held()
    }

    fn row_sent(&self) {
        self.rows_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures of `/agent/metrics`.
    pub fn families(&self) -> Vec<Family> {
        vec![
            Family::one(
                "prometheus_agent_streams_open",
                Kind::Gauge,
                "Stream clients connected now.",
                self.open() as f64,
            ),
            Family::one(
                "prometheus_agent_streams_opened_total",
                Kind::Counter,
                "Stream clients accepted.",
                self.slots.taken_total() as f64,
            ),
            Family::one(
                "prometheus_agent_stream_rows_sent_total",
                Kind::Counter,
                "Rows written to stream clients (header lines excluded).",
                self.rows_sent.load(Ordering::Relaxed) as f64,
            ),
            Family::one(
                "prometheus_agent_stream_clients_dropped_total",
                Kind::Counter,
                "Stream clients disconnected because they could not keep up.",
                self.dropped_slow.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

/// One stream as asked: which buffer, which rows, whether to send the header and the rows'
/// data problems, which transport.
pub struct StreamRequest {
    pub buffer: Arc<Buffer>,
    pub filter: RowFilter,
    pub header: bool,
    pub problems: bool,
    pub websocket: bool,
}

/// Serves a stream on the calling thread until the client leaves, falls behind, or the agent
/// stops. The caller has checked path and parameters and holds `slot`.
pub fn run(app: &App, request: Request, asked: StreamRequest, _slot: Slot) {
    let peer = request
        .remote_addr()
        .map_or_else(|| "?".to_string(), |a| a.to_string());
    let path = request.url().to_string();
    let Some(subscription) = asked.buffer.subscribe(&asked.filter) else {
        let _ = request.respond(Response::from_string("shutting down\n").with_status_code(503));
        return;
    };
    let missed = asked
        .filter
        .since_ms
        .filter(|_| asked.filter.size.is_none())
        .and_then(|since| {
            let grid = app.evaluator.grid();
            grid.missed(since, subscription.oldest_buffered, now_ms())
        });
    // Resuming from history makes Prometheus work: it takes one of the history places.
    let history_slot = match missed {
        Some(_) => match app.past.try_take() {
            Some(slot) => Some(slot),
            None => {
                let body = format!("{}\n", busy_text());
                let _ = request.respond(Response::from_string(body).with_status_code(503));
                return;
            }
        },
        None => None,
    };
    let kind = asked.buffer.kind();
    let rows_per_step = asked.buffer.newest_cycle_len();
    let missed = match missed.map(|span| missed_rows(app, &asked, span, rows_per_step)) {
        Some(Err(e)) => {
            warn!("resuming a stream: {e}");
            let body = format!("cannot compute the missed cycles from Prometheus: {e}\n");
            let _ = request.respond(Response::from_string(body).with_status_code(502));
            return;
        }
        Some(Ok(export)) => Some(export),
        None => None,
    };
    info!(
        "stream {path} opened by {peer} ({}{})",
        if asked.websocket {
            "WebSocket"
        } else {
            "chunked HTTP"
        },
        if missed.is_some() {
            ", resuming from history"
        } else {
            ""
        }
    );
    let header = header_with(kind, Measure::Live, asked.problems);
    let feed = Feed {
        header: asked.header.then_some(header.as_str()),
        problems: asked.problems.then_some(app),
        missed,
        history_slot,
        subscription: &subscription,
        filter: &asked.filter,
        streams: &app.streams,
    };
    let exit = if asked.websocket {
        websocket::serve(request, feed)
    } else {
        chunked::serve(request, feed)
    };
    report(&app.streams, exit, &path, &peer);
}

/// The cycles a resumed stream missed, from history (with their problems when asked).
fn missed_rows<'a>(
    app: &'a App,
    asked: &StreamRequest,
    span: crate::time::Span,
    rows_per_step: usize,
) -> Result<Export<'a>, crate::prometheus::QueryError> {
    let export = Export::new(&app.evaluator, asked.buffer.kind(), span, rows_per_step);
    if asked.problems {
        return export.with_problems(app.audit(), span);
    }
    Ok(export)
}

fn report(streams: &Streams, exit: Exit, path: &str, peer: &str) {
    match exit {
        Exit::Ended(Ended::TooSlow) | Exit::Stuck => {
            streams.dropped_slow.fetch_add(1, Ordering::Relaxed);
            warn!("stream {path} of {peer} disconnected: client too slow to keep up");
        }
        Exit::Ended(_) => debug!("stream {path} of {peer} closed for shutdown"),
        Exit::Gone => info!("stream {path} of {peer} closed by the client"),
        Exit::HistoryFailed => {
            warn!("stream {path} of {peer} closed: the missed cycles could not be fetched")
        }
    }
}
