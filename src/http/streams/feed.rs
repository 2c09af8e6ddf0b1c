//! What a stream sends, in order, whatever its transport: the header, the cycles a resuming
//! client missed (from history), the buffered rows, then every new row (docs/design.md,
//! "Streams").

use std::time::{Duration, Instant};

use log::warn;

use super::Streams;
use crate::buffer::{Ended, Row, RowFilter, Subscription};
use crate::eval::history::Export;
use crate::eval::quality::rows;
use crate::http::App;
use crate::http::slots::Slot;

/// WebSocket ping period; port-forwards drop connections idle for longer than ~30 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How a stream ended, as seen by its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The subscription ended (shutdown, or cut off by the poller as too slow).
    Ended(Ended),
    /// A write got no byte through within the socket's send timeout: the client stopped
    /// reading. Nothing more can be written, not even a close frame.
    Stuck,
    /// The client went away.
    Gone,
    /// Prometheus could not give the cycles a resuming client missed.
    HistoryFailed,
}

/// What a write failure means: a client that stopped reading hits the socket send timeout.
pub fn write_failure(e: &std::io::Error) -> Exit {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Exit::Stuck,
        _ => Exit::Gone,
    }
}

/// Everything a stream sends, in order.
pub struct Feed<'a> {
    /// `None` with `header=0`.
    pub header: Option<&'a str>,
    pub missed: Option<Export<'a>>,
    /// The history place the missed cycles hold; given back once they are sent.
    pub history_slot: Option<Slot>,
    pub subscription: &'a Subscription,
    /// With `problems=1`: where to compute the problems a row does not have yet.
    pub problems: Option<&'a App>,
    pub filter: &'a RowFilter,
    pub streams: &'a Streams,
}

/// A transport's send: a line, or `None` for a keep-alive ping.
pub type Send<'s> = dyn FnMut(Option<&str>) -> Result<(), Exit> + 's;

impl Feed<'_> {
    /// Sends everything through `send` until the subscription or a write ends it.
    pub fn pump(mut self, send: &mut Send<'_>) -> Exit {
        if let Some(header) = self.header
            && let Err(exit) = send(Some(header))
        {
            return exit;
        }
        if let Err(exit) = self.send_missed(send) {
            return exit;
        }
        self.fill(&self.subscription.backlog);
        for row in &self.subscription.backlog {
            if let Err(exit) = self.buffered(send, row) {
                return exit;
            }
        }
        self.live(send)
    }

    /// A buffered row, with its problems when asked.
    fn buffered(&self, send: &mut Send<'_>, row: &Row) -> Result<(), Exit> {
        if self.problems.is_none() {
            return self.row(send, &row.line);
        }
        self.fill(std::slice::from_ref(row));
        self.row(send, &row.with_problems_or("unchecked"))
    }

    /// Computes the problems of rows that have none yet (the poller computes them for every
    /// cycle once asked; rows from before come here). After a failure this client gets them
    /// as `unchecked`.
    fn fill(&self, rows: &[Row]) {
        let Some(app) = self.problems else {
            return;
        };
        if rows.iter().all(|r| r.problems.get().is_some()) {
            return;
        }
        let kind = self.subscription.kind;
        let cycle = |at| app.buffers.map(|_, b| b.cycle_at(at));
        if let Err(e) = rows::fill(&app.audit(), kind, rows, cycle) {
            warn!("data problems of a streamed row: {e}");
        }
    }

    fn row(&self, send: &mut Send<'_>, line: &str) -> Result<(), Exit> {
        send(Some(line))?;
        self.streams.row_sent();
        Ok(())
    }

    /// The cycles a resuming client missed, chunk by chunk.
    fn send_missed(&mut self, send: &mut Send<'_>) -> Result<(), Exit> {
        let Some(mut missed) = self.missed.take() else {
            return Ok(());
        };
        while let Some(chunk) = missed.next_chunk() {
            let lines = chunk.map_err(|e| {
                warn!("resuming a stream: {e}");
                Exit::HistoryFailed
            })?;
            for line in &lines {
                self.row(send, line)?;
            }
        }
        self.history_slot = None;
        Ok(())
    }

    /// Every new row passing the filter, with a ping when idle.
    fn live(&self, send: &mut Send<'_>) -> Exit {
        let mut last_ping = Instant::now();
        loop {
            let wait = PING_INTERVAL.saturating_sub(last_ping.elapsed());
            let result = match self.subscription.next(wait) {
                Ok(row) if self.filter.accepts(&row) => self.buffered(send, &row),
                Ok(_) => Ok(()),
                Err(Ended::Idle) => {
                    last_ping = Instant::now();
                    send(None)
                }
                Err(end) => return Exit::Ended(end),
            };
            if let Err(exit) = result {
                return exit;
            }
        }
    }
}
