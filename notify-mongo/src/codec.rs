//! The document model: how a [`Notification`] becomes a BSON document and back.
//!
//! Only the fields the queries need are top-level BSON; everything else (title, message,
//! link, `data`, priority, times) travels as one JSON string in `body`. That keeps `$`-prefixed
//! and dotted keys in `data`, NUL characters and nanosecond times exact on MongoDB and on
//! FerretDB alike, and keeps the indexed part of each document small.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use notify_core::model::{Audience, Cursor, Notification, Priority};
use notify_core::store::Reader;
use notify_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest `body` accepted, in bytes: MongoDB's 16 MiB document limit less room for the
/// other fields. Anything larger is rejected as bad input before a write is attempted.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024 * 1024 - 64 * 1024;

/// Escapes a name for use as a top-level BSON string: backslashes and control characters
/// become `\\` and `\uXXXX`. Injective, and the identity for ordinary names, so stored
/// values stay readable; FerretDB (PostgreSQL jsonb) cannot store NUL in strings.
pub(crate) fn key(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || c.is_control()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The `aud` field: `u:<user>`, `g:<group>` or `b`.
pub(crate) fn aud(audience: &Audience) -> String {
    match audience {
        Audience::User(u) => format!("u:{}", key(u)),
        Audience::Group(g) => format!("g:{}", key(g)),
        Audience::Broadcast => "b".to_string(),
    }
}

/// Every `aud` value the reader can see: their own, their groups', broadcast.
pub(crate) fn reader_auds(reader: &Reader) -> Vec<Bson> {
    let mut v = Vec::with_capacity(reader.groups.len() + 2);
    v.push(Bson::String(aud(&Audience::User(reader.user.clone()))));
    for g in &reader.groups {
        let a = Bson::String(aud(&Audience::Group(g.clone())));
        if !v.contains(&a) {
            v.push(a);
        }
    }
    v.push(Bson::String("b".into()));
    v
}

/// The `pos` field: a string whose byte order is the cursor order `(seq, id)`.
///
/// 16 lowercase hex digits of the seq (offset so negative values order too), then the id.
/// One indexed string lets every page be a single range scan on `{aud: 1, pos: 1}`.
pub(crate) fn pos(seq: i64, id: &str) -> String {
    let biased = (seq as u64) ^ (1u64 << 63);
    format!("{biased:016x}{id}")
}

/// The `pos` of a cursor.
pub(crate) fn cursor_pos(c: &Cursor) -> String {
    pos(c.seq, &c.id)
}

/// The smallest `pos` with a seq strictly greater than `seq`.
pub(crate) fn pos_after_seq(seq: i64) -> String {
    pos(seq.saturating_add(1), "")
}

/// `created_at` as a BSON date (milliseconds; the TTL index and the sweeper use it).
pub(crate) fn ts_of_seq(seq: i64) -> BsonDateTime {
    BsonDateTime::from_millis(seq.div_euclid(1000))
}

#[derive(Serialize)]
struct BodyRef<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    notification_type: &'a str,
    audience: &'a Audience,
    title: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Map<String, Value>>,
    priority: Priority,
    occurred_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Body {
    event_id: String,
    #[serde(rename = "type")]
    notification_type: String,
    audience: Audience,
    title: String,
    message: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    priority: Priority,
    occurred_at: DateTime<Utc>,
}

/// The stored document of a notification.
///
/// `{_id, aud, pos, seq, ts, event_id, body}`: `_id` is the notification id (a hash of the
/// event id and audience, so redelivery hits the unique `_id` index), `body` is JSON.
pub(crate) fn to_document(n: &Notification) -> Result<Document> {
    let body = serde_json::to_string(&BodyRef {
        event_id: &n.event_id,
        notification_type: &n.notification_type,
        audience: &n.audience,
        title: &n.title,
        message: &n.message,
        link: n.link.as_deref(),
        data: n.data.as_ref(),
        priority: n.priority,
        occurred_at: n.occurred_at,
    })
    .map_err(|e| Error::internal_from(format!("cannot encode notification {}", n.id), e))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::invalid(
            "data",
            format!(
                "notification {} is {} bytes, more than the store accepts ({} bytes)",
                n.id,
                body.len(),
                MAX_BODY_BYTES
            ),
        ));
    }
    if n.id.is_empty() || n.id.contains('\0') {
        return Err(Error::invalid("id", "notification id is empty or has NUL"));
    }
    Ok(doc! {
        "_id": &n.id,
        "aud": aud(&n.audience),
        "pos": pos(n.seq, &n.id),
        "seq": n.seq,
        "ts": ts_of_seq(n.seq),
        "event_id": key(&n.event_id).as_ref(),
        "body": body,
    })
}

/// Reads an integer that may have been stored as any BSON number.
pub(crate) fn get_i64(d: &Document, field: &str) -> Result<i64> {
    match d.get(field) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        Some(Bson::Double(v)) if v.fract() == 0.0 => Ok(*v as i64),
        other => Err(Error::internal(format!(
            "stored document has a bad `{field}`: {other:?}"
        ))),
    }
}

/// Rebuilds a notification from its document (projection `_id`, `seq`, `body`).
pub(crate) fn from_document(d: &Document) -> Result<Notification> {
    let id = d
        .get_str("_id")
        .map_err(|e| Error::internal_from("stored notification has no string _id", e))?
        .to_string();
    let seq = get_i64(d, "seq")?;
    let body = d
        .get_str("body")
        .map_err(|e| Error::internal_from(format!("stored notification {id} has no body"), e))?;
    let b: Body = serde_json::from_str(body).map_err(|e| {
        Error::internal_from(format!("stored notification {id} has a corrupt body"), e)
    })?;
    Ok(Notification {
        id,
        event_id: b.event_id,
        notification_type: b.notification_type,
        audience: b.audience,
        title: b.title,
        message: b.message,
        link: b.link,
        data: b.data,
        priority: b.priority,
        occurred_at: b.occurred_at,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_core::model::notification_id;

    #[test]
    fn pos_orders_like_cursors() {
        let mut cursors = vec![
            Cursor {
                seq: -5,
                id: "n_b".into(),
            },
            Cursor {
                seq: 0,
                id: String::new(),
            },
            Cursor {
                seq: 0,
                id: "n_a".into(),
            },
            Cursor {
                seq: 1_795_000_000_000_000,
                id: "n_0".into(),
            },
            Cursor {
                seq: 1_795_000_000_000_000,
                id: "n_z".into(),
            },
            Cursor {
                seq: 1_795_000_000_000_001,
                id: String::new(),
            },
            Cursor {
                seq: i64::MAX,
                id: "x".into(),
            },
            Cursor {
                seq: i64::MIN,
                id: "x".into(),
            },
        ];
        let mut by_pos = cursors.clone();
        cursors.sort();
        by_pos.sort_by_key(cursor_pos);
        assert_eq!(cursors, by_pos);
        assert!(pos_after_seq(7) > pos(7, "n_zzzz"));
        assert!(pos_after_seq(7) <= pos(8, ""));
    }

    #[test]
    fn key_is_injective_and_nul_free() {
        assert_eq!(key("alice"), "alice");
        assert_eq!(key("a\0b"), "a\\u0000b");
        assert_ne!(key("a\\u0000b"), key("a\0b"));
        assert!(!key("x\u{1}\u{7f}\u{85}").contains(|c: char| c.is_control()));
    }

    #[test]
    fn document_round_trips() {
        let audience = Audience::Group("ad.$mins".into());
        let n = Notification {
            id: notification_id("e\0v", &audience),
            event_id: "e\0v".into(),
            notification_type: "t.x".into(),
            audience,
            title: "nul \0 here".into(),
            message: "m".into(),
            link: None,
            data: Some(
                serde_json::json!({"$set": {"a.b": 1}, "f": 2.5})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
            priority: Priority::Low,
            occurred_at: DateTime::parse_from_rfc3339("2026-11-25T10:00:00.123456789Z")
                .unwrap()
                .with_timezone(&Utc),
            seq: 1_795_000_000_000_123,
        };
        let d = to_document(&n).unwrap();
        assert_eq!(d.get_str("aud").unwrap(), "g:ad.$mins");
        assert_eq!(d.get_str("event_id").unwrap(), "e\\u0000v");
        assert_eq!(from_document(&d).unwrap(), n);
    }
}
