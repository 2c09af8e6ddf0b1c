//! The buffer each table keeps (whole cycles, newest last) and the live subscribers that get
//! every new row.
//!
//! A row is rendered to its CSV line once, when its cycle produces it; downloads and streams
//! then only copy shared lines, so serving never formats numbers again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use log::warn;

use crate::tables::schema::{Measure, TableKind, header, header_with};
use crate::time::Millis;

/// A finished row: when its cycle was observed, its CSV line ending in `\n`, and its data
/// problems once computed (`problems=1`; shared by every copy of the row).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub observation_ms: Millis,
    pub line: Arc<str>,
    pub problems: Arc<OnceLock<Arc<str>>>,
}

impl Row {
    pub fn new(observation_ms: Millis, line: Arc<str>) -> Row {
        Row {
            observation_ms,
            line,
            problems: Arc::default(),
        }
    }

    /// The line with its `problems` field appended (empty until computed).
    pub fn with_problems(&self) -> String {
        self.with_problems_or("")
    }

    /// The line with its `problems` field appended, `missing` when not computed.
    pub fn with_problems_or(&self, missing: &str) -> String {
        let problems = self.problems.get().map_or(missing, |p| &**p);
        let line = self.line.strip_suffix('\n').unwrap_or(&self.line);
        format!("{line},{problems}\n")
    }
}

/// Which buffered rows a client asked for: those after `since`, then the last `size`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowFilter {
    pub size: Option<usize>,
    pub since_ms: Option<Millis>,
}

impl RowFilter {
    /// A row is after `since` when it was observed after it (and so also collected after it:
    /// a cycle is collected once its grid point has passed). A resuming client passes the
    /// `collection_time` of its last row; a restarted agent evaluates that row's grid point
    /// again, later, and the client must not get that cycle twice.
    pub fn accepts(&self, row: &Row) -> bool {
        self.since_ms.is_none_or(|since| row.observation_ms > since)
    }
}

/// The newest rows of one table, whole cycles only, and the live subscribers that receive
/// every new row. Buffer and subscriber list share one lock, so a subscriber's backlog and its
/// first live row never overlap or leave a gap.
pub struct Buffer {
    kind: TableKind,
    header: Arc<str>,
    capacity: usize,
    /// Rows a subscriber may have queued before it counts as too slow.
    max_pending: usize,
    oversize_warned: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Whole cycles, oldest first; the rows of a cycle share their times.
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
    pub kind: TableKind,
    pub backlog: Vec<Row>,
    /// The observation time of the oldest buffered cycle when the subscription started.
    pub oldest_buffered: Option<Millis>,
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

impl Buffer {
    /// A table keeping at least the last `capacity` rows (more when a cycle is larger).
    pub fn new(kind: TableKind, capacity: usize) -> Buffer {
        Buffer {
            kind,
            header: Arc::from(header(kind, Measure::Live)),
            capacity,
            max_pending: capacity.max(1024),
            oversize_warned: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                rows: VecDeque::with_capacity(capacity.min(4096)),
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    pub fn header(&self) -> &Arc<str> {
        &self.header
    }

    /// Appends one cycle's rows, drops the oldest whole cycles beyond capacity (the newest is
    /// always kept whole), and hands the rows to every subscriber without ever blocking: a
    /// subscriber too far behind is cut off instead. Returns how many were cut off.
    pub fn push(&self, cycle: Vec<Row>) -> usize {
        if cycle.is_empty() {
            return 0;
        }
        self.warn_if_oversize(cycle.len());
        let mut inner = self.lock();
        let cut_off = inner.deliver(&cycle, self.max_pending.max(2 * cycle.len()));
        inner.rows.extend(cycle);
        inner.drop_old_cycles(self.capacity);
        cut_off
    }

    fn warn_if_oversize(&self, rows: usize) {
        if rows > self.capacity && !self.oversize_warned.swap(true, Ordering::Relaxed) {
            warn!(
                "a cycle produced {rows} {} rows, more than BUFFER_SIZE={}: the buffer keeps \
                 the newest cycle whole; set BUFFER_SIZE to at least {} to keep 10 cycles",
                self.kind.row_name(),
                self.capacity,
                rows * 10
            );
        }
    }

    /// Registers a live subscriber; `None` once the table is closed for shutdown.
    pub fn subscribe(&self, filter: &RowFilter) -> Option<Subscription> {
        let mut inner = self.lock();
        if inner.closed {
            return None;
        }
        let backlog = select(&inner.rows, filter);
        let oldest_buffered = inner.rows.front().map(|row| row.observation_ms);
        let (tx, rx) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let overflowed = Arc::new(AtomicBool::new(false));
        inner.subscribers.push(Subscriber {
            tx,
            pending: Arc::clone(&pending),
            overflowed: Arc::clone(&overflowed),
        });
        Some(Subscription {
            kind: self.kind,
            backlog,
            oldest_buffered,
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

    /// Rows of the newest buffered cycle (0 when empty): the size of one step of history.
    pub fn newest_cycle_len(&self) -> usize {
        let inner = self.lock();
        let Some(newest) = inner.rows.back().map(|row| row.observation_ms) else {
            return 0;
        };
        inner
            .rows
            .iter()
            .rev()
            .take_while(|row| row.observation_ms == newest)
            .count()
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

    /// The rows of the newest buffered cycle.
    pub fn newest_cycle(&self) -> Vec<Row> {
        let inner = self.lock();
        let Some(newest) = inner.rows.back().map(|r| r.observation_ms) else {
            return Vec::new();
        };
        let start = inner
            .rows
            .iter()
            .rposition(|r| r.observation_ms != newest)
            .map_or(0, |i| i + 1);
        inner.rows.iter().skip(start).cloned().collect()
    }

    /// The rows of the buffered cycle observed at `at` (none when it is not buffered).
    pub fn cycle_at(&self, at: Millis) -> Vec<Row> {
        let inner = self.lock();
        inner
            .rows
            .iter()
            .filter(|r| r.observation_ms == at)
            .cloned()
            .collect()
    }

    /// `rows` as one CSV document: the header (unless not `with_header`), and the rows with
    /// their `problems` field when `with_problems`.
    pub fn csv_of(&self, rows: &[Row], with_header: bool, with_problems: bool) -> String {
        let mut out = String::with_capacity(
            self.header.len() + rows.iter().map(|r| r.line.len() + 1).sum::<usize>(),
        );
        if with_header {
            out.push_str(&header_with(self.kind, Measure::Live, with_problems));
        }
        for row in rows {
            if with_problems {
                out.push_str(&row.with_problems());
            } else {
                out.push_str(&row.line);
            }
        }
        out
    }

    /// The header (unless not `with_header`) and the rows passing `filter`, as one CSV
    /// document.
    pub fn csv(&self, filter: &RowFilter, with_header: bool) -> String {
        self.csv_of(&self.snapshot(filter), with_header, false)
    }
}

impl Inner {
    /// Queues `cycle` for every subscriber with room for it; cuts off the others.
    fn deliver(&mut self, cycle: &[Row], max_pending: usize) -> usize {
        let mut cut_off = 0;
        self.subscribers.retain(|sub| {
            if sub.pending.load(Ordering::SeqCst) + cycle.len() > max_pending {
                sub.overflowed.store(true, Ordering::SeqCst);
                cut_off += 1;
                return false;
            }
            for row in cycle {
                if sub.tx.send(row.clone()).is_err() {
                    return false; // the client is gone
                }
                sub.pending.fetch_add(1, Ordering::SeqCst);
            }
            true
        });
        cut_off
    }

    /// Drops the oldest cycles while more than `capacity` rows are held, never the newest.
    fn drop_old_cycles(&mut self, capacity: usize) {
        let Some(newest) = self.rows.back().map(|row| row.observation_ms) else {
            return;
        };
        while self.rows.len() > capacity {
            let Some(oldest) = self.rows.front().map(|row| row.observation_ms) else {
                return;
            };
            if oldest == newest {
                return;
            }
            while self
                .rows
                .front()
                .is_some_and(|row| row.observation_ms == oldest)
            {
                self.rows.pop_front();
            }
        }
    }
}

/// Rows after `since`, then the last `size` of those.
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

    /// A row collected at `collected_ms`, in the cycle of the second before it.
    fn row(collected_ms: Millis, text: &str) -> Row {
        Row::new(
            collected_ms - collected_ms % 1000,
            Arc::from(format!("{text}\n")),
        )
    }

    fn lines(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| &*r.line).collect()
    }

    #[test]
    fn buffer_keeps_whole_cycles_and_filters() {
        let table = Buffer::new(TableKind::Nodes, 3);
        assert_eq!(table.csv(&RowFilter::default(), true), &**table.header());
        assert_eq!(table.csv(&RowFilter::default(), false), "");
        table.push(vec![row(1000, "a"), row(1000, "b")]);
        table.push(vec![row(2000, "c"), row(2000, "d")]);
        // Four rows exceed the capacity of three: the oldest cycle goes as a whole.
        let all = table.snapshot(&RowFilter::default());
        assert_eq!(lines(&all), ["c\n", "d\n"]);
        table.push(vec![row(3000, "e")]);
        assert_eq!(table.len(), 3);
        let last = table.snapshot(&RowFilter {
            size: Some(1),
            since_ms: None,
        });
        assert_eq!(lines(&last), ["e\n"]);
        let none = table.snapshot(&RowFilter {
            size: Some(0),
            since_ms: None,
        });
        assert!(none.is_empty());
        let since = table.snapshot(&RowFilter {
            size: None,
            since_ms: Some(2000),
        });
        assert_eq!(lines(&since), ["e\n"]);
        let both = table.snapshot(&RowFilter {
            size: Some(5),
            since_ms: Some(1999),
        });
        assert_eq!(both.len(), 3);
        // Snapshots are non-destructive.
        assert_eq!(table.len(), 3);
        assert!(
            table
                .csv(&RowFilter::default(), true)
                .ends_with("c\nd\ne\n")
        );
    }

    #[test]
    fn since_excludes_a_grid_point_observed_before_it() {
        // A restarted agent evaluated the grid point 3000 again and collected it at 3500; the
        // client's last row, from the agent before, was collected at 3200.
        let table = Buffer::new(TableKind::Nodes, 10);
        table.push(vec![row(3500, "again")]);
        table.push(vec![row(4100, "new")]);
        let after = |since| {
            table.snapshot(&RowFilter {
                size: None,
                since_ms: Some(since),
            })
        };
        assert_eq!(lines(&after(3200)), ["new\n"]);
        assert_eq!(lines(&after(2999)), ["again\n", "new\n"]);
    }

    #[test]
    fn a_cycle_larger_than_the_buffer_is_kept_whole() {
        let table = Buffer::new(TableKind::Pods, 2);
        table.push(vec![row(1000, "a")]);
        table.push(vec![row(2000, "b"), row(2000, "c"), row(2000, "d")]);
        assert_eq!(
            lines(&table.snapshot(&RowFilter::default())),
            ["b\n", "c\n", "d\n"]
        );
        assert_eq!(table.newest_cycle_len(), 3);
        table.push(vec![row(3000, "e")]);
        assert_eq!(lines(&table.snapshot(&RowFilter::default())), ["e\n"]);
        let sub = table.subscribe(&RowFilter::default()).unwrap();
        assert_eq!(sub.oldest_buffered, Some(3000));
        assert_eq!(table.newest_cycle_len(), 1);
    }

    #[test]
    fn subscribers_get_every_row_once_in_order() {
        let table = Buffer::new(TableKind::Pods, 10);
        table.push(vec![row(1000, "a")]);
        table.push(vec![row(2000, "b")]);
        table.push(vec![row(3000, "c")]);
        let sub = table
            .subscribe(&RowFilter {
                size: None,
                since_ms: Some(2000),
            })
            .unwrap();
        let other = table.subscribe(&RowFilter::default()).unwrap();
        assert_eq!(lines(&sub.backlog), ["c\n"]);
        assert_eq!(other.backlog.len(), 3);
        assert_eq!(other.oldest_buffered, Some(1000));
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
        let table = Buffer::new(TableKind::Nodes, 10);
        let slow = table.subscribe(&RowFilter::default()).unwrap();
        let fast = table.subscribe(&RowFilter::default()).unwrap();
        let mut cut = 0;
        for i in 0..2000 {
            cut += table.push(vec![row(i * 1000, "x")]);
            fast.next(Duration::ZERO).unwrap();
        }
        assert_eq!(cut, 1);
        assert_eq!(table.subscribers(), 1);
        // Cut off at the 1025th pending row, and told so before any queued row.
        assert_eq!(slow.next(Duration::ZERO).unwrap_err(), Ended::TooSlow);
        assert_eq!(fast.next(Duration::ZERO).unwrap_err(), Ended::Idle);
    }

    #[test]
    fn cycles_larger_than_the_pending_limit_do_not_cut_off_readers() {
        let table = Buffer::new(TableKind::Pods, 10);
        let reader = table.subscribe(&RowFilter::default()).unwrap();
        let big: Vec<Row> = (0..3000).map(|_| row(1000, "p")).collect();
        assert_eq!(table.push(big.clone()), 0);
        while reader.next(Duration::ZERO).is_ok() {}
        assert_eq!(table.push(big), 0);
        assert_eq!(table.subscribers(), 1);
    }
}
