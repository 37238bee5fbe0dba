//! Muted types applied to the inbox: pages skip them and unread counts leave them out, for
//! any [`crate::NotificationStore`], using only its trait methods.
//!
//! Cost: nothing for users without muted types. For a user with muted types a page reads
//! further until it is full, and the unread count reads the user's unread notifications
//! (200 per store call) to subtract the muted ones, so it stays exact.

use crate::error::Result;
use crate::model::InboxItem;
use crate::store::{ListQuery, NotificationStore, Page, Reader};

use super::type_filter::MutedTypes;

/// A page of the inbox without muted types (the store's page when nothing is muted).
pub async fn list(
    store: &dyn NotificationStore,
    reader: &Reader,
    query: &ListQuery,
    muted: &MutedTypes,
) -> Result<Vec<InboxItem>> {
    if muted.is_empty() {
        return store.list(reader, query).await;
    }
    let mut out: Vec<InboxItem> = Vec::with_capacity(query.limit);
    let mut q = query.clone();
    loop {
        let page = store.list(reader, &q).await?;
        let full = page.len() == q.limit;
        let Some(last) = page.last().map(|i| i.notification.cursor()) else {
            break;
        };
        for item in page {
            if out.len() == query.limit {
                break;
            }
            if !muted.matches(&item.notification.notification_type) {
                out.push(item);
            }
        }
        if out.len() == query.limit || !full {
            break;
        }
        q.page = match q.page {
            Page::NewestBefore(_) => Page::NewestBefore(Some(last)),
            Page::OldestAfter(_) => Page::OldestAfter(last),
        };
        // Fewer, larger reads when muted types keep the page from filling.
        q.limit = (q.limit * 2).min(200);
    }
    Ok(out)
}

/// The unread count without muted types.
pub async fn unread_count(
    store: &dyn NotificationStore,
    reader: &Reader,
    muted: &MutedTypes,
) -> Result<u64> {
    let total = store.unread_count(reader).await?;
    if muted.is_empty() || total == 0 {
        return Ok(total);
    }
    let mut muted_unread = 0u64;
    let mut q = ListQuery {
        page: Page::NewestBefore(None),
        limit: 200,
        unread_only: true,
    };
    loop {
        let page = store.list(reader, &q).await?;
        let full = page.len() == q.limit;
        muted_unread += page
            .iter()
            .filter(|i| muted.matches(&i.notification.notification_type))
            .count() as u64;
        match page.last() {
            Some(last) if full => q.page = Page::NewestBefore(Some(last.notification.cursor())),
            _ => break,
        }
    }
    Ok(total.saturating_sub(muted_unread))
}
