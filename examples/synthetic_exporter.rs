//! Standalone synthetic exporter: the same emulated cluster the integration
//! tests use, served for a demo or a manual run against a real Prometheus.
//!
//! ```text
//! cargo run --example synthetic_exporter -- --listen 127.0.0.1:9100 --convention a
//! ```
//!
//! Scrape it with `honor_labels: true` (every series carries its own
//! `instance`, `job`, ... labels and an explicit timestamp). Runs until killed.

#[path = "../tests/support/cluster/mod.rs"]
mod cluster;

use cluster::{Convention, Exporter, NAMESPACE, Scenario};

const USAGE: &str =
    "usage: synthetic_exporter [--listen HOST:PORT] [--convention a|b] [--window SECONDS]
                          [--nodes N --pods M --other-pods K]

  --listen      address to serve /metrics on (default 127.0.0.1:9100)
  --convention  a = kube-prometheus-stack labels, Kepler <= 0.9 names (default)
                b = prometheus-community prometheus chart labels, Kepler >= 0.10 names
  --window      the agent's WINDOW in seconds, for the expected tables printed (default 10)
  --nodes       scale mode: emulate N nodes with every exporter (1-65536) instead of the
                small 3-node cluster; with --pods M pods in the experiment namespace and
                --other-pods K pods in another namespace (both default 0)";

fn main() {
    let mut listen = "127.0.0.1:9100".to_string();
    let mut convention = Convention::A;
    let mut window_secs = 10.0;
    let (mut nodes, mut pods, mut other_pods) = (None, None, None);
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
            "--convention" => {
                let text = value("--convention");
                convention = Convention::parse(&text).unwrap_or_else(|| {
                    eprintln!("unknown convention {text:?}\n{USAGE}");
                    std::process::exit(2)
                });
            }
            "--window" => {
                let text = value("--window");
                window_secs = text.parse().unwrap_or_else(|_| {
                    eprintln!("--window takes seconds, got {text:?}\n{USAGE}");
                    std::process::exit(2)
                });
            }
            "--nodes" => nodes = Some(count("--nodes", &value("--nodes"))),
            "--pods" => pods = Some(count("--pods", &value("--pods"))),
            "--other-pods" => other_pods = Some(count("--other-pods", &value("--other-pods"))),
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

    let scenario = match nodes {
        Some(nodes) if (1..=65_536).contains(&nodes) => Scenario::scaled(
            convention,
            nodes,
            pods.unwrap_or(0),
            other_pods.unwrap_or(0),
        ),
        Some(_) => {
            eprintln!("--nodes takes 1 to 65536\n{USAGE}");
            std::process::exit(2)
        }
        None if pods.is_some() || other_pods.is_some() => {
            eprintln!("--pods and --other-pods need --nodes\n{USAGE}");
            std::process::exit(2)
        }
        None => Scenario::new(convention),
    };
    let exporter = Exporter::start(&listen, scenario.clone()).unwrap_or_else(|e| {
        eprintln!("cannot serve on {listen}: {e}");
        std::process::exit(1)
    });

    println!(
        "synthetic exporter serving http://{}/metrics",
        exporter.addr()
    );
    println!("label convention {}", convention.describe());
    if nodes.is_some() {
        print_summary(&scenario, window_secs);
    } else {
        print_listing(&scenario, window_secs);
    }
    println!("Prometheus scrape job: honor_labels: true, scrape_interval: 1s");

    loop {
        std::thread::park();
    }
}

/// The small cluster: every node and pod, and the expected tables.
fn print_listing(scenario: &Scenario, window_secs: f64) {
    let (nodes, pods) = scenario.truth_csv(window_secs, NAMESPACE);
    println!("emulated nodes:");
    for node in &scenario.nodes {
        println!("  {} ({})", node.name, node.ip);
    }
    println!("emulated pods:");
    for pod in &scenario.pods {
        println!("  {}/{} on {}", pod.namespace, pod.name, pod.node);
    }
    println!(
        "expected agent tables (NAMESPACE={NAMESPACE}, WINDOW={window_secs}s, once Prometheus \
         has scraped for a full window; timestamps left out):"
    );
    println!("{nodes}\n{pods}");
}

/// A scaled cluster is too large to list: its size and the rows per cycle.
fn print_summary(scenario: &Scenario, window_secs: f64) {
    let in_namespace = scenario.expected_pods(NAMESPACE).len();
    println!(
        "scale mode: {} nodes, {} pods ({in_namespace} in {NAMESPACE}, {} elsewhere), {} series",
        scenario.nodes.len(),
        scenario.pods.len(),
        scenario.pods.len() - in_namespace,
        scenario.exposition().len()
    );
    println!(
        "expected rows per cycle (NAMESPACE={NAMESPACE}): {} node rows, {in_namespace} pod rows",
        scenario.expected_nodes(window_secs).len()
    );
}

fn count(flag: &str, text: &str) -> usize {
    text.parse().unwrap_or_else(|_| {
        eprintln!("{flag} takes a count, got {text:?}\n{USAGE}");
        std::process::exit(2)
    })
}
