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

use super::store::PreferenceStore;
use super::type_filter::MutedTypes;
use crate::error::Result;

/// How long a cached entry is trusted before it is reloaded from the store.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);

/// After a load fails or times out, [`MuteRegistry::muted_within`] answers from the cache
/// without asking the store again for this long: during an outage each connection and
/// resume would otherwise wait its full bound, one after the other.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Entry {
    muted: MutedTypes,
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
        }
    }

    /// The user's muted types, loaded from the store when not cached or stale.
    pub async fn muted(&self, user: &str) -> Result<MutedTypes> {
        if let Some(e) = self.entries.read().get(user) {
            if e.fresh(self.refresh) {
                return Ok(e.muted.clone());
            }
        }
        let muted = self
            .store
            .get(user)
            .await?
            .map(|p| p.muted_types)
            .unwrap_or_default();
        self.set(user, muted.clone());
        Ok(muted)
    }

    /// Like [`MuteRegistry::muted`], but never fails and waits at most `wait`: when the
    /// store does not answer (an outage), the last cached entry stands, or "nothing muted".
    /// Used where the store is optional (a session starting, a resume served from the
    /// record of unstored pushes): a muted notification shown during an outage is the
    /// lesser harm than a refused connection or a resume that misses notifications.
    ///
    /// After a failed or timed-out load it does not wait again for a few seconds: it answers
    /// from the cache at once, so a reconnect storm during an outage is not held back.
    pub async fn muted_within(&self, user: &str, wait: Duration) -> MutedTypes {
        if self.recently_unavailable() {
            return self.cached(user);
        }
        match tokio::time::timeout(wait, self.muted(user)).await {
            Ok(Ok(muted)) => muted,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {wait:?}"),
                };
                tracing::debug!(%user, %error, "muted types not loaded; using the cached ones");
                self.mark_unavailable();
                self.cached(user)
            }
        }
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
    pub fn set(&self, user: &str, muted: MutedTypes) {
        self.entries.write().insert(
            user.to_string(),
            Entry {
                muted,
                loaded: Some(Instant::now()),
                reloading: false,
            },
        );
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
                loaded: None,
                reloading: false,
            });
            if e.reloading {
                return;
            }
            e.reloading = true;
        }
        let me = self.clone();
        let user = user.to_string();
        runtime.spawn(async move {
            match me.store.get(&user).await {
                Ok(p) => me.set(&user, p.map(|p| p.muted_types).unwrap_or_default()),
                Err(e) => {
                    tracing::debug!(%user, error = %e, "could not load muted types; retrying later");
                    me.mark_unavailable();
                    if let Some(entry) = me.entries.write().get_mut(&user) {
                        entry.reloading = false;
                    }
                }
            }
        });
    }
}
