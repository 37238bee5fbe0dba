//! [`MuteRegistry`]: each user's muted types, cached in process for the push path (which
//! must not wait for the store) and the inbox.
//!
//! A `PUT /api/preferences` updates the instance that served it at once. Other instances
//! of a cluster reload an entry when it is older than the refresh interval (on the next
//! inbox request, connection or push for that user), so they follow within that interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::background_run::BackgroundRun;
use super::preferences::Preferences;
use super::store::PreferenceStore;
use super::type_filter::MutedTypes;
use crate::error::Result;

/// How long a cached entry is trusted before it is reloaded from the store.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);

/// After a load fails or times out, [`MuteRegistry::muted_within`] answers from the cache
/// without asking the store again for this long: during an outage each connection and
/// resume would otherwise wait its full bound, one after the other.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(5);

/// Most users reloaded by one store query ([`PreferenceStore::get_many`]).
const RELOAD_BATCH: usize = 500;

#[derive(Debug, Clone)]
struct Entry {
    muted: MutedTypes,
    /// E-mail or digest escalation is enabled: only then is the contact of a connection
    /// worth a store write.
    escalates: bool,
    /// `None` until loaded once.
    loaded: Option<Instant>,
    reloading: bool,
}

impl Entry {
    fn fresh(&self, refresh: Duration) -> bool {
        self.loaded.is_some_and(|l| l.elapsed() < refresh)
    }
}

/// The in-process cache of muted types.
pub struct MuteRegistry {
    store: Arc<dyn PreferenceStore>,
    entries: RwLock<HashMap<String, Entry>>,
    refresh: Duration,
    /// Until when the store counts as unavailable (set by a failed or timed-out load).
    unavailable_until: Mutex<Option<Instant>>,
    /// Users whose stale entries wait for the background loader. A broadcast finds every
    /// entry of a large instance stale at once: they are reloaded in batches by one task,
    /// not by a store query (and a task) each.
    pending: Mutex<Vec<String>>,
    /// The background loader.
    loader: BackgroundRun,
    /// Woken after each batch the loader finishes (or fails): connections wait on it.
    batch_done: Notify,
}

impl std::fmt::Debug for MuteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuteRegistry")
            .field("users", &self.entries.read().len())
            .field("refresh", &self.refresh)
            .finish()
    }
}

impl MuteRegistry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn PreferenceStore>, refresh: Duration) -> Self {
        MuteRegistry {
            store,
            entries: RwLock::new(HashMap::new()),
            refresh,
            unavailable_until: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            loader: BackgroundRun::default(),
            batch_done: Notify::new(),
        }
    }

    /// The user's muted types, loaded from the store when not cached or stale.
    pub async fn muted(&self, user: &str) -> Result<MutedTypes> {
        if let Some(e) = self.entries.read().get(user) {
            if e.fresh(self.refresh) {
                return Ok(e.muted.clone());
            }
        }
        let prefs = self.store.get(user).await?;
        self.set(user, prefs.as_ref());
        Ok(prefs.map(|p| p.muted_types).unwrap_or_default())
    }

    /// Like [`MuteRegistry::muted`], but never fails and waits at most `wait`: when the
    /// store does not answer (an outage), the last cached entry stands, or "nothing muted".
    /// Used where the store is optional (a session starting, a resume served from the
    /// record of unstored pushes): a muted notification shown during an outage is the
    /// lesser harm than a refused connection or a resume that misses notifications.
    ///
    /// After a failed or timed-out load it does not wait again for a few seconds: it answers
    /// from the cache at once, so a reconnect storm during an outage is not held back.
    pub async fn muted_within(self: &Arc<Self>, user: &str, wait: Duration) -> MutedTypes {
        if self.recently_unavailable() || self.fresh(user) {
            return self.cached(user);
        }
        // Through the batch loader: a reconnect storm of thousands of sessions costs a few
        // store queries, not one each.
        self.reload_in_background(user);
        let loaded = tokio::time::timeout(wait, async {
            loop {
                let batch_done = self.batch_done.notified();
                if self.fresh(user) || self.recently_unavailable() {
                    return;
                }
                batch_done.await;
            }
        })
        .await;
        if loaded.is_err() {
            tracing::debug!(%user, "muted types not loaded within {wait:?}; using the cached ones");
            self.mark_unavailable();
        }
        self.cached(user)
    }

    fn fresh(&self, user: &str) -> bool {
        self.entries
            .read()
            .get(user)
            .is_some_and(|e| e.fresh(self.refresh))
    }

    /// True when the user's cached preferences enable e-mail or digest escalation (false
    /// when not loaded: a connection writes the contact only for users who can be
    /// escalated to; `PUT /api/preferences` writes it when they enable it).
    pub fn escalates(&self, user: &str) -> bool {
        self.entries.read().get(user).is_some_and(|e| e.escalates)
    }

    fn cached(&self, user: &str) -> MutedTypes {
        self.entries
            .read()
            .get(user)
            .map(|e| e.muted.clone())
            .unwrap_or_default()
    }

    fn recently_unavailable(&self) -> bool {
        self.unavailable_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
    }

    fn mark_unavailable(&self) {
        *self.unavailable_until.lock() = Some(Instant::now() + UNAVAILABLE_FOR);
    }

    /// Replaces a user's entry (after a `PUT` on this instance, or a load).
    pub fn set(&self, user: &str, prefs: Option<&Preferences>) {
        let entry = Entry {
            muted: prefs.map(|p| p.muted_types.clone()).unwrap_or_default(),
            escalates: prefs.is_some_and(|p| p.email.enabled || p.digest.enabled),
            loaded: Some(Instant::now()),
            reloading: false,
        };
        let mut entries = self.entries.write();
        match entries.get_mut(user) {
            Some(e) => *e = entry,
            None => {
                entries.insert(user.to_string(), entry);
            }
        }
    }

    /// Whether `notification_type` is muted for `user`, from the cache alone (never
    /// waits). A missing or stale entry is reloaded in the background; until then the cached
    /// answer (or "not muted") stands.
    pub fn is_muted(self: &Arc<Self>, user: &str, notification_type: &str) -> bool {
        let (muted, stale) = match self.entries.read().get(user) {
            Some(e) => (
                e.muted.matches(notification_type),
                !e.reloading && !e.fresh(self.refresh),
            ),
            None => (false, true),
        };
        if stale {
            self.reload_in_background(user);
        }
        muted
    }

    /// Starts loading a user's entry if it is missing or stale (a session connected).
    pub fn touch(self: &Arc<Self>, user: &str) {
        let stale = self
            .entries
            .read()
            .get(user)
            .is_none_or(|e| !e.reloading && !e.fresh(self.refresh));
        if stale {
            self.reload_in_background(user);
        }
    }

    fn reload_in_background(self: &Arc<Self>, user: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut entries = self.entries.write();
            let e = entries.entry(user.to_string()).or_insert_with(|| Entry {
                muted: MutedTypes::default(),
                escalates: false,
                loaded: None,
                reloading: false,
            });
            if e.reloading {
                return;
            }
            e.reloading = true;
        }
        self.pending.lock().push(user.to_string());
        if self.loader.claim() {
            runtime.spawn(self.clone().load_pending());
        }
    }

    /// Reloads the pending users, [`RELOAD_BATCH`] per store query, until none are left.
    /// After a failure the rest is given up (their entries stay as they were and are
    /// retried when next found stale) and the store counts as unavailable for a while.
    async fn load_pending(self: Arc<Self>) {
        loop {
            let batch: Vec<String> = {
                let mut pending = self.pending.lock();
                let n = pending.len().min(RELOAD_BATCH);
                pending.drain(..n).collect()
            };
            if batch.is_empty() {
                if self.loader.release(|| self.pending.lock().is_empty()) {
                    return;
                }
                continue;
            }
            match self.store.get_many(&batch).await {
                Ok(found) => {
                    let mut found: HashMap<String, Preferences> = found.into_iter().collect();
                    for user in &batch {
                        self.set(user, found.remove(user).as_ref());
                    }
                    self.batch_done.notify_waiters();
                }
                Err(e) => {
                    tracing::debug!(users = batch.len(), error = %e, "could not load muted types; retrying later");
                    self.mark_unavailable();
                    let rest = std::mem::take(&mut *self.pending.lock());
                    let mut entries = self.entries.write();
                    for user in batch.iter().chain(&rest) {
                        if let Some(entry) = entries.get_mut(user) {
                            entry.reloading = false;
                        }
                    }
                    drop(entries);
                    self.batch_done.notify_waiters();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefs::MemoryPreferences;

    fn prefs(v: serde_json::Value) -> Preferences {
        Preferences::from_json(&v).unwrap()
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{what} did not happen within a second");
    }

    #[tokio::test]
    async fn stale_entries_found_by_pushes_are_reloaded_in_the_background() {
        let store = Arc::new(MemoryPreferences::new());
        let muted = serde_json::json!({"muted_types": ["t"], "email": {"enabled": true}});
        store.put("ann", &prefs(muted)).await.unwrap();
        let registry = Arc::new(MuteRegistry::new(store.clone(), Duration::from_secs(60)));
        // More users than one batch, as a broadcast to a large instance finds them.
        let users: Vec<String> = (0..RELOAD_BATCH * 2 + 7).map(|i| format!("u{i}")).collect();
        assert!(!registry.is_muted("ann", "t"), "not loaded yet: not muted");
        for user in &users {
            assert!(!registry.is_muted(user, "t"));
        }
        let loaded = |user: &str| {
            registry
                .entries
                .read()
                .get(user)
                .is_some_and(|e| e.loaded.is_some())
        };
        eventually("every entry loaded", || users.iter().all(|u| loaded(u))).await;
        eventually("ann loaded", || loaded("ann")).await;
        assert!(registry.is_muted("ann", "t"));
        assert!(registry.escalates("ann"), "e-mail escalation enabled");
        assert!(
            !registry.escalates("u0"),
            "never set: defaults, no escalation"
        );
        assert!(!registry.loader.running(), "the loader ended");
    }
}
