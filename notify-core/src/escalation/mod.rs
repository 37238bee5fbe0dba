//! Escalation (contract sections 5a and 8): notifications that stay unread, and the daily
//! digest, delivered outside the browser.
//!
//! - [`Channel`]: a way out (e-mail, webhook); implementations with network clients live
//!   outside core (`notify-channels`).
//! - [`schedule`]: when notifications are stored, the escalations they cause are put in the
//!   [`crate::prefs::PreferenceStore`]'s due queue (only for users who enabled e-mail
//!   escalation, found through an index, so storing costs one lookup per batch).
//! - [`Escalator`]: the worker that claims due escalations under a store lease and sends
//!   each once per channel, deferring through quiet hours and cancelling what was read.
//!
//! Why a store lease and not the Kafka consumer group: escalations are due minutes or hours
//! after the event, long after its offset was committed, and they must survive restarts
//! and work without Kafka (memory or MongoDB only). The due queue is in the store that
//! already holds the read state; any instance may claim a due escalation, the lease keeps
//! two instances from sending the same one, and the per-channel attempt record keeps a
//! crash or an expired lease from sending it twice.

mod channel;
mod planner;
mod worker;

pub use channel::{Channel, Delivery, Reason};
pub use planner::schedule;
pub use worker::{Escalator, EscalatorConfig, EscalatorHandle};
