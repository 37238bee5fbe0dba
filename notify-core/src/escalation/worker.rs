//! [`Escalator`]: claims due escalations from the store and sends them on every channel.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::channel::{Channel, Delivery, Reason};
use crate::error::Result;
use crate::model::{Cursor, Notification};
use crate::prefs::local_time::send_time;
use crate::prefs::rest::next_digest;
use crate::prefs::{Escalation, EscalationKind, Finish, Profile};
use crate::service::NotifyService;
use crate::store::{ListQuery, Page, Reader};

/// Tuning of the escalation worker.
#[derive(Debug, Clone)]
pub struct EscalatorConfig {
    /// This instance's name: the lease owner (`NOTIFY_INSTANCE_ID`).
    pub instance: String,
    /// How often the due queue is polled.
    pub poll: Duration,
    /// How long a claimed escalation is reserved for this instance; another instance may
    /// take it over after that (its channels already attempted are not sent again).
    pub lease: Duration,
    /// Most escalations claimed per poll.
    pub batch: usize,
    /// Most notifications listed in one digest.
    pub digest_max: usize,
}

impl Default for EscalatorConfig {
    fn default() -> Self {
        EscalatorConfig {
            instance: "notify".into(),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            batch: 100,
            digest_max: 50,
        }
    }
}

/// The escalation worker. Run one per instance; instances sharing a store share the work.
pub struct Escalator {
    service: Arc<NotifyService>,
    channels: Vec<Arc<dyn Channel>>,
    config: EscalatorConfig,
}

impl std::fmt::Debug for Escalator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escalator")
            .field(
                "channels",
                &self.channels.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish()
    }
}

/// A running [`Escalator`]; [`EscalatorHandle::shutdown`] stops it between escalations.
#[derive(Debug)]
pub struct EscalatorHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EscalatorHandle {
    /// Stops polling and waits for the escalation in progress (at most `deadline`).
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(deadline, self.task).await;
    }
}

impl Escalator {
    /// A worker sending on `channels`.
    pub fn new(
        service: Arc<NotifyService>,
        channels: Vec<Arc<dyn Channel>>,
        config: EscalatorConfig,
    ) -> Self {
        Escalator {
            service,
            channels,
            config,
        }
    }

    /// Polls the due queue until shut down.
    pub fn spawn(self) -> EscalatorHandle {
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop_rx.wait_for(|s| *s) => break,
                    _ = tick.tick() => {}
                }
                // Drain what is due, batch by batch, then wait for the next tick.
                loop {
                    match self.run_once().await {
                        Ok(n) if n == self.config.batch && !*stop_rx.borrow() => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "escalation poll failed; retrying");
                            break;
                        }
                    }
                }
            }
        });
        EscalatorHandle { stop, task }
    }

    /// Claims and handles one batch of due escalations; answers how many were claimed.
    pub async fn run_once(&self) -> Result<usize> {
        let prefs = self.service.preferences();
        let claimed = prefs
            .claim_due(
                Utc::now(),
                &self.config.instance,
                self.config.lease,
                self.config.batch,
            )
            .await?;
        let n = claimed.len();
        for e in claimed {
            let how = match self.handle(&e).await {
                Ok(how) => how,
                Err(e2) if e2.is_transient() => {
                    // Leave it leased: another poll (here or elsewhere) retries it once the
                    // lease runs out; channels already attempted are not sent again.
                    tracing::warn!(escalation = %e.id, error = %e2, "escalation failed; will retry after the lease");
                    continue;
                }
                Err(e2) => {
                    tracing::warn!(escalation = %e.id, error = %e2, "escalation dropped");
                    Finish::Done
                }
            };
            prefs.finish(&e.id, &self.config.instance, how).await?;
        }
        Ok(n)
    }

    async fn handle(&self, e: &Escalation) -> Result<Finish> {
        let profile = self.service.preferences().profile(&e.user).await?;
        let prefs = &profile.prefs;
        let now = Utc::now();
        match &e.kind {
            EscalationKind::Unread(n) => {
                if !prefs.escalates(&n.notification_type, n.priority) {
                    count("unread", "cancelled");
                    return Ok(Finish::Done);
                }
                if !self.is_unread(&profile, n).await? {
                    tracing::debug!(escalation = %e.id, "read before escalation; cancelled");
                    count("unread", "read");
                    return Ok(Finish::Done);
                }
                let at = send_time(prefs.quiet_hours.as_ref(), prefs.tz, now);
                if at > now {
                    tracing::debug!(escalation = %e.id, until = %at, "quiet hours; deferred");
                    return Ok(Finish::Defer(at));
                }
                self.deliver(e, &profile, Reason::Unread, vec![(**n).clone()])
                    .await;
                Ok(Finish::Done)
            }
            EscalationKind::Digest => {
                if !prefs.digest.enabled {
                    return Ok(Finish::Done);
                }
                let at = send_time(prefs.quiet_hours.as_ref(), prefs.tz, now);
                if at > now {
                    return Ok(Finish::Defer(at));
                }
                let unread = self.unread_for_digest(&profile).await?;
                if unread.is_empty() {
                    count("digest", "empty");
                } else {
                    self.deliver(e, &profile, Reason::Digest, unread).await;
                }
                self.service
                    .preferences()
                    .set_digest(&e.user, next_digest(&e.user, prefs))
                    .await?;
                Ok(Finish::Done)
            }
        }
    }

    /// Whether the user has not read `n` (and can still see it): the first unread item
    /// just at or before `n`'s cursor is `n` itself. One store read.
    async fn is_unread(&self, profile: &Profile, n: &Notification) -> Result<bool> {
        let reader = Reader::new(profile.user.clone(), profile.contact.groups.clone());
        let page = self
            .service
            .store()
            .list(
                &reader,
                &ListQuery {
                    // Sorts right after `n` (ids are [0-9a-z_]).
                    page: Page::NewestBefore(Some(Cursor {
                        seq: n.seq,
                        id: format!("{}~", n.id),
                    })),
                    limit: 1,
                    unread_only: true,
                },
            )
            .await?;
        Ok(page.first().is_some_and(|i| i.notification.id == n.id))
    }

    async fn unread_for_digest(&self, profile: &Profile) -> Result<Vec<Notification>> {
        let reader = Reader::new(profile.user.clone(), profile.contact.groups.clone());
        let items = crate::prefs::muted_inbox::list(
            self.service.store().as_ref(),
            &reader,
            &ListQuery {
                page: Page::NewestBefore(None),
                limit: self.config.digest_max.clamp(1, 200),
                unread_only: true,
            },
            &profile.prefs.muted_types,
        )
        .await?;
        Ok(items.into_iter().map(|i| i.notification).collect())
    }

    async fn deliver(
        &self,
        e: &Escalation,
        profile: &Profile,
        reason: Reason,
        notifications: Vec<Notification>,
    ) {
        let delivery = Delivery {
            user: profile.user.clone(),
            email: profile.contact.email.clone(),
            reason,
            notifications,
            tz: profile.prefs.tz,
            key: e.id.clone(),
        };
        for channel in &self.channels {
            let name = channel.name();
            match self
                .service
                .preferences()
                .attempt(&e.id, &self.config.instance, name)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(escalation = %e.id, channel = name, error = %err, "could not record the attempt; not sending");
                    continue;
                }
            }
            match channel.send(&delivery).await {
                Ok(()) => {
                    tracing::debug!(escalation = %e.id, user = %profile.user, channel = name, reason = reason.as_str(), "escalation sent");
                    ::metrics::counter!(ESCALATIONS_TOTAL, "channel" => name.to_string(), "result" => "sent")
                        .increment(1);
                }
                Err(err) => {
                    tracing::warn!(escalation = %e.id, channel = name, error = %err, "escalation not delivered");
                    ::metrics::counter!(ESCALATIONS_TOTAL, "channel" => name.to_string(), "result" => "failed")
                        .increment(1);
                }
            }
        }
    }
}

/// Counter of escalations by channel and result (`sent`, `failed`), and of those that
/// ended without sending (`channel="none"`: `read`, `cancelled`, `empty`).
pub(crate) const ESCALATIONS_TOTAL: &str = "notify_escalations_total";

fn count(kind: &'static str, result: &'static str) {
    tracing::trace!(kind, result, "escalation ended without sending");
    ::metrics::counter!(ESCALATIONS_TOTAL, "channel" => "none", "result" => result).increment(1);
}
