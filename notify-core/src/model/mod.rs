//! The data model of the contract: events in, notifications out, audiences and cursors.
//!
//! One concept per file, all re-exported here: `event` (what producers send, with its
//! limits), `recipients` (who an event names), `priority`, `audience` (who one notification
//! is for), `id` (stable notification ids), `cursor` (positions in the order),
//! `notification` (what is stored), `view` (what one reader sees) and `push` (what goes to
//! sessions).

mod audience;
mod cursor;
mod event;
mod id;
mod link;
mod notification;
mod priority;
mod push;
mod recipients;
mod view;

pub use audience::Audience;
pub use cursor::{Cursor, SeqClock};
pub(crate) use event::json_kind;
pub use event::{Event, MAX_EVENT_BYTES, MAX_ID_CHARS, MAX_NAME_CHARS};
pub use id::notification_id;
pub use link::{check_link, MAX_LINK_BYTES};
pub use notification::Notification;
pub use priority::Priority;
pub use push::Push;
pub use recipients::Recipients;
pub use view::InboxItem;
