//! The data model of the contract: events in, notifications out, audiences and cursors.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Largest accepted event, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest accepted event id.
pub const MAX_ID_CHARS: usize = 128;
/// Longest accepted user or group name.
pub const MAX_NAME_CHARS: usize = 128;

/// How urgent a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Informational.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Shown until dismissed by the widget.
    High,
}

impl Priority {
    /// Parses `low`, `normal` or `high`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Priority::Low),
            "normal" => Some(Priority::Normal),
            "high" => Some(Priority::High),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

/// Who an event is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipients {
    /// User ids (the JWT `sub`).
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names (the JWT groups claim).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Everybody.
    #[serde(default)]
    pub broadcast: bool,
}

impl Recipients {
    /// True when nobody would be told.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && !self.broadcast
    }

    /// The distinct audiences, in a stable order: users, then groups, then broadcast.
    pub fn audiences(&self) -> Vec<Audience> {
        let mut out: Vec<Audience> = Vec::new();
        for u in &self.users {
            let a = Audience::User(u.clone());
            if !out.contains(&a) {
                out.push(a);
            }
        }
        for g in &self.groups {
            let a = Audience::Group(g.clone());
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if self.broadcast {
            out.push(Audience::Broadcast);
        }
        out
    }

    /// The first recipient as a partition key, so one user's events stay in order.
    pub fn partition_key(&self) -> &str {
        self.users
            .first()
            .or(self.groups.first())
            .map(String::as_str)
            .unwrap_or("*broadcast")
    }
}

/// A business event as a producer sends it (contract section 1), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The producer's id; the idempotency key.
    pub id: String,
    /// Dotted type, e.g. `purchase.approved`.
    pub event_type: String,
    /// Explicit recipients, if the producer named any.
    pub recipients: Option<Recipients>,
    /// Title, unless a rule supplies it.
    pub title: Option<String>,
    /// Message, unless a rule supplies it.
    pub message: Option<String>,
    /// Optional link.
    pub link: Option<String>,
    /// Optional JSON object.
    pub data: Option<Map<String, Value>>,
    /// Explicit priority, if given.
    pub priority: Option<Priority>,
    /// When it happened, if the producer said.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The whole event as received, for rule templates (`{data.requester}`).
    pub raw: Value,
}

fn want_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid(
            field,
            format!("must be a string, got {}", json_kind(other)),
        )),
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            field,
            format!("longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn string_list(obj: &Map<String, Value>, parent: &str, field: &str) -> Result<Vec<String>> {
    let path = format!("{parent}.{field}");
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let item_path = format!("{path}[{i}]");
                match v {
                    Value::String(s) => {
                        check_name(&item_path, s)?;
                        Ok(s.clone())
                    }
                    other => Err(Error::invalid(
                        item_path,
                        format!("must be a string, got {}", json_kind(other)),
                    )),
                }
            })
            .collect(),
        Some(other) => Err(Error::invalid(
            path,
            format!("must be an array of strings, got {}", json_kind(other)),
        )),
    }
}

impl Recipients {
    /// Parses the `recipients` object, naming the field on error.
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| {
            Error::invalid(
                "recipients",
                format!("must be an object, got {}", json_kind(v)),
            )
        })?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "users" | "groups" | "broadcast") {
                return Err(Error::invalid(
                    format!("recipients.{key}"),
                    "unknown field (expected users, groups or broadcast)",
                ));
            }
        }
        let broadcast = match obj.get("broadcast") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::invalid(
                    "recipients.broadcast",
                    format!("must be a boolean, got {}", json_kind(other)),
                ))
            }
        };
        Ok(Recipients {
            users: string_list(obj, "recipients", "users")?,
            groups: string_list(obj, "recipients", "groups")?,
            broadcast,
        })
    }
}

impl Event {
    /// Parses and validates one event from JSON bytes (size limit, types, required fields).
    ///
    /// Title, message and recipients may be missing here: rules can supply them; the pipeline
    /// checks the final notification.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(Error::PayloadTooLarge {
                what: "event",
                limit: MAX_EVENT_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid_body(format!("invalid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Validates an already parsed JSON value (used for arrays posted over HTTP).
    pub fn from_value(value: Value) -> Result<Self> {
        let obj = value.as_object().ok_or_else(|| {
            Error::invalid_body(format!(
                "an event must be a JSON object, got {}",
                json_kind(&value)
            ))
        })?;
        let id = want_string(obj, "id")?.ok_or_else(|| Error::invalid("id", "is required"))?;
        if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
            return Err(Error::invalid(
                "id",
                format!("must be 1 to {MAX_ID_CHARS} characters"),
            ));
        }
        if id.chars().any(char::is_control) {
            return Err(Error::invalid("id", "must not contain control characters"));
        }
        let event_type =
            want_string(obj, "type")?.ok_or_else(|| Error::invalid("type", "is required"))?;
        if event_type.is_empty() || event_type.len() > 256 {
            return Err(Error::invalid("type", "must be 1 to 256 characters"));
        }
        let recipients = match obj.get("recipients") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Recipients::from_json(v)?),
        };
        let data = match obj.get("data") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                return Err(Error::invalid(
                    "data",
                    format!("must be an object, got {}", json_kind(other)),
                ))
            }
        };
        let priority = match want_string(obj, "priority")? {
            None => None,
            Some(p) => Some(Priority::parse(&p).ok_or_else(|| {
                Error::invalid(
                    "priority",
                    format!("unknown priority {p:?} (expected low, normal or high)"),
                )
            })?),
        };
        let occurred_at = match want_string(obj, "occurred_at")? {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| Error::invalid("occurred_at", format!("not RFC 3339: {e}")))?
                    .with_timezone(&Utc),
            ),
        };
        Ok(Event {
            id,
            event_type,
            recipients,
            title: want_string(obj, "title")?,
            message: want_string(obj, "message")?,
            link: want_string(obj, "link")?,
            data,
            priority,
            occurred_at,
            raw: value,
        })
    }
}

/// Who one stored notification is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// One user.
    User(String),
    /// Every member of a group (by the token's groups claim).
    Group(String),
    /// Everybody.
    Broadcast,
}

impl Audience {
    /// `user`, `group` or `broadcast`.
    pub fn kind(&self) -> &'static str {
        match self {
            Audience::User(_) => "user",
            Audience::Group(_) => "group",
            Audience::Broadcast => "broadcast",
        }
    }

    /// The user or group name; `None` for broadcast.
    pub fn id(&self) -> Option<&str> {
        match self {
            Audience::User(id) | Audience::Group(id) => Some(id),
            Audience::Broadcast => None,
        }
    }

    /// Builds an audience from its kind and id.
    pub fn from_parts(kind: &str, id: Option<String>) -> Option<Self> {
        match (kind, id) {
            ("user", Some(id)) => Some(Audience::User(id)),
            ("group", Some(id)) => Some(Audience::Group(id)),
            ("broadcast", _) => Some(Audience::Broadcast),
            _ => None,
        }
    }

    /// True when `user` (with `groups`) can see notifications for this audience.
    pub fn includes(&self, user: &str, groups: &[String]) -> bool {
        match self {
            Audience::User(u) => u == user,
            Audience::Group(g) => groups.iter().any(|x| x == g),
            Audience::Broadcast => true,
        }
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        if let Some(id) = self.id() {
            m.serialize_entry("id", id)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            kind: String,
            id: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        Audience::from_parts(&raw.kind, raw.id)
            .ok_or_else(|| serde::de::Error::custom("invalid audience"))
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Audience::User(u) => write!(f, "user:{u}"),
            Audience::Group(g) => write!(f, "group:{g}"),
            Audience::Broadcast => f.write_str("broadcast"),
        }
    }
}

/// The stable notification id for an (event id, audience) pair: `n_` + 26 base32 characters.
pub fn notification_id(event_id: &str, audience: &Audience) -> String {
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update([0]);
    h.update(audience.kind().as_bytes());
    h.update([0]);
    h.update(audience.id().unwrap_or("").as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(28);
    out.push_str("n_");
    base32_crockford(&digest[..16], &mut out);
    out
}

fn base32_crockford(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

/// A position in the notification order: a microsecond stamp plus the id as tie-break.
///
/// Clients see it as an opaque string (`cursor` field, `since`, `before`, SSE `id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Strictly increasing stamp within one writer (microseconds since the epoch).
    pub seq: i64,
    /// The notification id (empty for a time-only position).
    pub id: String,
}

impl Cursor {
    /// The position after everything created at or before `time`, at the millisecond
    /// precision `created_at` is shown with: `since=<a notification's created_at>` resumes
    /// after that notification's millisecond.
    pub fn after_time(time: DateTime<Utc>) -> Self {
        Cursor {
            seq: time.timestamp_millis() * 1000 + 999,
            // Sorts after every id (ids are `[0-9a-z_]`).
            id: "~".into(),
        }
    }

    /// Parses the opaque form; the error names `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self> {
        let bad = || Error::invalid(field, "not a valid cursor");
        let (seq, id) = s.split_once('-').ok_or_else(bad)?;
        if seq.is_empty() || seq.len() > 16 || id.len() > 64 {
            return Err(bad());
        }
        let seq = i64::from_str_radix(seq, 16).map_err(|_| bad())?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        Ok(Cursor {
            seq,
            id: id.to_string(),
        })
    }

    /// Parses a cursor, or an RFC 3339 time (`since` accepts both).
    pub fn parse_or_time(s: &str, field: &str) -> Result<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Cursor::after_time(t.with_timezone(&Utc)));
        }
        Cursor::parse(s, field).map_err(|_| Error::invalid(field, "not a cursor or RFC 3339 time"))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.seq, self.id)
    }
}

/// Hands out strictly increasing microsecond stamps, close to the wall clock.
#[derive(Debug, Default)]
pub struct SeqClock {
    last: AtomicI64,
}

impl SeqClock {
    /// A new clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next stamp: now in microseconds, or one more than the last stamp if that is later.
    pub fn next(&self) -> i64 {
        let now = Utc::now().timestamp_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }
}

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

struct NotificationView<'a> {
    n: &'a Notification,
    read: bool,
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

/// A notification on its way to sessions: serialized once, shared by every session.
#[derive(Debug)]
pub struct Push {
    /// The notification.
    pub notification: Notification,
    /// Its JSON (`read: false`), shared by every session that gets it.
    pub json: Bytes,
    /// When the event entered the system (record time or receipt), for the latency metric.
    pub event_time: DateTime<Utc>,
}

impl Push {
    /// Serializes `notification` once for all sessions.
    pub fn new(notification: Notification, event_time: DateTime<Utc>) -> Arc<Self> {
        let json = notification.to_json_bytes(false);
        Arc::new(Push {
            notification,
            json,
            event_time,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = notification_id("evt-1", &Audience::User("alice".into()));
        assert_eq!(a, notification_id("evt-1", &Audience::User("alice".into())));
        assert_ne!(
            a,
            notification_id("evt-1", &Audience::Group("alice".into()))
        );
        assert_ne!(a, notification_id("evt-2", &Audience::User("alice".into())));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("n_"));
    }

    #[test]
    fn cursor_round_trips_and_orders() {
        let c = Cursor {
            seq: 1_700_000_000_000_123,
            id: "n_abc".into(),
        };
        assert_eq!(Cursor::parse(&c.to_string(), "since").unwrap(), c);
        assert!(Cursor::parse("zz", "since").is_err());
        assert!(Cursor::parse("10-bad id", "since").is_err());
        let t = Cursor::parse_or_time("2026-11-25T10:00:00.123Z", "since").unwrap();
        let at = Cursor {
            seq: 1_795_600_800_123_456,
            id: "n_x".into(),
        };
        assert!(
            t > at,
            "a time cursor is after everything in that millisecond"
        );
    }

    #[test]
    fn event_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"type":"a"}"#, "id"),
            (r#"{"id":"","type":"a"}"#, "id"),
            (r#"{"id":"x"}"#, "type"),
            (r#"{"id":"x","type":"a","priority":"urgent"}"#, "priority"),
            (r#"{"id":"x","type":"a","title":5}"#, "title"),
            (r#"{"id":"x","type":"a","data":[1]}"#, "data"),
            (
                r#"{"id":"x","type":"a","recipients":{"users":"bob"}}"#,
                "recipients.users",
            ),
            (
                r#"{"id":"x","type":"a","recipients":{"users":[1]}}"#,
                "recipients.users[0]",
            ),
            (
                r#"{"id":"x","type":"a","recipients":{"broadcast":"yes"}}"#,
                "recipients.broadcast",
            ),
            (
                r#"{"id":"x","type":"a","occurred_at":"yesterday"}"#,
                "occurred_at",
            ),
        ];
        for (json, field) in cases {
            let err = Event::from_slice(json.as_bytes()).unwrap_err();
            assert_eq!(err.field(), Some(*field), "{json}: {err}");
        }
        assert!(Event::from_slice(b"{not json")
            .unwrap_err()
            .field()
            .is_none());
        let big = format!(
            r#"{{"id":"x","type":"a","message":"{}"}}"#,
            "a".repeat(70_000)
        );
        assert!(matches!(
            Event::from_slice(big.as_bytes()),
            Err(Error::PayloadTooLarge { .. })
        ));
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

    #[test]
    fn seq_clock_is_strictly_increasing() {
        let c = SeqClock::new();
        let mut last = 0;
        for _ in 0..10_000 {
            let n = c.next();
            assert!(n > last);
            last = n;
        }
    }
}
