//! Turning stored notifications into scheduled escalations.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::model::{Audience, Notification};
use crate::prefs::{Escalation, EscalationKind};
use crate::service::NotifyService;

/// Schedules the escalations of freshly stored notifications: for each user with e-mail
/// escalation enabled who can see one (personal, by remembered groups, broadcast), whose
/// `min_priority` it meets and who did not mute its type, one escalation due `after_s`
/// after it was stored. Idempotent (a redelivered batch schedules nothing new); nothing at
/// all when the service has escalation off. Answers how many were new.
pub async fn schedule(service: &NotifyService, stored: &[Notification]) -> Result<usize> {
    if !service.escalation_enabled() || stored.is_empty() {
        return Ok(0);
    }
    let mut users = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut everyone = false;
    for n in stored {
        match &n.audience {
            Audience::User(u) => {
                users.insert(u.clone());
            }
            Audience::Group(g) => {
                groups.insert(g.clone());
            }
            Audience::Broadcast => everyone = true,
        }
    }
    let users: Vec<String> = users.into_iter().collect();
    let groups: Vec<String> = groups.into_iter().collect();
    let profiles = service
        .preferences()
        .profiles(&users, &groups, everyone)
        .await?;
    if profiles.is_empty() {
        return Ok(0);
    }
    let mut escalations = Vec::new();
    for n in stored {
        for p in &profiles {
            if !n.audience.includes(&p.user, &p.contact.groups)
                || !p.prefs.escalates(&n.notification_type, n.priority)
            {
                continue;
            }
            let after = chrono::Duration::seconds(p.prefs.email.after_s as i64);
            escalations.push(Escalation {
                id: Escalation::unread_id(&n.id, &p.user),
                user: p.user.clone(),
                kind: EscalationKind::Unread(Box::new(n.clone())),
                due_at: n.created_at() + after,
                attempted: Vec::new(),
            });
        }
    }
    if escalations.is_empty() {
        return Ok(0);
    }
    let new = service.preferences().schedule(&escalations).await?;
    tracing::debug!(
        scheduled = new,
        ids = ?escalations.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        "escalations scheduled"
    );
    Ok(new)
}
