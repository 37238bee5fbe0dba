use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;

use super::{InsertOutcome, ListQuery, NotificationStore, Page, Reader};
use crate::error::Result;
use crate::model::{Audience, Cursor, InboxItem, Notification};

/// The embedded store: all notifications in memory, indexed by audience and cursor.
///
/// Correct and concurrent (one reader-writer lock, never held across an await), bounded by
/// retention: the pipeline's retention task calls [`NotificationStore::purge`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// id -> notification.
    by_id: HashMap<String, Notification>,
    /// audience -> cursor-ordered ids.
    by_audience: HashMap<Audience, BTreeMap<Cursor, ()>>,
    /// Per-user read state.
    reads: HashMap<String, ReadState>,
}

#[derive(Debug, Default)]
struct ReadState {
    /// Everything with `seq <= all_before` is read ("mark all read" is one write).
    all_before: i64,
    /// Ids read one by one after that watermark.
    ids: HashSet<String>,
}

impl ReadState {
    fn is_read(&self, n: &Notification) -> bool {
        n.seq <= self.all_before || self.ids.contains(&n.id)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many notifications are stored (all audiences).
    pub fn len(&self) -> usize {
        self.inner.read().by_id.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn audiences_of(reader: &Reader) -> Vec<Audience> {
    let mut v = Vec::with_capacity(reader.groups.len() + 2);
    v.push(Audience::User(reader.user.clone()));
    v.extend(reader.groups.iter().cloned().map(Audience::Group));
    v.push(Audience::Broadcast);
    v
}

#[async_trait]
impl NotificationStore for MemoryStore {
    async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome> {
        let mut inner = self.inner.write();
        let mut out = InsertOutcome::default();
        for n in batch {
            if inner.by_id.contains_key(&n.id) {
                out.duplicates += 1;
                continue;
            }
            inner
                .by_audience
                .entry(n.audience.clone())
                .or_default()
                .insert(n.cursor(), ());
            inner.by_id.insert(n.id.clone(), n.clone());
            out.inserted += 1;
        }
        Ok(out)
    }

    async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
        let inner = self.inner.read();
        let empty = ReadState::default();
        let state = inner.reads.get(&reader.user).unwrap_or(&empty);
        // Merge the per-audience ordered indexes, taking `limit` in order.
        let mut candidates: Vec<&Cursor> = Vec::new();
        for audience in audiences_of(reader) {
            let Some(index) = inner.by_audience.get(&audience) else {
                continue;
            };
            let iter: Box<dyn Iterator<Item = &Cursor>> = match &query.page {
                Page::NewestBefore(None) => Box::new(index.keys().rev()),
                Page::NewestBefore(Some(c)) => {
                    Box::new(index.range(..c.clone()).rev().map(|(k, _)| k))
                }
                Page::OldestAfter(c) => Box::new(
                    index
                        .range((
                            std::ops::Bound::Excluded(c.clone()),
                            std::ops::Bound::Unbounded,
                        ))
                        .map(|(k, _)| k),
                ),
            };
            let mut taken = 0;
            for cursor in iter {
                if taken == query.limit {
                    break;
                }
                if query.unread_only && state.is_read(&inner.by_id[&cursor.id]) {
                    continue;
                }
                candidates.push(cursor);
                taken += 1;
            }
        }
        match query.page {
            Page::NewestBefore(_) => candidates.sort_by(|a, b| b.cmp(a)),
            Page::OldestAfter(_) => candidates.sort(),
        }
        candidates.truncate(query.limit);
        Ok(candidates
            .into_iter()
            .map(|c| {
                let n = &inner.by_id[&c.id];
                InboxItem {
                    read: state.is_read(n),
                    notification: n.clone(),
                }
            })
            .collect())
    }

    async fn unread_count(&self, reader: &Reader) -> Result<u64> {
        let inner = self.inner.read();
        let empty = ReadState::default();
        let state = inner.reads.get(&reader.user).unwrap_or(&empty);
        let mut count = 0u64;
        for audience in audiences_of(reader) {
            if let Some(index) = inner.by_audience.get(&audience) {
                let after = Cursor {
                    seq: state.all_before,
                    id: "\u{10FFFF}".into(),
                };
                count += index
                    .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .filter(|(c, _)| !state.ids.contains(&c.id))
                    .count() as u64;
            }
        }
        Ok(count)
    }

    async fn mark_read(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>> {
        let mut inner = self.inner.write();
        let visible: Vec<String> = ids
            .iter()
            .filter(|id| {
                inner
                    .by_id
                    .get(*id)
                    .is_some_and(|n| n.audience.includes(&reader.user, &reader.groups))
            })
            .cloned()
            .collect();
        let all_before = inner.reads.get(&reader.user).map_or(0, |s| s.all_before);
        let seqs: Vec<(String, i64)> = visible
            .iter()
            .map(|id| (id.clone(), inner.by_id[id].seq))
            .collect();
        let state = inner.reads.entry(reader.user.clone()).or_default();
        for (id, seq) in seqs {
            if seq > all_before {
                state.ids.insert(id);
            }
        }
        Ok(visible)
    }

    async fn mark_all_read(&self, reader: &Reader) -> Result<()> {
        let mut inner = self.inner.write();
        // The watermark is the newest visible notification, so later ones stay unread.
        let newest = audiences_of(reader)
            .iter()
            .filter_map(|a| inner.by_audience.get(a)?.keys().next_back().map(|c| c.seq))
            .max()
            .unwrap_or(0);
        let state = inner.reads.entry(reader.user.clone()).or_default();
        state.all_before = state.all_before.max(newest);
        let all_before = state.all_before;
        let ids = std::mem::take(&mut state.ids);
        // Keep explicit marks that are newer than the watermark.
        let keep: HashSet<String> = ids
            .into_iter()
            .filter(|id| inner.by_id.get(id).is_some_and(|n| n.seq > all_before))
            .collect();
        inner
            .reads
            .get_mut(&reader.user)
            .expect("just inserted")
            .ids = keep;
        Ok(())
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        let limit = before.timestamp_micros();
        let mut inner = self.inner.write();
        let old: Vec<(String, Audience, Cursor)> = inner
            .by_id
            .values()
            .filter(|n| n.seq < limit)
            .map(|n| (n.id.clone(), n.audience.clone(), n.cursor()))
            .collect();
        for (id, audience, cursor) in &old {
            inner.by_id.remove(id);
            if let Some(index) = inner.by_audience.get_mut(audience) {
                index.remove(cursor);
                if index.is_empty() {
                    inner.by_audience.remove(audience);
                }
            }
        }
        let old_ids: HashSet<&str> = old.iter().map(|(id, _, _)| id.as_str()).collect();
        for state in inner.reads.values_mut() {
            state.ids.retain(|id| !old_ids.contains(id.as_str()));
        }
        Ok(old.len() as u64)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    #[tokio::test]
    async fn memory_store_conformance() {
        crate::testkit::store::run_all(|| async {
            std::sync::Arc::new(super::MemoryStore::new())
                as std::sync::Arc<dyn crate::NotificationStore>
        })
        .await;
    }
}
