//! Rows, their CSV form, and the ring buffer each table keeps (SPEC §2).
//!
//! A row is rendered to its CSV line once, when the cycle produces it; downloads and streams
//! then only copy shared lines, so serving never formats numbers again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
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

/// A fixed-capacity buffer of the newest rows of one table, and the live subscribers that
/// receive every new row. Buffer and subscriber list share one lock, so a subscriber's
/// backlog and its first live row never overlap or leave a gap.
pub struct Table {
    kind: TableKind,
    header: Arc<str>,
    capacity: usize,
    /// Rows a subscriber may have queued before it counts as too slow.
    max_pending: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    rows: VecDeque<Row>,
    subscribers: Vec<Subscriber>,
    closed: bool,
}

/// The poller's end of a subscription.
struct Subscriber {
    tx: Sender<Row>,
    pending: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
}

/// A stream client's end: the buffered rows that passed its filter, then every new row.
pub struct Subscription {
    pub backlog: Vec<Row>,
    rx: Receiver<Row>,
    pending: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
}

/// Why a subscription yields no row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing new within the wait; the subscription is still live.
    Idle,
    /// The client fell more than the allowed backlog behind and was cut off.
    TooSlow,
    /// The agent is shutting down.
    Shutdown,
}

impl Subscription {
    /// The next live row, waiting at most `timeout`. Once the poller has cut this subscriber
    /// off, rows still queued are not delivered: the client is told at once.
    pub fn next(&self, timeout: Duration) -> Result<Row, Ended> {
        if self.overflowed.load(Ordering::SeqCst) {
            return Err(Ended::TooSlow);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(row) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                Ok(row)
            }
            Err(RecvTimeoutError::Timeout) => Err(Ended::Idle),
            Err(RecvTimeoutError::Disconnected) if self.overflowed.load(Ordering::SeqCst) => {
                Err(Ended::TooSlow)
            }
            Err(RecvTimeoutError::Disconnected) => Err(Ended::Shutdown),
        }
    }
}

impl Table {
    pub fn new(kind: TableKind, capacity: usize) -> Table {
        Table {
            kind,
            header: Arc::from(header(kind)),
            capacity,
            max_pending: capacity.max(1024),
            inner: Mutex::new(Inner {
                rows: VecDeque::with_capacity(capacity.min(4096)),
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    pub fn header(&self) -> &Arc<str> {
        &self.header
    }

    /// Appends one cycle's rows, dropping the oldest beyond capacity, and hands them to every
    /// subscriber without ever blocking: a subscriber too far behind is cut off instead.
    /// Returns how many subscribers were cut off as too slow.
    pub fn push(&self, new_rows: Vec<Row>) -> usize {
        let mut inner = self.lock();
        let mut cut_off = 0;
        inner.subscribers.retain(|sub| {
            if sub.pending.load(Ordering::SeqCst) + new_rows.len() > self.max_pending {
                sub.overflowed.store(true, Ordering::SeqCst);
                cut_off += 1;
                return false;
            }
            for row in &new_rows {
                if sub.tx.send(row.clone()).is_err() {
                    return false; // the client is gone
                }
                sub.pending.fetch_add(1, Ordering::SeqCst);
            }
            true
        });
        for row in new_rows {
            if inner.rows.len() == self.capacity {
                inner.rows.pop_front();
            }
            inner.rows.push_back(row);
        }
        cut_off
    }

    /// Registers a live subscriber; `None` once the table is closed for shutdown.
    pub fn subscribe(&self, filter: &RowFilter) -> Option<Subscription> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        let backlog = select(&inner.rows, filter);
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let overflowed = Arc::new(AtomicBool::new(false));
        inner.subscribers.push(Subscriber {
            tx,
            pending: Arc::clone(&pending),
            overflowed: Arc::clone(&overflowed),
        });
        Some(Subscription {
            backlog,
            rx,
            pending,
            overflowed,
        })
    }

    /// Ends every subscription (their clients see `Ended::Shutdown`) and refuses new ones.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subscribers.clear();
    }

    /// Live subscribers (a client that went away is noticed at the next push).
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Number of rows held.
    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffered rows passing `filter`, oldest first. Non-destructive.
    pub fn snapshot(&self, filter: &RowFilter) -> Vec<Row> {
        select(&self.lock().rows, filter)
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

/// Rows collected after `since`, then the last `size` of those.
fn select(rows: &VecDeque<Row>, filter: &RowFilter) -> Vec<Row> {
    let passing: Vec<&Row> = rows.iter().filter(|r| filter.accepts(r)).collect();
    let skip = filter
        .size
        .map_or(0, |size| passing.len().saturating_sub(size));
    passing.into_iter().skip(skip).cloned().collect()
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

    #[test]
    fn subscribers_get_every_row_once_in_order() {
        let table = Table::new(TableKind::Pods, 2);
        table.push(vec![row(1000, "a"), row(2000, "b"), row(3000, "c")]);
        let sub = table
            .subscribe(&RowFilter {
                size: None,
                since_ms: Some(2000),
            })
            .unwrap();
        let other = table.subscribe(&RowFilter::default()).unwrap();
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(&*sub.backlog[0].line, "c\n");
        assert_eq!(other.backlog.len(), 2);
        table.push(vec![row(4000, "d"), row(4000, "e")]);
        let wait = Duration::from_millis(10);
        for s in [&sub, &other] {
            assert_eq!(&*s.next(wait).unwrap().line, "d\n");
            assert_eq!(&*s.next(wait).unwrap().line, "e\n");
            assert_eq!(s.next(wait).unwrap_err(), Ended::Idle);
        }
        drop(other);
        table.push(vec![row(5000, "f")]);
        assert_eq!(table.subscribers(), 1);
        table.close();
        assert_eq!(&*sub.next(wait).unwrap().line, "f\n");
        assert_eq!(sub.next(wait).unwrap_err(), Ended::Shutdown);
        assert!(table.subscribe(&RowFilter::default()).is_none());
    }

    #[test]
    fn slow_subscriber_is_cut_off_without_blocking() {
        let table = Table::new(TableKind::Nodes, 10);
        let slow = table.subscribe(&RowFilter::default()).unwrap();
        let fast = table.subscribe(&RowFilter::default()).unwrap();
        let mut cut = 0;
        for i in 0..2000 {
            cut += table.push(vec![row(i, "x")]);
            fast.next(Duration::ZERO).unwrap();
        }
        assert_eq!(cut, 1);
        assert_eq!(table.subscribers(), 1);
        // Cut off at the 1025th pending row, and told so before any queued row.
        assert_eq!(slow.next(Duration::ZERO).unwrap_err(), Ended::TooSlow);
        assert_eq!(fast.next(Duration::ZERO).unwrap_err(), Ended::Idle);
    }
}
