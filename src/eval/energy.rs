//! Energy per window (docs/design.md, "Energy"): what each node and pod consumed between two
//! times, in joules and CPU seconds, for experiment scripts that want one number per phase.
//!
//! One instant query per column at `time=end` over a range of `end − start`: counters give
//! their growth, power gauges their time average times the span. Every node and pod that had
//! a live row in the window gets a row, with empty fields where a source had nothing: the
//! live queries are asked once more as a subquery over the window's grid points. Each row ends
//! in the data problems of its sources in the window (`quality`).

use super::evaluator::{Evaluated, Evaluator, Purpose};
use super::fold::RowValues;
use super::plan::{Plan, Planned};
use super::quality::{self, Audit, Finding};
use super::render::{self, Form};
use super::steps::Steps;
use crate::marks::Phase;
use crate::prometheus::QueryError;
use crate::tables::queries::promql_duration;
use crate::tables::schema::{Measure, TableKind, energy_column, header, value_columns};
use crate::time::{Grid, Millis, Window};

/// Grid points a presence subquery evaluates at most; longer windows use a coarser step.
const PRESENCE_POINTS: Millis = 1_000;

/// How an energy table is asked for.
#[derive(Debug, Clone, Copy)]
pub struct EnergyRequest {
    pub kind: TableKind,
    pub window: Window,
    pub with_header: bool,
    /// The live tables' rows per cycle (nodes + pods): sizes the quality scan's chunks.
    pub rows_per_step: usize,
}

/// The energy CSV of a request: the header (unless not asked) and one row per node or pod,
/// each ending in the data problems of its sources in the window.
pub fn energy_csv(audit: &Audit, asked: EnergyRequest) -> Result<String, QueryError> {
    let mut csv = if asked.with_header {
        header(asked.kind, Measure::Energy)
    } else {
        String::new()
    };
    let findings = audit.window(asked.window, asked.rows_per_step)?;
    for line in energy_lines(audit.evaluator, asked.kind, asked.window, &findings)? {
        csv.push_str(&line);
    }
    Ok(csv)
}

/// The energy CSV of each phase of a run: the header (unless not asked) with `run,phase`
/// first, then each phase's rows, each row's joules over its phase alone.
pub fn phases_csv(
    audit: &Audit,
    kind: TableKind,
    phases: &[Phase],
    with_header: bool,
    rows_per_step: usize,
) -> Result<String, QueryError> {
    let mut csv = if with_header {
        format!("run,phase,{}", header(kind, Measure::Energy))
    } else {
        String::new()
    };
    for phase in phases {
        let findings = audit.window(phase.window(), rows_per_step)?;
        // Run and phase names hold only letters, digits, '.', '_' and '-': no quoting.
        let prefix = format!("{},{},", phase.run, phase.name);
        for line in energy_lines(audit.evaluator, kind, phase.window(), &findings)? {
            csv.push_str(&prefix);
            csv.push_str(&line);
        }
    }
    Ok(csv)
}

/// The energy rows of `kind` for `window`, without the header, each ending in the problems
/// `findings` name for its row.
pub fn energy_lines(
    evaluator: &Evaluator,
    kind: TableKind,
    window: Window,
    findings: &[Finding],
) -> Result<Vec<String>, QueryError> {
    let energy = evaluator.energy(Purpose::Energy, &[kind], window)?;
    let present = presence(evaluator, kind, window)?;
    let width = value_columns(kind, Measure::Energy).len();
    let rows = with_every_row(
        energy.outcome.step(kind, 0),
        present.outcome.step(kind, 0),
        width,
    );
    let columns = value_columns(kind, Measure::Energy);
    let problems: Vec<String> = rows
        .iter()
        .map(|row| {
            let of_row = findings
                .iter()
                .filter(|f| f.table == kind && f.row() == row.name);
            quality::problems_field(of_row, columns, |live| energy_column(kind, live))
        })
        .collect();
    let form = Form::Energy {
        start: window.start,
    };
    Ok(render::lines_with(
        kind,
        &rows,
        form,
        window.end,
        evaluator.namespace(),
        Some(&problems),
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
