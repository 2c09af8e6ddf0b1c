//! Finished rows as CSV lines, in the column order of `schema`.
//!
//! Live rows, history rows and energy rows all come through here, so a history row is the
//! live row of the same observation time, byte for byte, except for `collection_time`.

use super::fold::RowValues;
use crate::tables::format::{CsvLines, format_seconds, format_value};
use crate::tables::schema::{Key, Measure, TableKind, key_columns};
use crate::time::{Millis, format_time};

/// Which table lines to write, and the times they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A live cycle: its queries were issued at `collection`.
    Live { collection: Millis },
    /// History: `collection_time` is the evaluation time itself.
    History,
    /// An energy table for the window from `start` to the evaluation time.
    Energy { start: Millis },
}

/// The CSV lines of one step's rows of `kind`, evaluated at `at`.
pub fn lines(
    kind: TableKind,
    rows: &[RowValues],
    form: Form,
    at: Millis,
    namespace: &str,
) -> Vec<String> {
    lines_with(kind, rows, form, at, namespace, None)
}

/// The same lines, each ending in the matching field of `problems` when given (the
/// `problems` column).
pub fn lines_with(
    kind: TableKind,
    rows: &[RowValues],
    form: Form,
    at: Millis,
    namespace: &str,
    problems: Option<&[String]>,
) -> Vec<String> {
    let measure = match form {
        Form::Live { .. } | Form::History => Measure::Live,
        Form::Energy { .. } => Measure::Energy,
    };
    let times = Times::new(form, at);
    let keys = key_columns(kind, measure);
    let mut csv = CsvLines::new();
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let mut fields: Vec<&str> = keys
                .iter()
                .map(|key| times.key(*key, kind, row, namespace))
                .collect();
            let values: Vec<String> = row.values.iter().map(|v| format_value(*v)).collect();
            fields.extend(values.iter().map(String::as_str));
            if let Some(problems) = problems {
                fields.push(problems.get(i).map_or("", String::as_str));
            }
            csv.push(&fields)
        })
        .collect()
}

/// The time fields of one step, formatted once for all its rows.
struct Times {
    collection: String,
    observation: String,
    start: String,
    seconds: String,
}

impl Times {
    fn new(form: Form, at: Millis) -> Times {
        let (collection, start) = match form {
            Form::Live { collection } => (collection, at),
            Form::History => (at, at),
            Form::Energy { start } => (at, start),
        };
        Times {
            collection: format_time(collection),
            observation: format_time(at),
            start: format_time(start),
            seconds: format_seconds(at - start),
        }
    }

    fn key<'a>(&'a self, key: Key, kind: TableKind, row: &'a RowValues, ns: &'a str) -> &'a str {
        match key {
            Key::Instance => match kind {
                TableKind::Nodes => &row.name,
                TableKind::Pods => &row.node,
            },
            Key::Name => &row.name,
            Key::Namespace => ns,
            Key::CollectionTime => &self.collection,
            Key::ObservationTime | Key::End => &self.observation,
            Key::Start => &self.start,
            Key::Seconds => &self.seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, node: &str, values: &[Option<f64>]) -> RowValues {
        RowValues {
            name: name.into(),
            node: node.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn measurement_rows() {
        let live = Form::Live {
            collection: 1_769_860_805_123,
        };
        let at = 1_769_860_800_000;
        let nodes = [row("w1", "", &[Some(0.5), None, Some(f64::NAN), Some(0.0)])];
        assert_eq!(
            lines(TableKind::Nodes, &nodes, live, at, "exp"),
            ["w1,2026-01-31T12:00:05.123Z,2026-01-31T12:00:00.000Z,0.5,,,0\n"]
        );
        let pods = [row("db-0", "w2", &[Some(72.74999999999234)])];
        assert_eq!(
            lines(TableKind::Pods, &pods, live, at, "exp"),
            ["w2,2026-01-31T12:00:05.123Z,2026-01-31T12:00:00.000Z,db-0,exp,72.75\n"]
        );
        assert_eq!(
            lines(TableKind::Pods, &pods, Form::History, at, "exp"),
            ["w2,2026-01-31T12:00:00.000Z,2026-01-31T12:00:00.000Z,db-0,exp,72.75\n"]
        );
    }

    #[test]
    fn energy_rows() {
        let pods = [row("db-0", "", &[Some(1.5), None, Some(3600.0)])];
        assert_eq!(
            lines(
                TableKind::Pods,
                &pods,
                Form::Energy { start: 0 },
                90_500,
                "exp"
            ),
            [",db-0,exp,1970-01-01T00:00:00.000Z,1970-01-01T00:01:30.500Z,90.5,1.5,,3600\n"]
        );
    }
}
