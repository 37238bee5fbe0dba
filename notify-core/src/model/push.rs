//! Notifications on their way to sessions, serialized once.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::Notification;

/// A notification on its way to sessions: serialized once, shared by every session.
#[derive(Debug)]
pub struct Push {
    /// The notification.
    pub notification: Notification,
    /// Its JSON (`read: false`), shared by every session that gets it.
    pub json: Bytes,
    /// When the event entered the system (record time or receipt), for the latency metric.
    pub event_time: DateTime<Utc>,
}

impl Push {
    /// Serializes `notification` once for all sessions.
    pub fn new(notification: Notification, event_time: DateTime<Utc>) -> Arc<Self> {
        let json = notification.to_json_bytes(false);
        Arc::new(Push {
            notification,
            json,
            event_time,
        })
    }
}
