//! Who one stored notification is addressed to: a user, a group or everybody.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who one stored notification is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// One user.
    User(String),
    /// Every member of a group (by the token's groups claim).
    Group(String),
    /// Every user, connected or not (stored once, read state kept per user).
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
