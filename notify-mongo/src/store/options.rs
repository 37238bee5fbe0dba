//! [`MongoOptions`]: how the store talks to the server, and the configuration checks that
//! name the variable at fault.

use std::time::Duration;

use notify_core::{Error, Result};

/// The environment variable named in configuration errors about the URI.
pub(super) const URI_VARIABLE: &str = "NOTIFY_MONGO_URI";
/// The environment variable named in configuration errors about the database name.
pub(super) const DB_VARIABLE: &str = "NOTIFY_MONGO_DB";

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
    /// (use [`MongoStore::spawn_sweeper`](super::MongoStore::spawn_sweeper) or the
    /// pipeline's retention sweeper alone). Default 30 days, the contract's
    /// `NOTIFY_RETENTION` default.
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

pub(super) fn validate_db_name(name: &str) -> Result<()> {
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
