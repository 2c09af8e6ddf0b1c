//! Live streams of new rows (README, "Streams"): WebSocket and chunked HTTP.
//!
//! Each client has its own thread and its own subscription on the table, so every client
//! gets every row, in order, exactly once, whatever the others do. A client resuming with a
//! `since` older than the buffer first gets the cycles it missed, computed from Prometheus on
//! the live schedule's grid, then the buffer, then live rows: no gap, no duplicate. Streams
//! are push-only: tungstenite's blocking socket cannot read and write at once, so a failed
//! write is the disconnect signal, and periodic pings make sure a vanished client is noticed.

use std::io::{Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tiny_http::{Header, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::format::{Millis, now_ms};
use crate::history::{self, Export, Past};
use crate::table::{Ended, RowFilter, Subscription, Table};

/// WebSocket ping period; port-forwards drop connections idle for longer than ~30 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// A message that cannot be written completely within this long marks the client as too slow
/// (a blocked write is retried while it makes progress, each try bounded by the socket's
/// send timeout).
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);

/// Stream bookkeeping shared by all client threads.
pub struct Streams {
    max: usize,
    open: AtomicUsize,
    opened_total: AtomicU64,
    rows_sent: AtomicU64,
    dropped_slow: AtomicU64,
}

/// Holds one of the `MAX_STREAMS` slots until dropped.
pub struct Slot(Arc<Streams>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Streams {
    pub fn new(max: usize) -> Arc<Streams> {
        Arc::new(Streams {
            max,
            open: AtomicUsize::new(0),
            opened_total: AtomicU64::new(0),
            rows_sent: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
        })
    }

    /// Takes a slot, or `None` when `MAX_STREAMS` streams are open.
    pub fn acquire(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| {
            self.opened_total.fetch_add(1, Ordering::SeqCst);
            Slot(Arc::clone(self))
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn note_dropped_slow(&self, n: usize) {
        self.dropped_slow.fetch_add(n as u64, Ordering::SeqCst);
    }

    /// Prometheus text lines for `/agent/metrics`.
    pub fn render(&self) -> String {
        let figures = [
            (
                "prometheus_agent_streams_open",
                "gauge",
                "Stream clients connected now.",
                self.open() as u64,
            ),
            (
                "prometheus_agent_streams_opened_total",
                "counter",
                "Stream clients accepted.",
                self.opened_total.load(Ordering::SeqCst),
            ),
            (
                "prometheus_agent_stream_rows_sent_total",
                "counter",
                "Rows written to stream clients (header lines excluded).",
                self.rows_sent.load(Ordering::SeqCst),
            ),
            (
                "prometheus_agent_stream_clients_dropped_total",
                "counter",
                "Stream clients disconnected because they could not keep up.",
                self.dropped_slow.load(Ordering::SeqCst),
            ),
        ];
        figures
            .iter()
            .map(|(name, kind, help, v)| {
                format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n")
            })
            .collect()
    }
}

/// Where a stream's rows come from: the table's buffer and subscription, and history for
/// the cycles a resuming client missed.
pub struct Source {
    pub table: Arc<Table>,
    pub past: Arc<Past>,
    /// `UPDATE_INTERVAL` in milliseconds: the grid of missed cycles.
    pub interval_ms: Millis,
}

/// Serves a stream on the calling thread until the client leaves, falls behind, or the agent
/// stops. The caller has checked path and parameters and holds `slot`.
pub fn run(request: Request, source: Source, filter: RowFilter, slot: Slot, websocket: bool) {
    let streams = Arc::clone(&slot.0);
    let _slot = slot;
    let peer = request
        .remote_addr()
        .map_or_else(|| "?".to_string(), |a| a.to_string());
    let path = request.url().to_string();
    let Some(subscription) = source.table.subscribe(&filter) else {
        let _ = request.respond(Response::from_string("shutting down\n").with_status_code(503));
        return;
    };
    let missed = filter
        .since_ms
        .filter(|_| filter.size.is_none())
        .and_then(|since| {
            history::missed_span(
                since,
                subscription.oldest_buffered,
                source.interval_ms,
                now_ms(),
            )
        });
    let history_slot = match missed {
        Some(_) => match source.past.try_slot() {
            Some(slot) => Some(slot),
            None => {
                let body = "too many history or energy requests at once; retry later\n";
                let _ = request.respond(Response::from_string(body).with_status_code(503));
                return;
            }
        },
        None => None,
    };
    let rows_per_step = source.table.newest_cycle_len();
    let missed = missed.map(|span| source.past.export(source.table.kind(), span, rows_per_step));
    info!(
        "stream {path} opened by {peer} ({}{})",
        if websocket {
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
    let feed = Feed {
        header: source.table.header(),
        missed,
        _history_slot: history_slot,
        subscription: &subscription,
        filter: &filter,
        streams: &streams,
    };
    let exit = if websocket {
        websocket_stream(request, feed)
    } else {
        chunked_stream(request, feed)
    };
    match exit {
        Exit::Ended(Ended::TooSlow) | Exit::Stuck => {
            streams.note_dropped_slow(1);
            warn!("stream {path} of {peer} disconnected: client too slow to keep up");
        }
        Exit::Ended(_) => debug!("stream {path} of {peer} closed for shutdown"),
        Exit::Gone => info!("stream {path} of {peer} closed by the client"),
        Exit::HistoryFailed => {
            warn!("stream {path} of {peer} closed: the missed cycles could not be fetched")
        }
    }
}

/// Everything a stream sends, in order: header, missed cycles, backlog, live rows.
struct Feed<'a> {
    header: &'a str,
    missed: Option<Export<'a>>,
    _history_slot: Option<history::Slot<'a>>,
    subscription: &'a Subscription,
    filter: &'a RowFilter,
    streams: &'a Streams,
}

/// A writer that fails once the current message is past its deadline, so a client whose
/// window opens a few bytes at a time cannot hold a stream thread indefinitely.
struct Deadline<W> {
    inner: W,
    until: Instant,
}

impl<W> Deadline<W> {
    fn new(inner: W) -> Self {
        Deadline {
            inner,
            until: Instant::now() + MESSAGE_DEADLINE,
        }
    }

    /// Starts the clock for the next message.
    fn arm(&mut self) {
        self.until = Instant::now() + MESSAGE_DEADLINE;
    }

    fn check(&self) -> std::io::Result<()> {
        if Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client accepts no data",
            ));
        }
        Ok(())
    }
}

impl<W: Write> Write for Deadline<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

impl<R: std::io::Read> std::io::Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// How a stream ended, as seen by its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
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
fn write_failure(e: &std::io::Error) -> Exit {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Exit::Stuck,
        _ => Exit::Gone,
    }
}

fn ws_failure(e: &tungstenite::Error) -> Exit {
    match e {
        tungstenite::Error::Io(io) => write_failure(io),
        _ => Exit::Gone,
    }
}

/// Runs a WebSocket stream until the client leaves, falls behind, or the agent stops.
fn websocket_stream(request: Request, feed: Feed<'_>) -> Exit {
    let key = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Sec-WebSocket-Key"))
        .map(|h| h.value.as_str().trim().to_string());
    let version_ok = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Sec-WebSocket-Version") && h.value.as_str().trim() == "13");
    let Some(key) = key.filter(|_| version_ok) else {
        let _ = request.respond(
            Response::from_string(
                "WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n",
            )
            .with_status_code(400),
        );
        return Exit::Gone;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(
        101.into(),
        Vec::new(),
        Cursor::new(Vec::new()),
        Some(0),
        None,
    );
    if let Ok(h) = Header::from_bytes(&b"Sec-WebSocket-Accept"[..], accept.as_bytes()) {
        response.add_header(h);
    }
    // tiny_http adds `Upgrade: websocket` and `Connection: upgrade` itself.
    let stream = request.upgrade("websocket", response);
    // Push-only: a tiny read buffer, frames written straight through.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let mut ws = WebSocket::from_raw_socket(Deadline::new(stream), Role::Server, Some(config));

    let exit = pump(feed, |message| {
        let message = match message {
            Some(text) => Message::text(text),
            None => Message::Ping(Default::default()),
        };
        ws.get_mut().arm();
        ws.send(message).map_err(|e| ws_failure(&e))
    });
    let (code, reason) = match exit {
        Exit::Ended(Ended::Shutdown) => (CloseCode::Away, "agent shutting down"),
        Exit::Ended(_) => (CloseCode::Policy, "client too slow to keep up"),
        Exit::HistoryFailed => (
            CloseCode::Error,
            "missed cycles could not be fetched from Prometheus; retry",
        ),
        Exit::Stuck | Exit::Gone => return exit,
    };
    ws.get_mut().arm();
    let _ = ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = ws.flush();
    exit
}

/// Runs a chunked HTTP stream: the same CSV lines, one chunk per line.
fn chunked_stream(request: Request, feed: Feed<'_>) -> Exit {
    let head_only = request.method() == &tiny_http::Method::Head;
    let mut out = Deadline::new(request.into_writer());
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/csv; charset=utf-8\r\n\
                Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut write = |bytes: &[u8]| -> Result<(), Exit> {
        out.arm();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| write_failure(&e))
    };
    if let Err(exit) = write(head.as_bytes()) {
        return exit;
    }
    if head_only {
        return Exit::Gone;
    }
    let exit = pump(feed, |line| match line {
        Some(line) => write(format!("{:x}\r\n{line}\r\n", line.len()).as_bytes()),
        // HTTP has no ping; an idle stream is only checked by the next row.
        None => Ok(()),
    });
    // After a failed resume the final chunk is withheld: the client sees an incomplete
    // transfer, not a complete file with a gap.
    if exit == Exit::Ended(Ended::Shutdown) {
        // The terminating chunk: curl ends cleanly with the whole CSV written.
        let _ = write(b"0\r\n\r\n");
    }
    exit
}

/// Sends the header, the missed cycles, the backlog, then every new row passing the filter
/// through `send` (`None` asks for a keep-alive ping) until the subscription or a write ends it.
fn pump(mut feed: Feed<'_>, mut send: impl FnMut(Option<&str>) -> Result<(), Exit>) -> Exit {
    let streams = feed.streams;
    let sent = |send: &mut dyn FnMut(Option<&str>) -> Result<(), Exit>, line: &str| {
        send(Some(line))?;
        streams.rows_sent.fetch_add(1, Ordering::Relaxed);
        Ok::<(), Exit>(())
    };
    if let Err(exit) = send(Some(feed.header)) {
        return exit;
    }
    if let Some(missed) = feed.missed.as_mut()
        && let Err(exit) = send_missed(missed, &mut |line| sent(&mut send, line))
    {
        return exit;
    }
    for row in &feed.subscription.backlog {
        if let Err(exit) = sent(&mut send, &row.line) {
            return exit;
        }
    }
    let mut last_ping = Instant::now();
    loop {
        let wait = PING_INTERVAL.saturating_sub(last_ping.elapsed());
        let result = match feed.subscription.next(wait) {
            Ok(row) if feed.filter.accepts(&row) => sent(&mut send, &row.line),
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

/// Sends the cycles a resuming client missed, chunk by chunk.
fn send_missed(
    missed: &mut Export<'_>,
    send: &mut dyn FnMut(&str) -> Result<(), Exit>,
) -> Result<(), Exit> {
    while let Some(chunk) = missed.next_chunk() {
        let lines = chunk.map_err(|e| {
            warn!("resuming a stream: {e}");
            Exit::HistoryFailed
        })?;
        for line in &lines {
            send(line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_returned() {
        let streams = Streams::new(2);
        let a = streams.acquire().unwrap();
        let _b = streams.acquire().unwrap();
        assert!(streams.acquire().is_none());
        assert_eq!(streams.open(), 2);
        drop(a);
        assert_eq!(streams.open(), 1);
        assert!(streams.acquire().is_some());
        let text = streams.render();
        assert!(text.contains("prometheus_agent_streams_open 1\n"), "{text}");
        assert!(
            text.contains("prometheus_agent_streams_opened_total 3\n"),
            "{text}"
        );
        assert!(Streams::new(0).acquire().is_none());
    }
}
