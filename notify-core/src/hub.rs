//! Routing notifications to connected sessions: the [`SessionHub`] trait, the local hub and
//! bounded per-session queues (the record of pushes not yet stored is in
//! [`crate::pending`], re-exported here).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::task::AtomicWaker;
use parking_lot::{Mutex, RwLock};

use crate::model::{Audience, Push};
use crate::prefs::MuteRegistry;
use crate::store::Reader;

pub use crate::pending::PendingPushes;

/// Identifies one session within a hub.
pub type SessionId = u64;

/// The hub's end of a session's outgoing queue.
#[derive(Debug)]
pub struct SessionSender {
    queue: Arc<Queue>,
}

/// The session's end of its outgoing queue.
#[derive(Debug)]
pub struct SessionReceiver {
    queue: Arc<Queue>,
}

/// One session's bounded queue: a `VecDeque` under a mutex plus the receiver's waker.
///
/// A tokio `mpsc` channel costs about 860 bytes per session before anything is sent (the
/// cache-padded channel and its first 32-slot block) and keeps its blocks; this costs about
/// 170, allocates slots only while pushes wait, and gives them back once drained, so an idle
/// session holds no slots however large a burst it once received. Only the hub offers and
/// only the session receives, so the mutex is uncontended except for the moment of a push.
///
/// The queue also carries the session's two signals, overflow and shutdown, over the same
/// waker: a session waits for pushes and signals with one registration, and its task holds
/// no `Notify` future or shutdown receiver (together ~200 bytes per idle session).
#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    /// The receiving task, woken on a push, a signal, and when the last sender goes.
    waker: AtomicWaker,
    capacity: usize,
    senders: AtomicUsize,
    overflow: AtomicBool,
    shutdown: AtomicBool,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Arc<Push>>,
    receiver_gone: bool,
}

/// Slots a drained queue may keep (4 pointers); more are given back.
const KEEP_SLOTS: usize = 4;

/// A bounded outgoing queue for one session.
pub fn session_queue(capacity: usize) -> (SessionSender, SessionReceiver) {
    let queue = Arc::new(Queue {
        state: Mutex::new(QueueState::default()),
        waker: AtomicWaker::new(),
        capacity: capacity.max(1),
        senders: AtomicUsize::new(1),
        overflow: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
    });
    (
        SessionSender {
            queue: queue.clone(),
        },
        SessionReceiver { queue },
    )
}

impl Clone for SessionSender {
    fn clone(&self) -> Self {
        self.queue.senders.fetch_add(1, Ordering::Relaxed);
        SessionSender {
            queue: self.queue.clone(),
        }
    }
}

impl Drop for SessionSender {
    fn drop(&mut self) {
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The receiver learns that nothing more will come.
            self.queue.waker.wake();
        }
    }
}

impl SessionSender {
    /// Queues a push without waiting. A full queue marks the session as a slow consumer
    /// (it will be closed) and returns false.
    pub fn offer(&self, push: &Arc<Push>) -> bool {
        let q = &self.queue;
        if q.overflow.load(Ordering::Relaxed) {
            return false;
        }
        let mut state = q.state.lock();
        if state.receiver_gone {
            return false;
        }
        if state.items.len() >= q.capacity {
            drop(state);
            q.overflow.store(true, Ordering::Release);
            q.waker.wake();
            return false;
        }
        state.items.push_back(push.clone());
        drop(state);
        q.waker.wake();
        true
    }

    /// Tells the session that the server is shutting down ([`Signal::ShuttingDown`]).
    pub fn shut_down(&self) {
        self.queue.shutdown.store(true, Ordering::Release);
        self.queue.waker.wake();
    }
}

/// What a session learns from its queue besides pushes; see [`SessionReceiver::signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The queue overflowed: the session is a slow consumer and must close.
    Overflowed,
    /// The server is shutting down: the session closes with a reconnect hint.
    ShuttingDown,
}

impl Drop for SessionReceiver {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        state.receiver_gone = true;
        state.items = VecDeque::new();
    }
}

impl SessionReceiver {
    /// The next queued push; `None` when the hub dropped the session.
    pub async fn recv(&self) -> Option<Arc<Push>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> Poll<Option<Arc<Push>>> {
        if let Some(p) = self.pop() {
            return Poll::Ready(Some(p));
        }
        self.queue.waker.register(cx.waker());
        // Checked again after registering: a push or the last sender's drop in between
        // would otherwise go unnoticed.
        if let Some(p) = self.pop() {
            return Poll::Ready(Some(p));
        }
        if self.queue.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(self.pop());
        }
        Poll::Pending
    }

    fn pop(&self) -> Option<Arc<Push>> {
        let mut state = self.queue.state.lock();
        let push = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
            state.items = VecDeque::new();
        }
        push
    }

    /// The next queued push, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Push>> {
        self.pop()
    }

    /// The next queued push, if one is waiting and `take` accepts it (otherwise it stays
    /// first in the queue).
    pub fn try_recv_if(&mut self, take: impl FnOnce(&Arc<Push>) -> bool) -> Option<Arc<Push>> {
        let mut state = self.queue.state.lock();
        if !state.items.front().is_some_and(take) {
            return None;
        }
        let push = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
            state.items = VecDeque::new();
        }
        push
    }

    /// True once the queue has overflowed.
    pub fn overflowed(&self) -> bool {
        self.queue.overflow.load(Ordering::Acquire)
    }

    /// Waits for a [`Signal`] (returns at once if one was given); usable while receiving.
    /// Overflow comes first when both were given.
    pub async fn signal(&self) -> Signal {
        std::future::poll_fn(|cx| self.poll_signal(cx, true)).await
    }

    /// Waits for the queue to overflow (returns at once if it did), ignoring shutdown: a
    /// session writing a frame finishes the write first.
    pub async fn overflow(&self) {
        std::future::poll_fn(|cx| self.poll_signal(cx, false).map(|_| ())).await
    }

    fn poll_signal(&self, cx: &mut std::task::Context<'_>, shutdown: bool) -> Poll<Signal> {
        let given = || {
            if self.queue.overflow.load(Ordering::Acquire) {
                Some(Signal::Overflowed)
            } else if shutdown && self.queue.shutdown.load(Ordering::Acquire) {
                Some(Signal::ShuttingDown)
            } else {
                None
            }
        };
        if let Some(signal) = given() {
            return Poll::Ready(signal);
        }
        self.queue.waker.register(cx.waker());
        // Checked again after registering: a signal in between would otherwise be missed.
        match given() {
            Some(signal) => Poll::Ready(signal),
            None => Poll::Pending,
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
/// - After `shut_down`, every registered session's queue, and the queue of every session
///   registered later, reports [`Signal::ShuttingDown`].
pub trait SessionHub: Send + Sync + 'static {
    /// Adds a session. The reader is shared with the session (one copy of the user's name
    /// and groups per session, not two).
    fn register(&self, reader: &Arc<Reader>, sender: SessionSender) -> SessionId;
    /// Removes a session.
    fn unregister(&self, id: SessionId);
    /// Offers a push to the matching sessions; returns how many took it.
    fn deliver(&self, push: &Arc<Push>) -> usize;
    /// Sessions currently registered.
    fn session_count(&self) -> usize;
    /// Gives every session, and every session registered from now on,
    /// [`Signal::ShuttingDown`] (the server is stopping; clients should reconnect).
    fn shut_down(&self);
}

/// The in-process hub: indexes by user and by group, one read-write lock that is never held
/// across an await.
///
/// Every index entry knows its position (its "slot"), so unregistering is O(1) per index
/// (`swap_remove`, then the moved session's slot is updated) however many sessions share a
/// group; a mass disconnect holds the write lock only briefly per session.
///
/// With a [`MuteRegistry`] it skips sessions whose user muted the type.
#[derive(Debug, Default)]
pub struct LocalHub {
    next_id: AtomicU64,
    inner: RwLock<HubInner>,
    mutes: Option<Arc<MuteRegistry>>,
    shutting_down: AtomicBool,
}

#[derive(Debug, Default)]
struct HubInner {
    sessions: HashMap<SessionId, Entry>,
    by_user: HashMap<String, Vec<SessionId>>,
    by_group: HashMap<String, Vec<SessionId>>,
}

#[derive(Debug)]
struct Entry {
    reader: Arc<Reader>,
    sender: SessionSender,
    /// Position of this session in `by_user[reader.user]` (index 0) and in
    /// `by_group[reader.groups[k]]` (index 1 + k). `u32` keeps the entry small; a hub holds
    /// far fewer than 4 billion sessions.
    slots: Box<[u32]>,
}

impl LocalHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves out the sessions of users who muted a push's type (contract section 5a).
    pub fn with_mutes(mut self, mutes: Arc<MuteRegistry>) -> Self {
        self.mutes = Some(mutes);
        self
    }
}

/// Appends `id` to the index list under `key` and returns its position.
fn add_to(index: &mut HashMap<String, Vec<SessionId>>, key: &str, id: SessionId) -> u32 {
    let ids = match index.get_mut(key) {
        Some(ids) => ids,
        None => index.entry(key.to_string()).or_default(),
    };
    ids.push(id);
    (ids.len() - 1) as u32
}

/// Which index a slot belongs to: the user index (`None`) or the group index of the given
/// group name.
fn slot_index(reader: &Reader, key_is_user: bool, key: &str, slots: &[u32], at: u32) -> usize {
    if key_is_user {
        return 0;
    }
    // A token may list a group twice; then the session sits in that group's list twice and
    // the occurrence is told apart by its position.
    reader
        .groups
        .iter()
        .enumerate()
        .position(|(k, g)| g == key && slots[1 + k] == at)
        .map_or(0, |k| 1 + k)
}

impl HubInner {
    /// Removes position `at` from the list under `key` in O(1); the session that was last
    /// moves into the hole and its slot is updated.
    fn remove_slot(&mut self, key_is_user: bool, key: &str, at: u32) {
        let index = if key_is_user {
            &mut self.by_user
        } else {
            &mut self.by_group
        };
        let Some(ids) = index.get_mut(key) else {
            return;
        };
        let at_usize = at as usize;
        if at_usize >= ids.len() {
            return;
        }
        let last = (ids.len() - 1) as u32;
        ids.swap_remove(at_usize);
        if ids.is_empty() {
            index.remove(key);
            return;
        }
        if at == last {
            return;
        }
        let moved = ids[at_usize];
        if let Some(entry) = self.sessions.get_mut(&moved) {
            let k = slot_index(&entry.reader, key_is_user, key, &entry.slots, last);
            entry.slots[k] = at;
        }
    }
}

impl SessionHub for LocalHub {
    fn register(&self, reader: &Arc<Reader>, sender: SessionSender) -> SessionId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(mutes) = &self.mutes {
            mutes.touch(&reader.user);
        }
        let mut slots = Vec::with_capacity(1 + reader.groups.len());
        let mut inner = self.inner.write();
        slots.push(add_to(&mut inner.by_user, &reader.user, id));
        for g in &reader.groups {
            slots.push(add_to(&mut inner.by_group, g, id));
        }
        // Read under the write lock: `shut_down` sets the flag before it walks the
        // sessions, so a session is either walked or sees the flag here.
        if self.shutting_down.load(Ordering::Acquire) {
            sender.shut_down();
        }
        inner.sessions.insert(
            id,
            Entry {
                reader: reader.clone(),
                sender,
                slots: slots.into_boxed_slice(),
            },
        );
        id
    }

    fn unregister(&self, id: SessionId) {
        let mut inner = self.inner.write();
        let Some(entry) = inner.sessions.remove(&id) else {
            return;
        };
        inner.remove_slot(true, &entry.reader.user, entry.slots[0]);
        // Later occurrences of a repeated group first: removing one occurrence never moves
        // another occurrence of the same session (it is not last unless it is the highest).
        let mut order: Vec<usize> = (0..entry.reader.groups.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(entry.slots[1 + k]));
        for k in order {
            let at = entry.slots[1 + k];
            let group = &entry.reader.groups[k];
            // This session is gone from `sessions`; if it is the one moved (a repeated group),
            // nothing needs updating.
            inner.remove_slot(false, group, at);
        }
    }

    fn deliver(&self, push: &Arc<Push>) -> usize {
        let inner = self.inner.read();
        let kind = push.notification.notification_type.as_str();
        let wanted = |e: &Entry| {
            self.mutes
                .as_ref()
                .is_none_or(|m| !m.is_muted(&e.reader.user, kind))
        };
        let offer = |id: &SessionId| {
            inner
                .sessions
                .get(id)
                .is_some_and(|e| wanted(e) && e.sender.offer(push))
        };
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
                .filter(|e| wanted(e) && e.sender.offer(push))
                .count(),
        }
    }

    fn session_count(&self) -> usize {
        self.inner.read().sessions.len()
    }

    fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for entry in self.inner.read().sessions.values() {
            entry.sender.shut_down();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit_support::push_for;

    #[tokio::test]
    async fn routes_by_audience_and_marks_overflow() {
        let hub = LocalHub::new();
        let (a_tx, a_rx) = session_queue(2);
        let (b_tx, b_rx) = session_queue(8);
        let a = hub.register(&Arc::new(Reader::new("ann", vec!["ops".into()])), a_tx);
        hub.register(&Arc::new(Reader::new("bob", vec![])), b_tx);
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

    #[tokio::test]
    async fn queue_wakes_the_receiver_ends_with_the_senders_and_gives_slots_back() {
        let (tx, rx) = session_queue(300);
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx)
        });
        tokio::task::yield_now().await;
        let push = push_for(Audience::Broadcast);
        assert!(tx.offer(&push), "a waiting receiver is woken");
        let (first, mut rx) = waiting.await.unwrap();
        assert!(first.is_some());
        for _ in 0..256 {
            assert!(tx2.offer(&push));
        }
        assert!(rx.queue.state.lock().items.capacity() >= 256);
        let mut got = 0;
        while rx.try_recv().is_some() {
            got += 1;
        }
        assert_eq!(got, 256);
        assert!(
            rx.queue.state.lock().items.capacity() <= KEEP_SLOTS,
            "a drained queue keeps no burst-sized buffer"
        );
        drop(tx);
        assert!(tx2.offer(&push), "one sender left");
        drop(tx2);
        assert!(
            rx.recv().await.is_some(),
            "what was queued is still received"
        );
        assert!(rx.recv().await.is_none(), "then the end");
        let (tx, rx) = session_queue(4);
        drop(rx);
        assert!(!tx.offer(&push), "nobody receives");
    }

    #[test]
    fn unregister_in_any_order_keeps_the_indexes_exact() {
        let hub = LocalHub::new();
        let mut live: Vec<(SessionId, Arc<Reader>, SessionReceiver)> = Vec::new();
        for i in 0..60 {
            let (tx, rx) = session_queue(1024);
            // Two users share sessions, groups overlap, and one token repeats a group.
            let mut groups = vec![format!("g{}", i % 3), "all".to_string()];
            if i % 7 == 0 {
                groups.push(format!("g{}", i % 3));
            }
            let reader = Arc::new(Reader::new(format!("u{}", i % 5), groups));
            let id = hub.register(&reader, tx);
            live.push((id, reader, rx));
        }
        // Remove in a scrambled order, checking every index after each removal.
        let mut step = 0usize;
        while !live.is_empty() {
            step = (step + 17) % live.len();
            let (id, _, _) = live.swap_remove(step);
            hub.unregister(id);
            hub.unregister(id); // twice is harmless
            for g in ["g0", "g1", "g2", "all"] {
                let want: usize = live
                    .iter()
                    .map(|(_, r, _)| r.groups.iter().filter(|x| *x == g).count())
                    .sum();
                let got = hub.deliver(&push_for(Audience::Group(g.into())));
                assert_eq!(got, want, "group {g} with {} sessions left", live.len());
            }
            for u in 0..5 {
                let user = format!("u{u}");
                let want = live.iter().filter(|(_, r, _)| r.user == user).count();
                assert_eq!(hub.deliver(&push_for(Audience::User(user))), want);
            }
            assert_eq!(hub.session_count(), live.len());
        }
        let inner = hub.inner.read();
        assert!(inner.by_user.is_empty() && inner.by_group.is_empty());
    }
}
