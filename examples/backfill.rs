//! Gives a Prometheus data directory a past of the synthetic cluster: the exporter's
//! expositions every `--interval` seconds over the last `--span` seconds, written as TSDB
//! blocks with promtool. With `--serve`, then serves the exporter with the same counters
//! (same `t0`) so that a Prometheus scraping it continues the series.
//!
//! ```text
//! cargo run --release --example backfill -- --data DIR --span 3600 [--interval 1] \
//!     [--convention a|b] [--nodes N --pods M --other-pods K] [--serve 127.0.0.1:9100]
//! ```
//!
//! Without `--nodes`, the small 3-node cluster of the tests and the demo; with it, the large
//! generated cluster of `synthetic_exporter --nodes` (`Scenario::scaled`). Used by
//! `bench/history-export.sh` and `bench/quality.py`.
//!
//! Prints `FROM_MS=… TO_MS=… SAMPLES=…` (shell syntax) once the blocks are written.

#[path = "../tests/support/backfill.rs"]
mod backfill;
#[path = "../tests/support/cluster/mod.rs"]
mod cluster;

use std::path::PathBuf;
use std::time::Instant;

use backfill::{Backfill, create_blocks};
use cluster::{Convention, Exporter, Scenario, now_ms};

const USAGE: &str = "usage: backfill --data DIR --span SECONDS [--interval SECONDS] \
[--convention a|b] [--nodes N [--pods M] [--other-pods K]] [--serve HOST:PORT]

  --data        Prometheus data directory (--storage.tsdb.path) to write blocks into
  --span        seconds of past, ending at the current whole second
  --interval    seconds between two expositions (default 1)
  --convention  label convention of the emulated cluster (default a)
  --nodes       the large generated cluster with N nodes (1-65536), every exporter on each,
                instead of the small 3-node one; --pods M pods in the experiment
                namespace and --other-pods K in another one (both default 0)
  --serve       afterwards, serve the exporter on this address until killed";

fn fail(message: &str) -> ! {
    eprintln!("{message}\n{USAGE}");
    std::process::exit(2)
}

fn main() {
    let mut data = None;
    let mut span_secs: Option<i64> = None;
    let mut interval_secs = 1;
    let mut convention = Convention::A;
    let mut serve = None;
    let (mut nodes, mut pods, mut other_pods) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
        };
        let count = |text: String| {
            text.parse::<usize>()
                .unwrap_or_else(|_| fail(&format!("expected a count, got {text:?}")))
        };
        let seconds = |text: String| {
            text.parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .unwrap_or_else(|| fail(&format!("expected whole seconds, got {text:?}")))
        };
        match arg.as_str() {
            "--data" => data = Some(PathBuf::from(value())),
            "--span" => span_secs = Some(seconds(value())),
            "--interval" => interval_secs = seconds(value()),
            "--convention" => {
                let text = value();
                convention = Convention::parse(&text)
                    .unwrap_or_else(|| fail(&format!("unknown convention {text:?}")));
            }
            "--nodes" => nodes = Some(count(value())),
            "--pods" => pods = Some(count(value())),
            "--other-pods" => other_pods = Some(count(value())),
            "--serve" => serve = Some(value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    let (Some(data), Some(span_secs)) = (data, span_secs) else {
        fail("--data and --span are required")
    };

    let scenario = match nodes {
        Some(nodes) if (1..=65_536).contains(&nodes) => Scenario::scaled(
            convention,
            nodes,
            pods.unwrap_or(0),
            other_pods.unwrap_or(0),
        ),
        Some(nodes) => fail(&format!("--nodes must be 1 to 65536, got {nodes}")),
        None if pods.is_some() || other_pods.is_some() => {
            fail("--pods and --other-pods need --nodes")
        }
        None => Scenario::new(convention),
    };
    let interval_ms = interval_secs * 1000;
    let to = now_ms().div_euclid(interval_ms) * interval_ms;
    let from = to - span_secs * 1000;
    let past = Backfill {
        t0_ms: from,
        from_ms: from,
        to_ms: to,
        interval_ms,
    };
    let scratch = data
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let started = Instant::now();
    let samples = create_blocks(&scenario, &past, &data, &scratch).unwrap_or_else(|e| {
        eprintln!("backfill failed: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "backfill: {samples} samples in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("FROM_MS={from} TO_MS={to} SAMPLES={samples}");

    let Some(listen) = serve else { return };
    let exporter = Exporter::start_at(&listen, scenario, past.t0_ms).unwrap_or_else(|e| {
        eprintln!("cannot serve on {listen}: {e}");
        std::process::exit(1)
    });
    println!("SERVING=http://{}/metrics", exporter.addr());
    loop {
        std::thread::park();
    }
}
