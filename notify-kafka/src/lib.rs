#![doc = include_str!("../README.md")]
//! # notify-kafka
//!
//! Kafka for [`notify_core`]: consume business events with at-least-once commits, dead-letter
//! bad ones, store each event once per cluster and push it from every instance, and publish
//! events from Rust or from `POST /api/events`. Built on `rdkafka` (librdkafka).
//!
//! ## Topics
//!
//! | topic | written by | read by |
//! |---|---|---|
//! | `<topic>` (`NOTIFY_KAFKA_TOPIC`, default `notification-events`) | producers, [`KafkaSink`], [`EventPublisher`] | the shared group `<group>` ([`KafkaSource`], stores) and every instance's fan-out `<group>-fanout-<instance>` (pushes) |
//! | `<topic>.dlq` | [`KafkaSource`] dead letters, with headers `notify-error`, `notify-error-field`, `notify-source-topic`, `notify-source-partition`, `notify-source-offset` | operators |
//!
//! [`Kafka::start`] creates missing topics (with the broker's default partition count and
//! replication factor; the input topic with `message.timestamp.type=LogAppendTime`, so
//! record times, and therefore cursors, follow the order records were appended in, whatever
//! the producers' clocks or retries). It retries while the brokers are down.
//!
//! ## Roles
//!
//! - **Storing** (the shared group, one member per instance): the core
//!   [`Pipeline`] with `push_live: false` over a [`KafkaSource`], writing to the service's
//!   store; offsets are committed only after the write.
//! - **Fan-out** (one consumer per instance): reads the input topic from the end as of start
//!   and hands each event's notifications to the instance's [`notify_core::SessionHub`]
//!   at once, with the ids and cursors the store will hold. See [`fanout`] for why pushes
//!   never wait for the store, why resumes have no gap, and what that costs.
//!
//! ## Failures
//!
//! | what fails | pushes | storage | readiness |
//! |---|---|---|---|
//! | the store | continue on every instance at normal latency (one consumer hop) | pauses, retries with backoff (100 ms doubling to 5 s), commits nothing unstored, writes the backlog once when back | `store` DOWN |
//! | one broker (replication factor 3, `min.insync.replicas=2`) | pause on the partitions it led until a new leader is elected (seconds) | same | UP |
//! | every broker | pause; sessions stay open | pauses; resumes from the committed offsets | `event_source` DOWN |
//! | an instance | its clients reconnect elsewhere and resume with `since` | its partitions move to the others after `session.timeout.ms` (10 s) | — |
//! | Kafka down at start | the server starts; the fan-out and the storing consumer start when the brokers answer | | `event_source` DOWN until then |
//!
//! //! ## Wiring
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use notify_core::{auth::Authenticator, MemoryStore, NotifyService};
//! use notify_kafka::{Kafka, KafkaConfig};
//!
//! # async fn demo() -> notify_core::Result<()> {
//! let config = KafkaConfig::from_env()?.expect("NOTIFY_KAFKA_BROKERS is set");
//! let kafka = Kafka::connect(config).await?; // the clients; the brokers may be down
//! let service = NotifyService::builder(
//!     Arc::new(MemoryStore::new()),
//!     kafka.sink(),                    // POST /api/events produces to Kafka
//!     Authenticator::hs256(b"secret"),
//! )
//! .event_source(kafka.source())        // /health/ready pings the brokers
//! .build();
//! let running = kafka.start(service.clone()).await?; // storing pipeline + fan-out, in the background
//! // ... serve `service` ...
//! running.shutdown().await; // drains, commits, leaves the groups
//! # Ok(()) }
//! ```
//!
//! ## Configuration
//!
//! See [`KafkaConfig`] for the variables, the `NOTIFY_KAFKA_*` passthrough of librdkafka
//! properties and the low-latency defaults. Consumer lag is exported as the gauge
//! `notify_kafka_consumer_lag{topic,partition}` (from librdkafka statistics, every second).

use std::sync::Arc;
use std::time::Duration;

use notify_core::backoff::Backoff;
use notify_core::pipeline::{Pipeline, PipelineConfig, PipelineHandle};
use notify_core::{Error, EventSink, EventSource, NotifyService, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

pub mod config;
mod context;
mod error;
pub mod fanout;
mod publisher;
mod sink;
mod source;
mod trace_headers;

pub use config::KafkaConfig;
pub use context::TracingContext;
pub use fanout::record_seq;
pub use publisher::{EventPublisher, OutgoingEvent, Receipt};
pub use sink::{partition_key, KafkaSink};
pub use source::{
    KafkaSource, HEADER_ERROR, HEADER_ERROR_FIELD, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};

pub(crate) fn producer(config: &KafkaConfig, role: &str) -> Result<FutureProducer<TracingContext>> {
    config
        .producer_config(role)
        .create_with_context(TracingContext)
        .map_err(|e| error::client("a Kafka producer", e))
}

pub(crate) async fn flush(producer: &FutureProducer<TracingContext>, timeout: Duration) {
    let p = producer.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = p.flush(timeout) {
            tracing::warn!(error = %e, "kafka producer flush incomplete");
        }
    })
    .await;
}

/// Creates `<topic>` (record times set by the brokers) and `<topic>.dlq` when missing.
/// Fails with [`Error::Unavailable`] when the brokers do not answer within 10 s.
pub async fn ensure_topics(config: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<TracingContext> = config
        .admin_config()
        .create_with_context(TracingContext)
        .map_err(|e| error::client("a Kafka admin client", e))?;
    let admin = Arc::new(admin);
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let dlq = config.dlq_topic();
    create_topic(
        &admin,
        &opts,
        config,
        &config.topic,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await?;
    let partitions = partition_count(&admin, &config.topic).await?;
    create_topic(&admin, &opts, config, &dlq, &[]).await?;
    tracing::info!(topic = %config.topic, partitions, dlq = %dlq, "kafka topics ready");
    Ok(())
}

async fn create_topic(
    admin: &Arc<AdminClient<TracingContext>>,
    opts: &AdminOptions,
    config: &KafkaConfig,
    name: &str,
    settings: &[(&str, &str)],
) -> Result<()> {
    let mut topic = NewTopic::new(name, -1, TopicReplication::Fixed(-1));
    for (k, v) in settings {
        topic = topic.set(k, v);
    }
    let unreachable = |e: &dyn std::fmt::Display| {
        error::unusable(
            "event_source",
            format!("cannot create topic {name} on {}: {e}", config.brokers),
        )
    };
    match admin.create_topics([&topic], opts).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(_) => tracing::info!(topic = name, "kafka topic created"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((_, code)) => {
                        // No right to create topics: fine when the topic exists.
                        if partition_count(admin, name).await.is_err() {
                            return Err(unreachable(&code));
                        }
                        tracing::warn!(topic = name, error = %code, "could not create topic; it exists");
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(unreachable(&e)),
    }
}

/// The topic's partition count, waiting up to 10 s for a just created topic's metadata.
async fn partition_count(admin: &Arc<AdminClient<TracingContext>>, topic: &str) -> Result<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match partition_count_once(admin, topic).await {
            Ok(n) => return Ok(n),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn partition_count_once(
    admin: &Arc<AdminClient<TracingContext>>,
    topic: &str,
) -> Result<i32> {
    let a = admin.clone();
    let t = topic.to_string();
    let md = tokio::task::spawn_blocking(move || {
        a.inner().fetch_metadata(Some(&t), Duration::from_secs(10))
    })
    .await
    .map_err(|e| error::panicked("metadata fetch", e))?
    .map_err(|e| error::unavailable("event_source", "fetching metadata", e))?;
    match md.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(error::unusable(
            "event_source",
            format!("topic {topic} does not exist"),
        )),
    }
}

/// Kafka, connected: the sink and the health source to give the service builder, then
/// [`Kafka::start`] once the service is built.
pub struct Kafka {
    config: KafkaConfig,
    producer: FutureProducer<TracingContext>,
    sink: Arc<KafkaSink>,
    source: Arc<KafkaSource>,
    started: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("config", &self.config)
            .finish()
    }
}

impl Kafka {
    /// Checks the configuration and creates the clients. Needs a Tokio runtime. The brokers
    /// need not answer yet: [`Kafka::start`] waits for them in the background, and
    /// `/health/ready` reports `event_source` DOWN meanwhile. Errors are configuration
    /// errors naming the variable.
    pub async fn connect(config: KafkaConfig) -> Result<Kafka> {
        config.validate()?;
        let producer = producer(&config, "main")?;
        let sink = Arc::new(KafkaSink::with_producer(&config, producer.clone()));
        let source = Arc::new(KafkaSource::with_producer(&config, producer.clone())?);
        Ok(Kafka {
            config,
            producer,
            sink,
            source,
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The sink for `NotifyService::builder` (`POST /api/events` produces to the topic).
    pub fn sink(&self) -> Arc<dyn EventSink> {
        self.sink.clone()
    }

    /// The storing consumer, for `NotifyServiceBuilder::event_source` (`/health/ready`
    /// pings the brokers through it).
    pub fn source(&self) -> Arc<dyn EventSource> {
        self.source.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Starts this instance's fan-out (pushes to `service`'s hub) and the storing pipeline
    /// (writes to `service`'s store), in the background: first the missing topics are
    /// created (unless `config.create_topics` is off), retrying with capped backoff while
    /// the brokers are down. Once per [`Kafka`]; a second call is an error.
    pub async fn start(&self, service: Arc<NotifyService>) -> Result<KafkaRunning> {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::internal("Kafka::start called twice"));
        }
        let config = self.config.clone();
        let source = self.source.clone();
        self.sink.set_rules(service.rules().clone());
        // The storing pipeline's own view of the service: same store, rules and limits, no
        // live pushes (the fan-out pushes).
        let storing = NotifyService::builder(
            service.store().clone(),
            self.sink.clone(),
            service.auth().clone(),
        )
        .rules(service.rules().clone())
        .config(service.config().clone())
        // Its event spans continue the producers' traces like the fan-out's.
        .tracing(service.tracing().clone())
        .build();
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let (fanout_ready, _) = tokio::sync::watch::channel(false);
        let ready = fanout_ready.clone();
        let fanout_service = service.clone();
        let starter = tokio::spawn(async move {
            if config.create_topics {
                let mut backoff = Backoff::new("kafka (creating topics)");
                loop {
                    match ensure_topics(&config).await {
                        Ok(()) => {
                            backoff.succeeded();
                            break;
                        }
                        Err(e @ Error::Config { .. }) => {
                            tracing::error!(error = %e, "kafka cannot start");
                            return None;
                        }
                        Err(e) => {
                            let wait = backoff.failed(&e);
                            tokio::select! {
                                _ = stop_rx.wait_for(|s| *s) => return None,
                                _ = tokio::time::sleep(wait) => {}
                            }
                        }
                    }
                }
            }
            let fanout = match fanout::Fanout::spawn(&config, fanout_service, ready) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "kafka fan-out cannot start");
                    return None;
                }
            };
            if let Err(e) = source.subscribe() {
                tracing::error!(error = %e, "kafka storing consumer cannot subscribe");
            }
            let pipeline = Pipeline::new(storing, source)
                .with_config(PipelineConfig {
                    push_live: false,
                    ..config.pipeline.clone()
                })
                .spawn();
            tracing::info!(
                topic = %config.topic,
                group = %config.group,
                instance = %config.instance_id,
                "kafka storing pipeline and fan-out started"
            );
            Some((pipeline, fanout))
        });
        Ok(KafkaRunning {
            starter,
            stop,
            fanout_ready,
            source: self.source.clone(),
            producer: self.producer.clone(),
            drain: self.config.drain_timeout,
        })
    }
}

type Started = Option<(PipelineHandle, fanout::Fanout)>;

/// The running Kafka side of one instance.
pub struct KafkaRunning {
    starter: tokio::task::JoinHandle<Started>,
    stop: tokio::sync::watch::Sender<bool>,
    fanout_ready: tokio::sync::watch::Sender<bool>,
    source: Arc<KafkaSource>,
    producer: FutureProducer<TracingContext>,
    drain: Duration,
}

impl std::fmt::Debug for KafkaRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRunning")
            .field("source", &self.source)
            .finish()
    }
}

impl KafkaRunning {
    /// The storing consumer.
    pub fn source(&self) -> &Arc<KafkaSource> {
        &self.source
    }

    /// Waits until the storing consumer joined its group and got partitions (false on
    /// timeout; with more instances than partitions an instance may get none).
    pub async fn wait_assigned(&self, timeout: Duration) -> bool {
        self.source.wait_assigned(timeout).await
    }

    /// Waits until the fan-out has its partitions: events appended from then on are pushed
    /// by this instance (false on timeout).
    pub async fn wait_fanout(&self, timeout: Duration) -> bool {
        let mut rx = self.fanout_ready.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok();
        ready
    }

    /// Stops taking events, stores and acknowledges what was taken (at most
    /// [`KafkaConfig::drain_timeout`]), commits, leaves both groups (at most 3 s and 2 s) and
    /// flushes the producer (at most 1 s). Before the brokers ever answered, it just stops
    /// waiting for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let started = if self.starter.is_finished() {
            self.starter.await.ok().flatten()
        } else {
            self.starter.abort();
            None
        };
        if let Some((pipeline, fanout)) = started {
            pipeline.shutdown(self.drain).await;
            self.source.close().await;
            fanout.shutdown().await;
        } else {
            self.source.close().await;
        }
        flush(&self.producer, Duration::from_secs(1)).await;
        tracing::info!("kafka stopped");
    }
}
