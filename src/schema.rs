//! What the agent serves: the two tables (node rows and pod rows), their columns, and the pair
//! type that holds anything that exists once per table.
//!
//! Column names and order are the original ones, typos included (README, "The CSV tables").

/// Which rows a table holds: one per node, or one per pod of the observed namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    Nodes,
    Pods,
}

impl TableKind {
    pub const ALL: [TableKind; 2] = [TableKind::Nodes, TableKind::Pods];

    /// `nodes` or `pods`: the name in URLs, file names, logs and the queries file.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Nodes => "nodes",
            TableKind::Pods => "pods",
        }
    }
}

/// Anything that comes once per table: queries, buffers, drafts, rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerTable<T> {
    pub nodes: T,
    pub pods: T,
}

impl<T> PerTable<T> {
    /// Builds both halves from the table kind.
    pub fn new(mut make: impl FnMut(TableKind) -> T) -> PerTable<T> {
        PerTable {
            nodes: make(TableKind::Nodes),
            pods: make(TableKind::Pods),
        }
    }

    pub fn get(&self, kind: TableKind) -> &T {
        match kind {
            TableKind::Nodes => &self.nodes,
            TableKind::Pods => &self.pods,
        }
    }

    pub fn get_mut(&mut self, kind: TableKind) -> &mut T {
        match kind {
            TableKind::Nodes => &mut self.nodes,
            TableKind::Pods => &mut self.pods,
        }
    }

    /// Both halves with their kind, nodes first.
    pub fn iter(&self) -> impl Iterator<Item = (TableKind, &T)> {
        [
            (TableKind::Nodes, &self.nodes),
            (TableKind::Pods, &self.pods),
        ]
        .into_iter()
    }

    pub fn map<U>(&self, mut f: impl FnMut(TableKind, &T) -> U) -> PerTable<U> {
        PerTable {
            nodes: f(TableKind::Nodes, &self.nodes),
            pods: f(TableKind::Pods, &self.pods),
        }
    }
}

/// Which figures a table carries: the live measurements, or the energy of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Rates and averages over `WINDOW` at one evaluation time (`/nodes`, `/pods`, streams).
    Live,
    /// Totals between a start and an end (`/energy/nodes`, `/energy/pods`).
    Energy,
}

/// Value columns of the node table, after `instance, collection_time, observation_time`.
pub const NODE_VALUES: &[&str] = &[
    "cpu_usage",
    "memory_usage",
    "network_usage",
    "wattage",
    "num_processes",
    "kepler_wattage",
    "scaph_wattage",
    "wattage_auxilary",
];

/// Value columns of the pod table, after `instance, collection_time, observation_time, name,
/// namespace`.
pub const POD_VALUES: &[&str] = &[
    "cpu_usage",
    "memory_usage",
    "network_usage",
    "wattage_kepler",
    "wattage_scaph",
];

/// Value columns of the node energy table.
pub const ENERGY_NODE_VALUES: &[&str] = &[
    "cpu_seconds",
    "wattage_joules",
    "kepler_joules",
    "scaph_joules",
    "auxilary_joules",
];

/// Value columns of the pod energy table.
pub const ENERGY_POD_VALUES: &[&str] = &["cpu_seconds", "kepler_joules", "scaph_joules"];

/// The columns that name a row and when it was measured, before the value columns.
pub fn key_columns(kind: TableKind, measure: Measure) -> &'static [&'static str] {
    match (kind, measure) {
        (TableKind::Nodes, Measure::Live) => &["instance", "collection_time", "observation_time"],
        (TableKind::Pods, Measure::Live) => &[
            "instance",
            "collection_time",
            "observation_time",
            "name",
            "namespace",
        ],
        (TableKind::Nodes, Measure::Energy) => &["instance", "start", "end", "seconds"],
        (TableKind::Pods, Measure::Energy) => {
            &["instance", "name", "namespace", "start", "end", "seconds"]
        }
    }
}

/// The value columns, in order.
pub fn value_columns(kind: TableKind, measure: Measure) -> &'static [&'static str] {
    match (kind, measure) {
        (TableKind::Nodes, Measure::Live) => NODE_VALUES,
        (TableKind::Pods, Measure::Live) => POD_VALUES,
        (TableKind::Nodes, Measure::Energy) => ENERGY_NODE_VALUES,
        (TableKind::Pods, Measure::Energy) => ENERGY_POD_VALUES,
    }
}

/// The CSV header line, with its trailing newline.
pub fn header(kind: TableKind, measure: Measure) -> String {
    let names: Vec<&str> = key_columns(kind, measure)
        .iter()
        .chain(value_columns(kind, measure))
        .copied()
        .collect();
    format!("{}\n", names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_the_original_columns() {
        assert_eq!(
            header(TableKind::Nodes, Measure::Live),
            "instance,collection_time,observation_time,cpu_usage,memory_usage,network_usage,wattage,num_processes,kepler_wattage,scaph_wattage,wattage_auxilary\n"
        );
        assert_eq!(
            header(TableKind::Pods, Measure::Live),
            "instance,collection_time,observation_time,name,namespace,cpu_usage,memory_usage,network_usage,wattage_kepler,wattage_scaph\n"
        );
        assert_eq!(
            header(TableKind::Nodes, Measure::Energy),
            "instance,start,end,seconds,cpu_seconds,wattage_joules,kepler_joules,scaph_joules,auxilary_joules\n"
        );
        assert_eq!(
            header(TableKind::Pods, Measure::Energy),
            "instance,name,namespace,start,end,seconds,cpu_seconds,kepler_joules,scaph_joules\n"
        );
    }

    #[test]
    fn per_table_pairs() {
        let mut pair = PerTable::new(|kind| kind.name().len());
        assert_eq!((pair.nodes, pair.pods), (5, 4));
        *pair.get_mut(TableKind::Pods) += 1;
        assert_eq!(*pair.get(TableKind::Pods), 5);
        let names: Vec<&str> = pair.iter().map(|(kind, _)| kind.name()).collect();
        assert_eq!(names, ["nodes", "pods"]);
        assert_eq!(
            pair.map(|_, n| n * 2),
            PerTable {
                nodes: 10,
                pods: 10
            }
        );
    }
}
