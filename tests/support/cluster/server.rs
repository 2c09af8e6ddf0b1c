//! The exporter's HTTP endpoint: `/metrics` renders the scenario at the time of each scrape.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::exposition::Exposition;
use super::{Scenario, now_ms};

/// A running synthetic exporter; stops when dropped.
pub struct Exporter {
    addr: SocketAddr,
    t0_ms: i64,
    scrapes: Arc<Mutex<Vec<i64>>>,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Serves `scenario` on `listen` (e.g. `127.0.0.1:0`) from a background thread.
    pub fn start(listen: &str, scenario: Scenario) -> Result<Exporter, String> {
        Exporter::start_at(listen, scenario, now_ms())
    }

    /// Serves `scenario` with counters that started growing at `t0_ms`, which may be in the
    /// past: the continuation of a backfilled history (`backfill.rs`).
    pub fn start_at(listen: &str, scenario: Scenario, t0_ms: i64) -> Result<Exporter, String> {
        let server = tiny_http::Server::http(listen).map_err(|e| format!("bind {listen}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("{listen} is not an IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(Mutex::new(Vec::new()));
        let exposition = scenario.exposition();
        let mut about = format!(
            "synthetic exporter, convention {}, {} nodes, {} pods, {} series\n",
            scenario.convention.describe(),
            scenario.nodes.len(),
            scenario.pods.len(),
            exposition.len()
        );
        if let Some(schedule) = &scenario.load {
            about.push_str(&format!("load schedule: {}\n", schedule.describe()));
        }
        for fault in &scenario.faults {
            about.push_str(&format!("fault: {}\n", fault.describe()));
        }
        about.push_str("GET /metrics\n");
        let thread = {
            let (server, stop, scrapes) = (server.clone(), stop.clone(), scrapes.clone());
            std::thread::Builder::new()
                .name("synthetic-exporter".into())
                .spawn(move || serve(&server, &stop, &scrapes, &exposition, &about, t0_ms))
                .map_err(|e| format!("spawn exporter thread: {e}"))?
        };
        Ok(Exporter {
            addr,
            t0_ms,
            scrapes,
            server,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn started_ms(&self) -> i64 {
        self.t0_ms
    }

    /// The timestamps of every exposition served so far, oldest first.
    pub fn scrape_times(&self) -> Vec<i64> {
        self.scrapes.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    server: &tiny_http::Server,
    stop: &AtomicBool,
    scrapes: &Mutex<Vec<i64>>,
    exposition: &Exposition,
    about: &str,
    t0_ms: i64,
) {
    loop {
        let request = server.recv();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(request) = request else { continue };
        let path = request.url().split('?').next().unwrap_or("");
        let response = match (request.method(), path) {
            (tiny_http::Method::Get, "/metrics") => {
                let now = now_ms();
                let body = exposition.render(t0_ms, now);
                if let Ok(mut times) = scrapes.lock() {
                    times.push(now);
                }
                text_response(200, "text/plain; version=0.0.4; charset=utf-8", body)
            }
            (tiny_http::Method::Get, "/") => {
                text_response(200, "text/plain; charset=utf-8", about.to_string())
            }
            _ => text_response(404, "text/plain; charset=utf-8", "not found\n".into()),
        };
        let _ = request.respond(response);
    }
}

fn text_response(
    status: u16,
    content_type: &str,
    body: String,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("static header is valid");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}
