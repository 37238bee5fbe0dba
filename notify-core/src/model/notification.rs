//! Notifications out: one notification for one audience (contract section 2), as stored.

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::view::NotificationView;
use super::{Audience, Cursor, Priority};
use crate::error::{Error, Result};

/// One notification for one audience (contract section 2), as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Stable id derived from the event id and audience.
    pub id: String,
    /// The producer's event id.
    pub event_id: String,
    /// The event's dotted type (`purchase.approved`), copied from the event.
    pub notification_type: String,
    /// Who it is for.
    pub audience: Audience,
    /// The headline the widget shows, from the event or its rule.
    pub title: String,
    /// The body text under the title, from the event or its rule.
    pub message: String,
    /// Where clicking the notification leads: an absolute `http`/`https` URL or a `/` path.
    pub link: Option<String>,
    /// The producer's `data` object, passed through untouched for the client.
    pub data: Option<Map<String, Value>>,
    /// How urgent it is (`low`, `normal`, `high`); the widget keeps `high` ones on screen.
    pub priority: Priority,
    /// When the event happened (producer time, record time or receipt time), to the
    /// millisecond.
    pub occurred_at: DateTime<Utc>,
    /// Ordering stamp (microseconds); `created_at` is derived from it.
    pub seq: i64,
}

impl Notification {
    /// The notification of event `event_id` (of type `notification_type`) for `audience`,
    /// with its stable id ([`super::notification_id`]), stamped `seq`: normal priority, no
    /// link or data, and occurred at the stamp's millisecond. The `with_*` methods set the
    /// rest.
    pub fn new(
        event_id: impl Into<String>,
        notification_type: impl Into<String>,
        audience: Audience,
        title: impl Into<String>,
        message: impl Into<String>,
        seq: i64,
    ) -> Self {
        let event_id = event_id.into();
        Notification {
            id: super::notification_id(&event_id, &audience),
            event_id,
            notification_type: notification_type.into(),
            audience,
            title: title.into(),
            message: message.into(),
            link: None,
            data: None,
            priority: Priority::Normal,
            occurred_at: Utc
                .timestamp_millis_opt(seq.div_euclid(1000))
                .single()
                .unwrap_or_else(Utc::now),
            seq,
        }
    }

    /// The same notification with a link.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// The same notification with a `data` object.
    pub fn with_data(mut self, data: Map<String, Value>) -> Self {
        self.data = Some(data);
        self
    }

    /// The same notification with another priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The same notification, said to have happened at `at`.
    pub fn with_occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = at;
        self
    }

    /// Creation time, derived from the ordering stamp.
    pub fn created_at(&self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.seq)
            .single()
            .unwrap_or_else(Utc::now)
    }

    /// This notification's position.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            seq: self.seq,
            id: self.id.clone(),
        }
    }

    /// Reads the contract's JSON back (as written by [`Notification::to_json`]); the cursor
    /// restores the ordering stamp. Used by transports that carry stored notifications
    /// between instances (e.g. the Kafka fan-out topic).
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid_body("a notification must be a JSON object"))?;
        let text = |field: &str| -> Result<String> {
            obj.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Error::invalid(field, "missing or not a string"))
        };
        let audience: Audience =
            serde_json::from_value(obj.get("audience").cloned().unwrap_or(Value::Null))
                .map_err(|e| Error::invalid("audience", e))?;
        let cursor = Cursor::parse(&text("cursor")?, "cursor")?;
        let priority = Priority::parse(&text("priority")?)
            .ok_or_else(|| Error::invalid("priority", "unknown priority"))?;
        let occurred_at = match obj.get("occurred_at").and_then(Value::as_str) {
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map_err(|e| Error::invalid("occurred_at", e))?
                .with_timezone(&Utc),
            None => Utc
                .timestamp_micros(cursor.seq)
                .single()
                .unwrap_or_else(Utc::now),
        };
        Ok(Notification {
            id: text("id")?,
            event_id: text("event_id")?,
            notification_type: text("type")?,
            audience,
            title: text("title")?,
            message: text("message")?,
            link: obj.get("link").and_then(Value::as_str).map(str::to_string),
            data: obj.get("data").and_then(Value::as_object).cloned(),
            priority,
            occurred_at,
            seq: cursor.seq,
        })
    }

    /// The contract's JSON for one reader (`read` is that reader's state).
    pub fn to_json(&self, read: bool) -> Value {
        serde_json::to_value(NotificationView { n: self, read }).expect("notification serializes")
    }

    /// The contract's JSON as bytes, as pushed to sessions (`read: false`).
    pub fn to_json_bytes(&self, read: bool) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&NotificationView { n: self, read })
                .expect("notification serializes"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn new_derives_the_stable_id_and_the_time_from_the_stamp() {
        let audience = Audience::Group("g".into());
        let n = Notification::new(
            "evt-1",
            "t.x",
            audience.clone(),
            "T",
            "M",
            1_795_000_000_123_456,
        )
        .with_link("/x")
        .with_priority(Priority::High);
        assert_eq!(n.id, super::super::notification_id("evt-1", &audience));
        assert_eq!(n.occurred_at.timestamp_millis(), 1_795_000_000_123);
        assert_eq!(
            (n.link.as_deref(), n.priority),
            (Some("/x"), Priority::High)
        );
        assert_eq!(n.data, None);
        // Same event and audience, same id: the idempotency the store relies on.
        assert_eq!(
            Notification::new("evt-1", "t.x", audience, "", "", 0).id,
            n.id
        );
    }

    #[test]
    fn notification_json_matches_contract() {
        let n = Notification {
            id: "n_1".into(),
            event_id: "evt-42".into(),
            notification_type: "purchase.approved".into(),
            audience: Audience::User("alice".into()),
            title: "t".into(),
            message: "m".into(),
            link: Some("/p/42".into()),
            data: Some(serde_json::from_str(r#"{"purchaseId":42}"#).unwrap()),
            priority: Priority::Normal,
            occurred_at: Utc.timestamp_millis_opt(1_764_064_800_100).unwrap(),
            seq: 1_764_064_800_123_000,
        };
        let v = n.to_json(false);
        assert_eq!(
            v["audience"],
            serde_json::json!({"kind":"user","id":"alice"})
        );
        assert_eq!(v["type"], "purchase.approved");
        assert_eq!(v["created_at"], "2025-11-25T10:00:00.123Z");
        assert_eq!(v["read"], false);
        assert_eq!(v["data"]["purchaseId"], 42);
        assert_eq!(Notification::from_json(&v).unwrap(), n);
        let b = Notification {
            audience: Audience::Broadcast,
            ..n
        };
        assert_eq!(
            b.to_json(true)["audience"],
            serde_json::json!({"kind":"broadcast"})
        );
    }
}
