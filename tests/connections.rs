//! HTTP connection limits with real sockets against the agent binary, with short timeouts
//! configured: idle, keep-alive and slow-header connections are closed while probes keep
//! answering; a full connection table still answers probes by closing the connection that
//! has waited longest, and threads go back to their baseline; streams are neither timed out
//! nor evicted.
//!
//! Needs /usr/bin/prometheus, curl and websocat 1.x (`scripts/setup` installs them).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::cluster::{Convention, NAMESPACE, now_ms};
use support::prometheus::{Agent, AgentConfig, TempDir, free_port, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

/// An agent whose Prometheus is unreachable: enough for its HTTP server.
fn agent_without_prometheus(extra_env: &[(&str, &str)]) -> Agent {
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    Agent::start_with(
        &AgentConfig {
            prometheus_url: &unreachable,
            namespace: NAMESPACE,
            update_interval: "1s",
            window: "10s",
        },
        extra_env,
    )
}

fn address(agent: &Agent) -> String {
    agent.url().trim_start_matches("http://").to_string()
}

fn open(agent: &Agent) -> TcpStream {
    let stream = TcpStream::connect(address(agent)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    stream
}

/// What the agent sends until it closes the connection; `Err` if it is still open after the
/// read timeout.
fn read_until_closed(stream: &mut TcpStream) -> Result<String, String> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&received).into_owned());
            }
            Err(e) => {
                return Err(format!(
                    "still open ({e}) after {:?}",
                    String::from_utf8_lossy(&received)
                ));
            }
        }
    }
}

/// Whether the agent has closed `stream`, looking without waiting.
fn closed(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1024];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// One response on a keep-alive connection: the status line and the body.
fn exchange(stream: &mut TcpStream, path: &str) -> (String, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: agent\r\n\r\n").expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("Content-Length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("response body");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn assert_live(agent: &Agent) {
    assert_eq!(
        agent.get("/livez").as_deref(),
        Ok("ok\n"),
        "{}",
        agent.log()
    );
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn idle_keep_alive_and_slow_header_connections_are_closed() {
    let agent =
        agent_without_prometheus(&[("HTTP_HEADER_TIMEOUT", "1s"), ("HTTP_IDLE_TIMEOUT", "1s")]);
    let mut idle = open(&agent);
    let mut keep_alive = open(&agent);
    let mut slow = open(&agent);
    // A request head that never ends: one byte every 100 ms.
    let mut writer = slow.try_clone().expect("clone");
    let dribbler = std::thread::spawn(move || {
        let head = b"GET /livez HTTP/1.1\r\nHost: agent\r\nX-Slow: ";
        for byte in head.iter().chain([b'a'; 300].iter()) {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // Keep-alive works: two requests on one connection.
    assert_eq!(
        exchange(&mut keep_alive, "/livez"),
        ("HTTP/1.1 200 OK".to_string(), "ok\n".to_string())
    );
    assert_eq!(
        exchange(&mut keep_alive, "/readyz").0,
        "HTTP/1.1 503 Service Unavailable"
    );
    assert_live(&agent);

    assert_eq!(read_until_closed(&mut idle), Ok(String::new()));
    assert_eq!(read_until_closed(&mut keep_alive), Ok(String::new()));
    let answer = read_until_closed(&mut slow).expect("slow connection closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    dribbler.join().expect("dribbler");
    assert_live(&agent);
}

#[test]
fn a_full_connection_table_still_answers_probes() {
    const MAX: usize = 16;
    // Timeouts out of the way: only the cap acts.
    let agent = agent_without_prometheus(&[
        ("HTTP_MAX_CONNECTIONS", "16"),
        ("MAX_STREAMS", "4"),
        ("HTTP_HEADER_TIMEOUT", "1h"),
        ("HTTP_IDLE_TIMEOUT", "1h"),
    ]);
    let pid = agent.pid();
    // tiny_http's pool keeps 4 threads; busier ones exit after 5 s idle.
    std::thread::sleep(Duration::from_secs(6));
    let baseline = threads(pid);

    let attackers: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = open(&agent);
            if i % 2 == 1 {
                s.write_all(b"GET /livez HTTP/1.1\r\nX-Slow: a")
                    .expect("partial head");
            }
            s
        })
        .collect();
    let evicted = wait_for(Duration::from_secs(30), || {
        let n = attackers.iter().filter(|s| closed(s)).count();
        (n >= 100 - MAX).then_some(n)
    });
    assert!(
        evicted.is_some(),
        "the cap did not hold: {} of 100 closed",
        attackers.iter().filter(|s| closed(s)).count()
    );
    let during = threads(pid);
    for _ in 0..20 {
        assert_live(&agent);
    }
    assert!(
        during <= baseline + 2 * MAX,
        "{during} threads with 100 connections (baseline {baseline}, cap {MAX})"
    );

    drop(attackers);
    let settled = wait_for(Duration::from_secs(30), || {
        (threads(pid) <= baseline).then_some(())
    });
    assert!(
        settled.is_some(),
        "threads {} after the clients left (baseline {baseline})",
        threads(pid)
    );
}

/// A stream client writing what it receives to a file.
struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    fn start(program: &str, args: &[&str], path: PathBuf) -> Capture {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&path).expect("capture file"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} ({e}): run scripts/setup"));
        Capture { child, path }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Collection times (Unix ms) of the rows received so far.
    fn row_times(&self) -> Vec<i64> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let Ok(table) = Table::parse(&text) else {
            return Vec::new();
        };
        let Some(at) = table.column("collection_time") else {
            return Vec::new();
        };
        table
            .rows
            .iter()
            .filter_map(|row| parse_rfc3339_ms(row.get(at)?))
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn streams_are_neither_timed_out_nor_evicted() {
    let stack = Stack::start(Convention::A);
    let agent = stack.agent(
        "500ms",
        &[
            ("HTTP_HEADER_TIMEOUT", "1s"),
            ("HTTP_IDLE_TIMEOUT", "1s"),
            ("HTTP_MAX_CONNECTIONS", "8"),
            ("MAX_STREAMS", "4"),
        ],
    );
    let dir = TempDir::new("connections");
    let opened = now_ms();
    let ws_url = format!("ws://{}/metrics?size=0", address(&agent));
    let http_url = format!("{}/metrics/pods?size=0", agent.url());
    let mut websocket = Capture::start("websocat", &["-E", &ws_url], dir.path().join("ws.csv"));
    let mut chunked = Capture::start("curl", &["-sN", &http_url], dir.path().join("pods.csv"));
    wait_for(Duration::from_secs(10), || {
        (!websocket.row_times().is_empty() && !chunked.row_times().is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("no rows on the streams:\n{}", agent.log()));

    // Connections beyond the cap evict idle ones, never the streams.
    let idle: Vec<TcpStream> = (0..30).map(|_| open(&agent)).collect();
    assert_live(&agent);
    // Three times the timeouts.
    std::thread::sleep(Duration::from_secs(3));
    assert_live(&agent);
    let since = opened + 3000;
    let fresh = wait_for(Duration::from_secs(10), || {
        let ws = websocket
            .row_times()
            .into_iter()
            .filter(|t| *t >= since)
            .count();
        let http = chunked
            .row_times()
            .into_iter()
            .filter(|t| *t >= since)
            .count();
        (ws > 0 && http > 0).then_some(())
    });
    assert!(
        fresh.is_some() && websocket.running() && chunked.running(),
        "a stream ended or stalled (websocat running: {}, curl running: {}):\n{}",
        websocket.running(),
        chunked.running(),
        agent.log()
    );
    assert!(idle.iter().all(closed), "idle connections left open");
}
