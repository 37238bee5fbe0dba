//! The inbox operations of the REST API as plain functions over the traits: list, catch up,
//! count, mark read; plus the backlog a resuming STOMP or SSE client gets.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::model::{json_kind, Cursor, InboxItem};
use crate::service::NotifyService;
use crate::store::{ListQuery, NotificationStoreExt, Page, Reader};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest page size.
pub const MAX_LIMIT: usize = 200;

/// Parses `limit`, `before`, `since` and `unread_only` from a URL query string.
pub fn parse_list_query(query: Option<&str>) -> Result<ListQuery> {
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    let mut since = None;
    let mut unread_only = false;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| {
                        Error::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
                    })?;
            }
            "before" if !value.is_empty() => before = Some(Cursor::parse(&value, "before")?),
            "since" if !value.is_empty() => since = Some(Cursor::parse_or_time(&value, "since")?),
            "unread_only" => {
                unread_only = match value.as_ref() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(Error::invalid("unread_only", "must be true or false")),
                }
            }
            _ => {}
        }
    }
    let page = match (before, since) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("since", "cannot be combined with `before`"))
        }
        (None, Some(since)) => Page::OldestAfter(since),
        (before, None) => Page::NewestBefore(before),
    };
    Ok(ListQuery {
        page,
        limit,
        unread_only,
    })
}

/// One page of an inbox with the reader's unread count.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    /// The items, in the query's order.
    pub items: Vec<InboxItem>,
    /// Where the next page starts, when this one was full.
    pub next_cursor: Option<Cursor>,
    /// The reader's unread count.
    pub unread_count: u64,
}

impl InboxPage {
    /// The contract's JSON: `{"items":[…],"next_cursor":…,"unread_count":n}`.
    pub fn to_json(&self) -> Value {
        json!({
            "items": self.items.iter().map(|i| i.notification.to_json(i.read)).collect::<Vec<_>>(),
            "next_cursor": self.next_cursor.as_ref().map(|c| c.to_string()),
            "unread_count": self.unread_count,
        })
    }
}

/// Reads a page of the inbox (newest first, or oldest first after `since`).
pub async fn list(
    service: &NotifyService,
    reader: &Reader,
    query: &ListQuery,
) -> Result<InboxPage> {
    let muted = service.mutes.muted(&reader.user).await?;
    let store = service.store.as_ref();
    let (items, unread_count) = tokio::try_join!(
        crate::prefs::muted_inbox::list(store, reader, query, &muted),
        crate::prefs::muted_inbox::unread_count(store, reader, &muted)
    )?;
    let next_cursor = (items.len() == query.limit)
        .then(|| items.last().map(|i| i.notification.cursor()))
        .flatten();
    Ok(InboxPage {
        items,
        next_cursor,
        unread_count,
    })
}

/// The reader's unread count (muted types left out).
pub async fn unread_count(service: &NotifyService, reader: &Reader) -> Result<u64> {
    let muted = service.mutes.muted(&reader.user).await?;
    crate::prefs::muted_inbox::unread_count(service.store.as_ref(), reader, &muted).await
}

/// Marks one notification read; [`Error::NotFound`] if the reader cannot see it.
pub async fn mark_read(service: &NotifyService, reader: &Reader, id: &str) -> Result<()> {
    let found = service.store.mark_read(reader, &[id.to_string()]).await?;
    if found.is_empty() {
        return Err(Error::not_found(format!("notification {id}")));
    }
    Ok(())
}

/// Marks everything read.
pub async fn mark_all_read(service: &NotifyService, reader: &Reader) -> Result<()> {
    service.store.mark_all_read(reader).await
}

/// Applies a read request body (`{"ids":[…]}` or `{"all":true}`), as `SEND /app/read` does.
/// Returns how many notifications were marked (unknown ids are ignored).
pub async fn apply_read_request(
    service: &NotifyService,
    reader: &Reader,
    body: &[u8],
) -> Result<usize> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_body(format!("invalid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid_body("expected {\"ids\":[…]} or {\"all\":true}"))?;
    match obj.get("all") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            mark_all_read(service, reader).await?;
            return Ok(0);
        }
        Some(other) => {
            return Err(Error::invalid(
                "all",
                format!("must be a boolean, got {}", json_kind(other)),
            ))
        }
    }
    let ids = match obj.get("ids") {
        Some(Value::Array(ids)) => ids
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid(format!("ids[{i}]"), "must be a string"))
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(Error::invalid(
                "ids",
                format!("must be an array of strings, got {}", json_kind(other)),
            ))
        }
        None => {
            return Err(Error::invalid(
                "ids",
                "is required (or send {\"all\":true})",
            ))
        }
    };
    if ids.len() > 1000 {
        return Err(Error::invalid("ids", "at most 1000 ids at once"));
    }
    Ok(service.store.mark_read(reader, &ids).await?.len())
}

/// How long a resume waits for the store before it is served from unstored pushes alone
/// (when those reach back far enough).
const FALLBACK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// One notification replayed to a resuming client.
#[derive(Debug, Clone)]
pub struct ResumeItem {
    /// Notification id (`message-id`).
    pub id: String,
    /// Its cursor (SSE `id`).
    pub cursor: String,
    /// The notification JSON with the reader's read state.
    pub json: Bytes,
}

/// Like [`resume_backlog_bounded`], without telling whether the backlog was cut.
pub async fn resume_backlog(
    service: &Arc<NotifyService>,
    reader: &Reader,
    since: &Cursor,
) -> Result<Vec<ResumeItem>> {
    Ok(resume_backlog_bounded(service, reader, since).await?.items)
}

/// What a resuming client is sent before the live stream.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    /// The notifications, oldest first.
    pub items: Vec<ResumeItem>,
    /// More than `NOTIFY_RESUME_MAX` were missed: the last item is flagged
    /// (`backlog-truncated: true`) and the client pages the rest over REST from its cursor.
    pub truncated: bool,
}

/// Everything after `since` for `reader`, up to [`crate::ServiceConfig::resume_max`]: the
/// stored backlog, oldest first, then pushes that went out live but are not stored yet.
/// Call it after the session is registered with the hub, so anything later arrives live:
/// together there is no gap (repeats are possible). A truncated backlog holds only stored
/// notifications, so the client's REST catch-up from the last one misses nothing.
pub async fn resume_backlog_bounded(
    service: &Arc<NotifyService>,
    reader: &Reader,
    since: &Cursor,
) -> Result<Backlog> {
    // Snapshot the unstored pushes first: whatever leaves this set before the store read
    // below is in the store by then.
    let pending = service.pending.visible_to(reader);
    // Bounded like the store read below: a store outage must not fail the resume. It runs
    // beside that read (see below), so an outage costs one bound, not two in a row.
    let muted = service.mutes.muted_within(&reader.user, FALLBACK_AFTER);
    let overlap = service.config.resume_overlap.as_micros() as i64;
    let from = if overlap > 0 {
        Cursor {
            seq: since.seq.saturating_sub(overlap),
            id: String::new(),
        }
    } else {
        since.clone()
    };
    let read = service
        .store
        .catch_up_at_most(reader, &from, service.config.resume_max);
    let stored = async {
        if service.pending.covers_after(from.seq) {
            // The record can stand in for the store: don't wait long for a store that hangs.
            match tokio::time::timeout(FALLBACK_AFTER, read).await {
                Ok(Ok(stored)) => Ok(stored),
                Ok(Err(e)) if !e.is_transient() => Err(e),
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {FALLBACK_AFTER:?}"),
                    };
                    tracing::info!(user = %reader.user, %error, pending = pending.len(), "store unavailable: resume served from unstored pushes");
                    Ok((Vec::new(), false))
                }
            }
        } else {
            read.await.inspect_err(|e| {
                tracing::info!(user = %reader.user, error = %e, from = from.seq, record_from = service.pending.floor(), "resume refused: the store is unavailable and the record of pushes does not reach back that far");
            })
        }
    };
    let (muted, stored) = tokio::join!(muted, stored);
    let (stored, truncated) = stored?;
    let mut seen: HashSet<String> = HashSet::with_capacity(stored.len());
    let mut out: Vec<ResumeItem> = Vec::with_capacity(stored.len() + pending.len());
    for item in stored {
        if muted.matches(&item.notification.notification_type) {
            continue;
        }
        seen.insert(item.notification.id.clone());
        out.push(ResumeItem {
            id: item.notification.id.clone(),
            cursor: item.notification.cursor().to_string(),
            json: item.notification.to_json_bytes(item.read),
        });
    }
    if truncated {
        return Ok(Backlog {
            items: out,
            truncated,
        });
    }
    for push in pending {
        let n = &push.notification;
        if n.cursor() > from && !seen.contains(&n.id) && !muted.matches(&n.notification_type) {
            out.push(ResumeItem {
                id: n.id.clone(),
                cursor: n.cursor().to_string(),
                json: push.json.clone(),
            });
        }
    }
    Ok(Backlog {
        items: out,
        truncated: false,
    })
}
