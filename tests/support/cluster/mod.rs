//! The synthetic cluster of the integration tests, the benchmarks and the demo: one
//! description ([`Scenario`]) from which come both what the exporters would give Prometheus
//! ([`series`], [`kepler`], [`exposition`], served by [`server`]) and the CSV rows the agent
//! must produce ([`truth`]), so the emulation and the truth cannot drift apart.
//!
//! [`Scenario::new`] is the small 3-node cluster ([`small`]), [`Scenario::scaled`] a large
//! generated one ([`scaled`]). Every sample carries the millisecond timestamp its value was
//! computed for: counters grow exactly linearly, so Prometheus's `rate()` gives the exact
//! rate (up to float rounding) once its samples cover the whole window.
//!
//! Constant by default; a [`Schedule`] ([`load`]) makes the load change phase by phase, and
//! [`Fault`]s ([`faults`]) break sources at known times.

// Shared by the integration tests and the examples, each using a different part of it.
#![allow(dead_code)]

mod exposition;
mod faults;
mod kepler;
mod load;
mod scaled;
mod series;
mod server;
mod small;
mod truth;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

// Each test binary and example uses a different part of these.
#[allow(unused_imports)]
pub use exposition::{BASE, Exposition};
#[allow(unused_imports)]
pub use faults::{Fault, FaultKind, JUMP_JOULES, JUMP_MS, Source, Touched, rfc3339};
#[allow(unused_imports)]
pub use load::{IDLE, LOAD, Phase, Schedule, parse_duration_ms};
pub use server::Exporter;
#[allow(unused_imports)]
pub use truth::{Cell, Row, is_physical};

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

    fn scaled(&self, factor: f64) -> Zones {
        zones(
            self.package * factor,
            self.dram * factor,
            self.core * factor,
            self.uncore * factor,
        )
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

impl Meter {
    fn scaled(self, factor: f64) -> Meter {
        match self {
            Meter::Ipmi(watts) => Meter::Ipmi(watts * factor),
            Meter::KeplerPlatform(watts) => Meter::KeplerPlatform(watts * factor),
            Meter::Absent => Meter::Absent,
        }
    }
}

#[derive(Clone, Debug)]
pub struct KeplerNode {
    pub pod: &'static str,
    pub pod_ip: &'static str,
    pub zones: Zones,
    /// Kepler ≤ 0.9 without RAPL: figures from its model (`kepler_node_info`).
    pub estimated: bool,
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
    /// Whether node-exporter runs there (the CPU, memory, network and process figures).
    pub node_exporter: bool,
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

/// The whole emulated cluster under one label convention.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub convention: Convention,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub infra_pods: Vec<InfraPod>,
    /// `None`: the declared figures all along.
    pub load: Option<Schedule>,
    /// Faults switched on at known times ([`Scenario::with_fault`] checks them).
    pub faults: Vec<Fault>,
}

impl Scenario {
    /// Nodes by name (a scaled scenario has thousands: no linear search per pod).
    fn node_map(&self) -> HashMap<&str, &Node> {
        self.nodes.iter().map(|node| (node.name, node)).collect()
    }
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
