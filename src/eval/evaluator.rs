//! The evaluator: everything an evaluation needs, owned once, and "evaluate, log, render"
//! written once. Live cycles, history, energy and `check` are all evaluations of a plan at
//! some steps; they differ in the plan, the steps, how the columns are batched and how their
//! rows are written.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::fold::{Duplicate, Fold, RowValues};
use super::log::FailureLog;
use super::mapping::map_addresses;
use super::plan::{Plan, plan};
use super::render::{self, Form};
use super::run::{Batching, ColumnOutcome, run_queries};
use super::steps::Steps;
use crate::prometheus::{QueryError, QuerySource, QueryStats, Statistics};
use crate::tables::identity::NodeNames;
use crate::tables::queries::Queries;
use crate::tables::schema::{Measure, PerTable, TableKind};
use crate::time::{Grid, Millis, Window};

/// What an evaluation is for: how its columns are batched and how its failures are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A live cycle of the poller.
    Live,
    /// Rows of a past span, or the cycles a resumed stream missed.
    History,
    /// Joules per node or pod over a window.
    Energy,
    /// `prometheus-agent check`.
    Check,
    /// The data-quality audit.
    Quality,
}

impl Purpose {
    /// The prefix of its log lines (live cycles have none).
    fn log_prefix(self) -> &'static str {
        match self {
            Purpose::Live => "",
            Purpose::History => "history ",
            Purpose::Energy => "energy ",
            Purpose::Check => "check ",
            Purpose::Quality => "quality ",
        }
    }
}

/// The result of evaluating a plan.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per table, per step: the rows, sorted by name.
    pub rows: PerTable<Vec<Vec<RowValues>>>,
    pub columns: Vec<ColumnOutcome>,
    /// Per table, what the server reported about its queries (summed over them), where the
    /// evaluation asked and the server reported.
    pub stats: PerTable<Option<QueryStats>>,
    /// Node addresses that no mapping series names; they stay as IPs.
    pub unmapped: Vec<String>,
    pub duplicates: Vec<Duplicate>,
    /// Failed mapping queries (addresses stay as they are for now).
    pub mapping_errors: Vec<QueryError>,
}

impl Outcome {
    /// The rows of step `step` of `table`.
    pub fn step(&self, table: TableKind, step: usize) -> &[RowValues] {
        self.rows
            .get(table)
            .get(step)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The rows of step `step` of `table` that got a value from `column`.
    pub fn rows_with(&self, table: TableKind, column: usize, step: usize) -> Vec<String> {
        self.step(table, step)
            .iter()
            .filter(|row| row.values.get(column).is_some_and(Option::is_some))
            .map(|row| row.name.clone())
            .collect()
    }
}

/// An outcome with its steps and form: what it takes to write its rows.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub outcome: Outcome,
    pub steps: Steps,
    form: Form,
    namespace: Arc<str>,
}

impl Evaluated {
    /// The CSV lines of `kind` for each step, with its evaluation time, in time order.
    pub fn lines_per_step(&self, kind: TableKind) -> Vec<(Millis, Vec<String>)> {
        (0..self.steps.count())
            .map(|i| {
                let at = self.steps.time(i);
                let rows = self.outcome.step(kind, i);
                (
                    at,
                    render::lines(kind, rows, self.form, at, &self.namespace),
                )
            })
            .collect()
    }

    /// The CSV lines of `kind`, every step in time order.
    pub fn lines(&self, kind: TableKind) -> Vec<String> {
        self.lines_per_step(kind)
            .into_iter()
            .flat_map(|(_, lines)| lines)
            .collect()
    }
}

/// Runs `plan` at `steps` through `source` and folds the answers into rows (docs/design.md,
/// "Cycle"). Fails only when Prometheus gave no usable answer at all.
pub fn evaluate(
    source: &dyn QuerySource,
    names: &Mutex<NodeNames>,
    plan: &Plan,
    steps: Steps,
    namespace: &str,
    batching: &Batching,
) -> Result<Outcome, QueryError> {
    let widths = PerTable::new(|table| plan.of_table(table).count());
    let mut fold = Fold::new(steps, namespace, widths);
    let ran = run_queries(source, plan, steps, &mut fold, batching)?;
    let mapping_errors = map_addresses(source, names, fold.node_labels(), steps.last());
    let names = lock(names);
    let unmapped: BTreeSet<String> = fold
        .node_labels()
        .filter(|label| names.is_unmapped_address(label))
        .map(str::to_string)
        .collect();
    let (rows, duplicates) = fold.finish(&names);
    batching.saw(&rows);
    Ok(Outcome {
        rows,
        columns: ran.columns,
        stats: ran.stats,
        unmapped: unmapped.into_iter().collect(),
        duplicates,
        mapping_errors,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How each purpose batches its columns. History asks column by column: over up to 1,000
/// steps per query the round trips hardly count, while `or` makes Prometheus match every
/// series of every step. `check` asks column by column too, with statistics, to report what
/// each column costs the server.
struct Batchings {
    live: Batching,
    history: Batching,
    energy: Batching,
    check: Batching,
}

/// Owns what every evaluation shares: the query source, the node-name cache, the namespace,
/// the queries and their live plans, batching and the failure log.
pub struct Evaluator {
    source: Arc<dyn QuerySource + Send + Sync>,
    names: Mutex<NodeNames>,
    namespace: Arc<str>,
    grid: Grid,
    window: Millis,
    queries: Queries,
    live: Plan,
    live_per_table: PerTable<Plan>,
    batchings: Batchings,
    log: Mutex<FailureLog>,
}

impl Evaluator {
    pub fn new(
        source: Arc<dyn QuerySource + Send + Sync>,
        queries: Queries,
        namespace: &str,
        grid: Grid,
        window: Millis,
    ) -> Evaluator {
        Evaluator {
            source,
            names: Mutex::new(NodeNames::new()),
            namespace: namespace.into(),
            grid,
            window,
            live: plan(&queries, &TableKind::ALL, Measure::Live, 0),
            live_per_table: PerTable::new(|kind| plan(&queries, &[kind], Measure::Live, 0)),
            queries,
            batchings: Batchings {
                // Prometheus's evaluation time per table for /agent/metrics: `stats=all` adds a
                // few hundred bytes to each answer and nothing measurable to its work.
                live: Batching::combined("live").with_statistics(Statistics::Stats),
                history: Batching::one_by_one(),
                energy: Batching::combined("energy"),
                // Column by column, so that check can say what each column costs.
                check: Batching::one_by_one().with_statistics(Statistics::Trace),
            },
            log: Mutex::new(FailureLog::default()),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The query source, for evaluations that ask more than the tables' queries (`check`'s
    /// probes).
    pub fn source(&self) -> &dyn QuerySource {
        &*self.source
    }

    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// The live schedule's grid.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The live queries of both tables.
    pub fn live_plan_both(&self) -> &Plan {
        &self.live
    }

    /// The live queries of `kind`.
    pub fn live_plan(&self, kind: TableKind) -> &Plan {
        self.live_per_table.get(kind)
    }

    /// The node names of node labels (addresses mapped, asked for at `at` when new).
    pub fn node_names<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str> + Clone,
        at: Millis,
    ) -> Vec<String> {
        let _ = map_addresses(&*self.source, &self.names, labels.clone(), at);
        let names = lock(&self.names);
        labels.into_iter().map(|l| names.resolve(l)).collect()
    }

    /// `WINDOW` in milliseconds: what every live row averages over.
    pub fn window(&self) -> Millis {
        self.window
    }

    /// Both tables' live queries at `at` (a live cycle, or `check`).
    pub fn live(
        &self,
        purpose: Purpose,
        at: Millis,
        collection: Millis,
    ) -> Result<Evaluated, QueryError> {
        let form = Form::Live { collection };
        self.evaluate(purpose, &self.live, Steps::at(at), form)
    }

    /// One table's live queries at `steps`, as history rows.
    pub fn history(&self, kind: TableKind, steps: Steps) -> Result<Evaluated, QueryError> {
        let plan = self.live_per_table.get(kind);
        self.evaluate(Purpose::History, plan, steps, Form::History)
    }

    /// What `tables` consumed over `window`.
    pub fn energy(
        &self,
        purpose: Purpose,
        tables: &[TableKind],
        window: Window,
    ) -> Result<Evaluated, QueryError> {
        let plan = plan(
            &self.queries,
            tables,
            Measure::Energy,
            window.end - window.start,
        );
        let form = Form::Energy {
            start: window.start,
        };
        self.evaluate(purpose, &plan, Steps::at(window.end), form)
    }

    /// Evaluates any plan, logs what failed, and returns rows ready to write: the one way
    /// every evaluation runs.
    pub fn evaluate(
        &self,
        purpose: Purpose,
        plan: &Plan,
        steps: Steps,
        form: Form,
    ) -> Result<Evaluated, QueryError> {
        let outcome = evaluate(
            &*self.source,
            &self.names,
            plan,
            steps,
            &self.namespace,
            self.batching(purpose),
        )?;
        lock(&self.log).outcome(purpose.log_prefix(), plan, &outcome);
        Ok(Evaluated {
            outcome,
            steps,
            form,
            namespace: Arc::clone(&self.namespace),
        })
    }

    fn batching(&self, purpose: Purpose) -> &Batching {
        match purpose {
            Purpose::Live => &self.batchings.live,
            Purpose::History | Purpose::Quality => &self.batchings.history,
            Purpose::Energy => &self.batchings.energy,
            Purpose::Check => &self.batchings.check,
        }
    }
}
