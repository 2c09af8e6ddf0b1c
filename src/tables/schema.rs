//! What the agent serves: the two tables (node rows and pod rows), their columns, and the pair
//! type that holds anything that exists once per table.
//!
//! Every column name is spelled here and only here; queries, diagnoses and rendering refer to
//! these constants. Names and order are the original ones, typos included (README, "The CSV
//! tables"): scripts depend on them.

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

    /// `node` or `pod`: what one row is.
    pub fn row_name(self) -> &'static str {
        match self {
            TableKind::Nodes => "node",
            TableKind::Pods => "pod",
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

impl Measure {
    pub const ALL: [Measure; 2] = [Measure::Live, Measure::Energy];
}

/// A column that names a row or says when it was measured, before the value columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The node (node rows), or the node a pod runs on (pod rows).
    Instance,
    /// When the queries were issued (live), or the evaluation time (history).
    CollectionTime,
    /// The evaluation time of every query of the row's cycle.
    ObservationTime,
    /// The pod.
    Name,
    /// The pod's namespace: always the observed one.
    Namespace,
    /// An energy window's start and end, and its length in seconds.
    Start,
    End,
    Seconds,
}

impl Key {
    pub fn name(self) -> &'static str {
        match self {
            Key::Instance => "instance",
            Key::CollectionTime => "collection_time",
            Key::ObservationTime => "observation_time",
            Key::Name => "name",
            Key::Namespace => "namespace",
            Key::Start => "start",
            Key::End => "end",
            Key::Seconds => "seconds",
        }
    }
}

/// Value columns of the node table.
pub mod node {
    pub const CPU_USAGE: &str = "cpu_usage";
    pub const MEMORY_USAGE: &str = "memory_usage";
    pub const NETWORK_USAGE: &str = "network_usage";
    pub const WATTAGE: &str = "wattage";
    pub const NUM_PROCESSES: &str = "num_processes";
    pub const KEPLER_WATTAGE: &str = "kepler_wattage";
    pub const SCAPH_WATTAGE: &str = "scaph_wattage";
    pub const WATTAGE_AUXILARY: &str = "wattage_auxilary";

    pub const VALUES: &[&str] = &[
        CPU_USAGE,
        MEMORY_USAGE,
        NETWORK_USAGE,
        WATTAGE,
        NUM_PROCESSES,
        KEPLER_WATTAGE,
        SCAPH_WATTAGE,
        WATTAGE_AUXILARY,
    ];
}

/// Value columns of the pod table.
pub mod pod {
    pub const CPU_USAGE: &str = "cpu_usage";
    pub const MEMORY_USAGE: &str = "memory_usage";
    pub const NETWORK_USAGE: &str = "network_usage";
    pub const WATTAGE_KEPLER: &str = "wattage_kepler";
    pub const WATTAGE_SCAPH: &str = "wattage_scaph";

    pub const VALUES: &[&str] = &[
        CPU_USAGE,
        MEMORY_USAGE,
        NETWORK_USAGE,
        WATTAGE_KEPLER,
        WATTAGE_SCAPH,
    ];
}

/// Value columns of the node energy table.
pub mod node_energy {
    pub const CPU_SECONDS: &str = "cpu_seconds";
    pub const WATTAGE_JOULES: &str = "wattage_joules";
    pub const KEPLER_JOULES: &str = "kepler_joules";
    pub const SCAPH_JOULES: &str = "scaph_joules";
    pub const AUXILARY_JOULES: &str = "auxilary_joules";

    pub const VALUES: &[&str] = &[
        CPU_SECONDS,
        WATTAGE_JOULES,
        KEPLER_JOULES,
        SCAPH_JOULES,
        AUXILARY_JOULES,
    ];
}

/// Value columns of the pod energy table.
pub mod pod_energy {
    pub const CPU_SECONDS: &str = "cpu_seconds";
    pub const KEPLER_JOULES: &str = "kepler_joules";
    pub const SCAPH_JOULES: &str = "scaph_joules";

    pub const VALUES: &[&str] = &[CPU_SECONDS, KEPLER_JOULES, SCAPH_JOULES];
}

/// The columns that name a row and when it was measured, before the value columns.
pub fn key_columns(kind: TableKind, measure: Measure) -> &'static [Key] {
    use Key::*;
    match (kind, measure) {
        (TableKind::Nodes, Measure::Live) => &[Instance, CollectionTime, ObservationTime],
        (TableKind::Pods, Measure::Live) => {
            &[Instance, CollectionTime, ObservationTime, Name, Namespace]
        }
        (TableKind::Nodes, Measure::Energy) => &[Instance, Start, End, Seconds],
        (TableKind::Pods, Measure::Energy) => &[Instance, Name, Namespace, Start, End, Seconds],
    }
}

/// The value columns, in order.
pub fn value_columns(kind: TableKind, measure: Measure) -> &'static [&'static str] {
    match (kind, measure) {
        (TableKind::Nodes, Measure::Live) => node::VALUES,
        (TableKind::Pods, Measure::Live) => pod::VALUES,
        (TableKind::Nodes, Measure::Energy) => node_energy::VALUES,
        (TableKind::Pods, Measure::Energy) => pod_energy::VALUES,
    }
}

/// The position of a value column, if the table has it.
pub fn value_index(kind: TableKind, measure: Measure, column: &str) -> Option<usize> {
    value_columns(kind, measure)
        .iter()
        .position(|c| *c == column)
}

/// The last column of energy rows, and of live rows asked for with `problems=1`: the data
/// problems of the row's sources (`column:problem;...`, empty when clean).
pub const PROBLEMS: &str = "problems";

/// The energy column that measures what a live column measures, if the table has one.
pub fn energy_column(kind: TableKind, live: &str) -> Option<&'static str> {
    let pairs: &[(&str, &'static str)] = match kind {
        TableKind::Nodes => &[
            (node::CPU_USAGE, node_energy::CPU_SECONDS),
            (node::WATTAGE, node_energy::WATTAGE_JOULES),
            (node::KEPLER_WATTAGE, node_energy::KEPLER_JOULES),
            (node::SCAPH_WATTAGE, node_energy::SCAPH_JOULES),
            (node::WATTAGE_AUXILARY, node_energy::AUXILARY_JOULES),
        ],
        TableKind::Pods => &[
            (pod::CPU_USAGE, pod_energy::CPU_SECONDS),
            (pod::WATTAGE_KEPLER, pod_energy::KEPLER_JOULES),
            (pod::WATTAGE_SCAPH, pod_energy::SCAPH_JOULES),
        ],
    };
    pairs.iter().find(|(l, _)| *l == live).map(|(_, e)| *e)
}

/// The CSV header line, with its trailing newline. Energy tables always end in `problems`;
/// live tables only when asked (`with_problems`).
pub fn header(kind: TableKind, measure: Measure) -> String {
    header_with(kind, measure, measure == Measure::Energy)
}

/// The header of a live table with or without the `problems` column.
pub fn header_with(kind: TableKind, measure: Measure, with_problems: bool) -> String {
    let names: Vec<&str> = key_columns(kind, measure)
        .iter()
        .map(|key| key.name())
        .chain(value_columns(kind, measure).iter().copied())
        .chain(with_problems.then_some(PROBLEMS))
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
            "instance,start,end,seconds,cpu_seconds,wattage_joules,kepler_joules,scaph_joules,auxilary_joules,problems\n"
        );
        assert_eq!(
            header(TableKind::Pods, Measure::Energy),
            "instance,name,namespace,start,end,seconds,cpu_seconds,kepler_joules,scaph_joules,problems\n"
        );
        assert!(
            header_with(TableKind::Pods, Measure::Live, true)
                .ends_with(",wattage_scaph,problems\n")
        );
        assert_eq!(
            energy_column(TableKind::Pods, pod::WATTAGE_SCAPH),
            Some("scaph_joules")
        );
        assert_eq!(energy_column(TableKind::Pods, pod::MEMORY_USAGE), None);
        assert_eq!(
            value_index(TableKind::Pods, Measure::Live, pod::WATTAGE_SCAPH),
            Some(4)
        );
        assert_eq!(
            value_index(TableKind::Pods, Measure::Live, node::WATTAGE),
            None
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
