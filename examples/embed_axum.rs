//! Mounting the notification routes inside an existing axum application, next to its own
//! routes, with the in-memory backends.
//!
//! ```text
//! cargo run --example embed_axum
//! curl http://127.0.0.1:3000/            # the host application's own route
//! curl http://127.0.0.1:3000/health/live # the notification service's routes
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use notify_core::auth::Authenticator;
use notify_core::{MemorySource, MemoryStore, NotifyService, Pipeline, ServiceConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();
    let (source, publisher) = MemorySource::new(1024);
    let source = Arc::new(source);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(b"change-me"),
    )
    .event_source(source.clone())
    .config(ServiceConfig {
        publish_key: Some("change-me-too".into()),
        ..ServiceConfig::default()
    })
    .build();
    let pipeline = Pipeline::new(service.clone(), source).spawn();

    let app = Router::new()
        .route("/", get(|| async { "the host application" }))
        .route("/orders", get(|| async { "[]" }))
        .merge(notify_axum::router(service.clone()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app)
        .with_graceful_shutdown(notify_axum::shutdown_on_signal(service))
        .await?;
    pipeline.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
