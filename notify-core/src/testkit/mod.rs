//! Conformance suites (feature `testkit`): one for any [`crate::NotificationStore`], one for
//! any [`crate::PreferenceStore`], one for
//! any [`crate::EventSource`], and one for any HTTP transport (a scenario suite that drives
//! a running server through a real WebSocket STOMP client and REST).

pub mod prefs;
pub mod source;
pub mod store;
pub mod transport;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::{MemorySource, MemoryStore, NotifyService, Pipeline, PipelineHandle, ServiceConfig};

/// The HS256 secret of [`memory_service`].
pub const TEST_SECRET: &str = "testkit-secret";
/// The publish key of [`memory_service`].
pub const TEST_PUBLISH_KEY: &str = "testkit-key";

/// A service on the in-memory backends with its pipeline running, as the transport suite
/// expects it (secret [`TEST_SECRET`], publish key [`TEST_PUBLISH_KEY`], small session queue).
pub fn memory_service() -> (Arc<NotifyService>, PipelineHandle) {
    let (source, publisher) = MemorySource::new(4096);
    let source = Arc::new(source);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(TEST_SECRET.as_bytes()),
    )
    .event_source(source.clone())
    .config(ServiceConfig {
        publish_key: Some(TEST_PUBLISH_KEY.into()),
        session_queue: 32,
        // The slow-consumer test floods a client that is not reading; in a debug build on a
        // loaded machine the flood takes longer than the default 10 s, and the session's
        // ERROR must still be waiting in its socket when the client reads again.
        write_timeout: std::time::Duration::from_secs(60),
        ..ServiceConfig::default()
    })
    .build();
    let pipeline = Pipeline::new(service.clone(), source).spawn();
    (service, pipeline)
}
