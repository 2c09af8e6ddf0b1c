//! What `check` asks Prometheus when a column is empty, and what it then suggests: the
//! probes for each default column, tried in order; the first that finds nothing names the
//! likely cause.

use crate::tables::schema::{TableKind, node, pod};

/// A diagnostic query and the hint printed when it finds nothing. `{ns}` is the namespace.
pub type Probe = (&'static str, &'static str);

/// How to explain an empty column: probes tried in order, the first that finds nothing
/// gives the hint; when all find something, `otherwise` is the hint.
pub struct Diagnosis {
    pub table: TableKind,
    pub column: &'static str,
    pub probes: &'static [Probe],
    pub otherwise: &'static str,
}

pub const WINDOW_HINT: &str = "the series exist but gave no value at this time: is WINDOW at least \
                               twice the scrape interval, and are the targets still up?";

/// The diagnosis of a default column, if there is one.
pub fn diagnosis(table: TableKind, column: &str) -> Option<&'static Diagnosis> {
    DIAGNOSES
        .iter()
        .find(|d| d.table == table && d.column == column)
}

const DIAGNOSES: &[Diagnosis] = &[
    Diagnosis {
        table: TableKind::Nodes,
        column: node::CPU_USAGE,
        probes: &[(
            "count(node_cpu_seconds_total)",
            "no node-exporter series (node_cpu_seconds_total): is node-exporter installed \
                 and scraped?",
        )],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::MEMORY_USAGE,
        probes: &[(
            "count(node_memory_MemAvailable_bytes)",
            "no node-exporter memory series (node_memory_MemAvailable_bytes): is \
                 node-exporter installed and scraped?",
        )],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::NETWORK_USAGE,
        probes: &[(
            "count(node_network_receive_bytes_total)",
            "no node-exporter network series (node_network_receive_bytes_total): is \
                 node-exporter installed and scraped?",
        )],
        otherwise: "only virtual interfaces (lo, veth, cni, ...) report traffic, or WINDOW is \
             shorter than two scrape intervals",
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::WATTAGE,
        probes: &[(
            "count(ipmi_dcmi_power_consumption_watts) or count(kepler_node_platform_joules_total)",
            "no IPMI/DCMI power meter or Kepler platform series: wattage needs \
                 ipmi_exporter's dcmi collector or Kepler with platform power",
        )],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::NUM_PROCESSES,
        probes: &[(
            "count(node_processes_pids) or count(node_procs_running)",
            "no node-exporter process series (node_procs_running; node_processes_pids \
                 needs --collector.processes): is node-exporter installed and scraped?",
        )],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::KEPLER_WATTAGE,
        probes: &[(
            r#"count({__name__=~"kepler_node_.+"})"#,
            "no Kepler series: is Kepler installed and scraped?",
        )],
        otherwise: "Kepler node series exist but no package or DRAM energy: can Kepler read RAPL on \
             these nodes, and is WINDOW at least twice the scrape interval?",
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::SCAPH_WATTAGE,
        probes: &[
            (
                r#"count({__name__=~"scaph_.+"})"#,
                "no Scaphandre series: is Scaphandre installed and scraped?",
            ),
            (
                "count(scaph_host_power_microwatts)",
                "Scaphandre is scraped but exports no host power \
                     (scaph_host_power_microwatts): can it read the host's RAPL/powercap \
                     sensors?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Nodes,
        column: node::WATTAGE_AUXILARY,
        probes: &[
            (
                r#"count({__name__=~"scaph_.+"})"#,
                "no Scaphandre series: is Scaphandre installed and scraped?",
            ),
            (
                "count(scaph_process_power_consumption_microwatts)",
                "Scaphandre is scraped but exports no per-process power \
                     (scaph_process_power_consumption_microwatts)",
            ),
        ],
        otherwise: "every Scaphandre process series names a container (container_id); none is left \
             for processes outside containers",
    },
    Diagnosis {
        table: TableKind::Pods,
        column: pod::CPU_USAGE,
        probes: &[
            (
                "count(container_cpu_usage_seconds_total)",
                "no cAdvisor series (container_cpu_usage_seconds_total): is the kubelet's \
                     /metrics/cadvisor endpoint scraped?",
            ),
            (
                r#"count(container_cpu_usage_seconds_total{namespace="{ns}"})"#,
                "no cAdvisor series for this namespace: does it run pods, and is NAMESPACE \
                     the experiment's namespace?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Pods,
        column: pod::MEMORY_USAGE,
        probes: &[
            (
                "count(container_memory_working_set_bytes)",
                "no cAdvisor series (container_memory_working_set_bytes): is the kubelet's \
                     /metrics/cadvisor endpoint scraped?",
            ),
            (
                r#"count(container_memory_working_set_bytes{namespace="{ns}"})"#,
                "no cAdvisor series for this namespace: does it run pods, and is NAMESPACE \
                     the experiment's namespace?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Pods,
        column: pod::NETWORK_USAGE,
        probes: &[
            (
                "count(container_network_receive_bytes_total)",
                "no cAdvisor network series (container_network_receive_bytes_total): is the \
                     kubelet's /metrics/cadvisor endpoint scraped?",
            ),
            (
                r#"count(container_network_receive_bytes_total{namespace="{ns}"})"#,
                "no cAdvisor network series for this namespace: does it run pods, and is \
                     NAMESPACE the experiment's namespace?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Pods,
        column: pod::WATTAGE_KEPLER,
        probes: &[
            (
                r#"count({__name__=~"kepler_(container|pod)_.+"})"#,
                "no Kepler series: is Kepler installed and scraped?",
            ),
            (
                r#"count({__name__=~"kepler_(container|pod)_.+", container_namespace="{ns}"}) or count({__name__=~"kepler_(container|pod)_.+", pod_namespace="{ns}"})"#,
                "Kepler reports no container of this namespace: does it run pods?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
    Diagnosis {
        table: TableKind::Pods,
        column: pod::WATTAGE_SCAPH,
        probes: &[
            (
                r#"count({__name__=~"scaph_.+"})"#,
                "no Scaphandre series: is Scaphandre installed and scraped?",
            ),
            (
                "count(scaph_process_power_consumption_microwatts)",
                "Scaphandre is scraped but exports no per-process power \
                     (scaph_process_power_consumption_microwatts)",
            ),
            (
                r#"count(scaph_process_power_consumption_microwatts{kubernetes_pod_name!=""})"#,
                "Scaphandre per-process series lack kubernetes_* labels: run Scaphandre \
                     with --containers",
            ),
            (
                r#"count(scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"})"#,
                "Scaphandre reports no process of this namespace: does it run pods?",
            ),
        ],
        otherwise: WINDOW_HINT,
    },
];
