//! [`Channel`]: delivering escalations outside the browser.

use async_trait::async_trait;
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::error::Result;
use crate::model::Notification;

/// Why something is escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A notification stayed unread `after_s` seconds.
    Unread,
    /// The daily digest.
    Digest,
}

impl Reason {
    /// `unread` or `digest`, as in the webhook body.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unread => "unread",
            Reason::Digest => "digest",
        }
    }
}

/// One escalation to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The user it is for.
    pub user: String,
    /// Their e-mail address from their last connection, if any.
    pub email: Option<String>,
    /// Why the user is told: an unread notification past its delay, or the daily digest.
    pub reason: Reason,
    /// What: one notification (unread) or the unread ones (digest), newest first.
    pub notifications: Vec<Notification>,
    /// The user's zone, for times shown in messages.
    pub tz: Tz,
    /// The escalation's key: stable across retries, usable for de-duplication downstream.
    pub key: String,
}

impl Delivery {
    /// The contract's webhook body: `{"user","reason","notifications":[…]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.user,
            "reason": self.reason.as_str(),
            "notifications": self
                .notifications
                .iter()
                .map(|n| n.to_json(false))
                .collect::<Vec<_>>(),
        })
    }
}

/// A way to reach a user outside the browser.
///
/// `send` is called at most once per escalation (the worker records the attempt first), so
/// an implementation retries transient failures itself and keeps a record of what it could
/// not deliver. An `Err` is logged and counted, never retried by the worker.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// A short stable name (`email`, `webhook`): the attempt record's key.
    fn name(&self) -> &str;
    /// Delivers one escalation.
    async fn send(&self, delivery: &Delivery) -> Result<()>;
}
