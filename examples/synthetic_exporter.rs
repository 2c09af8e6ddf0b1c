//! Standalone synthetic exporter: the same emulated cluster the integration
//! tests use, served for a demo or a manual run against a real Prometheus.
//!
//! ```text
//! cargo run --example synthetic_exporter -- --listen 127.0.0.1:9100 --convention a \
//!     --load-schedule idle=30s,load=30s --fault gap:worker-1:kepler:20s@+60s
//! ```
//!
//! Scrape it with `honor_labels: true` (every series carries its own
//! `instance`, `job`, ... labels and an explicit timestamp). Runs until killed.

#[path = "../tests/support/cluster/mod.rs"]
mod cluster;

use cluster::{Convention, Exporter, Fault, NAMESPACE, Scenario, Schedule, now_ms, rfc3339};

const USAGE: &str =
    "usage: synthetic_exporter [--listen HOST:PORT] [--convention a|b] [--window SECONDS]
                          [--nodes N --pods M --other-pods K]
                          [--load-schedule PHASES] [--fault SPEC]...

  --listen      address to serve /metrics on (default 127.0.0.1:9100)
  --convention  a = kube-prometheus-stack labels, Kepler <= 0.9 names (default)
                b = prometheus-community prometheus chart labels, Kepler >= 0.10 names
  --window      the agent's WINDOW in seconds, for the expected tables printed (default 10)
  --nodes       scale mode: emulate N nodes with every exporter (1-65536) instead of the
                small 3-node cluster; with --pods M pods in the experiment namespace and
                --other-pods K pods in another namespace (both default 0)

  --load-schedule PHASES
                the load changes phase by phase, repeating, from the exporter's start (a
                whole second); without it the figures are constant. PHASES is
                NAME=DURATION[*FACTOR],...: idle (factor 0.25) and load (1, the figures as
                declared) need no factor, other names do (0 to 1). Each factor scales the
                busy CPU time, the traffic and the power of every node and pod.
                e.g. idle=30s,load=30s    'idle=20s,half=10s*0.5,load=20s'
  --fault SPEC  switch a fault on (repeatable). SPEC is KIND:TARGET[:SOURCE][:FOR][@AT]:
                TARGET a node, a pod or * (every node); SOURCE node-exporter, ipmi, kepler,
                scaphandre, cadvisor or kube-state-metrics (none: all of the target's);
                AT +DURATION after the exporter's start, or Unix seconds.
                  gap:worker-1:kepler:20s@+60s    series missing for 20 s
                  stop:worker-2:scaphandre@+90s   series gone from then on
                  reset:worker-1:kepler@+45s      counters restart from 0
                  jump:worker-1@+30s              Kepler package counter +1e15 J for one
                                                  sample (FOR: how long, default 1s)
                  zero:db-0:30s@+20s              Kepler power exactly 0 W while the load
                                                  goes on (no AT: from the start; no FOR:
                                                  for ever)
                  absent:worker-3:node-exporter   an exporter not installed on that node
                  estimated:worker-3              Kepler reports its estimator as power
                                                  source (kepler_node_info; convention a)";

fn main() {
    let mut listen = "127.0.0.1:9100".to_string();
    let mut convention = Convention::A;
    let mut window_secs = 10.0;
    let (mut nodes, mut pods, mut other_pods) = (None, None, None);
    let (mut schedule, mut faults) = (None, Vec::new());
    // The schedule's and the faults' clock: the start, on a whole second.
    let origin = now_ms() / 1000 * 1000;
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
            "--load-schedule" => {
                let text = value("--load-schedule");
                schedule = Some(Schedule::parse(&text, origin).unwrap_or_else(|e| {
                    eprintln!("--load-schedule: {e}\n{USAGE}");
                    std::process::exit(2)
                }));
            }
            "--fault" => {
                let text = value("--fault");
                faults.push(Fault::parse(&text, origin).unwrap_or_else(|e| {
                    eprintln!("--fault: {e}\n{USAGE}");
                    std::process::exit(2)
                }));
            }
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
    let mut scenario = match schedule {
        Some(schedule) => scenario.with_load(schedule),
        None => scenario,
    };
    let mut fault_lines = Vec::new();
    for fault in faults {
        fault_lines.push(format!("fault: {}", fault.describe()));
        let touched: Vec<String> = scenario
            .touched(&fault)
            .iter()
            .map(|t| format!("{}:{}.{}", t.table, t.row, t.column))
            .collect();
        if !touched.is_empty() {
            fault_lines.push(format!("  touches {}", touched.join(" ")));
        }
        scenario = scenario.with_fault(fault).unwrap_or_else(|e| {
            eprintln!("--fault: {e}");
            std::process::exit(2)
        });
    }
    let exporter = Exporter::start_at(&listen, scenario.clone(), origin).unwrap_or_else(|e| {
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
    print_schedule(&scenario, window_secs);
    for line in &fault_lines {
        println!("{line}");
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
    if scenario.load.is_some() {
        // The truth changes with the phase: printed per phase with the schedule.
        return;
    }
    println!(
        "expected agent tables (NAMESPACE={NAMESPACE}, WINDOW={window_secs}s, once Prometheus \
         has scraped for a full window; timestamps left out):"
    );
    println!("{nodes}\n{pods}");
}

/// The load schedule's next phases, in UTC like the agent's timestamps, and the truth of
/// each phase level.
fn print_schedule(scenario: &Scenario, window_secs: f64) {
    if let Some(schedule) = &scenario.load {
        println!("load schedule: {}", schedule.describe());
        let now = now_ms();
        for span in schedule.spans(now, now + 2 * schedule.period_ms()) {
            println!(
                "  {:<8} {} to {}",
                span.phase.name,
                rfc3339(span.from_ms),
                rfc3339(span.until_ms)
            );
        }
        let mut shown = Vec::new();
        for phase in &schedule.phases {
            if shown.contains(&phase.factor) || scenario.nodes.len() > 3 {
                continue;
            }
            shown.push(phase.factor);
            let (nodes, pods) = scenario
                .at_level(phase.factor)
                .truth_csv(window_secs, NAMESPACE);
            println!(
                "expected agent tables during {} (factor {}) for a WINDOW inside the phase:",
                phase.name, phase.factor
            );
            println!("{nodes}\n{pods}");
        }
    }
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
