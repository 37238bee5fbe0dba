//! The cluster fan-out: stored notifications go to `<topic>.stored`, and every instance's
//! own consumer pushes them to its own sessions.
//!
//! # Why push from what was stored
//!
//! The storing pipeline runs with `push_live: false`. Its store is wrapped in
//! [`PublishingStore`], whose `insert` writes to the real store first and, only once that
//! write succeeded, produces each notification (contract JSON, keyed by audience) to
//! `<topic>.stored` and waits for the brokers' acknowledgement (`acks=all`) before it returns
//! `Ok`. The pipeline acknowledges the event (stores its offset for commit) only after that.
//! So:
//!
//! - A push can never run ahead of the store: a client that saw a notification and resumes
//!   with its cursor reads everything stored before it (same storing writer) from the store.
//! - Nothing is lost: if the process dies after the store write but before the produce (or
//!   the commit), the event is redelivered, stored again idempotently (a duplicate, not a new
//!   notification) and produced again. At-least-once end to end; a push may repeat and
//!   clients de-duplicate by `message-id` (= notification id), as the contract says.
//! - A failed produce fails the insert with [`Error::Unavailable`]: the pipeline retries the
//!   batch with backoff (the store write is an idempotent duplicate) and pauses consumption
//!   meanwhile, exactly as for a store outage.
//!
//! Every instance consumes `<topic>.stored` itself (group `<group>-fanout-<instance>`),
//! starting at the end of each partition when it starts (new sessions catch up from the
//! store), and delivers each notification to its local hub. Order per audience is kept:
//! the stored topic is keyed by audience, the idempotent producer keeps order per
//! partition, and the fan-out consumer delivers sequentially.
//!
//! On a redelivered event the re-produced notification carries the cursor of the
//! redelivery (the store keeps the first one); the id is the same, so clients de-duplicate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use notify_core::store::{InsertOutcome, ListQuery, NotificationStore, Reader};
use notify_core::{Error, InboxItem, Notification, Push, Result, SessionHub};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::KafkaConfig;
use crate::context::{ConsumerCtx, TracingContext};
use crate::kafka_unavailable;
use crate::source::SourceState;

/// Header on `<topic>.stored`: the original event's record time, in epoch milliseconds.
pub const HEADER_EVENT_TIME: &str = "notify-event-time";
/// Header on `<topic>.stored`: the event id.
pub const HEADER_EVENT_ID: &str = "notify-event-id";

/// A [`NotificationStore`] decorator: after the inner store accepted a batch, produces it to
/// the stored-notifications topic and waits for the acknowledgement (see the module docs for
/// why this is safe). Reads pass through.
pub struct PublishingStore {
    inner: Arc<dyn NotificationStore>,
    producer: FutureProducer<TracingContext>,
    topic: String,
    state: Option<Arc<SourceState>>,
}

impl std::fmt::Debug for PublishingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishingStore")
            .field("topic", &self.topic)
            .finish()
    }
}

impl PublishingStore {
    pub(crate) fn new(
        inner: Arc<dyn NotificationStore>,
        producer: FutureProducer<TracingContext>,
        topic: String,
        state: Option<Arc<SourceState>>,
    ) -> Self {
        PublishingStore {
            inner,
            producer,
            topic,
            state,
        }
    }

    async fn publish(&self, batch: &[Notification]) -> Result<()> {
        let mut pending = Vec::with_capacity(batch.len());
        for n in batch {
            let value = n.to_json_bytes(false);
            let key = n.audience.to_string();
            let event_time = self
                .state
                .as_ref()
                .and_then(|s| s.event_times.get(&n.event_id))
                .unwrap_or_else(|| n.created_at());
            let millis = event_time.timestamp_millis().to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_EVENT_TIME,
                    value: Some(millis.as_bytes()),
                })
                .insert(Header {
                    key: HEADER_EVENT_ID,
                    value: Some(n.event_id.as_bytes()),
                });
            let record = FutureRecord::to(&self.topic)
                .key(key.as_bytes())
                .payload(&value[..])
                .headers(headers);
            // Enqueue in order without waiting; the idempotent producer keeps that order.
            match self.producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err((e, _)) => {
                    return Err(kafka_unavailable(
                        "store",
                        "producing to the stored-notifications topic",
                        e,
                    ))
                }
            }
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(kafka_unavailable(
                        "store",
                        "producing to the stored-notifications topic",
                        e,
                    ))
                }
                Err(_) => {
                    return Err(Error::Unavailable {
                        component: "store",
                        message: "the producer was dropped".into(),
                        source: None,
                    })
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl NotificationStore for PublishingStore {
    async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome> {
        let outcome = self.inner.insert(batch).await?;
        self.publish(batch).await?;
        Ok(outcome)
    }

    async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
        self.inner.list(reader, query).await
    }

    async fn unread_count(&self, reader: &Reader) -> Result<u64> {
        self.inner.unread_count(reader).await
    }

    async fn mark_read(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>> {
        self.inner.mark_read(reader, ids).await
    }

    async fn mark_all_read(&self, reader: &Reader) -> Result<()> {
        self.inner.mark_all_read(reader).await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.purge(before).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

type Cons = StreamConsumer<ConsumerCtx>;

/// The running fan-out consumer of one instance.
pub(crate) struct Fanout {
    consumer: Arc<Cons>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Fanout {
    /// Creates the consumer, assigns every partition of the stored topic at its current end
    /// (so everything stored after this returns is pushed), and starts delivering to `hub`.
    pub(crate) async fn start(config: &KafkaConfig, hub: Arc<dyn SessionHub>) -> Result<Fanout> {
        let topic = config.stored_topic();
        let mut client = config.consumer_config(&config.fanout_group(), "fanout");
        // Positions are kept in memory across broker outages; commits only make the group
        // and its lag visible to operators.
        client
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "true")
            .set("auto.offset.reset", "latest");
        let consumer: Cons = client
            .create_with_context(ConsumerCtx {
                role: "fanout",
                state: None,
            })
            .map_err(|e| kafka_unavailable("event_source", "creating the fan-out consumer", e))?;
        let consumer = Arc::new(consumer);
        let c = consumer.clone();
        let t = topic.clone();
        let assignment = tokio::task::spawn_blocking(move || -> Result<TopicPartitionList> {
            let timeout = Duration::from_secs(10);
            let md = c
                .fetch_metadata(Some(&t), timeout)
                .map_err(|e| kafka_unavailable("event_source", "fetching metadata", e))?;
            let partitions: Vec<i32> = md
                .topics()
                .first()
                .map(|mt| mt.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            if partitions.is_empty() {
                return Err(Error::Unavailable {
                    component: "event_source",
                    message: format!("topic {t} has no partitions (does it exist?)"),
                    source: None,
                });
            }
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                let (_, high) = c
                    .fetch_watermarks(&t, p, timeout)
                    .map_err(|e| kafka_unavailable("event_source", "fetching watermarks", e))?;
                tpl.add_partition_offset(&t, p, Offset::Offset(high))
                    .map_err(|e| kafka_unavailable("event_source", "assigning", e))?;
            }
            c.assign(&tpl)
                .map_err(|e| kafka_unavailable("event_source", "assigning", e))?;
            Ok(tpl)
        })
        .await
        .map_err(|e| Error::Internal {
            message: "fan-out start panicked".into(),
            source: Some(Box::new(e)),
        })??;
        tracing::info!(
            topic = %topic,
            group = %config.fanout_group(),
            partitions = assignment.count(),
            "kafka fan-out started at the end of the stored topic"
        );
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(consumer.clone(), hub, stop_rx));
        Ok(Fanout {
            consumer,
            stop,
            task,
        })
    }

    /// Stops delivering and closes the consumer.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let consumer = self.consumer;
        let closing = tokio::task::spawn_blocking(move || drop(consumer));
        let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
    }
}

async fn run(consumer: Arc<Cons>, hub: Arc<dyn SessionHub>, mut stop: watch::Receiver<bool>) {
    loop {
        let got = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            m = consumer.recv() => m.map(|m| deliver(&m, &*hub)),
        };
        if let Err(e) = got {
            tracing::warn!(error = %e, "kafka fan-out consume error; retrying");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn deliver(m: &BorrowedMessage<'_>, hub: &dyn SessionHub) {
    let origin = || format!("{}/{}@{}", m.topic(), m.partition(), m.offset());
    let parsed = serde_json::from_slice(m.payload().unwrap_or_default())
        .map_err(|e| Error::invalid_body(format!("invalid JSON: {e}")))
        .and_then(|v| Notification::from_json(&v));
    let notification = match parsed {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(origin = %origin(), error = %e, "skipping an unreadable stored notification");
            return;
        }
    };
    let event_time = m
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|h| h.key == HEADER_EVENT_TIME)
                .and_then(|h| h.value)
        })
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        .or_else(|| m.timestamp().to_millis())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    let push = Push::new(notification, event_time);
    let sessions = hub.deliver(&push);
    tracing::debug!(
        event_id = %push.notification.event_id,
        notification_id = %push.notification.id,
        audience = %push.notification.audience,
        origin = %origin(),
        sessions,
        "notification pushed"
    );
}
