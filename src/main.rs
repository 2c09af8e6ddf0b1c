//! Wiring: configuration, the poller thread, the HTTP thread, signals, and an orderly stop.

use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::info;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use prometheus_agent::config::{self, Config, EXIT_CONFIG, NamespaceSource, ProcessEnv};
use prometheus_agent::history::Past;
use prometheus_agent::identity::NodeNames;
use prometheus_agent::poller::{self, Poller};
use prometheus_agent::prometheus::{Client, QuerySource};
use prometheus_agent::queries::Queries;
use prometheus_agent::schema::PerTable;
use prometheus_agent::server::{self, App};
use prometheus_agent::status::Status;
use prometheus_agent::streams::Streams;
use prometheus_agent::table::Table;
use prometheus_agent::{check, routes};

/// How long streams get to send their close frame at shutdown (the whole stop is under 2 s).
const STOP_GRACE: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help" | "help") => {
            print!("{}{}", config::HELP, routes::help());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("prometheus-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("check") => {
            init_logging();
            return match Config::from_env(&ProcessEnv) {
                Ok(config) => check::run(&config),
                Err(e) => fail_config(&e),
            };
        }
        Some(other) => {
            eprintln!("prometheus-agent: unknown argument {other:?}; see --help");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    init_logging();
    limit_malloc_arenas();
    match start() {
        Ok(running) => running.wait_and_stop(),
        Err(code) => code,
    }
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// glibc gives threads their own malloc arenas, up to eight per core, and each keeps memory
/// its threads freed. With a thread per stream client and responders coming and going, RSS
/// creeps up by a megabyte or more over hours for nothing; two arenas are plenty for the
/// agent's few busy threads (measured in `bench/soak.py`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread is started.
    unsafe {
        mallopt(M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn fail_config(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("prometheus-agent: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// The agent once started: what an orderly stop needs.
struct Running {
    signals: Signals,
    tables: PerTable<Arc<Table>>,
    streams: Arc<Streams>,
    stop_poller: Sender<()>,
    http: server::Http,
}

/// Reads the configuration and starts the HTTP and poller threads; the exit code on failure.
fn start() -> Result<Running, ExitCode> {
    let (config, queries, client) = configure().map_err(|e| fail_config(&e))?;
    announce(&config);
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("prometheus-agent: {e}");
        ExitCode::FAILURE
    };
    // Installed before any thread starts, so no signal is missed.
    let signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| fail(&e))?;
    let source: Arc<dyn QuerySource + Send + Sync> = Arc::new(client);
    let names = Arc::new(Mutex::new(NodeNames::new()));
    let queries = Arc::new(queries);
    let tables = PerTable::new(|kind| Arc::new(Table::new(kind, config.buffer_size)));
    let status = Arc::new(Status::new(config.update_interval));
    let streams = Streams::new(config.max_streams);
    let app = Arc::new(App {
        tables: tables.clone(),
        status: Arc::clone(&status),
        streams: Arc::clone(&streams),
        past: Arc::new(Past::new(
            Arc::clone(&source),
            Arc::clone(&names),
            Arc::clone(&queries),
            &config.namespace,
        )),
        buffer_size: config.buffer_size,
        interval_ms: config.update_interval.as_millis() as i64,
    });
    let http = server::start(config.listen_addr, config.http, app)
        .map_err(|e| fail(&format!("{e} (check LISTEN_ADDR / PORT)")))?;
    let (stop_poller, stopped) = mpsc::channel::<()>();
    let poller = Poller::new(source, names, &queries, &config.namespace);
    let interval = config.update_interval;
    let poller_tables = tables.clone();
    std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || poller::run(poller, interval, poller_tables, status, stopped))
        .map_err(|e| fail(&format!("cannot start the poller thread: {e}")))?;
    Ok(Running {
        signals,
        tables,
        streams,
        stop_poller,
        http,
    })
}

fn configure() -> Result<(Config, Queries, Client), config::ConfigError> {
    let config = Config::from_env(&ProcessEnv)?;
    let queries = Queries::load(
        &config.namespace,
        config.window,
        config.queries_file.as_deref(),
    )?;
    let client = Client::new(&config)?;
    Ok((config, queries, client))
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

impl Running {
    /// Blocks until SIGTERM/SIGINT (as PID 1 in a container nothing else would stop us), then
    /// stops polling, closes streams (1001 or the final chunk) and returns within 2 s. A poller
    /// in the middle of a query is not waited for.
    fn wait_and_stop(mut self) -> ExitCode {
        let signal = self.signals.forever().next();
        info!("received signal {signal:?}; shutting down");
        self.http.stop();
        drop(self.stop_poller);
        for (_, table) in self.tables.iter() {
            table.close();
        }
        let deadline = Instant::now() + STOP_GRACE;
        while (!self.http.dispatcher.is_finished() || self.streams.open() > 0)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        info!("stopped");
        ExitCode::SUCCESS
    }
}
