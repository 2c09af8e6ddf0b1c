//! Finished rows as CSV lines, in the column order of `schema`.
//!
//! Live rows, history rows and energy rows all come through here, so a history row is the
//! live row of the same observation time, byte for byte, except for `collection_time`.

use crate::cycle::fold::RowValues;
use crate::format::{CsvLines, Millis, format_seconds, format_time, format_value};
use crate::schema::TableKind;

/// The times a measurement row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the queries were issued (live), or the evaluation time itself (history).
    pub collection: Millis,
    /// The evaluation time of every query of the row's cycle.
    pub observation: Millis,
}

/// The CSV lines of one step of a measurement table (`/nodes`, `/pods`, streams).
pub fn measurement_lines(
    kind: TableKind,
    rows: &[RowValues],
    stamp: Stamp,
    namespace: &str,
) -> Vec<String> {
    let collection = format_time(stamp.collection);
    let observation = format_time(stamp.observation);
    let mut csv = CsvLines::new();
    rows.iter()
        .map(|row| {
            let mut fields: Vec<String> = match kind {
                TableKind::Nodes => vec![row.name.clone(), collection.clone(), observation.clone()],
                TableKind::Pods => vec![
                    row.node.clone(),
                    collection.clone(),
                    observation.clone(),
                    row.name.clone(),
                    namespace.to_string(),
                ],
            };
            fields.extend(row.values.iter().map(|v| format_value(*v)));
            csv.push(&fields)
        })
        .collect()
}

/// The CSV lines of an energy table for the span `start..end`.
pub fn energy_lines(
    kind: TableKind,
    rows: &[RowValues],
    start: Millis,
    end: Millis,
    namespace: &str,
) -> Vec<String> {
    let span = [
        format_time(start),
        format_time(end),
        format_seconds(end - start),
    ];
    let mut csv = CsvLines::new();
    rows.iter()
        .map(|row| {
            let mut fields: Vec<String> = match kind {
                TableKind::Nodes => vec![row.name.clone()],
                TableKind::Pods => vec![row.node.clone(), row.name.clone(), namespace.to_string()],
            };
            fields.extend(span.iter().cloned());
            fields.extend(row.values.iter().map(|v| format_value(*v)));
            csv.push(&fields)
        })
        .collect()
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
        let stamp = Stamp {
            collection: 1_769_860_805_123,
            observation: 1_769_860_800_000,
        };
        let nodes = [row("w1", "", &[Some(0.5), None, Some(f64::NAN), Some(0.0)])];
        assert_eq!(
            measurement_lines(TableKind::Nodes, &nodes, stamp, "exp"),
            ["w1,2026-01-31T12:00:05.123Z,2026-01-31T12:00:00.000Z,0.5,,,0\n"]
        );
        let pods = [row("db-0", "w2", &[Some(72.74999999999234)])];
        assert_eq!(
            measurement_lines(TableKind::Pods, &pods, stamp, "exp"),
            ["w2,2026-01-31T12:00:05.123Z,2026-01-31T12:00:00.000Z,db-0,exp,72.75\n"]
        );
    }

    #[test]
    fn energy_rows() {
        let pods = [row("db-0", "", &[Some(1.5), None, Some(3600.0)])];
        assert_eq!(
            energy_lines(TableKind::Pods, &pods, 0, 90_500, "exp"),
            [",db-0,exp,1970-01-01T00:00:00.000Z,1970-01-01T00:01:30.500Z,90.5,1.5,,3600\n"]
        );
    }
}
