//! Marks read back from Prometheus: an agent replaced with an empty `MARKS_FILE` still knows
//! the marks its predecessors exported, with their exact times, as long as Prometheus keeps
//! its data. Only the marks of agents observing the same namespace are read; their run and
//! name are filtered after reading, never put in the query.

use std::time::Duration;

use super::Mark;
use super::store::METRIC;
use crate::prometheus::{Eval, QueryError, QuerySource};
use crate::tables::queries::promql_duration;
use crate::time::{Millis, Window};

/// The marks exported by agents observing `namespace` during `window`.
pub fn recall(
    source: &dyn QuerySource,
    namespace: &str,
    window: Window,
) -> Result<Vec<Mark>, QueryError> {
    let span = promql_duration(Duration::from_millis(
        (window.end - window.start).max(1000) as u64
    ));
    let promql = format!(
        r#"max by (run, mark, seq) (max_over_time({METRIC}{{observed_namespace="{namespace}"}}[{span}]))"#
    );
    let mut marks = Vec::new();
    source.query(&promql, Eval::At(window.end), &mut |series| {
        let (Some(run), Some(name)) = (series.labels.get("run"), series.labels.get("mark")) else {
            return;
        };
        if let Some((_, seconds)) = series.points.last().filter(|(_, v)| v.is_finite()) {
            marks.push(Mark {
                time: (seconds * 1000.0).round() as Millis,
                run: run.to_string(),
                name: name.to_string(),
            });
        }
    })?;
    Ok(marks)
}

/// `local` and `recalled` marks together, each once, in time order.
pub fn merge(local: Vec<Mark>, recalled: Vec<Mark>) -> Vec<Mark> {
    let mut all = local;
    all.extend(recalled);
    all.sort();
    all.dedup();
    all
}
