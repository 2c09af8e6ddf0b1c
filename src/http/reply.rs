//! Responses before they are written, and writing them with tiny_http.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use tiny_http::{Header, Request, Response};

use super::page;

/// A response before it is written: status, content type, extra headers, body (the page's
/// files are served from the binary without a copy).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, str>,
}

/// The content type of CSV bodies.
pub const CSV: &str = "text/csv; charset=utf-8";

impl Reply {
    /// A one-line (or short) text body, ending in a newline.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A CSV download named `name.csv`.
    pub fn csv(name: &str, body: String) -> Reply {
        Reply {
            status: 200,
            content_type: CSV,
            headers: csv_headers(name),
            body: body.into(),
        }
    }

    /// A file of the live page.
    pub fn asset(asset: page::Asset) -> Reply {
        Reply {
            status: 200,
            content_type: asset.content_type,
            headers: vec![("Cache-Control", asset.cache_control.into())],
            body: asset.body.into(),
        }
    }
}

/// The headers of a CSV download.
pub fn csv_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Disposition",
            format!("attachment; filename=\"{name}.csv\""),
        ),
        ("Cache-Control", "no-store".into()),
    ]
}

pub fn add_headers<R: Read>(
    response: &mut Response<R>,
    content_type: &str,
    headers: &[(&'static str, String)],
) {
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", content_type);
    for (name, value) in headers {
        add(name, value);
    }
}

/// Writes `reply`; a client that hung up is not an error worth more than a debug line.
pub fn respond(request: Request, reply: Reply) {
    let length = reply.body.len();
    let body: Cow<'static, [u8]> = match reply.body {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    };
    let mut response = Response::new(
        reply.status.into(),
        Vec::new(),
        Cursor::new(body),
        Some(length),
        None,
    );
    add_headers(&mut response, reply.content_type, &reply.headers);
    if let Err(e) = request.respond(response) {
        log::debug!("client went away: {e}");
    }
}

/// A streamed body of unknown length (chunked), with a CSV download's headers.
pub fn respond_streamed<R: Read>(request: Request, name: &str, body: R) {
    let mut response = Response::new(200.into(), Vec::new(), body, None, None);
    add_headers(&mut response, CSV, &csv_headers(name));
    if let Err(e) = request.respond(response) {
        log::debug!("streamed download not completed: {e}");
    }
}

/// The value of header `name`, or "".
pub fn header<'a>(request: &'a Request, name: &'static str) -> &'a str {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map_or("", |h| h.value.as_str())
}

/// Whether the request asks to become a WebSocket.
pub fn asks_for_websocket(request: &Request) -> bool {
    request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Upgrade") && h.value.as_str().eq_ignore_ascii_case("websocket"))
}
