//! Energy per run: what each node and pod consumed between two times, in joules and CPU
//! seconds, for experiment scripts that want one number per phase.
//!
//! One instant query per column at `time=end` over a range of `end − start`: counters give
//! their growth, power gauges their time average times the span (README, "Energy").

use log::warn;

use crate::cycle::{self, Steps, render};
use crate::history::Past;
use crate::params::Window;
use crate::prometheus::QueryError;
use crate::schema::{Measure, TableKind, header};

/// The energy CSV of `kind` for `window`: header and one row per node or pod.
pub fn energy_csv(past: &Past, kind: TableKind, window: Window) -> Result<String, QueryError> {
    let span = window.end - window.start;
    let plan = cycle::plan(&past.queries, &[kind], Measure::Energy, span);
    let outcome = cycle::evaluate(
        &*past.source,
        &past.names,
        &plan,
        Steps::at(window.end),
        &past.namespace,
        &past.energy_batching,
    )?;
    for c in &outcome.columns {
        if let Some(Err(e)) = &c.outcome {
            warn!(
                "energy {}.{} query failed (column left empty): {e}",
                kind.name(),
                c.name
            );
        }
    }
    let rows = outcome
        .rows
        .get(kind)
        .first()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut csv = header(kind, Measure::Energy);
    for line in render::energy_lines(kind, rows, window.start, window.end, &past.namespace) {
        csv.push_str(&line);
    }
    Ok(csv)
}
