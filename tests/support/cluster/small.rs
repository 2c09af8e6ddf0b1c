//! The small cluster most tests run against: three nodes that differ in every way the agent
//! must handle (missing exporters, an address known only to node-exporter, virtual
//! interfaces, a pod of another namespace, a pod measured at exactly zero).

use super::{
    Container, Convention, KeplerNode, Meter, NAMESPACE, Node, OTHER_NAMESPACE, Pod,
    ScaphandreNode, Scenario, infra_pods, p, zones,
};

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
                node_exporter: true,
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
                    estimated: false,
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
                node_exporter: true,
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
                    estimated: false,
                }),
                scaphandre: None,
            },
            Node {
                name: "worker-1",
                ip: "192.0.2.11",
                in_kube_node_info: true,
                node_exporter: true,
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
                    estimated: false,
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
            load: None,
            faults: Vec::new(),
        }
    }
}
