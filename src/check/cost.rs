//! What each column's query cost the server, as it reported (README, "Troubleshooting"):
//! the samples Prometheus read and the time it spent evaluating (`stats=all`), per column and
//! per table, so that a user sees which columns weigh on their Prometheus and which override
//! to drop. VictoriaMetrics ignores `stats=all`; with `trace=1` it reports how long each
//! query took, but no sample counts before v1.90.

use std::fmt::Write as _;

use crate::eval::Outcome;
use crate::prometheus::QueryStats;
use crate::tables::schema::TableKind;

const NO_SAMPLES: &str = "the server reported times but no sample counts (VictoriaMetrics \
                          before v1.90 ignores stats=all; the times are its trace=1 \
                          durations; /api/v1/status/top_queries lists its heaviest queries)";

const NOTHING: &str = "the server reported no statistics (Prometheus reports them with \
                       stats=all, VictoriaMetrics with trace=1; a proxy in between may drop them)";

/// The cost section of a live cycle evaluated column by column with statistics.
pub fn section(outcome: &Outcome) -> String {
    let mut out = String::from(
        "\ncost: what the server reported for each query of this cycle (stats=all; a live \
         cycle asks the same every UPDATE_INTERVAL)\n",
    );
    let reported: Vec<QueryStats> = outcome.columns.iter().filter_map(|c| c.stats).collect();
    if reported.is_empty() {
        let _ = writeln!(out, "{NOTHING}");
        return out;
    }
    let total = reported
        .iter()
        .fold(0.0, |sum, stats| sum + stats.eval_seconds);
    let _ = writeln!(
        out,
        "{:<6} {:<17} {:>10} {:>9} {:>6}",
        "TABLE", "COLUMN", "SAMPLES", "EVAL_MS", "SHARE"
    );
    let line = |out: &mut String, table: &str, column: &str, stats: Option<QueryStats>| {
        let (samples, ms, share) = match stats {
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
            Some(s) => (
                s.samples.map_or("-".to_string(), |n| n.to_string()),
                format!("{:.1}", 1000.0 * s.eval_seconds),
                if total > 0.0 {
                    format!("{:.0}%", 100.0 * s.eval_seconds / total)
                } else {
                    "-".to_string()
                },
            ),
        };
        let _ = writeln!(
            out,
            "{table:<6} {column:<17} {samples:>10} {ms:>9} {share:>6}"
        );
    };
    for c in &outcome.columns {
        line(&mut out, c.table.name(), c.name, c.stats);
    }
    for table in TableKind::ALL {
        let sum = outcome
            .columns
            .iter()
            .filter(|c| c.table == table)
            .filter_map(|c| c.stats)
            .reduce(QueryStats::plus);
        line(&mut out, table.name(), "(table)", sum);
    }
    if reported.iter().all(|s| s.samples.is_none()) {
        let _ = writeln!(out, "note: {NO_SAMPLES}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::ColumnOutcome;
    use crate::tables::schema::PerTable;

    fn outcome(stats: [Option<QueryStats>; 3]) -> Outcome {
        let column = |table, column, name, stats| ColumnOutcome {
            table,
            column,
            name,
            overridden: false,
            outcome: Some(Ok(1)),
            stats,
        };
        Outcome {
            rows: PerTable::default(),
            columns: vec![
                column(TableKind::Nodes, 0, "cpu_usage", stats[0]),
                column(TableKind::Nodes, 1, "memory_usage", stats[1]),
                column(TableKind::Pods, 0, "cpu_usage", stats[2]),
            ],
            stats: PerTable::default(),
            unmapped: Vec::new(),
            duplicates: Vec::new(),
            mapping_errors: Vec::new(),
        }
    }

    fn stats(ms: f64, samples: Option<u64>) -> Option<QueryStats> {
        Some(QueryStats {
            eval_seconds: ms / 1000.0,
            samples,
            peak_samples: None,
        })
    }

    #[test]
    fn per_column_and_per_table() {
        let text = section(&outcome([
            stats(10.0, Some(9600)),
            stats(5.0, Some(4800)),
            stats(25.0, Some(32004)),
        ]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("cost: "), "{text}");
        assert_eq!(
            lines[2],
            "TABLE  COLUMN               SAMPLES   EVAL_MS  SHARE"
        );
        assert_eq!(
            lines[3],
            "nodes  cpu_usage               9600      10.0    25%"
        );
        assert_eq!(
            lines[5],
            "pods   cpu_usage              32004      25.0    62%"
        );
        assert_eq!(
            lines[6],
            "nodes  (table)                14400      15.0    38%"
        );
        assert_eq!(
            lines[7],
            "pods   (table)                32004      25.0    62%"
        );
        assert_eq!(lines.len(), 8, "{text}");
    }

    #[test]
    fn victoria_metrics_and_silent_servers() {
        let text = section(&outcome([stats(4.0, None), None, stats(12.0, None)]));
        assert!(text.contains("nodes  memory_usage               -         -      -"));
        assert!(text.contains("pods   cpu_usage                  -      12.0    75%"));
        assert!(text.contains("note: the server reported times but no sample counts"));
        let text = section(&outcome([None, None, None]));
        assert!(text.contains("reported no statistics"), "{text}");
    }
}
