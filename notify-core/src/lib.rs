//! # notify-core
//!
//! Real-time web notifications, without a backend or a web framework: business events come
//! in through an [`EventSource`], [`rules`] turn them into [`Notification`]s, the
//! [`pipeline`] pushes them to connected sessions through a [`SessionHub`] and stores them
//! in a [`NotificationStore`], and acknowledges each event only after it is stored.
//! Browsers connect over STOMP 1.2 ([`stomp`]) or SSE ([`sse`]) and read their inbox over
//! the REST API ([`api`], [`inbox`]).
//!
//! Adapters plug in around it: `notify-axum` / `notify-warp` serve HTTP, `notify-kafka`
//! consumes from Kafka, `notify-mongo` stores in MongoDB. The in-memory implementations here
//! ([`MemorySource`], [`MemoryStore`], [`LocalHub`]) are the embedded defaults.
//!
//! ```no_run
//! use std::sync::Arc;
//! use notify_core::{auth::Authenticator, MemorySource, MemoryStore, NotifyService, Pipeline};
//!
//! # async fn demo() {
//! let (source, publisher) = MemorySource::new(1024);
//! let source = Arc::new(source);
//! let service = NotifyService::builder(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(publisher),
//!     Authenticator::hs256(b"secret"),
//! )
//! .event_source(source.clone())
//! .build();
//! let pipeline = Pipeline::new(service.clone(), source).spawn();
//! // Serve `service` with notify-axum or notify-warp ...
//! # pipeline.shutdown(std::time::Duration::from_secs(5)).await;
//! # }
//! ```

pub mod adapter;
pub mod api;
pub mod auth;
pub mod error;
pub mod hub;
pub mod inbox;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod rules;
pub mod service;
pub mod source;
pub mod sse;
pub mod stomp;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(test)]
mod testkit_support;

pub use error::{BoxError, Error, Result};
pub use hub::{LocalHub, SessionHub};
pub use model::{Audience, Cursor, Event, InboxItem, Notification, Priority, Push, Recipients};
pub use pipeline::{Pipeline, PipelineHandle};
pub use rules::Rules;
pub use service::{NotifyService, ServiceConfig};
pub use source::{Acknowledge, Delivery, EventSink, EventSource, MemoryPublisher, MemorySource};
pub use store::{
    InsertOutcome, ListQuery, MemoryStore, NotificationStore, NotificationStoreExt, Page, Reader,
};
