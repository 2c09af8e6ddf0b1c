//! The PromQL behind every column: the default queries and `QUERIES_FILE` overrides.
//!
//! Only configuration and numbers the agent formats itself reach a query: the validated
//! namespace, the window, and (for energy) the length of the requested span. Never client
//! text.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::ConfigError;
use crate::tables::format::format_seconds;
use crate::tables::schema::{
    Measure, PerTable, TableKind, node, node_energy, pod, pod_energy, value_columns,
};
use crate::time::Millis;

/// Interfaces whose traffic repeats pod traffic or never leaves the node.
pub const VIRTUAL_INTERFACES: &str = "lo|veth.*|cali.*|cilium.*|lxc.*|flannel.*|cni.*|docker.*|br-.*|virbr.*|vxlan.*|genev.*|tunl.*|kube-.*|weave.*|tun.*|tap.*";

// What the defaults cost Prometheus (docs/engines.md, "What the queries cost the server";
// measured with `bench/prometheus-cost.py`). Most of a query's cost is per series it selects (the index,
// copying labels, sorting, decoding the chunk, GC), so each selector names exactly the series
// it needs and no more, with equality matchers where one works; what stays:
// - A matcher that accepts an empty value (`container_id=""`) makes Prometheus merge the
//   postings of every other value of that label (one per container of the cluster); the
//   auxiliary power needs it, no other label says "outside any container".
// - `pod!=""` cost the same merge over every pod name; it is gone from the pod network query:
//   the namespace matcher already selects pod series only, and a series without a pod could
//   not make a pod row anyway.
// - Kepler's package and DRAM counters are summed per pod (node) before the two are joined,
//   so `or` matches one series per pod instead of two per container, and the `label_replace`
//   that kept the two zones apart relabelled every container series. Per pod, the DRAM sum
//   keeps `container_namespace` (fixed by the selector) instead: its label set differs from
//   the package sum's, so `or` keeps both, with no relabelling at all (27 % less CPU at 2,000
//   pods). The node query keeps a `label_replace` on its 200-odd DRAM sums: no label is
//   sure to be on every node series. The same series summed in another order: equal to the
//   10 significant digits printed.
// - Pod queries group by pod and node only: the namespace is fixed by every selector, and
//   each label kept is encoded for every series of the answer.
// - `or` evaluates both sides: the second Kepler generation, the Kepler platform counter and
//   `node_procs_running` cost little when absent, and are needed where present.

/// Default queries of the node table, in column order.
const NODE_DEFAULTS: &[(&str, &str)] = &[
    (
        node::CPU_USAGE,
        r#"sum by (node, instance) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[{w}]))"#,
    ),
    (
        node::MEMORY_USAGE,
        "100 * (1 - sum by (node, instance) (avg_over_time(node_memory_MemAvailable_bytes[{w}])) / sum by (node, instance) (avg_over_time(node_memory_MemTotal_bytes[{w}])))",
    ),
    (
        node::NETWORK_USAGE,
        r#"sum by (node, instance) (rate(node_network_receive_bytes_total{device!~"{phys}"}[{w}]) + rate(node_network_transmit_bytes_total{device!~"{phys}"}[{w}])) * {ws}"#,
    ),
    (
        node::WATTAGE,
        "sum by (node, instance) (avg_over_time(ipmi_dcmi_power_consumption_watts[{w}])) or sum by (node, instance) (rate(kepler_node_platform_joules_total[{w}]))",
    ),
    (
        node::NUM_PROCESSES,
        "sum by (node, instance) (node_processes_pids) or sum by (node, instance) (node_procs_running)",
    ),
    (
        node::KEPLER_WATTAGE,
        r#"sum by (node, instance) (sum by (node, instance) (rate(kepler_node_package_joules_total[{w}])) or label_replace(sum by (node, instance) (rate(kepler_node_dram_joules_total[{w}])), "zone", "dram", "", "")) or sum by (node_name) (rate(kepler_node_cpu_joules_total{zone=~"package|dram"}[{w}]))"#,
    ),
    (
        node::SCAPH_WATTAGE,
        "sum by (node, instance) (avg_over_time(scaph_host_power_microwatts[{w}])) / 1e6",
    ),
    (
        node::WATTAGE_AUXILARY,
        r#"sum by (node, instance) (avg_over_time(scaph_process_power_consumption_microwatts{container_id=""}[{w}])) / 1e6"#,
    ),
];

/// Default queries of the pod table, in column order. Every selector names the namespace, so
/// the namespace label is not kept in the answer (the namespace of every row is the observed
/// one).
const POD_DEFAULTS: &[(&str, &str)] = &[
    (
        pod::CPU_USAGE,
        r#"sum by (pod, node, instance) (rate(container_cpu_usage_seconds_total{namespace="{ns}", container!="", container!="POD", image!=""}[{w}]))"#,
    ),
    (
        pod::MEMORY_USAGE,
        r#"sum by (pod, node, instance) (avg_over_time(container_memory_working_set_bytes{namespace="{ns}", container!="", container!="POD", image!=""}[{w}])) / 1e6"#,
    ),
    (
        pod::NETWORK_USAGE,
        r#"sum by (pod, node, instance) (rate(container_network_receive_bytes_total{namespace="{ns}"}[{w}]) + rate(container_network_transmit_bytes_total{namespace="{ns}"}[{w}])) / 1e6"#,
    ),
    (
        pod::WATTAGE_KEPLER,
        r#"sum by (pod_name, node, instance) (sum by (pod_name, node, instance) (rate(kepler_container_package_joules_total{container_namespace="{ns}"}[{w}])) or sum by (container_namespace, pod_name, node, instance) (rate(kepler_container_dram_joules_total{container_namespace="{ns}"}[{w}]))) or sum by (pod_name, node_name) (rate(kepler_pod_cpu_joules_total{pod_namespace="{ns}", zone=~"package|dram"}[{w}]))"#,
    ),
    (
        pod::WATTAGE_SCAPH,
        r#"sum by (kubernetes_pod_name, kubernetes_node_name) (avg_over_time(scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"}[{w}])) / 1e6"#,
    ),
];

/// Default energy queries of the node table. `{range}` is the requested span as a PromQL
/// duration and `{seconds}` its length in seconds. Counters give their growth; power gauges
/// give their time average times the span.
const ENERGY_NODE_DEFAULTS: &[(&str, &str)] = &[
    (
        node_energy::CPU_SECONDS,
        r#"sum by (node, instance) (increase(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[{range}]))"#,
    ),
    (
        node_energy::WATTAGE_JOULES,
        "sum by (node, instance) (avg_over_time(ipmi_dcmi_power_consumption_watts[{range}])) * {seconds} or sum by (node, instance) (increase(kepler_node_platform_joules_total[{range}]))",
    ),
    (
        node_energy::KEPLER_JOULES,
        r#"sum by (node, instance) (label_replace(increase(kepler_node_package_joules_total[{range}]), "zone", "package", "", "") or label_replace(increase(kepler_node_dram_joules_total[{range}]), "zone", "dram", "", "")) or sum by (node_name) (increase(kepler_node_cpu_joules_total{zone=~"package|dram"}[{range}]))"#,
    ),
    (
        node_energy::SCAPH_JOULES,
        "sum by (node, instance) (avg_over_time(scaph_host_power_microwatts[{range}])) / 1e6 * {seconds}",
    ),
    (
        node_energy::AUXILARY_JOULES,
        r#"sum by (node, instance) (avg_over_time(scaph_process_power_consumption_microwatts{container_id=""}[{range}])) / 1e6 * {seconds}"#,
    ),
];

/// Default energy queries of the pod table.
const ENERGY_POD_DEFAULTS: &[(&str, &str)] = &[
    (
        pod_energy::CPU_SECONDS,
        r#"sum by (namespace, pod, node, instance) (increase(container_cpu_usage_seconds_total{namespace="{ns}", container!="", container!="POD", image!=""}[{range}]))"#,
    ),
    (
        pod_energy::KEPLER_JOULES,
        r#"sum by (container_namespace, pod_name, node, instance) (label_replace(increase(kepler_container_package_joules_total{container_namespace="{ns}"}[{range}]), "zone", "package", "", "") or label_replace(increase(kepler_container_dram_joules_total{container_namespace="{ns}"}[{range}]), "zone", "dram", "", "")) or sum by (pod_namespace, pod_name, node_name) (increase(kepler_pod_cpu_joules_total{pod_namespace="{ns}", zone=~"package|dram"}[{range}]))"#,
    ),
    (
        pod_energy::SCAPH_JOULES,
        r#"sum by (kubernetes_pod_namespace, kubernetes_pod_name, kubernetes_node_name) (avg_over_time(scaph_process_power_consumption_microwatts{kubernetes_pod_namespace="{ns}"}[{range}])) / 1e6 * {seconds}"#,
    ),
];

/// The default queries of a table, in column order.
pub fn defaults(kind: TableKind, measure: Measure) -> &'static [(&'static str, &'static str)] {
    match (kind, measure) {
        (TableKind::Nodes, Measure::Live) => NODE_DEFAULTS,
        (TableKind::Pods, Measure::Live) => POD_DEFAULTS,
        (TableKind::Nodes, Measure::Energy) => ENERGY_NODE_DEFAULTS,
        (TableKind::Pods, Measure::Energy) => ENERGY_POD_DEFAULTS,
    }
}

/// The name of a table in the queries file: `nodes`, `pods`, `energy_nodes`, `energy_pods`.
fn file_section(kind: TableKind, measure: Measure) -> String {
    match measure {
        Measure::Live => kind.name().to_string(),
        Measure::Energy => format!("energy_{}", kind.name()),
    }
}

/// One value column and the query that fills it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnQuery {
    pub column: &'static str,
    /// `None`: disabled in the queries file; the column is always empty.
    pub promql: Option<String>,
    /// Whether the query comes from the queries file rather than the defaults.
    pub overridden: bool,
}

/// The expanded queries of every table, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Queries {
    pub live: PerTable<Vec<ColumnQuery>>,
    /// Energy queries with `{range}` and `{seconds}` still to fill (`energy_promql`).
    pub energy: PerTable<Vec<ColumnQuery>>,
}

/// Table → column → query, as read from the queries file.
pub type Overrides = BTreeMap<String, BTreeMap<String, String>>;

impl Queries {
    pub fn table(&self, kind: TableKind, measure: Measure) -> &[ColumnQuery] {
        match measure {
            Measure::Live => self.live.get(kind),
            Measure::Energy => self.energy.get(kind),
        }
    }

    /// Defaults, overridden by `overrides`, with `{ns}`, `{w}`, `{ws}` and `{phys}` filled in.
    pub fn build(
        namespace: &str,
        window: Duration,
        overrides: &Overrides,
    ) -> Result<Queries, ConfigError> {
        check_names(overrides)?;
        let expand = |kind: TableKind, measure: Measure| -> Vec<ColumnQuery> {
            defaults(kind, measure)
                .iter()
                .map(|(column, default)| {
                    let given = overrides
                        .get(&file_section(kind, measure))
                        .and_then(|columns| columns.get(*column));
                    let text = given.map(String::as_str).unwrap_or(default).trim();
                    ColumnQuery {
                        column,
                        promql: (!text.is_empty()).then(|| expand(text, namespace, window)),
                        overridden: given.is_some(),
                    }
                })
                .collect()
        };
        Ok(Queries {
            live: PerTable::new(|kind| expand(kind, Measure::Live)),
            energy: PerTable::new(|kind| expand(kind, Measure::Energy)),
        })
    }

    /// Defaults plus the overrides in `path` (JSON: `{"nodes": {"wattage": "..."}, ...}`).
    pub fn load(
        namespace: &str,
        window: Duration,
        path: Option<&Path>,
    ) -> Result<Queries, ConfigError> {
        let overrides = match path {
            None => Overrides::new(),
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
        Queries::build(namespace, window, &overrides)
    }
}

/// Every table and column named in the file must exist: a typo is an error, not a default.
fn check_names(overrides: &Overrides) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError {
        variable: "QUERIES_FILE",
        message,
    };
    let sections: Vec<(String, TableKind, Measure)> = Measure::ALL
        .iter()
        .flat_map(|m| TableKind::ALL.map(|k| (file_section(k, *m), k, *m)))
        .collect();
    for (table, columns) in overrides {
        let Some((_, kind, measure)) = sections.iter().find(|(name, _, _)| name == table) else {
            let names: Vec<&str> = sections.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(fail(format!(
                "unknown table {table:?} (expected one of {})",
                names.join(", ")
            )));
        };
        let known = value_columns(*kind, *measure);
        if let Some(column) = columns.keys().find(|c| !known.contains(&c.as_str())) {
            return Err(fail(format!(
                "unknown {table} column {column:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Parses the queries file: a JSON object of tables, each an object of column → query string.
pub fn parse_overrides(text: &str) -> Result<Overrides, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "expected JSON like {{\"nodes\": {{\"wattage\": \"<PromQL>\"}}, \"pods\": {{}}}}: {e}"
        )
    })
}

/// Fills `{ns}`, `{w}` (the window as a PromQL duration), `{ws}` (the window in seconds) and
/// `{phys}`.
fn expand(template: &str, namespace: &str, window: Duration) -> String {
    template
        .replace("{phys}", VIRTUAL_INTERFACES)
        .replace("{ns}", namespace)
        .replace("{ws}", &format_seconds(window.as_millis() as Millis))
        .replace("{w}", &promql_duration(window))
}

/// A duration as a PromQL range (`60s`, `1500ms`).
pub fn promql_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An energy query for a span of `span_ms`: `{range}` and `{seconds}` filled in.
pub fn energy_promql(template: &str, span_ms: Millis) -> String {
    let range = promql_duration(Duration::from_millis(span_ms.max(1) as u64));
    template
        .replace("{range}", &range)
        .replace("{seconds}", &format_seconds(span_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> Result<Queries, ConfigError> {
        Queries::build(
            "exp-1",
            Duration::from_secs(60),
            &parse_overrides(json).unwrap(),
        )
    }

    #[test]
    fn defaults_follow_the_columns_and_are_expanded() {
        for kind in TableKind::ALL {
            for measure in Measure::ALL {
                let names: Vec<&str> = defaults(kind, measure).iter().map(|(c, _)| *c).collect();
                assert_eq!(names, value_columns(kind, measure), "{kind:?} {measure:?}");
            }
        }
        let q = build("{}").unwrap();
        let cpu = q.live.pods[0].promql.as_deref().unwrap();
        assert!(cpu.contains(r#"namespace="exp-1""#), "{cpu}");
        assert!(cpu.contains("[60s]"), "{cpu}");
        let net = q.live.nodes[2].promql.as_deref().unwrap();
        assert!(net.contains(r#"device!~"lo|veth.*|cali.*"#), "{net}");
        // Bytes within the window as rate × seconds: the same on every engine.
        assert!(net.ends_with("[60s])) * 60"), "{net}");
        for c in q.live.nodes.iter().chain(&q.live.pods) {
            let text = c.promql.as_deref().unwrap();
            assert!(!text.contains("{w") && !text.contains("{ns}"), "{text}");
            assert!(!c.overridden);
        }
        let energy = q.energy.nodes[3].promql.as_deref().unwrap();
        assert!(
            energy.contains("{range}") && energy.contains("{seconds}"),
            "{energy}"
        );
    }

    #[test]
    fn promql_durations() {
        assert_eq!(promql_duration(Duration::from_secs(60)), "60s");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn energy_window_is_filled_in() {
        let q = build("{}").unwrap();
        let text = energy_promql(q.energy.nodes[3].promql.as_deref().unwrap(), 90_500);
        assert!(text.contains("[90500ms]"), "{text}");
        assert!(text.ends_with("/ 1e6 * 90.5"), "{text}");
        let text = energy_promql(q.energy.pods[0].promql.as_deref().unwrap(), 3_600_000);
        assert!(text.contains("[3600s]"), "{text}");
    }

    #[test]
    fn override_and_disable() {
        let q = build(r#"{"nodes": {"wattage": "sum by (node) (my_meter_watts{ns=\"{ns}\"})", "num_processes": "  "},
                        "energy_pods": {"scaph_joules": ""}}"#)
            .unwrap();
        assert_eq!(
            q.live.nodes[3].promql.as_deref(),
            Some(r#"sum by (node) (my_meter_watts{ns="exp-1"})"#)
        );
        assert!(q.live.nodes[3].overridden);
        assert_eq!(q.live.nodes[4].column, "num_processes");
        assert_eq!(q.live.nodes[4].promql, None);
        assert!(q.live.nodes[4].overridden);
        assert!(q.live.nodes[0].promql.is_some() && !q.live.nodes[0].overridden);
        assert_eq!(q.energy.pods[2].promql, None);
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = build(r#"{"nodes": {"watts": "x"}}"#).unwrap_err();
        assert_eq!(e.variable, "QUERIES_FILE");
        assert!(e.message.contains("\"watts\""), "{}", e.message);
        let e = build(r#"{"pods": {"kepler_wattage": "x"}}"#).unwrap_err();
        assert!(e.message.contains("pods column"), "{}", e.message);
        let e = build(r#"{"energy_nodes": {"wattage": "x"}}"#).unwrap_err();
        assert!(e.message.contains("energy_nodes column"), "{}", e.message);
        let e = build(r#"{"containers": {}}"#).unwrap_err();
        assert!(e.message.contains("containers"), "{}", e.message);
        assert!(parse_overrides("nodes:\n  cpu_usage: x").is_err());
    }
}
