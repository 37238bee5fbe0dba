//! The conformance suite every [`PreferenceStore`] runs: preferences round trip, contacts
//! and the enabled-user index, idempotent scheduling, leases shared by two owners,
//! per-channel attempts, deferral, digests and purge.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_store_conforms() {
//!     notify_core::testkit::prefs::run_all(|| async { Arc::new(MyStore::connect().await) as _ }).await;
//! }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::model::Audience;
use crate::prefs::{Contact, Escalation, EscalationKind, Finish, PreferenceStore, Preferences};
use crate::testkit::store::sample;

/// Runs every check, each on a fresh store from `make`. Panics with the check's name on
/// the first failure.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PreferenceStore>>,
{
    preferences_round_trip(make().await).await;
    get_many_finds_those_who_set_them(make().await).await;
    profiles_index(make().await).await;
    schedule_is_idempotent(make().await).await;
    leases_are_exclusive(make().await).await;
    attempts_once_per_channel(make().await).await;
    defer_and_finish(make().await).await;
    digest_is_replaced(make().await).await;
    purge_removes_done(make().await).await;
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_000_000 + secs, 0).single().unwrap()
}

fn prefs(v: serde_json::Value) -> Preferences {
    Preferences::from_json(&v).expect("valid preferences")
}

fn unread(user: &str, event: &str, due: DateTime<Utc>) -> Escalation {
    let n = sample(event, Audience::User(user.into()), due.timestamp_micros());
    Escalation {
        id: Escalation::unread_id(&n.id, user),
        user: user.into(),
        kind: EscalationKind::Unread(Box::new(n)),
        due_at: due,
        attempted: Vec::new(),
    }
}

const LEASE: Duration = Duration::from_secs(60);

/// `get` is `None` until `put`; `put` replaces; every field survives the store.
pub async fn preferences_round_trip(store: Arc<dyn PreferenceStore>) {
    assert_eq!(store.get("ann").await.unwrap(), None, "never set");
    let p = prefs(json!({
        "muted_types": ["marketing.*", "chat.typing"],
        "tz": "Asia/Seoul",
        "quiet_hours": {"from": "22:00", "to": "07:00"},
        "email": {"enabled": true, "min_priority": "normal", "after_s": 30},
        "digest": {"enabled": true, "at": "08:30"}
    }));
    store.put("ann", &p).await.unwrap();
    assert_eq!(store.get("ann").await.unwrap(), Some(p.clone()));
    let q = Preferences::default();
    store.put("ann", &q).await.unwrap();
    assert_eq!(store.get("ann").await.unwrap(), Some(q), "put replaces");
    let profile = store.profile("nobody").await.unwrap();
    assert_eq!(profile.prefs, Preferences::default());
    assert_eq!(profile.contact, Contact::default());
}

/// `get_many` answers the users among those asked who set preferences, with what `get`
/// answers; a remembered contact alone is no preferences.
pub async fn get_many_finds_those_who_set_them(store: Arc<dyn PreferenceStore>) {
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    let muted = prefs(json!({"muted_types": ["marketing.*"]}));
    store.put("ann", &muted).await.unwrap();
    store.put("bob", &Preferences::default()).await.unwrap();
    store
        .remember(
            "cy",
            &Contact {
                email: Some("cy@example.com".into()),
                groups: vec![],
            },
        )
        .await
        .unwrap();
    let mut found = store
        .get_many(&["ann".into(), "bob".into(), "cy".into(), "zed".into()])
        .await
        .unwrap();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("ann".to_string(), muted),
            ("bob".to_string(), Preferences::default())
        ]
    );
}

/// `profiles` finds enabled users by id, by remembered group, or all of them.
pub async fn profiles_index(store: Arc<dyn PreferenceStore>) {
    let on = prefs(json!({"email": {"enabled": true}}));
    let off = prefs(json!({"email": {"enabled": false}}));
    store.put("ann", &on).await.unwrap();
    store.put("bob", &on).await.unwrap();
    store.put("cy", &off).await.unwrap();
    let contact = |email: &str, groups: &[&str]| Contact {
        email: Some(email.into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    store
        .remember("ann", &contact("ann@example.com", &["ops"]))
        .await
        .unwrap();
    store
        .remember("cy", &contact("cy@example.com", &["ops"]))
        .await
        .unwrap();
    let names = |v: Vec<crate::prefs::Profile>| {
        let mut n: Vec<String> = v.into_iter().map(|p| p.user).collect();
        n.sort();
        n
    };
    let by_user = store
        .profiles(&["ann".into(), "cy".into(), "zed".into()], &[], false)
        .await
        .unwrap();
    assert_eq!(names(by_user), ["ann"], "only enabled users");
    let by_group = store.profiles(&[], &["ops".into()], false).await.unwrap();
    assert_eq!(by_group.len(), 1);
    assert_eq!(
        by_group[0].contact.email.as_deref(),
        Some("ann@example.com")
    );
    assert!(by_group[0].prefs.email.enabled);
    assert_eq!(
        names(store.profiles(&[], &[], true).await.unwrap()),
        ["ann", "bob"]
    );
    // Changing groups or disabling moves users out of the index.
    store
        .remember("ann", &contact("ann@example.com", &["dev"]))
        .await
        .unwrap();
    assert!(store
        .profiles(&[], &["ops".into()], false)
        .await
        .unwrap()
        .is_empty());
    store.put("bob", &off).await.unwrap();
    assert_eq!(
        names(store.profiles(&[], &[], true).await.unwrap()),
        ["ann"]
    );
}

/// The same id scheduled twice is one escalation.
pub async fn schedule_is_idempotent(store: Arc<dyn PreferenceStore>) {
    let a = unread("ann", "e1", t(10));
    let b = unread("ann", "e2", t(20));
    assert_eq!(store.schedule(&[a.clone(), b.clone()]).await.unwrap(), 2);
    assert_eq!(
        store.schedule(std::slice::from_ref(&a)).await.unwrap(),
        0,
        "duplicate"
    );
    assert_eq!(store.pending_escalations().await.unwrap(), 2);
    let due = store.claim_due(t(15), "i1", LEASE, 10).await.unwrap();
    assert_eq!(due.len(), 1, "only what is due");
    assert_eq!(due[0], a, "stored faithfully (notification included)");
}

/// Two owners never hold the same escalation; an expired lease can be taken over.
pub async fn leases_are_exclusive(store: Arc<dyn PreferenceStore>) {
    let all: Vec<Escalation> = (0..10)
        .map(|i| unread("ann", &format!("l{i}"), t(i)))
        .collect();
    store.schedule(&all).await.unwrap();
    let (x, y) = tokio::join!(
        store.claim_due(t(100), "i1", LEASE, 6),
        store.claim_due(t(100), "i2", LEASE, 6)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 10, "each claimed once: {x:?} {y:?}");
    for e in &x {
        assert!(!y.iter().any(|f| f.id == e.id), "{} claimed twice", e.id);
    }
    assert!(store
        .claim_due(t(100), "i3", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    let later = store.claim_due(t(200), "i3", LEASE, 10).await.unwrap();
    assert_eq!(later.len(), 10, "expired leases are taken over");
    // The old owner lost them: finishing changes nothing.
    store.finish(&x[0].id, "i1", Finish::Done).await.unwrap();
    assert_eq!(store.pending_escalations().await.unwrap(), 10);
}

/// `attempt` is true once per (escalation, channel), and only for the lease holder.
pub async fn attempts_once_per_channel(store: Arc<dyn PreferenceStore>) {
    let e = unread("ann", "a1", t(0));
    store.schedule(std::slice::from_ref(&e)).await.unwrap();
    assert!(
        !store.attempt(&e.id, "i1", "email").await.unwrap(),
        "not leased"
    );
    store.claim_due(t(1), "i1", LEASE, 10).await.unwrap();
    assert!(!store.attempt(&e.id, "i2", "email").await.unwrap());
    assert!(store.attempt(&e.id, "i1", "email").await.unwrap());
    assert!(!store.attempt(&e.id, "i1", "email").await.unwrap(), "twice");
    assert!(store.attempt(&e.id, "i1", "webhook").await.unwrap());
    // A crash: the lease expires and another owner takes over; attempted channels stay.
    let again = store.claim_due(t(100), "i2", LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let mut attempted = again[0].attempted.clone();
    attempted.sort();
    assert_eq!(attempted, ["email", "webhook"]);
    assert!(!store.attempt(&e.id, "i2", "email").await.unwrap());
    assert!(!store.attempt("nope", "i2", "email").await.unwrap());
}

/// Deferral moves the due time and releases the lease; done is never claimed again.
pub async fn defer_and_finish(store: Arc<dyn PreferenceStore>) {
    let e = unread("ann", "d1", t(0));
    store.schedule(std::slice::from_ref(&e)).await.unwrap();
    store.claim_due(t(1), "i1", LEASE, 10).await.unwrap();
    store
        .finish(&e.id, "i1", Finish::Defer(t(50)))
        .await
        .unwrap();
    assert!(store
        .claim_due(t(49), "i2", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    let got = store.claim_due(t(50), "i2", LEASE, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].due_at, t(50));
    store.finish(&e.id, "i2", Finish::Done).await.unwrap();
    assert!(store
        .claim_due(t(10_000), "i3", LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.pending_escalations().await.unwrap(), 0);
    assert_eq!(
        store.schedule(std::slice::from_ref(&e)).await.unwrap(),
        0,
        "a done escalation is not scheduled again"
    );
}

fn digest(user: &str, date: &str, due: DateTime<Utc>) -> Escalation {
    Escalation {
        id: Escalation::digest_id(user, date),
        user: user.into(),
        kind: EscalationKind::Digest,
        due_at: due,
        attempted: Vec::new(),
    }
}

/// `set_digest` keeps one pending digest per user.
pub async fn digest_is_replaced(store: Arc<dyn PreferenceStore>) {
    store
        .set_digest("ann", Some(digest("ann", "2026-11-29", t(100))))
        .await
        .unwrap();
    store
        .set_digest("ann", Some(digest("ann", "2026-11-29", t(200))))
        .await
        .unwrap();
    store
        .set_digest("bob", Some(digest("bob", "2026-11-29", t(100))))
        .await
        .unwrap();
    assert_eq!(store.pending_escalations().await.unwrap(), 2);
    let first = store.claim_due(t(150), "i1", LEASE, 10).await.unwrap();
    assert_eq!(first.len(), 1, "ann's moved to the new time: {first:?}");
    assert_eq!(first[0].user, "bob");
    store
        .finish(&first[0].id, "i1", Finish::Done)
        .await
        .unwrap();
    store
        .set_digest("ann", Some(digest("ann", "2026-11-30", t(300))))
        .await
        .unwrap();
    store.set_digest("ann", None).await.unwrap();
    let rest = store.claim_due(t(1000), "i1", LEASE, 10).await.unwrap();
    assert!(rest.is_empty(), "ann has no digest: {rest:?}");
}

/// Purge removes done escalations due before the cut, and nothing pending.
pub async fn purge_removes_done(store: Arc<dyn PreferenceStore>) {
    let a = unread("ann", "p1", t(0));
    let b = unread("ann", "p2", t(0));
    store.schedule(&[a.clone(), b.clone()]).await.unwrap();
    store.claim_due(t(1), "i1", LEASE, 1).await.unwrap();
    let claimed = if store.attempt(&a.id, "i1", "x").await.unwrap() {
        &a
    } else {
        &b
    };
    store.finish(&claimed.id, "i1", Finish::Done).await.unwrap();
    assert_eq!(store.purge_escalations(t(1)).await.unwrap(), 1);
    assert_eq!(store.pending_escalations().await.unwrap(), 1);
}
