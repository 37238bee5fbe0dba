//! # notify-mongo
//!
//! [`MongoStore`]: the [`NotificationStore`](notify_core::NotificationStore) of `notify-core`
//! on MongoDB, with the official `mongodb` driver. It also runs on FerretDB (the test suite
//! does), but nothing in it depends on FerretDB.
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use notify_mongo::MongoStore;
//!
//! # async fn demo() -> notify_core::Result<()> {
//! let store = MongoStore::connect("mongodb://db1,db2,db3/?replicaSet=rs0", "notify").await?;
//! // Retention on servers without TTL indexes, and promptly everywhere:
//! let _sweeper = store.spawn_sweeper(Duration::from_secs(30 * 86_400), Duration::from_secs(3600));
//! let store: Arc<dyn notify_core::NotificationStore> = Arc::new(store);
//! # Ok(()) }
//! ```
//!
//! ## Collections and documents
//!
//! - `notifications`: one document per notification, i.e. per (event, audience). A group or
//!   broadcast notification is stored **once**, not once per member.
//!   `{_id, aud, pos, seq, ts, event_id, body}`:
//!   - `_id`: the notification id, a hash of (event id, audience). Redelivery of an event hits
//!     the unique `_id` index and is counted as a duplicate, never stored twice.
//!   - `aud`: `u:<user>`, `g:<group>` or `b` (broadcast). Backslashes and control characters
//!     in names are escaped (`\\`, `\uXXXX`).
//!   - `pos`: the cursor `(seq, id)` as one string that sorts the same way (16 hex digits of
//!     the seq, then the id).
//!   - `seq`: the ordering stamp (Int64 microseconds), `ts`: `created_at` as a BSON date.
//!   - `body`: the rest (type, title, message, link, `data`, priority, `occurred_at`) as a
//!     JSON string, so `$`-prefixed and dotted keys in `data`, NUL characters and nanosecond
//!     times round-trip exactly on any server.
//! - `reads`: `{user, id, aud, seq, ts}`, one per notification a user marked read one by one.
//! - `read_marks`: `{_id: user, all_before}`: everything visible to the user with
//!   `seq <= all_before` is read. "Mark all read" is this one upsert (`$max`), whatever the
//!   size of the inbox.
//!
//! ## Indexes (created idempotently by [`MongoStore::connect`])
//!
//! | collection | keys | purpose |
//! |---|---|---|
//! | notifications | `_id` (unique, built in) | idempotent inserts |
//! | notifications | `{aud: 1, pos: 1}` `aud_pos` | inbox pages, catch-up, unread counts: a merge of one range scan per audience, never `skip` |
//! | notifications | `{ts: 1}` `ts_ttl`, `expireAfterSeconds` = retention | retention (TTL) |
//! | reads | `{user: 1, id: 1}` unique `user_id` | one mark per user and notification; read state of a page |
//! | reads | `{user: 1, aud: 1, seq: 1}` `user_aud_seq` | unread counts |
//! | reads | `{ts: 1}` `ts_ttl` | retention (TTL) |
//!
//! An unread count is `count(notifications visible, seq > all_before)` minus
//! `count(reads of visible audiences, seq > all_before)`: two index-only counts, exact for
//! personal, group and broadcast notifications alike.
//!
//! ## Retention and TTL
//!
//! With [`MongoOptions::retention`] set (default 30 days) both `ts` indexes are TTL indexes;
//! a changed retention is applied to an existing index with `collMod`. MongoDB's TTL monitor
//! deletes expired documents about once a minute. Servers without TTL support (FerretDB
//! answers "not implemented") get a plain `{ts: 1}` index and a warning in the log: there,
//! retention holds only through [`MongoStore::spawn_sweeper`] or the pipeline's
//! `spawn_retention_sweeper`, which call [`purge`](notify_core::NotificationStore::purge) (a
//! range delete on `ts`). Running a sweeper is recommended everywhere; it is cheap.
//! `read_marks` holds one small document per user and is not expired.
//!
//! ## Production MongoDB
//!
//! - Use a replica set (or Atlas): `mongodb://h1:27017,h2:27017,h3:27017/?replicaSet=rs0`,
//!   or `mongodb+srv://user:pass@cluster.example.net/`. The driver follows elections; writes
//!   during a failover fail with `Error::Unavailable` and the pipeline retries them, so no
//!   event is acknowledged before it is stored.
//! - Durability: the pipeline acknowledges an event once `insert` returns, so use a majority
//!   write concern (MongoDB 5.0+ defaults to `w: majority` on replica sets; older servers
//!   want `?w=majority&journal=true` in the URI).
//! - Pool and timeouts: [`MongoOptions`] sets `maxPoolSize` (16), `serverSelectionTimeoutMS`
//!   (5 s) and `connectTimeoutMS` (3 s) unless the URI sets them; each store call is also
//!   bounded by [`MongoOptions::operation_timeout`].
//! - The database user needs `readWrite` on the database, plus `collMod` (part of `dbAdmin`)
//!   if retention may change between deployments.
//! - Sharding, if ever needed: shard `notifications` on `{aud: 1, _id: 1}`. A redelivered
//!   notification has the same `aud` and `_id`, so it reaches the shard that holds the first
//!   copy, and per-shard `_id` uniqueness is enough. Inbox queries carry `aud`, so they are
//!   targeted. Shard `reads` on `{user: 1, id: 1}` and `read_marks` on `_id`. Not tested.
//!
//! ## Writes
//!
//! `insert` writes a batch with unordered `insert_many` calls of at most
//! [`MongoOptions::insert_chunk`] documents (100), [`MongoOptions::insert_concurrency`] (4) at a
//! time. A duplicate-key write error is a redelivered notification: it is counted in
//! `InsertOutcome::duplicates`, not reported as an error. Any other write error fails the call after
//! every chunk has finished. A retry then counts what did land as duplicates. A notification whose
//! document would exceed MongoDB's 16 MiB limit is rejected (`InvalidInput`) before anything of its
//! batch is written.
//!
//! ## Errors
//!
//! Network errors, server selection timeouts, a cleared pool, shutdown/stepdown/not-primary
//! codes, write concern failures and the store's own operation timeout are
//! `Error::Unavailable { component: "store", .. }` (transient: callers retry). A document
//! that cannot be stored (over the size limit) is `Error::InvalidInput`. Anything else is
//! `Error::Internal`. The driver error is kept as `source` where the variant has one.

mod codec;
mod errors;
mod store;

pub use mongodb;
pub use store::{MongoOptions, MongoStore, NOTIFICATIONS, READS, READ_MARKS};
