//! [`PreferenceStore`]: where preferences, the contact remembered from each user's last
//! connection, and the schedule of due escalations live. A sibling of
//! [`crate::NotificationStore`]; a backend usually implements both.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::preferences::Preferences;
use crate::error::Result;
use crate::model::Notification;

/// What is remembered about a user from their last connection (token claims).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Contact {
    /// The e-mail claim (`NOTIFY_JWT_EMAIL_CLAIM`), if the token had one.
    pub email: Option<String>,
    /// The groups claim, so group notifications can be escalated to members.
    pub groups: Vec<String>,
}

/// A user's preferences and contact together.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The user id.
    pub user: String,
    /// Their preferences (defaults when never set).
    pub prefs: Preferences,
    /// Their contact (empty when they never connected).
    pub contact: Contact,
}

/// What a scheduled escalation sends.
#[derive(Debug, Clone, PartialEq)]
pub enum EscalationKind {
    /// One notification still unread `after_s` after it was stored.
    Unread(Box<Notification>),
    /// The daily digest of unread notifications.
    Digest,
}

/// One scheduled escalation: due at `due_at`, sent once per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// Unique key: [`Escalation::unread_id`] or [`Escalation::digest_id`]. Scheduling the
    /// same key again changes nothing (so a redelivered event is not escalated twice).
    pub id: String,
    /// Who it is for.
    pub user: String,
    /// What it sends.
    pub kind: EscalationKind,
    /// When it is due (deferred to the end of quiet hours when it falls inside them).
    pub due_at: DateTime<Utc>,
    /// Channels already attempted (each at most once).
    pub attempted: Vec<String>,
}

impl Escalation {
    /// The key of a notification's escalation to a user.
    pub fn unread_id(notification_id: &str, user: &str) -> String {
        format!("u:{notification_id}:{user}")
    }

    /// The key of a user's digest for one local date (`YYYY-MM-DD`).
    pub fn digest_id(user: &str, date: &str) -> String {
        format!("d:{user}:{date}")
    }
}

/// How the holder of a lease finished an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Sent (or cancelled: read, muted, disabled). It is kept as done so it is never
    /// scheduled again, until [`PreferenceStore::purge_escalations`] removes it.
    Done,
    /// Not yet (quiet hours): due again at this time, lease released.
    Defer(DateTime<Utc>),
}

/// Preferences, contacts and the escalation schedule.
///
/// # Contract
/// - `get` answers `None` for a user who never `put`; `put` replaces the preferences.
/// - `remember` replaces the user's contact; `profiles` answers the users with e-mail
///   escalation enabled among the given users, the members (by remembered groups) of the
///   given groups, or everybody when `everyone` is set. It must not scan all users unless
///   `everyone` is set (an index on the enabled users and their groups).
/// - `schedule` inserts escalations whose id is new and ignores the others (idempotent);
///   it answers how many were new.
/// - `claim_due` leases up to `limit` escalations that are due at `now`, not done, and not
///   leased by anyone else (a lease expires `lease` after it was taken), to `owner`. Two
///   concurrent callers (two instances) never get the same escalation while a lease runs;
///   finding them must not scan every notification or every escalation ever scheduled
///   (an index on the due time of pending ones).
/// - `attempt` records that `owner` is about to send on `channel`; it answers `true` only
///   if `owner` still holds the lease and `channel` was not attempted before. So each
///   (escalation, channel) is sent at most once, even across a crash or lease expiry.
/// - `finish` by the lease holder marks the escalation done or defers it (and releases the
///   lease); from anyone else it changes nothing.
/// - `set_digest` makes `digest` the user's only pending digest (`None`: no pending digest).
/// - `purge_escalations` removes done escalations due before `before`.
#[async_trait]
pub trait PreferenceStore: Send + Sync + 'static {
    /// A user's preferences, if ever set.
    async fn get(&self, user: &str) -> Result<Option<Preferences>>;
    /// The preferences of those of `users` who ever set them, in any order. The mute cache
    /// reloads many users at once with it (a broadcast finds thousands of stale entries);
    /// a store that can, answers in one round trip. The default asks [`Self::get`] per user.
    async fn get_many(&self, users: &[String]) -> Result<Vec<(String, Preferences)>> {
        let mut found = Vec::new();
        for user in users {
            if let Some(prefs) = self.get(user).await? {
                found.push((user.clone(), prefs));
            }
        }
        Ok(found)
    }
    /// Replaces a user's preferences.
    async fn put(&self, user: &str, prefs: &Preferences) -> Result<()>;
    /// Replaces the contact remembered from the user's last connection.
    async fn remember(&self, user: &str, contact: &Contact) -> Result<()>;
    /// A user's preferences (or defaults) and contact.
    async fn profile(&self, user: &str) -> Result<Profile>;
    /// Users with e-mail escalation enabled among `users`, members of `groups`, or all.
    async fn profiles(
        &self,
        users: &[String],
        groups: &[String],
        everyone: bool,
    ) -> Result<Vec<Profile>>;
    /// Schedules escalations idempotently; answers how many were new.
    async fn schedule(&self, escalations: &[Escalation]) -> Result<usize>;
    /// Leases due escalations to `owner`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Escalation>>;
    /// Records an attempt on a channel; `true` means: send it now.
    async fn attempt(&self, id: &str, owner: &str, channel: &str) -> Result<bool>;
    /// Finishes or defers a leased escalation.
    async fn finish(&self, id: &str, owner: &str, how: Finish) -> Result<()>;
    /// Replaces the user's pending digest.
    async fn set_digest(&self, user: &str, digest: Option<Escalation>) -> Result<()>;
    /// Removes done escalations due before `before`; answers how many.
    async fn purge_escalations(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Escalations not yet done (for metrics and tests).
    async fn pending_escalations(&self) -> Result<u64>;
}
