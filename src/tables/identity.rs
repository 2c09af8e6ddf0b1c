//! Which row a series belongs to (docs/design.md, "Identity"): its node or pod, and for a
//! combined query its column.
//!
//! Stacks label the same thing differently (`node`, `node_name`, `kubernetes_node_name`,
//! `instance=IP:port`), so identity is resolved here from labels, and node IP addresses are
//! mapped to node names through kube-state-metrics and node-exporter series. The mapping is
//! cached: only addresses not yet known are asked for, a handful per cycle at most. Pure: the
//! queries that feed the cache are run by the cycle.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::prometheus::Labels;

/// Labels naming a series' node, most specific first.
const NODE_LABELS: &[&str] = &[
    "node",
    "node_name",
    "kubernetes_node_name",
    "nodename",
    "instance",
];
/// Labels naming a series' pod.
const POD_LABELS: &[&str] = &["pod_name", "kubernetes_pod_name", "pod"];
/// Workload namespace labels first: `namespace` alone may be the exporter pod's own.
const NAMESPACE_LABELS: &[&str] = &[
    "container_namespace",
    "pod_namespace",
    "kubernetes_pod_namespace",
    "namespace",
];
/// Labels of the address-mapping series besides node labels (`mapping_from`).
const MAPPING_LABELS: &[&str] = &["internal_ip", "pod_ip"];
/// Labels of the agent's own marks, read back from Prometheus (`src/marks/recall.rs`).
const MARK_LABELS: &[&str] = &["run", "mark", "seq"];
/// Label that tags each series of a combined query with its column.
pub const COLUMN_LABEL: &str = "prometheus_agent_column";

/// Every label the agent reads from a series, derived from the lists above: the answer
/// parser keeps these and skips all others unread (and `Labels::get` of any other name is a
/// bug that debug builds catch).
pub const KEPT_LABELS: [&str; KEPT_COUNT] = concat(&[
    NODE_LABELS,
    POD_LABELS,
    NAMESPACE_LABELS,
    MAPPING_LABELS,
    MARK_LABELS,
    &[COLUMN_LABEL],
]);
const KEPT_COUNT: usize = NODE_LABELS.len()
    + POD_LABELS.len()
    + NAMESPACE_LABELS.len()
    + MAPPING_LABELS.len()
    + MARK_LABELS.len()
    + 1;

/// Every label that names a series' row (node, pod, namespace), for grouping series by row.
pub const ROW_LABELS: [&str; ROW_COUNT] = concat(&[NODE_LABELS, POD_LABELS, NAMESPACE_LABELS]);
const ROW_COUNT: usize = NODE_LABELS.len() + POD_LABELS.len() + NAMESPACE_LABELS.len();

/// The lists one after the other; fails to compile when `N` is not their total length.
const fn concat<const N: usize>(lists: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut at, mut list) = (0, 0);
    while list < lists.len() {
        let mut i = 0;
        while i < lists[list].len() {
            out[at] = lists[list][i];
            at += 1;
            i += 1;
        }
        list += 1;
    }
    assert!(at == N, "KEPT_COUNT is not the lists' total length");
    out
}

/// Addresses asked for in one mapping query (keeps URLs short).
pub const LOOKUP_BATCH: usize = 100;
/// How long an address that no mapping series knows is left alone before asking again.
const UNMAPPED_RETRY: Duration = Duration::from_secs(60);
/// Bound on cached addresses; pod IPs churn, so the cache is dropped when it grows past this.
const CACHE_LIMIT: usize = 50_000;

fn first_label<'a>(labels: &'a Labels, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .filter_map(|n| labels.get(n))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// The node as labelled, with any `:port` suffix stripped (not yet mapped from an IP).
pub fn node_label(labels: &Labels) -> Option<&str> {
    first_label(labels, NODE_LABELS).map(strip_port)
}

/// The pod name, if the series names one.
pub fn pod_label(labels: &Labels) -> Option<&str> {
    first_label(labels, POD_LABELS)
}

/// The workload namespace the series names, if any.
pub fn namespace_label(labels: &Labels) -> Option<&str> {
    first_label(labels, NAMESPACE_LABELS)
}

/// `host:port` → `host`, `[v6]:port` → `v6`; a bare IPv6 address is left alone.
pub fn strip_port(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        return &rest[..end];
    }
    match s.rsplit_once(':') {
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host
        }
        _ => s,
    }
}

/// IP → node-name cache fed by `kube_node_info`, `node_uname_info` and `kube_pod_info`.
#[derive(Default)]
pub struct NodeNames {
    known: HashMap<IpAddr, String>,
    unmapped: HashMap<IpAddr, Instant>,
}

impl NodeNames {
    pub fn new() -> Self {
        Self::default()
    }

    /// The node name for `node` (a label value, port already stripped): mapped if it is a
    /// known IP address, else unchanged.
    pub fn resolve(&self, node: &str) -> String {
        match node.parse::<IpAddr>() {
            Ok(ip) => self
                .known
                .get(&ip)
                .cloned()
                .unwrap_or_else(|| node.to_string()),
            Err(_) => node.to_string(),
        }
    }

    /// Addresses among `nodes` that are neither mapped nor recently found unmappable.
    pub fn unknown<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a str>,
        now: Instant,
    ) -> Vec<IpAddr> {
        let set: BTreeSet<IpAddr> = nodes
            .into_iter()
            .filter_map(|n| n.parse::<IpAddr>().ok())
            .filter(|ip| !self.known.contains_key(ip))
            .filter(|ip| {
                self.unmapped
                    .get(ip)
                    .is_none_or(|since| now.duration_since(*since) >= UNMAPPED_RETRY)
            })
            .collect();
        set.into_iter().collect()
    }

    /// Records what the mapping queries for `asked` found: mappings are kept, addresses no
    /// series named are left alone for a while. The cache is emptied when it grows too large
    /// (pod addresses churn).
    pub fn learn(&mut self, asked: &[IpAddr], found: Vec<(IpAddr, String)>, now: Instant) {
        if self.known.len() + self.unmapped.len() > CACHE_LIMIT {
            self.known.clear();
            self.unmapped.clear();
        }
        self.insert(found);
        for ip in asked {
            if !self.known.contains_key(ip) {
                self.unmapped.insert(*ip, now);
            }
        }
    }

    /// Whether `node` is an address no mapping series names (it stays an IP in `instance`).
    pub fn is_unmapped_address(&self, node: &str) -> bool {
        node.parse::<IpAddr>()
            .is_ok_and(|ip| !self.known.contains_key(&ip))
    }

    /// Records mappings; earlier ones (better sources) win over later ones.
    fn insert(&mut self, mappings: impl IntoIterator<Item = (IpAddr, String)>) {
        for (ip, node) in mappings {
            self.unmapped.remove(&ip);
            self.known.entry(ip).or_insert(node);
        }
    }
}

/// PromQL regex for an address, escaped; `port` adds an optional `:port` (with brackets for v6).
fn ip_regex(ip: &IpAddr, port: bool) -> String {
    // Backslashes are doubled: the regex sits inside a PromQL double-quoted string.
    let text = ip.to_string().replace('.', "\\\\.");
    match (port, ip) {
        (false, _) => text,
        (true, IpAddr::V4(_)) => format!("{text}(:[0-9]+)?"),
        (true, IpAddr::V6(_)) => format!("{text}|\\\\[{text}\\\\](:[0-9]+)?"),
    }
}

/// The three mapping queries for `ips`, most authoritative first.
pub fn mapping_queries(ips: &[IpAddr]) -> Vec<String> {
    let plain: Vec<String> = ips.iter().map(|ip| ip_regex(ip, false)).collect();
    let ported: Vec<String> = ips.iter().map(|ip| ip_regex(ip, true)).collect();
    let plain = plain.join("|");
    vec![
        format!(r#"max by (internal_ip, node) (kube_node_info{{internal_ip=~"{plain}"}})"#),
        format!(
            r#"max by (instance, nodename) (node_uname_info{{instance=~"{}"}})"#,
            ported.join("|")
        ),
        format!(r#"max by (pod_ip, node) (kube_pod_info{{pod_ip=~"{plain}", node!=""}})"#),
    ]
}

/// The IP → node pair a series of any mapping query names, if any.
pub fn mapping_from(labels: &Labels) -> Option<(IpAddr, String)> {
    let (addr, node) = if let Some(ip) = labels.get("internal_ip") {
        (ip, labels.get("node")?)
    } else if let Some(ip) = labels.get("pod_ip") {
        (ip, labels.get("node")?)
    } else {
        (strip_port(labels.get("instance")?), labels.get("nodename")?)
    };
    let ip = addr.parse::<IpAddr>().ok()?;
    (!node.is_empty()).then(|| (ip, node.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn kept_labels_are_distinct() {
        let distinct: BTreeSet<&str> = KEPT_LABELS.iter().copied().collect();
        assert_eq!(distinct.len(), KEPT_LABELS.len(), "{KEPT_LABELS:?}");
    }

    #[test]
    fn node_label_precedence() {
        let l = labels(&[("instance", "10.0.0.1:9100"), ("node", "worker-1")]);
        assert_eq!(node_label(&l), Some("worker-1"));
        let l = labels(&[("instance", "worker-2"), ("node_name", "")]);
        assert_eq!(node_label(&l), Some("worker-2"));
        let l = labels(&[("kubernetes_node_name", "w3"), ("nodename", "other")]);
        assert_eq!(node_label(&l), Some("w3"));
        let l = labels(&[("instance", "192.0.2.7:9100")]);
        assert_eq!(node_label(&l), Some("192.0.2.7"));
        assert_eq!(node_label(&labels(&[("job", "x")])), None);
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("10.0.0.1:9100"), "10.0.0.1");
        assert_eq!(strip_port("worker-1"), "worker-1");
        assert_eq!(strip_port("[fd00::1]:9100"), "fd00::1");
        assert_eq!(strip_port("fd00::1"), "fd00::1");
        assert_eq!(strip_port("host:http"), "host:http");
    }

    #[test]
    fn pod_and_namespace_labels() {
        // Kepler ≤ 0.9 under kube-prometheus-stack: `pod`/`namespace` are the exporter's own.
        let l = labels(&[
            ("pod", "kepler-abc"),
            ("namespace", "monitoring"),
            ("pod_name", "work-0"),
            ("container_namespace", "exp"),
        ]);
        assert_eq!(pod_label(&l), Some("work-0"));
        assert_eq!(namespace_label(&l), Some("exp"));
        let l = labels(&[("kubernetes_pod_name", "w"), ("pod", "scaph-1")]);
        assert_eq!(pod_label(&l), Some("w"));
        let l = labels(&[("pod", "p"), ("namespace", "exp")]);
        assert_eq!(
            (pod_label(&l), namespace_label(&l)),
            (Some("p"), Some("exp"))
        );
    }

    #[test]
    fn mapping_sources() {
        let found: Vec<(IpAddr, String)> = [
            labels(&[("internal_ip", "192.0.2.1"), ("node", "a")]),
            labels(&[("instance", "192.0.2.2:9100"), ("nodename", "b")]),
            labels(&[("pod_ip", "198.51.100.9"), ("node", "c")]),
            labels(&[("pod_ip", "not-an-ip"), ("node", "d")]),
            labels(&[("pod_ip", "198.51.100.10"), ("node", "")]),
        ]
        .iter()
        .filter_map(mapping_from)
        .collect();
        assert_eq!(
            found,
            vec![
                ("192.0.2.1".parse().unwrap(), "a".to_string()),
                ("192.0.2.2".parse().unwrap(), "b".to_string()),
                ("198.51.100.9".parse().unwrap(), "c".to_string()),
            ]
        );
    }

    #[test]
    fn cache_resolves_and_asks_only_for_unknown() {
        let mut names = NodeNames::new();
        let now = Instant::now();
        let nodes = ["192.0.2.1", "worker-x", "192.0.2.2", "192.0.2.1"];
        let unknown = names.unknown(nodes, now);
        assert_eq!(unknown.len(), 2);
        names.insert(vec![("192.0.2.1".parse().unwrap(), "a".to_string())]);
        names.insert(vec![("192.0.2.1".parse().unwrap(), "later".to_string())]);
        assert_eq!(names.resolve("192.0.2.1"), "a");
        assert_eq!(names.resolve("192.0.2.2"), "192.0.2.2");
        assert_eq!(names.resolve("worker-x"), "worker-x");
        names.learn(&["192.0.2.2".parse().unwrap()], Vec::new(), now);
        assert!(names.is_unmapped_address("192.0.2.2"));
        assert!(!names.is_unmapped_address("192.0.2.1"));
        assert!(!names.is_unmapped_address("worker-x"));
        assert!(names.unknown(nodes, now).is_empty());
        assert_eq!(names.unknown(nodes, now + UNMAPPED_RETRY).len(), 1);
    }

    #[test]
    fn mapping_queries_escape_addresses() {
        let q = mapping_queries(&["192.0.2.1".parse().unwrap(), "fd00::1".parse().unwrap()]);
        assert_eq!(
            q[0],
            r#"max by (internal_ip, node) (kube_node_info{internal_ip=~"192\\.0\\.2\\.1|fd00::1"})"#
        );
        assert!(
            q[1].contains(r#"192\\.0\\.2\\.1(:[0-9]+)?|fd00::1|\\[fd00::1\\](:[0-9]+)?"#),
            "{}",
            q[1]
        );
        assert!(q[2].starts_with("max by (pod_ip, node) (kube_pod_info{pod_ip=~"));
    }
}
