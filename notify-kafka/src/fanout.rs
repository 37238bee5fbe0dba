//! The cluster fan-out: every instance reads the input topic itself and pushes to its own
//! sessions, without waiting for the store.
//!
//! # How pushes and storage agree
//!
//! Each instance runs two consumers of the input topic:
//!
//! - the **storing** consumer (shared group `<group>`, [`crate::KafkaSource`] under the core
//!   pipeline with `push_live: false`) writes each event's notifications to the store and
//!   commits the offset only after the write (retrying with capped backoff and pausing
//!   consumption while the store is down);
//! - the **fan-out** consumer (this module; group `<group>-fanout-<instance>`, every
//!   partition assigned, starting at the end when the instance starts) builds the same
//!   notifications and hands them to the instance's hub at once.
//!
//! Both build the notifications of a record with [`notify_core::pipeline::notifications_stamped`]
//! from the same inputs: the payload, the record timestamp, and the stamp [`record_seq`]
//! derives from the record timestamp and offset. So the id **and the cursor** of a pushed
//! notification are exactly those the store will hold, whichever instance stores it, and
//! a push never waits for the store: a store outage pauses storage only.
//!
//! # Resume without a gap
//!
//! A client that resumes with `since` gets (core `resume_backlog`): what is stored after
//! `since` minus the resume overlap, plus this instance's record of pushes
//! ([`notify_core::pending::PendingPushes`]), then the live stream. The record here is
//! exact: a push counts as unstored until the shared group's **committed** offset for its
//! partition has passed it (read every [`PRUNE_EVERY`]), and the storing consumer commits
//! only after the store write. So a notification is at every moment in the store, in the
//! record, or not yet pushed by this instance (then it reaches the registered session live).
//! Stored pushes stay in the record for another minute, so while the store is down a client
//! that dropped in the last minute resumes from the record alone, at once.
//!
//! What the overlap is for: cursors follow record time, and a client sees notifications in
//! the order its instance's fan-out read them. A partition whose reading lags (a leader
//! failover) can deliver an older record after a newer one of another partition; a client
//! that saw the newer one and left must still get the older one. The overlap must exceed
//! that lag (the example server uses 5 s; the fault suite measures it).
//!
//! # Order
//!
//! The fan-out consumer delivers records one by one in offset order per partition, and a
//! session's queue is FIFO: a user's notifications from one partition reach the user in
//! offset order, whatever their audience (personal, group, broadcast).
//!
//! # Cost
//!
//! Every instance reads and parses every event (N instances: N reads of the topic, rules
//! applied N + 1 times), instead of one store read path; in exchange, push latency is one
//! consumer hop (no store write, no second topic) and store outages do not stop pushes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use notify_core::pipeline::{event_span, push_traced, traced_notifications, RecentEvents};
use notify_core::{NotifyService, Push, Result};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::KafkaConfig;
use crate::context::ConsumerCtx;
use crate::error;
use notify_core::backoff::Backoff;

/// How often the record of unstored pushes is pruned against the storing group's commits.
pub const PRUNE_EVERY: Duration = Duration::from_millis(500);

/// Most events kept in the record of unstored pushes (per instance). Past it the oldest are
/// dropped with a warning: a resume that reaches back past them is then answered from the
/// store only (a long store outage at a high rate).
pub const MAX_UNSTORED_EVENTS: usize = 200_000;

/// The ordering stamp (microseconds) of the notifications of a record: its timestamp in
/// milliseconds, and the offset's last three digits as sub-millisecond tie-break, so that
/// records of one partition keep their order within a millisecond. The same on every
/// instance and in the store.
pub fn record_seq(timestamp_ms: i64, offset: i64) -> i64 {
    timestamp_ms * 1000 + offset.rem_euclid(1000)
}

type Cons = StreamConsumer<ConsumerCtx>;

/// The pushes of one record (one event), by offset, oldest first.
type ByOffset = VecDeque<(i64, Vec<Arc<Push>>)>;

/// Pushes of this instance, by partition and offset, until the storing group commits them.
#[derive(Default)]
struct Unstored {
    parts: HashMap<i32, ByOffset>,
    events: usize,
    warned: bool,
}

/// The running fan-out of one instance.
pub(crate) struct Fanout {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    pruner: JoinHandle<()>,
}

impl Fanout {
    /// Creates the consumers and starts the fan-out in the background: it assigns every
    /// partition of the input topic at its end as soon as the brokers answer (retrying with
    /// capped backoff), then pushes every event to `service`'s hub.
    /// `ready` turns true once the partitions are assigned.
    pub(crate) fn spawn(
        config: &KafkaConfig,
        service: Arc<NotifyService>,
        ready: watch::Sender<bool>,
    ) -> Result<Fanout> {
        let mut client = config.consumer_config(&config.fanout_group(), "fanout");
        // Positions are kept in memory across broker outages; commits only make the group
        // visible to operators. Lag is reported by the storing consumer.
        client
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "true")
            .set("auto.offset.reset", "latest")
            .set("statistics.interval.ms", "0");
        let consumer: Cons = client
            .create_with_context(ConsumerCtx {
                role: "fanout",
                state: None,
            })
            .map_err(|e| error::client("the Kafka fan-out consumer", e))?;
        // A member of the storing group that never joins it: reads its committed offsets.
        let committed: BaseConsumer<ConsumerCtx> = config
            .consumer_config(&config.group, "committed")
            .set("enable.auto.commit", "false")
            .set("statistics.interval.ms", "0")
            .create_with_context(ConsumerCtx {
                role: "committed",
                state: None,
            })
            .map_err(|e| error::client("a Kafka consumer", e))?;
        let unstored = Arc::new(Mutex::new(Unstored::default()));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            Arc::new(consumer),
            config.topic.clone(),
            service.clone(),
            unstored.clone(),
            stop_rx.clone(),
            ready,
        ));
        let pruner = tokio::spawn(prune(
            Arc::new(committed),
            config.topic.clone(),
            service,
            unstored,
            stop_rx,
        ));
        Ok(Fanout { stop, task, pruner })
    }

    /// Stops delivering and closes the consumers (at most 2 s).
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self.task.await;
            let _ = self.pruner.await;
        })
        .await;
    }
}

/// Assigns every partition of `topic` at its current end; returns how many.
async fn assign_at_end(consumer: &Arc<Cons>, topic: &str) -> Result<usize> {
    let c = consumer.clone();
    let t = topic.to_string();
    tokio::task::spawn_blocking(move || -> Result<usize> {
        let timeout = Duration::from_secs(5);
        let md = c
            .fetch_metadata(Some(&t), timeout)
            .map_err(|e| error::unavailable("event_source", "fetching metadata", e))?;
        let partitions: Vec<i32> = md
            .topics()
            .first()
            .filter(|mt| mt.error().is_none())
            .map(|mt| mt.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            return Err(error::unusable(
                "event_source",
                format!("topic {t} has no partitions (does it exist?)"),
            ));
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            let (_, high) = c
                .fetch_watermarks(&t, *p, timeout)
                .map_err(|e| error::unavailable("event_source", "fetching watermarks", e))?;
            tpl.add_partition_offset(&t, *p, Offset::Offset(high))
                .map_err(|e| error::unavailable("event_source", "assigning", e))?;
        }
        c.assign(&tpl)
            .map_err(|e| error::unavailable("event_source", "assigning", e))?;
        Ok(partitions.len())
    })
    .await
    .map_err(|e| error::panicked("fan-out assignment", e))?
}

async fn run(
    consumer: Arc<Cons>,
    topic: String,
    service: Arc<NotifyService>,
    unstored: Arc<Mutex<Unstored>>,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
) {
    let mut backoff = Backoff::new("kafka fan-out");
    loop {
        match assign_at_end(&consumer, &topic).await {
            Ok(partitions) => {
                backoff.succeeded();
                tracing::info!(%topic, partitions, "kafka fan-out started at the end of the input topic");
                ready.send_replace(true);
                break;
            }
            Err(e) => {
                let wait = backoff.failed(&e);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    let mut recent = RecentEvents::new(100_000);
    let mut errors = Backoff::new("kafka fan-out consumption");
    loop {
        let got = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            m = consumer.recv() => m.map(|m| deliver(&m, &service, &mut recent, &unstored)),
        };
        match got {
            Ok(()) => errors.succeeded(),
            Err(e) => {
                let e = error::unavailable("event_source", "consuming", e);
                let wait = errors.failed(&e).min(Duration::from_millis(500));
                tokio::time::sleep(wait).await;
            }
        }
    }
    tokio::task::spawn_blocking(move || drop(consumer));
}

fn deliver(
    m: &BorrowedMessage<'_>,
    service: &NotifyService,
    recent: &mut RecentEvents,
    unstored: &Mutex<Unstored>,
) {
    let origin = || format!("{}/{}@{}", m.topic(), m.partition(), m.offset());
    let record_ms = m
        .timestamp()
        .to_millis()
        .unwrap_or_else(|| Utc::now().timestamp_millis());
    let event_time = DateTime::from_timestamp_millis(record_ms).unwrap_or_else(Utc::now);
    let seq = record_seq(record_ms, m.offset());
    let payload = m.payload().unwrap_or_default();
    let (span, trace) = event_span(service, &origin(), crate::trace_headers::read(m));
    let (event, notifications) = match traced_notifications(
        service,
        &span,
        payload,
        event_time,
        Some(seq),
    ) {
        Ok(built) => built,
        Err(e) => {
            // The storing consumer dead-letters it.
            span.in_scope(|| tracing::debug!(origin = %origin(), error = %e, "fan-out skips an invalid event"));
            return;
        }
    };
    let _entered = span.enter();
    if !recent.first_time(&event.id) {
        tracing::debug!(event_id = %event.id, origin = %origin(), "event id seen again; not pushed twice");
        return;
    }
    let (pushes, reached) = push_traced(
        service,
        &span,
        &event.id,
        notifications,
        event_time,
        trace,
        |pushes| {
            service.pending().add(pushes);
            track(service, unstored, m.partition(), m.offset(), pushes);
        },
    );
    tracing::debug!(
        event_id = %event.id,
        origin = %origin(),
        notification_ids = ?pushes.iter().map(|p| (p.notification.id.as_str(), p.notification.audience.to_string())).collect::<Vec<_>>(),
        sessions = reached,
        "event pushed"
    );
}

fn track(
    service: &NotifyService,
    unstored: &Mutex<Unstored>,
    partition: i32,
    offset: i64,
    pushes: &[Arc<Push>],
) {
    let mut u = unstored.lock();
    u.parts
        .entry(partition)
        .or_default()
        .push_back((offset, pushes.to_vec()));
    u.events += 1;
    if u.events <= MAX_UNSTORED_EVENTS {
        return;
    }
    // Drop the oldest entry of the longest partition.
    let longest = u.parts.iter().max_by_key(|(_, q)| q.len()).map(|(p, _)| *p);
    if let Some((_, dropped)) = longest.and_then(|p| u.parts.get_mut(&p)?.pop_front()) {
        u.events -= 1;
        service.pending().drop_unstored(&dropped);
        if !u.warned {
            u.warned = true;
            tracing::warn!(
                limit = MAX_UNSTORED_EVENTS,
                "more unstored pushes than the record keeps: the oldest are dropped; resumes that reach back past them read the store only"
            );
        }
    }
}

/// Every [`PRUNE_EVERY`]: reads the storing group's committed offsets and forgets the
/// pushes below them (they are stored).
async fn prune(
    committed: Arc<BaseConsumer<ConsumerCtx>>,
    topic: String,
    service: Arc<NotifyService>,
    unstored: Arc<Mutex<Unstored>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new("reading the storing group's commits");
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
        let partitions: Vec<i32> = {
            let u = unstored.lock();
            u.parts
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(p, _)| *p)
                .collect()
        };
        if partitions.is_empty() {
            continue;
        }
        let c = committed.clone();
        let t = topic.clone();
        let started = Instant::now();
        let read = tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in partitions {
                tpl.add_partition(&t, p);
            }
            c.committed_offsets(tpl, Duration::from_secs(2))
        })
        .await;
        let tpl = match read {
            Ok(Ok(tpl)) => {
                backoff.succeeded();
                tpl
            }
            Ok(Err(e)) => {
                let wait =
                    backoff.failed(&error::unavailable("event_source", "reading commits", e));
                tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
                continue;
            }
            Err(_) => continue,
        };
        let mut stored = Vec::new();
        {
            let mut u = unstored.lock();
            let mut removed = 0;
            for e in tpl.elements() {
                let Offset::Offset(upto) = e.offset() else {
                    continue;
                };
                if let Some(q) = u.parts.get_mut(&e.partition()) {
                    while q.front().is_some_and(|(o, _)| *o < upto) {
                        if let Some((_, pushes)) = q.pop_front() {
                            stored.extend(pushes);
                            removed += 1;
                        }
                    }
                }
            }
            u.events -= removed;
            if u.events == 0 {
                u.warned = false;
            }
        }
        if !stored.is_empty() {
            service.pending().remove(&stored);
        }
    }
    tokio::task::spawn_blocking(move || drop(committed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_stamps_follow_time_then_offset() {
        assert_eq!(record_seq(1_700_000_000_123, 42), 1_700_000_000_123_042);
        assert!(record_seq(5, 999) < record_seq(6, 1000));
        assert!(record_seq(5, 7) < record_seq(5, 8));
    }
}
