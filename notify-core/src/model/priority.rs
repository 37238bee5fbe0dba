//! How urgent a notification is.

use serde::{Deserialize, Serialize};

/// How urgent a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Informational: the least urgent.
    Low,
    /// What an event without `priority` gets.
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
