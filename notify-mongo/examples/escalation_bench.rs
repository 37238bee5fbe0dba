//! Cost of escalation scheduling and polling, on the memory store and (with a URI) on
//! MongoDB/FerretDB.
//!
//! ```text
//! cargo run -p notify-mongo --example escalation_bench -- [MONGO_URI] [USERS]
//! ```
//!
//! Measures, for a population of USERS users with preferences (half with e-mail escalation
//! on, in 100 groups):
//! - scheduling: `escalation::schedule` per stored notification (batches of 256 personal
//!   notifications to random users; with escalation off it is not called at all);
//! - polling: `claim_due` with 10,000 escalations pending in the future and 100 due
//!   (shows that a poll reads the due ones, not the queue or the notifications);
//! - on MongoDB: the query plans of the poll and of the scheduling lookup (`explain`), and
//!   the stored size per user profile and per escalation (`collStats`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use notify_core::auth::Authenticator;
use notify_core::model::{Audience, Notification, Priority};
use notify_core::prefs::{Contact, Escalation, EscalationKind, Finish, Preferences};
use notify_core::{MemoryPreferences, MemorySource, MemoryStore, NotifyService, PreferenceStore};
use notify_mongo::{MongoPreferences, MongoStore};

fn notification(i: usize, user: &str) -> Notification {
    Notification::new(
        format!("bench-{i}"),
        "purchase.approved",
        Audience::User(user.to_string()),
        "t",
        "m",
        Utc::now().timestamp_micros() + i as i64,
    )
    .with_priority(Priority::High)
    .with_occurred_at(Utc::now())
}

async fn run(name: &str, prefs: Arc<dyn PreferenceStore>, users: usize) {
    let on = Preferences::from_json(&serde_json::json!({"email": {"enabled": true}})).unwrap();
    let off = Preferences::default();
    let t0 = Instant::now();
    for u in 0..users {
        let user = format!("u{u}");
        prefs
            .put(&user, if u % 2 == 0 { &on } else { &off })
            .await
            .unwrap();
        prefs
            .remember(
                &user,
                &Contact {
                    email: Some(format!("{user}@example.com")),
                    groups: vec![format!("g{}", u % 100)],
                },
            )
            .await
            .unwrap();
    }
    let setup = t0.elapsed();
    let (source, publisher) = MemorySource::new(16);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(b"bench"),
    )
    .event_source(Arc::new(source))
    .preferences(prefs.clone())
    .escalation(true)
    .build();
    // Scheduling: 20 batches of 256.
    let batches = 20;
    let mut scheduled = 0;
    let t0 = Instant::now();
    for b in 0..batches {
        let batch: Vec<Notification> = (0..256)
            .map(|i| {
                let n = b * 256 + i;
                notification(n, &format!("u{}", (n * 7919) % users))
            })
            .collect();
        scheduled += notify_core::escalation::schedule(&service, &batch)
            .await
            .unwrap();
    }
    let per_notification = t0.elapsed() / (batches * 256) as u32;

    // Polling: 10,000 in the future, 100 due.
    let future = Utc::now() + chrono::Duration::days(1);
    let mk = |i: usize, due| Escalation {
        id: format!("poll-{i}"),
        user: format!("u{}", i % users),
        kind: EscalationKind::Unread(Box::new(notification(1_000_000 + i, "u0"))),
        due_at: due,
        attempted: Vec::new(),
    };
    let later: Vec<Escalation> = (0..10_000).map(|i| mk(i, future)).collect();
    for chunk in later.chunks(500) {
        prefs.schedule(chunk).await.unwrap();
    }
    let due: Vec<Escalation> = (10_000..10_100).map(|i| mk(i, Utc::now())).collect();
    prefs.schedule(&due).await.unwrap();
    let t0 = Instant::now();
    let claimed = prefs
        .claim_due(Utc::now(), "bench", Duration::from_secs(60), 100)
        .await
        .unwrap();
    let claim = t0.elapsed();
    let t0 = Instant::now();
    for e in &claimed {
        prefs.finish(&e.id, "bench", Finish::Done).await.unwrap();
    }
    let finish = t0.elapsed() / claimed.len().max(1) as u32;
    let t0 = Instant::now();
    let empty = prefs
        .claim_due(Utc::now(), "bench", Duration::from_secs(60), 100)
        .await
        .unwrap();
    let idle = t0.elapsed();
    println!(
        "{name}: users={users} (half enabled) setup {:.1} µs/user; schedule {:.1} µs/stored notification \
         ({scheduled} of {} scheduled); claim 100 due of 10,100 pending: {:.2} ms ({} claimed); \
         finish {:.2} ms each; idle poll {:.2} ms ({} due)",
        setup.as_secs_f64() * 1e6 / users as f64,
        per_notification.as_secs_f64() * 1e6,
        batches * 256,
        claim.as_secs_f64() * 1e3,
        claimed.len(),
        finish.as_secs_f64() * 1e3,
        idle.as_secs_f64() * 1e3,
        empty.len(),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let uri = args.iter().find(|a| a.starts_with("mongodb")).cloned();
    let users: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    run("memory", Arc::new(MemoryPreferences::new()), users).await;
    if let Some(uri) = uri {
        let db = format!("nt_escbench_{}", std::process::id());
        let store = MongoStore::connect(&uri, &db).await.unwrap();
        let prefs = MongoPreferences::new(&store).await.unwrap();
        run("mongodb", Arc::new(prefs), users.min(2_000)).await;
        report_plans_and_sizes(store.database()).await;
        let _ = store.database().drop().await;
    }
}

/// Prints how the server answers the poll and the scheduling lookup (index or scan), and
/// the average stored document sizes.
async fn report_plans_and_sizes(db: &notify_mongo::mongodb::Database) {
    use notify_mongo::mongodb::bson::{doc, Document};
    let now = Utc::now().timestamp_micros();
    let explain = |find: Document| async move {
        db.run_command(doc! {"explain": find, "verbosity": "queryPlanner"})
            .await
            .map(|d| d.get_document("queryPlanner").cloned().unwrap_or(d))
    };
    let poll = explain(doc! {
        "find": notify_mongo::ESCALATIONS,
        "filter": {"state": "pending", "due": {"$lte": now}, "lease_until": {"$lte": now}},
        "sort": {"due": 1},
        "limit": 200_i64,
    })
    .await;
    let lookup = explain(doc! {
        "find": notify_mongo::PROFILES,
        "filter": {"email_enabled": true, "$or": [{"_id": {"$in": ["u1", "u2"]}}, {"groups": {"$in": ["g1"]}}]},
    })
    .await;
    println!("poll plan: {poll:?}");
    println!("scheduling lookup plan: {lookup:?}");
    for coll in [notify_mongo::PROFILES, notify_mongo::ESCALATIONS] {
        match db.run_command(doc! {"collStats": coll}).await {
            Ok(s) => println!(
                "{coll}: count {:?}, avgObjSize {:?} bytes, totalIndexSize {:?} bytes",
                s.get("count"),
                s.get("avgObjSize"),
                s.get("totalIndexSize")
            ),
            Err(e) => println!("{coll}: collStats failed: {e}"),
        }
    }
}
