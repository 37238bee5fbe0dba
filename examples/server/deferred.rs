//! A store that is connected in the background: the server starts and serves while MongoDB
//! is unreachable (`/health/ready` says `store` DOWN), and uses it as soon as it answers.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use notify_core::backoff::Backoff;
use notify_core::prefs::{Contact, Escalation, Finish, PreferenceStore, Profile};
use notify_core::store::{InsertOutcome, ListQuery, NotificationStore, Reader};
use notify_core::{Error, InboxItem, Notification, Preferences, Result};

/// Answers [`Error::Unavailable`] until the real store is connected, then passes through.
#[derive(Default)]
pub(crate) struct DeferredStore {
    inner: OnceLock<Arc<dyn NotificationStore>>,
}

impl DeferredStore {
    /// Starts connecting with `connect`, retrying transient failures with capped backoff
    /// (one log line when it fails, one when it connects). Waits up to `first_wait` for
    /// the first attempt, so a misconfiguration found at once stops start-up; one found
    /// later (e.g. an authentication failure after the server answered) ends the process
    /// with the same one line.
    pub(crate) async fn connect<F, Fut, S>(
        what: &'static str,
        first_wait: std::time::Duration,
        connect: F,
    ) -> Result<Arc<Self>>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<S>> + Send,
        S: NotificationStore,
    {
        let store = Arc::new(DeferredStore::default());
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let target = store.clone();
        tokio::spawn(async move {
            let mut first = Some(first_tx);
            let mut backoff = Backoff::new(what);
            loop {
                match connect().await {
                    Ok(s) => {
                        let _ = target.inner.set(Arc::new(s));
                        backoff.succeeded();
                        tracing::info!(what, "store connected");
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Ok(()));
                        }
                        return;
                    }
                    Err(e @ Error::Config { .. }) => match first.take() {
                        Some(tx) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                        None => {
                            eprintln!("error: {e}");
                            std::process::exit(2);
                        }
                    },
                    Err(e) => {
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Ok(()));
                        }
                        let wait = backoff.failed(&e);
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
        match tokio::time::timeout(first_wait, first_rx).await {
            Ok(Ok(Err(e))) => Err(e),
            _ => Ok(store),
        }
    }

    fn get(&self) -> Result<&Arc<dyn NotificationStore>> {
        self.inner
            .get()
            .ok_or_else(|| Error::unavailable_because("store", "not connected yet (retrying)"))
    }
}

#[async_trait]
impl NotificationStore for DeferredStore {
    async fn insert(&self, batch: &[Notification]) -> Result<InsertOutcome> {
        self.get()?.insert(batch).await
    }

    async fn list(&self, reader: &Reader, query: &ListQuery) -> Result<Vec<InboxItem>> {
        self.get()?.list(reader, query).await
    }

    async fn unread_count(&self, reader: &Reader) -> Result<u64> {
        self.get()?.unread_count(reader).await
    }

    async fn mark_read(&self, reader: &Reader, ids: &[String]) -> Result<Vec<String>> {
        self.get()?.mark_read(reader, ids).await
    }

    async fn mark_all_read(&self, reader: &Reader) -> Result<()> {
        self.get()?.mark_all_read(reader).await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        self.get()?.purge(before).await
    }

    async fn ping(&self) -> Result<()> {
        self.get()?.ping().await
    }
}

/// The preference store beside a [`DeferredStore`]: answers [`Error::Unavailable`] until the
/// store's background connection has also set up the preferences, then passes through.
#[derive(Default)]
pub(crate) struct DeferredPreferences {
    inner: OnceLock<Arc<dyn PreferenceStore>>,
}

impl DeferredPreferences {
    /// Installs the connected preference store (once; later calls change nothing).
    pub(crate) fn set(&self, prefs: Arc<dyn PreferenceStore>) {
        let _ = self.inner.set(prefs);
    }

    fn get(&self) -> Result<&Arc<dyn PreferenceStore>> {
        self.inner
            .get()
            .ok_or_else(|| Error::unavailable_because("store", "not connected yet (retrying)"))
    }
}

#[async_trait]
impl PreferenceStore for DeferredPreferences {
    async fn get(&self, user: &str) -> Result<Option<Preferences>> {
        DeferredPreferences::get(self)?.get(user).await
    }

    async fn put(&self, user: &str, prefs: &Preferences) -> Result<()> {
        DeferredPreferences::get(self)?.put(user, prefs).await
    }

    async fn remember(&self, user: &str, contact: &Contact) -> Result<()> {
        DeferredPreferences::get(self)?
            .remember(user, contact)
            .await
    }

    async fn profile(&self, user: &str) -> Result<Profile> {
        DeferredPreferences::get(self)?.profile(user).await
    }

    async fn profiles(
        &self,
        users: &[String],
        groups: &[String],
        everyone: bool,
    ) -> Result<Vec<Profile>> {
        DeferredPreferences::get(self)?
            .profiles(users, groups, everyone)
            .await
    }

    async fn schedule(&self, escalations: &[Escalation]) -> Result<usize> {
        DeferredPreferences::get(self)?.schedule(escalations).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<Escalation>> {
        DeferredPreferences::get(self)?
            .claim_due(now, owner, lease, limit)
            .await
    }

    async fn attempt(&self, id: &str, owner: &str, channel: &str) -> Result<bool> {
        DeferredPreferences::get(self)?
            .attempt(id, owner, channel)
            .await
    }

    async fn finish(&self, id: &str, owner: &str, how: Finish) -> Result<()> {
        DeferredPreferences::get(self)?.finish(id, owner, how).await
    }

    async fn set_digest(&self, user: &str, digest: Option<Escalation>) -> Result<()> {
        DeferredPreferences::get(self)?
            .set_digest(user, digest)
            .await
    }

    async fn purge_escalations(&self, before: DateTime<Utc>) -> Result<u64> {
        DeferredPreferences::get(self)?
            .purge_escalations(before)
            .await
    }

    async fn pending_escalations(&self) -> Result<u64> {
        DeferredPreferences::get(self)?.pending_escalations().await
    }
}
