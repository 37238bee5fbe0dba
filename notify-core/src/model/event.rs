//! Events in: a producer's business event (contract section 1), parsed and validated.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Priority, Recipients};
use crate::error::{Error, Result};

/// Largest accepted event, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Longest accepted event id.
pub const MAX_ID_CHARS: usize = 128;
/// Longest accepted user or group name.
pub const MAX_NAME_CHARS: usize = 128;

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
    /// Where the notification leads (an absolute `http`/`https` URL or a `/` path), if given.
    pub link: Option<String>,
    /// The producer's `data` object, if given: passed to clients and readable by rule templates.
    pub data: Option<Map<String, Value>>,
    /// Explicit priority, if given.
    pub priority: Option<Priority>,
    /// When it happened, if the producer said.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The whole event as received, for rule templates (`{data.requester}`).
    pub raw: Value,
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
            link: match want_string(obj, "link")? {
                Some(link) => {
                    super::link::check_link(&link, None)?;
                    Some(link)
                }
                None => None,
            },
            data,
            priority,
            occurred_at,
            raw: value,
        })
    }
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
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
