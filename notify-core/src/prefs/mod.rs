//! Preferences (contract section 5a): what each user mutes, their zone and quiet hours,
//! and when unread notifications are escalated to them outside the browser.
//!
//! - [`Preferences`]: the settings and their validation (`PUT /api/preferences`).
//! - [`PreferenceStore`]: where they live, with the contact remembered from each user's last
//!   connection and the schedule of due escalations ([`MemoryPreferences`] embedded;
//!   `notify-mongo` has the MongoDB one).
//! - [`MuteRegistry`]: muted types cached for the push path; [`muted_inbox`] applies them to
//!   inbox pages and unread counts.
//! - [`rest`]: the `GET`/`PUT /api/preferences` handlers and remembering contacts.
//!
//! Escalation itself (channels, the due-queue worker) is in [`crate::escalation`].

mod background_run;
mod contacts;
pub mod local_time;
mod memory;
pub mod muted_inbox;
mod mutes;
mod preferences;
pub mod rest;
mod store;
mod type_filter;

pub use contacts::ContactCache;
pub use local_time::TimeOfDay;
pub use memory::MemoryPreferences;
pub use mutes::{MuteRegistry, DEFAULT_REFRESH};
pub use preferences::{
    priority_rank, DigestPrefs, EmailPrefs, Preferences, QuietHours, MAX_AFTER_S, MAX_MUTED_TYPES,
};
pub use store::{Contact, Escalation, EscalationKind, Finish, PreferenceStore, Profile};
pub use type_filter::MutedTypes;
