//! Folding series into rows, one series at a time, as answers arrive.
//!
//! Nothing is kept per series: each point lands in the draft of its row (node or pod) and
//! step. Node rows are keyed by the node label as written (an IP stays an IP) until every
//! answer is in; `finish` then maps addresses to node names and merges drafts that turn out
//! to be the same node. Every value remembers the order in which its series arrived, so
//! "if several series of one column resolve to the same row, the first wins" holds across
//! that merge exactly as if names had been known from the start.

use std::collections::{BTreeMap, HashSet};

use super::steps::Steps;
use crate::prometheus::Series;
use crate::tables::identity::{self, NodeNames};
use crate::tables::schema::{PerTable, TableKind};

/// A value and the arrival order of the series that gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    seq: u32,
    value: f64,
}

/// One row under construction.
#[derive(Debug, Clone, Default)]
struct Draft {
    values: Vec<Option<Cell>>,
    /// Pod rows: the node label of the first series that gave the row a value, with the
    /// column it came from.
    node: Option<(usize, String)>,
}

impl Draft {
    fn new(width: usize) -> Draft {
        Draft {
            values: vec![None; width],
            node: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

/// A finished row: its name (node or pod), the node a pod runs on, and its values.
/// `Some(NaN)` marks a series that answered NaN: the row exists, the field is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct RowValues {
    pub name: String,
    /// Pod rows: the node, mapped from an address where possible; empty when unknown.
    pub node: String,
    pub values: Vec<Option<f64>>,
}

/// Two or more series of one column that resolved to the same row; the first was kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duplicate {
    pub table: TableKind,
    pub column: usize,
    pub row: String,
    /// The ignored series' labels, when known at the time (same label value).
    pub ignored: Option<String>,
}

/// Duplicates remembered per fold; more are counted as the same warnings anyway.
const DUPLICATES_KEPT: usize = 100;

/// The rows of one cycle (or history chunk) under construction.
pub struct Fold {
    steps: Steps,
    namespace: String,
    /// Per table, per step: row key → draft. Node rows are keyed by label, pods by name.
    drafts: PerTable<Vec<BTreeMap<String, Draft>>>,
    widths: PerTable<usize>,
    seq: u32,
    node_labels: HashSet<String>,
    duplicates: Vec<Duplicate>,
}

impl Fold {
    /// An empty fold for `steps`, with `widths` value columns per table.
    pub fn new(steps: Steps, namespace: &str, widths: PerTable<usize>) -> Fold {
        Fold {
            steps,
            namespace: namespace.to_string(),
            drafts: PerTable::new(|_| vec![BTreeMap::new(); steps.count()]),
            widths,
            seq: 0,
            node_labels: HashSet::new(),
            duplicates: Vec::new(),
        }
    }

    /// Folds one series of `column`'s answer. Series without a node (node table) or pod of
    /// the observed namespace (pod table) are skipped, as are points off the steps.
    pub fn add(&mut self, kind: TableKind, column: usize, series: Series<'_>) {
        let labels = series.labels;
        let node = identity::node_label(labels);
        if let Some(node) = node
            && !self.node_labels.contains(node)
        {
            self.node_labels.insert(node.to_string());
        }
        let key = match kind {
            TableKind::Nodes => match node {
                Some(node) => node,
                None => {
                    log::debug!("series without a node label: {labels}");
                    return;
                }
            },
            TableKind::Pods => {
                if identity::namespace_label(labels).is_some_and(|ns| ns != self.namespace) {
                    return;
                }
                match identity::pod_label(labels) {
                    Some(pod) => pod,
                    None => {
                        log::debug!("series without a pod label: {labels}");
                        return;
                    }
                }
            }
        };
        self.seq += 1;
        let seq = self.seq;
        let width = *self.widths.get(kind);
        for &(t, value) in series.points {
            let Some(step) = self.steps.index(t) else {
                continue;
            };
            let rows = &mut self.drafts.get_mut(kind)[step];
            let draft = match rows.get_mut(key) {
                Some(draft) => draft,
                None => rows.entry(key.to_string()).or_insert(Draft::new(width)),
            };
            if draft.values[column].is_some() {
                if self.duplicates.len() < DUPLICATES_KEPT {
                    self.duplicates.push(Duplicate {
                        table: kind,
                        column,
                        row: key.to_string(),
                        ignored: Some(labels.to_string()),
                    });
                }
                continue;
            }
            draft.values[column] = Some(Cell { seq, value });
            if draft.node.is_none()
                && let Some(node) = node
            {
                draft.node = Some((column, node.to_string()));
            }
        }
    }

    /// Forgets what `column` contributed: its answer failed after part of it was folded.
    /// (A pod keeps no node learnt from that column; another column's node is not recovered.)
    pub fn discard(&mut self, kind: TableKind, column: usize) {
        for rows in self.drafts.get_mut(kind).iter_mut() {
            for draft in rows.values_mut() {
                draft.values[column] = None;
                if draft.node.as_ref().is_some_and(|(c, _)| *c == column) {
                    draft.node = None;
                }
            }
            rows.retain(|_, draft| !draft.is_empty());
        }
    }

    /// Node labels seen in any answer, for address mapping.
    pub fn node_labels(&self) -> impl Iterator<Item = &str> {
        self.node_labels.iter().map(String::as_str)
    }

    /// The finished rows per table and step, sorted by name, with the duplicates found.
    pub fn finish(self, names: &NodeNames) -> (PerTable<Vec<Vec<RowValues>>>, Vec<Duplicate>) {
        let mut duplicates = self.duplicates;
        let nodes = self
            .drafts
            .nodes
            .into_iter()
            .map(|step| finish_nodes(step, names, &mut duplicates))
            .collect();
        let pods = self
            .drafts
            .pods
            .into_iter()
            .map(|step| finish_pods(step, names))
            .collect();
        (PerTable { nodes, pods }, duplicates)
    }
}

/// Node rows of one step: labels mapped to names, drafts of the same node merged by arrival.
fn finish_nodes(
    drafts: BTreeMap<String, Draft>,
    names: &NodeNames,
    duplicates: &mut Vec<Duplicate>,
) -> Vec<RowValues> {
    let mut merged: BTreeMap<String, Draft> = BTreeMap::new();
    for (label, draft) in drafts {
        let name = names.resolve(&label);
        match merged.get_mut(&name) {
            None => {
                merged.insert(name, draft);
            }
            Some(kept) => {
                for (column, (mine, theirs)) in kept.values.iter_mut().zip(draft.values).enumerate()
                {
                    match (*mine, theirs) {
                        (_, None) => {}
                        (None, theirs) => *mine = theirs,
                        (Some(a), Some(b)) => {
                            if b.seq < a.seq {
                                *mine = Some(b);
                            }
                            if duplicates.len() < DUPLICATES_KEPT {
                                duplicates.push(Duplicate {
                                    table: TableKind::Nodes,
                                    column,
                                    row: name.clone(),
                                    ignored: None,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    merged
        .into_iter()
        .filter(|(_, draft)| !draft.is_empty())
        .map(|(name, draft)| RowValues {
            name,
            node: String::new(),
            values: draft.values.iter().map(|c| c.map(|c| c.value)).collect(),
        })
        .collect()
}

fn finish_pods(drafts: BTreeMap<String, Draft>, names: &NodeNames) -> Vec<RowValues> {
    drafts
        .into_iter()
        .filter(|(_, draft)| !draft.is_empty())
        .map(|(name, draft)| RowValues {
            name,
            node: draft
                .node
                .map(|(_, label)| names.resolve(&label))
                .unwrap_or_default(),
            values: draft.values.iter().map(|c| c.map(|c| c.value)).collect(),
        })
        .collect()
}
