//! [`MongoPreferences`]: the [`PreferenceStore`] on MongoDB, beside a [`MongoStore`].
//!
//! Three collections:
//! - `profiles`: one document per user, `{_id: user, prefs: <JSON>, email_enabled, email,
//!   groups}`; indexed on `{email_enabled: 1, groups: 1}` so scheduling finds the enabled
//!   users of a group without a scan.
//! - `escalations`: the due queue, `{_id: key, user, kind, notification: <JSON>, due,
//!   state: "pending"|"done", owner, lease_until, attempted: [channel…]}`; indexed on
//!   `{state: 1, due: 1}` so a poll reads only pending escalations that are due. Times are
//!   microseconds since the epoch.
//! - `escalation_claims`: one document per lease taken (`lease:<key>:<gen>`) and per channel
//!   attempted (`attempt:<key>:<channel>`), `{_id, esc: key}`.
//!
//! Leases and attempts are decided by inserting a claim whose `_id` is unique, not by a
//! conditional update: MongoDB applies a filtered `update_one` atomically, but FerretDB (on
//! PostgreSQL) reads and then writes, so two instances could both "win" the same update
//! (the conformance suite caught two owners holding the same escalations). A unique `_id`
//! is enforced by every server. The lease claim's `gen` is the escalation's lease
//! generation, bumped by each claim, so one lease period has exactly one holder; the
//! attempt claim makes each (escalation, channel) sendable once, ever.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use notify_core::model::Notification;
use notify_core::prefs::{
    Contact, Escalation, EscalationKind, Finish, PreferenceStore, Preferences, Profile,
};
use notify_core::{Error, Result};

use crate::errors::{self, DUPLICATE_KEY};
use crate::store::MongoStore;

/// Collection of per-user preferences and contacts.
pub const PROFILES: &str = "profiles";
/// Collection of scheduled escalations.
pub const ESCALATIONS: &str = "escalations";
/// Collection of lease and attempt claims (unique `_id`s).
pub const ESCALATION_CLAIMS: &str = "escalation_claims";

/// Preferences and the escalation schedule in MongoDB (or FerretDB).
///
/// Cheap to clone: clones share the driver's connection pool.
#[derive(Debug, Clone)]
pub struct MongoPreferences {
    profiles: Collection<Document>,
    escalations: Collection<Document>,
    claims: Collection<Document>,
    op_timeout: Duration,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{what}: {e}"))
}

impl MongoPreferences {
    /// Uses the database of `store` and creates the indexes (idempotently).
    pub async fn new(store: &MongoStore) -> Result<Self> {
        let db = store.database();
        let me = MongoPreferences {
            profiles: db.collection(PROFILES),
            escalations: db.collection(ESCALATIONS),
            claims: db.collection(ESCALATION_CLAIMS),
            op_timeout: Duration::from_secs(15),
        };
        me.timed("create indexes", async {
            for (coll, keys, name) in [
                (
                    &me.profiles,
                    doc! {"email_enabled": 1, "groups": 1},
                    "enabled_groups",
                ),
                (&me.escalations, doc! {"state": 1, "due": 1}, "state_due"),
                (&me.escalations, doc! {"user": 1, "kind": 1}, "user_kind"),
                (&me.claims, doc! {"esc": 1}, "esc"),
            ] {
                // A collection that does not exist yet has no indexes (and lists none).
                let existing: Vec<String> = coll.list_index_names().await.unwrap_or_default();
                if existing.iter().any(|n| n == name) {
                    continue;
                }
                let model = IndexModel::builder()
                    .keys(keys)
                    .options(IndexOptions::builder().name(name.to_string()).build())
                    .build();
                coll.create_index(model)
                    .await
                    .map_err(|e| errors::map("createIndexes", e))?;
            }
            Ok(())
        })
        .await?;
        Ok(me)
    }

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

    /// The profiles matching `filter`, each read with [`Self::profile_of`].
    async fn find_profiles(&self, what: &'static str, filter: Document) -> Result<Vec<Profile>> {
        self.timed(what, async {
            let docs: Vec<Document> = self
                .profiles
                .find(filter)
                .await
                .map_err(|e| errors::map("find profiles", e))?
                .try_collect()
                .await
                .map_err(|e| errors::map("find profiles", e))?;
            docs.iter()
                .map(|d| {
                    let user = d
                        .get_str("_id")
                        .map_err(|e| internal("profile without string _id", e))?;
                    Self::profile_of(user, Some(d))
                })
                .collect()
        })
        .await
    }

    fn profile_of(user: &str, d: Option<&Document>) -> Result<Profile> {
        let prefs = match d.and_then(|d| d.get_str("prefs").ok()) {
            Some(json) => {
                let v: serde_json::Value =
                    serde_json::from_str(json).map_err(|e| internal("stored preferences", e))?;
                Preferences::from_json(&v)?
            }
            None => Preferences::default(),
        };
        let contact = Contact {
            email: d.and_then(|d| d.get_str("email").ok()).map(str::to_string),
            groups: d
                .and_then(|d| d.get_array("groups").ok())
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Profile {
            user: user.to_string(),
            prefs,
            contact,
        })
    }

    fn to_doc(e: &Escalation) -> Document {
        let (kind, notification) = match &e.kind {
            EscalationKind::Unread(n) => ("unread", Bson::String(n.to_json(false).to_string())),
            EscalationKind::Digest => ("digest", Bson::Null),
        };
        doc! {
            "_id": &e.id,
            "user": &e.user,
            "kind": kind,
            "notification": notification,
            "due": micros(e.due_at),
            "state": "pending",
            "owner": Bson::Null,
            "lease_until": i64::MIN,
            "gen": 0_i64,
            "attempted": e.attempted.clone(),
        }
    }

    fn from_doc(d: &Document) -> Result<Escalation> {
        let s = |k: &str| {
            d.get_str(k)
                .map(str::to_string)
                .map_err(|e| internal(&format!("escalation field {k}"), e))
        };
        let kind = match d.get_str("kind").unwrap_or_default() {
            "unread" => {
                let v: serde_json::Value = serde_json::from_str(&s("notification")?)
                    .map_err(|e| internal("stored notification", e))?;
                EscalationKind::Unread(Box::new(Notification::from_json(&v)?))
            }
            _ => EscalationKind::Digest,
        };
        let due = match d.get("due") {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            Some(Bson::Double(v)) => *v as i64,
            _ => return Err(internal("escalation", "no due time")),
        };
        Ok(Escalation {
            id: s("_id")?,
            user: s("user")?,
            kind,
            due_at: time(due),
            attempted: d
                .get_array("attempted")
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Inserts the claim `key` for escalation `esc` (a lease claim carries its expiry,
    /// `until`): `true` if this call made it, `false` if it existed (claimed first by
    /// someone else).
    async fn claim(&self, key: &str, esc: &str, until: Option<i64>) -> Result<bool> {
        let mut claim = doc! {"_id": key, "esc": esc};
        if let Some(until) = until {
            claim.insert("until", until);
        }
        match self.claims.insert_one(claim).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(errors::map("insert claim", e)),
        }
    }

    /// A lease claim that expired while the escalation still shows its generation was never
    /// followed by the owner's update (a crash between the two writes). Such an escalation
    /// could never be claimed again (its next claim key is taken), so it is finished as
    /// lost: at most once means a crash may lose an escalation, never repeat it.
    async fn drop_if_orphaned(&self, key: &str, id: &str, now_us: i64) -> Result<()> {
        let claim = self
            .claims
            .find_one(doc! {"_id": key})
            .await
            .map_err(|e| errors::map("find claim", e))?;
        let expired = claim
            .as_ref()
            .and_then(|c| c.get_i64("until").ok())
            .is_some_and(|until| until < now_us);
        if expired {
            tracing::warn!(escalation = %id, "lease taken by an instance that stopped before recording it; escalation dropped");
            self.escalations
                .update_one(
                    doc! {"_id": id, "state": "pending"},
                    doc! {"$set": {"state": "done", "owner": Bson::Null, "lease_until": i64::MIN}},
                )
                .await
                .map_err(|e| errors::map("drop escalation", e))?;
        }
        Ok(())
    }

    async fn find(&self, filter: Document, limit: i64) -> Result<Vec<Document>> {
        self.escalations
            .find(filter)
            .sort(doc! {"due": 1})
            .limit(limit)
            .await
            .map_err(|e| errors::map("find escalations", e))?
            .try_collect()
            .await
            .map_err(|e| errors::map("find escalations", e))
    }
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

fn inserted_despite_duplicates(e: &mongodb::error::Error, total: usize) -> Option<usize> {
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::InsertMany(m) if is_duplicate(e) => {
            Some(total - m.write_errors.as_ref().map_or(0, Vec::len))
        }
        _ => None,
    }
}

#[async_trait]
impl PreferenceStore for MongoPreferences {
    async fn get(&self, user: &str) -> Result<Option<Preferences>> {
        self.timed("get preferences", async {
            let d = self
                .profiles
                .find_one(doc! {"_id": user})
                .await
                .map_err(|e| errors::map("find profiles", e))?;
            match d {
                Some(d) if d.get_str("prefs").is_ok() => {
                    Ok(Some(Self::profile_of(user, Some(&d))?.prefs))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn get_many(&self, users: &[String]) -> Result<Vec<(String, Preferences)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let filter = doc! {"_id": {"$in": users}, "prefs": {"$exists": true}};
        let found = self.find_profiles("get many preferences", filter).await?;
        Ok(found.into_iter().map(|p| (p.user, p.prefs)).collect())
    }

    async fn put(&self, user: &str, prefs: &Preferences) -> Result<()> {
        self.timed("put preferences", async {
            self.profiles
                .update_one(
                    doc! {"_id": user},
                    doc! {"$set": {
                        "prefs": prefs.to_json().to_string(),
                        "email_enabled": prefs.email.enabled,
                    }},
                )
                .upsert(true)
                .await
                .map_err(|e| errors::map("update profiles", e))?;
            Ok(())
        })
        .await
    }

    async fn remember(&self, user: &str, contact: &Contact) -> Result<()> {
        self.timed("remember contact", async {
            self.profiles
                .update_one(
                    doc! {"_id": user},
                    doc! {"$set": {
                        "email": contact.email.clone().map_or(Bson::Null, Bson::String),
                        "groups": contact.groups.clone(),
                    }},
                )
                .upsert(true)
                .await
                .map_err(|e| errors::map("update profiles", e))?;
            Ok(())
        })
        .await
    }

    async fn profile(&self, user: &str) -> Result<Profile> {
        self.timed("get profile", async {
            let d = self
                .profiles
                .find_one(doc! {"_id": user})
                .await
                .map_err(|e| errors::map("find profiles", e))?;
            Self::profile_of(user, d.as_ref())
        })
        .await
    }

    async fn profiles(
        &self,
        users: &[String],
        groups: &[String],
        everyone: bool,
    ) -> Result<Vec<Profile>> {
        let filter = if everyone {
            doc! {"email_enabled": true}
        } else if users.is_empty() && groups.is_empty() {
            return Ok(Vec::new());
        } else {
            let mut or = Vec::new();
            if !users.is_empty() {
                or.push(doc! {"_id": {"$in": users}});
            }
            if !groups.is_empty() {
                or.push(doc! {"groups": {"$in": groups}});
            }
            doc! {"email_enabled": true, "$or": or}
        };
        self.find_profiles("find profiles", filter).await
    }

    async fn schedule(&self, escalations: &[Escalation]) -> Result<usize> {
        if escalations.is_empty() {
            return Ok(0);
        }
        let docs: Vec<Document> = escalations.iter().map(Self::to_doc).collect();
        self.timed("schedule escalations", async {
            match self.escalations.insert_many(&docs).ordered(false).await {
                Ok(r) => Ok(r.inserted_ids.len()),
                Err(e) => inserted_despite_duplicates(&e, docs.len())
                    .ok_or_else(|| errors::map("insert escalations", e)),
            }
        })
        .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Escalation>> {
        let now_us = micros(now);
        let until = now_us.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        self.timed("claim escalations", async {
            // Candidates first, then one unique lease claim each: only the instance whose
            // insert succeeded holds the lease (see the module docs for why not an update).
            let candidates = self
                .find(
                    doc! {
                        "state": "pending",
                        "due": {"$lte": now_us},
                        "lease_until": {"$lte": now_us},
                    },
                    i64::try_from(limit.saturating_mul(2)).unwrap_or(i64::MAX),
                )
                .await?;
            let mut out = Vec::new();
            for d in candidates {
                if out.len() == limit {
                    break;
                }
                let Ok(id) = d.get_str("_id") else { continue };
                let gen = match d.get("gen") {
                    Some(Bson::Int64(g)) => *g,
                    Some(Bson::Int32(g)) => i64::from(*g),
                    _ => 0,
                };
                let key = format!("lease:{id}:{gen}");
                if !self.claim(&key, id, Some(until)).await? {
                    self.drop_if_orphaned(&key, id, now_us).await?;
                    continue;
                }
                let r = self
                    .escalations
                    .update_one(
                        doc! {"_id": id, "state": "pending"},
                        doc! {"$set": {"owner": owner, "lease_until": until, "gen": gen + 1}},
                    )
                    .await
                    .map_err(|e| errors::map("claim escalation", e))?;
                // Not matched: finished meanwhile by the previous lease holder.
                if r.matched_count == 1 {
                    out.push(Self::from_doc(&d)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn attempt(&self, id: &str, owner: &str, channel: &str) -> Result<bool> {
        self.timed("record attempt", async {
            let held = self
                .escalations
                .find_one(doc! {"_id": id, "state": "pending", "owner": owner})
                .await
                .map_err(|e| errors::map("find escalation", e))?
                .is_some();
            if !held
                || !self
                    .claim(&format!("attempt:{id}:{channel}"), id, None)
                    .await?
            {
                return Ok(false);
            }
            // The claim decided it; the list is the record `claim_due` answers.
            self.escalations
                .update_one(doc! {"_id": id}, doc! {"$addToSet": {"attempted": channel}})
                .await
                .map_err(|e| errors::map("record attempt", e))?;
            Ok(true)
        })
        .await
    }

    async fn finish(&self, id: &str, owner: &str, how: Finish) -> Result<()> {
        let update = match how {
            Finish::Done => doc! {"$set": {
                "state": "done", "owner": Bson::Null, "lease_until": i64::MIN,
            }},
            Finish::Defer(at) => doc! {"$set": {
                "due": micros(at), "owner": Bson::Null, "lease_until": i64::MIN,
            }},
        };
        self.timed("finish escalation", async {
            self.escalations
                .update_one(doc! {"_id": id, "state": "pending", "owner": owner}, update)
                .await
                .map_err(|e| errors::map("finish escalation", e))?;
            Ok(())
        })
        .await
    }

    async fn set_digest(&self, user: &str, digest: Option<Escalation>) -> Result<()> {
        self.timed("set digest", async {
            // Untouched pending digests (not leased, nothing attempted) are replaced.
            let mut stale = doc! {
                "user": user,
                "kind": "digest",
                "state": "pending",
                "owner": Bson::Null,
                "attempted": {"$size": 0},
            };
            if let Some(d) = &digest {
                stale.insert("_id", doc! {"$ne": &d.id});
            }
            self.escalations
                .delete_many(stale)
                .await
                .map_err(|e| errors::map("delete digests", e))?;
            let Some(d) = digest else { return Ok(()) };
            match self.escalations.insert_one(Self::to_doc(&d)).await {
                Ok(_) => Ok(()),
                Err(e) if is_duplicate(&e) => {
                    // Same day: move it if nobody started sending it.
                    self.escalations
                        .update_one(
                            doc! {
                                "_id": &d.id,
                                "state": "pending",
                                "owner": Bson::Null,
                                "attempted": {"$size": 0},
                            },
                            doc! {"$set": {"due": micros(d.due_at)}},
                        )
                        .await
                        .map_err(|e| errors::map("update digest", e))?;
                    Ok(())
                }
                Err(e) => Err(errors::map("insert digest", e)),
            }
        })
        .await
    }

    async fn purge_escalations(&self, before: DateTime<Utc>) -> Result<u64> {
        self.timed("purge escalations", async {
            let filter = doc! {"state": "done", "due": {"$lt": micros(before)}};
            let ids: Vec<String> = self
                .escalations
                .find(filter.clone())
                .projection(doc! {"_id": 1})
                .await
                .map_err(|e| errors::map("find escalations", e))?
                .try_collect::<Vec<Document>>()
                .await
                .map_err(|e| errors::map("find escalations", e))?
                .iter()
                .filter_map(|d| d.get_str("_id").ok().map(str::to_string))
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            // Claims first: a claim without its escalation is harmless, the reverse could
            // let a re-scheduled escalation be sent again.
            for chunk in ids.chunks(1000) {
                self.claims
                    .delete_many(doc! {"esc": {"$in": chunk}})
                    .await
                    .map_err(|e| errors::map("purge claims", e))?;
            }
            let mut deleted = 0;
            for chunk in ids.chunks(1000) {
                deleted += self
                    .escalations
                    .delete_many(doc! {"_id": {"$in": chunk}, "state": "done"})
                    .await
                    .map_err(|e| errors::map("purge escalations", e))?
                    .deleted_count;
            }
            Ok(deleted)
        })
        .await
    }

    async fn pending_escalations(&self) -> Result<u64> {
        self.timed("count escalations", async {
            self.escalations
                .count_documents(doc! {"state": "pending"})
                .await
                .map_err(|e| errors::map("count escalations", e))
        })
        .await
    }
}
