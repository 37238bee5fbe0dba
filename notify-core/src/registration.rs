//! [`Registration`]: a session's place in the hub, held by a guard so that every way a
//! session can end (a clean close, an error, a dropped future, a panic) gives it back.

use std::sync::Arc;

use crate::hub::{SessionHub, SessionId, SessionSender};
use crate::limits::{ConnectionGuard, UserSessionGuard};
use crate::metrics;
use crate::store::Reader;

/// A session registered with a hub. Dropping it unregisters the session and updates the
/// session gauge; a leaked hub entry would otherwise be walked by every broadcast forever.
/// It also holds the session's limit slots, freed at the same moment.
pub struct Registration {
    hub: Arc<dyn SessionHub>,
    id: SessionId,
    _slots: SessionSlots,
}

/// The limit slots a session holds while it lives (see [`crate::limits`]).
#[derive(Debug, Default)]
pub struct SessionSlots {
    /// Its connection slot (`NOTIFY_MAX_CONNECTIONS`).
    pub connection: Option<ConnectionGuard>,
    /// Its slot among the user's sessions (`NOTIFY_MAX_SESSIONS_PER_USER`).
    pub user_session: Option<UserSessionGuard>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

impl Registration {
    /// Registers `reader`'s session with `hub`.
    pub fn new(
        hub: &Arc<dyn SessionHub>,
        reader: &Arc<Reader>,
        sender: SessionSender,
        slots: SessionSlots,
    ) -> Self {
        let id = hub.register(reader, sender);
        metrics::gauge_sessions(hub.session_count());
        Registration {
            hub: hub.clone(),
            id,
            _slots: slots,
        }
    }

    /// The session's id in the hub.
    pub fn id(&self) -> SessionId {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
        metrics::gauge_sessions(self.hub.session_count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{session_queue, LocalHub};
    use crate::limits::{Limits, LimitsConfig};

    #[tokio::test]
    async fn a_panicking_session_leaves_no_hub_entry_and_no_slots() {
        let hub: Arc<dyn SessionHub> = Arc::new(LocalHub::new());
        let limits = Arc::new(Limits::new(LimitsConfig {
            max_connections: 10,
            max_sessions_per_user: 10,
            publish_rate: 0,
            user_rate: 0,
        }));
        let (h, l) = (hub.clone(), limits.clone());
        let task = tokio::spawn(async move {
            let (sender, _rx) = session_queue(4);
            let slots = SessionSlots {
                connection: Some(l.connection().unwrap()),
                user_session: Some(l.user_session("alice").unwrap()),
            };
            let _registration = Registration::new(
                &h,
                &Arc::new(Reader::new("alice", vec!["g".into()])),
                sender,
                slots,
            );
            assert_eq!(h.session_count(), 1);
            panic!("a bug in a session");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(hub.session_count(), 0, "the hub entry leaked");
        assert_eq!(limits.connections(), 0);
        assert_eq!(limits.user_sessions("alice"), 0);
    }
}
