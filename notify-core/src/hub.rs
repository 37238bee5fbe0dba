//! Routing notifications to connected sessions: the [`SessionHub`] trait, the local hub,
//! bounded per-session queues, and the record of pushes not yet stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, Notify};

use crate::model::{Audience, Push};
use crate::store::Reader;

/// Identifies one session within a hub.
pub type SessionId = u64;

/// The hub's end of a session's outgoing queue.
#[derive(Debug, Clone)]
pub struct SessionSender {
    tx: mpsc::Sender<Arc<Push>>,
    overflow: Arc<Overflow>,
}

#[derive(Debug, Default)]
struct Overflow {
    flag: AtomicBool,
    notify: Notify,
}

/// The session's end of its outgoing queue.
#[derive(Debug)]
pub struct SessionReceiver {
    rx: mpsc::Receiver<Arc<Push>>,
    overflow: Arc<Overflow>,
}

/// A bounded outgoing queue for one session.
pub fn session_queue(capacity: usize) -> (SessionSender, SessionReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let overflow = Arc::new(Overflow::default());
    (
        SessionSender {
            tx,
            overflow: overflow.clone(),
        },
        SessionReceiver { rx, overflow },
    )
}

impl SessionSender {
    /// Queues a push without waiting. A full queue marks the session as a slow consumer
    /// (it will be closed) and returns false.
    pub fn offer(&self, push: &Arc<Push>) -> bool {
        if self.overflow.flag.load(Ordering::Relaxed) {
            return false;
        }
        match self.tx.try_send(push.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.flag.store(true, Ordering::Relaxed);
                self.overflow.notify.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl SessionReceiver {
    /// The next queued push; `None` when the hub dropped the session.
    pub async fn recv(&mut self) -> Option<Arc<Push>> {
        self.rx.recv().await
    }

    /// The next queued push, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Push>> {
        self.rx.try_recv().ok()
    }

    /// True once the queue has overflowed.
    pub fn overflowed(&self) -> bool {
        self.overflow.flag.load(Ordering::Relaxed)
    }

    /// A handle that completes when the queue overflows, usable while receiving.
    pub fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(self.overflow.clone())
    }
}

/// Completes when a session queue overflows; see [`SessionReceiver::overflow_signal`].
#[derive(Debug, Clone)]
pub struct OverflowSignal(Arc<Overflow>);

impl OverflowSignal {
    /// Waits for the overflow (returns at once if it already happened).
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.0.flag.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

/// Routes notifications to the sessions connected to this process.
///
/// # Contract
/// - `register` adds a session for `reader` (user and groups from the token) and returns its
///   id; `unregister` removes it. Both are cheap and never block on I/O.
/// - `deliver` offers the push to every local session that may see it: the user's own
///   sessions for a personal notification, members' sessions for a group, all sessions for a
///   broadcast. It never waits: a full session queue marks that session a slow consumer
///   and does not hold up the others. Returns the number of sessions it reached.
/// - Which subscription of a session receives the push is the session's business.
pub trait SessionHub: Send + Sync + 'static {
    /// Adds a session.
    fn register(&self, reader: &Reader, sender: SessionSender) -> SessionId;
    /// Removes a session.
    fn unregister(&self, id: SessionId);
    /// Offers a push to the matching sessions; returns how many took it.
    fn deliver(&self, push: &Arc<Push>) -> usize;
    /// Sessions currently registered.
    fn session_count(&self) -> usize;
}

/// The in-process hub: indexes by user and by group, one read-write lock that is never held
/// across an await.
#[derive(Debug, Default)]
pub struct LocalHub {
    next_id: AtomicU64,
    inner: RwLock<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    sessions: HashMap<SessionId, Entry>,
    by_user: HashMap<String, Vec<SessionId>>,
    by_group: HashMap<String, Vec<SessionId>>,
}

#[derive(Debug)]
struct Entry {
    reader: Reader,
    sender: SessionSender,
}

impl LocalHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }
}

fn remove_from(index: &mut HashMap<String, Vec<SessionId>>, key: &str, id: SessionId) {
    if let Some(ids) = index.get_mut(key) {
        ids.retain(|x| *x != id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

impl SessionHub for LocalHub {
    fn register(&self, reader: &Reader, sender: SessionSender) -> SessionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.write();
        inner
            .by_user
            .entry(reader.user.clone())
            .or_default()
            .push(id);
        for g in &reader.groups {
            inner.by_group.entry(g.clone()).or_default().push(id);
        }
        inner.sessions.insert(
            id,
            Entry {
                reader: reader.clone(),
                sender,
            },
        );
        id
    }

    fn unregister(&self, id: SessionId) {
        let mut inner = self.inner.write();
        if let Some(entry) = inner.sessions.remove(&id) {
            remove_from(&mut inner.by_user, &entry.reader.user, id);
            for g in &entry.reader.groups {
                remove_from(&mut inner.by_group, g, id);
            }
        }
    }

    fn deliver(&self, push: &Arc<Push>) -> usize {
        let inner = self.inner.read();
        let offer = |id: &SessionId| inner.sessions.get(id).is_some_and(|e| e.sender.offer(push));
        match &push.notification.audience {
            Audience::User(u) => inner
                .by_user
                .get(u)
                .map_or(0, |ids| ids.iter().filter(|id| offer(id)).count()),
            Audience::Group(g) => inner
                .by_group
                .get(g)
                .map_or(0, |ids| ids.iter().filter(|id| offer(id)).count()),
            Audience::Broadcast => inner
                .sessions
                .values()
                .filter(|e| e.sender.offer(push))
                .count(),
        }
    }

    fn session_count(&self) -> usize {
        self.inner.read().sessions.len()
    }
}

/// Pushes that went out live but are not stored yet.
///
/// A client resuming with `since` reads the store; a notification pushed just before the
/// client registered but stored just after its read would fall in the gap. The resume path
/// also replays these, so nothing goes missing (a repeat is possible; clients de-duplicate).
#[derive(Debug, Default)]
pub struct PendingPushes {
    inner: Mutex<HashMap<String, Arc<Push>>>,
}

impl PendingPushes {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records pushes before they are offered to sessions.
    pub fn add(&self, pushes: &[Arc<Push>]) {
        let mut inner = self.inner.lock();
        for p in pushes {
            inner.insert(p.notification.id.clone(), p.clone());
        }
    }

    /// Forgets pushes once they are stored.
    pub fn remove(&self, pushes: &[Arc<Push>]) {
        let mut inner = self.inner.lock();
        for p in pushes {
            inner.remove(&p.notification.id);
        }
    }

    /// The pending pushes `reader` may see, oldest first.
    pub fn visible_to(&self, reader: &Reader) -> Vec<Arc<Push>> {
        let inner = self.inner.lock();
        let mut out: Vec<Arc<Push>> = inner
            .values()
            .filter(|p| {
                p.notification
                    .audience
                    .includes(&reader.user, &reader.groups)
            })
            .cloned()
            .collect();
        out.sort_by_key(|p| (p.notification.seq, p.notification.id.clone()));
        out
    }

    /// How many pushes wait for the store.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// True when every push is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit_support::push_for;

    #[tokio::test]
    async fn routes_by_audience_and_marks_overflow() {
        let hub = LocalHub::new();
        let (a_tx, mut a_rx) = session_queue(2);
        let (b_tx, mut b_rx) = session_queue(8);
        let a = hub.register(&Reader::new("ann", vec!["ops".into()]), a_tx);
        hub.register(&Reader::new("bob", vec![]), b_tx);
        assert_eq!(hub.deliver(&push_for(Audience::User("ann".into()))), 1);
        assert_eq!(hub.deliver(&push_for(Audience::Group("ops".into()))), 1);
        assert_eq!(
            hub.deliver(&push_for(Audience::Broadcast)),
            1,
            "ann's queue is full"
        );
        assert!(a_rx.overflowed(), "a full queue marks a slow consumer");
        assert!(!b_rx.overflowed());
        assert_eq!(
            b_rx.recv().await.unwrap().notification.audience,
            Audience::Broadcast
        );
        assert_eq!(
            a_rx.recv().await.unwrap().notification.audience,
            Audience::User("ann".into())
        );
        hub.unregister(a);
        assert_eq!(hub.session_count(), 1);
        assert_eq!(hub.deliver(&push_for(Audience::User("ann".into()))), 0);
    }

    #[test]
    fn pending_pushes_are_filtered_by_reader() {
        let pending = PendingPushes::new();
        let pushes = [
            push_for(Audience::User("ann".into())),
            push_for(Audience::Group("ops".into())),
        ];
        pending.add(&pushes);
        assert_eq!(pending.visible_to(&Reader::new("ann", vec![])).len(), 1);
        assert_eq!(
            pending
                .visible_to(&Reader::new("zed", vec!["ops".into()]))
                .len(),
            1
        );
        pending.remove(&pushes);
        assert!(pending.is_empty());
    }
}
