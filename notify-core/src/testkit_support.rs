//! Helpers for this crate's unit tests.

use std::sync::Arc;

use chrono::Utc;

use crate::model::{Audience, Notification, Push};

/// A push for `audience` with a fresh id.
pub(crate) fn push_for(audience: Audience) -> Arc<Push> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let event_id = format!("unit-{}", N.fetch_add(1, Ordering::Relaxed));
    Push::new(
        Notification::new(
            event_id,
            "t",
            audience,
            "t",
            "m",
            Utc::now().timestamp_micros(),
        )
        .with_occurred_at(Utc::now()),
        Utc::now(),
    )
}
