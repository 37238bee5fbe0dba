//! Notifications on their way to sessions, serialized once.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::Notification;
use crate::trace::TraceContext;

/// A notification on its way to sessions: serialized once, shared by every session.
#[derive(Debug)]
pub struct Push {
    /// The notification.
    pub notification: Notification,
    /// Its JSON (`read: false`), shared by every session that gets it.
    pub json: Bytes,
    /// When the event entered the system (record time or receipt), for the latency metric.
    pub event_time: DateTime<Utc>,
    /// The trace context to hand to clients (`traceparent` on STOMP MESSAGE frames and SSE
    /// events), when the event carried one or its path was traced.
    pub trace: Option<TraceContext>,
    /// The STOMP MESSAGE frame after its per-session headers, encoded once by the first
    /// session that writes it ([`Push::stomp_tail`]).
    stomp_tail: OnceLock<String>,
}

impl Push {
    /// Serializes `notification` once for all sessions.
    pub fn new(notification: Notification, event_time: DateTime<Utc>) -> Arc<Self> {
        Self::traced(notification, event_time, None)
    }

    /// Like [`Push::new`], carrying `trace` to the clients.
    pub fn traced(
        notification: Notification,
        event_time: DateTime<Utc>,
        trace: Option<TraceContext>,
    ) -> Arc<Self> {
        let json = notification.to_json_bytes(false);
        Arc::new(Push {
            notification,
            json,
            event_time,
            trace,
            stomp_tail: OnceLock::new(),
        })
    }

    /// Everything of this push's STOMP MESSAGE frame after `destination` and
    /// `subscription` (see [`crate::stomp::frame::push_message`]), the same for every
    /// session: encoded on first use, once for a broadcast to 10,000 sessions.
    pub fn stomp_tail(&self) -> &str {
        self.stomp_tail.get_or_init(|| {
            crate::stomp::frame::message_tail(
                &self.notification.id,
                self.trace.as_ref(),
                &self.json,
            )
        })
    }
}
