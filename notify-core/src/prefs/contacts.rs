//! [`ContactCache`]: remembers each user's contact (e-mail claim, groups) from their last
//! connection, writing to the store only when it changed, so a reconnecting client costs no
//! write.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::store::{Contact, PreferenceStore};
use crate::auth::Principal;
use crate::error::Result;

/// Most users whose last written contact is cached; past it the cache starts over (a later
/// connection then writes once more, which is harmless).
const MAX_CACHED: usize = 100_000;

/// The last contact written per user, by this process.
#[derive(Debug, Default)]
pub struct ContactCache {
    written: Mutex<HashMap<String, Contact>>,
}

impl ContactCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the principal's contact if it differs from what this process last wrote.
    pub async fn remember(&self, store: &dyn PreferenceStore, principal: &Principal) -> Result<()> {
        let contact = Contact {
            email: principal.email.clone(),
            groups: principal.groups.clone(),
        };
        if self.written.lock().get(&principal.user) == Some(&contact) {
            return Ok(());
        }
        store.remember(&principal.user, &contact).await?;
        let mut written = self.written.lock();
        if written.len() >= MAX_CACHED {
            written.clear();
        }
        written.insert(principal.user.clone(), contact);
        Ok(())
    }
}
