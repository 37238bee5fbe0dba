//! [`MongoStore`]: the [`NotificationStore`] on MongoDB.

use std::collections::HashSet;
use std::future::{Future, IntoFuture};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use notify_core::model::{InboxItem, Notification};
use notify_core::store::{InsertOutcome, ListQuery, NotificationStore, Page, Reader};
use notify_core::{Error, Result};
use tokio::task::JoinHandle;

use crate::codec::{self, key};
use crate::errors::{self, DUPLICATE_KEY};

/// Collection of notifications (one document per notification and audience).
pub const NOTIFICATIONS: &str = "notifications";
/// Collection of explicit per-user read marks (`{user, id, aud, seq, ts}`).
pub const READS: &str = "reads";
/// Collection of per-user "everything up to here is read" watermarks (`{_id: user, all_before}`).
pub const READ_MARKS: &str = "read_marks";

/// The environment variable named in configuration errors about the URI.
const URI_VARIABLE: &str = "NOTIFY_MONGO_URI";
/// The environment variable named in configuration errors about the database name.
const DB_VARIABLE: &str = "NOTIFY_MONGO_DB";

/// How the store talks to the server. Settings given in the URI win over these.
#[derive(Debug, Clone)]
pub struct MongoOptions {
    /// Largest connection pool per server (`maxPoolSize` in the URI wins). Default 16.
    pub max_pool_size: u32,
    /// How long an operation waits for a usable server before failing with
    /// `Error::Unavailable` (`serverSelectionTimeoutMS` in the URI wins). Default 5 s.
    pub server_selection_timeout: Duration,
    /// TCP/TLS connect timeout (`connectTimeoutMS` in the URI wins). Default 3 s.
    pub connect_timeout: Duration,
    /// Upper bound on any one store call; past it the call fails with `Error::Unavailable`.
    /// Guards against a server that stops answering without closing the connection.
    /// Default 15 s.
    pub operation_timeout: Duration,
    /// Retention for the TTL indexes (`expireAfterSeconds`); `None` creates no TTL index
    /// (use [`MongoStore::spawn_sweeper`] or the pipeline's retention sweeper alone).
    /// Default 30 days, the contract's `NOTIFY_RETENTION` default.
    pub retention: Option<Duration>,
    /// Application name reported to the server (`appName` in the URI wins). Default `notify`.
    pub app_name: String,
    /// Batches larger than this are split into `insert_many` calls of this many documents,
    /// written `insert_concurrency` at a time. Default 100 (FerretDB's own insert batch; on
    /// MongoDB 100-document inserts of ~1 KB notifications are well past the per-call cost).
    pub insert_chunk: usize,
    /// How many of those chunks one `insert` writes at once (each takes a pooled
    /// connection). Default 4.
    pub insert_concurrency: usize,
}

impl Default for MongoOptions {
    fn default() -> Self {
        MongoOptions {
            max_pool_size: 16,
            server_selection_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(15),
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
            app_name: "notify".into(),
            insert_chunk: 100,
            insert_concurrency: 4,
        }
    }
}

/// Notifications in MongoDB (or anything speaking its wire protocol, e.g. FerretDB).
///
/// Cheap to clone: clones share the driver's connection pool.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    notifications: Collection<Document>,
    reads: Collection<Document>,
    marks: Collection<Document>,
    op_timeout: Duration,
    insert_chunk: usize,
    insert_concurrency: usize,
}

impl MongoStore {
    /// Connects with [`MongoOptions::default`] and creates the indexes (idempotently).
    ///
    /// A URI that does not parse is `Error::Config` naming `NOTIFY_MONGO_URI`; a bad database
    /// name names `NOTIFY_MONGO_DB`; an unreachable server is `Error::Unavailable`.
    pub async fn connect(uri: &str, database: &str) -> Result<MongoStore> {
        Self::connect_with(uri, database, MongoOptions::default()).await
    }

    /// Connects with explicit options and creates the indexes (idempotently).
    pub async fn connect_with(
        uri: &str,
        database: &str,
        options: MongoOptions,
    ) -> Result<MongoStore> {
        validate_db_name(database)?;
        let mut co = ClientOptions::parse(uri).await.map_err(|e| match *e.kind {
            ErrorKind::InvalidArgument { ref message, .. } => {
                Error::config(URI_VARIABLE, format!("invalid MongoDB URI: {message}"))
            }
            _ if errors::is_transient(&e) => errors::map("connect", e),
            _ => Error::config(URI_VARIABLE, format!("invalid MongoDB URI: {e}")),
        })?;
        co.max_pool_size.get_or_insert(options.max_pool_size);
        co.server_selection_timeout
            .get_or_insert(options.server_selection_timeout);
        co.connect_timeout.get_or_insert(options.connect_timeout);
        co.app_name.get_or_insert(options.app_name.clone());
        let client = Client::with_options(co)
            .map_err(|e| Error::config(URI_VARIABLE, format!("invalid MongoDB options: {e}")))?;
        let db = client.database(database);
        let store = MongoStore {
            notifications: db.collection(NOTIFICATIONS),
            reads: db.collection(READS),
            marks: db.collection(READ_MARKS),
            client,
            db,
            op_timeout: options.operation_timeout,
            insert_chunk: options.insert_chunk.max(1),
            insert_concurrency: options.insert_concurrency.max(1),
        };
        store
            .timed("create indexes", store.create_indexes(options.retention))
            .await
            .map_err(|e| match e {
                Error::Internal { message, source } => {
                    let detail = source.as_ref().map(|s| s.to_string()).unwrap_or_default();
                    if detail.contains("uthentication") {
                        Error::config(URI_VARIABLE, format!("authentication failed: {detail}"))
                    } else {
                        Error::Internal { message, source }
                    }
                }
                other => other,
            })?;
        Ok(store)
    }

    /// The database (for operators' tools and tests).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The driver client (shares this store's pool).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Deletes notifications older than `retention` every `every` (first pass at once).
    ///
    /// Retention then holds on servers without TTL indexes (FerretDB) and is prompt on
    /// MongoDB too (its TTL monitor runs once a minute). The pipeline's
    /// `notify_core::pipeline::spawn_retention_sweeper` does the same through
    /// [`NotificationStore::purge`]; run one of the two. Abort the handle to stop it.
    pub fn spawn_sweeper(&self, retention: Duration, every: Duration) -> JoinHandle<()> {
        let store = self.clone();
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let cutoff = Utc::now()
                    .checked_sub_signed(retention)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                match store.purge(cutoff).await {
                    Ok(0) => tracing::debug!(%cutoff, "mongo retention sweep: nothing to remove"),
                    Ok(n) => tracing::info!(removed = n, %cutoff, "mongo retention sweep"),
                    Err(e) => tracing::warn!(error = %e, "mongo retention sweep failed"),
                }
            }
        })
    }

    /// Runs `f` under the operation timeout.
    async fn timed<T>(&self, op: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.op_timeout, f).await {
            Ok(r) => r,
            Err(elapsed) => Err(Error::unavailable(
                "store",
                format!("mongodb {op} timed out after {:?}", self.op_timeout),
                elapsed,
            )),
        }
    }

    async fn create_indexes(&self, retention: Option<Duration>) -> Result<()> {
        // Inbox pages, catch-up and unread counts: equality on aud, range on pos.
        self.ensure_indexes(
            &self.notifications,
            &[(doc! {"aud": 1, "pos": 1}, "aud_pos", false)],
            retention,
        )
        .await?;
        // Read marks: one per (user, notification); counts by (user, aud, seq).
        self.ensure_indexes(
            &self.reads,
            &[
                (doc! {"user": 1, "id": 1}, "user_id", true),
                (doc! {"user": 1, "aud": 1, "seq": 1}, "user_aud_seq", false),
            ],
            retention,
        )
        .await
    }

    /// Creates the missing ones of `wanted` (by name) and the `{ts: 1}` retention index.
    ///
    /// Existing indexes are listed first and left alone, so a restart does no index work
    /// (and FerretDB 1.x, which can panic re-creating an existing compound index, is spared).
    async fn ensure_indexes(
        &self,
        coll: &Collection<Document>,
        wanted: &[(Document, &str, bool)],
        retention: Option<Duration>,
    ) -> Result<()> {
        let name = coll.name().to_string();
        let existing: Vec<IndexModel> = match coll.list_indexes().await {
            Ok(cursor) => cursor
                .try_collect()
                .await
                .map_err(|e| errors::map("listIndexes", e))?,
            // NamespaceNotFound: the collection does not exist yet.
            Err(e) if command_code(&e) == Some(26) => Vec::new(),
            Err(e) => return Err(errors::map("listIndexes", e)),
        };
        let find = |index_name: &str| {
            existing
                .iter()
                .find(|m| m.options.as_ref().and_then(|o| o.name.as_deref()) == Some(index_name))
        };
        for (keys, index_name, unique) in wanted {
            if let Some(found) = find(index_name) {
                if &found.keys != keys {
                    tracing::warn!(
                        collection = %name,
                        index = index_name,
                        found = %found.keys,
                        "an index with this name has other keys; queries may be slow"
                    );
                }
                continue;
            }
            let model = IndexModel::builder()
                .keys(keys.clone())
                .options(
                    IndexOptions::builder()
                        .name(index_name.to_string())
                        .unique(unique.then_some(true))
                        .build(),
                )
                .build();
            coll.create_index(model)
                .await
                .map_err(|e| errors::map("createIndexes", e))?;
            tracing::info!(collection = %name, index = index_name, "created index");
        }

        let plain = IndexModel::builder()
            .keys(doc! {"ts": 1})
            .options(IndexOptions::builder().name("ts".to_string()).build())
            .build();
        let Some(retention) = retention else {
            if find("ts").is_none() && find("ts_ttl").is_none() {
                coll.create_index(plain)
                    .await
                    .map_err(|e| errors::map("createIndexes", e))?;
            }
            return Ok(());
        };
        let secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        if let Some(ttl) = find("ts_ttl") {
            let current = ttl.options.as_ref().and_then(|o| o.expire_after);
            if current.map(|d| d.as_secs()) != Some(retention.as_secs()) {
                self.set_expiry(&name, secs).await;
            }
            return Ok(());
        }
        let ttl = IndexModel::builder()
            .keys(doc! {"ts": 1})
            .options(
                IndexOptions::builder()
                    .name("ts_ttl".to_string())
                    .expire_after(retention)
                    .build(),
            )
            .build();
        let err = match coll.create_index(ttl).await {
            Ok(_) => {
                tracing::info!(collection = %name, secs, "created TTL index");
                return Ok(());
            }
            Err(e) => e,
        };
        if errors::is_transient(&err) {
            return Err(errors::map("createIndexes", err));
        }
        match command_code(&err) {
            // IndexOptionsConflict / IndexKeySpecsConflict: a {ts: 1} index exists under
            // another name or with other options: make it the TTL index.
            Some(85) | Some(86) => self.set_expiry(&name, secs).await,
            _ => {
                tracing::warn!(
                    collection = %name,
                    error = %err,
                    "the server does not support TTL indexes (e.g. FerretDB); retention relies \
                     on the periodic sweeper"
                );
                if find("ts").is_none() {
                    coll.create_index(plain)
                        .await
                        .map_err(|e| errors::map("createIndexes", e))?;
                }
            }
        }
        Ok(())
    }

    /// Changes the expiry of the `{ts: 1}` index in place (`collMod`); logs on failure.
    async fn set_expiry(&self, collection: &str, secs: i64) {
        let cmd = doc! {
            "collMod": collection,
            "index": {"keyPattern": {"ts": 1}, "expireAfterSeconds": secs},
        };
        match self.db.run_command(cmd).await {
            Ok(_) => tracing::info!(collection, secs, "updated the TTL index expiry"),
            Err(e) => tracing::warn!(
                collection,
                error = %e,
                "could not change the TTL index expiry (collMod); retention relies on the sweeper"
            ),
        }
    }

    async fn watermark(&self, user: &str) -> Result<i64> {
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
    async fn explicit_reads(&self, user: &str, ids: Vec<&str>) -> Result<HashSet<String>> {
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
    async fn fetch(
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
    async fn edge_seq(
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

    async fn insert_inner(&self, batch: &[Notification]) -> Result<InsertOutcome> {
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
    async fn insert_docs(&self, docs: &[Document]) -> Result<InsertOutcome> {
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

    async fn list_inner(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
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

    async fn unread_count_inner(&self, reader: &Reader) -> Result<u64> {
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

    async fn mark_read_inner(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>> {
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

    async fn mark_all_read_inner(&self, reader: &Reader) -> Result<()> {
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

    async fn purge_inner(&self, before: DateTime<Utc>) -> Result<u64> {
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

/// For an `insert_many` error: `Some(n)` when every write error is a duplicate key (`n` of
/// them), `None` when anything else went wrong.
fn only_duplicates(e: &mongodb::error::Error) -> Option<usize> {
    let ErrorKind::InsertMany(m) = e.kind.as_ref() else {
        return None;
    };
    if m.write_concern_error.is_some() {
        return None;
    }
    let errs = m.write_errors.as_deref().unwrap_or_default();
    errs.iter()
        .all(|w| w.code == DUPLICATE_KEY)
        .then_some(errs.len())
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

fn is_duplicate_write(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn validate_db_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 {
        return Err(Error::config(DB_VARIABLE, "must be 1 to 63 bytes"));
    }
    if let Some(c) = name.chars().find(|c| {
        matches!(
            c,
            '/' | '\\' | '.' | ' ' | '"' | '$' | '*' | '<' | '>' | ':' | '|' | '?'
        ) || c.is_control()
    }) {
        return Err(Error::config(
            DB_VARIABLE,
            format!("invalid database name {name:?}: character {c:?} is not allowed"),
        ));
    }
    Ok(())
}

#[async_trait]
impl NotificationStore for MongoStore {
    async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome> {
        self.timed("insert", self.insert_inner(batch)).await
    }

    async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
        self.timed("list", self.list_inner(reader, query)).await
    }

    async fn unread_count(&self, reader: &Reader) -> Result<u64> {
        self.timed("unread_count", self.unread_count_inner(reader))
            .await
    }

    async fn mark_read(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>> {
        self.timed("mark_read", self.mark_read_inner(reader, ids))
            .await
    }

    async fn mark_all_read(&self, reader: &Reader) -> Result<()> {
        self.timed("mark_all_read", self.mark_all_read_inner(reader))
            .await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        self.timed("purge", self.purge_inner(before)).await
    }

    async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            self.db
                .run_command(doc! {"ping": 1})
                .await
                .map(|_| ())
                .map_err(|e| errors::map("ping", e))
        })
        .await
    }
}
