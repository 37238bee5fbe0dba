//! Shared helpers for the tests against a real server (`NOTIFY_TEST_MONGO`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use notify_mongo::{MongoOptions, MongoStore};

/// The server URI, or `None` (after printing why) when the tests should skip.
pub(crate) fn uri() -> Option<String> {
    match std::env::var("NOTIFY_TEST_MONGO") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            println!("skipping: NOTIFY_TEST_MONGO not set");
            None
        }
    }
}

/// Short timeouts so outages are detected quickly in tests.
pub(crate) fn options() -> MongoOptions {
    MongoOptions {
        server_selection_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(30),
        ..MongoOptions::default()
    }
}

/// A fresh database name: unique per process and call.
pub(crate) fn fresh_db(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("nt_{tag}_{}_{n}_{nanos:x}", std::process::id())
}

/// Logs to the test output (`RUST_LOG`, default `notify_mongo=info`).
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("notify_mongo=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Connects to a fresh, empty database.
pub(crate) async fn fresh_store(uri: &str, tag: &str) -> MongoStore {
    init_logs();
    MongoStore::connect_with(uri, &fresh_db(tag), options())
        .await
        .expect("connect to NOTIFY_TEST_MONGO")
}

/// Drops the store's database (best effort).
pub(crate) async fn drop(store: &MongoStore) {
    let _ = store.database().drop().await;
}

/// Number of documents in one collection.
pub(crate) async fn count(store: &MongoStore, collection: &str) -> u64 {
    store
        .database()
        .collection::<notify_mongo::mongodb::bson::Document>(collection)
        .count_documents(notify_mongo::mongodb::bson::doc! {})
        .await
        .expect("count documents")
}
