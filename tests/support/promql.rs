//! The default queries as first specified (with `increase` for the node
//! `network_usage`), evaluated directly against Prometheus (or any
//! engine, see `engine::InstantQuery`), with the identity rules of docs/design.md applied
//! by a small resolver of our own. This checks the scenario and its truth
//! against real PromQL, independently of the agent.

use std::collections::{BTreeMap, HashMap};

use super::engine::InstantQuery;

/// The `{phys}` regex of virtual interfaces.
pub const VIRTUAL_INTERFACES: &str = "lo|veth.*|cali.*|cilium.*|lxc.*|flannel.*|cni.*|docker.*|br-.*|virbr.*|vxlan.*|genev.*|tunl.*|kube-.*|weave.*|tun.*|tap.*";

pub const NODE_QUERIES: [(&str, &str); 8] = [
    (
        "cpu_usage",
        r#"sum by (node, instance) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[{w}]))"#,
    ),
    (
        "memory_usage",
        r#"100 * (1 - sum by (node, instance) (avg_over_time(node_memory_MemAvailable_bytes[{w}])) / sum by (node, instance) (avg_over_time(node_memory_MemTotal_bytes[{w}])))"#,
    ),
    (
        "network_usage",
        r#"sum by (node, instance) (increase(node_network_receive_bytes_total{device!~"{phys}"}[{w}]) + increase(node_network_transmit_bytes_total{device!~"{phys}"}[{w}]))"#,
    ),
    (
        "wattage",
        r#"sum by (node, instance) (avg_over_time(ipmi_dcmi_power_consumption_watts[{w}])) or sum by (node, instance) (rate(kepler_node_platform_joules_total[{w}]))"#,
    ),
    (
        "num_processes",
        r#"sum by (node, instance) (node_processes_pids) or sum by (node, instance) (node_procs_running)"#,
    ),
    (
        "kepler_wattage",
        r#"sum by (node, instance) (label_replace(rate(kepler_node_package_joules_total[{w}]), "zone", "package", "", "") or label_replace(rate(kepler_node_dram_joules_total[{w}]), "zone", "dram", "", "")) or sum by (node_name) (rate(kepler_node_cpu_joules_total{zone=~"package|dram"}[{w}]))"#,
    ),
    (
        "scaph_wattage",
        r#"sum by (node, instance) (avg_over_time(scaph_host_power_microwatts[{w}])) / 1e6"#,
    ),
    (
        "wattage_auxilary",
        r#"sum by (node, instance) (avg_over_time(scaph_process_power_consumption_microwatts{container_id=""}[{w}])) / 1e6"#,
    ),
];

pub const POD_QUERIES: [(&str, &str); 5] = [
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

pub fn render(template: &str, namespace: &str, window: &str) -> String {
    template
        .replace("{ns}", namespace)
        .replace("{w}", window)
        .replace("{phys}", VIRTUAL_INTERFACES)
}

type Labels = BTreeMap<String, String>;

/// CSV rows of a table, as strings.
pub type Rows = Vec<Vec<String>>;

fn series(result: &[serde_json::Value]) -> Vec<(Labels, f64)> {
    result
        .iter()
        .filter_map(|item| {
            let labels = item["metric"]
                .as_object()?
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            let value = item["value"][1].as_str()?.parse::<f64>().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// The node identity of docs/design.md: IPs mapped through kube-state-metrics and node-exporter.
struct Resolver {
    ip_to_node: HashMap<String, String>,
}

impl Resolver {
    fn load<Q: InstantQuery + ?Sized>(prometheus: &Q, time_ms: i64) -> Result<Resolver, String> {
        let mut ip_to_node = HashMap::new();
        let lookups = [
            ("kube_node_info", "internal_ip", "node"),
            ("node_uname_info", "instance", "nodename"),
            ("kube_pod_info", "pod_ip", "node"),
        ];
        for (metric, address, name) in lookups {
            for (labels, _) in series(&prometheus.instant(metric, time_ms)?) {
                if let (Some(address), Some(name)) = (labels.get(address), labels.get(name)) {
                    ip_to_node
                        .entry(strip_port(address).to_string())
                        .or_insert_with(|| name.clone());
                }
            }
        }
        Ok(Resolver { ip_to_node })
    }

    fn node(&self, labels: &Labels) -> Option<String> {
        let raw = [
            "node",
            "node_name",
            "kubernetes_node_name",
            "nodename",
            "instance",
        ]
        .iter()
        .find_map(|key| labels.get(*key).filter(|v| !v.is_empty()))?;
        let host = strip_port(raw);
        if host.parse::<std::net::IpAddr>().is_ok() {
            Some(
                self.ip_to_node
                    .get(host)
                    .cloned()
                    .unwrap_or_else(|| host.to_string()),
            )
        } else {
            Some(host.to_string())
        }
    }
}

fn strip_port(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    }
}

fn pod_name(labels: &Labels) -> Option<String> {
    ["pod_name", "kubernetes_pod_name", "pod"]
        .iter()
        .find_map(|key| labels.get(*key).filter(|v| !v.is_empty()).cloned())
}

fn format_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        String::new()
    }
}

/// The node and pod tables (header and rows, timestamps left empty) that
/// The default queries give at `time_ms`. Any row that two series of one
/// column resolve to is an error: the scenario must not contain such a case.
pub fn spec_tables<Q: InstantQuery + ?Sized>(
    prometheus: &Q,
    namespace: &str,
    window: &str,
    time_ms: i64,
) -> Result<(Rows, Rows), String> {
    tables_with(
        prometheus,
        &NODE_QUERIES,
        &POD_QUERIES,
        namespace,
        window,
        time_ms,
    )
}

/// As [`spec_tables`], with other query templates (column, PromQL), in column order.
pub fn tables_with<Q: InstantQuery + ?Sized>(
    prometheus: &Q,
    node_queries: &[(&'static str, &str)],
    pod_queries: &[(&'static str, &str)],
    namespace: &str,
    window: &str,
    time_ms: i64,
) -> Result<(Rows, Rows), String> {
    let resolver = Resolver::load(prometheus, time_ms)?;

    let mut nodes: BTreeMap<String, HashMap<&str, f64>> = BTreeMap::new();
    for &(column, template) in node_queries {
        let query = render(template, namespace, window);
        for (labels, value) in series(&prometheus.instant(&query, time_ms)?) {
            let node = resolver
                .node(&labels)
                .ok_or_else(|| format!("{column}: no node identity in {labels:?}"))?;
            let row = nodes.entry(node.clone()).or_default();
            if row.insert(column, value).is_some() {
                return Err(format!("{column}: two series for node {node}"));
            }
        }
    }
    let node_rows = nodes
        .into_iter()
        .map(|(node, values)| {
            let mut row = vec![node, String::new(), String::new()];
            row.extend(node_queries.iter().map(|(column, _)| {
                values
                    .get(column)
                    .map(|v| format_number(*v))
                    .unwrap_or_default()
            }));
            row
        })
        .collect();

    let mut pods: BTreeMap<String, (String, HashMap<&str, f64>)> = BTreeMap::new();
    for &(column, template) in pod_queries {
        let query = render(template, namespace, window);
        for (labels, value) in series(&prometheus.instant(&query, time_ms)?) {
            let pod = pod_name(&labels).ok_or_else(|| format!("{column}: no pod in {labels:?}"))?;
            let node = resolver.node(&labels).unwrap_or_default();
            let (row_node, values) = pods
                .entry(pod.clone())
                .or_insert_with(|| (node.clone(), HashMap::new()));
            if *row_node != node {
                return Err(format!(
                    "{column}: pod {pod} on {node}, elsewhere on {row_node}"
                ));
            }
            if values.insert(column, value).is_some() {
                return Err(format!("{column}: two series for pod {pod}"));
            }
        }
    }
    let pod_rows = pods
        .into_iter()
        .map(|(pod, (node, values))| {
            let mut row = vec![
                node,
                String::new(),
                String::new(),
                pod,
                namespace.to_string(),
            ];
            row.extend(pod_queries.iter().map(|(column, _)| {
                values
                    .get(column)
                    .map(|v| format_number(*v))
                    .unwrap_or_default()
            }));
            row
        })
        .collect();
    Ok((node_rows, pod_rows))
}
