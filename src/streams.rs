//! Live streams of new rows (SPEC §5): WebSocket and chunked HTTP.
//!
//! Each client has its own thread and its own subscription on the table, so every client
//! gets every row, in order, exactly once, whatever the others do. Streams are push-only:
//! tungstenite's blocking socket cannot read and write at once, so a failed write is the
//! disconnect signal, and periodic pings make sure a vanished client is noticed.

use std::io::{Cursor, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tiny_http::{Header, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::table::{Ended, RowFilter, Table};

/// WebSocket ping period; port-forwards drop connections idle for longer than ~30 s.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Stack of a stream thread; it only formats frames.
const STREAM_STACK: usize = 128 * 1024;

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

/// Starts a stream thread for `request`. The caller has checked path and parameters.
pub fn start(request: Request, table: Arc<Table>, filter: RowFilter, slot: Slot, websocket: bool) {
    let streams = Arc::clone(&slot.0);
    let spawned = std::thread::Builder::new()
        .name("stream".into())
        .stack_size(STREAM_STACK)
        .spawn(move || {
            let _slot = slot;
            let peer = request
                .remote_addr()
                .map_or_else(|| "?".to_string(), |a| a.to_string());
            let path = request.url().to_string();
            let Some(subscription) = table.subscribe(&filter) else {
                let _ =
                    request.respond(Response::from_string("shutting down\n").with_status_code(503));
                return;
            };
            info!(
                "stream {path} opened by {peer} ({})",
                if websocket {
                    "WebSocket"
                } else {
                    "chunked HTTP"
                }
            );
            let end = if websocket {
                websocket_stream(request, &table, &subscription, &filter, &streams)
            } else {
                chunked_stream(request, &table, &subscription, &filter, &streams)
            };
            match end {
                Ended::TooSlow => {
                    streams.note_dropped_slow(1);
                    warn!("stream {path} of {peer} disconnected: client too slow to keep up");
                }
                Ended::Shutdown => debug!("stream {path} of {peer} closed for shutdown"),
                Ended::Idle => info!("stream {path} of {peer} closed by the client"),
            }
        });
    if let Err(e) = spawned {
        warn!("cannot start a stream thread: {e}");
    }
}

/// What a write failure means: a client that stopped reading hits the socket send timeout.
fn write_failure(e: &std::io::Error) -> Ended {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Ended::TooSlow,
        _ => Ended::Idle,
    }
}

fn ws_failure(e: &tungstenite::Error) -> Ended {
    match e {
        tungstenite::Error::Io(io) => write_failure(io),
        _ => Ended::Idle,
    }
}

/// Runs a WebSocket stream until the client leaves, falls behind, or the agent stops.
/// `Ended::Idle` here means the client went away.
fn websocket_stream(
    request: Request,
    table: &Table,
    subscription: &crate::table::Subscription,
    filter: &RowFilter,
    streams: &Streams,
) -> Ended {
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
        return Ended::Idle;
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
    let stream = request.upgrade("websocket", response);
    // Push-only: tiny read buffer, frames written straight through.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));

    let send = |ws: &mut WebSocket<_>, text: &str| -> Result<(), Ended> {
        ws.send(Message::text(text)).map_err(|e| ws_failure(&e))
    };
    let run = |ws: &mut WebSocket<_>| -> Ended {
        if let Err(end) = send(ws, table.header()) {
            return end;
        }
        for row in &subscription.backlog {
            if let Err(end) = send(ws, &row.line) {
                return end;
            }
            streams.rows_sent.fetch_add(1, Ordering::Relaxed);
        }
        let mut last_ping = Instant::now();
        loop {
            let wait = PING_INTERVAL.saturating_sub(last_ping.elapsed());
            match subscription.next(wait) {
                Ok(row) if filter.accepts(&row) => {
                    if let Err(end) = send(ws, &row.line) {
                        return end;
                    }
                    streams.rows_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(Ended::Idle) => {
                    if let Err(e) = ws.send(Message::Ping(Default::default())) {
                        return ws_failure(&e);
                    }
                    last_ping = Instant::now();
                }
                Err(end) => return end,
            }
        }
    };
    let end = run(&mut ws);
    let (code, reason) = match end {
        Ended::Shutdown => (CloseCode::Away, "agent shutting down"),
        Ended::TooSlow => (CloseCode::Policy, "client too slow to keep up"),
        Ended::Idle => return end,
    };
    let _ = ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = ws.flush();
    end
}

/// Runs a chunked HTTP stream: the same CSV lines, one chunk per line.
fn chunked_stream(
    request: Request,
    table: &Table,
    subscription: &crate::table::Subscription,
    filter: &RowFilter,
    streams: &Streams,
) -> Ended {
    let head_only = request.method() == &tiny_http::Method::Head;
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/csv; charset=utf-8\r\n\
                Content-Disposition: inline; filename=\"stream.csv\"\r\nCache-Control: no-store\r\n\
                X-Content-Type-Options: nosniff\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut write = |bytes: &[u8]| -> Result<(), Ended> {
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| write_failure(&e))
    };
    let chunk = |line: &str| format!("{:x}\r\n{line}\r\n", line.len());
    let run = |write: &mut dyn FnMut(&[u8]) -> Result<(), Ended>| -> Result<(), Ended> {
        write(head.as_bytes())?;
        if head_only {
            return Err(Ended::Idle);
        }
        write(chunk(table.header()).as_bytes())?;
        for row in &subscription.backlog {
            write(chunk(&row.line).as_bytes())?;
            streams.rows_sent.fetch_add(1, Ordering::Relaxed);
        }
        loop {
            match subscription.next(PING_INTERVAL) {
                Ok(row) if filter.accepts(&row) => {
                    write(chunk(&row.line).as_bytes())?;
                    streams.rows_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) | Err(Ended::Idle) => {}
                Err(end) => return Err(end),
            }
        }
    };
    let end = match run(&mut write) {
        Err(end) => end,
        Ok(()) => Ended::Idle,
    };
    if end == Ended::Shutdown {
        // The terminating chunk: curl ends cleanly with the whole CSV written.
        let _ = write(b"0\r\n\r\n");
    }
    end
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
