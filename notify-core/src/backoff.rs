//! [`Backoff`]: capped exponential retry delays for a backend that is down, logging once
//! per change of state (down, then up again) instead of once per attempt.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Retry delays for one dependency: 100 ms doubling up to a cap (5 s by default). Logs a
/// warning when it starts failing and an info line when it works again, nothing between.
#[derive(Debug)]
pub struct Backoff {
    what: &'static str,
    min: Duration,
    max: Duration,
    next: Duration,
    down_since: Option<Instant>,
    attempts: u32,
}

impl Backoff {
    /// Delays for `what` (named in the log lines): 100 ms up to 5 s.
    pub fn new(what: &'static str) -> Self {
        Self::with_limits(what, Duration::from_millis(100), Duration::from_secs(5))
    }

    /// Delays from `min` doubling up to `max`.
    pub fn with_limits(what: &'static str, min: Duration, max: Duration) -> Self {
        Backoff {
            what,
            min,
            max: max.max(min),
            next: min,
            down_since: None,
            attempts: 0,
        }
    }

    /// An attempt failed: logs if it is the first failure since the last success, and
    /// returns how long to wait before the next attempt.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        self.attempts += 1;
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            tracing::warn!(
                what = self.what,
                %error,
                max_backoff = ?self.max,
                "{} unavailable; retrying with backoff",
                self.what
            );
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// An attempt succeeded: logs if it had been failing, and resets the delay.
    pub fn succeeded(&mut self) {
        if let Some(since) = self.down_since.take() {
            tracing::info!(
                what = self.what,
                attempts = self.attempts,
                down_for = ?since.elapsed(),
                "{} available again",
                self.what
            );
        }
        self.attempts = 0;
        self.next = self.min;
    }

    /// True between a failure and the next success.
    pub fn is_failing(&self) -> bool {
        self.down_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b =
            Backoff::with_limits("x", Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<_> = (0..4).map(|_| b.failed(&"down").as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        assert!(b.is_failing());
        b.succeeded();
        assert!(!b.is_failing());
        assert_eq!(b.failed(&"down").as_millis(), 100);
    }
}
