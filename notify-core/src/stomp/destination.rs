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
    Group(String),
}

impl Destination {
    pub(super) fn matches(&self, audience: &Audience) -> bool {
        match (self, audience) {
            (Destination::UserQueue, _) => true,
            (Destination::Broadcast, Audience::Broadcast) => true,
            (Destination::Group(g), Audience::Group(a)) => g == a,
            _ => false,
        }
    }
}

pub(super) struct Subscription {
    pub(super) id: String,
    pub(super) destination: String,
    pub(super) kind: Destination,
}
