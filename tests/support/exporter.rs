//! Synthetic exporter for the integration tests and the demo.
//!
//! One HTTP endpoint emulates, for a whole small cluster, the series that
//! node-exporter, cAdvisor, kube-state-metrics, Kepler, Scaphandre and an
//! IPMI power meter would give Prometheus, under either label convention of
//! docs/design.md, "Identity". The same [`Scenario`] also computes the CSV rows the agent must
//! produce, so the emulation and the truth come from one description and
//! cannot drift apart. [`Scenario::scaled`] generates a large cluster of the
//! same kind for the benchmarks.
//!
//! Counters grow linearly, `BASE + rate * (t - t0)`, and every sample carries
//! the explicit millisecond timestamp `t` its value was computed for, so
//! Prometheus's `rate()`/`increase()` give the exact rate (up to float
//! rounding) once its samples cover the whole window. Gauges are constant.

// This file is shared by the integration tests and the `synthetic_exporter`
// example, and each of them uses a different part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

/// Starting value of every counter: large enough that Prometheus never limits
/// its extrapolation at the counter's zero point.
pub const BASE: f64 = 1e6;

/// Column names of the node table (docs/design.md, "Tables"), in order.
pub const NODE_COLUMNS: [&str; 11] = [
    "instance",
    "collection_time",
    "observation_time",
    "cpu_usage",
    "memory_usage",
    "network_usage",
    "wattage",
    "num_processes",
    "kepler_wattage",
    "scaph_wattage",
    "wattage_auxilary",
];

/// Column names of the pod table (docs/design.md, "Tables"), in order.
pub const POD_COLUMNS: [&str; 10] = [
    "instance",
    "collection_time",
    "observation_time",
    "name",
    "namespace",
    "cpu_usage",
    "memory_usage",
    "network_usage",
    "wattage_kepler",
    "wattage_scaph",
];

/// Namespace of the experiment: the one the agent observes.
pub const NAMESPACE: &str = "energy-lab";
/// A namespace whose pods must not show up in the experiment's table.
pub const OTHER_NAMESPACE: &str = "other-team";

/// The two label conventions of docs/design.md, "Identity".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// kube-prometheus-stack: ServiceMonitors, addresses in `instance`.
    A,
    /// prometheus-community `prometheus` chart: annotation scraping, `node` labels.
    B,
}

impl Convention {
    pub fn parse(text: &str) -> Option<Convention> {
        match text.to_ascii_lowercase().as_str() {
            "a" | "kube-prometheus-stack" => Some(Convention::A),
            "b" | "prometheus" => Some(Convention::B),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Convention::A => "A (kube-prometheus-stack, Kepler <= 0.9 names)",
            Convention::B => "B (prometheus-community prometheus chart, Kepler >= 0.10 names)",
        }
    }
}

/// A process as Scaphandre sees it.
#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    pub exe: &'static str,
    pub watts: f64,
}

/// RAPL zones as Kepler reports them, in watts.
#[derive(Clone, Copy, Debug)]
pub struct Zones {
    pub package: f64,
    pub dram: f64,
    pub core: f64,
    pub uncore: f64,
}

impl Zones {
    /// What the agent reports: package + DRAM (core and uncore are inside package).
    pub fn counted(&self) -> f64 {
        self.package + self.dram
    }

    fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("package", self.package),
            ("dram", self.dram),
            ("core", self.core),
            ("uncore", self.uncore),
        ]
    }
}

/// Where a node's wall-power figure comes from.
#[derive(Clone, Copy, Debug)]
pub enum Meter {
    /// An IPMI/DCMI exporter (`ipmi_dcmi_power_consumption_watts`).
    Ipmi(f64),
    /// Kepler ≤ 0.9's `kepler_node_platform_joules_total`.
    KeplerPlatform(f64),
    /// No power meter at all: the `wattage` cell stays empty.
    Absent,
}

#[derive(Clone, Debug)]
pub struct KeplerNode {
    pub pod: &'static str,
    pub pod_ip: &'static str,
    pub zones: Zones,
}

#[derive(Clone, Debug)]
pub struct ScaphandreNode {
    pub pod: &'static str,
    pub pod_ip: &'static str,
    pub host_watts: f64,
    /// Processes that belong to no container (no `container_id`).
    pub system_processes: Vec<Process>,
    /// Scaphandre's own process: in a container of the `scaphandre` namespace.
    pub own_process: Process,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: &'static str,
    pub ip: &'static str,
    /// Whether kube-state-metrics lists the node in `kube_node_info`; a node
    /// that is missing there is identified only through `node_uname_info`.
    pub in_kube_node_info: bool,
    /// `(cpu, mode, CPU seconds per second)`.
    pub cpu: Vec<(u32, &'static str, f64)>,
    pub mem_total: f64,
    pub mem_available: f64,
    /// `(device, received bytes/s, transmitted bytes/s)`.
    pub net: Vec<(&'static str, f64, f64)>,
    /// `node_processes_pids` (processes collector), if enabled.
    pub pids: Option<f64>,
    /// `node_procs_running` (stat collector).
    pub procs_running: f64,
    pub meter: Meter,
    pub kepler: Option<KeplerNode>,
    pub scaphandre: Option<ScaphandreNode>,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub name: &'static str,
    pub image: &'static str,
    pub id: &'static str,
    /// CPU seconds per second.
    pub cpu: f64,
    /// Working-set bytes.
    pub memory: f64,
    pub kepler: Zones,
    pub processes: Vec<Process>,
}

#[derive(Clone, Debug)]
pub struct Pod {
    pub name: &'static str,
    pub namespace: &'static str,
    pub node: &'static str,
    pub ip: &'static str,
    pub uid: &'static str,
    pub containers: Vec<Container>,
    /// The pause container (`container="POD"`).
    pub pause_cpu: f64,
    pub pause_memory: f64,
    /// Bytes per second on the pod's `eth0`.
    pub rx: f64,
    pub tx: f64,
}

/// An exporter pod of the cluster, only visible through `kube_pod_info`.
#[derive(Clone, Debug)]
pub struct InfraPod {
    pub name: &'static str,
    pub namespace: &'static str,
    pub node: &'static str,
    pub ip: &'static str,
}

/// One expected cell of a CSV row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    /// `None` is an empty field.
    Num(Option<f64>),
}

impl Cell {
    pub fn render(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Num(Some(value)) => format!("{value}"),
            Cell::Num(None) => String::new(),
        }
    }
}

/// One expected CSV row: every column but the two timestamps.
#[derive(Clone, Debug)]
pub struct Row {
    pub cells: Vec<(&'static str, Cell)>,
}

impl Row {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, cell)| cell)
    }

    pub fn text(&self, column: &str) -> String {
        self.get(column).map(Cell::render).unwrap_or_default()
    }
}

/// The whole emulated cluster under one label convention.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub convention: Convention,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub infra_pods: Vec<InfraPod>,
}

fn p(pid: u32, exe: &'static str, watts: f64) -> Process {
    Process { pid, exe, watts }
}

fn zones(package: f64, dram: f64, core: f64, uncore: f64) -> Zones {
    Zones {
        package,
        dram,
        core,
        uncore,
    }
}

const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";
const KSM_INSTANCE: &str = "198.51.100.5:8080";

impl Scenario {
    /// The cluster: three nodes, four pods in [`NAMESPACE`], one in
    /// [`OTHER_NAMESPACE`]. The figures are the same under both conventions;
    /// only the labels (and, for worker-2, the kind of power meter) differ.
    pub fn new(convention: Convention) -> Scenario {
        let worker_2_meter = match convention {
            // Kepler ≤ 0.9 has a platform counter; worker-2 has no IPMI.
            Convention::A => Meter::KeplerPlatform(120.5),
            // Kepler ≥ 0.10 names have no platform counter: IPMI instead.
            Convention::B => Meter::Ipmi(120.5),
        };
        // Declared out of order on purpose: the agent must sort rows.
        let nodes = vec![
            Node {
                name: "worker-2",
                ip: "192.0.2.12",
                in_kube_node_info: true,
                cpu: vec![
                    (0, "user", 0.25),
                    (0, "system", 0.125),
                    (0, "idle", 0.5),
                    (0, "iowait", 0.125),
                    (1, "user", 0.125),
                    (1, "system", 0.0625),
                    (1, "idle", 0.75),
                    (1, "iowait", 0.0625),
                ],
                mem_total: 8589934592.0,
                mem_available: 2147483648.0,
                net: vec![
                    ("eth0", 50000.0, 30000.0),
                    ("lo", 100000.0, 100000.0),
                    ("veth9c1d2e3f", 20000.0, 10000.0),
                ],
                pids: Some(198.0),
                procs_running: 2.0,
                meter: worker_2_meter,
                kepler: Some(KeplerNode {
                    pod: "kepler-q7d3m",
                    pod_ip: "198.51.100.12",
                    zones: zones(30.5, 4.25, 20.0, 1.5),
                }),
                scaphandre: Some(ScaphandreNode {
                    pod: "scaphandre-m4q8z",
                    pod_ip: "198.51.100.22",
                    host_watts: 60.25,
                    system_processes: vec![p(1, "systemd", 0.5), p(640, "containerd", 1.25)],
                    own_process: p(93, "scaphandre", 0.375),
                }),
            },
            Node {
                name: "worker-3",
                ip: "192.0.2.13",
                // Known to Prometheus only as 192.0.2.13:9100 and through
                // node_uname_info: kube-state-metrics does not list it.
                in_kube_node_info: false,
                cpu: vec![
                    (0, "user", 0.0625),
                    (0, "system", 0.03125),
                    (0, "idle", 0.875),
                    (0, "iowait", 0.03125),
                ],
                mem_total: 4294967296.0,
                mem_available: 3221225472.0,
                net: vec![("eth0", 10000.0, 5000.0), ("lo", 2000.0, 2000.0)],
                // The processes collector is off: only node_procs_running.
                pids: None,
                procs_running: 1.0,
                meter: Meter::Absent,
                kepler: Some(KeplerNode {
                    pod: "kepler-z5n6w",
                    pod_ip: "198.51.100.13",
                    zones: zones(12.5, 1.5, 8.0, 0.75),
                }),
                scaphandre: None,
            },
            Node {
                name: "worker-1",
                ip: "192.0.2.11",
                in_kube_node_info: true,
                cpu: vec![
                    (0, "user", 0.5),
                    (0, "system", 0.25),
                    (0, "nice", 0.0),
                    (0, "irq", 0.015625),
                    (0, "softirq", 0.03125),
                    (0, "idle", 0.125),
                    (0, "iowait", 0.0625),
                    (0, "steal", 0.015625),
                    (1, "user", 0.375),
                    (1, "system", 0.125),
                    (1, "idle", 0.4375),
                    (1, "iowait", 0.03125),
                    (1, "steal", 0.03125),
                ],
                mem_total: 17179869184.0,
                mem_available: 6442450944.0,
                net: vec![
                    ("eth0", 250000.0, 125000.0),
                    ("lo", 5000000.0, 5000000.0),
                    ("veth12ab34cd", 80000.0, 40000.0),
                    ("cali3f9e0a1b2c3", 1000.0, 2000.0),
                ],
                pids: Some(412.0),
                procs_running: 3.0,
                meter: Meter::Ipmi(182.5),
                kepler: Some(KeplerNode {
                    pod: "kepler-8hj2k",
                    pod_ip: "198.51.100.11",
                    zones: zones(64.25, 8.5, 40.0, 2.5),
                }),
                scaphandre: Some(ScaphandreNode {
                    pod: "scaphandre-7xk2p",
                    pod_ip: "198.51.100.21",
                    host_watts: 95.5,
                    system_processes: vec![p(1, "systemd", 0.75), p(812, "kubelet", 2.25)],
                    own_process: p(77, "scaphandre", 0.5),
                }),
            },
        ];
        let pods = vec![
            Pod {
                name: "db-0",
                namespace: NAMESPACE,
                node: "worker-2",
                ip: "198.51.100.42",
                uid: "5b1c2d3e-0000-4000-8000-000000000042",
                containers: vec![Container {
                    name: "postgres",
                    image: "docker.io/library/postgres:16",
                    id: "containerd://42a1",
                    cpu: 0.25,
                    memory: 536870912.0,
                    kepler: zones(3.25, 1.0, 2.0, 0.125),
                    processes: vec![p(3100, "postgres", 2.5), p(3101, "postgres", 0.5)],
                }],
                pause_cpu: 0.0009765625,
                pause_memory: 1048576.0,
                rx: 40000.0,
                tx: 60000.0,
            },
            Pod {
                name: "loadgen-7bqzn",
                namespace: NAMESPACE,
                node: "worker-3",
                ip: "198.51.100.43",
                uid: "5b1c2d3e-0000-4000-8000-000000000043",
                containers: vec![Container {
                    name: "loadgen",
                    image: "example.org/loadgen:0.3",
                    id: "containerd://43a1",
                    cpu: 0.0625,
                    memory: 20971520.0,
                    kepler: zones(0.5, 0.125, 0.25, 0.0625),
                    // worker-3 runs no Scaphandre.
                    processes: vec![],
                }],
                pause_cpu: 0.0009765625,
                pause_memory: 1048576.0,
                rx: 1000.0,
                tx: 250000.0,
            },
            Pod {
                name: "api-5f7c9d-x2k4q",
                namespace: NAMESPACE,
                node: "worker-1",
                ip: "198.51.100.41",
                uid: "5b1c2d3e-0000-4000-8000-000000000041",
                containers: vec![
                    Container {
                        name: "api",
                        image: "example.org/api:1.4",
                        id: "containerd://41a1",
                        cpu: 0.75,
                        memory: 314572800.0,
                        kepler: zones(6.5, 0.75, 4.0, 0.25),
                        processes: vec![p(4242, "api-server", 4.5), p(4250, "api-worker", 1.25)],
                    },
                    Container {
                        name: "envoy",
                        image: "docker.io/envoyproxy/envoy:v1.29",
                        id: "containerd://41b2",
                        cpu: 0.125,
                        memory: 52428800.0,
                        kepler: zones(1.25, 0.25, 0.75, 0.0625),
                        processes: vec![p(4301, "envoy", 0.75)],
                    },
                ],
                pause_cpu: 0.0009765625,
                pause_memory: 1048576.0,
                rx: 125000.0,
                tx: 375000.0,
            },
            Pod {
                // Everything measured, everything zero: zero is not empty.
                name: "idle-sleeper",
                namespace: NAMESPACE,
                node: "worker-1",
                ip: "198.51.100.44",
                uid: "5b1c2d3e-0000-4000-8000-000000000044",
                containers: vec![Container {
                    name: "sleep",
                    image: "docker.io/library/busybox:1.36",
                    id: "containerd://44a1",
                    cpu: 0.0,
                    memory: 1048576.0,
                    kepler: zones(0.0, 0.0, 0.0, 0.0),
                    // Scaphandre lists no process of it: wattage_scaph empty.
                    processes: vec![],
                }],
                pause_cpu: 0.0,
                pause_memory: 524288.0,
                rx: 0.0,
                tx: 0.0,
            },
            Pod {
                name: "noisy-neighbour",
                namespace: OTHER_NAMESPACE,
                node: "worker-1",
                ip: "198.51.100.51",
                uid: "5b1c2d3e-0000-4000-8000-000000000051",
                containers: vec![Container {
                    name: "stress",
                    image: "example.org/stress-ng:0.17",
                    id: "containerd://51a1",
                    cpu: 1.5,
                    memory: 1073741824.0,
                    kepler: zones(12.0, 1.5, 9.0, 0.5),
                    processes: vec![p(5000, "stress-ng", 11.25)],
                }],
                pause_cpu: 0.0009765625,
                pause_memory: 1048576.0,
                rx: 500.0,
                tx: 500.0,
            },
        ];
        let infra_pods = infra_pods(&nodes, "worker-2", "198.51.100.5");
        Scenario {
            convention,
            nodes,
            pods,
            infra_pods,
        }
    }

    /// A large cluster for benchmarks: `nodes` nodes, `pods` pods in
    /// [`NAMESPACE`] and `other_pods` in [`OTHER_NAMESPACE`], spread evenly
    /// over the nodes. Every node has every exporter (node-exporter, IPMI,
    /// Kepler, Scaphandre, kube-state-metrics), so every default query
    /// answers; figures vary with the index, and the truth is computed as for
    /// [`Scenario::new`].
    pub fn scaled(
        convention: Convention,
        nodes: usize,
        pods: usize,
        other_pods: usize,
    ) -> Scenario {
        assert!(
            (1..=65_536).contains(&nodes),
            "1 to 65536 nodes (one address block each)"
        );
        let nodes: Vec<Node> = (0..nodes).map(scaled_node).collect();
        let workload = (0..pods).map(|i| (i, NAMESPACE, format!("app-{i:05}")));
        let others = (0..other_pods).map(|i| (pods + i, OTHER_NAMESPACE, format!("other-{i:05}")));
        let pods: Vec<Pod> = workload
            .chain(others)
            .map(|(index, namespace, name)| {
                scaled_pod(index, namespace, name, nodes[index % nodes.len()].name)
            })
            .collect();
        let infra_pods = infra_pods(&nodes, nodes[0].name, "10.5.0.5");
        Scenario {
            convention,
            nodes,
            pods,
            infra_pods,
        }
    }

    /// Nodes by name (a scaled scenario has thousands: no linear search per pod).
    fn node_map(&self) -> HashMap<&str, &Node> {
        self.nodes.iter().map(|node| (node.name, node)).collect()
    }

    /// The node rows the agent must produce (every column but the two
    /// timestamps), sorted by instance. `window_secs` is the agent's WINDOW.
    pub fn expected_nodes(&self, window_secs: f64) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .nodes
            .iter()
            .map(|node| {
                let cpu: f64 = node
                    .cpu
                    .iter()
                    .filter(|(_, mode, _)| !matches!(*mode, "idle" | "iowait" | "steal"))
                    .map(|(_, _, rate)| rate)
                    .sum();
                let memory = 100.0 * (1.0 - node.mem_available / node.mem_total);
                let network: f64 = node
                    .net
                    .iter()
                    .filter(|(device, _, _)| is_physical(device))
                    .map(|(_, rx, tx)| (rx + tx) * window_secs)
                    .sum();
                let wattage = match node.meter {
                    Meter::Ipmi(watts) | Meter::KeplerPlatform(watts) => Some(watts),
                    Meter::Absent => None,
                };
                let scaph = node.scaphandre.as_ref();
                Row {
                    cells: vec![
                        ("instance", Cell::Text(node.name.to_string())),
                        ("cpu_usage", Cell::Num(Some(cpu))),
                        ("memory_usage", Cell::Num(Some(memory))),
                        ("network_usage", Cell::Num(Some(network))),
                        ("wattage", Cell::Num(wattage)),
                        (
                            "num_processes",
                            Cell::Num(Some(node.pids.unwrap_or(node.procs_running))),
                        ),
                        (
                            "kepler_wattage",
                            Cell::Num(node.kepler.as_ref().map(|k| k.zones.counted())),
                        ),
                        ("scaph_wattage", Cell::Num(scaph.map(|s| s.host_watts))),
                        (
                            "wattage_auxilary",
                            Cell::Num(
                                scaph.map(|s| s.system_processes.iter().map(|p| p.watts).sum()),
                            ),
                        ),
                    ],
                }
            })
            .collect();
        rows.sort_by_key(|row| row.text("instance"));
        rows
    }

    /// The pod rows the agent observing `namespace` must produce (every
    /// column but the two timestamps), sorted by name.
    pub fn expected_pods(&self, namespace: &str) -> Vec<Row> {
        let nodes = self.node_map();
        let mut rows: Vec<Row> = self
            .pods
            .iter()
            .filter(|pod| pod.namespace == namespace)
            .map(|pod| {
                let node = nodes[pod.node];
                let cpu: f64 = pod.containers.iter().map(|c| c.cpu).sum();
                let memory: f64 = pod.containers.iter().map(|c| c.memory).sum();
                let kepler = node
                    .kepler
                    .as_ref()
                    .map(|_| pod.containers.iter().map(|c| c.kepler.counted()).sum());
                let processes: Vec<&Process> =
                    pod.containers.iter().flat_map(|c| &c.processes).collect();
                let scaph = if node.scaphandre.is_some() && !processes.is_empty() {
                    Some(processes.iter().map(|p| p.watts).sum())
                } else {
                    None
                };
                Row {
                    cells: vec![
                        ("instance", Cell::Text(pod.node.to_string())),
                        ("name", Cell::Text(pod.name.to_string())),
                        ("namespace", Cell::Text(namespace.to_string())),
                        ("cpu_usage", Cell::Num(Some(cpu))),
                        ("memory_usage", Cell::Num(Some(memory / 1e6))),
                        ("network_usage", Cell::Num(Some((pod.rx + pod.tx) / 1e6))),
                        ("wattage_kepler", Cell::Num(kepler)),
                        ("wattage_scaph", Cell::Num(scaph)),
                    ],
                }
            })
            .collect();
        rows.sort_by_key(|row| row.text("name"));
        rows
    }

    /// The expected tables as CSV, timestamps left empty.
    pub fn truth_csv(&self, window_secs: f64, namespace: &str) -> (String, String) {
        let render = |columns: &[&str], rows: Vec<Row>| {
            let mut out = columns.join(",");
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = columns.iter().map(|c| row.text(c)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        };
        (
            render(&NODE_COLUMNS, self.expected_nodes(window_secs)),
            render(&POD_COLUMNS, self.expected_pods(namespace)),
        )
    }

    /// The exposition (text format 0.0.4) at `now_ms`, counters having grown
    /// since `t0_ms`.
    pub fn render(&self, t0_ms: i64, now_ms: i64) -> String {
        self.exposition().render(t0_ms, now_ms)
    }

    /// Every series with its labels rendered once; only values and timestamps
    /// change from one scrape to the next.
    pub fn exposition(&self) -> Exposition {
        let nodes = self.node_map();
        let mut pods_by_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for pod in &self.pods {
            pods_by_node.entry(pod.node).or_default().push(pod);
        }
        let mut out = Exposition::default();
        for node in &self.nodes {
            let pods_here = pods_by_node.get(node.name).map_or(&[][..], Vec::as_slice);
            self.render_node(&mut out, node, pods_here);
        }
        for pod in &self.pods {
            self.render_pod(&mut out, nodes[pod.node], pod);
        }
        self.render_kube_state_metrics(&mut out, &nodes);
        out
    }

    fn render_node(&self, out: &mut Exposition, node: &Node, pods_here: &[&Pod]) {
        let conv = self.convention;
        // node-exporter
        let exporter = match conv {
            Convention::A => labels(&[
                ("job", "node-exporter"),
                ("instance", &format!("{}:9100", node.ip)),
                ("namespace", "monitoring"),
                (
                    "pod",
                    &format!("kps-prometheus-node-exporter-{}", node.name),
                ),
                ("service", "kps-prometheus-node-exporter"),
                ("container", "node-exporter"),
                ("endpoint", "http-metrics"),
            ]),
            Convention::B => labels(&[
                ("job", "kubernetes-service-endpoints"),
                ("instance", &format!("{}:9100", node.ip)),
                ("node", node.name),
                ("namespace", "monitoring"),
                ("service", "prometheus-node-exporter"),
                ("app_kubernetes_io_name", "prometheus-node-exporter"),
            ]),
        };
        for (cpu, mode, rate) in &node.cpu {
            let cpu = cpu.to_string();
            out.counter(
                "node_cpu_seconds_total",
                &with(&exporter, &[("cpu", &cpu), ("mode", mode)]),
                *rate,
            );
        }
        out.gauge(
            "node_memory_MemAvailable_bytes",
            &exporter,
            node.mem_available,
        );
        out.gauge("node_memory_MemTotal_bytes", &exporter, node.mem_total);
        for (device, rx, tx) in &node.net {
            let series = with(&exporter, &[("device", device)]);
            out.counter("node_network_receive_bytes_total", &series, *rx);
            out.counter("node_network_transmit_bytes_total", &series, *tx);
        }
        if let Some(pids) = node.pids {
            out.gauge("node_processes_pids", &exporter, pids);
        }
        out.gauge("node_procs_running", &exporter, node.procs_running);
        out.gauge(
            "node_uname_info",
            &with(
                &exporter,
                &[
                    ("nodename", node.name),
                    ("sysname", "Linux"),
                    ("release", "6.1.0-18-amd64"),
                    ("machine", "x86_64"),
                    ("domainname", "(none)"),
                ],
            ),
            1.0,
        );

        // IPMI power meter
        if let Meter::Ipmi(watts) = node.meter {
            let instance = format!("{}:9290", node.ip);
            let ipmi = match conv {
                Convention::A => labels(&[("job", "ipmi-exporter"), ("instance", &instance)]),
                Convention::B => labels(&[
                    ("job", "kubernetes-service-endpoints"),
                    ("instance", &instance),
                    ("node", node.name),
                    ("namespace", "monitoring"),
                    ("service", "ipmi-exporter"),
                ]),
            };
            out.gauge("ipmi_dcmi_power_consumption_watts", &ipmi, watts);
        }

        // Kepler
        if let Some(kepler) = &node.kepler {
            self.render_kepler(out, node, kepler, pods_here);
        }

        // Scaphandre
        if let Some(scaph) = &node.scaphandre {
            let instance = format!("{}:8080", scaph.pod_ip);
            let base = match conv {
                Convention::A => labels(&[
                    ("job", "scaphandre"),
                    ("instance", &instance),
                    ("namespace", "scaphandre"),
                    ("pod", scaph.pod),
                    ("container", "scaphandre"),
                    ("endpoint", "metrics"),
                    ("service", "scaphandre"),
                ]),
                Convention::B => labels(&[
                    ("job", "kubernetes-pods"),
                    ("instance", &instance),
                    ("namespace", "scaphandre"),
                    ("pod", scaph.pod),
                    ("node", node.name),
                ]),
            };
            out.gauge("scaph_host_power_microwatts", &base, scaph.host_watts * 1e6);
            for process in &scaph.system_processes {
                let pid = process.pid.to_string();
                out.gauge(
                    "scaph_process_power_consumption_microwatts",
                    &with(
                        &base,
                        &[
                            ("exe", process.exe),
                            ("pid", &pid),
                            ("cmdline", process.exe),
                        ],
                    ),
                    process.watts * 1e6,
                );
            }
            // Scaphandre's own process, in the scaphandre namespace.
            let own = &scaph.own_process;
            let pid = own.pid.to_string();
            out.gauge(
                "scaph_process_power_consumption_microwatts",
                &with(
                    &base,
                    &[
                        ("exe", own.exe),
                        ("pid", &pid),
                        ("cmdline", own.exe),
                        ("container_id", "0f0f0f0f"),
                        ("container_scheduler", "kubernetes"),
                        ("kubernetes_pod_name", scaph.pod),
                        ("kubernetes_pod_namespace", "scaphandre"),
                        ("kubernetes_node_name", node.name),
                    ],
                ),
                own.watts * 1e6,
            );
            for pod in pods_here {
                for container in &pod.containers {
                    for process in &container.processes {
                        let pid = process.pid.to_string();
                        out.gauge(
                            "scaph_process_power_consumption_microwatts",
                            &with(
                                &base,
                                &[
                                    ("exe", process.exe),
                                    ("pid", &pid),
                                    ("cmdline", process.exe),
                                    (
                                        "container_id",
                                        container.id.trim_start_matches("containerd://"),
                                    ),
                                    ("container_scheduler", "kubernetes"),
                                    ("kubernetes_pod_name", pod.name),
                                    ("kubernetes_pod_namespace", pod.namespace),
                                    ("kubernetes_node_name", node.name),
                                ],
                            ),
                            process.watts * 1e6,
                        );
                    }
                }
            }
        }
    }

    fn render_kepler(
        &self,
        out: &mut Exposition,
        node: &Node,
        kepler: &KeplerNode,
        pods_here: &[&Pod],
    ) {
        match self.convention {
            Convention::A => {
                // Kepler ≤ 0.9 via its chart's ServiceMonitor: instance is the
                // node name, and every series carries the Kepler pod's own
                // pod/namespace labels.
                let base = labels(&[
                    ("job", "kepler"),
                    ("instance", node.name),
                    ("namespace", "kepler"),
                    ("pod", kepler.pod),
                    ("container", "kepler-exporter"),
                    ("endpoint", "http"),
                    ("service", "kepler-exporter"),
                ]);
                let node_series = with(&base, &[("package", "0"), ("source", "rapl-sysfs")]);
                for (zone, watts) in kepler.zones.named() {
                    let name = format!("kepler_node_{zone}_joules_total");
                    out.counter(&name, &node_series, watts);
                }
                if let Meter::KeplerPlatform(watts) = node.meter {
                    out.counter(
                        "kepler_node_platform_joules_total",
                        &with(&base, &[("source", "acpi")]),
                        watts,
                    );
                }
                // Kepler's pseudo-container for processes outside containers.
                let system = with(
                    &base,
                    &[
                        ("container_id", "system_processes"),
                        ("container_name", "system_processes"),
                        ("container_namespace", "system"),
                        ("pod_name", "system_processes"),
                    ],
                );
                for (zone, watts) in kepler.zones.named() {
                    let name = format!("kepler_container_{zone}_joules_total");
                    out.counter(&name, &system, watts / 8.0);
                }
                for pod in pods_here {
                    for container in &pod.containers {
                        let series = with(
                            &base,
                            &[
                                (
                                    "container_id",
                                    container.id.trim_start_matches("containerd://"),
                                ),
                                ("container_name", container.name),
                                ("container_namespace", pod.namespace),
                                ("pod_name", pod.name),
                            ],
                        );
                        for (zone, watts) in container.kepler.named() {
                            let name = format!("kepler_container_{zone}_joules_total");
                            out.counter(&name, &series, watts);
                        }
                    }
                }
            }
            Convention::B => {
                // Kepler ≥ 0.10, annotation-scraped: node_name/pod_name/
                // pod_namespace/zone from Kepler, plus the scrape job's
                // pod/namespace/node labels of the Kepler pod itself.
                let base = labels(&[
                    ("job", "kubernetes-pods"),
                    ("instance", &format!("{}:28282", kepler.pod_ip)),
                    ("namespace", "kepler"),
                    ("pod", kepler.pod),
                    ("node", node.name),
                ]);
                for (index, (zone, watts)) in kepler.zones.named().into_iter().enumerate() {
                    let path = format!("/sys/class/powercap/intel-rapl:0:{index}");
                    out.counter(
                        "kepler_node_cpu_joules_total",
                        &with(
                            &base,
                            &[("zone", zone), ("path", &path), ("node_name", node.name)],
                        ),
                        watts,
                    );
                }
                for pod in pods_here {
                    let mut sum = zones(0.0, 0.0, 0.0, 0.0);
                    for container in &pod.containers {
                        sum.package += container.kepler.package;
                        sum.dram += container.kepler.dram;
                        sum.core += container.kepler.core;
                        sum.uncore += container.kepler.uncore;
                    }
                    for (zone, watts) in sum.named() {
                        out.counter(
                            "kepler_pod_cpu_joules_total",
                            &with(
                                &base,
                                &[
                                    ("pod_id", pod.uid),
                                    ("pod_name", pod.name),
                                    ("pod_namespace", pod.namespace),
                                    ("node_name", node.name),
                                    ("zone", zone),
                                    ("state", "running"),
                                ],
                            ),
                            watts,
                        );
                    }
                }
            }
        }
    }

    fn render_pod(&self, out: &mut Exposition, node: &Node, pod: &Pod) {
        let kubelet = match self.convention {
            Convention::A => labels(&[
                ("job", "kubelet"),
                ("instance", &format!("{}:10250", node.ip)),
                ("node", node.name),
                ("metrics_path", "/metrics/cadvisor"),
                ("service", "kps-kube-prometheus-stack-kubelet"),
                ("endpoint", "https-metrics"),
            ]),
            Convention::B => labels(&[
                ("job", "kubernetes-nodes-cadvisor"),
                ("instance", node.name),
                ("kubernetes_io_hostname", node.name),
                ("kubernetes_io_os", "linux"),
            ]),
        };
        let cgroup = format!("/kubepods/burstable/pod{}", pod.uid);
        let series = |container: &str, image: &str, id: &str| {
            let full_id = if id.is_empty() {
                cgroup.clone()
            } else {
                format!("{cgroup}/{id}")
            };
            with(
                &kubelet,
                &[
                    ("namespace", pod.namespace),
                    ("pod", pod.name),
                    ("container", container),
                    ("image", image),
                    ("name", id),
                    ("id", &full_id),
                ],
            )
        };
        let sandbox = format!("{}-sandbox", pod.uid.split('-').next().unwrap_or("pod"));
        for container in &pod.containers {
            let id = container.id.trim_start_matches("containerd://");
            let labels = series(container.name, container.image, id);
            out.counter("container_cpu_usage_seconds_total", &labels, container.cpu);
            out.gauge(
                "container_memory_working_set_bytes",
                &labels,
                container.memory,
            );
        }
        // The pause container.
        let pause = series("POD", PAUSE_IMAGE, &sandbox);
        out.counter("container_cpu_usage_seconds_total", &pause, pod.pause_cpu);
        out.gauge(
            "container_memory_working_set_bytes",
            &pause,
            pod.pause_memory,
        );
        // The pod's own cgroup: the sum of all of the above.
        let pod_level = series("", "", "");
        let cpu: f64 = pod.containers.iter().map(|c| c.cpu).sum::<f64>() + pod.pause_cpu;
        let memory: f64 = pod.containers.iter().map(|c| c.memory).sum::<f64>() + pod.pause_memory;
        out.counter("container_cpu_usage_seconds_total", &pod_level, cpu);
        out.gauge("container_memory_working_set_bytes", &pod_level, memory);
        // Network figures come with the sandbox, as containerd reports them.
        let net = with(&series("", PAUSE_IMAGE, &sandbox), &[("interface", "eth0")]);
        out.counter("container_network_receive_bytes_total", &net, pod.rx);
        out.counter("container_network_transmit_bytes_total", &net, pod.tx);
    }

    fn render_kube_state_metrics(&self, out: &mut Exposition, nodes: &HashMap<&str, &Node>) {
        let ksm = match self.convention {
            Convention::A => labels(&[
                ("job", "kube-state-metrics"),
                ("instance", KSM_INSTANCE),
                ("container", "kube-state-metrics"),
                ("endpoint", "http"),
            ]),
            Convention::B => labels(&[
                ("job", "kubernetes-service-endpoints"),
                ("instance", KSM_INSTANCE),
                ("service", "kube-state-metrics"),
            ]),
        };
        for node in self.nodes.iter().filter(|n| n.in_kube_node_info) {
            out.gauge(
                "kube_node_info",
                &with(
                    &ksm,
                    &[
                        ("node", node.name),
                        ("internal_ip", node.ip),
                        ("kernel_version", "6.1.0-18-amd64"),
                        ("os_image", "Debian GNU/Linux 12 (bookworm)"),
                        ("container_runtime_version", "containerd://1.7.13"),
                        ("kubelet_version", "v1.29.2"),
                    ],
                ),
                1.0,
            );
        }
        let workload = self
            .pods
            .iter()
            .map(|pod| (pod.name, pod.namespace, pod.node, pod.ip));
        let infra = self
            .infra_pods
            .iter()
            .map(|pod| (pod.name, pod.namespace, pod.node, pod.ip));
        for (name, namespace, node, ip) in workload.chain(infra) {
            let host_ip = nodes[node].ip;
            out.gauge(
                "kube_pod_info",
                &with(
                    &ksm,
                    &[
                        ("namespace", namespace),
                        ("pod", name),
                        ("node", node),
                        ("pod_ip", ip),
                        ("host_ip", host_ip),
                        ("host_network", "false"),
                        ("created_by_kind", "ReplicaSet"),
                    ],
                ),
                1.0,
            );
        }
    }
}

/// kube-state-metrics' own pod, and the Kepler and Scaphandre pods of every node.
fn infra_pods(nodes: &[Node], ksm_node: &'static str, ksm_ip: &'static str) -> Vec<InfraPod> {
    let mut infra_pods = vec![InfraPod {
        name: "kube-state-metrics-6d4b9c-r2t5v",
        namespace: "monitoring",
        node: ksm_node,
        ip: ksm_ip,
    }];
    for node in nodes {
        if let Some(kepler) = &node.kepler {
            infra_pods.push(InfraPod {
                name: kepler.pod,
                namespace: "kepler",
                node: node.name,
                ip: kepler.pod_ip,
            });
        }
        if let Some(scaph) = &node.scaphandre {
            infra_pods.push(InfraPod {
                name: scaph.pod,
                namespace: "scaphandre",
                node: node.name,
                ip: scaph.pod_ip,
            });
        }
    }
    infra_pods
}

/// Names of a scaled scenario are made at run time; the scenario is built
/// once per process, so leaking them keeps the `&'static str` fields.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The `index`-th address of the block `10.{block}.0.0/16`.
fn address(block: usize, index: usize) -> &'static str {
    leak(format!(
        "10.{}.{}.{}",
        block + index / 65_536,
        index / 256 % 256,
        index % 256
    ))
}

/// `n / 2^shift`: exact binary fractions keep the expected sums exact.
fn frac(n: usize, shift: i32) -> f64 {
    n as f64 / 2f64.powi(shift)
}

/// Node `i` of a scaled scenario: two CPUs, one physical and two virtual
/// interfaces, an IPMI meter, Kepler and Scaphandre.
fn scaled_node(i: usize) -> Node {
    let name = leak(format!("node-{i:05}"));
    let user = frac(1 + i % 8, 4);
    Node {
        name,
        ip: address(1, i),
        in_kube_node_info: true,
        cpu: vec![
            (0, "user", user),
            (0, "system", 0.125),
            (0, "idle", 0.75 - user / 2.0),
            (0, "iowait", 0.0625),
            (1, "user", user / 2.0),
            (1, "system", 0.0625),
            (1, "idle", 0.875 - user / 2.0),
        ],
        mem_total: 17179869184.0,
        mem_available: 1073741824.0 * (2 + i % 12) as f64,
        net: vec![
            (
                "eth0",
                1000.0 * (1 + i % 50) as f64,
                500.0 * (1 + i % 20) as f64,
            ),
            ("lo", 20000.0, 20000.0),
            ("veth0a1b2c3d", 4000.0, 2000.0),
        ],
        pids: Some((150 + i % 300) as f64),
        procs_running: (1 + i % 4) as f64,
        meter: Meter::Ipmi(100.0 + frac(i % 64, 1)),
        kepler: Some(KeplerNode {
            pod: leak(format!("kepler-{i:05}")),
            pod_ip: address(2, i),
            zones: zones(20.0 + frac(i % 32, 2), 2.5, 12.0, 1.0),
        }),
        scaphandre: Some(ScaphandreNode {
            pod: leak(format!("scaphandre-{i:05}")),
            pod_ip: address(3, i),
            host_watts: 50.0 + frac(i % 40, 2),
            system_processes: vec![p(1, "systemd", 0.5), p(812, "kubelet", 1.25)],
            own_process: p(77, "scaphandre", 0.375),
        }),
    }
}

/// Pod `index` of a scaled scenario: one container, every third pod with a
/// sidecar as well, each container with one process Scaphandre sees.
fn scaled_pod(index: usize, namespace: &'static str, name: String, node: &'static str) -> Pod {
    let container = |name: &'static str, image: &'static str, share: usize| Container {
        name,
        image,
        id: leak(format!("containerd://{index:08x}{share}")),
        cpu: frac(1 + (index + share) % 16, 6),
        memory: 1048576.0 * (16 + (index + share) % 64) as f64,
        kepler: zones(frac(4 + (index + share) % 8, 2), 0.25, 0.5, 0.0625),
        processes: vec![p(
            (10_000 + 2 * index + share) as u32,
            name,
            frac(2 + (index + share) % 6, 2),
        )],
    };
    let mut containers = vec![container("app", "example.org/app:1.0", 0)];
    if index.is_multiple_of(3) {
        containers.push(container("sidecar", "example.org/sidecar:2.1", 1));
    }
    Pod {
        name: leak(name),
        namespace,
        node,
        ip: address(16, index),
        uid: leak(format!("{index:08x}-0000-4000-8000-{index:012x}")),
        containers,
        pause_cpu: 0.0009765625,
        pause_memory: 1048576.0,
        rx: 1000.0 * (1 + index % 32) as f64,
        tx: 250.0 * (1 + index % 16) as f64,
    }
}

/// Whether a network device counts as physical (the `{phys}` regex of src/queries.rs).
pub fn is_physical(device: &str) -> bool {
    const VIRTUAL_PREFIXES: [&str; 16] = [
        "veth", "cali", "cilium", "lxc", "flannel", "cni", "docker", "br-", "virbr", "vxlan",
        "genev", "tunl", "kube-", "weave", "tun", "tap",
    ];
    device != "lo" && !VIRTUAL_PREFIXES.iter().any(|p| device.starts_with(p))
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with(base: &Labels, extra: &[(&str, &str)]) -> Labels {
    let mut all = base.clone();
    all.extend(labels(extra));
    all
}

/// How a sample's value is computed at scrape time.
#[derive(Clone, Copy, Debug)]
enum Value {
    /// `BASE + rate * elapsed seconds`.
    Counter(f64),
    Gauge(f64),
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: &'static str,
    /// Each series as `name{labels}`, with its value.
    samples: Vec<(String, Value)>,
}

/// A text-format exposition with every series rendered once, each metric
/// family kept together; [`Exposition::render`] only adds values and
/// timestamps, so a scrape of a scaled scenario stays cheap.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn counter(&mut self, name: &str, labels: &Labels, rate: f64) {
        self.sample(name, "counter", labels, Value::Counter(rate));
    }

    fn gauge(&mut self, name: &str, labels: &Labels, value: f64) {
        self.sample(name, "gauge", labels, Value::Gauge(value));
    }

    fn sample(&mut self, name: &str, kind: &'static str, labels: &Labels, value: Value) {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(index) => index,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let mut series = String::with_capacity(name.len() + 32 * labels.len());
        series.push_str(name);
        series.push('{');
        for (i, (key, val)) in labels.iter().enumerate() {
            if i > 0 {
                series.push(',');
            }
            let escaped = val
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(series, "{key}=\"{escaped}\"");
        }
        series.push('}');
        self.families[index].samples.push((series, value));
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// The exposition at `now_ms`, counters having grown since `t0_ms`.
    pub fn render(&self, t0_ms: i64, now_ms: i64) -> String {
        let elapsed = (now_ms - t0_ms) as f64 / 1000.0;
        let size: usize = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .map(|(series, _)| series.len() + 40)
            .sum();
        let mut out = String::with_capacity(size + 200 * self.families.len());
        for family in &self.families {
            let (name, kind) = (&family.name, family.kind);
            let _ = writeln!(
                out,
                "# HELP {name} Synthetic {kind} of the prometheus-agent tests."
            );
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (series, value) in &family.samples {
                let value = match *value {
                    Value::Counter(rate) => BASE + rate * elapsed,
                    Value::Gauge(value) => value,
                };
                let _ = writeln!(out, "{series} {value} {now_ms}");
            }
        }
        out
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
        let about = format!(
            "synthetic exporter, convention {}, {} nodes, {} pods, {} series\nGET /metrics\n",
            scenario.convention.describe(),
            scenario.nodes.len(),
            scenario.pods.len(),
            exposition.len()
        );
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
