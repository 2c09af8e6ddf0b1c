//! A stand-in Prometheus that answers every query with a huge, valid answer.
//!
//! `/api/v1/query` answers an instant vector and `/api/v1/query_range` a
//! matrix, each of [`Answer::series`] series, whatever the query. The JSON is
//! generated while it is written (a few hundred series at a time), so the
//! stand-in's own memory stays small however large the answer: 400,000
//! series are about 47 MB. Used to check that the agent bounds what it reads.

// Shared by the tests and the `standin_prometheus` example.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// The shape of every answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Series per answer.
    pub series: usize,
    /// Distinct `node` label values the series are spread over.
    pub nodes: usize,
    /// `namespace` label of every series.
    pub namespace: String,
    /// Length of an extra `padding` label's value (0: no such label).
    pub label_bytes: usize,
    /// Points per series in a `query_range` answer.
    pub points: usize,
    /// Send `Content-Length` up front instead of chunked encoding.
    pub content_length: bool,
}

impl Default for Answer {
    fn default() -> Answer {
        Answer {
            series: 400_000,
            nodes: 200,
            namespace: "energy-lab".to_string(),
            label_bytes: 0,
            points: 2,
            content_length: false,
        }
    }
}

/// Result type of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Vector,
    Matrix,
}

/// Generates one answer's JSON, a batch of series at a time.
struct Body {
    answer: Arc<Answer>,
    kind: Kind,
    /// Evaluation time (or range start), seconds with milliseconds.
    time: f64,
    /// Range step, seconds.
    step: f64,
    padding: String,
    next_series: usize,
    done: bool,
    buffer: Vec<u8>,
    position: usize,
}

/// Series generated per refill of the buffer.
const BATCH: usize = 256;

impl Body {
    fn new(answer: Arc<Answer>, kind: Kind, time: f64, step: f64) -> Body {
        let padding = "x".repeat(answer.label_bytes);
        let result_type = match kind {
            Kind::Vector => "vector",
            Kind::Matrix => "matrix",
        };
        let head = format!(
            "{{\"status\":\"success\",\"data\":{{\"resultType\":\"{result_type}\",\"result\":["
        );
        Body {
            answer,
            kind,
            time,
            step,
            padding,
            next_series: 0,
            done: false,
            buffer: head.into_bytes(),
            position: 0,
        }
    }

    /// Replaces the consumed buffer with the next batch (or the closing brackets).
    fn refill(&mut self) {
        self.buffer.clear();
        self.position = 0;
        let total = self.answer.series;
        if self.next_series >= total {
            if !self.done {
                self.buffer.extend_from_slice(b"]}}");
                self.done = true;
            }
            return;
        }
        let mut text = String::with_capacity(BATCH * (160 + self.padding.len()));
        let end = (self.next_series + BATCH).min(total);
        for i in self.next_series..end {
            if i > 0 {
                text.push(',');
            }
            self.series(&mut text, i);
        }
        self.next_series = end;
        self.buffer = text.into_bytes();
    }

    fn series(&self, out: &mut String, i: usize) {
        let node = i % self.answer.nodes.max(1);
        let _ = write!(
            out,
            "{{\"metric\":{{\"namespace\":\"{}\",\"pod\":\"app-7d4b9c-{i:06}\",\"node\":\"node-{node:05}\"",
            self.answer.namespace
        );
        if !self.padding.is_empty() {
            let _ = write!(out, ",\"padding\":\"{}\"", self.padding);
        }
        let value = (i % 100) as f64 / 4.0;
        match self.kind {
            Kind::Vector => {
                let _ = write!(out, "}},\"value\":[{},\"{value}\"]}}", self.time);
            }
            Kind::Matrix => {
                out.push_str("},\"values\":[");
                for point in 0..self.answer.points {
                    if point > 0 {
                        out.push(',');
                    }
                    let t = self.time + point as f64 * self.step;
                    let _ = write!(out, "[{t},\"{value}\"]");
                }
                out.push_str("]}");
            }
        }
    }
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.buffer.len() {
            self.refill();
        }
        let n = (self.buffer.len() - self.position).min(out.len());
        out[..n].copy_from_slice(&self.buffer[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    queries: Arc<AtomicU64>,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Serves `answer` on `listen` (e.g. `127.0.0.1:0`); each request on its own thread.
    pub fn start(listen: &str, answer: Answer) -> Result<StandIn, String> {
        let server = tiny_http::Server::http(listen).map_err(|e| format!("bind {listen}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("{listen} is not an IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicU64::new(0));
        let answer = Arc::new(answer);
        let thread = {
            let (server, stop, queries) = (server.clone(), stop.clone(), queries.clone());
            std::thread::Builder::new()
                .name("standin-prometheus".into())
                .spawn(move || {
                    while let Ok(request) = server.recv() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let (answer, queries) = (answer.clone(), queries.clone());
                        let _ = std::thread::Builder::new()
                            .name("standin-request".into())
                            .spawn(move || respond(request, &answer, &queries));
                    }
                })
                .map_err(|e| format!("spawn stand-in thread: {e}"))?
        };
        Ok(StandIn {
            addr,
            queries,
            server,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Query requests answered (or being answered) so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Size in bytes of one answer, by generating it once.
pub fn answer_bytes(answer: &Answer, range: bool) -> usize {
    let kind = if range { Kind::Matrix } else { Kind::Vector };
    answer_bytes_at(&Arc::new(answer.clone()), kind, now_secs(), 15.0)
}

fn respond(request: tiny_http::Request, answer: &Arc<Answer>, queries: &AtomicU64) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let params = form_params(query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let seconds = |name: &str| param(name).and_then(|v| v.parse::<f64>().ok());
    let kind = match path {
        "/api/v1/query" => Kind::Vector,
        "/api/v1/query_range" => Kind::Matrix,
        "/-/ready" | "/-/healthy" => {
            let _ = request.respond(json(200, "Prometheus stand-in is Ready.\n".into()));
            return;
        }
        "/api/v1/status/buildinfo" => {
            let body = r#"{"status":"success","data":{"version":"2.42.0-standin"}}"#;
            let _ = request.respond(json(200, body.into()));
            return;
        }
        _ => {
            let body = r#"{"status":"error","errorType":"not_found","error":"not found"}"#;
            let _ = request.respond(json(404, body.into()));
            return;
        }
    };
    queries.fetch_add(1, Ordering::SeqCst);
    let (time, step) = match kind {
        Kind::Vector => (seconds("time").unwrap_or_else(now_secs), 0.0),
        Kind::Matrix => (
            seconds("start").unwrap_or_else(now_secs),
            seconds("step").unwrap_or(15.0),
        ),
    };
    let length = answer
        .content_length
        .then(|| answer_bytes_at(answer, kind, time, step));
    let body = Body::new(answer.clone(), kind, time, step);
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        .expect("static header is valid");
    // Without a length tiny_http sends chunked encoding, as Prometheus does for large answers.
    let response =
        tiny_http::Response::new(tiny_http::StatusCode(200), vec![header], body, length, None);
    let _ = request.respond(response);
}

fn answer_bytes_at(answer: &Arc<Answer>, kind: Kind, time: f64, step: f64) -> usize {
    let mut body = Body::new(answer.clone(), kind, time, step);
    std::io::copy(&mut body, &mut std::io::sink()).unwrap_or(0) as usize
}

fn json(status: u16, body: String) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        .expect("static header is valid");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn form_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Now, in seconds with milliseconds as Prometheus gives them.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}
