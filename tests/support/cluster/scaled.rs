//! A large generated cluster for the scale tests and benchmarks: every node has every
//! exporter, figures vary with the index in exact binary fractions.

use super::{
    Container, Convention, KeplerNode, Meter, NAMESPACE, Node, OTHER_NAMESPACE, Pod,
    ScaphandreNode, Scenario, infra_pods, p, zones,
};

impl Scenario {
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
            load: None,
            faults: Vec::new(),
        }
    }
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
        node_exporter: true,
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
            estimated: false,
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
