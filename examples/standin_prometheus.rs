//! A stand-in Prometheus answering every query with a huge, valid answer, to
//! see what the agent does with it.
//!
//! ```text
//! cargo run --release --example standin_prometheus -- --listen 127.0.0.1:9090 --series 400000
//! PROMETHEUS_URL=http://127.0.0.1:9090 NAMESPACE=energy-lab prometheus-agent
//! ```
//!
//! Runs until killed.

#[path = "../tests/support/standin.rs"]
mod standin;

use standin::{Answer, StandIn, answer_bytes};

const USAGE: &str = "usage: standin_prometheus [--listen HOST:PORT] [--series N] [--nodes N]
                          [--namespace NS] [--label-bytes N] [--points N] [--content-length]

  --listen          address to serve on (default 127.0.0.1:9090)
  --series          series in every answer (default 400000)
  --nodes           distinct node label values the series are spread over (default 200)
  --namespace       namespace label of every series (default energy-lab)
  --label-bytes     length of an extra padding label's value (default 0: none)
  --points          points per series in query_range answers (default 2)
  --content-length  send Content-Length instead of chunked encoding

Serves /api/v1/query (vector), /api/v1/query_range (matrix), /-/ready and
/api/v1/status/buildinfo; the JSON is generated while it is sent.";

fn main() {
    let mut listen = "127.0.0.1:9090".to_string();
    let mut answer = Answer::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--listen" => listen = value("--listen"),
            "--series" => answer.series = count("--series", &value("--series")),
            "--nodes" => answer.nodes = count("--nodes", &value("--nodes")).max(1),
            "--namespace" => answer.namespace = value("--namespace"),
            "--label-bytes" => answer.label_bytes = count("--label-bytes", &value("--label-bytes")),
            "--points" => answer.points = count("--points", &value("--points")),
            "--content-length" => answer.content_length = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let bytes = answer_bytes(&answer, false);
    let range_bytes = answer_bytes(&answer, true);
    let stand_in = StandIn::start(&listen, answer.clone()).unwrap_or_else(|e| {
        eprintln!("cannot serve on {listen}: {e}");
        std::process::exit(1)
    });
    println!("stand-in Prometheus serving {}", stand_in.url());
    println!(
        "every /api/v1/query answer: {} series, about {bytes} bytes ({:.1} MB); \
         every /api/v1/query_range answer: about {range_bytes} bytes; {}",
        answer.series,
        bytes as f64 / 1e6,
        if answer.content_length {
            "with Content-Length"
        } else {
            "chunked"
        }
    );
    loop {
        std::thread::park();
    }
}

fn count(flag: &str, text: &str) -> usize {
    text.parse().unwrap_or_else(|_| {
        eprintln!("{flag} takes a count, got {text:?}\n{USAGE}");
        std::process::exit(2)
    })
}
