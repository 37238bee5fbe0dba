//! The store's indexes, the TTL retention index and the retention sweeper.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use notify_core::store::NotificationStore;
use notify_core::Result;
use tokio::task::JoinHandle;

use super::MongoStore;
use crate::errors::{self, command_code};

impl MongoStore {
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

    pub(super) async fn create_indexes(&self, retention: Option<Duration>) -> Result<()> {
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
    pub(super) async fn ensure_indexes(
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
    pub(super) async fn set_expiry(&self, collection: &str, secs: i64) {
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
}
