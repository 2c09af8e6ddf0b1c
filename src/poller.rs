//! One poll cycle (queries → identities → rows) and the fixed schedule that repeats it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use crate::identity::{self, NodeNames};
use crate::prometheus::{Client, QueryError, Sample};
use crate::queries::{QuerySet, TableKind};
use crate::status::Status;
use crate::table::{self, Row, Table};

/// What one column's query gave in a cycle.
#[derive(Debug, Clone)]
pub struct ColumnReport {
    pub table: TableKind,
    pub column: &'static str,
    /// `None`: the column is disabled.
    pub outcome: Option<Result<usize, QueryError>>,
    /// Rows (node or pod names) that got a value from this column.
    pub rows: Vec<String>,
}

/// The result of a cycle that reached Prometheus.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub node_rows: Vec<Row>,
    pub pod_rows: Vec<Row>,
    pub columns: Vec<ColumnReport>,
    /// Addresses no mapping series knew; they stay as IPs in `instance`.
    pub unmapped: Vec<String>,
}

/// One column's query answer; `None` when the column is disabled.
type Answer = (
    TableKind,
    &'static str,
    Option<Result<Vec<Sample>, QueryError>>,
);

/// Values of one row under construction; `Some(NaN)` marks a series that answered NaN.
struct Draft {
    node: Option<String>,
    values: Vec<Option<f64>>,
}

pub struct Poller {
    client: Client,
    queries: QuerySet,
    namespace: String,
    names: NodeNames,
    /// (table, column, row) already warned about duplicate series; bounded.
    duplicate_warnings: HashSet<(TableKind, &'static str, String)>,
    failures: FailureLog,
}

/// Logs a persisting failure once (again when its text changes) and its recovery, so a
/// broken column does not write the same warning every cycle.
#[derive(Default)]
struct FailureLog {
    last: HashMap<String, String>,
}

impl FailureLog {
    fn failed(&mut self, what: &str, error: &str) {
        if self.last.get(what).map(String::as_str) == Some(error) {
            debug!("{what} failed again: {error}");
        } else {
            warn!("{what} failed: {error}");
            self.last.insert(what.to_string(), error.to_string());
        }
    }

    fn recovered(&mut self, what: &str) {
        if self.last.remove(what).is_some() {
            info!("{what} works again");
        }
    }
}

impl Poller {
    pub fn new(client: Client, queries: QuerySet, namespace: String) -> Poller {
        Poller {
            client,
            queries,
            namespace,
            names: NodeNames::new(),
            duplicate_warnings: HashSet::new(),
            failures: FailureLog::default(),
        }
    }

    /// Runs every query at `observation`, resolves identities and renders the rows.
    /// Fails only when Prometheus gave no usable answer at all.
    pub fn cycle(&mut self, observation: SystemTime) -> Result<Cycle, QueryError> {
        let collection = SystemTime::now();
        let mut answers: Vec<Answer> = Vec::new();
        let mut first_error = None;
        let mut any_success = false;
        let mut timeouts = 0;
        for kind in [TableKind::Nodes, TableKind::Pods] {
            for q in self.queries.table(kind) {
                let answer = q
                    .promql
                    .as_ref()
                    .map(|promql| self.client.query(promql, observation));
                match &answer {
                    Some(Err(e)) if e.is_unreachable() => return Err(e.clone()),
                    // One heavy query only empties its column; a second timeout means
                    // Prometheus is overloaded, and waiting for every query would only
                    // add to its load and delay the cycle by many timeouts.
                    Some(Err(e)) if e.is_timeout() && timeouts > 0 => return Err(e.clone()),
                    Some(Err(e)) if e.is_timeout() => {
                        timeouts += 1;
                        first_error.get_or_insert_with(|| e.clone());
                    }
                    Some(Err(e)) => {
                        first_error.get_or_insert_with(|| e.clone());
                    }
                    Some(Ok(_)) => any_success = true,
                    None => {}
                }
                answers.push((kind, q.column, answer));
            }
        }
        if !any_success && let Some(e) = first_error {
            return Err(e);
        }

        // Map node addresses not seen before, with the same evaluation time.
        let labelled: Vec<String> = answers
            .iter()
            .filter_map(|(_, _, a)| a.as_ref()?.as_ref().ok())
            .flatten()
            .filter_map(|s| identity::node_label(&s.labels))
            .collect();
        let unknown = self
            .names
            .unknown(labelled.iter().map(String::as_str), Instant::now());
        if !unknown.is_empty() {
            let errors = self.names.learn(&self.client, &unknown, observation);
            match errors.first() {
                Some(e) => self.failures.failed("node address mapping", &e.to_string()),
                None => self.failures.recovered("node address mapping"),
            }
        }
        let mut unmapped: Vec<String> = labelled
            .iter()
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok() && self.names.resolve(n) == **n)
            .cloned()
            .collect();
        unmapped.sort();
        unmapped.dedup();

        let mut nodes: BTreeMap<String, Draft> = BTreeMap::new();
        let mut pods: BTreeMap<String, Draft> = BTreeMap::new();
        let mut columns = Vec::new();
        let mut index = [0usize; 2];
        for (kind, column, answer) in answers {
            let slot = match kind {
                TableKind::Nodes => 0,
                TableKind::Pods => 1,
            };
            let col = index[slot];
            index[slot] += 1;
            let width = kind.defaults().len();
            let mut rows = Vec::new();
            let outcome = answer.map(|a| {
                a.map(|samples| {
                    for s in &samples {
                        let node = identity::node_label(&s.labels).map(|n| self.names.resolve(&n));
                        let (key, drafts) = match kind {
                            TableKind::Nodes => match node.clone() {
                                Some(n) => (n, &mut nodes),
                                None => {
                                    debug!("{column}: series without a node label: {:?}", s.labels);
                                    continue;
                                }
                            },
                            TableKind::Pods => {
                                if identity::namespace_label(&s.labels)
                                    .is_some_and(|ns| ns != self.namespace)
                                {
                                    continue;
                                }
                                match identity::pod_label(&s.labels) {
                                    Some(p) => (p.to_string(), &mut pods),
                                    None => {
                                        debug!(
                                            "{column}: series without a pod label: {:?}",
                                            s.labels
                                        );
                                        continue;
                                    }
                                }
                            }
                        };
                        let draft = drafts.entry(key.clone()).or_insert_with(|| Draft {
                            node: None,
                            values: vec![None; width],
                        });
                        if draft.values[col].is_some() {
                            self.warn_duplicate(kind, column, &key, &s.labels);
                            continue;
                        }
                        draft.values[col] = Some(s.value);
                        if draft.node.is_none() {
                            draft.node = node;
                        }
                        rows.push(key);
                    }
                    samples.len()
                })
            });
            let what = format!("{}.{column} query (column left empty)", kind.name());
            match &outcome {
                Some(Err(e)) => self.failures.failed(&what, &e.to_string()),
                _ => self.failures.recovered(&what),
            }
            columns.push(ColumnReport {
                table: kind,
                column,
                outcome,
                rows,
            });
        }

        let collection_ms = table::unix_ms(collection);
        let times = [
            table::format_time(collection),
            table::format_time(observation),
        ];
        let render = |prefix: Vec<String>, values: &[Option<f64>]| Row {
            collection_ms,
            line: table::csv_line(
                &prefix
                    .into_iter()
                    .chain(values.iter().map(|v| table::format_value(*v)))
                    .collect::<Vec<_>>(),
            ),
        };
        let node_rows = nodes
            .iter()
            .map(|(name, d)| {
                render(
                    vec![name.clone(), times[0].clone(), times[1].clone()],
                    &d.values,
                )
            })
            .collect();
        let pod_rows = pods
            .iter()
            .map(|(name, d)| {
                let prefix = vec![
                    d.node.clone().unwrap_or_default(),
                    times[0].clone(),
                    times[1].clone(),
                    name.clone(),
                    self.namespace.clone(),
                ];
                render(prefix, &d.values)
            })
            .collect();
        Ok(Cycle {
            node_rows,
            pod_rows,
            columns,
            unmapped,
        })
    }

    fn warn_duplicate(
        &mut self,
        kind: TableKind,
        column: &'static str,
        row: &str,
        labels: &BTreeMap<String, String>,
    ) {
        if self.duplicate_warnings.len() >= 10_000 {
            return;
        }
        if self
            .duplicate_warnings
            .insert((kind, column, row.to_string()))
        {
            warn!(
                "{}.{column}: several series resolve to {row:?}; keeping the first, ignoring {labels:?}",
                kind.name()
            );
        }
    }
}

/// Runs cycles on a fixed schedule (`start + n × interval`, no drift) until `shutdown`
/// fires or its sender is dropped. The first cycle runs at once.
pub fn run(
    mut poller: Poller,
    interval: Duration,
    nodes: Arc<Table>,
    pods: Arc<Table>,
    status: Arc<Status>,
    shutdown: Receiver<()>,
) {
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let mut tick: u32 = 0;
    loop {
        let due = start + interval * tick;
        match shutdown.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let began = Instant::now();
        let observation = start_wall + interval * tick;
        match poller.cycle(observation) {
            Ok(cycle) => {
                for c in &cycle.columns {
                    if let Some(Err(_)) = c.outcome {
                        status.query_failed(c.table, c.column);
                    }
                }
                let counts = [
                    (TableKind::Nodes, cycle.node_rows.len()),
                    (TableKind::Pods, cycle.pod_rows.len()),
                ];
                nodes.push(cycle.node_rows);
                pods.push(cycle.pod_rows);
                status.cycle_succeeded(began.elapsed(), &counts);
                poller.failures.recovered("cycle");
                debug!(
                    "cycle {tick}: {} node rows, {} pod rows in {:?}",
                    counts[0].1,
                    counts[1].1,
                    began.elapsed()
                );
            }
            Err(e) => {
                poller
                    .failures
                    .failed("cycle", &format!("{e}; cycle skipped"));
                status.cycle_failed(began.elapsed(), e.to_string());
            }
        }
        // Next tick strictly in the future; ticks that passed during an overrun are skipped.
        let elapsed = start.elapsed();
        let next = (elapsed.as_nanos() / interval.as_nanos().max(1)) as u32 + 1;
        let next = next.max(tick + 1);
        if next > tick + 1 {
            let missed = next - tick - 1;
            info!("cycle overran the interval; skipping {missed} scheduled cycle(s)");
            status.ticks_missed(u64::from(missed));
        }
        tick = next;
    }
}
