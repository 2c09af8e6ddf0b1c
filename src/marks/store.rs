//! The marks this agent stamped: in memory, appended to `MARKS_FILE` (one CSV line each,
//! flushed to disk before the mark is answered) so a restarted container keeps them, and
//! exported on `/agent/metrics` so a scraping Prometheus keeps them as long as its data.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use super::{MAX_MARKS, Mark, check_name};
use crate::status::metrics::{Family, Kind, Sample};
use crate::time::{Millis, now_ms, parse_time};

/// Name of the exported metric: one series per mark, its value the mark's time in seconds.
pub const METRIC: &str = "prometheus_agent_mark_timestamp_seconds";

/// The marks, in time order, and the file they are appended to.
pub struct Marks {
    inner: Mutex<Inner>,
}

struct Inner {
    marks: Vec<Mark>,
    file: Option<File>,
}

impl Marks {
    /// Marks kept in memory only.
    pub fn in_memory() -> Marks {
        Marks {
            inner: Mutex::new(Inner {
                marks: Vec::new(),
                file: None,
            }),
        }
    }

    /// The marks of `path` (created when missing), appended to from now on. The error is one
    /// line saying what is wrong with the file.
    pub fn open(path: &Path) -> Result<Marks, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut marks = Vec::new();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let mark = parse_line(line).ok_or_else(|| {
                format!(
                    "{} line {}: not a mark: {line:?}",
                    path.display(),
                    number + 1
                )
            })?;
            marks.push(mark);
        }
        marks.sort();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot append to {}: {e}", path.display()))?;
        Ok(Marks {
            inner: Mutex::new(Inner {
                marks,
                file: Some(file),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stamps a mark at the agent's clock, later than every mark before it, and keeps it (on
    /// disk first). The error is a bad name, too many marks, or a file that cannot be written.
    pub fn add(&self, run: &str, name: &str) -> Result<Mark, AddError> {
        check_name("run", run).map_err(AddError::Bad)?;
        check_name("name", name).map_err(AddError::Bad)?;
        let mut inner = self.lock();
        if inner.marks.len() >= MAX_MARKS {
            return Err(AddError::Bad(format!(
                "{MAX_MARKS} marks kept already: no more"
            )));
        }
        let last = inner.marks.last().map_or(Millis::MIN, |m| m.time);
        let mark = Mark {
            time: now_ms().max(last + 1),
            run: run.to_string(),
            name: name.to_string(),
        };
        if let Some(file) = inner.file.as_mut() {
            file.write_all(mark.line().as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| AddError::File(format!("cannot keep the mark: {e}")))?;
        }
        inner.marks.push(mark.clone());
        Ok(mark)
    }

    /// Every mark, in time order.
    pub fn all(&self) -> Vec<Mark> {
        self.lock().marks.clone()
    }

    /// The `/agent/metrics` family: one gauge per mark, its time in Unix seconds, labelled
    /// with the observed namespace (so an agent of another namespace never reads it back), its
    /// run, its name and its place in the run (a run may repeat a name).
    pub fn family(&self, namespace: &str) -> Family {
        let inner = self.lock();
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let samples = inner
            .marks
            .iter()
            .map(|m| {
                let seq = seen.entry(&m.run).or_insert(0);
                *seq += 1;
                let seq = seq.to_string();
                let labels = [
                    ("observed_namespace", namespace),
                    ("run", &m.run),
                    ("mark", &m.name),
                    ("seq", &seq),
                ];
                Sample::labelled(&labels, m.time as f64 / 1000.0)
            })
            .collect();
        Family {
            name: METRIC,
            kind: Kind::Gauge,
            help: "Time of each mark of a run (Unix seconds), stamped by the agent.",
            samples,
        }
    }
}

/// Why a mark was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    /// The client's fault: a 400.
    Bad(String),
    /// The file could not be written: a 500.
    File(String),
}

/// A line of the file: `time,run,name` (the time as RFC 3339).
fn parse_line(line: &str) -> Option<Mark> {
    let mut fields = line.trim_end().splitn(3, ',');
    let time = parse_time(fields.next()?)?;
    let run = fields.next()?.to_string();
    let name = fields.next()?.to_string();
    (check_name("run", &run).is_ok() && check_name("name", &name).is_ok()).then_some(Mark {
        time,
        run,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_ordered_kept_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("marks-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let marks = Marks::open(&dir).unwrap();
        let a = marks.add("r1", "idle").unwrap();
        let b = marks.add("r1", "load").unwrap();
        assert!(b.time > a.time);
        assert!(matches!(marks.add("r 1", "x"), Err(AddError::Bad(_))));
        assert!(matches!(marks.add("r1", ""), Err(AddError::Bad(_))));
        let again = Marks::open(&dir).unwrap();
        assert_eq!(again.all(), [a.clone(), b]);
        let text = crate::status::metrics::render(&[again.family("exp")]);
        let expected = format!(
            "{METRIC}{{observed_namespace=\"exp\",run=\"r1\",mark=\"idle\",seq=\"1\"}} {}",
            a.time as f64 / 1000.0
        );
        assert!(text.contains(&expected), "{text}");
        std::fs::write(&dir, "garbage\n").unwrap();
        assert!(
            Marks::open(&dir)
                .err()
                .unwrap_or_default()
                .contains("line 1")
        );
        let _ = std::fs::remove_file(&dir);
    }
}
