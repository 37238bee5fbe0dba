#![doc = include_str!("../README.md")]
// docs.rs builds with `--cfg docsrs` on nightly: feature-gated items get their badge.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
pub mod api;
pub mod auth;
pub mod backoff;
pub mod error;
pub mod escalation;
pub mod hub;
pub mod inbox;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod pending;
pub mod pipeline;
pub mod prefs;
pub mod registration;
pub mod rules;
#[cfg(feature = "server")]
pub mod serve;
pub mod service;
pub mod source;
pub mod sse;
pub mod stomp;
pub mod store;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
#[cfg(test)]
mod testkit_support;
pub mod trace;

pub use error::{BoxError, Error, Result};
pub use hub::{LocalHub, SessionHub};
pub use model::{Audience, Cursor, Event, InboxItem, Notification, Priority, Push, Recipients};
pub use pipeline::{Pipeline, PipelineHandle};
pub use prefs::{MemoryPreferences, PreferenceStore, Preferences};
pub use rules::Rules;
pub use service::{NotifyService, ServiceConfig};
pub use source::{Acknowledge, Delivery, EventSink, EventSource, MemoryPublisher, MemorySource};
pub use store::{
    InsertOutcome, ListQuery, MemoryStore, NotificationStore, NotificationStoreExt, Page, Reader,
};
pub use trace::TraceContext;
