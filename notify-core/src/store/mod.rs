//! Where notifications live: the [`NotificationStore`] trait and its in-memory implementation.

mod memory;

pub use memory::MemoryStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{Cursor, InboxItem, Notification};

/// The person reading an inbox: a user id and the groups from their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reader {
    /// The user id (JWT `sub`).
    pub user: String,
    /// The user's groups (JWT groups claim).
    pub groups: Vec<String>,
}

impl Reader {
    /// The reader `user`, member of `groups`.
    pub fn new(user: impl Into<String>, groups: Vec<String>) -> Self {
        Reader {
            user: user.into(),
            groups,
        }
    }
}

/// Which slice of an inbox to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Newest first, strictly before the cursor (or from the newest when `None`).
    NewestBefore(Option<Cursor>),
    /// Oldest first, strictly after the cursor (catch-up / resume).
    OldestAfter(Cursor),
}

/// An inbox query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which slice of the inbox: the newest first (optionally before a cursor), or a
    /// catch-up after a point.
    pub page: Page,
    /// At most this many items (callers keep it within 1..=200).
    pub limit: usize,
    /// Only items the reader has not read.
    pub unread_only: bool,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Notifications that were new.
    pub inserted: usize,
    /// Notifications that were already stored (redelivery); not an error.
    pub duplicates: usize,
}

/// Durable notification storage.
///
/// # Contract
/// - `insert` is idempotent per notification id (which is derived from the event id and the
///   audience): inserting the same notification again changes nothing and counts as a
///   duplicate, never an error. A returned `Ok` means the batch is durably stored; the
///   pipeline acknowledges events only after that.
/// - A group or broadcast notification is stored once; read state is per reader and kept
///   beside it, so one reader marking it read changes nobody else's state or count.
/// - `list` with [`Page::NewestBefore`] returns the reader's visible notifications (personal,
///   their groups, broadcasts) ordered by cursor descending; [`Page::OldestAfter`] ascending.
///   Cursors compare as `(seq, id)`.
/// - `unread_count` is exact across personal, group and broadcast notifications.
/// - `mark_read` returns the ids (of those given) that exist and are visible to the reader;
///   marking twice is harmless. `mark_all_read` marks everything visible now, in one write.
/// - `purge` removes notifications created before the given time and returns how many.
/// - `ping` answers quickly whether the store is usable (for `/health/ready`).
/// - Transient failures are [`crate::Error::Unavailable`], so callers can retry.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Stores a batch idempotently.
    async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome>;
    /// Reads a page of the reader's inbox.
    async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>>;
    /// Counts the reader's unread notifications.
    async fn unread_count(&self, reader: &Reader) -> Result<u64>;
    /// Marks the given notifications read for the reader; returns the ids that were visible.
    async fn mark_read(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>>;
    /// Marks everything visible to the reader read.
    async fn mark_all_read(&self, reader: &Reader) -> Result<()>;
    /// Deletes notifications created before `before`; returns how many.
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;
}

/// Conveniences over any [`NotificationStore`].
#[async_trait]
pub trait NotificationStoreExt: NotificationStore {
    /// Stores one notification.
    async fn insert_one(&self, notification: &Notification) -> Result<InsertOutcome> {
        self.insert(std::slice::from_ref(notification)).await
    }

    /// Every stored notification after `since`, oldest first, in pages of 200.
    async fn catch_up(&self, reader: &Reader, since: &Cursor) -> Result<Vec<InboxItem>> {
        Ok(self.catch_up_at_most(reader, since, usize::MAX).await?.0)
    }

    /// At most `max` stored notifications after `since`, oldest first, in pages of 200,
    /// and whether more were left out.
    async fn catch_up_at_most(
        &self,
        reader: &Reader,
        since: &Cursor,
        max: usize,
    ) -> Result<(Vec<InboxItem>, bool)> {
        let mut out: Vec<InboxItem> = Vec::new();
        let mut cursor = since.clone();
        loop {
            // One more than wanted tells whether anything is left out.
            let want = max.saturating_add(1).saturating_sub(out.len()).min(200);
            let page = self
                .list(
                    reader,
                    &ListQuery {
                        page: Page::OldestAfter(cursor.clone()),
                        limit: want,
                        unread_only: false,
                    },
                )
                .await?;
            let full = page.len() == want;
            if let Some(last) = page.last() {
                cursor = last.notification.cursor();
            }
            out.extend(page);
            if out.len() > max {
                out.truncate(max);
                return Ok((out, true));
            }
            if !full {
                return Ok((out, false));
            }
        }
    }
}

impl<T: NotificationStore + ?Sized> NotificationStoreExt for T {}
