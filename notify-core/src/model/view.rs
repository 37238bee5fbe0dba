//! Notifications as one reader sees them: the contract's JSON (with that reader's `read`
//! state) and inbox entries.

use chrono::SecondsFormat;
use serde::Serialize;

use super::Notification;

/// Serializes a notification as the contract's JSON for one reader.
pub(super) struct NotificationView<'a> {
    pub(super) n: &'a Notification,
    pub(super) read: bool,
}

impl Serialize for NotificationView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let n = self.n;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &n.id)?;
        m.serialize_entry("event_id", &n.event_id)?;
        m.serialize_entry("type", &n.notification_type)?;
        m.serialize_entry("audience", &n.audience)?;
        m.serialize_entry("title", &n.title)?;
        m.serialize_entry("message", &n.message)?;
        if let Some(link) = &n.link {
            m.serialize_entry("link", link)?;
        }
        if let Some(data) = &n.data {
            m.serialize_entry("data", data)?;
        }
        m.serialize_entry("priority", &n.priority)?;
        m.serialize_entry(
            "created_at",
            &n.created_at().to_rfc3339_opts(SecondsFormat::Millis, true),
        )?;
        m.serialize_entry(
            "occurred_at",
            &n.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        )?;
        m.serialize_entry("read", &self.read)?;
        m.serialize_entry("cursor", &n.cursor().to_string())?;
        m.end()
    }
}

/// One inbox entry: a notification plus the reader's read state.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// The notification.
    pub notification: Notification,
    /// Whether the reader has read it.
    pub read: bool,
}
