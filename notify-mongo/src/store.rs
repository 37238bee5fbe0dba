//! [`MongoStore`]: the [`NotificationStore`] on MongoDB. The concepts live beside it:
//! `options` (connection settings and their validation), `indexes` (indexes, TTL and the
//! retention sweeper), `queries` (the reads and writes behind each store call); the driver
//! error helpers are in `crate::errors`.

mod indexes;
mod options;
mod queries;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use notify_core::model::{InboxItem, Notification};
use notify_core::store::{InsertOutcome, ListQuery, NotificationStore, Reader};
use notify_core::{Error, Result};

use crate::errors::{self};

pub use options::MongoOptions;
use options::{validate_db_name, URI_VARIABLE};

/// Collection of notifications (one document per notification and audience).
pub const NOTIFICATIONS: &str = "notifications";
/// Collection of explicit per-user read marks (`{user, id, aud, seq, ts}`).
pub const READS: &str = "reads";
/// Collection of per-user "everything up to here is read" watermarks (`{_id: user, all_before}`).
pub const READ_MARKS: &str = "read_marks";

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
