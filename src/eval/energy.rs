//! Energy per window (docs/design.md, "Energy"): what each node and pod consumed between two
//! times, in joules and CPU seconds, for experiment scripts that want one number per phase.
//!
//! One instant query per column at `time=end` over a range of `end − start`: counters give
//! their growth, power gauges their time average times the span. Every node and pod that had
//! a live row in the window gets a row, with empty fields where a source had nothing: the
//! live queries are asked once more as a subquery over the window's grid points.

use super::evaluator::{Evaluated, Evaluator, Purpose};
use super::fold::RowValues;
use super::plan::{Plan, Planned};
use super::render::{self, Form};
use super::steps::Steps;
use crate::prometheus::QueryError;
use crate::tables::queries::promql_duration;
use crate::tables::schema::{Measure, TableKind, header, value_columns};
use crate::time::{Grid, Millis, Window};

/// Grid points a presence subquery evaluates at most; longer windows use a coarser step.
const PRESENCE_POINTS: Millis = 1_000;

/// The energy CSV of `kind` for `window`: the header (unless not `with_header`) and one row
/// per node or pod.
pub fn energy_csv(
    evaluator: &Evaluator,
    kind: TableKind,
    window: Window,
    with_header: bool,
) -> Result<String, QueryError> {
    let mut csv = if with_header {
        header(kind, Measure::Energy)
    } else {
        String::new()
    };
    for line in energy_lines(evaluator, kind, window)? {
        csv.push_str(&line);
    }
    Ok(csv)
}

/// The energy rows of `kind` for `window`, without the header.
pub fn energy_lines(
    evaluator: &Evaluator,
    kind: TableKind,
    window: Window,
) -> Result<Vec<String>, QueryError> {
    let energy = evaluator.energy(Purpose::Energy, &[kind], window)?;
    let present = presence(evaluator, kind, window)?;
    let width = value_columns(kind, Measure::Energy).len();
    let rows = with_every_row(
        energy.outcome.step(kind, 0),
        present.outcome.step(kind, 0),
        width,
    );
    let form = Form::Energy {
        start: window.start,
    };
    Ok(render::lines(
        kind,
        &rows,
        form,
        window.end,
        evaluator.namespace(),
    ))
}

/// The rows the live queries had at any grid point of `window` (values unused); a window
/// shorter than the grid asks for the last grid point before its end.
fn presence(
    evaluator: &Evaluator,
    kind: TableKind,
    window: Window,
) -> Result<Evaluated, QueryError> {
    let span = window.end - window.start;
    let grid = Grid::every(
        evaluator
            .grid()
            .interval()
            .max((span + PRESENCE_POINTS - 1) / PRESENCE_POINTS),
    );
    let last = grid.floor(window.end);
    // Grid points after `last - range`: those from the window's first one to `last`.
    let range = (last - grid.ceil(window.start)).max(0) + 1;
    let columns = evaluator
        .live_plan(kind)
        .columns
        .iter()
        .map(|planned| Planned {
            promql: planned
                .promql
                .as_ref()
                .map(|q| presence_query(q, range, grid.interval())),
            ..planned.clone()
        })
        .collect();
    evaluator.evaluate(
        Purpose::Energy,
        &Plan::new(columns),
        Steps::at(last),
        Form::History,
    )
}

/// `promql` evaluated at every `step` in the `range` before the evaluation time (Prometheus
/// aligns subquery steps to multiples of `step`: the live grid).
fn presence_query(promql: &str, range: Millis, step: Millis) -> String {
    let duration = |ms: Millis| promql_duration(std::time::Duration::from_millis(ms.max(1) as u64));
    format!(
        "max_over_time(({promql})[{}:{}])",
        duration(range),
        duration(step)
    )
}

/// `energy` rows, plus an empty row for each row in `present` that energy lacks, by name.
fn with_every_row(energy: &[RowValues], present: &[RowValues], width: usize) -> Vec<RowValues> {
    let mut rows = energy.to_vec();
    for row in present {
        if !energy.iter().any(|r| r.name == row.name) {
            rows.push(RowValues {
                name: row.name.clone(),
                node: row.node.clone(),
                values: vec![None; width],
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}
