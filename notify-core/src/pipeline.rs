//! The pipeline: source → rules → push to sessions and store → acknowledge.
//!
//! Two stages joined by a bounded queue. The intake stage validates, applies rules, pushes
//! live and hands the work on; the store stage writes in batches, retries with backoff while
//! the store is down, and acknowledges in order only after a write succeeded. So live pushes
//! continue through a store outage until the queue is full, and nothing is acknowledged
//! before it is stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::metrics;
use crate::model::{notification_id, Event, Notification, Push};
use crate::service::NotifyService;
use crate::source::{Acknowledge, EventSource};
use crate::trace::TraceContext;

/// Builds the notifications of one event: parse, validate, apply rules. The error names the
/// field and is the dead-letter reason.
pub fn notifications_for(
    service: &NotifyService,
    payload: &[u8],
    received_at: DateTime<Utc>,
) -> Result<(Event, Vec<Notification>)> {
    notifications_stamped(service, payload, received_at, None)
}

/// Like [`notifications_for`], with every notification of the event stamped `seq` when it
/// is given (ties are broken by id), so that every process reading the same message builds
/// the same notifications, cursors included. Without it each notification gets the next
/// stamp of the service's clock.
pub fn notifications_stamped(
    service: &NotifyService,
    payload: &[u8],
    received_at: DateTime<Utc>,
    seq: Option<i64>,
) -> Result<(Event, Vec<Notification>)> {
    let event = Event::from_slice(payload)?;
    let notifications = notifications_of(service, &event, received_at, seq)?;
    Ok((event, notifications))
}

/// The notifications of an already parsed event: rules, link check, audiences, stamps (see
/// [`notifications_stamped`]).
pub fn notifications_of(
    service: &NotifyService,
    event: &Event,
    received_at: DateTime<Utc>,
    seq: Option<i64>,
) -> Result<Vec<Notification>> {
    let resolved = service.rules.resolve(event)?;
    if let Some(link) = &resolved.link {
        crate::model::check_link(link, service.config.link_origins.as_deref())?;
    }
    let occurred_at = event.occurred_at.unwrap_or(received_at);
    // Millisecond precision, as JSON and BSON dates carry it.
    let occurred_at = chrono::DateTime::from_timestamp_millis(occurred_at.timestamp_millis())
        .unwrap_or(occurred_at);
    let notifications = resolved
        .recipients
        .audiences()
        .into_iter()
        .map(|audience| Notification {
            id: notification_id(&event.id, &audience),
            event_id: event.id.clone(),
            notification_type: event.event_type.clone(),
            audience,
            title: resolved.title.clone(),
            message: resolved.message.clone(),
            link: resolved.link.clone(),
            data: event.data.clone(),
            priority: resolved.priority,
            occurred_at,
            seq: seq.unwrap_or_else(|| service.clock.next()),
        })
        .collect();
    Ok(notifications)
}

/// The span of one event's way through this process (`notify.event`), continuing the
/// producer's trace context; `event_id` and `event_type` are recorded once the event is
/// parsed ([`record_event`]), so every log line of the path names the event. Returns the
/// span and the context to hand on from it.
pub fn event_span(
    service: &NotifyService,
    origin: &str,
    remote: Option<TraceContext>,
) -> (tracing::Span, Option<TraceContext>) {
    let span = tracing::info_span!(
        "notify.event",
        otel.kind = "consumer",
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty,
        origin,
    );
    let trace = service.tracing.continue_in(&span, remote);
    (span, trace)
}

/// Records the parsed event's id and type on its [`event_span`].
pub fn record_event(span: &tracing::Span, event: &Event) {
    span.record("event_id", event.id.as_str());
    span.record("event_type", event.event_type.as_str());
}

/// Parses an event and applies the rules in a `notify.rules` span inside `span` (the
/// event's [`event_span`], whose id and type it records).
pub fn traced_notifications(
    service: &NotifyService,
    span: &tracing::Span,
    payload: &[u8],
    received_at: DateTime<Utc>,
    seq: Option<i64>,
) -> Result<(Event, Vec<Notification>)> {
    span.in_scope(|| {
        let event = Event::from_slice(payload)?;
        record_event(span, &event);
        let rules = tracing::info_span!("notify.rules", event_id = %event.id);
        let notifications =
            rules.in_scope(|| notifications_of(service, &event, received_at, seq))?;
        Ok((event, notifications))
    })
}

/// Pushes to this process's sessions in a `notify.push` span inside `event_span`, each push
/// carrying the trace context that names that span (or `trace` when spans are not
/// exported). Returns the pushes and how many sessions took them. `before` runs on the
/// pushes before they are offered (bookkeeping of unstored pushes).
pub fn push_traced(
    service: &NotifyService,
    event_span: &tracing::Span,
    event_id: &str,
    notifications: Vec<Notification>,
    event_time: DateTime<Utc>,
    trace: Option<TraceContext>,
    before: impl FnOnce(&[Arc<Push>]),
) -> (Vec<Arc<Push>>, usize) {
    let span = tracing::info_span!(
        parent: event_span,
        "notify.push",
        otel.kind = "producer",
        event_id,
        notifications = notifications.len(),
        sessions = tracing::field::Empty,
    );
    let trace = service.tracing.context_of(&span, trace);
    let pushes: Vec<Arc<Push>> = notifications
        .into_iter()
        .map(|n| Push::traced(n, event_time, trace.clone()))
        .collect();
    let reached = span.in_scope(|| {
        before(&pushes);
        pushes.iter().map(|p| service.hub.deliver(p)).sum::<usize>()
    });
    span.record("sessions", reached);
    (pushes, reached)
}

enum Work {
    Store {
        event_id: String,
        pushes: Vec<Arc<Push>>,
        acker: Box<dyn Acknowledge>,
        /// The event's span: the store write and the acknowledgement happen inside it.
        span: tracing::Span,
    },
    DeadLetter {
        origin: String,
        reason: Error,
        acker: Box<dyn Acknowledge>,
        span: tracing::Span,
    },
}

/// Tuning of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Events pushed live but not yet stored, at most.
    pub store_queue: usize,
    /// Most events written in one store batch.
    pub max_batch: usize,
    /// First retry delay after a store failure (doubles up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Push to this process's sessions before storing (single instance). A cluster turns it
    /// off for the storing pipeline, whose events are pushed by every instance's own reader
    /// of the input instead (the Kafka fan-out), with the same ids and cursors.
    pub push_live: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            store_queue: 4096,
            max_batch: 256,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            push_live: true,
        }
    }
}

/// Runs events from a source through the service.
pub struct Pipeline {
    service: Arc<NotifyService>,
    source: Arc<dyn EventSource>,
    config: PipelineConfig,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A running pipeline; [`PipelineHandle::shutdown`] drains it.
#[derive(Debug)]
pub struct PipelineHandle {
    stop: watch::Sender<bool>,
    intake: JoinHandle<()>,
    store: JoinHandle<()>,
}

impl Pipeline {
    /// A pipeline with default tuning.
    pub fn new(service: Arc<NotifyService>, source: Arc<dyn EventSource>) -> Self {
        Pipeline {
            service,
            source,
            config: PipelineConfig::default(),
        }
    }

    /// Other tuning.
    pub fn with_config(mut self, config: PipelineConfig) -> Self {
        self.config = config;
        self
    }

    /// Starts both stages on the current runtime.
    pub fn spawn(self) -> PipelineHandle {
        let (stop, stop_rx) = watch::channel(false);
        let (tx, rx) = mpsc::channel(self.config.store_queue.max(1));
        let intake = tokio::spawn(intake(
            self.service.clone(),
            self.config.push_live,
            self.source.clone(),
            tx,
            stop_rx.clone(),
        ));
        let store = tokio::spawn(store_stage(
            self.service,
            self.source,
            self.config,
            rx,
            stop_rx,
        ));
        PipelineHandle {
            stop,
            intake,
            store,
        }
    }
}

impl PipelineHandle {
    /// Stops taking new events, writes and acknowledges what was taken (retrying the store
    /// until `deadline`), then returns.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let _ = self.intake.await;
        // The intake dropped its sender: the store stage ends after draining.
        if tokio::time::timeout(deadline, self.store).await.is_err() {
            tracing::warn!("pipeline: store stage did not drain in time; unstored events stay unacknowledged and will be redelivered");
        }
    }
}

/// Event ids this process pushed recently, so a redelivered event is stored (idempotently)
/// but not pushed a second time with a new cursor. A bounded window: the oldest id is
/// forgotten when a new one comes in at capacity.
#[derive(Debug)]
pub struct RecentEvents {
    ids: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
    capacity: usize,
}

impl RecentEvents {
    /// A window of at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        RecentEvents {
            ids: std::collections::HashSet::with_capacity(capacity.min(4096)),
            order: std::collections::VecDeque::new(),
            capacity,
        }
    }

    /// True the first time an id is seen (within the window).
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

async fn intake(
    service: Arc<NotifyService>,
    push_live: bool,
    source: Arc<dyn EventSource>,
    tx: mpsc::Sender<Work>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut recent = RecentEvents::new(100_000);
    loop {
        let next = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            next = source.next() => next,
        };
        let mut delivery = match next {
            Ok(Some(d)) => {
                backoff = Duration::from_millis(100);
                d
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(source = source.name(), error = %e, "event source failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let seq = delivery.seq;
        let remote = delivery.trace.take();
        let (payload, timestamp, origin, acker) = delivery.into_parts();
        let received_at = timestamp.unwrap_or_else(Utc::now);
        let (span, trace) = event_span(&service, &origin, remote);
        let work = match traced_notifications(&service, &span, &payload, received_at, seq) {
            Ok((event, notifications)) => {
                let (pushes, reached) = if push_live && recent.first_time(&event.id) {
                    push_traced(
                        &service,
                        &span,
                        &event.id,
                        notifications,
                        received_at,
                        trace,
                        |pushes| service.pending.add(pushes),
                    )
                } else {
                    // Pushed by this process before, or by every instance's own reader.
                    let pushes = notifications
                        .into_iter()
                        .map(|n| Push::traced(n, received_at, trace.clone()))
                        .collect();
                    (pushes, 0)
                };
                span.in_scope(|| {
                    tracing::debug!(
                        event_id = %event.id,
                        event_type = %event.event_type,
                        %origin,
                        notification_ids = ?pushes.iter().map(|p| (p.notification.id.as_str(), p.notification.audience.to_string())).collect::<Vec<_>>(),
                        sessions = reached,
                        "event pushed"
                    )
                });
                metrics::event("accepted");
                Work::Store {
                    event_id: event.id,
                    pushes,
                    acker,
                    span,
                }
            }
            Err(reason) => {
                // Only the size of the payload is logged: events carry user data and may
                // carry secrets, and INFO logs travel far.
                span.in_scope(|| tracing::info!(%origin, %reason, payload_bytes = payload.len(), "event rejected; dead-lettering"));
                Work::DeadLetter {
                    origin,
                    reason,
                    acker,
                    span,
                }
            }
        };
        if tx.send(work).await.is_err() {
            break;
        }
    }
}

async fn store_stage(
    service: Arc<NotifyService>,
    source: Arc<dyn EventSource>,
    config: PipelineConfig,
    mut rx: mpsc::Receiver<Work>,
    stop: watch::Receiver<bool>,
) {
    let mut batch: Vec<Work> = Vec::with_capacity(config.max_batch);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, config.max_batch).await == 0 {
            break;
        }
        let notifications: Vec<Notification> = batch
            .iter()
            .filter_map(|w| match w {
                Work::Store { pushes, .. } => Some(pushes.iter().map(|p| p.notification.clone())),
                Work::DeadLetter { .. } => None,
            })
            .flatten()
            .collect();
        let mut failed: Vec<Option<Error>> = batch.iter().map(|_| None).collect();
        // One `notify.store` span per event, in the event's trace, each timing the whole
        // batch write (retries included) that stores it.
        let store_spans: Vec<tracing::Span> = batch
            .iter()
            .filter_map(|w| match w {
                Work::Store {
                    span,
                    event_id,
                    pushes,
                    ..
                } => Some(tracing::info_span!(
                    parent: span,
                    "notify.store",
                    otel.kind = "client",
                    event_id = %event_id,
                    notifications = pushes.len(),
                    batch_events = batch.len(),
                    batch_notifications = notifications.len(),
                )),
                Work::DeadLetter { .. } => None,
            })
            .collect();
        if !notifications.is_empty() {
            if let Err(e) =
                write_with_retry(&service, &*source, &config, &notifications, &stop).await
            {
                if e.is_transient() {
                    // Shutting down with the store still down: leave these unacknowledged.
                    tracing::warn!(error = %e, events = batch.len(), "store unavailable at shutdown; events stay unacknowledged");
                    return;
                }
                // A permanent error in a batch: write event by event so one bad event is
                // dead-lettered and the others are stored.
                for (i, w) in batch.iter().enumerate() {
                    if let Work::Store { pushes, .. } = w {
                        let ns: Vec<Notification> =
                            pushes.iter().map(|p| p.notification.clone()).collect();
                        if let Err(e) =
                            write_with_retry(&service, &*source, &config, &ns, &stop).await
                        {
                            if e.is_transient() {
                                return;
                            }
                            failed[i] = Some(e);
                        }
                    }
                }
            }
        }
        drop(store_spans);
        for (work, failure) in batch.drain(..).zip(failed) {
            let span = match &work {
                Work::Store { span, .. } | Work::DeadLetter { span, .. } => span.clone(),
            };
            settle(&service, work, failure).instrument(span).await;
        }
    }
}

async fn settle(service: &NotifyService, work: Work, failure: Option<Error>) {
    match (work, failure) {
        (
            Work::Store {
                event_id,
                pushes,
                acker,
                ..
            },
            None,
        ) => {
            service.pending.remove(&pushes);
            metrics::event("stored");
            if let Err(e) = acker.ack().await {
                tracing::warn!(%event_id, error = %e, "acknowledge failed; the event may be redelivered (stored idempotently)");
            }
        }
        (
            Work::Store {
                event_id,
                pushes,
                acker,
                ..
            },
            Some(reason),
        ) => {
            service.pending.remove(&pushes);
            metrics::event("dead_letter");
            tracing::warn!(%event_id, %reason, "store refused the event; dead-lettering");
            if let Err(e) = acker.dead_letter(&reason).await {
                tracing::error!(%event_id, error = %e, "dead-letter failed");
            }
        }
        (
            Work::DeadLetter {
                origin,
                reason,
                acker,
                ..
            },
            _,
        ) => {
            metrics::event("dead_letter");
            if let Err(e) = acker.dead_letter(&reason).await {
                tracing::error!(%origin, error = %e, "dead-letter failed");
            }
        }
    }
}

/// Writes until success, a permanent error, or shutdown while the store is down.
async fn write_with_retry(
    service: &NotifyService,
    source: &dyn EventSource,
    config: &PipelineConfig,
    notifications: &[Notification],
    stop: &watch::Receiver<bool>,
) -> Result<()> {
    let mut backoff = config.min_backoff;
    let mut paused = false;
    let mut attempts = 0u32;
    let result = loop {
        let started = Instant::now();
        let result = service.store.insert(notifications).await;
        ::metrics::histogram!(metrics::STORE_WRITE_SECONDS).record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::store_write_failed();
        }
        // Escalations are scheduled before the events are acknowledged, so a crash between
        // the two redelivers them and schedules again (idempotently). A store outage here
        // retries the whole write (the insert is idempotent too).
        let result = match result {
            Ok(outcome) => match crate::escalation::schedule(service, notifications).await {
                Err(e) if e.is_transient() => Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "escalations could not be scheduled");
                    Ok(outcome)
                }
                Ok(_) => Ok(outcome),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(outcome) => {
                ::metrics::counter!(metrics::NOTIFICATIONS_STORED_TOTAL)
                    .increment(outcome.inserted as u64);
                if attempts > 0 {
                    tracing::info!(attempts, "store is back; backlog written");
                }
                break Ok(());
            }
            Err(e) if e.is_transient() => {
                attempts += 1;
                if !paused {
                    source.pause();
                    paused = true;
                }
                // One line when the store goes down and one when it is back, not one per try.
                if attempts == 1 {
                    tracing::warn!(error = %e, max_backoff = ?config.max_backoff, "store write failed; storage paused, retrying with backoff (live pushes continue)");
                } else {
                    tracing::debug!(error = %e, attempts, retry_in = ?backoff, "store write failed; retrying");
                }
                if *stop.borrow() && attempts >= 3 {
                    break Err(e);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
            Err(e) => break Err(e),
        }
    };
    if paused {
        source.resume();
    }
    result
}

/// Purges notifications older than the retention period, at start and then hourly.
pub fn spawn_retention_sweeper(service: Arc<NotifyService>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let cutoff = Utc::now()
                - chrono::Duration::from_std(service.config.retention)
                    .unwrap_or(chrono::Duration::days(30));
            match service.store.purge(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, %cutoff, "retention sweep"),
                Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::auth::Authenticator;
    use crate::hub::session_queue;
    use crate::model::InboxItem;
    use crate::store::{InsertOutcome, ListQuery, MemoryStore, NotificationStore, Reader};
    use crate::{MemorySource, ServiceConfig};

    /// A store that fails while `down` is set.
    #[derive(Default)]
    struct FlakyStore {
        inner: MemoryStore,
        down: AtomicBool,
    }

    impl FlakyStore {
        fn check(&self) -> Result<()> {
            if self.down.load(Ordering::SeqCst) {
                return Err(Error::unavailable_because("store", "down for the test"));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl NotificationStore for FlakyStore {
        async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome> {
            self.check()?;
            self.inner.insert(batch).await
        }
        async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
            self.check()?;
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
            self.check()
        }
    }

    fn event(id: &str, user: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"id":"{id}","type":"t","recipients":{{"users":["{user}"]}},"title":"t","message":"m"}}"#
        ))
    }

    async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    #[tokio::test]
    async fn store_outage_keeps_pushing_and_acks_only_after_storing() {
        let store = Arc::new(FlakyStore::default());
        let (source, publisher) = MemorySource::new(64);
        let source = Arc::new(source);
        let service = NotifyService::builder(
            store.clone(),
            Arc::new(publisher.clone()),
            Authenticator::hs256(b"k"),
        )
        .config(ServiceConfig::default())
        .build();
        let config = PipelineConfig {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..PipelineConfig::default()
        };
        let pipeline = Pipeline::new(service.clone(), source)
            .with_config(config)
            .spawn();
        let reader = Arc::new(Reader::new("ann", vec![]));
        let (tx, rx) = session_queue(64);
        service.hub.register(&reader, tx);

        store.down.store(true, Ordering::SeqCst);
        for i in 0..5 {
            publisher
                .send_raw(event(&format!("e{i}"), "ann"))
                .await
                .unwrap();
        }
        for i in 0..5 {
            let push = tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                push.notification.event_id,
                format!("e{i}"),
                "live pushes continue in order"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            publisher.acked(),
            0,
            "nothing acknowledged while the store is down"
        );
        assert_eq!(
            service.pending.len(),
            5,
            "pushed but unstored notifications are tracked for resume"
        );

        store.down.store(false, Ordering::SeqCst);
        eventually("all acknowledged", || publisher.acked() == 5).await;
        assert_eq!(store.inner.len(), 5);
        assert!(service.pending.is_empty());
        pipeline.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn bad_events_are_dead_lettered_in_order_and_duplicates_stored_once() {
        let store = Arc::new(MemoryStore::new());
        let (source, publisher) = MemorySource::new(64);
        let service = NotifyService::builder(
            store.clone(),
            Arc::new(publisher.clone()),
            Authenticator::hs256(b"k"),
        )
        .build();
        let pipeline = Pipeline::new(service, Arc::new(source)).spawn();
        publisher
            .send_raw(Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        publisher
            .send_raw(Bytes::from_static(
                br#"{"id":"x","type":"t","title":"t","message":"m"}"#,
            ))
            .await
            .unwrap();
        for _ in 0..3 {
            publisher.send_raw(event("dup", "bo")).await.unwrap();
        }
        eventually("settled", || {
            publisher.acked() == 3 && publisher.dead_lettered() == 2
        })
        .await;
        assert_eq!(store.len(), 1, "the same event three times is stored once");
        pipeline.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn shutdown_drains_what_was_taken() {
        let store = Arc::new(MemoryStore::new());
        let (source, publisher) = MemorySource::new(1024);
        let service = NotifyService::builder(
            store.clone(),
            Arc::new(publisher.clone()),
            Authenticator::hs256(b"k"),
        )
        .build();
        let pipeline = Pipeline::new(service, Arc::new(source)).spawn();
        for i in 0..200 {
            publisher
                .send_raw(event(&format!("s{i}"), "cy"))
                .await
                .unwrap();
        }
        eventually("taken", || publisher.acked() > 0).await;
        pipeline.shutdown(Duration::from_secs(2)).await;
        assert_eq!(
            store.len() as u64,
            publisher.acked(),
            "everything acknowledged is stored"
        );
    }
}
