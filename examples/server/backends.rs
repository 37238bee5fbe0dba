//! Picks the backends from the configuration: in-memory by default; Kafka when
//! `NOTIFY_KAFKA_BROKERS` is set; MongoDB when `NOTIFY_MONGO_URI` is set.

use std::sync::Arc;
use std::time::Duration;

use notify_core::pipeline::spawn_retention_sweeper;
use notify_core::{
    EventSink, EventSource, MemoryPreferences, MemorySource, MemoryStore, NotificationStore,
    NotifyService, Pipeline, PipelineHandle, PreferenceStore, Result,
};
use notify_kafka::{Kafka, KafkaConfig, KafkaRunning};

use crate::config::Config;
use crate::deferred::{DeferredPreferences, DeferredStore};
use crate::readiness::spawn_readiness_log;

enum Events {
    Memory(Arc<MemorySource>),
    Kafka(Box<Kafka>),
}

/// The chosen backends, before the service exists.
pub(crate) struct Backends {
    pub store: Arc<dyn NotificationStore>,
    /// Preferences and the escalation schedule, beside the notifications.
    pub prefs: Arc<dyn PreferenceStore>,
    pub sink: Arc<dyn EventSink>,
    pub source: Arc<dyn EventSource>,
    pub store_name: &'static str,
    pub source_name: &'static str,
    events: Events,
}

/// What runs once the service exists.
pub(crate) struct Running {
    pipeline: Stage,
    sweeper: tokio::task::JoinHandle<()>,
    readiness: tokio::task::JoinHandle<()>,
}

enum Stage {
    Memory(PipelineHandle),
    Kafka(KafkaRunning),
}

/// The MongoDB store, connected in the background: a bad URI or database name stops
/// start-up (naming the variable); an unreachable server does not.
async fn connect_mongo(
    uri: &str,
    config: &Config,
) -> Result<(Arc<DeferredStore>, Arc<DeferredPreferences>)> {
    let options = notify_mongo::MongoOptions {
        retention: Some(config.service.retention),
        ..notify_mongo::MongoOptions::default()
    };
    let (uri, db) = (uri.to_string(), config.mongo_db.clone());
    let prefs = Arc::new(DeferredPreferences::default());
    let target = prefs.clone();
    let store = DeferredStore::connect("mongodb", Duration::from_secs(1), move || {
        let (uri, db, options) = (uri.clone(), db.clone(), options.clone());
        let target = target.clone();
        async move {
            let store = notify_mongo::MongoStore::connect_with(&uri, &db, options).await?;
            // The preferences share the store's database; both become usable together.
            target.set(Arc::new(notify_mongo::MongoPreferences::new(&store).await?));
            Ok(store)
        }
    })
    .await?;
    Ok((store, prefs))
}

/// The Kafka clients; the brokers may be down (the fan-out and the storing consumer start
/// when they answer). Only a misconfiguration is an error here.
async fn connect_kafka(brokers: &str, config: &Config) -> Result<Kafka> {
    let mut kafka = KafkaConfig::new(brokers)
        .topic(config.kafka_topic.clone())
        .group(config.kafka_group.clone());
    if let Some(id) = &config.instance_id {
        kafka = kafka.instance_id(id.clone());
    }
    let kafka = kafka.with_env_passthrough()?;
    kafka.validate()?;
    Kafka::connect(kafka).await
}

impl Backends {
    /// Connects the configured backends.
    pub(crate) async fn start(config: &Config) -> Result<Self> {
        let (store, prefs, store_name): (Arc<dyn NotificationStore>, Arc<dyn PreferenceStore>, _) =
            match &config.mongo_uri {
                Some(uri) => {
                    let (store, prefs) = connect_mongo(uri, config).await?;
                    (store, prefs, "mongodb")
                }
                None => (
                    Arc::new(MemoryStore::new()),
                    Arc::new(MemoryPreferences::new()),
                    "memory",
                ),
            };
        Ok(match &config.args_kafka_brokers {
            Some(brokers) => {
                let kafka = connect_kafka(brokers, config).await?;
                Backends {
                    store,
                    prefs,
                    sink: kafka.sink(),
                    source: kafka.source(),
                    store_name,
                    source_name: "kafka",
                    events: Events::Kafka(Box::new(kafka)),
                }
            }
            None => {
                let (source, publisher) = MemorySource::new(4096);
                let source = Arc::new(source);
                Backends {
                    store,
                    prefs,
                    sink: Arc::new(publisher),
                    source: source.clone(),
                    store_name,
                    source_name: "memory",
                    events: Events::Memory(source),
                }
            }
        })
    }

    /// Starts the pipeline (for Kafka: the storing pipeline and this instance's fan-out, as
    /// soon as the brokers answer), the retention sweeper and the readiness log.
    pub(crate) async fn run(&self, service: Arc<NotifyService>) -> Result<Running> {
        let pipeline = match &self.events {
            Events::Memory(source) => {
                Stage::Memory(Pipeline::new(service.clone(), source.clone()).spawn())
            }
            Events::Kafka(kafka) => Stage::Kafka(kafka.start(service.clone()).await?),
        };
        Ok(Running {
            pipeline,
            sweeper: spawn_retention_sweeper(service.clone(), Duration::from_secs(3600)),
            readiness: spawn_readiness_log(service, Duration::from_secs(2)),
        })
    }
}

impl Running {
    /// Drains the pipeline: stores and acknowledges (commits) what it took.
    pub(crate) async fn shutdown(self, deadline: Duration) {
        self.sweeper.abort();
        self.readiness.abort();
        match self.pipeline {
            Stage::Memory(p) => p.shutdown(deadline).await,
            Stage::Kafka(k) => {
                if tokio::time::timeout(deadline, k.shutdown()).await.is_err() {
                    tracing::warn!(
                        "kafka did not drain in time; uncommitted events will be redelivered"
                    );
                }
            }
        }
    }
}
