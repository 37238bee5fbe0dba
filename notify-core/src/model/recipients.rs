//! Who an event is for: users, groups, broadcast, as the producer names them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{json_kind, Audience, MAX_NAME_CHARS};
use crate::error::{Error, Result};

/// Who an event is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipients {
    /// User ids (the JWT `sub`).
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names (the JWT groups claim).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether every user is a recipient (a broadcast).
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
