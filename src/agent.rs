//! Start-up wiring: the configuration becomes an evaluator (shared by the service and
//! `check`), then, for the service, the buffers, the poller thread and the HTTP server; and
//! an orderly stop on SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use log::info;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::buffer::Buffer;
use crate::config::{Config, ConfigError, EXIT_CONFIG, NamespaceSource};
use crate::eval::Evaluator;
use crate::eval::poller::Poller;
use crate::http::slots::{MAX_CONCURRENT, Slots};
use crate::http::{self, App};
use crate::marks::Marks;
use crate::prometheus::Client;
use crate::status::Status;
use crate::tables::queries::Queries;
use crate::tables::schema::PerTable;
use crate::time::{Grid, Millis};

/// How long streams get to send their close frame at shutdown (the whole stop is under 2 s).
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// The evaluator for `config`: its queries (with `QUERIES_FILE`) and its Prometheus client.
pub fn evaluator(config: &Config) -> Result<Evaluator, ConfigError> {
    let queries = Queries::load(
        &config.namespace,
        config.window,
        config.queries_file.as_deref(),
    )?;
    let client = Client::new(config)?;
    Ok(Evaluator::new(
        Arc::new(client),
        queries,
        &config.namespace,
        Grid::new(config.update_interval),
        config.window.as_millis() as Millis,
    ))
}

/// The service once started: what an orderly stop needs.
pub struct Running {
    signals: Signals,
    app: Arc<App>,
    stop_poller: Sender<()>,
    http: http::Http,
}

/// Why the service did not start, as an exit code: 2 for bad configuration, 1 otherwise.
pub fn start(config: &Config) -> Result<Running, ExitCode> {
    let evaluator = Arc::new(evaluator(config).map_err(|e| fail_config(&e))?);
    let marks = match &config.marks_file {
        Some(path) => Marks::open(path).map_err(|message| {
            fail_config(&ConfigError {
                variable: "MARKS_FILE",
                message,
            })
        })?,
        None => Marks::in_memory(),
    };
    announce(config);
    // Installed before any thread starts, so no signal is missed.
    let signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| fail(&e))?;
    let app = Arc::new(App {
        buffers: PerTable::new(|kind| Arc::new(Buffer::new(kind, config.buffer_size))),
        status: Arc::new(Status::new(config.update_interval)),
        evaluator,
        streams: http::streams::Streams::new(config.max_streams),
        past: Slots::new(MAX_CONCURRENT),
        buffer_size: config.buffer_size,
        max_node_watts: config.max_node_watts,
        demand: Arc::default(),
        marks: Arc::new(marks),
    });
    let http = http::start(config.listen_addr, config.http, Arc::clone(&app))
        .map_err(|e| fail(&format!("{e} (check LISTEN_ADDR / PORT)")))?;
    let (stop_poller, stopped) = mpsc::channel::<()>();
    let poller = Poller {
        evaluator: Arc::clone(&app.evaluator),
        grid: app.evaluator.grid(),
        buffers: app.buffers.clone(),
        status: Arc::clone(&app.status),
        max_node_watts: config.max_node_watts,
        demand: Arc::clone(&app.demand),
    };
    std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || poller.run(stopped))
        .map_err(|e| fail(&format!("cannot start the poller thread: {e}")))?;
    Ok(Running {
        signals,
        app,
        stop_poller,
        http,
    })
}

/// Prints a configuration error; exit code 2.
pub fn fail_config(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("prometheus-agent: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("prometheus-agent: {e}");
    ExitCode::FAILURE
}

fn announce(config: &Config) {
    if config.namespace_source == NamespaceSource::Fallback {
        log::warn!(
            "no NAMESPACE, POD_NAMESPACE or service-account namespace: observing \"default\""
        );
    }
    info!(
        "prometheus-agent {} observing namespace {:?} (from {}) via {} every {:?}, window {:?}",
        env!("CARGO_PKG_VERSION"),
        config.namespace,
        config.namespace_source,
        config.prometheus_url,
        config.update_interval,
        config.window
    );
}

fn signal_name(signal: i32) -> String {
    match signal {
        SIGTERM => "SIGTERM".into(),
        SIGINT => "SIGINT".into(),
        other => format!("signal {other}"),
    }
}

impl Running {
    /// Blocks until SIGTERM/SIGINT (as PID 1 in a container nothing else would stop us), then
    /// stops polling, closes streams (1001 or the final chunk) and returns within 2 s. A poller
    /// in the middle of a query is not waited for.
    pub fn wait_and_stop(mut self) -> ExitCode {
        let signal = self.signals.forever().next();
        info!(
            "received {}; shutting down",
            signal.map_or_else(|| "a signal".into(), signal_name)
        );
        self.http.stop();
        drop(self.stop_poller);
        for (_, buffer) in self.app.buffers.iter() {
            buffer.close();
        }
        let deadline = Instant::now() + STOP_GRACE;
        while (!self.http.dispatcher.is_finished() || self.app.streams.open() > 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        info!("stopped");
        ExitCode::SUCCESS
    }
}
