//! [`EventPublisher`]: a small typed API for Rust producers (e.g. the purchasing system).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use notify_core::{Event, Priority, Recipients, Result};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::KafkaConfig;
use crate::context::TracingContext;
use crate::sink::partition_key;
use crate::{error, producer};

/// An event to publish, built with setters and serialized to the contract's JSON
/// (section 1). [`OutgoingEvent::validate`] checks it exactly as the service will.
///
/// ```
/// use notify_kafka::OutgoingEvent;
/// use notify_core::Priority;
///
/// let event = OutgoingEvent::new("evt-42", "purchase.approved")
///     .to_user("alice")
///     .to_group("purchasing-admins")
///     .title("Purchase approved")
///     .message("Your request #42 was approved")
///     .link("/purchases/42")
///     .data_field("purchaseId", 42)
///     .priority(Priority::High);
/// let parsed = event.validate().unwrap();
/// assert_eq!(parsed.id, "evt-42");
/// ```
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutgoingEvent {
    /// The event id (idempotency key), 1 to 128 characters.
    pub id: String,
    /// Dotted event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Recipients; may be left empty when a rule supplies them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Recipients>,
    /// Title (required unless a rule supplies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Message (required unless a rule supplies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the notification leads (an absolute `http`/`https` URL or a `/` path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Data object (rule templates read it as `{data.field}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Priority (service default: normal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// When it happened (service default: the record time).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_millis"
    )]
    pub occurred_at: Option<DateTime<Utc>>,
}

fn rfc3339_millis<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => s.serialize_none(),
    }
}

impl OutgoingEvent {
    /// An event with an id and a type.
    pub fn new(id: impl Into<String>, event_type: impl Into<String>) -> Self {
        OutgoingEvent {
            id: id.into(),
            event_type: event_type.into(),
            recipients: None,
            title: None,
            message: None,
            link: None,
            data: None,
            priority: None,
            occurred_at: None,
        }
    }

    fn recipients_mut(&mut self) -> &mut Recipients {
        self.recipients.get_or_insert_with(Recipients::default)
    }

    /// Adds a user recipient.
    pub fn to_user(mut self, user: impl Into<String>) -> Self {
        self.recipients_mut().users.push(user.into());
        self
    }

    /// Adds a group recipient.
    pub fn to_group(mut self, group: impl Into<String>) -> Self {
        self.recipients_mut().groups.push(group.into());
        self
    }

    /// Addresses everybody.
    pub fn broadcast(mut self) -> Self {
        self.recipients_mut().broadcast = true;
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the link.
    pub fn link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// Replaces the data object.
    pub fn data(mut self, data: Map<String, Value>) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets one field of the data object.
    pub fn data_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets when it happened.
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = Some(at);
        self
    }

    /// The contract JSON.
    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("an event serializes"))
    }

    /// Validates the JSON exactly as the service does on receipt; the error names the field.
    pub fn validate(&self) -> Result<Event> {
        Event::from_slice(&self.to_json())
    }
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Partition of the input topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
}

/// Publishes validated events to the input topic (idempotent producer, `acks=all`, keyed like
/// `POST /api/events`). Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    producer: FutureProducer<TracingContext>,
    topic: String,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("topic", &self.topic)
            .finish()
    }
}

impl EventPublisher {
    /// A publisher for `config.topic` (only `brokers`, `topic` and the producer settings
    /// matter). Needs a Tokio runtime.
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        Ok(EventPublisher {
            producer: producer(config, "publisher")?,
            topic: config.topic.clone(),
        })
    }

    /// Validates and publishes one event; returns once the brokers acknowledged it.
    pub async fn publish(&self, event: &OutgoingEvent) -> Result<Receipt> {
        let json = event.to_json();
        let parsed = Event::from_slice(&json)?;
        let key = partition_key(&parsed, None);
        let record = FutureRecord::to(&self.topic)
            .key(key.as_bytes())
            .payload(&json[..]);
        match self.producer.send(record, Duration::from_secs(5)).await {
            Ok(d) => Ok(Receipt {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(error::unavailable("event_sink", "producing", e)),
        }
    }

    /// Validates every event first (nothing is sent if one is invalid), then publishes them
    /// in order and waits for all acknowledgements.
    pub async fn publish_all(&self, events: &[OutgoingEvent]) -> Result<Vec<Receipt>> {
        let mut prepared = Vec::with_capacity(events.len());
        for e in events {
            let json = e.to_json();
            let parsed = Event::from_slice(&json)?;
            prepared.push((partition_key(&parsed, None), json));
        }
        let mut pending = Vec::with_capacity(prepared.len());
        for (key, json) in &prepared {
            let record = FutureRecord::to(&self.topic)
                .key(key.as_bytes())
                .payload(&json[..]);
            match self.producer.send_result(record) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(error::unavailable("event_sink", "producing", e)),
            }
        }
        let mut receipts = Vec::with_capacity(pending.len());
        for f in pending {
            match f.await {
                Ok(Ok(d)) => receipts.push(Receipt {
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => return Err(error::unavailable("event_sink", "producing", e)),
                Err(_) => return Err(error::producer_dropped("event_sink")),
            }
        }
        Ok(receipts)
    }

    /// Waits until everything queued is delivered, at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        crate::flush(&self.producer, timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_contract_json() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = OutgoingEvent::new("evt-42", "purchase.approved")
            .to_user("alice")
            .to_group("purchasing-admins")
            .title("Purchase approved")
            .message("Your request #42 was approved")
            .link("/purchases/42")
            .data_field("purchaseId", 42)
            .priority(Priority::Normal)
            .occurred_at(at);
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "evt-42",
                "type": "purchase.approved",
                "recipients": { "users": ["alice"], "groups": ["purchasing-admins"], "broadcast": false },
                "title": "Purchase approved",
                "message": "Your request #42 was approved",
                "link": "/purchases/42",
                "data": { "purchaseId": 42 },
                "priority": "normal",
                "occurred_at": "2026-11-25T10:00:00.000Z"
            })
        );
        let parsed = e.validate().unwrap();
        assert_eq!(parsed.occurred_at, Some(at));
        assert_eq!(partition_key(&parsed, None), "alice");
    }

    #[test]
    fn invalid_events_name_the_field() {
        let err = OutgoingEvent::new("", "x").validate().unwrap_err();
        assert!(err.to_string().starts_with("id:"), "{err}");
        let err = OutgoingEvent::new("e", "x")
            .to_user("")
            .validate()
            .unwrap_err();
        assert!(err.to_string().starts_with("recipients.users[0]:"), "{err}");
        let bare = OutgoingEvent::new("e", "purchase.requested").data_field("approver", "bob");
        let parsed = bare.validate().unwrap();
        assert_eq!(partition_key(&parsed, None), "purchase.requested");
    }
}
