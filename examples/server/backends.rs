//! Picks the backends from the configuration: in-memory by default; Kafka when
//! `NOTIFY_KAFKA_BROKERS` is set; MongoDB when `NOTIFY_MONGO_URI` is set.

use std::sync::Arc;
use std::time::Duration;

use notify_core::pipeline::spawn_retention_sweeper;
use notify_core::{
    Error, EventSink, EventSource, MemorySource, MemoryStore, NotificationStore, NotifyService,
    Pipeline, PipelineHandle, Result,
};

use crate::config::Config;

/// The chosen backends, before the service exists.
pub struct Backends {
    pub store: Arc<dyn NotificationStore>,
    pub sink: Arc<dyn EventSink>,
    pub source: Arc<dyn EventSource>,
    pub store_name: &'static str,
    pub source_name: &'static str,
}

async fn connect_mongo(uri: &str, config: &Config) -> Result<notify_mongo::MongoStore> {
    let options = notify_mongo::MongoOptions {
        retention: Some(config.service.retention),
        ..notify_mongo::MongoOptions::default()
    };
    notify_mongo::MongoStore::connect_with(uri, &config.mongo_db, options)
        .await
        .map_err(|e| match e {
            Error::Unavailable { message, .. } => Error::config(
                "NOTIFY_MONGO_URI",
                format!("cannot reach MongoDB: {message}"),
            ),
            other => other,
        })
}

/// What runs once the service exists.
pub struct Running {
    pipeline: PipelineHandle,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Backends {
    /// Connects the configured backends.
    pub async fn start(config: &Config) -> Result<Self> {
        if config.args_kafka_brokers.is_some() {
            return Err(Error::config(
                "NOTIFY_KAFKA_BROKERS",
                "Kafka support is not built into this server yet",
            ));
        }
        let (store, store_name): (Arc<dyn NotificationStore>, _) = match &config.mongo_uri {
            Some(uri) => (Arc::new(connect_mongo(uri, config).await?), "mongodb"),
            None => (Arc::new(MemoryStore::new()), "memory"),
        };
        let (source, publisher) = MemorySource::new(4096);
        Ok(Backends {
            store,
            sink: Arc::new(publisher),
            source: Arc::new(source),
            store_name,
            source_name: "memory",
        })
    }

    /// Starts the pipeline and the retention sweeper.
    pub fn run(&self, service: Arc<NotifyService>) -> Running {
        Running {
            pipeline: Pipeline::new(service.clone(), self.source.clone()).spawn(),
            sweeper: spawn_retention_sweeper(service, Duration::from_secs(3600)),
        }
    }
}

impl Running {
    /// Drains the pipeline (stores and acknowledges what it took).
    pub async fn shutdown(self, deadline: Duration) {
        self.sweeper.abort();
        self.pipeline.shutdown(deadline).await;
    }
}
