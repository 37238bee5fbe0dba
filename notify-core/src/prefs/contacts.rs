//! [`ContactCache`]: remembers each user's contact (e-mail claim, groups) from their last
//! connection, writing to the store only when it changed, so a reconnecting client costs no
//! write.
//!
//! Connections hand their contact to a background writer ([`ContactCache::queue`],
//! [`ContactCache::write_queued`]) rather than writing it themselves: a reconnect storm
//! (every client of a restarted instance at once) must not put one store write, and one
//! task waiting for it, per connection in flight. Measured with 100,000 sessions over six
//! instances on FerretDB: per-connection writes timed out by the thousand and each waiting
//! task held ~8 KiB (BENCHMARKS.md, issue #14).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures::StreamExt;
use parking_lot::Mutex;

use super::background_run::BackgroundRun;
use super::store::{Contact, PreferenceStore};
use crate::auth::Principal;
use crate::error::Result;

/// Most users whose last written contact is cached; past it the cache starts over (a later
/// connection then writes once more, which is harmless).
const MAX_CACHED: usize = 100_000;

/// Most contacts waiting for the writer (one per user; a newer one replaces the older).
/// Past it a contact is not queued: the user's next connection queues it again.
const MAX_QUEUED: usize = 100_000;

/// Contact writes in flight at once.
const WRITES_IN_FLIGHT: usize = 4;

/// The last contact written per user, by this process.
///
/// Kept as 64-bit digests, user to contact: 16 bytes per user instead of the user's name,
/// e-mail and groups (over 200 bytes with their allocations, for every user who ever
/// connected). A collision could only skip one write of a contact that changed, with odds
/// of about one in 2^64 per pair of users.
#[derive(Debug, Default)]
pub struct ContactCache {
    written: Mutex<HashMap<u64, u64>>,
    /// Contacts waiting for the background writer, by user.
    queued: Mutex<HashMap<String, Contact>>,
    /// The background writer.
    writer: BackgroundRun,
}

fn contact_of(principal: &Principal) -> Contact {
    Contact {
        email: principal.email.clone(),
        groups: principal.groups.clone(),
    }
}

fn digest(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl ContactCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the principal's contact if it differs from what this process last wrote.
    pub async fn remember(&self, store: &dyn PreferenceStore, principal: &Principal) -> Result<()> {
        let contact = contact_of(principal);
        if self.is_written(&principal.user, &contact) {
            return Ok(());
        }
        store.remember(&principal.user, &contact).await?;
        self.mark_written(&principal.user, &contact);
        Ok(())
    }

    fn is_written(&self, user: &str, contact: &Contact) -> bool {
        self.written.lock().get(&digest(&user)) == Some(&digest(contact))
    }

    fn mark_written(&self, user: &str, contact: &Contact) {
        let mut written = self.written.lock();
        if written.len() >= MAX_CACHED {
            written.clear();
        }
        written.insert(digest(&user), digest(contact));
    }

    /// Queues the principal's contact for [`ContactCache::write_queued`] unless it is what
    /// this process last wrote. True when the caller must start a writer (none runs).
    pub fn queue(&self, principal: &Principal) -> bool {
        let contact = contact_of(principal);
        if self.is_written(&principal.user, &contact) {
            return false;
        }
        {
            let mut queued = self.queued.lock();
            if queued.len() >= MAX_QUEUED && !queued.contains_key(&principal.user) {
                tracing::debug!(user = %principal.user, "contact writer behind; not queued");
                return false;
            }
            queued.insert(principal.user.clone(), contact);
        }
        self.writer.claim()
    }

    /// Writes the queued contacts, a few at a time, until none are left. A
    /// failed write is logged and dropped (the user's next connection queues it again).
    pub async fn write_queued(&self, store: &dyn PreferenceStore) {
        loop {
            let batch: Vec<(String, Contact)> = {
                let mut queued = self.queued.lock();
                let users: Vec<String> = queued.keys().take(64).cloned().collect();
                users
                    .into_iter()
                    .filter_map(|u| queued.remove_entry(&u))
                    .collect()
            };
            if batch.is_empty() {
                if self.writer.release(|| self.queued.lock().is_empty()) {
                    return;
                }
                continue;
            }
            futures::stream::iter(batch)
                .for_each_concurrent(WRITES_IN_FLIGHT, |(user, contact)| async move {
                    match store.remember(&user, &contact).await {
                        Ok(()) => self.mark_written(&user, &contact),
                        Err(e) => {
                            tracing::warn!(%user, error = %e, "could not remember the user's contact")
                        }
                    }
                })
                .await;
        }
    }
}
