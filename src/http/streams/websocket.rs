//! A stream as WebSocket messages, one CSV record per text message: tungstenite on the
//! upgraded tiny_http connection, small buffers, push-only (a blocking socket cannot read
//! and write at once, so a failed write is the disconnect signal, and pings make sure a
//! vanished client is noticed).

use std::io::Cursor;

use tiny_http::{Header, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::deadline::Deadline;
use super::feed::{Exit, Feed, write_failure};
use crate::buffer::Ended;
use crate::http::reply;

fn ws_failure(e: &tungstenite::Error) -> Exit {
    match e {
        tungstenite::Error::Io(io) => write_failure(io),
        _ => Exit::Gone,
    }
}

/// The handshake's `Sec-WebSocket-Accept`, or `None` for a malformed upgrade.
fn accept_key(request: &Request) -> Option<String> {
    let key = reply::header(request, "Sec-WebSocket-Key").trim();
    let version_ok = reply::header(request, "Sec-WebSocket-Version").trim() == "13";
    (!key.is_empty() && version_ok)
        .then(|| tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Runs a WebSocket stream until the client leaves, falls behind, or the agent stops.
pub fn serve(request: Request, feed: Feed<'_>) -> Exit {
    let Some(accept) = accept_key(&request) else {
        let _ = request.respond(
            Response::from_string(
                "WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n",
            )
            .with_status_code(400),
        );
        return Exit::Gone;
    };
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
    let exit = feed.pump(&mut |message| {
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
