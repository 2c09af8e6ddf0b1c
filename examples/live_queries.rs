//! Prints the live queries of both tables as the agent would send them, one JSON array
//! `[table, column, promql]` per line, for the benchmarks that measure what each column costs
//! Prometheus (`bench/prometheus-cost.py`).
//!
//! ```text
//! cargo run --example live_queries -- --namespace energy-lab --window 60s [--queries-file F]
//! ```
//!
//! `--queries-file` takes a `QUERIES_FILE` (its overrides apply as in the agent); a disabled
//! column is left out.

use std::path::PathBuf;

use prometheus_agent::config::duration::parse_duration;
use prometheus_agent::tables::queries::Queries;
use prometheus_agent::tables::schema::{Measure, TableKind};

const USAGE: &str =
    "usage: live_queries [--namespace NS] [--window DURATION] [--queries-file FILE]";

fn main() {
    let mut namespace = "energy-lab".to_string();
    let mut window = "60s".to_string();
    let mut file: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next().unwrap_or_else(|| {
                eprintln!("{arg} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--namespace" => namespace = value(),
            "--window" => window = value(),
            "--queries-file" => file = Some(PathBuf::from(value())),
            _ => {
                eprintln!("unknown argument {arg}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    let window = parse_duration(&window).unwrap_or_else(|e| {
        eprintln!("--window: {e}");
        std::process::exit(2)
    });
    let queries = Queries::load(&namespace, window, file.as_deref()).unwrap_or_else(|e| {
        eprintln!("{}: {}", e.variable, e.message);
        std::process::exit(2)
    });
    for kind in TableKind::ALL {
        for column in queries.table(kind, Measure::Live) {
            if let Some(promql) = &column.promql {
                let line = serde_json::json!([kind.name(), column.column, promql]);
                println!("{line}");
            }
        }
    }
}
