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
//! | `<topic>` (`NOTIFY_KAFKA_TOPIC`, default `notification-events`) | producers, [`KafkaSink`], [`EventPublisher`] | the shared group `<group>` ([`KafkaSource`]) |
//! | `<topic>.dlq` | [`KafkaSource`] dead letters, with headers `notify-error`, `notify-error-field`, `notify-source-topic`, `notify-source-partition`, `notify-source-offset` | operators |
//! | `<topic>.stored` | the storing pipeline, after each store write: contract JSON of each notification, keyed by audience (`user:alice`, `group:g`, `broadcast`), headers `notify-event-time` (record time, epoch ms) and `notify-event-id` | every instance's fan-out, group `<group>-fanout-<instance>` |
//!
//! [`Kafka::connect`] creates missing topics (`<topic>` and `.dlq` with the broker's default
//! partition count, `.stored` with as many partitions as `<topic>`).
//!
//! ## Roles
//!
//! - **Storing** (the shared group, one member per instance): the core
//!   [`Pipeline`] with `push_live: false` over a [`KafkaSource`]. Its store is the
//!   service's store wrapped in [`PublishingStore`], which produces what was stored to
//!   `<topic>.stored` before the write counts as done; offsets are committed only after that.
//!   See [`fanout`] for why this order is safe.
//! - **Fan-out** (one consumer per instance): reads `<topic>.stored` from the end as of
//!   start and hands each notification to the instance's [`notify_core::SessionHub`].
//!
//! ## Wiring
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use notify_core::{auth::Authenticator, MemoryStore, NotifyService};
//! use notify_kafka::{Kafka, KafkaConfig};
//!
//! # async fn demo() -> notify_core::Result<()> {
//! let config = KafkaConfig::from_env()?.expect("NOTIFY_KAFKA_BROKERS is set");
//! let kafka = Kafka::connect(config).await?; // checks the brokers, creates topics
//! let service = NotifyService::builder(
//!     Arc::new(MemoryStore::new()),
//!     kafka.sink(),                    // POST /api/events produces to Kafka
//!     Authenticator::hs256(b"secret"),
//! )
//! .event_source(kafka.source())        // /health/ready pings the brokers
//! .build();
//! let running = kafka.start(service.clone()).await?; // storing pipeline + fan-out
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

use notify_core::pipeline::{Pipeline, PipelineConfig, PipelineHandle};
use notify_core::{Error, EventSink, EventSource, NotifyService, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

pub mod config;
mod context;
pub mod fanout;
mod publisher;
mod sink;
mod source;

pub use config::KafkaConfig;
pub use context::TracingContext;
pub use fanout::PublishingStore;
pub use publisher::{EventPublisher, OutgoingEvent, Receipt};
pub use sink::{partition_key, KafkaSink};
pub use source::{
    KafkaSource, HEADER_ERROR, HEADER_ERROR_FIELD, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};

pub(crate) fn kafka_unavailable(component: &'static str, what: &str, e: KafkaError) -> Error {
    Error::Unavailable {
        component,
        message: format!("kafka: {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

pub(crate) fn producer(config: &KafkaConfig, role: &str) -> Result<FutureProducer<TracingContext>> {
    config
        .producer_config(role)
        .create_with_context(TracingContext)
        .map_err(|e| Error::Config {
            variable: "NOTIFY_KAFKA_*".into(),
            message: format!("cannot create a Kafka producer: {e}"),
        })
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

/// Creates `<topic>`, `<topic>.dlq` and `<topic>.stored` when missing. Fails (naming
/// `NOTIFY_KAFKA_BROKERS`) when the brokers do not answer within 10 s.
pub async fn ensure_topics(config: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<TracingContext> = config
        .admin_config()
        .create_with_context(TracingContext)
        .map_err(|e| Error::Config {
            variable: "NOTIFY_KAFKA_*".into(),
            message: format!("cannot create a Kafka admin client: {e}"),
        })?;
    let admin = Arc::new(admin);
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let dlq = config.dlq_topic();
    let stored = config.stored_topic();
    create_topic(&admin, &opts, config, &config.topic, -1).await?;
    let partitions = partition_count(&admin, &config.topic).await?;
    create_topic(&admin, &opts, config, &dlq, -1).await?;
    create_topic(&admin, &opts, config, &stored, partitions).await?;
    let stored_partitions = partition_count(&admin, &stored).await?;
    tracing::info!(
        topic = %config.topic, partitions, dlq = %dlq, stored = %stored, stored_partitions,
        "kafka topics ready"
    );
    Ok(())
}

async fn create_topic(
    admin: &Arc<AdminClient<TracingContext>>,
    opts: &AdminOptions,
    config: &KafkaConfig,
    name: &str,
    partitions: i32,
) -> Result<()> {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
    let unreachable = |e: &dyn std::fmt::Display| Error::Config {
        variable: config::ENV_BROKERS.into(),
        message: format!("cannot create topic {name} on {}: {e}", config.brokers),
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
    .map_err(|e| Error::Internal {
        message: "metadata fetch panicked".into(),
        source: Some(Box::new(e)),
    })?
    .map_err(|e| kafka_unavailable("event_source", "fetching metadata", e))?;
    match md.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(Error::Unavailable {
            component: "event_source",
            message: format!("kafka: topic {topic} does not exist"),
            source: None,
        }),
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
    /// Checks the configuration and the brokers, creates missing topics (unless
    /// `config.create_topics` is off) and the clients. Needs a Tokio runtime.
    pub async fn connect(config: KafkaConfig) -> Result<Kafka> {
        config.validate()?;
        if config.create_topics {
            ensure_topics(&config).await?;
        }
        let producer = producer(&config, "main")?;
        if !config.create_topics {
            source::ping_topic(&producer, &config.topic)
                .await
                .map_err(|e| Error::Config {
                    variable: config::ENV_BROKERS.into(),
                    message: format!("{}: {e}", config.brokers),
                })?;
        }
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

    /// Starts this instance's fan-out (pushes to `service`'s hub from now on) and the storing
    /// pipeline (writes to `service`'s store, then to `<topic>.stored`). Once per
    /// [`Kafka`]; a second call is an error.
    pub async fn start(&self, service: Arc<NotifyService>) -> Result<KafkaRunning> {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Internal {
                message: "Kafka::start called twice".into(),
                source: None,
            });
        }
        let config = &self.config;
        let producer = self.producer.clone();
        let sink = self.sink.clone();
        let source = self.source.clone();
        sink.set_rules(service.rules().clone());
        let store = Arc::new(PublishingStore::new(
            service.store().clone(),
            producer.clone(),
            config.stored_topic(),
            Some(source.state().clone()),
        ));
        // The storing pipeline's own view of the service: same rules and limits, the
        // publishing store, no live pushes.
        let storing = NotifyService::builder(store, sink.clone(), service.auth().clone())
            .rules(service.rules().clone())
            .config(service.config().clone())
            .build();
        let fanout = fanout::Fanout::start(config, service.hub().clone()).await?;
        source.subscribe()?;
        let pipeline = Pipeline::new(storing, source.clone())
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
        Ok(KafkaRunning {
            pipeline,
            fanout,
            source,
            producer,
            drain: config.drain_timeout,
        })
    }
}

/// The running Kafka side of one instance.
pub struct KafkaRunning {
    pipeline: PipelineHandle,
    fanout: fanout::Fanout,
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

    /// Stops taking events, stores and acknowledges what was taken (at most
    /// [`KafkaConfig::drain_timeout`]), commits, leaves both groups (at most 3 s and 2 s) and
    /// flushes the producer (at most 1 s).
    pub async fn shutdown(self) {
        self.pipeline.shutdown(self.drain).await;
        self.source.close().await;
        self.fanout.shutdown().await;
        flush(&self.producer, Duration::from_secs(1)).await;
        tracing::info!("kafka stopped");
    }
}
