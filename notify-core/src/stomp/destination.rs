//! STOMP destinations clients may subscribe to, and the subscriptions of one session.

use crate::model::Audience;

/// Everything addressed to the connected user (personal, their groups, broadcasts).
pub const USER_QUEUE: &str = "/user/queue/notifications";
/// Broadcasts only.
pub const BROADCAST_TOPIC: &str = "/topic/notifications";
/// One group's notifications: `/topic/groups.{name}`, members only.
pub const GROUP_TOPIC_PREFIX: &str = "/topic/groups.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Destination {
    UserQueue,
    Broadcast,
    /// The whole destination, `/topic/groups.{name}`: it is echoed in every MESSAGE frame,
    /// and the group's name is its tail.
    Group(Box<str>),
}

impl Destination {
    pub(super) fn matches(&self, audience: &Audience) -> bool {
        match (self, audience) {
            (Destination::UserQueue, _) => true,
            (Destination::Broadcast, Audience::Broadcast) => true,
            (Destination::Group(d), Audience::Group(a)) => {
                d.strip_prefix(GROUP_TOPIC_PREFIX) == Some(a.as_str())
            }
            _ => false,
        }
    }

    /// The destination as subscribed to.
    pub(super) fn as_str(&self) -> &str {
        match self {
            Destination::UserQueue => USER_QUEUE,
            Destination::Broadcast => BROADCAST_TOPIC,
            Destination::Group(d) => d,
        }
    }
}

/// One subscription of a session: 40 bytes, and an allocation only for its id and a group
/// destination (every idle session holds one or two).
pub(super) struct Subscription {
    pub(super) id: Box<str>,
    pub(super) kind: Destination,
}
