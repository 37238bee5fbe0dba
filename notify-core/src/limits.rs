//! Resource limits shared by every transport: connection and per-user session caps, token
//! buckets for publishing and for each user's requests, and the refusal they produce.
//!
//! A refusal names the configuration variable of the limit it hit: REST answers 429 with
//! `Retry-After` and `{"error":{"code":"rate_limited","field":"<variable>"}}`, STOMP sends
//! an ERROR whose `message` is `limit exceeded: <variable>`. Every refusal is counted in
//! `notify_limit_refusals_total{limit}`.
//!
//! Nothing here is keyed by source address: whole companies sit behind one NAT, so an
//! address says little about who is asking. Users are keyed by their verified token, the
//! publisher by its key.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::error::Error;

/// `NOTIFY_MAX_CONNECTIONS`: WebSocket and SSE connections per instance.
pub const MAX_CONNECTIONS: &str = "NOTIFY_MAX_CONNECTIONS";
/// `NOTIFY_MAX_SESSIONS_PER_USER`: live sessions (STOMP and SSE) per user per instance.
pub const MAX_SESSIONS_PER_USER: &str = "NOTIFY_MAX_SESSIONS_PER_USER";
/// `NOTIFY_PUBLISH_RATE`: events per second accepted per publish key.
pub const PUBLISH_RATE: &str = "NOTIFY_PUBLISH_RATE";
/// `NOTIFY_USER_RATE`: requests per second per user (REST, handshakes, resumes, reads).
pub const USER_RATE: &str = "NOTIFY_USER_RATE";

/// Default of `NOTIFY_MAX_SESSIONS_PER_USER`.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 20;
/// Default of `NOTIFY_PUBLISH_RATE`.
pub const DEFAULT_PUBLISH_RATE: u32 = 10_000;
/// Default of `NOTIFY_USER_RATE`.
pub const DEFAULT_USER_RATE: u32 = 50;
/// File descriptors kept free for everything that is not a client connection (Kafka and
/// store sockets, files, the listener) and for plain REST requests.
pub const FD_RESERVE: u64 = 256;
/// A `since` resume costs this many tokens of the user's bucket: it reads up to
/// `NOTIFY_RESUME_MAX` stored notifications, far more than one REST page.
pub const RESUME_COST: u32 = 10;

/// Counter by `limit` (the variable name): requests, connections and frames refused.
pub const LIMIT_REFUSALS_TOTAL: &str = "notify_limit_refusals_total";

/// The default of `NOTIFY_MAX_CONNECTIONS`: the process's open-file limit less
/// [`FD_RESERVE`], so that the server refuses cleanly instead of failing `accept`.
pub fn default_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    // An "infinite" limit still has to fit a usize and be sane.
    let soft = soft.min(1 << 24);
    soft.saturating_sub(FD_RESERVE).max(16) as usize
}

/// Limits as configured (contract section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Most open WebSocket and SSE connections of this instance (`NOTIFY_MAX_CONNECTIONS`);
    /// a WebSocket counts from its upgrade on.
    pub max_connections: usize,
    /// Most live STOMP and SSE sessions one user may hold on this instance
    /// (`NOTIFY_MAX_SESSIONS_PER_USER`).
    pub max_sessions_per_user: usize,
    /// `NOTIFY_PUBLISH_RATE` (events/s, also the burst).
    pub publish_rate: u32,
    /// `NOTIFY_USER_RATE` (requests/s, also the burst).
    pub user_rate: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: default_max_connections(),
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            publish_rate: DEFAULT_PUBLISH_RATE,
            user_rate: DEFAULT_USER_RATE,
        }
    }
}

/// A request, connection or session refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The variable that sets the limit (`NOTIFY_USER_RATE`...).
    pub limit: &'static str,
    /// When trying again may succeed.
    pub retry_after: Duration,
}

impl Refusal {
    fn new(limit: &'static str, retry_after: Duration) -> Self {
        metrics::counter!(LIMIT_REFUSALS_TOTAL, "limit" => limit).increment(1);
        Refusal { limit, retry_after }
    }

    /// The STOMP ERROR `message` of the contract: `limit exceeded: <variable>`.
    pub fn stomp_message(&self) -> String {
        format!("limit exceeded: {}", self.limit)
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::RateLimited {
            limit: r.limit,
            retry_after: r.retry_after,
        }
    }
}

/// The live state of the limits: counters and token buckets.
pub struct Limits {
    config: LimitsConfig,
    connections: Arc<AtomicUsize>,
    sessions: Arc<Mutex<HashMap<String, usize>>>,
    publish: Option<DefaultDirectRateLimiter>,
    users: Option<DefaultKeyedRateLimiter<String>>,
    user_checks: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .field("connections", &self.connections.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn quota(per_second: u32) -> Option<Quota> {
    NonZeroU32::new(per_second).map(Quota::per_second)
}

fn wait_of(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

impl Limits {
    /// Limits with the given configuration; a rate of 0 turns that bucket off.
    pub fn new(config: LimitsConfig) -> Self {
        Limits {
            config,
            connections: Arc::new(AtomicUsize::new(0)),
            sessions: Arc::new(Mutex::new(HashMap::new())),
            publish: quota(config.publish_rate).map(RateLimiter::direct),
            users: quota(config.user_rate).map(RateLimiter::keyed),
            user_checks: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Open WebSocket and SSE connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Takes one connection slot (`NOTIFY_MAX_CONNECTIONS`) for as long as the guard lives.
    pub fn connection(&self) -> Result<ConnectionGuard, Refusal> {
        let taken = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.config.max_connections).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(ConnectionGuard {
                counter: self.connections.clone(),
            }),
            Err(_) => Err(Refusal::new(MAX_CONNECTIONS, Duration::from_secs(5))),
        }
    }

    /// Takes one of `user`'s session slots (`NOTIFY_MAX_SESSIONS_PER_USER`) for as long as
    /// the guard lives.
    pub fn user_session(&self, user: &str) -> Result<UserSessionGuard, Refusal> {
        let mut sessions = self.sessions.lock();
        let count = sessions.entry(user.to_string()).or_insert(0);
        if *count >= self.config.max_sessions_per_user {
            return Err(Refusal::new(MAX_SESSIONS_PER_USER, Duration::from_secs(5)));
        }
        *count += 1;
        Ok(UserSessionGuard {
            sessions: self.sessions.clone(),
            user: user.to_string(),
        })
    }

    /// Live sessions of `user`.
    pub fn user_sessions(&self, user: &str) -> usize {
        self.sessions.lock().get(user).copied().unwrap_or(0)
    }

    /// Spends `events` tokens of the publish bucket (`NOTIFY_PUBLISH_RATE`).
    pub fn publish(&self, events: usize) -> Result<(), Refusal> {
        let Some(bucket) = &self.publish else {
            return Ok(());
        };
        take(bucket_check_n(events, self.config.publish_rate, |n| {
            bucket.check_n(n)
        }))
        .map_err(|wait| Refusal::new(PUBLISH_RATE, wait))
    }

    /// Spends one token of `user`'s bucket (`NOTIFY_USER_RATE`).
    pub fn user_request(&self, user: &str) -> Result<(), Refusal> {
        self.user_cost(user, 1)
    }

    /// Spends a resume's worth ([`RESUME_COST`]) of `user`'s bucket.
    pub fn user_resume(&self, user: &str) -> Result<(), Refusal> {
        self.user_cost(user, RESUME_COST)
    }

    fn user_cost(&self, user: &str, cost: u32) -> Result<(), Refusal> {
        let Some(bucket) = &self.users else {
            return Ok(());
        };
        // Buckets of users who stopped asking are full again and carry no state: drop them
        // now and then so the map does not grow with every user ever seen.
        if self.user_checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
        let key = user.to_string();
        take(bucket_check_n(cost as usize, self.config.user_rate, |n| {
            bucket.check_key_n(&key, n)
        }))
        .map_err(|wait| Refusal::new(USER_RATE, wait))
    }
}

type CheckN = Result<
    Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    governor::InsufficientCapacity,
>;

/// Runs a `check_n` for `cost` tokens, never asking for more than the bucket holds (a cost
/// above the burst is clamped to the whole burst).
fn bucket_check_n(cost: usize, burst: u32, check: impl FnOnce(NonZeroU32) -> CheckN) -> CheckN {
    let cost = u32::try_from(cost)
        .unwrap_or(u32::MAX)
        .clamp(1, burst.max(1));
    check(NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN))
}

fn take(result: CheckN) -> Result<(), Duration> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => Err(wait_of(&not_until).max(Duration::from_millis(1))),
        Err(_) => Err(Duration::from_secs(1)),
    }
}

/// Holds one connection slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    counter: Arc<AtomicUsize>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one of a user's session slots; dropping it frees the slot.
#[derive(Debug)]
pub struct UserSessionGuard {
    sessions: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl Drop for UserSessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.sessions.lock();
        if let Some(count) = sessions.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                sessions.remove(&self.user);
            }
        }
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, per_user: usize, publish: u32, user: u32) -> Limits {
        Limits::new(LimitsConfig {
            max_connections,
            max_sessions_per_user: per_user,
            publish_rate: publish,
            user_rate: user,
        })
    }

    #[test]
    fn connection_slots_come_back_when_guards_drop() {
        let l = limits(2, 20, 0, 0);
        let a = l.connection().unwrap();
        let _b = l.connection().unwrap();
        assert_eq!(l.connection().unwrap_err().limit, MAX_CONNECTIONS);
        drop(a);
        let _c = l.connection().unwrap();
        assert_eq!(l.connections(), 2);
    }

    #[test]
    fn per_user_sessions_are_capped_per_user() {
        let l = limits(100, 2, 0, 0);
        let a1 = l.user_session("a").unwrap();
        let _a2 = l.user_session("a").unwrap();
        let r = l.user_session("a").unwrap_err();
        assert_eq!(r.limit, MAX_SESSIONS_PER_USER);
        assert_eq!(
            r.stomp_message(),
            "limit exceeded: NOTIFY_MAX_SESSIONS_PER_USER"
        );
        assert!(l.user_session("b").is_ok(), "other users are not affected");
        drop(a1);
        assert!(l.user_session("a").is_ok());
    }

    #[test]
    fn user_buckets_are_per_user_and_say_when_to_retry() {
        let l = limits(100, 20, 0, 5);
        for _ in 0..5 {
            l.user_request("a").unwrap();
        }
        let r = l.user_request("a").unwrap_err();
        assert_eq!(r.limit, USER_RATE);
        assert!(r.retry_after <= Duration::from_secs(1), "{r:?}");
        assert!(l.user_request("b").is_ok());
        // A resume costs more than the burst here: clamped to the whole burst.
        assert!(l.user_resume("c").is_ok());
        assert!(l.user_request("c").is_err());
    }

    #[test]
    fn publish_bucket_counts_events_and_zero_turns_it_off() {
        let l = limits(100, 20, 100, 0);
        l.publish(60).unwrap();
        assert_eq!(l.publish(60).unwrap_err().limit, PUBLISH_RATE);
        let off = limits(100, 20, 0, 0);
        for _ in 0..1000 {
            off.publish(1000).unwrap();
            off.user_request("a").unwrap();
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn default_connections_follow_the_open_file_limit() {
        let n = default_max_connections();
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(n as u64 <= soft.max(16 + FD_RESERVE), "{n} vs {soft}");
        assert!(n >= 16);
    }
}
