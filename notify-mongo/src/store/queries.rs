//! The reads and writes behind each [`notify_core::NotificationStore`] call.

use std::collections::HashSet;
use std::future::IntoFuture;

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use notify_core::model::{InboxItem, Notification};
use notify_core::store::{InsertOutcome, ListQuery, Page, Reader};
use notify_core::{Error, Result};

use super::MongoStore;
use crate::codec::{self, key};
use crate::errors::{self, is_duplicate_write, only_duplicates};

impl MongoStore {
    pub(super) async fn watermark(&self, user: &str) -> Result<i64> {
        let mark = self
            .marks
            .find_one(doc! {"_id": key(user).as_ref()})
            .projection(doc! {"all_before": 1})
            .await
            .map_err(|e| errors::map("find read_marks", e))?;
        match mark {
            Some(d) => codec::get_i64(&d, "all_before"),
            None => Ok(i64::MIN),
        }
    }

    /// Ids among `ids` that `user` marked read one by one.
    pub(super) async fn explicit_reads(
        &self,
        user: &str,
        ids: Vec<&str>,
    ) -> Result<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let docs: Vec<Document> = self
            .reads
            .find(doc! {"user": key(user).as_ref(), "id": {"$in": ids}})
            .projection(doc! {"_id": 0, "id": 1})
            .await
            .map_err(|e| errors::map("find reads", e))?
            .try_collect()
            .await
            .map_err(|e| errors::map("find reads", e))?;
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("id").ok().map(str::to_string))
            .collect())
    }

    /// One page of notifications in `pos` order within `range`.
    ///
    /// One query per audience (`aud` equality, `pos` range, sort, limit), run concurrently and
    /// merged here. On MongoDB each is a bounded scan of `{aud: 1, pos: 1}`. FerretDB 1.x
    /// pushes only top-level equality filters down to PostgreSQL (never `$in`, ranges or
    /// sorts), so this shape makes PostgreSQL return only the audience's documents instead of
    /// FerretDB decoding the whole collection.
    pub(super) async fn fetch(
        &self,
        auds: &[Bson],
        range: Document,
        descending: bool,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        let limit_i64 = i64::try_from(limit).unwrap_or(i64::MAX);
        let queries = auds.iter().map(|aud| {
            let mut filter = doc! {"aud": aud.clone()};
            if !range.is_empty() {
                filter.insert("pos", range.clone());
            }
            async move {
                let docs: Vec<Document> = self
                    .notifications
                    .find(filter)
                    .sort(doc! {"pos": if descending { -1 } else { 1 }})
                    .projection(doc! {"seq": 1, "body": 1})
                    .limit(limit_i64)
                    .batch_size(u32::try_from(limit).unwrap_or(u32::MAX))
                    .await
                    .map_err(|e| errors::map("find notifications", e))?
                    .try_collect()
                    .await
                    .map_err(|e| errors::map("find notifications", e))?;
                docs.iter()
                    .map(codec::from_document)
                    .collect::<Result<Vec<_>>>()
            }
        });
        let pages = futures::future::try_join_all(queries).await?;
        let mut all: Vec<Notification> = pages.into_iter().flatten().collect();
        // Cursor order is (seq, id), the order of `pos`.
        if descending {
            all.sort_unstable_by(|a, b| (b.seq, &b.id).cmp(&(a.seq, &a.id)));
        } else {
            all.sort_unstable_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        }
        all.truncate(limit);
        Ok(all)
    }

    /// The smallest (`descending == false`) or largest `seq` among the reader's notifications
    /// with `pos >= floor` (any `pos` when `floor` is `None`); one query per audience.
    pub(super) async fn edge_seq(
        &self,
        auds: &[Bson],
        floor: Option<&str>,
        descending: bool,
    ) -> Result<Option<i64>> {
        let queries = auds.iter().map(|aud| {
            let mut filter = doc! {"aud": aud.clone()};
            if let Some(floor) = floor {
                filter.insert("pos", doc! {"$gte": floor});
            }
            async move {
                let d = self
                    .notifications
                    .find_one(filter)
                    .sort(doc! {"pos": if descending { -1 } else { 1 }})
                    .projection(doc! {"seq": 1})
                    .await
                    .map_err(|e| errors::map("find notifications", e))?;
                d.map(|d| codec::get_i64(&d, "seq")).transpose()
            }
        });
        let seqs = futures::future::try_join_all(queries).await?;
        let seqs = seqs.into_iter().flatten();
        Ok(if descending { seqs.max() } else { seqs.min() })
    }

    pub(super) async fn insert_inner(&self, batch: &[Notification]) -> Result<InsertOutcome> {
        if batch.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let docs = batch
            .iter()
            .map(codec::to_document)
            .collect::<Result<Vec<_>>>()?;
        if docs.len() <= self.insert_chunk {
            return self.insert_docs(&docs).await;
        }
        // Large batches: unordered chunks written concurrently (bounded), so one caller uses
        // several pooled connections. Every chunk runs to its end before the first error is
        // returned; a retry then counts what did land as duplicates.
        let writes: Vec<BoxFuture<'_, Result<InsertOutcome>>> = docs
            .chunks(self.insert_chunk)
            .map(|chunk| self.insert_docs(chunk).boxed())
            .collect();
        let results: Vec<Result<InsertOutcome>> = futures::stream::iter(writes)
            .buffer_unordered(self.insert_concurrency)
            .collect()
            .await;
        let mut out = InsertOutcome::default();
        for r in results {
            let r = r?;
            out.inserted += r.inserted;
            out.duplicates += r.duplicates;
        }
        Ok(out)
    }

    /// One unordered `insert_many`; duplicate-key write errors count as duplicates.
    pub(super) async fn insert_docs(&self, docs: &[Document]) -> Result<InsertOutcome> {
        match self.notifications.insert_many(docs).ordered(false).await {
            Ok(r) => Ok(InsertOutcome {
                inserted: r.inserted_ids.len(),
                duplicates: docs.len() - r.inserted_ids.len(),
            }),
            Err(e) => {
                let duplicates = only_duplicates(&e).ok_or_else(|| errors::map("insert", e))?;
                Ok(InsertOutcome {
                    inserted: docs.len().saturating_sub(duplicates),
                    duplicates,
                })
            }
        }
    }

    pub(super) async fn list_inner(
        &self,
        reader: &Reader,
        query: &ListQuery,
    ) -> Result<Vec<InboxItem>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let auds = codec::reader_auds(reader);
        let (descending, mut range) = match &query.page {
            Page::NewestBefore(None) => (true, Document::new()),
            Page::NewestBefore(Some(c)) => (true, doc! {"$lt": codec::cursor_pos(c)}),
            Page::OldestAfter(c) => (false, doc! {"$gt": codec::cursor_pos(c)}),
        };
        if !query.unread_only {
            let (wm, page) = tokio::try_join!(
                self.watermark(&reader.user),
                self.fetch(&auds, range, descending, query.limit)
            )?;
            let above: Vec<&str> = page
                .iter()
                .filter(|n| n.seq > wm)
                .map(|n| n.id.as_str())
                .collect();
            let explicit = self.explicit_reads(&reader.user, above).await?;
            return Ok(page
                .into_iter()
                .map(|n| InboxItem {
                    read: n.seq <= wm || explicit.contains(&n.id),
                    notification: n,
                })
                .collect());
        }
        // Unread only: everything above the watermark, less the explicit reads, fetched in
        // chunks until the page is full.
        let wm = self.watermark(&reader.user).await?;
        let floor = codec::pos_after_seq(wm);
        if descending {
            range.insert("$gte", floor);
        } else {
            let lower = range.get_str("$gt").unwrap_or_default().to_string();
            if floor > lower {
                range = doc! {"$gte": floor};
            }
        }
        // Chunks grow while reads keep them from filling the page: few round trips over long
        // read runs (on FerretDB each one scans the collection whatever its limit), small
        // index scans in the usual case.
        let mut chunk = (query.limit * 2).clamp(32, 500);
        let mut out = Vec::with_capacity(query.limit);
        loop {
            let page = self.fetch(&auds, range.clone(), descending, chunk).await?;
            let full = page.len() == chunk;
            let Some(last) = page.last() else { break };
            let last_pos = codec::pos(last.seq, &last.id);
            let ids = page.iter().map(|n| n.id.as_str()).collect();
            let explicit = self.explicit_reads(&reader.user, ids).await?;
            for n in page {
                if out.len() == query.limit {
                    break;
                }
                if !explicit.contains(&n.id) {
                    out.push(InboxItem {
                        notification: n,
                        read: false,
                    });
                }
            }
            if out.len() == query.limit || !full {
                break;
            }
            chunk = (chunk * 4).min(500);
            if descending {
                range.insert("$lt", last_pos);
            } else {
                range.remove("$gte");
                range.insert("$gt", last_pos);
            }
        }
        Ok(out)
    }

    pub(super) async fn unread_count_inner(&self, reader: &Reader) -> Result<u64> {
        let auds = codec::reader_auds(reader);
        let user = key(&reader.user);
        let user: &str = user.as_ref();
        let wm = self.watermark(&reader.user).await?;
        let floor = codec::pos_after_seq(wm);
        // Per-audience equality counts (FerretDB pushes equality down, not `$in`).
        let count_reads = |min_seq: i64| {
            let queries = auds.iter().map(move |aud| {
                self.reads
                    .count_documents(doc! {
                        "user": user,
                        "aud": aud.clone(),
                        "seq": {"$gte": min_seq},
                    })
                    .into_future()
            });
            async move {
                futures::future::try_join_all(queries)
                    .await
                    .map(|v| v.into_iter().sum::<u64>())
                    .map_err(|e| errors::map("count reads", e))
            }
        };
        let min_seq = wm.saturating_add(1);
        let (total, read) = tokio::try_join!(
            async {
                let queries = auds.iter().map(|aud| {
                    self.notifications
                        .count_documents(doc! {"aud": aud.clone(), "pos": {"$gte": &floor}})
                        .into_future()
                });
                futures::future::try_join_all(queries)
                    .await
                    .map(|v| v.into_iter().sum::<u64>())
                    .map_err(|e| errors::map("count notifications", e))
            },
            count_reads(min_seq)
        )?;
        if total == 0 {
            return Ok(0);
        }
        if read == 0 {
            return Ok(total);
        }
        // Only count read marks at or above the oldest notification still stored, so marks
        // whose notification retention already removed (TTL passes are not atomic across
        // collections) never make the count too small. Retention removes notifications
        // oldest first, so when the oldest counted mark's notification is still stored, all
        // counted marks are good: one `_id` lookup instead of a scan per audience.
        let first_marks = auds.iter().map(|aud| async move {
            self.reads
                .find_one(doc! {"user": user, "aud": aud.clone(), "seq": {"$gte": min_seq}})
                .sort(doc! {"seq": 1})
                .projection(doc! {"_id": 0, "id": 1, "seq": 1})
                .await
                .map_err(|e| errors::map("find reads", e))
        });
        let first_marks = futures::future::try_join_all(first_marks).await?;
        let mut first: Option<(i64, &str)> = None;
        for d in first_marks.iter().flatten() {
            let (Ok(seq), Ok(id)) = (codec::get_i64(d, "seq"), d.get_str("id")) else {
                continue;
            };
            if first.is_none_or(|(s, _)| seq < s) {
                first = Some((seq, id));
            }
        }
        if let Some((_, id)) = first {
            let stored = self
                .notifications
                .find_one(doc! {"_id": id})
                .projection(doc! {"_id": 1})
                .await
                .map_err(|e| errors::map("find notifications", e))?;
            if stored.is_some() {
                return Ok(total.saturating_sub(read));
            }
        }
        let Some(oldest) = self.edge_seq(&auds, Some(&floor), false).await? else {
            return Ok(0);
        };
        let read = if oldest > min_seq {
            count_reads(oldest).await?
        } else {
            read
        };
        Ok(total.saturating_sub(read))
    }

    pub(super) async fn mark_read_inner(
        &self,
        reader: &Reader,
        ids: &[String],
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let auds = codec::reader_auds(reader);
        let found: Vec<Document> = self
            .notifications
            .find(doc! {"_id": {"$in": wanted}, "aud": {"$in": auds}})
            .projection(doc! {"aud": 1, "seq": 1})
            .await
            .map_err(|e| errors::map("find notifications", e))?
            .try_collect()
            .await
            .map_err(|e| errors::map("find notifications", e))?;
        let user = key(&reader.user);
        let mut visible = HashSet::with_capacity(found.len());
        let mut marks = Vec::with_capacity(found.len());
        for d in &found {
            let id = d
                .get_str("_id")
                .map_err(|e| Error::internal_from("stored notification has no string _id", e))?;
            let seq = codec::get_i64(d, "seq")?;
            marks.push(doc! {
                "user": user.as_ref(),
                "id": id,
                "aud": d.get("aud").cloned().unwrap_or(Bson::Null),
                "seq": seq,
                "ts": codec::ts_of_seq(seq),
            });
            visible.insert(id.to_string());
        }
        if !marks.is_empty() {
            if let Err(e) = self.reads.insert_many(&marks).ordered(false).await {
                only_duplicates(&e).ok_or_else(|| errors::map("insert reads", e))?;
            }
        }
        Ok(ids
            .iter()
            .filter(|id| visible.contains(id.as_str()))
            .cloned()
            .collect())
    }

    pub(super) async fn mark_all_read_inner(&self, reader: &Reader) -> Result<()> {
        let auds = codec::reader_auds(reader);
        let Some(newest) = self.edge_seq(&auds, None, true).await? else {
            return Ok(());
        };
        let user = key(&reader.user);
        let update = || {
            self.marks
                .update_one(
                    doc! {"_id": user.as_ref()},
                    doc! {"$max": {"all_before": newest}},
                )
                .upsert(true)
        };
        match update().await {
            Ok(_) => Ok(()),
            // Two concurrent first upserts for one user: the loser retries as an update.
            Err(e) if is_duplicate_write(&e) => update()
                .await
                .map(|_| ())
                .map_err(|e| errors::map("update read_marks", e)),
            Err(e) => Err(errors::map("update read_marks", e)),
        }
    }

    pub(super) async fn purge_inner(&self, before: DateTime<Utc>) -> Result<u64> {
        let limit = before.timestamp_micros();
        // The ts range uses the index; the exact cut is on seq (microseconds).
        let filter = doc! {
            "ts": {"$lte": codec::ts_of_seq(limit)},
            "seq": {"$lt": limit},
        };
        let removed = self
            .notifications
            .delete_many(filter.clone())
            .await
            .map_err(|e| errors::map("delete notifications", e))?
            .deleted_count;
        self.reads
            .delete_many(filter)
            .await
            .map_err(|e| errors::map("delete reads", e))?;
        Ok(removed)
    }
}
