//! Where events come from: the [`EventSource`] trait, deliveries that are acknowledged only
//! after processing, and the in-process channel source.

mod memory;

pub use memory::{MemoryPublisher, MemorySource};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::Event;
use crate::trace::TraceContext;

/// Settles one delivery. Implemented by each source (for Kafka: the offset commit).
#[async_trait]
pub trait Acknowledge: Send + Sync {
    /// The delivery was processed and stored: it will not be delivered again.
    async fn ack(self: Box<Self>) -> Result<()>;
    /// The delivery can never be processed (bad JSON, no recipients...): park it with the
    /// reason (for Kafka: the dead-letter topic), then settle it so it does not block others.
    async fn dead_letter(self: Box<Self>, reason: &Error) -> Result<()>;
}

/// One event as received, waiting to be acknowledged.
pub struct Delivery {
    /// The raw message value (UTF-8 JSON).
    pub payload: Bytes,
    /// The source's own timestamp (e.g. the Kafka record time), if any.
    pub timestamp: Option<DateTime<Utc>>,
    /// Where it came from, for logs (`notification-events/2@1234`).
    pub origin: String,
    /// The ordering stamp (microseconds) its notifications get, when the source can give
    /// one that every reader of the same message computes alike (Kafka: from the record
    /// time and offset), so instances that push and the one that stores agree on cursors.
    /// `None`: the pipeline stamps from its own clock.
    pub seq: Option<i64>,
    /// The producer's W3C trace context (a Kafka record's `traceparent` header, or the
    /// `POST /api/events` request's), continued by the event's spans.
    pub trace: Option<TraceContext>,
    acker: Box<dyn Acknowledge>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("origin", &self.origin)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

impl Delivery {
    /// A delivery settled through `acker`.
    pub fn new(
        payload: Bytes,
        timestamp: Option<DateTime<Utc>>,
        origin: impl Into<String>,
        acker: Box<dyn Acknowledge>,
    ) -> Self {
        Delivery {
            payload,
            timestamp,
            origin: origin.into(),
            seq: None,
            trace: None,
            acker,
        }
    }

    /// Sets the producer's trace context (see [`Delivery::trace`]).
    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// Sets the deterministic ordering stamp (see [`Delivery::seq`]).
    pub fn with_seq(mut self, seq: i64) -> Self {
        self.seq = Some(seq);
        self
    }

    /// Acknowledges it (after it is stored).
    pub async fn ack(self) -> Result<()> {
        self.acker.ack().await
    }

    /// Dead-letters it with a reason.
    pub async fn dead_letter(self, reason: &Error) -> Result<()> {
        self.acker.dead_letter(reason).await
    }

    /// Splits into the parts the pipeline keeps and the settling handle.
    pub fn into_parts(self) -> (Bytes, Option<DateTime<Utc>>, String, Box<dyn Acknowledge>) {
        (self.payload, self.timestamp, self.origin, self.acker)
    }
}

/// A stream of events to turn into notifications.
///
/// # Contract
/// - `next` waits for the next delivery; `Ok(None)` means the source is closed for good.
///   Transient trouble (broker down) is retried inside the source or returned as
///   [`Error::Unavailable`]; the pipeline then backs off and calls `next` again.
/// - Deliveries are at-least-once: one that is not acknowledged before a restart is
///   delivered again. Acknowledging deliveries in the order they were received must be
///   enough for the source (a source may commit up to the newest acknowledged position).
/// - `pause`/`resume` stop and restart fetching (the pipeline pauses while the store is down
///   and its buffer is full). Sources without flow control may ignore them.
/// - `ping` answers whether the source is connected (for `/health/ready`).
#[async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// The next delivery, or `None` at the end.
    async fn next(&self) -> Result<Option<Delivery>>;
    /// Checks that the source is connected.
    async fn ping(&self) -> Result<()>;
    /// A short name for logs and health (`memory`, `kafka`).
    fn name(&self) -> &'static str;
    /// Stop fetching for now (the store is down); deliveries in hand stay valid.
    fn pause(&self) {}
    /// Fetch again after [`EventSource::pause`].
    fn resume(&self) {}
}

/// Accepts events from the HTTP API (`POST /api/events`) and hands them to the source side.
///
/// # Contract
/// `publish` returns once every event is durably accepted (for Kafka: acknowledged by the
/// brokers), in the given order; on error none or some may have been accepted, and the
/// caller may retry (ids make retries harmless).
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publishes validated events; `raw` holds each event's JSON as received.
    async fn publish(&self, events: &[(Event, Bytes)]) -> Result<()>;

    /// Like [`EventSink::publish`], with the publisher's trace context to hand on with each
    /// event (for Kafka: the record headers `traceparent` and `tracestate`). Sinks that
    /// cannot carry it keep this default, which drops it.
    async fn publish_traced(
        &self,
        events: &[(Event, Bytes)],
        trace: Option<&TraceContext>,
    ) -> Result<()> {
        let _ = trace;
        self.publish(events).await
    }
}
