//! [`PendingPushes`]: the record of pushes that went out live and may not be readable from
//! the store yet, which a resume replays so that nothing falls between store and stream.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::Push;
use crate::store::Reader;

/// How long a push stays in the record after it was stored. While the store cannot be read,
/// a client that dropped within this window resumes from the record alone (see
/// [`PendingPushes::covers_after`]); a longer window costs memory (every push of the window
/// is kept) and makes such resumes possible further back.
pub const RETAIN_STORED: Duration = Duration::from_secs(60);

/// Pushes that went out live but are not stored yet, plus those stored in the last
/// [`RETAIN_STORED`].
///
/// A client resuming with `since` reads the store; a notification pushed just before the
/// client registered but stored just after its read would fall in the gap. The resume path
/// also replays these, so nothing goes missing (a repeat is possible; clients de-duplicate).
///
/// While the store cannot be read, a resume is served from this record alone when that is
/// complete: see [`PendingPushes::covers_after`].
#[derive(Debug)]
pub struct PendingPushes {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    unstored: HashMap<String, Arc<Push>>,
    /// Stored pushes kept for [`RETAIN_STORED`], oldest first.
    stored: VecDeque<(Instant, Arc<Push>)>,
    /// The highest stamp that may be stored without being in the record: the creation
    /// time, raised by every push that leaves the record.
    floor: i64,
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.stored.front() {
            if now.duration_since(*at) < RETAIN_STORED {
                break;
            }
            if let Some((_, p)) = self.stored.pop_front() {
                self.floor = self.floor.max(p.notification.seq);
            }
        }
    }
}

impl Default for PendingPushes {
    fn default() -> Self {
        PendingPushes {
            inner: Mutex::new(Inner {
                unstored: HashMap::new(),
                stored: VecDeque::new(),
                floor: chrono::Utc::now().timestamp_micros(),
            }),
        }
    }
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
            inner.unstored.insert(p.notification.id.clone(), p.clone());
        }
    }

    /// Marks pushes stored: they stay readable here for [`RETAIN_STORED`].
    pub fn remove(&self, pushes: &[Arc<Push>]) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        for p in pushes {
            if let Some(p) = inner.unstored.remove(&p.notification.id) {
                inner.stored.push_back((now, p));
            }
        }
        inner.expire(now);
    }

    /// Forgets pushes that will not be stored soon (a record over its size limit): a
    /// resume that reaches back past them must read the store.
    pub fn drop_unstored(&self, pushes: &[Arc<Push>]) {
        let mut inner = self.inner.lock();
        for p in pushes {
            if inner.unstored.remove(&p.notification.id).is_some() {
                inner.floor = inner.floor.max(p.notification.seq);
            }
        }
    }

    /// The recorded pushes `reader` may see (unstored and recently stored), oldest first.
    pub fn visible_to(&self, reader: &Reader) -> Vec<Arc<Push>> {
        let mut inner = self.inner.lock();
        inner.expire(Instant::now());
        let mut seen = HashSet::new();
        let mut out: Vec<Arc<Push>> = inner
            .unstored
            .values()
            .chain(inner.stored.iter().map(|(_, p)| p))
            .filter(|p| {
                p.notification
                    .audience
                    .includes(&reader.user, &reader.groups)
                    && seen.insert(p.notification.id.as_str())
            })
            .cloned()
            .collect();
        out.sort_by_key(|p| (p.notification.seq, p.notification.id.clone()));
        out
    }

    /// True when every notification stamped after `seq` that this process pushed (or that
    /// was stored while it ran) is still in the record: nothing above `seq` left it, and
    /// `seq` is not older than the record. A resume from `seq` can then be served from the
    /// record alone, without reading the store (what this process has not pushed yet
    /// arrives live).
    pub fn covers_after(&self, seq: i64) -> bool {
        let mut inner = self.inner.lock();
        inner.expire(Instant::now());
        seq >= inner.floor
    }

    /// The stamp the record reaches back to (see [`PendingPushes::covers_after`]).
    pub fn floor(&self) -> i64 {
        let mut inner = self.inner.lock();
        inner.expire(Instant::now());
        inner.floor
    }

    /// How many pushes wait for the store.
    pub fn len(&self) -> usize {
        self.inner.lock().unstored.len()
    }

    /// True when every push is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Audience;
    use crate::testkit_support::push_for;

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
        assert_eq!(
            pending.visible_to(&Reader::new("ann", vec![])).len(),
            1,
            "recently stored pushes stay readable"
        );
    }

    #[test]
    fn covers_only_what_never_left() {
        let pending = PendingPushes::new();
        let p = push_for(Audience::User("ann".into()));
        let seq = p.notification.seq;
        pending.add(std::slice::from_ref(&p));
        pending.drop_unstored(std::slice::from_ref(&p));
        assert!(
            !pending.covers_after(seq - 1),
            "a dropped push is not covered"
        );
        assert!(pending.covers_after(seq));
    }
}
