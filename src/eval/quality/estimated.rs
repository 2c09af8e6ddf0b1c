//! What the power sources say of themselves: measured, or estimated by a model
//! (docs/design.md, "Quality"). Asked with one instant query over the window.
//!
//! - Kepler 0.7.3–0.9: `kepler_node_info{components_power_source="estimator"}` (no RAPL: CPU
//!   power is modelled) and `platform_power_source="none"` (no platform meter: platform power
//!   is modelled); from 0.7.10 its energy series carry `source="trained_power_model"` when
//!   modelled.
//! - Kepler 0.10 and later no longer model power: without RAPL it does not start (its columns
//!   are absent); its development fake meter reads zones under `/intel-rapl/energy_<zone>`.
//! - Scaphandre says nothing: in a VM its figures are the hypervisor's share estimate, which
//!   no metric reveals (README, "Data quality").

use std::collections::BTreeSet;

use super::sources::expand;
use super::{Finding, Problem};
use crate::eval::Evaluator;
use crate::prometheus::{Eval, QueryError};
use crate::tables::identity::{self, COLUMN_LABEL, ROW_LABELS};
use crate::tables::queries::promql_duration;
use crate::tables::schema::{TableKind, node, pod};
use crate::time::Window;

/// A probe: what it selects, and what a series it returns means.
struct Probe {
    selector: &'static str,
    meaning: Meaning,
    detail: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// The node's Kepler CPU power (and its pods') is modelled.
    KeplerComponents,
    /// The node's Kepler platform power is modelled (only matters without an IPMI meter).
    KeplerPlatform,
    /// A pod whose Kepler power is modelled.
    KeplerPod,
    /// The node has Kepler pod series: (pod, node) pairs for the nodes found above.
    PodOfKepler,
    /// The node has an IPMI/DCMI meter: its `wattage` does not come from Kepler.
    Ipmi,
    /// The node has Kepler's platform counter: its `wattage` may come from it.
    Platform,
}

const PROBES: &[Probe] = &[
    Probe {
        selector: r#"kepler_node_info{components_power_source="estimator"}"#,
        meaning: Meaning::KeplerComponents,
        detail: "Kepler says its CPU power is estimated by a model, not measured (kepler_node_info components_power_source=\"estimator\")",
    },
    Probe {
        selector: r#"kepler_node_package_joules_total{source="trained_power_model"}"#,
        meaning: Meaning::KeplerComponents,
        detail: "Kepler says its CPU power is estimated by a model, not measured (source=\"trained_power_model\")",
    },
    Probe {
        selector: r#"kepler_node_dram_joules_total{source="trained_power_model"}"#,
        meaning: Meaning::KeplerComponents,
        detail: "Kepler says its DRAM power is estimated by a model, not measured (source=\"trained_power_model\")",
    },
    Probe {
        selector: r#"kepler_node_cpu_joules_total{path=~".*/intel-rapl/energy_.*"}"#,
        meaning: Meaning::KeplerComponents,
        detail: "Kepler reads its development fake meter, not RAPL (zone path /intel-rapl/energy_<zone>)",
    },
    Probe {
        selector: r#"kepler_node_info{platform_power_source="none"}"#,
        meaning: Meaning::KeplerPlatform,
        detail: "Kepler has no platform power meter: its platform power is estimated by a model (kepler_node_info platform_power_source=\"none\")",
    },
    Probe {
        selector: r#"kepler_node_platform_joules_total{source="trained_power_model"}"#,
        meaning: Meaning::KeplerPlatform,
        detail: "Kepler says its platform power is estimated by a model (source=\"trained_power_model\")",
    },
    Probe {
        selector: r#"kepler_container_package_joules_total{container_namespace="{ns}", source="trained_power_model"}"#,
        meaning: Meaning::KeplerPod,
        detail: "Kepler says this pod's power is estimated by a model (source=\"trained_power_model\")",
    },
    Probe {
        selector: r#"kepler_container_package_joules_total{container_namespace="{ns}"}"#,
        meaning: Meaning::PodOfKepler,
        detail: "",
    },
    Probe {
        selector: r#"kepler_pod_cpu_joules_total{pod_namespace="{ns}"}"#,
        meaning: Meaning::PodOfKepler,
        detail: "",
    },
    Probe {
        selector: "ipmi_dcmi_power_consumption_watts",
        meaning: Meaning::Ipmi,
        detail: "",
    },
    Probe {
        selector: "kepler_node_platform_joules_total",
        meaning: Meaning::Platform,
        detail: "",
    },
];

/// A row a probe returned: its probe, node and pod.
struct Seen {
    probe: usize,
    node: String,
    pod: String,
}

/// The `estimated` findings of the window.
pub fn check(evaluator: &Evaluator, window: Window) -> Result<Vec<Finding>, QueryError> {
    let span = promql_duration(std::time::Duration::from_millis(
        (window.end - window.start) as u64,
    ));
    let by = ROW_LABELS.join(", ");
    let promql = PROBES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let selector = expand(p.selector, evaluator.namespace());
            format!(
                r#"label_replace((max by ({by}) (max_over_time({selector}[{span}]))), "{COLUMN_LABEL}", "{i}", "", "")"#
            )
        })
        .collect::<Vec<_>>()
        .join(" or ");
    let mut seen = Vec::new();
    evaluator
        .source()
        .query(&promql, Eval::At(window.end), &mut |series| {
            let probe = series
                .labels
                .get(COLUMN_LABEL)
                .and_then(|p| p.parse::<usize>().ok());
            if let Some(probe) = probe.filter(|p| *p < PROBES.len()) {
                let namespace = identity::namespace_label(series.labels);
                let pod_level = matches!(
                    PROBES[probe].meaning,
                    Meaning::KeplerPod | Meaning::PodOfKepler
                );
                if pod_level && namespace.is_some_and(|ns| ns != evaluator.namespace()) {
                    return;
                }
                seen.push(Seen {
                    probe,
                    node: identity::node_label(series.labels)
                        .unwrap_or("")
                        .to_string(),
                    pod: identity::pod_label(series.labels).unwrap_or("").to_string(),
                });
            }
        })?;
    let nodes = evaluator.node_names(seen.iter().map(|s| s.node.as_str()), window.end);
    let seen: Vec<Seen> = seen
        .into_iter()
        .zip(nodes)
        .map(|(s, node)| Seen { node, ..s })
        .collect();
    Ok(findings(&seen, window))
}

fn findings(seen: &[Seen], window: Window) -> Vec<Finding> {
    let nodes_with = |meaning: Meaning| -> BTreeSet<&str> {
        seen.iter()
            .filter(|s| PROBES[s.probe].meaning == meaning)
            .map(|s| s.node.as_str())
            .collect()
    };
    let ipmi = nodes_with(Meaning::Ipmi);
    let platform = nodes_with(Meaning::Platform);
    let components = nodes_with(Meaning::KeplerComponents);
    let finding = |table, instance: &str, name: &str, column, detail: &str| Finding {
        table,
        instance: instance.to_string(),
        name: name.to_string(),
        column,
        problem: Problem::Estimated,
        from: window.start,
        to: window.end,
        detail: detail.to_string(),
    };
    let mut out = Vec::new();
    for s in seen {
        let probe = &PROBES[s.probe];
        match probe.meaning {
            Meaning::KeplerComponents => out.push(finding(
                TableKind::Nodes,
                &s.node,
                "",
                node::KEPLER_WATTAGE,
                probe.detail,
            )),
            // Only where `wattage` comes from Kepler's platform counter.
            Meaning::KeplerPlatform
                if platform.contains(s.node.as_str()) && !ipmi.contains(s.node.as_str()) =>
            {
                out.push(finding(
                    TableKind::Nodes,
                    &s.node,
                    "",
                    node::WATTAGE,
                    probe.detail,
                ));
            }
            Meaning::KeplerPod => out.push(finding(
                TableKind::Pods,
                &s.node,
                &s.pod,
                pod::WATTAGE_KEPLER,
                probe.detail,
            )),
            Meaning::PodOfKepler if components.contains(s.node.as_str()) && !s.pod.is_empty() => {
                let detail = "Kepler estimates the CPU power of this pod's node by a model, so the pod's share is estimated too";
                out.push(finding(
                    TableKind::Pods,
                    &s.node,
                    &s.pod,
                    pod::WATTAGE_KEPLER,
                    detail,
                ));
            }
            _ => {}
        }
    }
    out.retain(|f| !f.row().is_empty());
    out
}
