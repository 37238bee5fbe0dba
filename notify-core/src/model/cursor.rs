//! Positions in the notification order (cursors) and the clock that stamps them.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// A position in the notification order: a microsecond stamp plus the id as tie-break.
///
/// Clients see it as an opaque string (`cursor` field, `since`, `before`, SSE `id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Strictly increasing stamp within one writer (microseconds since the epoch).
    pub seq: i64,
    /// The notification id (empty for a time-only position).
    pub id: String,
}

impl Cursor {
    /// The position after everything created at or before `time`, at the millisecond
    /// precision `created_at` is shown with: `since=<a notification's created_at>` resumes
    /// after that notification's millisecond.
    pub fn after_time(time: DateTime<Utc>) -> Self {
        Cursor {
            seq: time.timestamp_millis() * 1000 + 999,
            // Sorts after every id (ids are `[0-9a-z_]`).
            id: "~".into(),
        }
    }

    /// Parses the opaque form; the error names `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self> {
        let bad = || Error::invalid(field, "not a valid cursor");
        let (seq, id) = s.split_once('-').ok_or_else(bad)?;
        if seq.is_empty() || seq.len() > 16 || id.len() > 64 {
            return Err(bad());
        }
        let seq = i64::from_str_radix(seq, 16).map_err(|_| bad())?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        Ok(Cursor {
            seq,
            id: id.to_string(),
        })
    }

    /// Parses a cursor, or an RFC 3339 time (`since` accepts both).
    pub fn parse_or_time(s: &str, field: &str) -> Result<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Cursor::after_time(t.with_timezone(&Utc)));
        }
        Cursor::parse(s, field).map_err(|_| Error::invalid(field, "not a cursor or RFC 3339 time"))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.seq, self.id)
    }
}

/// Hands out strictly increasing microsecond stamps, close to the wall clock.
#[derive(Debug, Default)]
pub struct SeqClock {
    last: AtomicI64,
}

impl SeqClock {
    /// A new clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next stamp: now in microseconds, or one more than the last stamp if that is later.
    pub fn next(&self) -> i64 {
        let now = Utc::now().timestamp_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_orders() {
        let c = Cursor {
            seq: 1_700_000_000_000_123,
            id: "n_abc".into(),
        };
        assert_eq!(Cursor::parse(&c.to_string(), "since").unwrap(), c);
        assert!(Cursor::parse("zz", "since").is_err());
        assert!(Cursor::parse("10-bad id", "since").is_err());
        let t = Cursor::parse_or_time("2026-11-25T10:00:00.123Z", "since").unwrap();
        let at = Cursor {
            seq: 1_795_600_800_123_456,
            id: "n_x".into(),
        };
        assert!(
            t > at,
            "a time cursor is after everything in that millisecond"
        );
    }

    #[test]
    fn seq_clock_is_strictly_increasing() {
        let c = SeqClock::new();
        let mut last = 0;
        for _ in 0..10_000 {
            let n = c.next();
            assert!(n > last);
            last = n;
        }
    }
}
