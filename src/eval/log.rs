//! Logging what goes wrong in evaluations, once: a persisting failure once (again when its
//! text changes) and its recovery once, so a broken column does not write the same warning
//! every cycle; each duplicate series once.

use std::collections::{HashMap, HashSet};

use log::{debug, info, warn};

use super::Outcome;
use super::plan::Plan;
use crate::tables::schema::TableKind;

/// Duplicate-series warnings remembered; beyond this they are not repeated.
const DUPLICATE_WARNINGS: usize = 10_000;

/// Failures by what failed, and the duplicates already warned about.
#[derive(Default)]
pub struct FailureLog {
    last: HashMap<String, String>,
    warned_duplicates: HashSet<(TableKind, usize, String)>,
}

impl FailureLog {
    pub fn failed(&mut self, what: &str, error: &str) {
        if self.last.get(what).map(String::as_str) == Some(error) {
            debug!("{what} failed again: {error}");
        } else {
            warn!("{what} failed: {error}");
            self.last.insert(what.to_string(), error.to_string());
        }
    }

    pub fn recovered(&mut self, what: &str) {
        if self.last.remove(what).is_some() {
            info!("{what} works again");
        }
    }

    /// Logs an evaluation's failed columns, mapping failures and duplicates. `purpose`
    /// prefixes every line (empty for live cycles).
    pub fn outcome(&mut self, purpose: &str, plan: &Plan, outcome: &Outcome) {
        for c in &outcome.columns {
            let what = format!(
                "{purpose}{}.{} query (column left empty)",
                c.table.name(),
                c.name
            );
            match &c.outcome {
                Some(Err(e)) => self.failed(&what, &e.to_string()),
                _ => self.recovered(&what),
            }
        }
        let mapping = format!("{purpose}node address mapping");
        match outcome.mapping_errors.first() {
            Some(e) => self.failed(&mapping, &e.to_string()),
            None => self.recovered(&mapping),
        }
        for d in &outcome.duplicates {
            let key = (d.table, d.column, d.row.clone());
            if self.warned_duplicates.len() < DUPLICATE_WARNINGS
                && self.warned_duplicates.insert(key)
            {
                warn!(
                    "{purpose}{}.{}: several series resolve to {:?}; keeping the first{}",
                    d.table.name(),
                    plan.column_name(d.table, d.column),
                    d.row,
                    d.ignored
                        .as_ref()
                        .map(|l| format!(", ignoring {l}"))
                        .unwrap_or_default()
                );
            }
        }
    }
}
