//! The energy tables the scenario implies: its constant rates and powers times the seconds of
//! a window.

use super::cluster::{Cell, Row, Scenario};

/// Energy column ← (live column it comes from). Live figures are per second (rates, watts);
/// energy is that times the window's seconds.
const NODE_ENERGY: [(&str, &str); 5] = [
    ("cpu_seconds", "cpu_usage"),
    ("wattage_joules", "wattage"),
    ("kepler_joules", "kepler_wattage"),
    ("scaph_joules", "scaph_wattage"),
    ("auxilary_joules", "wattage_auxilary"),
];
const POD_ENERGY: [(&str, &str); 3] = [
    ("cpu_seconds", "cpu_usage"),
    ("kepler_joules", "wattage_kepler"),
    ("scaph_joules", "wattage_scaph"),
];

fn scaled(
    rows: Vec<Row>,
    keys: &[&'static str],
    columns: &[(&'static str, &str)],
    seconds: f64,
) -> Vec<Row> {
    rows.into_iter()
        .map(|row| {
            let mut cells: Vec<(&'static str, Cell)> = keys
                .iter()
                .filter_map(|k| Some((*k, row.get(k)?.clone())))
                .collect();
            for (energy, live) in columns {
                let value = match row.get(live) {
                    Some(Cell::Num(Some(v))) => Some(v * seconds),
                    _ => None,
                };
                cells.push((energy, Cell::Num(value)));
            }
            Row { cells }
        })
        .collect()
}

/// The node energy rows over `seconds` (window-independent columns only).
pub fn expected_node_energy(scenario: &Scenario, seconds: f64) -> Vec<Row> {
    // The window only matters for network_usage, which has no energy column.
    scaled(
        scenario.expected_nodes(10.0),
        &["instance"],
        &NODE_ENERGY,
        seconds,
    )
}

/// The pod energy rows of `namespace` over `seconds`.
pub fn expected_pod_energy(scenario: &Scenario, namespace: &str, seconds: f64) -> Vec<Row> {
    scaled(
        scenario.expected_pods(namespace),
        &["instance", "name", "namespace"],
        &POD_ENERGY,
        seconds,
    )
}
