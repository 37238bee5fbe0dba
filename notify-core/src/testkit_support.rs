//! Helpers for this crate's unit tests.

use std::sync::Arc;

use chrono::Utc;

use crate::model::{notification_id, Audience, Notification, Priority, Push};

/// A push for `audience` with a fresh id.
pub(crate) fn push_for(audience: Audience) -> Arc<Push> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let event_id = format!("unit-{}", N.fetch_add(1, Ordering::Relaxed));
    Push::new(
        Notification {
            id: notification_id(&event_id, &audience),
            event_id,
            notification_type: "t".into(),
            audience,
            title: "t".into(),
            message: "m".into(),
            link: None,
            data: None,
            priority: Priority::Normal,
            occurred_at: Utc::now(),
            seq: Utc::now().timestamp_micros(),
        },
        Utc::now(),
    )
}
