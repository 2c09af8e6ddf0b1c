//! HTTP on `tiny_http`: one dispatcher thread that only accepts and hands off, and a bounded
//! pool of responders that route, render and write (README, "API"). A stream gets a thread of
//! its own.
//!
//! Routing and rendering happen on the responder, after the responder limit is checked, so a
//! large download never delays `/readyz` and a refused request costs nothing. Connections are
//! capped and timed out by the vendored tiny_http (vendor/README.md), which also retries
//! transient accept errors; should its accept loop still end, the dispatcher listens again
//! instead of going deaf.

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{error, info, warn};
use tiny_http::{ConnectionConfig, Header, Method, Request, Response, Server};

use crate::config::HttpLimits;
use crate::energy;
use crate::format::{Millis, now_ms};
use crate::history::{ExportReader, Past};
use crate::page;
use crate::params::{self, Span, TableRequest, Window};
use crate::responders::Responders;
use crate::routes::{self, Handler};
use crate::schema::{PerTable, TableKind};
use crate::status::Status;
use crate::streams::{self, Streams};
use crate::table::{RowFilter, Table};

/// Responders allowed at once; more requests get 503 until some finish.
const MAX_RESPONDERS: usize = 64;
/// Stack of a stream thread: it only formats frames (and, resuming, folds history).
const STREAM_STACK: usize = 256 * 1024;

/// Everything a request may need.
pub struct App {
    pub tables: PerTable<Arc<Table>>,
    pub status: Arc<Status>,
    pub streams: Arc<Streams>,
    pub past: Arc<Past>,
    pub buffer_size: usize,
    /// `UPDATE_INTERVAL` in milliseconds: the default history step and the resume grid.
    pub interval_ms: Millis,
}

/// A response before it is written: status, content type, extra headers, body (the page's
/// files are served from the binary without a copy).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, str>,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
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

    fn csv(name: &str, body: String) -> Reply {
        Reply {
            status: 200,
            content_type: "text/csv; charset=utf-8",
            headers: csv_headers(name),
            body: body.into(),
        }
    }

    fn asset(asset: page::Asset) -> Reply {
        Reply {
            status: 200,
            content_type: asset.content_type,
            headers: vec![("Cache-Control", asset.cache_control.into())],
            body: asset.body.into(),
        }
    }
}

fn csv_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Disposition",
            format!("attachment; filename=\"{name}.csv\""),
        ),
        ("Cache-Control", "no-store".into()),
    ]
}

/// What a request turns into.
#[derive(Debug)]
pub enum Routed {
    Reply(Reply),
    /// Rows of `table` for a past span, computed from Prometheus.
    History(TableKind, Span),
    /// Joules per node or pod for a window, computed from Prometheus.
    Energy(TableKind, Window),
    /// A live stream of `table` rows passing `filter`.
    Stream(TableKind, RowFilter),
}

/// The parts of a request routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub method: &'a Method,
    pub url: &'a str,
    pub websocket: bool,
    /// The `Accept` header: a browser gets the live page at `/`, `curl` the text index.
    pub accept: &'a str,
}

/// Routes one request; cheap, and never waits for Prometheus.
pub fn route(app: &App, asked: Asked<'_>) -> Routed {
    let (path, query) = asked.url.split_once('?').unwrap_or((asked.url, ""));
    let Some(route) = routes::find(path) else {
        return Routed::Reply(Reply::text(404, routes::not_found(path)));
    };
    if !matches!(asked.method, Method::Get | Method::Head) {
        let mut reply = Reply::text(
            405,
            format!("method {} not allowed on {path}; use GET", asked.method),
        );
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return Routed::Reply(reply);
    }
    if asked.websocket && !matches!(route.handler, Handler::Stream(_)) {
        return Routed::Reply(Reply::text(
            400,
            format!(
                "{path} does not accept WebSocket upgrades; streams are /metrics, /metrics/nodes and /metrics/pods"
            ),
        ));
    }
    let bad_request = |reason: String| Routed::Reply(Reply::text(400, reason));
    let now = now_ms();
    match route.handler {
        Handler::Table(kind) => {
            match params::parse_table_request(query, app.buffer_size, app.interval_ms, now) {
                Ok(TableRequest::Buffer(filter)) => {
                    Routed::Reply(Reply::csv(kind.name(), app.tables.get(kind).csv(&filter)))
                }
                Ok(TableRequest::History(span)) => Routed::History(kind, span),
                Err(reason) => bad_request(reason),
            }
        }
        Handler::Stream(kind) => match params::parse_stream_filter(query, app.buffer_size, now) {
            Ok(filter) => Routed::Stream(kind, filter),
            Err(reason) => bad_request(reason),
        },
        Handler::Energy(kind) => match params::parse_window(query, now) {
            Ok(window) => Routed::Energy(kind, window),
            Err(reason) => bad_request(reason),
        },
        Handler::Index if page::wants_html(asked.accept) => {
            Routed::Reply(Reply::asset(page::INDEX))
        }
        Handler::Index => Routed::Reply(Reply::text(200, routes::index())),
        Handler::PageFile => Routed::Reply(match page::asset(path) {
            Some(asset) => Reply::asset(asset),
            None => Reply::text(404, routes::not_found(path)),
        }),
        Handler::Livez => Routed::Reply(Reply::text(200, "ok")),
        Handler::Readyz => Routed::Reply(match app.status.readiness() {
            Ok(()) => Reply::text(200, "ok"),
            Err(reason) => Reply::text(503, format!("not ready: {reason}")),
        }),
        Handler::AgentMetrics => Routed::Reply(Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
            body: (app.status.render(&app.tables) + &app.streams.render()).into(),
        }),
    }
}

fn asks_for_websocket(request: &Request) -> bool {
    request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Upgrade") && h.value.as_str().eq_ignore_ascii_case("websocket"))
}

fn accept_header(request: &Request) -> &str {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map_or("", |h| h.value.as_str())
}

fn add_headers<R: Read>(
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

fn respond(request: Request, reply: Reply) {
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
    // A client that hung up is not an error worth more than a debug line.
    if let Err(e) = request.respond(response) {
        log::debug!("client went away: {e}");
    }
}

/// Serves one request on a responder; a stream continues on a thread of its own.
fn serve((app, request): (Arc<App>, Request)) {
    let websocket = asks_for_websocket(&request);
    let asked = Asked {
        method: request.method(),
        url: request.url(),
        websocket,
        accept: accept_header(&request),
    };
    match route(&app, asked) {
        Routed::Reply(reply) => respond(request, reply),
        Routed::History(kind, span) => history(&app, request, kind, span),
        Routed::Energy(kind, window) => energy(&app, request, kind, window),
        Routed::Stream(kind, filter) => stream(&app, request, kind, filter, websocket),
    }
}

fn stream(app: &App, request: Request, kind: TableKind, filter: RowFilter, websocket: bool) {
    let Some(slot) = app.streams.acquire() else {
        return respond(
            request,
            Reply::text(503, "too many streams open (MAX_STREAMS); retry later"),
        );
    };
    let source = streams::Source {
        table: Arc::clone(app.tables.get(kind)),
        past: Arc::clone(&app.past),
        interval_ms: app.interval_ms,
    };
    let spawned = std::thread::Builder::new()
        .name("stream".into())
        .stack_size(STREAM_STACK)
        .spawn(move || streams::run(request, source, filter, slot, websocket));
    if let Err(e) = spawned {
        error!("cannot start a stream thread: {e}");
    }
}

fn busy_reply() -> Reply {
    Reply::text(
        503,
        "too many history or energy requests at once (at most 2); retry later",
    )
}

fn prometheus_failed(e: &dyn std::fmt::Display) -> Reply {
    Reply::text(502, format!("cannot compute this from Prometheus: {e}"))
}

fn history(app: &App, request: Request, kind: TableKind, span: Span) {
    let Some(slot) = app.past.try_slot() else {
        return respond(request, busy_reply());
    };
    let rows_per_step = app.tables.get(kind).newest_cycle_len();
    let export = app.past.export(kind, span, rows_per_step);
    let reader = match ExportReader::start(export, Some(slot)) {
        Ok(reader) => reader,
        Err(e) => return respond(request, prometheus_failed(&e)),
    };
    let mut response = Response::new(200.into(), Vec::new(), reader, None, None);
    add_headers(
        &mut response,
        "text/csv; charset=utf-8",
        &csv_headers(kind.name()),
    );
    if let Err(e) = request.respond(response) {
        log::debug!("history export not completed: {e}");
    }
}

fn energy(app: &App, request: Request, kind: TableKind, window: Window) {
    let Some(_slot) = app.past.try_slot() else {
        return respond(request, busy_reply());
    };
    let reply = match energy::energy_csv(&app.past, kind, window) {
        Ok(csv) => Reply::csv(&format!("energy-{}", kind.name()), csv),
        Err(e) => prometheus_failed(&e),
    };
    respond(request, reply);
}

/// A blocked write gives up after this long. No read timeout is set: on the listening socket
/// SO_RCVTIMEO would also make `accept` time out, which ends tiny_http's accept loop.
pub const SOCKET_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Kernel send buffer per connection (Linux doubles it). Bounds the memory a stuck client can
/// pin, which the container's memory limit is charged for, and makes a stuck client show up
/// as a blocked write instead of megabytes silently queued.
pub const SEND_BUFFER: usize = 64 * 1024;

/// Longest request head (request line and headers) accepted; browsers' cookies fit.
const MAX_REQUEST_HEAD: usize = 32 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Connections waiting to be accepted (std's default is 128). Beyond it, a burst of new
/// connections, a probe among them, has its SYNs dropped and retried after 1 s, 3 s, ...
const LISTEN_BACKLOG: i32 = 1024;

/// Binds `addr` with socket timeouts and a bounded send buffer. tiny_http never exposes its
/// sockets, but on Linux an accepted socket inherits these options from the listening socket.
/// Connection limits and TCP_NODELAY are set by tiny_http itself.
fn bind(addr: SocketAddr, limits: &HttpLimits) -> Result<Server, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot listen on {addr}: {e}");
    let listener = std::net::TcpListener::bind(addr).map_err(|e| fail(&e))?;
    let socket = socket2::SockRef::from(&listener);
    socket
        .set_write_timeout(Some(SOCKET_SEND_TIMEOUT))
        .and_then(|()| socket.set_send_buffer_size(SEND_BUFFER))
        // Peers that vanish without a FIN (a killed port-forward) free their thread within
        // a few minutes (60 s idle, then probes every 15 s) instead of after two hours.
        .and_then(|()| {
            socket.set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(60))
                    .with_interval(Duration::from_secs(15)),
            )
        })
        // Linux takes a new backlog from a second listen().
        .and_then(|()| socket.listen(LISTEN_BACKLOG))
        .map_err(|e| fail(&e))?;
    let connections = ConnectionConfig::new()
        .max_connections(limits.max_connections)
        .header_timeout(limits.header_timeout)
        .idle_timeout(limits.idle_timeout)
        .max_header_size(MAX_REQUEST_HEAD)
        .nodelay(true)
        .retry_accept_errors(ACCEPT_RETRY);
    Server::from_listener_with_config(listener, None, connections).map_err(|e| fail(&e))
}

/// The running HTTP server, as `main` sees it.
pub struct Http {
    pub dispatcher: std::thread::JoinHandle<()>,
    /// The server the dispatcher waits on (replaced when it listens again).
    current: Arc<Mutex<Arc<Server>>>,
    shutdown: Arc<AtomicBool>,
}

impl Http {
    /// Stops taking requests: the dispatcher, blocked waiting for one, is woken to exit.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        lock(&self.current).unblock();
    }
}

fn lock(current: &Mutex<Arc<Server>>) -> Arc<Server> {
    Arc::clone(&current.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Starts serving.
pub fn start(addr: SocketAddr, limits: HttpLimits, app: Arc<App>) -> Result<Http, String> {
    let server = bind(addr, &limits)?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| format!("cannot listen on {addr}: not an IP listener"))?;
    info!("serving on http://{bound}");
    let current = Arc::new(Mutex::new(Arc::new(server)));
    let shutdown = Arc::new(AtomicBool::new(false));
    let listening = Listening {
        addr: bound,
        limits,
        current: Arc::clone(&current),
        shutdown: Arc::clone(&shutdown),
    };
    let dispatcher = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || dispatch(listening, app))
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok(Http {
        dispatcher,
        current,
        shutdown,
    })
}

/// What the dispatcher needs to listen, and to listen again.
struct Listening {
    addr: SocketAddr,
    limits: HttpLimits,
    current: Arc<Mutex<Arc<Server>>>,
    shutdown: Arc<AtomicBool>,
}

/// Waits for requests (blocked, not polling: an idle agent does not wake up) and hands each
/// to a responder.
fn dispatch(listening: Listening, app: Arc<App>) {
    let responders = Responders::new(MAX_RESPONDERS, serve);
    loop {
        let server = lock(&listening.current);
        let request = match server.recv() {
            Ok(request) => request,
            Err(_) if listening.shutdown.load(Ordering::SeqCst) => return,
            Err(e) => {
                error!("HTTP accept loop ended ({e}); listening again");
                drop(server);
                match rebind(listening.addr, &listening.limits, &listening.shutdown) {
                    Some(s) => {
                        *listening.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(s)
                    }
                    None => return,
                }
                continue;
            }
        };
        // Refused without routing or rendering when every responder is busy.
        if let Err((_, request)) = responders.run((Arc::clone(&app), request)) {
            respond(
                request,
                Reply::text(503, "too many requests in flight; retry"),
            );
        }
    }
}

/// Binds again after the accept loop ended, once a second, until it works or shutdown.
fn rebind(addr: SocketAddr, limits: &HttpLimits, shutdown: &AtomicBool) -> Option<Server> {
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return None;
        }
        std::thread::sleep(Duration::from_secs(1));
        match bind(addr, limits) {
            Ok(s) => return Some(s),
            Err(e) => warn!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests;
