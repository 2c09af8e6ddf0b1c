//! Kepler's series under both generations: ≤ 0.9 (per-zone counter names, ServiceMonitor
//! labels) and ≥ 0.10 (`kepler_node_cpu_joules_total{zone}`, `node_name`/`pod_name` labels).

use super::exposition::{Exposition, labels, with};
use super::faults::{Origin, Source};
use super::{Convention, KeplerNode, Meter, Pod, Scenario, zones};

impl Scenario {
    /// The series of node `n`'s Kepler, `pods_here` being the pods of that node.
    pub(super) fn render_kepler(
        &self,
        out: &mut Exposition,
        n: usize,
        kepler: &KeplerNode,
        pods_here: &[(usize, &Pod)],
    ) {
        let node = &self.nodes[n];
        let from = |pod| Origin {
            node: Some(n),
            pod,
            source: Source::Kepler,
        };
        out.from(from(None));
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
                // As Kepler 0.7 labels its node info: RAPL read through sysfs on bare metal,
                // its model ("estimator") where RAPL is missing, as on most VMs.
                let (components, platform) = match (kepler.estimated, node.meter) {
                    (true, _) => ("estimator", "none"),
                    (false, Meter::KeplerPlatform(_)) => ("rapl-sysfs", "acpi"),
                    (false, _) => ("rapl-sysfs", "none"),
                };
                out.gauge(
                    "kepler_node_info",
                    &with(
                        &base,
                        &[
                            ("cpu_architecture", "Sapphire Rapids"),
                            ("components_power_source", components),
                            ("platform_power_source", platform),
                            ("source", "os"),
                        ],
                    ),
                    1.0,
                );
                let node_series = with(&base, &[("package", "0"), ("source", components)]);
                for (zone, watts) in kepler.zones.named() {
                    let name = format!("kepler_node_{zone}_joules_total");
                    if zone == "package" {
                        out.package_counter(&name, &node_series, watts);
                    } else {
                        out.counter(&name, &node_series, watts);
                    }
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
                for &(p, pod) in pods_here {
                    out.from(from(Some(p)));
                    for (c, container) in pod.containers.iter().enumerate() {
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
                            if zone == "package" && c == 0 {
                                out.package_counter(&name, &series, watts);
                            } else {
                                out.counter(&name, &series, watts);
                            }
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
                    let series = with(
                        &base,
                        &[("zone", zone), ("path", &path), ("node_name", node.name)],
                    );
                    if zone == "package" {
                        out.package_counter("kepler_node_cpu_joules_total", &series, watts);
                    } else {
                        out.counter("kepler_node_cpu_joules_total", &series, watts);
                    }
                }
                for &(p, pod) in pods_here {
                    out.from(from(Some(p)));
                    let mut sum = zones(0.0, 0.0, 0.0, 0.0);
                    for container in &pod.containers {
                        sum.package += container.kepler.package;
                        sum.dram += container.kepler.dram;
                        sum.core += container.kepler.core;
                        sum.uncore += container.kepler.uncore;
                    }
                    for (zone, watts) in sum.named() {
                        let series = with(
                            &base,
                            &[
                                ("pod_id", pod.uid),
                                ("pod_name", pod.name),
                                ("pod_namespace", pod.namespace),
                                ("node_name", node.name),
                                ("zone", zone),
                                ("state", "running"),
                            ],
                        );
                        if zone == "package" {
                            out.package_counter("kepler_pod_cpu_joules_total", &series, watts);
                        } else {
                            out.counter("kepler_pod_cpu_joules_total", &series, watts);
                        }
                    }
                }
            }
        }
    }
}
