//! The PromQL behind every column: SPEC §3 defaults and `QUERIES_FILE` overrides.
//!
//! Only configuration reaches a query: the validated namespace and window, never client input.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigError, promql_duration};

/// Interfaces whose traffic repeats pod traffic or never leaves the node.
pub const VIRTUAL_INTERFACES: &str = "lo|veth.*|cali.*|cilium.*|lxc.*|flannel.*|cni.*|docker.*|br-.*|virbr.*|vxlan.*|genev.*|tunl.*|kube-.*|weave.*|tun.*|tap.*";

/// Node columns after `instance, collection_time, observation_time`, with default queries.
pub const NODE_DEFAULTS: &[(&str, &str)] = &[
    (
        "cpu_usage",
        r#"sum by (node, instance) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[{w}]))"#,
    ),
    (
        "memory_usage",
        "100 * (1 - sum by (node, instance) (avg_over_time(node_memory_MemAvailable_bytes[{w}])) / sum by (node, instance) (avg_over_time(node_memory_MemTotal_bytes[{w}])))",
    ),
    (
        "network_usage",
        r#"sum by (node, instance) (increase(node_network_receive_bytes_total{device!~"{phys}"}[{w}]) + increase(node_network_transmit_bytes_total{device!~"{phys}"}[{w}]))"#,
    ),
    (
        "wattage",
        "sum by (node, instance) (avg_over_time(ipmi_dcmi_power_consumption_watts[{w}])) or sum by (node, instance) (rate(kepler_node_platform_joules_total[{w}]))",
    ),
    (
        "num_processes",
        "sum by (node, instance) (node_processes_pids) or sum by (node, instance) (node_procs_running)",
    ),
    (
        "kepler_wattage",
        r#"sum by (node, instance) (label_replace(rate(kepler_node_package_joules_total[{w}]), "zone", "package", "", "") or label_replace(rate(kepler_node_dram_joules_total[{w}]), "zone", "dram", "", "")) or sum by (node_name) (rate(kepler_node_cpu_joules_total{zone=~"package|dram"}[{w}]))"#,
    ),
    (
        "scaph_wattage",
        "sum by (node, instance) (avg_over_time(scaph_host_power_microwatts[{w}])) / 1e6",
    ),
    (
        "wattage_auxilary",
        r#"sum by (node, instance) (avg_over_time(scaph_process_power_consumption_microwatts{container_id=""}[{w}])) / 1e6"#,
    ),
];

/// Pod columns after `instance, collection_time, observation_time, name, namespace`.
pub const POD_DEFAULTS: &[(&str, &str)] = &[
    (
        "cpu_usage",
        r#"sum by (namespace, pod, node, instance) (rate(container_cpu_usage_seconds_total{namespace="{ns}", container!="", container!="POD", image!=""}[{w}]))"#,
    ),
    (
        "memory_usage",
        r#"sum by (namespace, pod, node, instance) (avg_over_time(container_memory_working_set_bytes{namespace="{ns}", container!="", container!="POD", image!=""}[{w}])) / 1e6"#,
    ),
    (
        "network_usage",
        r#"sum by (namespace, pod, node, instance) (rate(container_network_receive_bytes_total{namespace="{ns}", pod!=""}[{w}]) + rate(container_network_transmit_bytes_total{namespace="{ns}", pod!=""}[{w}])) / 1e6"#,
    ),
    (
        "wattage_kepler",
        r#"sum by (container_namespace, pod_name, node, instance) (label_replace(rate(kepler_container_package_joules_total{container_namespace="{ns}"}[{w}]), "zone", "package", "", "") or label_replace(rate(kepler_container_dram_joules_total{container_namespace="{ns}"}[{w}]), "zone", "dram", "", "")) or sum by (pod_namespace, pod_name, node_name) (rate(kepler_pod_cpu_joules_total{pod_namespace="{ns}", zone=~"package|dram"}[{w}]))"#,
    ),
    (
        "wattage_scaph",
        r#"sum by (kubernetes_pod_namespace, kubernetes_pod_name, kubernetes_node_name) (avg_over_time(scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"}[{w}])) / 1e6"#,
    ),
];

/// Which table a column belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    Nodes,
    Pods,
}

impl TableKind {
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Nodes => "nodes",
            TableKind::Pods => "pods",
        }
    }

    pub fn defaults(self) -> &'static [(&'static str, &'static str)] {
        match self {
            TableKind::Nodes => NODE_DEFAULTS,
            TableKind::Pods => POD_DEFAULTS,
        }
    }
}

/// One value column and the query that fills it (`None`: disabled, always empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnQuery {
    pub column: &'static str,
    pub promql: Option<String>,
}

/// The expanded queries of both tables, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySet {
    pub nodes: Vec<ColumnQuery>,
    pub pods: Vec<ColumnQuery>,
}

impl QuerySet {
    pub fn table(&self, kind: TableKind) -> &[ColumnQuery] {
        match kind {
            TableKind::Nodes => &self.nodes,
            TableKind::Pods => &self.pods,
        }
    }

    /// Defaults, overridden by `overrides` (table → column → query), with placeholders expanded.
    pub fn build(
        namespace: &str,
        window: Duration,
        overrides: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<QuerySet, ConfigError> {
        let fail = |message: String| ConfigError {
            variable: "QUERIES_FILE",
            message,
        };
        for (table, columns) in overrides {
            let kind = match table.as_str() {
                "nodes" => TableKind::Nodes,
                "pods" => TableKind::Pods,
                other => {
                    return Err(fail(format!(
                        "unknown table {other:?} (expected \"nodes\" or \"pods\")"
                    )));
                }
            };
            for column in columns.keys() {
                if !kind.defaults().iter().any(|(c, _)| c == column) {
                    let known: Vec<&str> = kind.defaults().iter().map(|(c, _)| *c).collect();
                    return Err(fail(format!(
                        "unknown {} column {column:?} (known: {})",
                        kind.name(),
                        known.join(", ")
                    )));
                }
            }
        }
        let w = promql_duration(window);
        let expand = |kind: TableKind| -> Vec<ColumnQuery> {
            kind.defaults()
                .iter()
                .map(|(column, default)| {
                    let text = overrides
                        .get(kind.name())
                        .and_then(|cols| cols.get(*column))
                        .map(String::as_str)
                        .unwrap_or(default);
                    let text = text.trim();
                    ColumnQuery {
                        column,
                        promql: (!text.is_empty()).then(|| expand(text, namespace, &w)),
                    }
                })
                .collect()
        };
        Ok(QuerySet {
            nodes: expand(TableKind::Nodes),
            pods: expand(TableKind::Pods),
        })
    }

    /// Defaults plus the overrides in `path` (JSON: `{"nodes": {"wattage": "..."}, "pods": {...}}`).
    pub fn load(
        namespace: &str,
        window: Duration,
        path: Option<&Path>,
    ) -> Result<QuerySet, ConfigError> {
        let overrides = match path {
            None => BTreeMap::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    variable: "QUERIES_FILE",
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                parse_overrides(&text).map_err(|message| ConfigError {
                    variable: "QUERIES_FILE",
                    message: format!("{}: {message}", path.display()),
                })?
            }
        };
        QuerySet::build(namespace, window, &overrides)
    }
}

/// Parses the queries file: a JSON object of tables, each an object of column → query string.
pub fn parse_overrides(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "expected JSON like {{\"nodes\": {{\"wattage\": \"<PromQL>\"}}, \"pods\": {{}}}}: {e}"
        )
    })
}

/// Fills `{ns}`, `{w}` and `{phys}`.
fn expand(template: &str, namespace: &str, window: &str) -> String {
    template
        .replace("{phys}", VIRTUAL_INTERFACES)
        .replace("{ns}", namespace)
        .replace("{w}", window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> Result<QuerySet, ConfigError> {
        QuerySet::build(
            "exp-1",
            Duration::from_secs(60),
            &parse_overrides(json).unwrap(),
        )
    }

    #[test]
    fn defaults_are_expanded() {
        let q = build("{}").unwrap();
        assert_eq!(q.nodes.len(), 8);
        assert_eq!(q.pods.len(), 5);
        let cpu = q.pods[0].promql.as_deref().unwrap();
        assert!(cpu.contains(r#"namespace="exp-1""#), "{cpu}");
        assert!(cpu.contains("[60s]"), "{cpu}");
        let net = q.nodes[2].promql.as_deref().unwrap();
        assert!(net.contains(r#"device!~"lo|veth.*|cali.*"#), "{net}");
        for c in q.nodes.iter().chain(&q.pods) {
            let text = c.promql.as_deref().unwrap();
            assert!(!text.contains('{') || !text.contains("{w}") && !text.contains("{ns}"));
        }
    }

    #[test]
    fn override_and_disable() {
        let q = build(r#"{"nodes": {"wattage": "sum by (node) (my_meter_watts{ns=\"{ns}\"})", "num_processes": "  "}}"#)
            .unwrap();
        assert_eq!(
            q.nodes[3].promql.as_deref(),
            Some(r#"sum by (node) (my_meter_watts{ns="exp-1"})"#)
        );
        assert_eq!(q.nodes[4].column, "num_processes");
        assert_eq!(q.nodes[4].promql, None);
        assert!(q.nodes[0].promql.is_some());
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = build(r#"{"nodes": {"watts": "x"}}"#).unwrap_err();
        assert_eq!(e.variable, "QUERIES_FILE");
        assert!(e.message.contains("\"watts\""), "{}", e.message);
        let e = build(r#"{"pods": {"kepler_wattage": "x"}}"#).unwrap_err();
        assert!(e.message.contains("pods column"), "{}", e.message);
        let e = build(r#"{"containers": {}}"#).unwrap_err();
        assert!(e.message.contains("containers"), "{}", e.message);
        assert!(parse_overrides("nodes:\n  cpu_usage: x").is_err());
    }
}
