//! Local clock arithmetic in the user's zone: times of day, quiet hours, the next digest.
//!
//! Daylight-saving gaps and folds are resolved towards the earlier valid instant, and a
//! local time that does not exist that day (spring forward) moves to the first instant
//! after the gap, so a quiet period or a digest never disappears.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::preferences::QuietHours;

/// A wall-clock time `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    /// `hour:minute`, if valid.
    pub fn new(hour: u32, minute: u32) -> Option<Self> {
        (hour < 24 && minute < 60).then(|| TimeOfDay {
            minutes: (hour * 60 + minute) as u16,
        })
    }

    /// Parses `HH:MM` (24-hour, two digits each).
    pub fn parse(s: &str) -> Option<Self> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::new(h.parse().ok()?, m.parse().ok()?)
    }

    fn naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(
            u32::from(self.minutes / 60),
            u32::from(self.minutes % 60),
            0,
        )
        .expect("valid time")
    }

    fn of(t: NaiveTime) -> Self {
        use chrono::Timelike;
        TimeOfDay {
            minutes: (t.hour() * 60 + t.minute()) as u16,
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

/// The instant of `date` at `time` in `tz` (earliest of a fold; after a gap).
fn at(tz: Tz, date: NaiveDate, time: TimeOfDay) -> DateTime<Utc> {
    let mut local = date.and_time(time.naive());
    // A gap lasts at most a few hours; step forward until the local time exists.
    for _ in 0..8 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

/// True when `now` is inside the quiet hours (in `tz`).
pub fn in_quiet_hours(quiet: &QuietHours, tz: Tz, now: DateTime<Utc>) -> bool {
    let t = TimeOfDay::of(now.with_timezone(&tz).time());
    if quiet.from < quiet.to {
        quiet.from <= t && t < quiet.to
    } else {
        t >= quiet.from || t < quiet.to
    }
}

/// The first instant strictly after `now` at local time `time` in `tz`.
pub fn next_at(time: TimeOfDay, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let mut date = today.pred_opt().unwrap_or(today);
    for _ in 0..4 {
        let t = at(tz, date, time);
        if t > now {
            return t;
        }
        date = date.succ_opt().unwrap_or(date);
    }
    now + Duration::days(1)
}

/// When something due at `now` may be sent: `now`, or the end of the quiet hours.
pub fn send_time(quiet: Option<&QuietHours>, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    match quiet {
        Some(q) if in_quiet_hours(q, tz, now) => next_at(q.to, tz, now),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_times() {
        assert_eq!(TimeOfDay::parse("07:05").unwrap().to_string(), "07:05");
        for bad in ["7:05", "24:00", "12:60", "ab:cd", "12:5", "", "12-00"] {
            assert!(TimeOfDay::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn quiet_hours_across_midnight_in_seoul() {
        let q = QuietHours {
            from: TimeOfDay::parse("22:00").unwrap(),
            to: TimeOfDay::parse("07:00").unwrap(),
        };
        let tz: Tz = "Asia/Seoul".parse().unwrap();
        // 23:30 KST
        let late = utc("2026-11-29T14:30:00Z");
        assert!(in_quiet_hours(&q, tz, late));
        assert_eq!(send_time(Some(&q), tz, late), utc("2026-11-29T22:00:00Z"));
        // 12:00 KST
        let noon = utc("2026-11-29T03:00:00Z");
        assert!(!in_quiet_hours(&q, tz, noon));
        assert_eq!(send_time(Some(&q), tz, noon), noon);
    }

    #[test]
    fn next_digest_and_dst() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let nine = TimeOfDay::parse("09:00").unwrap();
        assert_eq!(
            next_at(nine, tz, utc("2026-11-29T07:00:00Z")),
            utc("2026-11-29T08:00:00Z")
        );
        assert_eq!(
            next_at(nine, tz, utc("2026-11-29T08:00:00Z")),
            utc("2026-11-30T08:00:00Z")
        );
        // 02:30 does not exist on 2026-03-29 in Berlin: the first instant after the gap.
        let t = next_at(
            TimeOfDay::parse("02:30").unwrap(),
            tz,
            utc("2026-03-28T12:00:00Z"),
        );
        assert_eq!(t, utc("2026-03-29T01:00:00Z"));
    }
}
