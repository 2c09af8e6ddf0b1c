//! The process: arguments, logging, the allocator's arenas; then the service (`agent`) or a
//! subcommand (`check`).

use std::process::ExitCode;

use prometheus_agent::config::{self, Config, EXIT_CONFIG, ProcessEnv};
use prometheus_agent::http::routes;
use prometheus_agent::{agent, check, cli};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help" | "help") => {
            cli::print(&format!("{}{}", config::HELP, routes::help()));
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            cli::print(&format!("prometheus-agent {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Some("check") => {
            init_logging();
            return match Config::from_env(&ProcessEnv) {
                Ok(config) => check::run(&config),
                Err(e) => agent::fail_config(&e),
            };
        }
        Some(other) => {
            eprintln!("prometheus-agent: unknown argument {other:?}; see --help");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    init_logging();
    limit_malloc_arenas();
    let config = match Config::from_env(&ProcessEnv) {
        Ok(config) => config,
        Err(e) => return agent::fail_config(&e),
    };
    match agent::start(&config) {
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
