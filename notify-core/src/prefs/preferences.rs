//! [`Preferences`]: one user's settings (contract section 5a), parsed and validated from the
//! `PUT /api/preferences` body with errors that name the field.

use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::local_time::TimeOfDay;
use super::type_filter::MutedTypes;
use crate::error::{Error, Result};
use crate::model::{json_kind, Priority};

/// Most entries in `muted_types`.
pub const MAX_MUTED_TYPES: usize = 64;
/// Longest `after_s`: a week (an e-mail later than that is no longer an escalation).
pub const MAX_AFTER_S: u64 = 7 * 24 * 3600;

/// When no e-mail goes out (in the user's zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Start (inclusive).
    pub from: TimeOfDay,
    /// End (exclusive); before `from` means the period spans midnight.
    pub to: TimeOfDay,
}

/// E-mail escalation of unread notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailPrefs {
    /// Escalate at all.
    pub enabled: bool,
    /// Lowest priority that is escalated.
    pub min_priority: Priority,
    /// Seconds after storing that an unread notification is escalated.
    pub after_s: u64,
}

/// The daily digest of unread notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestPrefs {
    /// Send it at all.
    pub enabled: bool,
    /// Local time (in the user's zone) it is sent at.
    pub at: TimeOfDay,
}

/// One user's settings. [`Preferences::default`] is what `GET` answers before any `PUT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preferences {
    /// Types (exact names or prefix globs) never pushed, listed or counted for the user.
    pub muted_types: MutedTypes,
    /// The user's IANA time zone.
    pub tz: Tz,
    /// No e-mail in these hours; what falls due is sent when they end.
    pub quiet_hours: Option<QuietHours>,
    /// E-mail escalation.
    pub email: EmailPrefs,
    /// Daily digest.
    pub digest: DigestPrefs,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            muted_types: MutedTypes::default(),
            tz: Tz::UTC,
            quiet_hours: None,
            email: EmailPrefs {
                enabled: false,
                min_priority: Priority::High,
                after_s: 600,
            },
            digest: DigestPrefs {
                enabled: false,
                at: TimeOfDay::new(9, 0).expect("valid time"),
            },
        }
    }
}

/// The numeric rank of a priority, so "at or above" can be compared.
pub fn priority_rank(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
    }
}

impl Preferences {
    /// True when escalation by e-mail (and webhook) applies to a notification of this type
    /// and priority.
    pub fn escalates(&self, notification_type: &str, priority: Priority) -> bool {
        self.email.enabled
            && priority_rank(priority) >= priority_rank(self.email.min_priority)
            && !self.muted_types.matches(notification_type)
    }

    /// The contract's JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "muted_types": self.muted_types.patterns(),
            "tz": self.tz.name(),
            "quiet_hours": self.quiet_hours.map(|q| json!({
                "from": q.from.to_string(),
                "to": q.to.to_string(),
            })),
            "email": {
                "enabled": self.email.enabled,
                "min_priority": self.email.min_priority.as_str(),
                "after_s": self.email.after_s,
            },
            "digest": {
                "enabled": self.digest.enabled,
                "at": self.digest.at.to_string(),
            },
        })
    }

    /// Parses and validates a `PUT` body. Missing members take their defaults; unknown
    /// members and wrong types are errors naming the field (e.g. `quiet_hours.from`).
    pub fn from_json(value: &Value) -> Result<Self> {
        let obj = object(value, "preferences")?;
        known(
            obj,
            "",
            &["muted_types", "tz", "quiet_hours", "email", "digest"],
        )?;
        let mut prefs = Preferences::default();
        if let Some(v) = present(obj, "muted_types") {
            let Value::Array(items) = v else {
                return Err(Error::invalid(
                    "muted_types",
                    format!("must be an array of strings, got {}", json_kind(v)),
                ));
            };
            if items.len() > MAX_MUTED_TYPES {
                return Err(Error::invalid(
                    "muted_types",
                    format!("at most {MAX_MUTED_TYPES} entries"),
                ));
            }
            let mut patterns = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let field = format!("muted_types[{i}]");
                let s = item.as_str().ok_or_else(|| {
                    Error::invalid(&field, format!("must be a string, got {}", json_kind(item)))
                })?;
                patterns.push(s.to_string());
            }
            prefs.muted_types = MutedTypes::new(patterns)?;
        }
        if let Some(v) = present(obj, "tz") {
            let name = string(v, "tz")?;
            prefs.tz = name
                .parse::<Tz>()
                .map_err(|_| Error::invalid("tz", format!("{name:?} is not an IANA time zone")))?;
        }
        if let Some(v) = present(obj, "quiet_hours") {
            let q = object(v, "quiet_hours")?;
            known(q, "quiet_hours.", &["from", "to"])?;
            let from = time_field(q, "quiet_hours", "from")?;
            let to = time_field(q, "quiet_hours", "to")?;
            if from == to {
                return Err(Error::invalid(
                    "quiet_hours.to",
                    "must differ from quiet_hours.from",
                ));
            }
            prefs.quiet_hours = Some(QuietHours { from, to });
        }
        if let Some(v) = present(obj, "email") {
            let e = object(v, "email")?;
            known(e, "email.", &["enabled", "min_priority", "after_s"])?;
            if let Some(v) = present(e, "enabled") {
                prefs.email.enabled = boolean(v, "email.enabled")?;
            }
            if let Some(v) = present(e, "min_priority") {
                let p = string(v, "email.min_priority")?;
                prefs.email.min_priority = Priority::parse(p).ok_or_else(|| {
                    Error::invalid(
                        "email.min_priority",
                        format!("unknown priority {p:?} (expected low, normal or high)"),
                    )
                })?;
            }
            if let Some(v) = present(e, "after_s") {
                prefs.email.after_s =
                    v.as_u64().filter(|s| *s <= MAX_AFTER_S).ok_or_else(|| {
                        Error::invalid(
                            "email.after_s",
                            format!("must be an integer from 0 to {MAX_AFTER_S}"),
                        )
                    })?;
            }
        }
        if let Some(v) = present(obj, "digest") {
            let d = object(v, "digest")?;
            known(d, "digest.", &["enabled", "at"])?;
            if let Some(v) = present(d, "enabled") {
                prefs.digest.enabled = boolean(v, "digest.enabled")?;
            }
            if present(d, "at").is_some() {
                prefs.digest.at = time_field(d, "digest", "at")?;
            }
        }
        Ok(prefs)
    }
}

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        if field == "preferences" {
            Error::invalid_body(format!(
                "preferences must be a JSON object, got {}",
                json_kind(v)
            ))
        } else {
            Error::invalid(field, format!("must be an object, got {}", json_kind(v)))
        }
    })
}

fn known(obj: &Map<String, Value>, prefix: &str, allowed: &[&str]) -> Result<()> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(Error::invalid(
                format!("{prefix}{key}"),
                format!("unknown field (expected {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| Error::invalid(field, format!("must be a string, got {}", json_kind(v))))
}

fn boolean(v: &Value, field: &str) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| Error::invalid(field, format!("must be a boolean, got {}", json_kind(v))))
}

fn time_field(obj: &Map<String, Value>, parent: &str, key: &str) -> Result<TimeOfDay> {
    let field = format!("{parent}.{key}");
    let v = present(obj, key).ok_or_else(|| Error::invalid(&field, "is required"))?;
    let s = string(v, &field)?;
    TimeOfDay::parse(s).ok_or_else(|| Error::invalid(&field, format!("{s:?} is not HH:MM")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let d = Preferences::default();
        assert_eq!(Preferences::from_json(&d.to_json()).unwrap(), d);
        assert_eq!(Preferences::from_json(&json!({})).unwrap(), d);
    }

    #[test]
    fn contract_example_parses() {
        let v = json!({
            "muted_types": ["marketing.*"],
            "tz": "Asia/Seoul",
            "quiet_hours": { "from": "22:00", "to": "07:00" },
            "email": { "enabled": true, "min_priority": "high", "after_s": 600 },
            "digest": { "enabled": false, "at": "09:00" }
        });
        let p = Preferences::from_json(&v).unwrap();
        assert_eq!(p.to_json(), v);
        assert!(p.muted_types.matches("marketing.spring"));
        assert!(!p.escalates("marketing.x", Priority::High));
        assert!(p.escalates("purchase.approved", Priority::High));
        assert!(!p.escalates("purchase.approved", Priority::Normal));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"tz": "Mars/Olympus"}), "tz"),
            (json!({"tz": 9}), "tz"),
            (
                json!({"quiet_hours": {"from": "25:00", "to": "07:00"}}),
                "quiet_hours.from",
            ),
            (json!({"quiet_hours": {"from": "22:00"}}), "quiet_hours.to"),
            (
                json!({"quiet_hours": {"from": "22:00", "to": "22:00"}}),
                "quiet_hours.to",
            ),
            (json!({"quiet_hours": "night"}), "quiet_hours"),
            (
                json!({"email": {"min_priority": "urgent"}}),
                "email.min_priority",
            ),
            (json!({"email": {"after_s": -1}}), "email.after_s"),
            (json!({"email": {"enabled": "yes"}}), "email.enabled"),
            (json!({"email": {"bogus": 1}}), "email.bogus"),
            (json!({"digest": {"at": "9am"}}), "digest.at"),
            (json!({"muted_types": "marketing"}), "muted_types"),
            (json!({"muted_types": [1]}), "muted_types[0]"),
            (json!({"muted_types": ["a.*.b"]}), "muted_types[0]"),
            (json!({"muted_types": [""]}), "muted_types[0]"),
            (json!({"colour": "red"}), "colour"),
        ];
        for (v, field) in cases {
            let err = Preferences::from_json(&v).unwrap_err();
            assert_eq!(err.field(), Some(field), "{v}: {err}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let err = Preferences::from_json(&json!({ "muted_types": many })).unwrap_err();
        assert_eq!(err.field(), Some("muted_types"));
    }
}
