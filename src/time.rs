//! Time inside the agent: Unix milliseconds, the RFC 3339 text of the tables and the API, and
//! the grid every observation time lies on (docs/design.md, "Time grid").

use std::time::{Duration, SystemTime};

/// Milliseconds since the Unix epoch: every time inside the agent.
pub type Millis = i64;

/// `t` in Unix milliseconds (negative before the epoch, which never happens in practice).
pub fn unix_ms(t: SystemTime) -> Millis {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as Millis,
        Err(e) => -(e.duration().as_millis() as Millis),
    }
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_ms() -> Millis {
    unix_ms(SystemTime::now())
}

/// RFC 3339 UTC with milliseconds: `2026-01-31T12:00:05.123Z`.
pub fn format_time(ms: Millis) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A client's time: RFC 3339 with `Z` or an offset (`2026-01-31T13:00:05.5+01:00`), or Unix
/// seconds (`1769860805.5`). Sub-millisecond digits are dropped.
pub fn parse_time(text: &str) -> Option<Millis> {
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs.abs() < 1e13).then(|| (secs * 1000.0).floor() as Millis);
    }
    // jiff insists on an offset, so a local time without one is refused, not guessed.
    let t: jiff::Timestamp = text.parse().ok()?;
    Some(t.as_millisecond())
}

/// Evaluation times `start + k·step` for every k with `start + k·step <= end` (history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Millis,
    pub end: Millis,
    pub step: Millis,
}

impl Span {
    /// How many evaluation times the span holds (none when `end` is before `start`).
    pub fn steps(&self) -> i64 {
        if self.end < self.start {
            return 0;
        }
        (self.end - self.start) / self.step + 1
    }
}

/// A stretch of time from `start` to `end` (energy, quality).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

/// The live schedule's grid: multiples of `UPDATE_INTERVAL` since the Unix epoch. Captures
/// from a restarted agent, from agents of two namespaces and history all line up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    interval: Millis,
}

impl Grid {
    pub fn new(interval: Duration) -> Grid {
        Grid::every((interval.as_millis() as Millis).max(1))
    }

    /// A grid `interval_ms` apart (at least 1 ms).
    pub fn every(interval_ms: Millis) -> Grid {
        Grid {
            interval: interval_ms.max(1),
        }
    }

    pub fn interval(&self) -> Millis {
        self.interval
    }

    /// The latest grid point at or before `t`.
    pub fn floor(&self, t: Millis) -> Millis {
        t.div_euclid(self.interval) * self.interval
    }

    /// The first grid point at or after `t`.
    pub fn ceil(&self, t: Millis) -> Millis {
        -(-t).div_euclid(self.interval) * self.interval
    }

    /// The grid point after `current` that is still ahead of `now`, and how many grid points
    /// were skipped to get there (a cycle that overran).
    pub fn next_tick(&self, current: Millis, now: Millis) -> (Millis, u64) {
        let following = current + self.interval;
        if following > now {
            return (following, 0);
        }
        let upcoming = self.floor(now) + self.interval;
        (upcoming, ((upcoming - following) / self.interval) as u64)
    }

    /// The grid points a stream resumed `since` a time missed: those after `since` and before
    /// the oldest buffered cycle, or before the cycle still to come when the buffer is empty.
    pub fn missed(
        &self,
        since: Millis,
        oldest_buffered: Option<Millis>,
        now: Millis,
    ) -> Option<Span> {
        let start = self.floor(since) + self.interval;
        let end = match oldest_buffered {
            Some(oldest) => oldest - self.interval,
            None => self.floor(now) - self.interval,
        };
        (end >= start).then_some(Span {
            start,
            end,
            step: self.interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_with_milliseconds() {
        assert_eq!(format_time(1_769_860_805_123), "2026-01-31T12:00:05.123Z");
        assert_eq!(format_time(1_769_860_805_000), "2026-01-31T12:00:05.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_769_860_805_123_999);
        assert_eq!(unix_ms(t), 1_769_860_805_123);
    }

    #[test]
    fn client_times_in_every_accepted_form() {
        let base = 1_769_860_805_000; // 2026-01-31T12:00:05Z
        assert_eq!(parse_time("2026-01-31T12:00:05Z"), Some(base));
        assert_eq!(parse_time("2026-01-31T12:00:05.123Z"), Some(base + 123));
        assert_eq!(parse_time("2026-01-31T12:00:05.1Z"), Some(base + 100));
        assert_eq!(
            parse_time("2026-01-31T12:00:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(parse_time("2026-01-31T13:00:05+01:00"), Some(base));
        assert_eq!(parse_time("2026-01-31T07:30:05-04:30"), Some(base));
        assert_eq!(parse_time("2026-01-31t12:00:05z"), Some(base));
        assert_eq!(parse_time("2026-01-31 12:00:05Z"), Some(base));
        assert_eq!(parse_time(&format_time(base + 7)), Some(base + 7));
        assert_eq!(parse_time("1769860805.5"), Some(base + 500));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-31T12:00:05",
            "2026-01-31T25:00:05Z",
            "2026-01-31T12:00:05.Z",
            "2026-01-31T12:00:05+1:00",
            "yesterday",
            "NaN",
            "inf",
            "",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn grid_arithmetic() {
        let grid = Grid::every(15_000);
        assert_eq!(grid.floor(1_700_000_012_345), 1_700_000_010_000);
        assert_eq!(grid.floor(30_000), 30_000);
        assert_eq!(grid.ceil(30_000), 30_000);
        assert_eq!(grid.ceil(30_001), 45_000);
        assert_eq!(grid.ceil(-1), 0);
        // On time: the next grid point.
        assert_eq!(grid.next_tick(30_000, 31_000), (45_000, 0));
        // Overran past two grid points: skip them.
        assert_eq!(grid.next_tick(30_000, 61_000), (75_000, 2));
        assert_eq!(grid.next_tick(30_000, 45_000), (60_000, 1));
    }

    #[test]
    fn missed_cycles_lie_between_since_and_the_buffer() {
        let grid = Grid::every(15_000);
        // Last received cycle observed at 30 s, collected at 30.2 s; the buffer starts at 90 s.
        let span = |start, end| {
            Some(Span {
                start,
                end,
                step: 15_000,
            })
        };
        assert_eq!(
            grid.missed(30_200, Some(90_000), 100_000),
            span(45_000, 75_000)
        );
        // Nothing missed: the next cycle is in the buffer.
        assert_eq!(grid.missed(30_200, Some(45_000), 100_000), None);
        // Empty buffer: up to the grid point before the latest (its cycle is still to come).
        assert_eq!(grid.missed(30_200, None, 61_000), span(45_000, 45_000));
    }
}
