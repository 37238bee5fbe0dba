//! [`BackgroundRun`]: at most one task drains a queue, started by whoever queues first.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a queue's background task runs. The contact writer and the mute loader each
/// drain a queue with one task: whoever queues claims the run and starts the task unless one
/// runs, and the task, finding the queue empty, releases the run without missing an item
/// queued meanwhile.
#[derive(Debug, Default)]
pub(crate) struct BackgroundRun(AtomicBool);

impl BackgroundRun {
    /// True when the caller claimed the run and must start the task (none was running).
    pub(crate) fn claim(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// Called by the task on finding its queue empty: true when it should stop. An item
    /// queued after the task's last take but before the release is not left waiting for
    /// the next one: the task carries on when `queue_empty` turns false and it can claim
    /// the run again.
    pub(crate) fn release(&self, queue_empty: impl FnOnce() -> bool) -> bool {
        self.0.store(false, Ordering::Release);
        queue_empty() || !self.claim()
    }

    /// True while a task runs.
    #[cfg(test)]
    pub(crate) fn running(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
