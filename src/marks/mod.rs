//! Runs and phases on the cluster's clock (README, "Runs and phases"): a mark is a time the
//! agent stamps on request, with the run and the name it was given; a phase of a run lasts
//! from one of its marks to the next, and a mark named `end` closes the run.
//!
//! Marks are kept in memory and in `MARKS_FILE` (`store`), exported on `/agent/metrics` so a
//! scraping Prometheus keeps them, and read back from Prometheus (`recall`) by an agent that
//! lost its file. `phases` turns a run's marks into phases. A mark's run and name never reach
//! a query: marks are filtered after they are read.

pub mod phases;
pub mod recall;
pub mod store;

use crate::tables::format::CsvLines;
use crate::time::{Millis, format_time};

pub use phases::Phase;
pub use store::Marks;

/// Most marks kept; more are refused.
pub const MAX_MARKS: usize = 10_000;
/// The name of the mark that closes a run.
pub const END: &str = "end";
/// Longest run or mark name.
const MAX_NAME: usize = 64;

/// A mark: when the agent stamped it, its run and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    pub time: Millis,
    pub run: String,
    pub name: String,
}

/// The header of `/marks`.
pub const HEADER: &str = "time,run,name\n";

impl Mark {
    /// The CSV line of the mark (`time,run,name`).
    pub fn line(&self) -> String {
        CsvLines::new().push(&[format_time(self.time).as_str(), &self.run, &self.name])
    }
}

/// Checks a run or mark name: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() {
        return Err(format!("{what} is required and must not be empty"));
    }
    if value.chars().count() > MAX_NAME {
        return Err(format!("{what} is longer than {MAX_NAME} characters"));
    }
    if !value.chars().all(valid) {
        return Err(format!(
            "{what} {value:?} may hold only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("name", "load-1.5_b").is_ok());
        assert!(check_name("name", &"a".repeat(64)).is_ok());
        for bad in ["", "a b", "x\"y", "é", "a,b", "a\nb", &"a".repeat(65)] {
            let e = check_name("name", bad).unwrap_err();
            assert!(e.starts_with("name"), "{e}");
            assert!(!e.contains('\n'), "{e:?}");
        }
        let mark = Mark {
            time: 1_769_860_805_123,
            run: "r1".into(),
            name: "load".into(),
        };
        assert_eq!(mark.line(), "2026-01-31T12:00:05.123Z,r1,load\n");
    }
}
