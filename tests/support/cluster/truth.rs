//! The rows the agent must produce for a scenario, every column but the two timestamps.

use super::{Meter, NODE_COLUMNS, POD_COLUMNS, Process, Scenario};

/// One expected cell of a CSV row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    /// `None` is an empty field.
    Num(Option<f64>),
}

impl Cell {
    pub fn render(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Num(Some(value)) => format!("{value}"),
            Cell::Num(None) => String::new(),
        }
    }
}

/// One expected CSV row: every column but the two timestamps.
#[derive(Clone, Debug)]
pub struct Row {
    pub cells: Vec<(&'static str, Cell)>,
}

impl Row {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, cell)| cell)
    }

    pub fn text(&self, column: &str) -> String {
        self.get(column).map(Cell::render).unwrap_or_default()
    }
}

impl Scenario {
    /// The node rows the agent must produce (every column but the two
    /// timestamps), sorted by instance. `window_secs` is the agent's WINDOW. The declared
    /// figures: under a load schedule, those of a window inside a phase of factor 1
    /// ([`Scenario::at_level`] gives the others).
    pub fn expected_nodes(&self, window_secs: f64) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .nodes
            .iter()
            .map(|node| {
                let cpu: f64 = node
                    .cpu
                    .iter()
                    .filter(|(_, mode, _)| !matches!(*mode, "idle" | "iowait" | "steal"))
                    .map(|(_, _, rate)| rate)
                    .sum();
                let memory = 100.0 * (1.0 - node.mem_available / node.mem_total);
                let network: f64 = node
                    .net
                    .iter()
                    .filter(|(device, _, _)| is_physical(device))
                    .map(|(_, rx, tx)| (rx + tx) * window_secs)
                    .sum();
                let wattage = match node.meter {
                    Meter::Ipmi(watts) | Meter::KeplerPlatform(watts) => Some(watts),
                    Meter::Absent => None,
                };
                let scaph = node.scaphandre.as_ref();
                let measured = |value: f64| node.node_exporter.then_some(value);
                Row {
                    cells: vec![
                        ("instance", Cell::Text(node.name.to_string())),
                        ("cpu_usage", Cell::Num(measured(cpu))),
                        ("memory_usage", Cell::Num(measured(memory))),
                        ("network_usage", Cell::Num(measured(network))),
                        ("wattage", Cell::Num(wattage)),
                        (
                            "num_processes",
                            Cell::Num(measured(node.pids.unwrap_or(node.procs_running))),
                        ),
                        (
                            "kepler_wattage",
                            Cell::Num(node.kepler.as_ref().map(|k| k.zones.counted())),
                        ),
                        ("scaph_wattage", Cell::Num(scaph.map(|s| s.host_watts))),
                        (
                            "wattage_auxilary",
                            Cell::Num(
                                scaph.map(|s| s.system_processes.iter().map(|p| p.watts).sum()),
                            ),
                        ),
                    ],
                }
            })
            // A node with no figure at all has no row.
            .filter(|row| {
                row.cells
                    .iter()
                    .any(|(_, c)| matches!(c, Cell::Num(Some(_))))
            })
            .collect();
        rows.sort_by_key(|row| row.text("instance"));
        rows
    }

    /// The pod rows the agent observing `namespace` must produce (every
    /// column but the two timestamps), sorted by name.
    pub fn expected_pods(&self, namespace: &str) -> Vec<Row> {
        let nodes = self.node_map();
        let mut rows: Vec<Row> = self
            .pods
            .iter()
            .filter(|pod| pod.namespace == namespace)
            .map(|pod| {
                let node = nodes[pod.node];
                let cpu: f64 = pod.containers.iter().map(|c| c.cpu).sum();
                let memory: f64 = pod.containers.iter().map(|c| c.memory).sum();
                let kepler = node
                    .kepler
                    .as_ref()
                    .map(|_| pod.containers.iter().map(|c| c.kepler.counted()).sum());
                let processes: Vec<&Process> =
                    pod.containers.iter().flat_map(|c| &c.processes).collect();
                let scaph = if node.scaphandre.is_some() && !processes.is_empty() {
                    Some(processes.iter().map(|p| p.watts).sum())
                } else {
                    None
                };
                Row {
                    cells: vec![
                        ("instance", Cell::Text(pod.node.to_string())),
                        ("name", Cell::Text(pod.name.to_string())),
                        ("namespace", Cell::Text(namespace.to_string())),
                        ("cpu_usage", Cell::Num(Some(cpu))),
                        ("memory_usage", Cell::Num(Some(memory / 1e6))),
                        ("network_usage", Cell::Num(Some((pod.rx + pod.tx) / 1e6))),
                        ("wattage_kepler", Cell::Num(kepler)),
                        ("wattage_scaph", Cell::Num(scaph)),
                    ],
                }
            })
            .collect();
        rows.sort_by_key(|row| row.text("name"));
        rows
    }

    /// The expected tables as CSV, timestamps left empty.
    pub fn truth_csv(&self, window_secs: f64, namespace: &str) -> (String, String) {
        let render = |columns: &[&str], rows: Vec<Row>| {
            let mut out = columns.join(",");
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = columns.iter().map(|c| row.text(c)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        };
        (
            render(&NODE_COLUMNS, self.expected_nodes(window_secs)),
            render(&POD_COLUMNS, self.expected_pods(namespace)),
        )
    }
}

/// Whether a network device counts as physical (the `{phys}` regex of src/tables/queries.rs).
pub fn is_physical(device: &str) -> bool {
    const VIRTUAL_PREFIXES: [&str; 16] = [
        "veth", "cali", "cilium", "lxc", "flannel", "cni", "docker", "br-", "virbr", "vxlan",
        "genev", "tunl", "kube-", "weave", "tun", "tap",
    ];
    device != "lo" && !VIRTUAL_PREFIXES.iter().any(|p| device.starts_with(p))
}
