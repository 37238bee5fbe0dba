//! `GET`/`PUT /api/preferences` (contract section 5a), framework-free like [`crate::api`].

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use super::local_time::{next_at, send_time};
use super::preferences::Preferences;
use super::store::{Escalation, EscalationKind};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::service::NotifyService;

/// The user's preferences (defaults when never set) as the contract's JSON.
pub async fn get(service: &NotifyService, principal: &Principal) -> Result<Value> {
    remember(service, principal).await;
    let prefs = service.preferences().get(&principal.user).await?;
    Ok(prefs.unwrap_or_default().to_json())
}

/// Validates and stores a `PUT` body; answers the stored preferences.
pub async fn put(service: &NotifyService, principal: &Principal, body: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_body(format!("invalid JSON: {e}")))?;
    let prefs = Preferences::from_json(&value)?;
    remember(service, principal).await;
    let store = service.preferences();
    store.put(&principal.user, &prefs).await?;
    service.mutes().set(&principal.user, Some(&prefs));
    store
        .set_digest(&principal.user, next_digest(&principal.user, &prefs))
        .await?;
    tracing::debug!(user = %principal.user, "preferences stored");
    Ok(prefs.to_json())
}

/// The user's next digest, when enabled: at `digest.at` in `tz`, after any quiet hours.
pub fn next_digest(user: &str, prefs: &Preferences) -> Option<Escalation> {
    if !prefs.digest.enabled {
        return None;
    }
    let at = next_at(prefs.digest.at, prefs.tz, Utc::now());
    let date = at.with_timezone(&prefs.tz).date_naive().to_string();
    Some(Escalation {
        id: Escalation::digest_id(user, &date),
        user: user.to_string(),
        kind: EscalationKind::Digest,
        due_at: send_time(prefs.quiet_hours.as_ref(), prefs.tz, at),
        attempted: Vec::new(),
    })
}

/// Remembers the principal's e-mail claim and groups (their last connection). A failure is
/// logged, not returned: the request itself does not depend on it.
pub async fn remember(service: &NotifyService, principal: &Principal) {
    if let Err(e) = service
        .contacts()
        .remember(service.preferences().as_ref(), principal)
        .await
    {
        tracing::warn!(user = %principal.user, error = %e, "could not remember the user's contact");
    }
}

/// [`remember`] without waiting for it (a connection starting must not wait for the store,
/// which may be down; the contact is only needed when an escalation falls due): queued for
/// the one background writer of the process.
pub fn remember_in_background(service: &Arc<NotifyService>, principal: &Principal) {
    if service.contacts().queue(principal) {
        let service = service.clone();
        tokio::spawn(async move {
            let store = service.preferences().clone();
            service.contacts().write_queued(store.as_ref()).await;
        });
    }
}
