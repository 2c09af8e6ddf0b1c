//! Kepler's series under both generations: ≤ 0.9 (per-zone counter names, ServiceMonitor
//! labels) and ≥ 0.10 (`kepler_node_cpu_joules_total{zone}`, `node_name`/`pod_name` labels).

use super::exposition::{Exposition, labels, with};
use super::{Convention, KeplerNode, Meter, Node, Pod, Scenario, zones};

impl Scenario {
    pub(super) fn render_kepler(
        &self,
        out: &mut Exposition,
        node: &Node,
        kepler: &KeplerNode,
        pods_here: &[&Pod],
    ) {
        match self.convention {
            Convention::A => {
                // Kepler ≤ 0.9 via its chart's ServiceMonitor: instance is the
                // node name, and every series carries the Kepler pod's own
                // pod/namespace labels.
                let base = labels(&[
                    ("job", "kepler"),
                    ("instance", node.name),
                    ("namespace", "kepler"),
                    ("pod", kepler.pod),
                    ("container", "kepler-exporter"),
                    ("endpoint", "http"),
                    ("service", "kepler-exporter"),
                ]);
                let node_series = with(&base, &[("package", "0"), ("source", "rapl-sysfs")]);
                for (zone, watts) in kepler.zones.named() {
                    let name = format!("kepler_node_{zone}_joules_total");
                    out.counter(&name, &node_series, watts);
                }
                if let Meter::KeplerPlatform(watts) = node.meter {
                    out.counter(
                        "kepler_node_platform_joules_total",
                        &with(&base, &[("source", "acpi")]),
                        watts,
                    );
                }
                // Kepler's pseudo-container for processes outside containers.
                let system = with(
                    &base,
                    &[
                        ("container_id", "system_processes"),
                        ("container_name", "system_processes"),
                        ("container_namespace", "system"),
                        ("pod_name", "system_processes"),
                    ],
                );
                for (zone, watts) in kepler.zones.named() {
                    let name = format!("kepler_container_{zone}_joules_total");
                    out.counter(&name, &system, watts / 8.0);
                }
                for pod in pods_here {
                    for container in &pod.containers {
                        let series = with(
                            &base,
                            &[
                                (
                                    "container_id",
                                    container.id.trim_start_matches("containerd://"),
                                ),
                                ("container_name", container.name),
                                ("container_namespace", pod.namespace),
                                ("pod_name", pod.name),
                            ],
                        );
                        for (zone, watts) in container.kepler.named() {
                            let name = format!("kepler_container_{zone}_joules_total");
                            out.counter(&name, &series, watts);
                        }
                    }
                }
            }
            Convention::B => {
                // Kepler ≥ 0.10, annotation-scraped: node_name/pod_name/
                // pod_namespace/zone from Kepler, plus the scrape job's
                // pod/namespace/node labels of the Kepler pod itself.
                let base = labels(&[
                    ("job", "kubernetes-pods"),
                    ("instance", &format!("{}:28282", kepler.pod_ip)),
                    ("namespace", "kepler"),
                    ("pod", kepler.pod),
                    ("node", node.name),
                ]);
                for (index, (zone, watts)) in kepler.zones.named().into_iter().enumerate() {
                    let path = format!("/sys/class/powercap/intel-rapl:0:{index}");
                    out.counter(
                        "kepler_node_cpu_joules_total",
                        &with(
                            &base,
                            &[("zone", zone), ("path", &path), ("node_name", node.name)],
                        ),
                        watts,
                    );
                }
                for pod in pods_here {
                    let mut sum = zones(0.0, 0.0, 0.0, 0.0);
                    for container in &pod.containers {
                        sum.package += container.kepler.package;
                        sum.dram += container.kepler.dram;
                        sum.core += container.kepler.core;
                        sum.uncore += container.kepler.uncore;
                    }
                    for (zone, watts) in sum.named() {
                        out.counter(
                            "kepler_pod_cpu_joules_total",
                            &with(
                                &base,
                                &[
                                    ("pod_id", pod.uid),
                                    ("pod_name", pod.name),
                                    ("pod_namespace", pod.namespace),
                                    ("node_name", node.name),
                                    ("zone", zone),
                                    ("state", "running"),
                                ],
                            ),
                            watts,
                        );
                    }
                }
            }
        }
    }
}
