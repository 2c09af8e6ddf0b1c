//! The agent's own health: readiness, and the poller's figures for `/agent/metrics`.

pub mod metrics;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::buffer::Buffer;
use crate::prometheus::QueryStats;
use crate::tables::schema::{PerTable, TableKind};
use metrics::{Family, Kind, Sample};

#[derive(Default)]
struct Figures {
    cycles: u64,
    cycles_failed: u64,
    ticks_missed: u64,
    query_errors: BTreeMap<(TableKind, &'static str), u64>,
    last_duration: f64,
    duration_sum: f64,
    rows_produced: PerTable<u64>,
    /// Evaluation time the server reported for each table's live queries, summed; `None`
    /// until it reported any (VictoriaMetrics never does).
    eval_seconds: PerTable<Option<f64>>,
    last_success: Option<Instant>,
    last_success_wall: Option<SystemTime>,
    last_error: Option<String>,
    /// Rows of the last cycle with each data problem: (table, `column:problem`) → rows.
    data_problems: BTreeMap<(TableKind, String), usize>,
}

/// Shared between the poller (writer) and the server (reader).
pub struct Status {
    interval: Duration,
    figures: Mutex<Figures>,
}

impl Status {
    pub fn new(interval: Duration) -> Status {
        Status {
            interval,
            figures: Mutex::new(Figures::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cycle that produced rows (some columns may still have failed).
    pub fn cycle_succeeded(&self, duration: Duration, rows: &PerTable<usize>) {
        let mut f = self.lock();
        f.cycles += 1;
        f.last_duration = duration.as_secs_f64();
        f.duration_sum += f.last_duration;
        for (kind, n) in rows.iter() {
            *f.rows_produced.get_mut(kind) += *n as u64;
        }
        f.last_success = Some(Instant::now());
        f.last_success_wall = Some(SystemTime::now());
        f.last_error = None;
    }

    /// A cycle skipped because Prometheus could not answer.
    pub fn cycle_failed(&self, duration: Duration, error: String) {
        let mut f = self.lock();
        f.cycles += 1;
        f.cycles_failed += 1;
        f.last_duration = duration.as_secs_f64();
        f.duration_sum += f.last_duration;
        f.last_error = Some(error);
    }

    pub fn query_failed(&self, kind: TableKind, column: &'static str) {
        *self.lock().query_errors.entry((kind, column)).or_default() += 1;
    }

    /// The last cycle's `problems` fields, counted per table, column and problem.
    pub fn data_problems(&self, fields: &PerTable<Vec<String>>) {
        let mut counts = BTreeMap::new();
        for (kind, fields) in fields.iter() {
            for pair in fields
                .iter()
                .flat_map(|f| f.split(';'))
                .filter(|p| !p.is_empty())
            {
                *counts.entry((kind, pair.to_string())).or_insert(0) += 1;
            }
        }
        self.lock().data_problems = counts;
    }

    /// What the server reported about a cycle's queries, per table (`stats=all`).
    pub fn server_reported(&self, stats: &PerTable<Option<QueryStats>>) {
        let mut f = self.lock();
        for (kind, stats) in stats.iter() {
            if let Some(stats) = stats {
                *f.eval_seconds.get_mut(kind).get_or_insert(0.0) += stats.eval_seconds;
            }
        }
    }

    pub fn ticks_missed(&self, n: u64) {
        self.lock().ticks_missed += n;
    }

    /// `Ok` when the last successful cycle is at most three intervals old, else the reason.
    pub fn readiness(&self) -> Result<(), String> {
        let f = self.lock();
        let limit = self.interval * 3;
        match f.last_success {
            Some(t) if t.elapsed() <= limit => Ok(()),
            Some(t) => Err(format!(
                "last successful cycle {:.1}s ago (limit {}s){}",
                t.elapsed().as_secs_f64(),
                limit.as_secs_f64(),
                f.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )),
            None => Err(match &f.last_error {
                Some(e) => format!("no successful cycle yet; last error: {e}"),
                None => "no successful cycle yet".to_string(),
            }),
        }
    }

    /// The poller's figures, the buffers' and the process's.
    pub fn families(&self, buffers: &PerTable<Arc<Buffer>>) -> Vec<Family> {
        let f = self.lock();
        let mut families = cycle_families(&f);
        families.extend(row_families(&f, buffers));
        families.push(problem_family(&f));
        if let Some(rss) = resident_memory_bytes() {
            families.push(Family::one(
                "prometheus_agent_resident_memory_bytes",
                Kind::Gauge,
                "Resident set size of the agent process.",
                rss as f64,
            ));
        }
        families
    }
}

fn cycle_families(f: &Figures) -> Vec<Family> {
    let last_success = f
        .last_success_wall
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let query_errors = f
        .query_errors
        .iter()
        .map(|((kind, column), n)| {
            Sample::labelled(&[("table", kind.name()), ("column", column)], *n as f64)
        })
        .collect();
    vec![
        Family::one(
            "prometheus_agent_cycles_total",
            Kind::Counter,
            "Poll cycles run, successful or not.",
            f.cycles as f64,
        ),
        Family::one(
            "prometheus_agent_cycle_errors_total",
            Kind::Counter,
            "Poll cycles skipped because Prometheus could not answer.",
            f.cycles_failed as f64,
        ),
        Family::one(
            "prometheus_agent_ticks_missed_total",
            Kind::Counter,
            "Scheduled cycles skipped because the previous cycle overran the interval.",
            f.ticks_missed as f64,
        ),
        Family {
            name: "prometheus_agent_query_errors_total",
            kind: Kind::Counter,
            help: "Column queries that failed (the column was left empty).",
            samples: query_errors,
        },
        Family::one(
            "prometheus_agent_last_cycle_duration_seconds",
            Kind::Gauge,
            "Duration of the last poll cycle.",
            f.last_duration,
        ),
        Family::summary(
            "prometheus_agent_cycle_duration_seconds",
            "Duration of poll cycles.",
            f.duration_sum,
            f.cycles,
        ),
        Family::one(
            "prometheus_agent_last_success_timestamp_seconds",
            Kind::Gauge,
            "Unix time of the last successful cycle (0: none yet).",
            last_success,
        ),
    ]
}

fn row_families(f: &Figures, buffers: &PerTable<Arc<Buffer>>) -> Vec<Family> {
    let per_table = |value: &dyn Fn(TableKind) -> f64| {
        TableKind::ALL
            .iter()
            .map(|kind| Sample::labelled(&[("table", kind.name())], value(*kind)))
            .collect()
    };
    let eval_seconds = f
        .eval_seconds
        .iter()
        .filter_map(|(kind, s)| Some(Sample::labelled(&[("table", kind.name())], (*s)?)))
        .collect();
    vec![
        Family {
            name: "prometheus_agent_query_eval_seconds_total",
            kind: Kind::Counter,
            help: "Time (wall clock) Prometheus reported spending on evaluating each \
                   table's live queries (stats=all: evalTotalTime); absent for servers that \
                   report none, such as VictoriaMetrics.",
            samples: eval_seconds,
        },
        Family {
            name: "prometheus_agent_rows_total",
            kind: Kind::Counter,
            help: "Rows produced.",
            samples: per_table(&|kind| *f.rows_produced.get(kind) as f64),
        },
        Family {
            name: "prometheus_agent_rows_buffered",
            kind: Kind::Gauge,
            help: "Rows currently held in the buffer.",
            samples: per_table(&|kind| buffers.get(kind).len() as f64),
        },
    ]
}

fn problem_family(f: &Figures) -> Family {
    let samples = f
        .data_problems
        .iter()
        .filter_map(|((kind, pair), rows)| {
            let (column, problem) = pair.split_once(':')?;
            let labels = [
                ("table", kind.name()),
                ("column", column),
                ("problem", problem),
            ];
            Some(Sample::labelled(&labels, *rows as f64))
        })
        .collect();
    Family {
        name: "prometheus_agent_data_problems",
        kind: Kind::Gauge,
        help: "Rows of the newest cycle whose column has this data problem (README, Data quality).",
        samples,
    }
}

/// VmRSS from `/proc/self/status` (Linux).
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_cycles() {
        let status = Status::new(Duration::from_millis(20));
        let e = status.readiness().unwrap_err();
        assert_eq!(e, "no successful cycle yet");
        status.cycle_failed(Duration::ZERO, "Prometheus unreachable: refused".into());
        assert!(status.readiness().unwrap_err().contains("refused"));
        status.cycle_succeeded(Duration::from_millis(5), &PerTable { nodes: 3, pods: 0 });
        assert_eq!(status.readiness(), Ok(()));
        std::thread::sleep(Duration::from_millis(70));
        let e = status.readiness().unwrap_err();
        assert!(e.starts_with("last successful cycle"), "{e}");
    }

    #[test]
    fn metrics_text() {
        let status = Status::new(Duration::from_secs(1));
        status.cycle_succeeded(Duration::from_millis(250), &PerTable { nodes: 3, pods: 2 });
        status.cycle_failed(Duration::from_millis(750), "x".into());
        status.query_failed(TableKind::Pods, "wattage_scaph");
        let reported = |eval_seconds| QueryStats {
            eval_seconds,
            samples: Some(10),
            peak_samples: None,
        };
        status.server_reported(&PerTable {
            nodes: Some(reported(0.25)),
            pods: None,
        });
        status.server_reported(&PerTable {
            nodes: Some(reported(0.125)),
            pods: None,
        });
        let buffers = PerTable::new(|kind| Arc::new(Buffer::new(kind, 10)));
        let text = metrics::render(&status.families(&buffers));
        assert!(text.contains("prometheus_agent_cycles_total 2\n"), "{text}");
        assert!(text.contains("prometheus_agent_cycle_errors_total 1\n"));
        assert!(text.contains("prometheus_agent_last_cycle_duration_seconds 0.75\n"));
        assert!(text.contains("# TYPE prometheus_agent_cycle_duration_seconds summary\n"));
        assert!(text.contains("prometheus_agent_cycle_duration_seconds_sum 1\n"));
        assert!(text.contains("prometheus_agent_cycle_duration_seconds_count 2\n"));
        assert!(text.contains(
            "prometheus_agent_query_errors_total{table=\"pods\",column=\"wattage_scaph\"} 1\n"
        ));
        assert!(text.contains("prometheus_agent_rows_total{table=\"nodes\"} 3\n"));
        assert!(text.contains(
            "# TYPE prometheus_agent_query_eval_seconds_total counter\n\
             prometheus_agent_query_eval_seconds_total{table=\"nodes\"} 0.375\n#"
        ));
        assert!(text.contains("prometheus_agent_rows_total{table=\"pods\"} 2\n"));
        assert!(text.contains("prometheus_agent_rows_buffered{table=\"nodes\"} 0\n"));
        assert!(text.contains("prometheus_agent_resident_memory_bytes "));
    }
}
