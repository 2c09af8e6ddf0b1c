//! HTTP routing on `tiny_http` (SPEC §5).
//!
//! One dispatcher thread takes requests off the server and hands each to a responder thread
//! (a bounded pool), so a client that reads a download slowly never holds up health probes.
//! Connections are capped and timed out by the vendored tiny_http (vendor/README.md), which
//! also retries transient accept errors; should its accept loop still end, the dispatcher
//! rebinds the listener instead of going deaf.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::{error, info, warn};
use tiny_http::{ConnectionConfig, Header, Method, Request, Response, Server};

use crate::config::HttpLimits;
use crate::params;
use crate::queries::TableKind;
use crate::responders::Responders;
use crate::status::Status;
use crate::streams::{self, Streams};
use crate::table::{RowFilter, Table};

/// Responders allowed at once; more requests get 503 until some finish.
const MAX_RESPONDERS: usize = 64;
/// How often the dispatcher looks at the shutdown flag while idle.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// Everything a request may need.
pub struct App {
    pub nodes: Arc<Table>,
    pub pods: Arc<Table>,
    pub status: Arc<Status>,
    pub streams: Arc<Streams>,
    pub buffer_size: usize,
}

impl App {
    pub fn table(&self, kind: TableKind) -> &Arc<Table> {
        match kind {
            TableKind::Nodes => &self.nodes,
            TableKind::Pods => &self.pods,
        }
    }
}

/// A response before it is written: status, content type, extra headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
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
            body,
        }
    }
}

const INDEX: &str = "prometheus-agent: per-node and per-pod measurements as CSV

GET /nodes             buffered node rows (also /download)   ?size=N&since=T
GET /pods              buffered pod rows of the namespace    ?size=N&since=T
GET /metrics           live node rows (WebSocket or chunked HTTP; also /metrics/nodes)
GET /metrics/pods      live pod rows (WebSocket or chunked HTTP)
GET /livez             200 while the process serves
GET /readyz            200 if the last cycle succeeded within 3 intervals
GET /agent/metrics     the agent's own figures (Prometheus text format)

since=T: RFC 3339 (2026-01-31T12:00:05Z) or Unix seconds; rows collected after T.
";

/// What a request turns into.
#[derive(Debug)]
pub enum Routed {
    Reply(Reply),
    /// A live stream of `table` rows passing `filter`.
    Stream(TableKind, RowFilter),
}

/// Routes one request, given its method, URL and whether it asks for a WebSocket upgrade.
pub fn route(app: &App, method: &Method, url: &str, websocket: bool) -> Routed {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if let Some(kind) = stream_table(path)
        && matches!(method, Method::Get | Method::Head)
    {
        return match params::parse_filter(query, app.buffer_size) {
            Ok(filter) => Routed::Stream(kind, filter),
            Err(reason) => Routed::Reply(Reply::text(400, reason)),
        };
    }
    Routed::Reply(reply(app, method, url, websocket))
}

/// Everything but the streams.
fn reply(app: &App, method: &Method, url: &str, websocket: bool) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let table = match path {
        "/nodes" | "/download" => Some(&app.nodes),
        "/pods" => Some(&app.pods),
        _ => None,
    };
    let known = table.is_some()
        || matches!(
            path,
            "/" | "/livez"
                | "/readyz"
                | "/agent/metrics"
                | "/metrics"
                | "/metrics/nodes"
                | "/metrics/pods"
        );
    if !known {
        return Reply::text(404, format!("not found: {path} (see / for the endpoints)"));
    }
    if !matches!(method, Method::Get | Method::Head) {
        let mut reply = Reply::text(
            405,
            format!("method {method} not allowed on {path}; use GET"),
        );
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return reply;
    }
    let is_stream = path.starts_with("/metrics");
    if websocket && !is_stream {
        return Reply::text(
            400,
            format!(
                "{path} does not accept WebSocket upgrades; streams are /metrics, /metrics/nodes and /metrics/pods"
            ),
        );
    }
    match (path, table) {
        (_, Some(table)) => match params::parse_filter(query, app.buffer_size) {
            Ok(filter) => Reply {
                status: 200,
                content_type: "text/csv; charset=utf-8",
                headers: vec![
                    (
                        "Content-Disposition",
                        format!("attachment; filename=\"{}.csv\"", table.kind().name()),
                    ),
                    ("Cache-Control", "no-store".into()),
                ],
                body: table.csv(&filter),
            },
            Err(reason) => Reply::text(400, reason),
        },
        ("/", _) => Reply::text(200, INDEX),
        ("/livez", _) => Reply::text(200, "ok"),
        ("/readyz", _) => match app.status.readiness() {
            Ok(()) => Reply::text(200, "ok"),
            Err(reason) => Reply::text(503, format!("not ready: {reason}")),
        },
        ("/agent/metrics", _) => Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: Vec::new(),
            body: app.status.render(&[&app.nodes, &app.pods]) + &app.streams.render(),
        },
        _ => match params::parse_filter(query, app.buffer_size) {
            // Live streams arrive with the streaming work; the path is reserved.
            Ok(_) => Reply::text(
                501,
                format!("{path}: live streams are not available in this version"),
            ),
            Err(reason) => Reply::text(400, reason),
        },
    }
}

/// Which table a stream path serves.
pub fn stream_table(path: &str) -> Option<TableKind> {
    match path {
        "/metrics" | "/metrics/nodes" => Some(TableKind::Nodes),
        "/metrics/pods" => Some(TableKind::Pods),
        _ => None,
    }
}

fn asks_for_websocket(request: &Request) -> bool {
    request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Upgrade") && h.value.as_str().eq_ignore_ascii_case("websocket"))
}

fn respond(request: Request, reply: Reply) {
    let length = reply.body.len();
    let mut response = Response::new(
        reply.status.into(),
        Vec::new(),
        Cursor::new(reply.body.into_bytes()),
        Some(length),
        None,
    );
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    for (name, value) in &reply.headers {
        add(name, value);
    }
    // A client that hung up is not an error worth more than a debug line.
    if let Err(e) = request.respond(response) {
        log::debug!("client went away: {e}");
    }
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

/// Starts serving; returns the bound address (useful with port 0) and the dispatcher thread.
pub fn start(
    addr: SocketAddr,
    limits: HttpLimits,
    app: Arc<App>,
    shutdown: Arc<AtomicBool>,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>), String> {
    let server = bind(addr, &limits)?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| format!("cannot listen on {addr}: not an IP listener"))?;
    info!("serving on http://{bound}");
    let handle = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || dispatch(server, bound, limits, app, shutdown))
        .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
    Ok((bound, handle))
}

fn dispatch(
    mut server: Server,
    addr: SocketAddr,
    limits: HttpLimits,
    app: Arc<App>,
    shutdown: Arc<AtomicBool>,
) {
    let responders = Responders::new(MAX_RESPONDERS, |(request, reply)| respond(request, reply));
    while !shutdown.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(SHUTDOWN_POLL) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(e) => {
                error!("HTTP accept loop ended ({e}); listening again");
                drop(server);
                server = loop {
                    if shutdown.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    match bind(addr, &limits) {
                        Ok(s) => break s,
                        Err(e) => warn!("{e}"),
                    }
                };
                continue;
            }
        };
        let websocket = asks_for_websocket(&request);
        let reply = match route(&app, request.method(), request.url(), websocket) {
            Routed::Reply(reply) => reply,
            Routed::Stream(kind, filter) => {
                match app.streams.acquire() {
                    Some(slot) => streams::start(
                        request,
                        Arc::clone(app.table(kind)),
                        filter,
                        slot,
                        websocket,
                    ),
                    None => respond(
                        request,
                        Reply::text(503, "too many streams open (MAX_STREAMS); retry later"),
                    ),
                }
                continue;
            }
        };
        if let Err((request, _)) = responders.run((request, reply)) {
            respond(
                request,
                Reply::text(503, "too many requests in flight; retry"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Row;
    use std::time::Duration;

    fn get(app: &App, method: &Method, url: &str, websocket: bool) -> Reply {
        match route(app, method, url, websocket) {
            Routed::Reply(reply) => reply,
            Routed::Stream(..) => panic!("{url} routed to a stream"),
        }
    }

    fn app() -> App {
        let nodes = Arc::new(Table::new(TableKind::Nodes, 10));
        nodes.push(vec![
            Row {
                collection_ms: 1000,
                line: Arc::from("n1,a\n"),
            },
            Row {
                collection_ms: 2000,
                line: Arc::from("n1,b\n"),
            },
        ]);
        App {
            nodes,
            pods: Arc::new(Table::new(TableKind::Pods, 10)),
            status: Arc::new(Status::new(Duration::from_secs(1))),
            streams: Streams::new(2),
            buffer_size: 10,
        }
    }

    #[test]
    fn downloads() {
        let app = app();
        let r = get(&app, &Method::Get, "/nodes?size=1", false);
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with("instance,collection_time"));
        assert!(r.body.ends_with("\nn1,b\n"), "{}", r.body);
        assert_eq!(r.content_type, "text/csv; charset=utf-8");
        assert!(r.headers.contains(&(
            "Content-Disposition",
            "attachment; filename=\"nodes.csv\"".into()
        )));
        let d = get(&app, &Method::Get, "/download", false);
        assert_eq!(d.body.lines().count(), 3);
        let p = get(&app, &Method::Head, "/pods", false);
        assert_eq!(p.status, 200);
        assert!(p.headers.contains(&(
            "Content-Disposition",
            "attachment; filename=\"pods.csv\"".into()
        )));
        assert_eq!(p.body.lines().count(), 1);
        let s = get(&app, &Method::Get, "/nodes?since=1.5", false);
        assert!(s.body.ends_with("\nn1,b\n") && s.body.lines().count() == 2);
    }

    #[test]
    fn errors_are_one_line() {
        let app = app();
        for (method, url, ws, status) in [
            (Method::Get, "/nope", false, 404),
            (Method::Post, "/nodes", false, 405),
            (Method::Delete, "/readyz", false, 405),
            (Method::Get, "/nodes?size=11", false, 400),
            (Method::Get, "/pods?since=x", false, 400),
            (Method::Get, "/pods?x=1", false, 400),
            (Method::Get, "/nodes", true, 400),
            (Method::Get, "/readyz", false, 503),
        ] {
            let r = get(&app, &method, url, ws);
            assert_eq!(r.status, status, "{method} {url}");
            assert_eq!(r.body.lines().count(), 1, "{url}: {:?}", r.body);
        }
        let r = get(&app, &Method::Put, "/nodes", false);
        assert!(r.headers.contains(&("Allow", "GET, HEAD".into())));
    }

    #[test]
    fn health_and_index() {
        let app = app();
        assert_eq!(get(&app, &Method::Get, "/livez", false).status, 200);
        let r = get(&app, &Method::Get, "/readyz", false);
        assert!(r.body.contains("no successful cycle yet"));
        app.status.cycle_succeeded(Duration::ZERO, &[]);
        assert_eq!(get(&app, &Method::Get, "/readyz", false).status, 200);
        let index = get(&app, &Method::Get, "/", false);
        for path in ["/nodes", "/pods", "/metrics", "/readyz", "/agent/metrics"] {
            assert!(index.body.contains(path));
        }
        let m = get(&app, &Method::Get, "/agent/metrics", false);
        assert!(
            m.body
                .contains("prometheus_agent_rows_buffered{table=\"nodes\"} 2")
        );
    }
}
