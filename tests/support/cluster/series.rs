//! Every series of a scenario, labelled as each exporter and each convention label them:
//! node-exporter, the IPMI exporter, Scaphandre, cAdvisor and kube-state-metrics (Kepler is
//! in `kepler.rs`).

use std::collections::HashMap;

use super::exposition::{Exposition, labels, with};
use super::faults::{Origin, Source};
use super::{Convention, Meter, Node, Pod, Scenario};

const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.9";
const KSM_INSTANCE: &str = "198.51.100.5:8080";

impl Scenario {
    /// The exposition (text format 0.0.4) at `now_ms`, counters having grown
    /// since `t0_ms`.
    pub fn render(&self, t0_ms: i64, now_ms: i64) -> String {
        self.exposition().render(t0_ms, now_ms)
    }

    /// Every series with its labels rendered once; only values and timestamps
    /// change from one scrape to the next. Panics on a fault that does not fit the scenario
    /// (`with_fault` checks them).
    pub fn exposition(&self) -> Exposition {
        let faults = self
            .faults
            .iter()
            .map(|f| self.resolve(f).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let mut out = Exposition::new(self.load.clone(), faults);
        let index: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.name, i))
            .collect();
        let mut pods_by_node: HashMap<&str, Vec<(usize, &Pod)>> = HashMap::new();
        for (p, pod) in self.pods.iter().enumerate() {
            pods_by_node.entry(pod.node).or_default().push((p, pod));
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let pods_here = pods_by_node.get(node.name).map_or(&[][..], Vec::as_slice);
            self.render_node(&mut out, n, pods_here);
        }
        for (p, pod) in self.pods.iter().enumerate() {
            self.render_pod(&mut out, index[pod.node], p);
        }
        self.render_kube_state_metrics(&mut out);
        out
    }

    fn render_node(&self, out: &mut Exposition, n: usize, pods_here: &[(usize, &Pod)]) {
        let node = &self.nodes[n];
        let conv = self.convention;
        let from = |source| Origin {
            node: Some(n),
            pod: None,
            source,
        };
        if node.node_exporter {
            out.from(from(Source::NodeExporter));
            self.render_node_exporter(out, node);
        }

        // IPMI power meter
        if let Meter::Ipmi(watts) = node.meter {
            out.from(from(Source::Ipmi));
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
            out.load_gauge("ipmi_dcmi_power_consumption_watts", &ipmi, watts);
        }

        // Kepler
        if let Some(kepler) = &node.kepler {
            self.render_kepler(out, n, kepler, pods_here);
        }

        // Scaphandre
        if let Some(scaph) = &node.scaphandre {
            out.from(from(Source::Scaphandre));
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
            out.load_gauge("scaph_host_power_microwatts", &base, scaph.host_watts * 1e6);
            for process in &scaph.system_processes {
                let pid = process.pid.to_string();
                out.load_gauge(
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
            out.load_gauge(
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
            for &(p, pod) in pods_here {
                out.from(Origin {
                    pod: Some(p),
                    ..from(Source::Scaphandre)
                });
                for container in &pod.containers {
                    for process in &container.processes {
                        let pid = process.pid.to_string();
                        out.load_gauge(
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

    fn render_node_exporter(&self, out: &mut Exposition, node: &Node) {
        let exporter = match self.convention {
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
            let labels = with(&exporter, &[("cpu", &cpu.to_string()), ("mode", mode)]);
            if *mode == "idle" {
                // What the busy modes leave unused at less than full load.
                let busy = node
                    .cpu
                    .iter()
                    .filter(|(c, m, _)| c == cpu && *m != "idle")
                    .map(|(_, _, rate)| rate)
                    .sum();
                out.idle_counter("node_cpu_seconds_total", &labels, *rate, busy);
            } else {
                out.counter("node_cpu_seconds_total", &labels, *rate);
            }
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
    }

    fn render_pod(&self, out: &mut Exposition, n: usize, p: usize) {
        let (node, pod) = (&self.nodes[n], &self.pods[p]);
        out.from(Origin {
            node: Some(n),
            pod: Some(p),
            source: Source::Cadvisor,
        });
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

    fn render_kube_state_metrics(&self, out: &mut Exposition) {
        let nodes = self.node_map();
        let from = |pod| Origin {
            node: self.ksm_node(),
            pod,
            source: Source::KubeStateMetrics,
        };
        out.from(from(None));
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
            .enumerate()
            .map(|(p, pod)| (Some(p), pod.name, pod.namespace, pod.node, pod.ip));
        let infra = self
            .infra_pods
            .iter()
            .map(|pod| (None, pod.name, pod.namespace, pod.node, pod.ip));
        for (p, name, namespace, node, ip) in workload.chain(infra) {
            out.from(from(p));
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
