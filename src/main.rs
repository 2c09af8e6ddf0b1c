//! Wiring: configuration, the poller thread, the HTTP thread, and signal handling.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use log::{error, info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use prometheus_agent::config::{self, Config, ProcessEnv};
use prometheus_agent::poller::{self, Poller};
use prometheus_agent::prometheus::Client;
use prometheus_agent::queries::{QuerySet, TableKind};
use prometheus_agent::server::{self, App};
use prometheus_agent::status::Status;
use prometheus_agent::streams::Streams;
use prometheus_agent::table::Table;

/// Exit code for invalid configuration or usage.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help" | "help") => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("prometheus-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("check") => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            return match Config::from_env(&ProcessEnv) {
                Ok(config) => prometheus_agent::check::run(&config),
                Err(e) => {
                    eprintln!("prometheus-agent: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            };
        }
        Some(other) => {
            eprintln!("prometheus-agent: unknown argument {other:?}; see --help");
            return ExitCode::from(EXIT_CONFIG);
        }
    }

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let started = (|| {
        let config = Config::from_env(&ProcessEnv)?;
        let queries = QuerySet::load(
            &config.namespace,
            config.window,
            config.queries_file.as_deref(),
        )?;
        let client = Client::new(&config)?;
        Ok::<_, config::ConfigError>((config, queries, client))
    })();
    let (config, queries, client) = match started {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("prometheus-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if config.namespace_source == "fallback" {
        warn!("no NAMESPACE, POD_NAMESPACE or service-account namespace: observing \"default\"");
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

    let nodes = Arc::new(Table::new(TableKind::Nodes, config.buffer_size));
    let pods = Arc::new(Table::new(TableKind::Pods, config.buffer_size));
    let status = Arc::new(Status::new(config.update_interval));
    let shutdown = Arc::new(AtomicBool::new(false));
    let streams = Streams::new(config.max_streams);

    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };

    let app = Arc::new(App {
        nodes: Arc::clone(&nodes),
        pods: Arc::clone(&pods),
        status: Arc::clone(&status),
        streams: Arc::clone(&streams),
        buffer_size: config.buffer_size,
    });
    let started = server::start(config.listen_addr, config.http, app, Arc::clone(&shutdown));
    let (_, http) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("prometheus-agent: {e} (check LISTEN_ADDR / PORT)");
            return ExitCode::FAILURE;
        }
    };

    let (stop_poller, poller_stopped) = mpsc::channel::<()>();
    let poller = Poller::new(client, queries, config.namespace.clone());
    let interval = config.update_interval;
    let tables = [Arc::clone(&nodes), Arc::clone(&pods)];
    let spawned = std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || poller::run(poller, interval, nodes, pods, status, poller_stopped));
    if let Err(e) = spawned {
        error!("cannot start the poller thread: {e}");
        return ExitCode::FAILURE;
    }

    // Block until SIGTERM/SIGINT. As PID 1 in a container nothing else would stop us.
    let signal = signals.forever().next();
    info!("received signal {signal:?}; shutting down");
    shutdown.store(true, Ordering::SeqCst);
    drop(stop_poller);
    // Streams get their close frame (1001) or final chunk; the HTTP thread notices the flag
    // within its poll period. A poller mid-query is not waited for.
    for table in &tables {
        table.close();
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while (!http.is_finished() || streams.open() > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    info!("stopped");
    ExitCode::SUCCESS
}
