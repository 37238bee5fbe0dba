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
    /// The event type.
    pub notification_type: String,
    /// Who it is for.
    pub audience: Audience,
    /// Title.
    pub title: String,
    /// Message.
    pub message: String,
    /// Optional link.
    pub link: Option<String>,
    /// Optional data object.
    pub data: Option<Map<String, Value>>,
    /// Priority.
    pub priority: Priority,
    /// When the event happened (producer time, record time or receipt time), to the
    /// millisecond.
    pub occurred_at: DateTime<Utc>,
    /// Ordering stamp (microseconds); `created_at` is derived from it.
    pub seq: i64,
}

impl Notification {
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
