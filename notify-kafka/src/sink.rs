//! [`KafkaSink`]: `POST /api/events` produces to the input topic.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use notify_core::{Event, EventSink, Result, Rules, TraceContext};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::KafkaConfig;
use crate::context::TracingContext;
use crate::{error, producer};

/// The partition key of an event: its first recipient (`Recipients::partition_key`), so one
/// user's events stay in one partition and in order. An event without recipients is keyed by
/// the recipients its rule gives it when `rules` are known, else by its type.
pub fn partition_key(event: &Event, rules: Option<&Rules>) -> String {
    if let Some(r) = event.recipients.as_ref().filter(|r| !r.is_empty()) {
        return r.partition_key().to_string();
    }
    if let Some(resolved) = rules.and_then(|rules| rules.resolve(event).ok()) {
        return resolved.recipients.partition_key().to_string();
    }
    event.event_type.clone()
}

/// Produces events to the input topic: idempotent producer, `acks=all`, keyed by
/// [`partition_key`], the value the raw event JSON as received.
///
/// `publish` sends the whole batch in order and returns once every event is acknowledged by
/// the brokers (or fails after `message.timeout.ms`, 30 s by default).
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer<TracingContext>,
    topic: String,
    rules: Arc<OnceLock<Rules>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .finish()
    }
}

impl KafkaSink {
    /// A sink with its own producer. Needs a Tokio runtime.
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(Self::with_producer(config, producer(config, "sink")?))
    }

    pub(crate) fn with_producer(
        config: &KafkaConfig,
        producer: FutureProducer<TracingContext>,
    ) -> Self {
        KafkaSink {
            producer,
            topic: config.topic.clone(),
            rules: Arc::new(OnceLock::new()),
        }
    }

    /// Uses `rules` to key events that carry no recipients (set once; later calls are
    /// ignored). [`crate::Kafka::start`] sets the service's rules.
    pub fn set_rules(&self, rules: Rules) {
        let _ = self.rules.set(rules);
    }

    /// Waits until everything queued is delivered, at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        crate::flush(&self.producer, timeout).await;
    }
}

#[async_trait]
impl EventSink for KafkaSink {
    async fn publish(&self, events: &[(Event, Bytes)]) -> Result<()> {
        self.publish_traced(events, None).await
    }

    /// Publishes with `trace` in each record's `traceparent` and `tracestate` headers.
    async fn publish_traced(
        &self,
        events: &[(Event, Bytes)],
        trace: Option<&TraceContext>,
    ) -> Result<()> {
        let rules = self.rules.get();
        let mut pending = Vec::with_capacity(events.len());
        for (event, raw) in events {
            let key = partition_key(event, rules);
            let mut record = FutureRecord::to(&self.topic)
                .key(key.as_bytes())
                .payload(&raw[..]);
            if let Some(trace) = trace {
                record = record.headers(crate::trace_headers::write(trace));
            }
            match self.producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(error::unavailable("event_sink", "producing", e)),
            }
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(error::unavailable("event_sink", "producing", e)),
                Err(_) => return Err(error::producer_dropped("event_sink")),
            }
        }
        Ok(())
    }
}
