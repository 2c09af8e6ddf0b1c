//! Opt-in limits on client connections: a cap on their number, deadlines for request heads
//! and for idle keep-alive connections, `TCP_NODELAY`, a bound on the size of a request
//! head, and an accept loop that survives transient errors.
//!
//! Every connection is registered while it lives. Its read half checks the deadlines while
//! the connection waits for a request head (and for a small body read along with it); the
//! response writers handed out with requests count the responses in flight. A connection
//! with a response in flight is being served and is neither timed out nor evicted; that
//! includes upgraded connections and writers taken with `Request::into_writer`.

use std::collections::HashMap;
use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// Limits on client connections, for [`Server::from_listener_with_config`].
///
/// The default sets none of them, which is tiny_http's usual behaviour.
///
/// [`Server::from_listener_with_config`]: crate::Server::from_listener_with_config
#[derive(Debug, Clone, Default)]
pub struct ConnectionConfig {
    max_connections: Option<usize>,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_header_size: Option<usize>,
    nodelay: bool,
    accept_retry: Option<Duration>,
}

impl ConnectionConfig {
    /// No limits: the same as `ConnectionConfig::default()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` connections at once (at least 1). When all are taken, a new connection
    /// closes the one that has waited longest for its next request head (idle or slow);
    /// if every connection has a response in flight, the new one is closed instead.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Time allowed for a request head: from accept for the first request of a connection,
    /// from its first byte for later ones. A head still incomplete is answered with 408 and
    /// the connection closed. Also bounds the wait for the first byte of a keep-alive request
    /// when no idle timeout is set.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = Some(timeout);
        self
    }

    /// Time a keep-alive connection may wait for the first byte of its next request after
    /// the previous response was written; then it is closed without an answer.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Most bytes of a request head (request line and headers); a longer head is answered
    /// with 431 and the connection closed.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = Some(bytes);
        self
    }

    /// Sets `TCP_NODELAY` on accepted TCP connections, so that the end of a response is not
    /// held back by Nagle's algorithm until the client's delayed ACK (about 40 ms per response
    /// on a keep-alive connection). Responses given to `Request::respond` with a known length
    /// of up to 64 KiB are then written in one piece, headers and body together.
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Keeps accepting after an accept error (such as running out of file descriptors),
    /// pausing `backoff` after each, instead of ending the accept loop and reporting the
    /// error through `recv`. Errors that mean the listener itself is unusable still end it.
    pub fn retry_accept_errors(mut self, backoff: Duration) -> Self {
        self.accept_retry = Some(backoff);
        self
    }

    pub(crate) fn nodelay_enabled(&self) -> bool {
        self.nodelay
    }

    pub(crate) fn accept_retry(&self) -> Option<Duration> {
        self.accept_retry
    }

    pub(crate) fn max_head(&self) -> Option<usize> {
        self.max_header_size
    }

    pub(crate) fn single_write_limit(&self) -> usize {
        if self.nodelay {
            64 * 1024
        } else {
            0
        }
    }

    fn has_timeouts(&self) -> bool {
        self.header_timeout.is_some() || self.idle_timeout.is_some()
    }

    /// Whether connections need to be registered at all.
    pub(crate) fn tracks_connections(&self) -> bool {
        self.max_connections.is_some() || self.has_timeouts()
    }

    /// How often a waiting connection looks at its deadline while another response of the
    /// same connection is still in flight, and the most a deadline can be overshot.
    fn tick(&self) -> Duration {
        let shortest = [self.header_timeout, self.idle_timeout]
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(Duration::from_secs(1));
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Every live connection of one server.
pub(crate) struct Registry {
    config: ConnectionConfig,
    tick: Duration,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    next_id: u64,
    map: HashMap<u64, Slot>,
}

struct Slot {
    /// For closing the connection when it is evicted.
    socket: Arc<Connection>,
    /// Requests handed out whose response writer is still alive.
    in_flight: usize,
    /// The newest of them is not handed out yet: its small body is being read.
    reading_body: bool,
    /// Since when nothing is in flight (accept, or the end of the last response).
    idle_since: Instant,
}

impl Slot {
    /// Being served: some response is in flight. Such a connection is never evicted and
    /// no deadline runs for it.
    fn busy(&self) -> bool {
        self.in_flight > usize::from(self.reading_body)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    pub(crate) fn new(config: ConnectionConfig) -> Arc<Registry> {
        Arc::new(Registry {
            tick: config.tick(),
            config,
            slots: Mutex::new(Slots::default()),
        })
    }

    /// Registers a newly accepted connection (`socket` is a handle to it), evicting the
    /// longest-waiting idle one if the server is full. `None`: full of busy connections.
    pub(crate) fn admit(self: &Arc<Self>, socket: Connection) -> Option<Arc<Guard>> {
        let now = Instant::now();
        let socket = Arc::new(socket);
        let mut slots = lock(&self.slots);
        if let Some(max) = self.config.max_connections {
            while slots.map.len() >= max {
                let victim = slots
                    .map
                    .iter()
                    .filter(|(_, slot)| !slot.busy())
                    .min_by_key(|(_, slot)| slot.idle_since)
                    .map(|(id, _)| *id)?;
                if let Some(slot) = slots.map.remove(&victim) {
                    log::debug!("Connection limit reached: closing the longest-waiting one");
                    let _ = slot.socket.shutdown(Shutdown::Both);
                }
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.map.insert(
            id,
            Slot {
                socket: Arc::clone(&socket),
                in_flight: 0,
                reading_body: false,
                idle_since: now,
            },
        );
        Some(Arc::new(Guard {
            registry: Arc::clone(self),
            id,
            socket,
            accepted: now,
            armed: AtomicBool::new(false),
            restore_timeout: AtomicBool::new(false),
            head: Mutex::new(Head {
                first: true,
                started: None,
                next_check: now,
                saved_timeout: None,
                timeout: None,
            }),
        }))
    }
}

/// One registered connection, shared by its read half, its `ClientConnection` and the
/// response writers; unregistered when the last of them is gone.
pub(crate) struct Guard {
    registry: Arc<Registry>,
    id: u64,
    socket: Arc<Connection>,
    accepted: Instant,
    /// Waiting for a request head: reads check the deadline.
    armed: AtomicBool,
    /// The socket's read timeout is still the one set for a head.
    restore_timeout: AtomicBool,
    head: Mutex<Head>,
}

/// State of the wait for the next request head; only the connection's thread touches it.
struct Head {
    /// No request read yet on this connection.
    first: bool,
    /// When the first byte of this head arrived.
    started: Option<Instant>,
    /// When to look at the deadline again.
    next_check: Instant,
    /// The socket's read timeout before the first head, restored for everything else.
    saved_timeout: Option<Option<Duration>>,
    /// The read timeout last set on the socket.
    timeout: Option<Option<Duration>>,
}

fn evicted() -> IoError {
    IoError::new(
        ErrorKind::ConnectionAborted,
        "connection closed to admit another",
    )
}

impl Guard {
    /// Starts waiting for a request head. Must be called once the previous request's body
    /// has been read, since reads of the socket from now on are for the head.
    pub(crate) fn arm(&self) -> IoResult<()> {
        if !self.registry.config.has_timeouts() {
            return Ok(());
        }
        let mut head = lock(&self.head);
        head.started = None;
        if head.saved_timeout.is_none() {
            let timeout = self.socket.read_timeout()?;
            head.saved_timeout = Some(timeout);
            head.timeout = Some(timeout);
        }
        self.armed.store(true, Ordering::Release);
        self.check(&mut head, Instant::now())
    }

    /// The head (and any body read along with it) is complete: the request is handed out.
    /// Fails if the connection was evicted meanwhile. The socket's read timeout is restored
    /// by the next read that is not for a head, if there is one.
    pub(crate) fn disarm(&self) -> IoResult<()> {
        lock(&self.head).first = false;
        self.armed.store(false, Ordering::Release);
        match lock(&self.registry.slots).map.get_mut(&self.id) {
            Some(slot) => {
                slot.reading_body = false;
                Ok(())
            }
            None => Err(evicted()),
        }
    }

    /// Reads from the connection's read half, enforcing the deadline while armed.
    pub(crate) fn read(&self, stream: &mut dyn Read, buf: &mut [u8]) -> IoResult<usize> {
        if !self.armed.load(Ordering::Acquire) {
            if self.restore_timeout.swap(false, Ordering::AcqRel) {
                let mut head = lock(&self.head);
                let saved = head.saved_timeout.unwrap_or(None);
                self.set_timeout(&mut head, saved)?;
            }
            return stream.read(buf);
        }
        loop {
            match stream.read(buf) {
                Ok(0) => return Ok(0),
                Ok(n) => {
                    let now = Instant::now();
                    let mut head = lock(&self.head);
                    head.started.get_or_insert(now);
                    if now >= head.next_check {
                        self.check(&mut head, now)?;
                    }
                    return Ok(n);
                }
                // The read timeout set by `check` expired.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let mut head = lock(&self.head);
                    self.check(&mut head, Instant::now())?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fails once the deadline has passed (`TimedOut` if part of a head arrived, which is
    /// answered with 408; `ConnectionAborted` for an idle connection, closed silently);
    /// otherwise sets the read timeout to wake up at the next check.
    fn check(&self, head: &mut Head, now: Instant) -> IoResult<()> {
        let (busy, idle_since) = match lock(&self.registry.slots).map.get(&self.id) {
            Some(slot) => (slot.busy(), slot.idle_since),
            None => return Err(evicted()),
        };
        let deadline = if busy {
            None
        } else {
            self.deadline(head, idle_since)
        };
        if let Some(deadline) = deadline {
            if now >= deadline {
                return Err(match head.started {
                    Some(_) => {
                        IoError::new(ErrorKind::TimedOut, "request head not received in time")
                    }
                    None => IoError::new(ErrorKind::ConnectionAborted, "idle connection closed"),
                });
            }
        }
        let tick = now + self.registry.tick;
        head.next_check = deadline.map_or(tick, |d| d.min(tick));
        let wait = (head.next_check - now).max(Duration::from_millis(1));
        self.set_timeout(head, Some(wait))?;
        self.restore_timeout.store(true, Ordering::Release);
        Ok(())
    }

    /// Sets the socket's read timeout unless it is already `timeout`: while a response is in
    /// flight it is the same tick every time.
    fn set_timeout(&self, head: &mut Head, timeout: Option<Duration>) -> IoResult<()> {
        if head.timeout != Some(timeout) {
            self.socket.set_read_timeout(timeout)?;
            head.timeout = Some(timeout);
        }
        Ok(())
    }

    fn deadline(&self, head: &Head, idle_since: Instant) -> Option<Instant> {
        let config = &self.registry.config;
        match head.started {
            None if head.first => config
                .header_timeout
                .or(config.idle_timeout)
                .map(|t| idle_since + t),
            None => config
                .idle_timeout
                .or(config.header_timeout)
                .map(|t| idle_since + t),
            Some(started) => {
                let from = if head.first {
                    self.accepted
                } else {
                    started.max(idle_since)
                };
                config.header_timeout.map(|t| from + t)
            }
        }
    }

    fn response_started(&self) {
        if let Some(slot) = lock(&self.registry.slots).map.get_mut(&self.id) {
            slot.in_flight += 1;
            slot.reading_body = true;
        }
    }

    fn response_done(&self) {
        if let Some(slot) = lock(&self.registry.slots).map.get_mut(&self.id) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            if slot.in_flight == 0 {
                slot.idle_since = Instant::now();
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock(&self.registry.slots).map.remove(&self.id);
    }
}

/// A response writer that counts as in flight from its creation until it is dropped.
pub(crate) struct Tracked<W> {
    inner: W,
    guard: Option<Arc<Guard>>,
}

impl<W> Tracked<W> {
    pub(crate) fn new(inner: W, guard: Option<Arc<Guard>>) -> Self {
        if let Some(guard) = &guard {
            guard.response_started();
        }
        Tracked { inner, guard }
    }
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.inner.flush()
    }
}

impl<W> Drop for Tracked<W> {
    fn drop(&mut self) {
        if let Some(guard) = &self.guard {
            guard.response_done();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionConfig;
    use crate::{Response, Server};
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    fn server(config: ConnectionConfig) -> (Server, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (
            Server::from_listener_with_config(listener, None, config).unwrap(),
            addr,
        )
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
    }

    /// Everything the server sends until it closes; panics if it stays open for 10 s.
    fn read_to_close(client: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let mut buf = [0; 1024];
        loop {
            match client.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&answer).into_owned(),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return String::from_utf8_lossy(&answer).into_owned()
                }
                Err(e) => panic!("connection still open ({}) after {:?}", e, answer),
            }
        }
    }

    /// True if the server neither answers nor closes within `wait`.
    fn stays_open(client: &mut TcpStream, wait: Duration) -> bool {
        client.set_read_timeout(Some(wait)).unwrap();
        let open = matches!(
            client.read(&mut [0; 16]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
        );
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        open
    }

    fn next_request(server: &Server) -> crate::Request {
        match server.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(request)) => request,
            other => panic!("no request within 10 s: {:?}", other.map(|_| ())),
        }
    }

    fn respond_ok(server: &Server) {
        let request = next_request(server);
        request.respond(Response::from_string("ok")).unwrap();
    }

    #[test]
    fn idle_and_slow_heads_are_closed() {
        let (_server, addr) =
            server(ConnectionConfig::new().header_timeout(Duration::from_millis(300)));
        let mut idle = connect(addr);
        let mut slow = connect(addr);
        let mut writer = slow.try_clone().unwrap();
        let dribble = thread::spawn(move || {
            for byte in b"GET / HTTP/1.1\r\nX-Slow: "
                .iter()
                .chain([b'a'; 200].iter())
            {
                if writer.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        // A small body is read along with the head, under the same deadline.
        let mut slow_body = connect(addr);
        slow_body
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
            .unwrap();
        let mut writer = slow_body.try_clone().unwrap();
        let body_dribble = thread::spawn(move || {
            for _ in 0..100 {
                if writer.write_all(b"a").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        assert_eq!(read_to_close(&mut idle), "");
        assert!(read_to_close(&mut slow).starts_with("HTTP/1.1 408"));
        assert!(read_to_close(&mut slow_body).starts_with("HTTP/1.1 408"));
        dribble.join().unwrap();
        body_dribble.join().unwrap();
    }

    #[test]
    fn idle_keep_alive_connections_are_closed_after_a_response() {
        let (server, addr) = server(
            ConnectionConfig::new()
                .header_timeout(Duration::from_secs(60))
                .idle_timeout(Duration::from_millis(200)),
        );
        let mut client = connect(addr);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        respond_ok(&server);
        let answer = read_to_close(&mut client);
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"));
    }

    #[test]
    fn requests_being_answered_and_streams_are_not_timed_out() {
        let (server, addr) = server(
            ConnectionConfig::new()
                .header_timeout(Duration::from_millis(100))
                .idle_timeout(Duration::from_millis(100)),
        );
        let mut client = connect(addr);
        client.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
        let request = next_request(&server);
        thread::sleep(Duration::from_millis(500));
        request.respond(Response::from_string("late")).unwrap();
        client.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
        let mut stream = next_request(&server).into_writer();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .unwrap();
        for line in 0..5 {
            thread::sleep(Duration::from_millis(100));
            writeln!(stream, "line {line}").unwrap();
            stream.flush().unwrap();
        }
        drop(stream);
        let answer = read_to_close(&mut client);
        assert!(answer.contains("late"), "{}", answer);
        assert!(answer.ends_with("line 4\n"), "{}", answer);
    }

    #[test]
    fn request_bodies_are_read_without_the_head_deadlines() {
        let (server, addr) = server(
            ConnectionConfig::new()
                .header_timeout(Duration::from_millis(100))
                .idle_timeout(Duration::from_millis(100)),
        );
        let mut client = connect(addr);
        client
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 4000\r\n\r\n")
            .unwrap();
        client.write_all(&[b'a'; 2000]).unwrap();
        let mut request = next_request(&server);
        let reader = thread::spawn(move || {
            let mut body = Vec::new();
            let read = request.as_reader().read_to_end(&mut body);
            request.respond(Response::from_string("ok")).unwrap();
            read.map(|_| body.len())
        });
        // The body pauses longer than any head deadline.
        thread::sleep(Duration::from_millis(500));
        client.write_all(&[b'b'; 2000]).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 4000);
        let mut buf = [0; 256];
        let n = client.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }

    #[test]
    fn a_full_server_closes_the_longest_waiting_connection() {
        let (server, addr) = server(ConnectionConfig::new().max_connections(2));
        let mut oldest = connect(addr);
        let mut newer = connect(addr);
        let mut client = connect(addr);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        respond_ok(&server);
        let mut buf = [0; 256];
        let n = client.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        assert_eq!(read_to_close(&mut oldest), "");
        assert!(stays_open(&mut newer, Duration::from_millis(300)));
    }

    #[test]
    fn connections_being_answered_are_never_evicted() {
        let (server, addr) = server(ConnectionConfig::new().max_connections(1));
        let mut busy = connect(addr);
        busy.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let request = next_request(&server);
        let mut refused = connect(addr);
        assert_eq!(read_to_close(&mut refused), "");
        request.respond(Response::from_string("ok")).unwrap();
        let mut buf = [0; 256];
        let n = busy.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }

    #[test]
    fn an_oversized_head_is_refused() {
        let (_server, addr) = server(ConnectionConfig::new().max_header_size(64));
        let mut client = connect(addr);
        let header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(100));
        let _ = client.write_all(header.as_bytes());
        assert!(read_to_close(&mut client).starts_with("HTTP/1.1 431"));
    }

    #[test]
    fn the_default_sets_no_limits() {
        let (server, addr) = server(ConnectionConfig::default());
        let mut idle = connect(addr);
        let mut client = connect(addr);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        respond_ok(&server);
        assert!(stays_open(&mut idle, Duration::from_millis(300)));
        let mut buf = [0; 256];
        let n = client.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        assert!(stays_open(&mut client, Duration::from_millis(300)));
    }
}
