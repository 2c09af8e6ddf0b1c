//! The server: binding the socket with its limits, and one dispatcher thread that only
//! accepts and hands each request to a responder (`handlers::serve`).
//!
//! Connections are capped and timed out by the vendored tiny_http (vendor/README.md), which
//! also retries transient accept errors; should its accept loop still end, the dispatcher
//! listens again instead of going deaf.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{error, info, warn};
use tiny_http::{ConnectionConfig, Server};

use super::App;
use super::handlers;
use super::reply::{Reply, respond};
use super::responders::Responders;
use crate::config::HttpLimits;

/// Responders allowed at once; more requests get 503 until some finish.
const MAX_RESPONDERS: usize = 64;

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
    let responders = Responders::new(MAX_RESPONDERS, handlers::serve);
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
