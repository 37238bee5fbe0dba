//! [`MemoryPreferences`]: the embedded [`PreferenceStore`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::preferences::Preferences;
use super::store::{Contact, Escalation, EscalationKind, Finish, PreferenceStore, Profile};
use crate::error::Result;

/// Preferences and the escalation schedule in memory, indexed so that neither scheduling
/// nor claiming scans everything: enabled users by id and by group, pending escalations by
/// due time. One lock, never held across an await. Two services in one process that share
/// one instance behave like two instances sharing a database.
#[derive(Debug, Default)]
pub struct MemoryPreferences {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    prefs: HashMap<String, Preferences>,
    contacts: HashMap<String, Contact>,
    /// Users with e-mail escalation enabled.
    enabled: BTreeSet<String>,
    /// Remembered group -> enabled users in it.
    enabled_by_group: HashMap<String, HashSet<String>>,
    escalations: HashMap<String, Entry>,
    /// Pending (not done) escalations by due time.
    due: BTreeSet<(DateTime<Utc>, String)>,
}

#[derive(Debug)]
struct Entry {
    escalation: Escalation,
    done: bool,
    lease: Option<(String, DateTime<Utc>)>,
}

impl MemoryPreferences {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    /// Re-indexes a user after their preferences or contact changed.
    fn reindex(&mut self, user: &str) {
        for members in self.enabled_by_group.values_mut() {
            members.remove(user);
        }
        self.enabled_by_group.retain(|_, m| !m.is_empty());
        let on = self.prefs.get(user).is_some_and(|p| p.email.enabled);
        if !on {
            self.enabled.remove(user);
            return;
        }
        self.enabled.insert(user.to_string());
        if let Some(c) = self.contacts.get(user) {
            for g in &c.groups {
                self.enabled_by_group
                    .entry(g.clone())
                    .or_default()
                    .insert(user.to_string());
            }
        }
    }

    fn profile(&self, user: &str) -> Profile {
        Profile {
            user: user.to_string(),
            prefs: self.prefs.get(user).cloned().unwrap_or_default(),
            contact: self.contacts.get(user).cloned().unwrap_or_default(),
        }
    }

    fn insert(&mut self, e: &Escalation) -> bool {
        if self.escalations.contains_key(&e.id) {
            return false;
        }
        self.due.insert((e.due_at, e.id.clone()));
        self.escalations.insert(
            e.id.clone(),
            Entry {
                escalation: e.clone(),
                done: false,
                lease: None,
            },
        );
        true
    }

    fn remove(&mut self, id: &str) {
        if let Some(e) = self.escalations.remove(id) {
            self.due.remove(&(e.escalation.due_at, e.escalation.id));
        }
    }
}

#[async_trait]
impl PreferenceStore for MemoryPreferences {
    async fn get(&self, user: &str) -> Result<Option<Preferences>> {
        Ok(self.inner.lock().prefs.get(user).cloned())
    }

    async fn put(&self, user: &str, prefs: &Preferences) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.prefs.insert(user.to_string(), prefs.clone());
        inner.reindex(user);
        Ok(())
    }

    async fn remember(&self, user: &str, contact: &Contact) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.contacts.insert(user.to_string(), contact.clone());
        inner.reindex(user);
        Ok(())
    }

    async fn profile(&self, user: &str) -> Result<Profile> {
        Ok(self.inner.lock().profile(user))
    }

    async fn profiles(
        &self,
        users: &[String],
        groups: &[String],
        everyone: bool,
    ) -> Result<Vec<Profile>> {
        let inner = self.inner.lock();
        let mut wanted: BTreeSet<&String> = BTreeSet::new();
        if everyone {
            wanted.extend(inner.enabled.iter());
        } else {
            wanted.extend(users.iter().filter(|u| inner.enabled.contains(*u)));
            for g in groups {
                if let Some(members) = inner.enabled_by_group.get(g) {
                    wanted.extend(members.iter());
                }
            }
        }
        Ok(wanted.into_iter().map(|u| inner.profile(u)).collect())
    }

    async fn schedule(&self, escalations: &[Escalation]) -> Result<usize> {
        let mut inner = self.inner.lock();
        Ok(escalations.iter().filter(|e| inner.insert(e)).count())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Escalation>> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut inner = self.inner.lock();
        let due: Vec<String> = inner
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            if out.len() == limit {
                break;
            }
            let entry = inner.escalations.get_mut(&id).expect("indexed");
            if entry.done || entry.lease.as_ref().is_some_and(|(_, t)| *t > now) {
                continue;
            }
            entry.lease = Some((owner.to_string(), until));
            out.push(entry.escalation.clone());
        }
        Ok(out)
    }

    async fn attempt(&self, id: &str, owner: &str, channel: &str) -> Result<bool> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.escalations.get_mut(id) else {
            return Ok(false);
        };
        let holds = entry.lease.as_ref().is_some_and(|(o, _)| o == owner);
        if entry.done || !holds || entry.escalation.attempted.iter().any(|c| c == channel) {
            return Ok(false);
        }
        entry.escalation.attempted.push(channel.to_string());
        Ok(true)
    }

    async fn finish(&self, id: &str, owner: &str, how: Finish) -> Result<()> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.escalations.get_mut(id) else {
            return Ok(());
        };
        if entry.done || entry.lease.as_ref().is_none_or(|(o, _)| o != owner) {
            return Ok(());
        }
        entry.lease = None;
        let old = (entry.escalation.due_at, id.to_string());
        match how {
            Finish::Done => {
                entry.done = true;
                inner.due.remove(&old);
            }
            Finish::Defer(at) => {
                entry.escalation.due_at = at;
                inner.due.remove(&old);
                inner.due.insert((at, id.to_string()));
            }
        }
        Ok(())
    }

    async fn set_digest(&self, user: &str, digest: Option<Escalation>) -> Result<()> {
        let mut inner = self.inner.lock();
        let prefix = Escalation::digest_id(user, "");
        let stale: Vec<String> = inner
            .escalations
            .iter()
            .filter(|(id, e)| {
                id.starts_with(&prefix)
                    && !e.done
                    && e.lease.is_none()
                    && e.escalation.attempted.is_empty()
                    && matches!(e.escalation.kind, EscalationKind::Digest)
                    && digest.as_ref().is_none_or(|d| &d.id != *id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            inner.remove(&id);
        }
        if let Some(d) = digest {
            let pending = inner
                .escalations
                .get(&d.id)
                .map(|e| !e.done && e.lease.is_none() && e.escalation.attempted.is_empty());
            match pending {
                // Same day, new time: move it.
                Some(true) => {
                    inner.remove(&d.id);
                    inner.insert(&d);
                }
                // Already sent (or being sent) today: leave it.
                Some(false) => {}
                None => {
                    inner.insert(&d);
                }
            }
        }
        Ok(())
    }

    async fn purge_escalations(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.inner.lock();
        let old: Vec<String> = inner
            .escalations
            .iter()
            .filter(|(_, e)| e.done && e.escalation.due_at < before)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            inner.remove(id);
        }
        Ok(old.len() as u64)
    }

    async fn pending_escalations(&self) -> Result<u64> {
        Ok(self.inner.lock().due.len() as u64)
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    #[tokio::test]
    async fn memory_preferences_conformance() {
        crate::testkit::prefs::run_all(|| async {
            std::sync::Arc::new(super::MemoryPreferences::new())
                as std::sync::Arc<dyn crate::prefs::PreferenceStore>
        })
        .await;
    }
}
