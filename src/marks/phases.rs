//! The phases of a run: each lasts from one of its marks to the next, and takes the name of
//! the mark that starts it; a mark named `end` closes the run (and starts no phase). The last
//! phase of a run not yet closed lasts until now.

use super::{END, Mark};
use crate::tables::format::{CsvLines, format_seconds};
use crate::time::{Millis, Window, format_time};

/// One phase of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub run: String,
    /// 1 for the run's first phase: what `phase=N` refers to.
    pub number: usize,
    /// The name of the mark that starts it.
    pub name: String,
    pub start: Millis,
    pub end: Millis,
    /// Not yet closed by a mark: it ends now.
    pub open: bool,
}

impl Phase {
    pub fn window(&self) -> Window {
        Window {
            start: self.start,
            end: self.end,
        }
    }
}

/// The header of `/phases`.
pub const HEADER: &str = "run,phase,start,end,seconds\n";

/// The phases of `run`, in time order, as of `now`.
pub fn of_run(marks: &[Mark], run: &str, now: Millis) -> Vec<Phase> {
    let of_run: Vec<&Mark> = marks.iter().filter(|m| m.run == run).collect();
    let mut phases = Vec::new();
    for (i, mark) in of_run.iter().enumerate() {
        if mark.name == END {
            continue;
        }
        let next = of_run.get(i + 1);
        phases.push(Phase {
            run: run.to_string(),
            number: phases.len() + 1,
            name: mark.name.clone(),
            start: mark.time,
            end: next.map_or(now.max(mark.time), |n| n.time),
            open: next.is_none(),
        });
    }
    phases
}

/// The phase `wanted` names: its number, or a name only one phase of the run has.
pub fn select<'a>(phases: &'a [Phase], wanted: &str) -> Result<&'a Phase, String> {
    let run = phases.first().map_or("", |p| p.run.as_str());
    if let Ok(number) = wanted.parse::<usize>() {
        return phases.iter().find(|p| p.number == number).ok_or_else(|| {
            format!(
                "run {run:?} has {} phases: phase={number} is not one of them",
                phases.len()
            )
        });
    }
    let named: Vec<&Phase> = phases.iter().filter(|p| p.name == wanted).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(format!("run {run:?} has no phase named {wanted:?}")),
        several => Err(format!(
            "run {run:?} has {} phases named {wanted:?}: give its number (phase=N, see /phases?run={run})",
            several.len()
        )),
    }
}

/// From the run's first mark to its last phase's end.
pub fn span(phases: &[Phase]) -> Option<Window> {
    Some(Window {
        start: phases.first()?.start,
        end: phases.last()?.end,
    })
}

/// The CSV lines of `phases` (`run,phase,start,end,seconds`).
pub fn lines(phases: &[Phase]) -> Vec<String> {
    let mut csv = CsvLines::new();
    phases
        .iter()
        .map(|p| {
            csv.push(&[
                p.run.as_str(),
                &p.name,
                &format_time(p.start),
                &format_time(p.end),
                &format_seconds(p.end - p.start),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(time: Millis, run: &str, name: &str) -> Mark {
        Mark {
            time,
            run: run.into(),
            name: name.into(),
        }
    }

    #[test]
    fn phases_run_from_mark_to_mark() {
        let marks = [
            mark(1_000, "r", "idle"),
            mark(2_000, "other", "x"),
            mark(3_000, "r", "load"),
            mark(6_500, "r", "idle"),
            mark(8_000, "r", "end"),
            mark(9_000, "open", "warm-up"),
        ];
        let phases = of_run(&marks, "r", 10_000);
        let summary: Vec<(usize, &str, Millis, Millis)> = phases
            .iter()
            .map(|p| (p.number, p.name.as_str(), p.start, p.end))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "idle", 1_000, 3_000),
                (2, "load", 3_000, 6_500),
                (3, "idle", 6_500, 8_000)
            ]
        );
        assert_eq!(
            lines(&phases[1..2]),
            ["r,load,1970-01-01T00:00:03.000Z,1970-01-01T00:00:06.500Z,3.5\n"]
        );
        assert_eq!(
            span(&phases),
            Some(Window {
                start: 1_000,
                end: 8_000
            })
        );
        assert_eq!(select(&phases, "2").map(|p| p.name.as_str()), Ok("load"));
        assert_eq!(select(&phases, "load").map(|p| p.number), Ok(2));
        assert!(
            select(&phases, "idle")
                .unwrap_err()
                .contains("2 phases named")
        );
        assert!(select(&phases, "9").unwrap_err().contains("3 phases"));
        assert!(
            select(&phases, "cool")
                .unwrap_err()
                .contains("no phase named")
        );
        // A run not yet closed: its last phase ends now.
        let open = of_run(&marks, "open", 10_000);
        assert_eq!((open[0].end, open[0].open), (10_000, true));
        assert!(of_run(&marks, "none", 10_000).is_empty());
    }
}
