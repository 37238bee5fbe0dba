//! [`KafkaSource`]: the storing consumer (shared group), as a core [`EventSource`].
//!
//! Offsets are stored for commit only when the pipeline settles a delivery (after the store
//! write, or after the dead letter is written), per partition up to the lowest offset that
//! is still unsettled; librdkafka commits stored offsets every `auto.commit.interval.ms`
//! (500 ms by default), before partitions are revoked, and at [`KafkaSource::close`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use notify_core::backoff::Backoff;
use notify_core::{Acknowledge, Delivery, Error, EventSource, Result};
use parking_lot::{Mutex, RwLock};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::KafkaConfig;
use crate::context::{ConsumerCtx, TracingContext};
use crate::{error, producer};

/// Header on dead letters: why the event was rejected.
pub const HEADER_ERROR: &str = "notify-error";
/// Header on dead letters: the rejected field, when one field is to blame.
pub const HEADER_ERROR_FIELD: &str = "notify-error-field";
/// Header on dead letters: the topic the event was read from.
pub const HEADER_SOURCE_TOPIC: &str = "notify-source-topic";
/// Header on dead letters: the partition the event was read from.
pub const HEADER_SOURCE_PARTITION: &str = "notify-source-partition";
/// Header on dead letters: the offset the event was read from.
pub const HEADER_SOURCE_OFFSET: &str = "notify-source-offset";

/// Per-partition bookkeeping of delivered and settled offsets.
///
/// A partition's commit point is its lowest delivered-but-unsettled offset, or one past the
/// highest delivered offset when everything is settled. Settling out of order is handled;
/// settlements from before a rebalance (an older generation) are ignored.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    generation: u64,
    parts: HashMap<i32, Part>,
}

#[derive(Debug)]
struct Part {
    generation: u64,
    outstanding: BTreeSet<i64>,
    /// One past the highest delivered offset.
    next: i64,
    /// The last commit point handed to librdkafka.
    stored: i64,
}

impl Tracker {
    /// Records a delivery; returns the generation the settlement must carry.
    pub(crate) fn delivered(&mut self, partition: i32, offset: i64) -> u64 {
        let generation = self.generation;
        let part = self.parts.entry(partition).or_insert_with(|| Part {
            generation,
            outstanding: BTreeSet::new(),
            next: -1,
            stored: -1,
        });
        part.outstanding.insert(offset);
        part.next = part.next.max(offset + 1);
        part.generation
    }

    /// Records a settlement; returns the new commit point if it advanced.
    pub(crate) fn settled(&mut self, partition: i32, offset: i64, generation: u64) -> Option<i64> {
        let part = self.parts.get_mut(&partition)?;
        if part.generation != generation || !part.outstanding.remove(&offset) {
            return None;
        }
        let point = part.outstanding.first().copied().unwrap_or(part.next);
        if point > part.stored {
            part.stored = point;
            Some(point)
        } else {
            None
        }
    }

    /// Partitions were assigned: start them afresh under a new generation.
    pub(crate) fn assigned(&mut self, partitions: &[i32]) {
        self.generation += 1;
        for p in partitions {
            self.parts.remove(p);
        }
    }

    /// Partitions were revoked: forget them (their unsettled deliveries are redelivered to
    /// the next owner).
    pub(crate) fn revoked(&mut self, partitions: &[i32]) {
        self.generation += 1;
        for p in partitions {
            self.parts.remove(p);
        }
    }

    /// Deliveries not settled yet, over all partitions.
    pub(crate) fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.outstanding.len()).sum()
    }
}

/// State shared by the source, its acknowledgements and the consumer's rebalance hooks.
pub(crate) struct SourceState {
    pub(crate) topic: String,
    tracker: Mutex<Tracker>,
    paused: AtomicBool,
    assigned: watch::Sender<usize>,
}

impl SourceState {
    pub(crate) fn assigned(&self, partitions: &[i32]) {
        self.tracker.lock().assigned(partitions);
        self.assigned.send_modify(|n| *n += partitions.len());
    }

    pub(crate) fn revoked(&self, partitions: &[i32]) {
        self.tracker.lock().revoked(partitions);
        self.assigned
            .send_modify(|n| *n = n.saturating_sub(partitions.len()));
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }
}

type Cons = StreamConsumer<ConsumerCtx>;

struct Inner {
    topic: String,
    dlq_topic: String,
    consumer: RwLock<Option<Arc<Cons>>>,
    subscribed: AtomicBool,
    state: Arc<SourceState>,
    producer: FutureProducer<TracingContext>,
    closed: watch::Sender<bool>,
    consume_errors: Mutex<Backoff>,
}

/// The storing consumer: reads the input topic in the shared group, as an [`EventSource`].
///
/// - Subscribes on the first [`EventSource::next`] (or [`KafkaSource::subscribe`]).
/// - [`Acknowledge::ack`] stores the partition's commit point for the next commit;
///   [`Acknowledge::dead_letter`] first writes the event to `<topic>.dlq` with the headers
///   [`HEADER_ERROR`], [`HEADER_SOURCE_TOPIC`], [`HEADER_SOURCE_PARTITION`],
///   [`HEADER_SOURCE_OFFSET`] (and [`HEADER_ERROR_FIELD`]), retrying until it is written.
/// - Transient consumer errors are logged and retried inside `next`.
/// - `pause`/`resume` pause and resume every assigned partition (also ones assigned while
///   paused).
/// - `ping` fetches the topic's metadata from the brokers.
#[derive(Clone)]
pub struct KafkaSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.inner.topic)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl KafkaSource {
    /// A storing consumer in `config.group` with its own producer for dead letters. Needs a
    /// Tokio runtime.
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Self::with_producer(config, producer(config, "dlq")?)
    }

    pub(crate) fn with_producer(
        config: &KafkaConfig,
        producer: FutureProducer<TracingContext>,
    ) -> Result<Self> {
        let (assigned, _) = watch::channel(0);
        let state = Arc::new(SourceState {
            topic: config.topic.clone(),
            tracker: Mutex::new(Tracker::default()),
            paused: AtomicBool::new(false),
            assigned,
        });
        let mut client = config.consumer_config(&config.group, "store");
        client
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false");
        if client.get("auto.offset.reset").is_none() {
            client.set("auto.offset.reset", "earliest");
        }
        let consumer: Cons = client
            .create_with_context(ConsumerCtx {
                role: "store",
                state: Some(state.clone()),
            })
            .map_err(|e| error::unavailable("event_source", "creating the consumer", e))?;
        let (closed, _) = watch::channel(false);
        Ok(KafkaSource {
            inner: Arc::new(Inner {
                topic: config.topic.clone(),
                dlq_topic: config.dlq_topic(),
                consumer: RwLock::new(Some(Arc::new(consumer))),
                subscribed: AtomicBool::new(false),
                state,
                producer,
                closed,
                consume_errors: Mutex::new(Backoff::new("kafka storing consumer")),
            }),
        })
    }

    /// Joins the group now (otherwise the first `next` does).
    pub fn subscribe(&self) -> Result<()> {
        if self.inner.subscribed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let consumer = self.inner.consumer.read().clone();
        if let Some(c) = consumer {
            c.subscribe(&[&self.inner.topic])
                .map_err(|e| error::unavailable("event_source", "subscribing", e))?;
        }
        Ok(())
    }

    /// Partitions currently assigned to this consumer.
    pub fn assigned_partitions(&self) -> usize {
        *self.inner.state.assigned.borrow()
    }

    /// Waits until at least one partition is assigned (the group was joined); false on
    /// timeout. The consumer must be polled meanwhile (a running pipeline does).
    pub async fn wait_assigned(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.state.assigned.subscribe();
        let assigned = tokio::time::timeout(timeout, rx.wait_for(|n| *n > 0))
            .await
            .is_ok();
        assigned
    }

    /// Deliveries handed out and not settled yet.
    pub fn in_flight(&self) -> usize {
        self.inner.state.tracker.lock().in_flight()
    }

    /// Commits what is settled, leaves the group and ends `next` with `None`. Unsettled
    /// deliveries are redelivered to the next owner of their partitions.
    pub async fn close(&self) {
        self.inner.closed.send_replace(true);
        let consumer = self.inner.consumer.write().take();
        let subscribed = self.inner.subscribed.load(Ordering::SeqCst);
        if let Some(c) = consumer {
            let done = tokio::task::spawn_blocking(move || {
                if subscribed {
                    match c.commit_consumer_state(CommitMode::Sync) {
                        Ok(()) => {}
                        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                        Err(e) => tracing::warn!(error = %e, "final commit failed"),
                    }
                }
                drop(c);
            });
            if tokio::time::timeout(Duration::from_secs(3), done)
                .await
                .is_err()
            {
                tracing::warn!("kafka consumer did not close within 3 s");
            }
        }
    }

    fn to_delivery(&self, m: &BorrowedMessage<'_>) -> Delivery {
        let payload = Bytes::copy_from_slice(m.payload().unwrap_or_default());
        let key = m.key().map(Bytes::copy_from_slice);
        let timestamp = m
            .timestamp()
            .to_millis()
            .and_then(DateTime::from_timestamp_millis);
        let (partition, offset) = (m.partition(), m.offset());
        let generation = self.inner.state.tracker.lock().delivered(partition, offset);
        let origin = format!("{}/{partition}@{offset}", self.inner.topic);
        let record_ms =
            timestamp.map_or_else(|| Utc::now().timestamp_millis(), |t| t.timestamp_millis());
        Delivery::new(
            payload.clone(),
            timestamp,
            origin,
            Box::new(KafkaAck {
                inner: self.inner.clone(),
                partition,
                offset,
                generation,
                payload,
                key,
            }),
        )
        // The fan-out of every instance computes the same stamp from the same record.
        .with_seq(crate::fanout::record_seq(record_ms, offset))
        .with_trace(crate::trace_headers::read(m))
    }

    fn set_paused(&self, paused: bool) {
        self.inner.state.paused.store(paused, Ordering::Relaxed);
        let consumer = self.inner.consumer.read().clone();
        let Some(c) = consumer else {
            return;
        };
        let assignment = match c.assignment() {
            Ok(a) if a.count() > 0 => a,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading the assignment failed");
                return;
            }
        };
        let result = if paused {
            c.pause(&assignment)
        } else {
            c.resume(&assignment)
        };
        match result {
            Ok(()) => tracing::info!(
                partitions = assignment.count(),
                paused,
                "kafka consumption {}",
                if paused { "paused" } else { "resumed" }
            ),
            Err(e) => tracing::warn!(error = %e, paused, "pause/resume failed"),
        }
    }
}

#[async_trait]
impl EventSource for KafkaSource {
    async fn next(&self) -> Result<Option<Delivery>> {
        self.subscribe()?;
        let mut closed = self.inner.closed.subscribe();
        loop {
            if *closed.borrow() {
                return Ok(None);
            }
            let consumer = self.inner.consumer.read().clone();
            let Some(consumer) = consumer else {
                return Ok(None);
            };
            let got = tokio::select! {
                biased;
                _ = closed.wait_for(|c| *c) => None,
                m = consumer.recv() => Some(m.map(|m| self.to_delivery(&m))),
            };
            match got {
                None => {
                    // Closing: let the consumer's (blocking) close run off the runtime.
                    tokio::task::spawn_blocking(move || drop(consumer));
                    return Ok(None);
                }
                Some(Ok(d)) => {
                    self.inner.consume_errors.lock().succeeded();
                    return Ok(Some(d));
                }
                Some(Err(e)) => {
                    if let KafkaError::MessageConsumption(code) = &e {
                        if is_fatal(*code) {
                            return Err(error::unavailable("event_source", "consuming", e));
                        }
                    }
                    let e = error::unavailable("event_source", "consuming", e);
                    let wait = self.inner.consume_errors.lock().failed(&e);
                    tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
                }
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        ping_topic(&self.inner.producer, &self.inner.topic).await
    }

    fn name(&self) -> &'static str {
        "kafka"
    }

    fn pause(&self) {
        self.set_paused(true);
    }

    fn resume(&self) {
        self.set_paused(false);
    }
}

fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::Fatal)
}

/// Checks that the brokers answer with the topic's metadata.
pub(crate) async fn ping_topic(
    producer: &FutureProducer<TracingContext>,
    topic: &str,
) -> Result<()> {
    let producer = producer.clone();
    let topic = topic.to_string();
    let result = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer;
        producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_millis(1500))
            .map_err(|e| error::unavailable("event_source", "fetching metadata", e))
            .and_then(|md| match md.topics().first() {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                Some(t) => Err(error::unusable(
                    "event_source",
                    format!("topic {topic}: {:?}", t.error()),
                )),
                None => Err(error::unusable(
                    "event_source",
                    format!("topic {topic} not in metadata"),
                )),
            })
    })
    .await;
    match result {
        Ok(r) => r,
        Err(e) => Err(error::panicked("metadata check", e)),
    }
}

struct KafkaAck {
    inner: Arc<Inner>,
    partition: i32,
    offset: i64,
    generation: u64,
    payload: Bytes,
    key: Option<Bytes>,
}

impl KafkaAck {
    fn settle(&self) {
        let mut tracker = self.inner.state.tracker.lock();
        let Some(point) = tracker.settled(self.partition, self.offset, self.generation) else {
            return;
        };
        let consumer = self.inner.consumer.read().clone();
        let Some(c) = consumer else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(&self.inner.topic, self.partition, Offset::Offset(point))
            .is_err()
        {
            return;
        }
        if let Err(e) = c.store_offsets(&tpl) {
            // Not assigned any more (revoked meanwhile): the next owner redelivers.
            tracing::debug!(error = %e, partition = self.partition, point, "offset not stored");
        }
    }
}

#[async_trait]
impl Acknowledge for KafkaAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.settle();
        Ok(())
    }

    async fn dead_letter(self: Box<Self>, reason: &Error) -> Result<()> {
        let reason_text = reason.to_string();
        let field = match reason {
            Error::InvalidInput { field, .. } => field.clone(),
            _ => None,
        };
        let partition = self.partition.to_string();
        let offset = self.offset.to_string();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_ERROR,
                    value: Some(reason_text.as_bytes()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_TOPIC,
                    value: Some(self.inner.topic.as_bytes()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_PARTITION,
                    value: Some(partition.as_bytes()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_OFFSET,
                    value: Some(offset.as_bytes()),
                });
            if let Some(f) = &field {
                headers = headers.insert(Header {
                    key: HEADER_ERROR_FIELD,
                    value: Some(f.as_bytes()),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.inner.dlq_topic)
                .payload(&self.payload[..])
                .headers(headers);
            if let Some(k) = &self.key {
                record = record.key(&k[..]);
            }
            match self
                .inner
                .producer
                .send(record, Timeout::After(Duration::from_secs(5)))
                .await
            {
                Ok(d) => {
                    tracing::info!(
                        origin = %format!("{}/{}@{}", self.inner.topic, self.partition, self.offset),
                        dlq = %self.inner.dlq_topic,
                        dlq_partition = d.partition,
                        dlq_offset = d.offset,
                        reason = %reason_text,
                        "event dead-lettered"
                    );
                    break;
                }
                Err((e, _)) => {
                    if *self.inner.closed.borrow() {
                        return Err(error::unavailable(
                            "event_source",
                            "writing a dead letter",
                            e,
                        ));
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "writing a dead letter failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.settle();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_is_the_lowest_unsettled_offset() {
        let mut t = Tracker::default();
        let g = t.delivered(0, 10);
        t.delivered(0, 11);
        t.delivered(0, 13); // 12 was a transaction marker or compacted away
        assert_eq!(t.settled(0, 11, g), Some(10)); // 10 still open: commit up to it
        assert_eq!(t.settled(0, 10, g), Some(13)); // 13 still open
        assert_eq!(t.settled(0, 13, g), Some(14));
        assert_eq!(t.settled(0, 13, g), None); // twice: ignored
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = Tracker::default();
        let g = t.delivered(0, 5);
        t.delivered(1, 7);
        assert_eq!(t.settled(1, 7, g), Some(8));
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.settled(0, 5, g), Some(6));
    }

    #[test]
    fn settlements_from_before_a_rebalance_are_ignored() {
        let mut t = Tracker::default();
        let old = t.delivered(0, 5);
        t.revoked(&[0]);
        t.assigned(&[0]);
        let new = t.delivered(0, 5);
        assert_ne!(old, new);
        assert_eq!(t.settled(0, 5, old), None);
        assert_eq!(t.settled(0, 5, new), Some(6));
        // A partition revoked and not reassigned forgets everything.
        let g = t.delivered(3, 1);
        t.revoked(&[3]);
        assert_eq!(t.settled(3, 1, g), None);
    }
}
