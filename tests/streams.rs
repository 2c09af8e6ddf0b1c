//! Live streams with real clients: `websocat` and `curl -N` capture runs to files that Python's
//! csv module and pandas must load; 32 clients get identical rows; a client that never reads
//! is cut off without disturbing the poller or the others; connections leave nothing behind;
//! `since` resumes a capture.
//!
//! Needs /usr/bin/prometheus, curl, websocat 1.x and python3 with pandas (`scripts/setup`
//! installs them).

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::cluster::Convention;
use support::prometheus::{Agent, TempDir, wait_for};
use support::stack::Stack;
use support::table::{Table, parse_rfc3339_ms};

fn websocat() -> &'static str {
    let found = Command::new("websocat")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "websocat is not installed: run scripts/setup");
    "websocat"
}

/// A capture process writing a stream to a file.
struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    /// `websocat -E URL > file`, stdin held open like a terminal's.
    fn websocat(url: &str, path: PathBuf) -> Capture {
        let child = Command::new(websocat())
            .args(["-E", url])
            .stdin(Stdio::piped())
            .stdout(fs::File::create(&path).expect("capture file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start websocat");
        Capture { child, path }
    }

    /// `curl -sN URL > file`.
    fn curl(url: &str, path: PathBuf) -> Capture {
        let child = Command::new("curl")
            .args(["-sN", url])
            .stdout(fs::File::create(&path).expect("capture file"))
            .spawn()
            .expect("cannot start curl");
        Capture { child, path }
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.child.try_wait().ok().flatten())
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the Python loader on a capture; returns the number of rows it read.
fn python_check(table: &str, path: &Path) -> usize {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_capture.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(table)
        .arg(path)
        .output()
        .expect("cannot run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}: {stdout}{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("summary JSON");
    summary["rows"].as_u64().expect("rows") as usize
}

/// A figure from `/agent/metrics`.
fn figure(agent: &Agent, name: &str) -> f64 {
    agent.figure(name)
}

fn wait_figure(agent: &Agent, name: &str, want: f64) {
    wait_for(Duration::from_secs(60), || {
        (figure(agent, name) == want).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{name} never reached {want} (is {}):\n{}",
            figure(agent, name),
            agent.log()
        )
    });
}

fn wait_rows(agent: &Agent, path: &str, rows: usize) -> Table {
    wait_for(Duration::from_secs(60), || {
        let table = Table::parse(&agent.get(path).ok()?).ok()?;
        (table.rows.len() >= rows).then_some(table)
    })
    .unwrap_or_else(|| panic!("{path} never had {rows} rows:\n{}", agent.log()))
}

/// The capture must hold exactly the downloaded rows, then only newer cycles, in order: at
/// most those the agent could finish between the download and its exit (`newer_cycles`).
fn assert_capture_matches(capture: &Table, download: &Table, max_extra: usize, what: &str) {
    assert_eq!(capture.header, download.header, "{what}: header");
    let n = download.rows.len();
    assert!(
        capture.rows.len() >= n,
        "{what}: {} < {n} rows",
        capture.rows.len()
    );
    assert_eq!(capture.rows[..n], download.rows[..], "{what}: rows differ");
    let at = download.column("collection_time").expect("collection_time");
    let newest = download.rows.last().map(|r| r[at].as_str()).unwrap_or("");
    let extra: Vec<&str> = capture.rows[n..].iter().map(|r| r[at].as_str()).collect();
    assert!(
        extra.windows(2).all(|w| w[0] <= w[1]) && extra.iter().all(|t| *t > newest),
        "{what}: rows after the download are not newer cycles in order: {extra:?}"
    );
    let cycles: std::collections::BTreeSet<&str> = extra.into_iter().collect();
    assert!(
        cycles.len() <= max_extra,
        "{what}: {} extra cycles, at most {max_extra} possible",
        cycles.len()
    );
}

/// Cycles an agent polling every `interval` can finish in `elapsed` (a busy machine delays
/// the stop, not the ticks): one in progress, and one per interval.
fn newer_cycles(elapsed: Duration, interval: Duration) -> usize {
    1 + (elapsed.as_millis() / interval.as_millis()) as usize
}

#[test]
fn websocat_and_curl_captures_are_complete_csv() {
    let stack = Stack::start(Convention::B);
    let mut agent = stack.agent("500ms", &[("BUFFER_SIZE", "1000")]);
    wait_rows(&agent, "/pods", 4);
    let ws = agent.url().replace("http://", "ws://");
    let dir = TempDir::new("captures");
    let mut captures = [
        (
            "nodes",
            Capture::websocat(&format!("{ws}/metrics"), dir.path().join("ws-nodes.csv")),
        ),
        (
            "pods",
            Capture::websocat(
                &format!("{ws}/metrics/pods"),
                dir.path().join("ws-pods.csv"),
            ),
        ),
        (
            "nodes",
            Capture::curl(
                &format!("{}/metrics", agent.url()),
                dir.path().join("curl-nodes.csv"),
            ),
        ),
        (
            "pods",
            Capture::curl(
                &format!("{}/metrics/pods", agent.url()),
                dir.path().join("curl-pods.csv"),
            ),
        ),
    ];
    wait_figure(&agent, "prometheus_agent_streams_open", 4.0);
    let start = figure(&agent, "prometheus_agent_cycles_total");
    wait_for(Duration::from_secs(30), || {
        (figure(&agent, "prometheus_agent_cycles_total") >= start + 6.0).then_some(())
    })
    .expect("cycles while streaming");
    let downloaded = Instant::now();
    let nodes = Table::parse(&agent.get("/nodes").expect("nodes")).expect("csv");
    let pods = Table::parse(&agent.get("/pods").expect("pods")).expect("csv");
    let (status, took) = agent.signal_and_wait("TERM");
    let max_extra = newer_cycles(downloaded.elapsed(), Duration::from_millis(500));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "agent exit");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");

    for (table, capture) in &mut captures {
        // websocat -E and curl end on their own when the agent closes the streams.
        let exit = capture.wait(Duration::from_secs(5));
        assert!(
            exit.is_some(),
            "{} still running after shutdown",
            capture.path.display()
        );
        let rows = python_check(table, &capture.path);
        let parsed = Table::parse(&capture.text()).expect("capture CSV");
        assert_eq!(parsed.rows.len(), rows);
        let download = if *table == "nodes" { &nodes } else { &pods };
        assert_capture_matches(
            &parsed,
            download,
            max_extra,
            &capture.path.display().to_string(),
        );
    }
    // curl saw the final chunk: a clean end of the HTTP stream.
    for (_, capture) in &mut captures[2..] {
        let status = capture.wait(Duration::from_secs(1)).expect("curl exited");
        assert!(status.success(), "curl exit {status}");
    }
}

#[test]
fn thirty_two_clients_get_identical_rows_and_the_next_gets_503() {
    let stack = Stack::start(Convention::B);
    let mut agent = stack.agent("500ms", &[("BUFFER_SIZE", "1000")]);
    wait_rows(&agent, "/pods", 4);
    let url = format!("{}/metrics/pods", agent.url().replace("http://", "ws://"));
    let dir = TempDir::new("clients");
    let mut clients: Vec<Capture> = (0..32)
        .map(|i| Capture::websocat(&url, dir.path().join(format!("client-{i}.csv"))))
        .collect();
    wait_figure(&agent, "prometheus_agent_streams_open", 32.0);

    let (code, _, _) = {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{}/metrics", agent.url()),
            ])
            .output()
            .expect("curl");
        (String::from_utf8_lossy(&out.stdout).to_string(), (), ())
    };
    assert_eq!(code, "503", "stream 33 over HTTP");
    let refused = Command::new(websocat())
        .args(["-E", &url])
        .stdin(Stdio::piped())
        .output()
        .expect("websocat");
    assert!(
        !refused.status.success(),
        "stream 33 over WebSocket was accepted"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("503"));

    let start = figure(&agent, "prometheus_agent_cycles_total");
    wait_for(Duration::from_secs(30), || {
        (figure(&agent, "prometheus_agent_cycles_total") >= start + 4.0).then_some(())
    })
    .expect("cycles while streaming");
    let (status, _) = agent.signal_and_wait("TERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let first = {
        let c = &mut clients[0];
        c.wait(Duration::from_secs(5)).expect("client 0 exited");
        c.text()
    };
    let rows = python_check("pods", &clients[0].path);
    assert!(rows >= 4 * 6, "only {rows} rows");
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        assert!(
            client.wait(Duration::from_secs(5)).is_some(),
            "client {i} still running"
        );
        assert_eq!(client.text(), first, "client {i} differs from client 0");
    }
}

/// A minimal WebSocket client that reads raw frames (the agent never masks).
struct RawWebSocket {
    stream: TcpStream,
}

impl RawWebSocket {
    fn connect(agent: &Agent, path: &str) -> RawWebSocket {
        Self::connect_with_buffer(agent, path, None)
    }

    /// Connects with a given receive buffer (small: the client's window fills at once).
    fn connect_with_buffer(
        agent: &Agent,
        path: &str,
        receive_buffer: Option<usize>,
    ) -> RawWebSocket {
        let addr = agent.url().trim_start_matches("http://").to_string();
        let target: std::net::SocketAddr = addr.parse().expect("agent address");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket.connect(&target.into()).expect("connect");
        let mut stream: TcpStream = socket.into();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("handshake");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("handshake answer");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        RawWebSocket { stream }
    }

    /// (opcode, payload) of the next frame.
    fn frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        self.stream.set_read_timeout(Some(timeout)).ok()?;
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0] & 0x0f, payload))
    }
}

#[test]
fn websocket_messages_pings_and_close_1001() {
    let stack = Stack::start(Convention::B);
    // Cycles 20 s apart: rows arrive rarely, pings every 10 s in between.
    let mut agent = stack.agent("20s", &[]);
    let nodes = wait_rows(&agent, "/nodes", 1);
    let mut ws = RawWebSocket::connect(&agent, "/metrics");
    let (op, header) = ws.frame(Duration::from_secs(5)).expect("header message");
    assert_eq!(op, 1, "text message");
    assert_eq!(
        String::from_utf8_lossy(&header),
        format!("{}\n", nodes.header.join(","))
    );
    // One CSV record per message, each ending in a newline.
    for _ in &nodes.rows {
        let (op, row) = ws.frame(Duration::from_secs(5)).expect("row message");
        assert_eq!(op, 1);
        let text = String::from_utf8_lossy(&row);
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
    }
    // The agent pings to keep port-forwards open, whether or not rows arrive in between.
    let started = Instant::now();
    loop {
        let (op, _) = ws.frame(Duration::from_secs(25)).expect("a ping");
        if op == 9 {
            break;
        }
        assert_eq!(op, 1, "only rows before the ping");
    }
    assert!(started.elapsed() <= Duration::from_secs(21));
    let (status, _) = agent.signal_and_wait("TERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let (op, payload) = ws.frame(Duration::from_secs(5)).expect("close frame");
    assert_eq!(op, 8, "close");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
}

/// A `QUERIES_FILE` giving one node row per series of the exporter: cycles of a few hundred
/// long rows, which fill a socket quickly. Returns the file's path.
fn big_rows_queries(dir: &TempDir) -> String {
    let path = dir.path().join("queries.json");
    fs::write(
        &path,
        r#"{"nodes": {"cpu_usage": "label_join({__name__=~\"node_.*|container_.*|kepler_.*|scaph_.*|kube_.*\"}, \"node\", \"/\", \"__name__\", \"instance\", \"cpu\", \"mode\", \"device\", \"pod\", \"container\", \"zone\", \"pid\", \"exe\")"}}"#,
    )
    .expect("queries");
    path.to_string_lossy().into_owned()
}

fn count_entries(dir: String) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The agent's open files, less its connections to the query engine: its client keeps up
/// to two idle ones, as many as ever ran at once (a scrape of `/agent/metrics` may ask while
/// the poller does), so their number is not the streams' doing.
fn files_but_engine_connections(pid: u32, engine_port: u16) -> usize {
    let mut to_engine = std::collections::HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields.get(2).and_then(|a| a.rsplit(':').next());
            if remote_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(engine_port) {
                to_engine.extend(fields.get(9).map(|inode| format!("socket:[{inode}]")));
            }
        }
    }
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| !to_engine.contains(&target.to_string_lossy().into_owned()))
        .count()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("engine URL with a port")
}

/// The largest number of ticks one overrun skipped, by the agent's log, from line `from` on.
fn longest_stall(agent: &Agent, from: usize) -> u64 {
    agent
        .full_log()
        .lines()
        .skip(from)
        .filter_map(|l| l.split("skipping ").nth(1)?.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_client_that_never_reads_is_cut_off_and_others_stay_on_schedule() {
    const INTERVAL_MS: f64 = 200.0;
    let stack = Stack::start(Convention::B);
    let dir = TempDir::new("big-rows");
    let queries = big_rows_queries(&dir);
    let env = [
        ("QUERIES_FILE", queries.as_str()),
        ("BUFFER_SIZE", "100000"),
    ];
    let agent = stack.agent("200ms", &env);
    // Its twin, with no stuck client: the ticks a busy machine alone makes the poller skip.
    let twin = stack.agent("200ms", &env);
    wait_rows(&agent, "/nodes", 100);
    let url = agent.url().replace("http://", "ws://");
    let mut reader = Capture::websocat(&format!("{url}/metrics"), dir.path().join("reader.csv"));
    let _stuck = RawWebSocket::connect_with_buffer(&agent, "/metrics?size=0", Some(4096));
    wait_figure(&agent, "prometheus_agent_streams_open", 2.0);
    let ticks = |a: &Agent| figure(a, "prometheus_agent_ticks_missed_total");
    let (before, twin_before) = (ticks(&agent), ticks(&twin));
    let log_from = agent.full_log().lines().count();
    let stuck_at = std::time::Instant::now();

    wait_figure(&agent, "prometheus_agent_stream_clients_dropped_total", 1.0);
    wait_figure(&agent, "prometheus_agent_streams_open", 1.0);
    let held = stuck_at.elapsed();
    assert!(agent.full_log().contains("too slow"), "{}", agent.log());
    // The poller never waited for the stuck client: waiting would have cost it about as
    // many ticks as the client was held (at least its 10 s without progress), in one stall.
    // It skipped no more than its twin did on the same machine meanwhile, give or take a
    // second's worth.
    let (missed, twin_missed) = (ticks(&agent) - before, ticks(&twin) - twin_before);
    let stall = longest_stall(&agent, log_from);
    let held_ticks = held.as_secs_f64() * 1000.0 / INTERVAL_MS;
    assert!(
        missed <= twin_missed + 5.0 && (stall as f64) < held_ticks / 4.0,
        "with a client stuck for {held:?} ({held_ticks:.0} ticks) the poller skipped {missed} \
         ticks, {stall} at most in one stall; its twin skipped {twin_missed}\n{}",
        agent.log()
    );

    let downloaded = Instant::now();
    let download = Table::parse(&agent.get("/nodes").expect("nodes")).expect("csv");
    let (status, _) = {
        let mut agent = agent;
        agent.signal_and_wait("TERM")
    };
    let max_extra = newer_cycles(
        downloaded.elapsed(),
        Duration::from_millis(INTERVAL_MS as u64),
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    reader.wait(Duration::from_secs(5)).expect("reader exited");
    let captured = Table::parse(&reader.text()).expect("reader CSV");
    assert_capture_matches(&captured, &download, max_extra, "reading client");
}

#[test]
fn connections_and_disconnections_leave_nothing_behind() {
    let stack = Stack::start(Convention::B);
    let agent = stack.agent("200ms", &[]);
    wait_rows(&agent, "/nodes", 3);
    let pid = agent.pid();
    let engine_port = port_of(stack.server.url());
    let threads = || count_entries(format!("/proc/{pid}/task"));
    let fds = || files_but_engine_connections(pid, engine_port);
    // Settle tiny_http's pool, then take the baseline.
    for _ in 0..3 {
        agent.get("/livez").expect("livez");
    }
    std::thread::sleep(Duration::from_secs(6));
    let (base_threads, base_fds) = (threads(), fds());

    let addr = agent.url().trim_start_matches("http://").to_string();
    for i in 0..200 {
        // A person reconnecting, not a flood: MAX_STREAMS is not what is tested here.
        std::thread::sleep(Duration::from_millis(40));
        if i % 2 == 0 {
            let mut ws = RawWebSocket::connect(&agent, "/metrics/pods?size=1");
            ws.frame(Duration::from_secs(5)).expect("header");
        } else {
            let mut s = TcpStream::connect(&addr).expect("connect");
            write!(s, "GET /metrics?size=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
            let mut buf = [0u8; 256];
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let n = s.read(&mut buf).expect("chunked answer");
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        }
    }
    wait_figure(&agent, "prometheus_agent_streams_open", 0.0);
    // Without requests meanwhile: each one keeps a responder thread warm for a few seconds.
    let settled = wait_for(Duration::from_secs(60), || {
        (threads() <= base_threads && fds() <= base_fds).then_some(())
    });
    assert!(
        settled.is_some(),
        "threads {} (baseline {base_threads}), fds {} (baseline {base_fds})",
        threads(),
        fds(),
    );
    assert_eq!(
        figure(&agent, "prometheus_agent_streams_opened_total"),
        200.0
    );
}

#[test]
fn since_resumes_a_capture_without_gaps_or_duplicates() {
    let stack = Stack::start(Convention::B);
    let mut agent = stack.agent("300ms", &[("BUFFER_SIZE", "1000")]);
    wait_rows(&agent, "/pods", 8);
    let ws = agent.url().replace("http://", "ws://");
    let dir = TempDir::new("resume");
    let mut first = Capture::websocat(&format!("{ws}/metrics/pods"), dir.path().join("part1.csv"));
    std::thread::sleep(Duration::from_secs(2));
    // The port-forward drops.
    first.kill();
    std::thread::sleep(Duration::from_millis(1500));

    // The README's recipe: drop a possibly partial last cycle, resume after the one before.
    let text = first.text();
    let mut lines: Vec<&str> = text.lines().collect();
    let time_of = |line: &str| line.split(',').nth(1).unwrap_or("").to_string();
    let last = time_of(lines.last().expect("rows captured"));
    lines.retain(|l| time_of(l) != last);
    let resume_at = time_of(lines.last().expect("a complete cycle"));
    let mut second = Capture::websocat(
        &format!("{ws}/metrics/pods?since={resume_at}"),
        dir.path().join("part2.csv"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let downloaded = Instant::now();
    let download = Table::parse(&agent.get("/pods").expect("pods")).expect("csv");
    let (status, _) = agent.signal_and_wait("TERM");
    let max_extra = newer_cycles(downloaded.elapsed(), Duration::from_millis(300));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    second
        .wait(Duration::from_secs(5))
        .expect("second capture ended");

    let part2 = second.text();
    let mut joined = lines.join("\n") + "\n";
    for line in part2.lines().skip(1) {
        joined.push_str(line);
        joined.push('\n');
    }
    let path = dir.path().join("run.csv");
    fs::write(&path, &joined).expect("write run");
    python_check("pods", &path);
    let run = Table::parse(&joined).expect("joined CSV");
    assert_capture_matches(&run, &download, max_extra, "resumed capture");
    let at = run.column("collection_time").expect("collection_time");
    assert!(parse_rfc3339_ms(&run.rows[0][at]).is_some());
}

#[test]
fn a_client_that_falls_behind_gets_close_1008() {
    let stack = Stack::start(Convention::B);
    let dir = TempDir::new("slow-reader");
    let queries = big_rows_queries(&dir);
    let agent = stack.agent("200ms", &[("QUERIES_FILE", &queries)]);
    wait_rows(&agent, "/nodes", 100);
    // Reads, but far slower than rows are produced: its queue grows past the bound while
    // every single write still completes.
    let mut slow = RawWebSocket::connect_with_buffer(&agent, "/metrics?size=0", Some(4096));
    let deadline = Instant::now() + Duration::from_secs(90);
    let close = loop {
        assert!(Instant::now() < deadline, "never closed:\n{}", agent.log());
        match slow.frame(Duration::from_secs(20)) {
            Some((8, payload)) => break payload,
            Some(_) => std::thread::sleep(Duration::from_millis(4)),
            None => panic!("connection ended without a close frame:\n{}", agent.log()),
        }
    };
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1008);
    assert!(String::from_utf8_lossy(&close[2..]).contains("too slow"));
    assert_eq!(
        figure(&agent, "prometheus_agent_stream_clients_dropped_total"),
        1.0
    );
}
