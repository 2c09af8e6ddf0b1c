//! The Prometheus HTTP API as the agent uses it: instant queries at a fixed time and range
//! queries over a span, both answered series by series.
//!
//! `QuerySource` is the seam between evaluation and the network: the agent's `Client` talks to
//! Prometheus (or VictoriaMetrics, Thanos, Mimir), unit tests use a fake. The protocol
//! (`answer`: what the JSON means) is apart from the I/O (`client`: requests and bytes). Every
//! failure carries Prometheus's own error text, because that is what an operator needs to fix
//! a query or a permission.

mod answer;
mod client;
mod resolver;

pub use answer::{
    KEPT_LABELS, Labels, Limits, QueryError, QueryStats, Series, read_answer,
    read_answer_with_stats,
};
pub use client::Client;

use crate::time::Millis;

/// When a query is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    /// An instant query at this time.
    At(Millis),
    /// A range query: every `start + k·step` up to `end`.
    Range {
        start: Millis,
        end: Millis,
        step: Millis,
    },
}

/// What the server is asked to report about its work on a query (`QueryStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// Nothing.
    None,
    /// `stats=all`: Prometheus reports its evaluation time and the samples it read, at the
    /// cost of a few hundred bytes of answer; VictoriaMetrics ignores it.
    Stats,
    /// `stats=all&trace=1`: VictoriaMetrics also reports the query's trace (its duration is
    /// kept), which costs it more: for `check`, not for every cycle.
    Trace,
}

/// Anything that answers PromQL the way Prometheus does.
pub trait QuerySource {
    /// Evaluates `promql`, handing each series of the answer to `sink` as it arrives; returns
    /// the number of series. After an error, `sink` may have seen part of the answer.
    fn query(
        &self,
        promql: &str,
        eval: Eval,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<usize, QueryError>;

    /// `query`, asking the server for `statistics` too; they come back where it reported
    /// them. Sources that report none need not implement it.
    fn query_with_stats(
        &self,
        promql: &str,
        eval: Eval,
        statistics: Statistics,
        sink: &mut dyn FnMut(Series<'_>),
    ) -> Result<(usize, Option<QueryStats>), QueryError> {
        let _ = statistics;
        self.query(promql, eval, sink).map(|series| (series, None))
    }
}

/// A time as an API parameter: Unix seconds with milliseconds.
pub fn format_time_param(ms: Millis) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parameter_has_milliseconds() {
        assert_eq!(format_time_param(1_700_000_000_007), "1700000000.007");
        assert_eq!(format_time_param(15_000), "15.000");
    }
}
