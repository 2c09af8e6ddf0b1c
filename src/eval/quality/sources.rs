//! The series each default column rests on, for the sample checks: the selectors of
//! `tables/queries.rs`'s default queries, each with its kind and its exporter. A column
//! overridden in `QUERIES_FILE` rests on series the agent does not know: only its values are
//! checked.

use crate::tables::queries::VIRTUAL_INTERFACES;
use crate::tables::schema::{TableKind, node, pod};

/// Counters can reset; gauges cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A selector of series a column rests on (`{ns}` and `{phys}` still to fill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub selector: &'static str,
    pub kind: Kind,
    /// Who exposes it, for the details of findings.
    pub exporter: &'static str,
}

const fn counter(selector: &'static str, exporter: &'static str) -> Source {
    Source {
        selector,
        kind: Kind::Counter,
        exporter,
    }
}

const fn gauge(selector: &'static str, exporter: &'static str) -> Source {
    Source {
        selector,
        kind: Kind::Gauge,
        exporter,
    }
}

/// A default column and the series it rests on; `power` columns get the power checks.
pub struct ColumnSources {
    pub table: TableKind,
    pub column: &'static str,
    pub sources: &'static [Source],
    pub power: bool,
}

const NODE_EXPORTER: &str = "node-exporter";
const CADVISOR: &str = "cAdvisor";
const KEPLER: &str = "Kepler";
const SCAPHANDRE: &str = "Scaphandre";
const IPMI: &str = "the IPMI/DCMI meter";

pub const COLUMNS: &[ColumnSources] = &[
    ColumnSources {
        table: TableKind::Nodes,
        column: node::CPU_USAGE,
        sources: &[counter(
            r#"node_cpu_seconds_total{mode!~"idle|iowait|steal"}"#,
            NODE_EXPORTER,
        )],
        power: false,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::MEMORY_USAGE,
        sources: &[
            gauge("node_memory_MemAvailable_bytes", NODE_EXPORTER),
            gauge("node_memory_MemTotal_bytes", NODE_EXPORTER),
        ],
        power: false,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::NETWORK_USAGE,
        sources: &[
            counter(
                r#"node_network_receive_bytes_total{device!~"{phys}"}"#,
                NODE_EXPORTER,
            ),
            counter(
                r#"node_network_transmit_bytes_total{device!~"{phys}"}"#,
                NODE_EXPORTER,
            ),
        ],
        power: false,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::WATTAGE,
        sources: &[
            gauge("ipmi_dcmi_power_consumption_watts", IPMI),
            counter("kepler_node_platform_joules_total", KEPLER),
        ],
        power: true,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::NUM_PROCESSES,
        sources: &[
            gauge("node_processes_pids", NODE_EXPORTER),
            gauge("node_procs_running", NODE_EXPORTER),
        ],
        power: false,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::KEPLER_WATTAGE,
        sources: &[
            counter("kepler_node_package_joules_total", KEPLER),
            counter("kepler_node_dram_joules_total", KEPLER),
            counter(
                r#"kepler_node_cpu_joules_total{zone=~"package|dram"}"#,
                KEPLER,
            ),
        ],
        power: true,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::SCAPH_WATTAGE,
        sources: &[gauge("scaph_host_power_microwatts", SCAPHANDRE)],
        power: true,
    },
    ColumnSources {
        table: TableKind::Nodes,
        column: node::WATTAGE_AUXILARY,
        sources: &[gauge(
            r#"scaph_process_power_consumption_microwatts{container_id=""}"#,
            SCAPHANDRE,
        )],
        power: true,
    },
    ColumnSources {
        table: TableKind::Pods,
        column: pod::CPU_USAGE,
        sources: &[counter(
            r#"container_cpu_usage_seconds_total{namespace="{ns}", container!="", container!="POD", image!=""}"#,
            CADVISOR,
        )],
        power: false,
    },
    ColumnSources {
        table: TableKind::Pods,
        column: pod::MEMORY_USAGE,
        sources: &[gauge(
            r#"container_memory_working_set_bytes{namespace="{ns}", container!="", container!="POD", image!=""}"#,
            CADVISOR,
        )],
        power: false,
    },
    ColumnSources {
        table: TableKind::Pods,
        column: pod::NETWORK_USAGE,
        sources: &[
            counter(
                r#"container_network_receive_bytes_total{namespace="{ns}"}"#,
                CADVISOR,
            ),
            counter(
                r#"container_network_transmit_bytes_total{namespace="{ns}"}"#,
                CADVISOR,
            ),
        ],
        power: false,
    },
    ColumnSources {
        table: TableKind::Pods,
        column: pod::WATTAGE_KEPLER,
        sources: &[
            counter(
                r#"kepler_container_package_joules_total{container_namespace="{ns}"}"#,
                KEPLER,
            ),
            counter(
                r#"kepler_container_dram_joules_total{container_namespace="{ns}"}"#,
                KEPLER,
            ),
            counter(
                r#"kepler_pod_cpu_joules_total{pod_namespace="{ns}", zone=~"package|dram"}"#,
                KEPLER,
            ),
        ],
        power: true,
    },
    ColumnSources {
        table: TableKind::Pods,
        column: pod::WATTAGE_SCAPH,
        sources: &[gauge(
            r#"scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"}"#,
            SCAPHANDRE,
        )],
        power: true,
    },
];

/// The sources of a default column.
pub fn of(table: TableKind, column: &str) -> Option<&'static ColumnSources> {
    COLUMNS
        .iter()
        .find(|c| c.table == table && c.column == column)
}

/// Whether a column holds power (W), whether its query is the default or not.
pub fn is_power(table: TableKind, column: &str) -> bool {
    of(table, column).is_some_and(|c| c.power)
}

/// The node column measuring what a pod power column measures, from the same source.
pub fn node_counterpart(pod_column: &str) -> Option<&'static str> {
    match pod_column {
        pod::WATTAGE_KEPLER => Some(node::KEPLER_WATTAGE),
        pod::WATTAGE_SCAPH => Some(node::SCAPH_WATTAGE),
        _ => None,
    }
}

/// A selector with the namespace and the virtual-interface regex filled in.
pub fn expand(selector: &str, namespace: &str) -> String {
    selector
        .replace("{ns}", namespace)
        .replace("{phys}", VIRTUAL_INTERFACES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::queries::Queries;
    use crate::tables::schema::{Measure, value_columns};

    #[test]
    fn every_source_is_in_its_default_query() {
        let queries = Queries::build(
            "exp",
            std::time::Duration::from_secs(60),
            &Default::default(),
        )
        .unwrap();
        for c in COLUMNS {
            let index = value_columns(c.table, Measure::Live)
                .iter()
                .position(|name| *name == c.column)
                .expect("a live column");
            let promql = queries.table(c.table, Measure::Live)[index]
                .promql
                .clone()
                .unwrap();
            for s in c.sources {
                let selector = expand(s.selector, "exp");
                let metric = &selector[..selector.find('{').unwrap_or(selector.len())];
                assert!(
                    promql.contains(metric),
                    "{}: {metric} not in {promql}",
                    c.column
                );
                for matcher in selector.split(['{', '}', ',']).skip(1).map(str::trim) {
                    assert!(
                        promql.contains(matcher),
                        "{}: {matcher} not in {promql}",
                        c.column
                    );
                }
            }
        }
    }
}
