//! Rows, their CSV form, and the ring buffer each table keeps (SPEC §2).
//!
//! A row is rendered to its CSV line once, when the cycle produces it; downloads and streams
//! then only copy shared lines, so serving never formats numbers again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::queries::TableKind;

/// Columns every node row starts with; value columns follow in query order.
pub const NODE_KEY_COLUMNS: &[&str] = &["instance", "collection_time", "observation_time"];
/// Columns every pod row starts with.
pub const POD_KEY_COLUMNS: &[&str] = &[
    "instance",
    "collection_time",
    "observation_time",
    "name",
    "namespace",
];

/// The header line of a table (with its trailing newline).
pub fn header(kind: TableKind) -> String {
    let keys = match kind {
        TableKind::Nodes => NODE_KEY_COLUMNS,
        TableKind::Pods => POD_KEY_COLUMNS,
    };
    let names: Vec<&str> = keys
        .iter()
        .copied()
        .chain(kind.defaults().iter().map(|(c, _)| *c))
        .collect();
    format!("{}\n", names.join(","))
}

/// A finished row: when its cycle was collected, and its CSV line ending in `\n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub collection_ms: i64,
    pub line: Arc<str>,
}

/// Milliseconds since the Unix epoch (negative before it, which never happens in practice).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// RFC 3339 UTC with milliseconds: `2026-01-31T12:00:05.123Z`.
pub fn format_time(t: SystemTime) -> String {
    // Truncate to whole milliseconds first so the text and `unix_ms` agree.
    let ms = unix_ms(t).max(0) as u64;
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Plain decimal, shortest form that round-trips; empty for a missing, NaN or infinite value.
pub fn format_value(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            if x == 0.0 {
                "0".to_string() // no "-0"
            } else {
                format!("{x}")
            }
        }
        _ => String::new(),
    }
}

/// Renders one CSV record (RFC 4180 quoting where needed) ending in `\n`.
pub fn csv_line(fields: &[String]) -> Arc<str> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(128));
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(fields);
    let bytes = writer.into_inner().unwrap_or_default();
    Arc::from(String::from_utf8_lossy(&bytes).as_ref())
}

/// Which buffered rows a client asked for: those collected after `since`, then the last `size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFilter {
    pub size: Option<usize>,
    pub since_ms: Option<i64>,
}

impl RowFilter {
    pub fn accepts(&self, row: &Row) -> bool {
        self.since_ms.is_none_or(|since| row.collection_ms > since)
    }
}

/// A fixed-capacity buffer of the newest rows of one table.
pub struct Table {
    kind: TableKind,
    header: Arc<str>,
    capacity: usize,
    rows: Mutex<VecDeque<Row>>,
}

impl Table {
    pub fn new(kind: TableKind, capacity: usize) -> Table {
        Table {
            kind,
            header: Arc::from(header(kind)),
            capacity,
            rows: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
        }
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    pub fn header(&self) -> &Arc<str> {
        &self.header
    }

    /// Appends one cycle's rows, dropping the oldest beyond capacity.
    pub fn push(&self, new_rows: Vec<Row>) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        for row in new_rows {
            if rows.len() == self.capacity {
                rows.pop_front();
            }
            rows.push_back(row);
        }
    }

    /// Number of rows held.
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffered rows passing `filter`, oldest first. Non-destructive.
    pub fn snapshot(&self, filter: &RowFilter) -> Vec<Row> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let passing: Vec<&Row> = rows.iter().filter(|r| filter.accepts(r)).collect();
        let skip = filter
            .size
            .map_or(0, |size| passing.len().saturating_sub(size));
        passing.into_iter().skip(skip).cloned().collect()
    }

    /// Header plus the rows passing `filter`, as one CSV document.
    pub fn csv(&self, filter: &RowFilter) -> String {
        let rows = self.snapshot(filter);
        let mut out = String::with_capacity(
            self.header.len() + rows.iter().map(|r| r.line.len()).sum::<usize>(),
        );
        out.push_str(&self.header);
        for row in &rows {
            out.push_str(&row.line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ms: i64, text: &str) -> Row {
        Row {
            collection_ms: ms,
            line: Arc::from(format!("{text}\n")),
        }
    }

    #[test]
    fn headers_are_the_seed_columns() {
        assert_eq!(
            header(TableKind::Nodes),
            "instance,collection_time,observation_time,cpu_usage,memory_usage,network_usage,wattage,num_processes,kepler_wattage,scaph_wattage,wattage_auxilary\n"
        );
        assert_eq!(
            header(TableKind::Pods),
            "instance,collection_time,observation_time,name,namespace,cpu_usage,memory_usage,network_usage,wattage_kepler,wattage_scaph\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(format_value(Some(45.0)), "45");
        assert_eq!(format_value(Some(0.5625)), "0.5625");
        assert_eq!(format_value(Some(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(format_value(Some(-0.0)), "0");
        assert_eq!(format_value(Some(0.0)), "0");
        assert_eq!(format_value(Some(1e21)), "1000000000000000000000");
        assert_eq!(format_value(Some(1.5e-7)), "0.00000015");
        assert_eq!(format_value(Some(f64::NAN)), "");
        assert_eq!(format_value(Some(f64::INFINITY)), "");
        assert_eq!(format_value(Some(f64::NEG_INFINITY)), "");
        assert_eq!(format_value(None), "");
        for x in [0.1, 123.456, 1e-12, 98765.4321e10] {
            assert_eq!(format_value(Some(x)).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_769_860_805_123_999);
        assert_eq!(format_time(t), "2026-01-31T12:00:05.123Z");
        assert_eq!(unix_ms(t), 1_769_860_805_123);
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_769_860_805);
        assert_eq!(format_time(whole), "2026-01-31T12:00:05.000Z");
    }

    #[test]
    fn csv_quoting() {
        let fields = [
            "a".to_string(),
            String::new(),
            "b,c".to_string(),
            "d\"e".to_string(),
        ];
        assert_eq!(&*csv_line(&fields), "a,,\"b,c\",\"d\"\"e\"\n");
        assert_eq!(&*csv_line(&[String::new(), String::new()]), ",\n");
    }

    #[test]
    fn ring_buffer_and_filters() {
        let table = Table::new(TableKind::Nodes, 3);
        assert_eq!(table.csv(&RowFilter::default()), header(TableKind::Nodes));
        table.push(vec![row(1000, "a"), row(1000, "b")]);
        table.push(vec![row(2000, "c"), row(2000, "d")]);
        let all = table.snapshot(&RowFilter::default());
        let lines: Vec<&str> = all.iter().map(|r| &*r.line).collect();
        assert_eq!(lines, ["b\n", "c\n", "d\n"]);
        let last = table.snapshot(&RowFilter {
            size: Some(1),
            since_ms: None,
        });
        assert_eq!(&*last[0].line, "d\n");
        let none = table.snapshot(&RowFilter {
            size: Some(0),
            since_ms: None,
        });
        assert!(none.is_empty());
        let since = table.snapshot(&RowFilter {
            size: None,
            since_ms: Some(1000),
        });
        assert_eq!(since.len(), 2);
        let both = table.snapshot(&RowFilter {
            size: Some(5),
            since_ms: Some(1999),
        });
        assert_eq!(both.len(), 2);
        // Snapshots are non-destructive.
        assert_eq!(table.len(), 3);
        assert!(table.csv(&RowFilter::default()).ends_with("b\nc\nd\n"));
    }
}
