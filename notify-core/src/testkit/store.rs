//! The conformance suite every [`NotificationStore`] runs: idempotency, ordering, paging,
//! visibility, per-reader read state, counts, purge and faithful storage.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_store_conforms() {
//!     notify_core::testkit::store::run_all(|| async { Arc::new(MyStore::connect().await) as _ }).await;
//! }
//! ```

use std::future::Future;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::model::{notification_id, Audience, Cursor, Notification, Priority};
use crate::store::{ListQuery, NotificationStore, NotificationStoreExt, Page, Reader};

/// A notification for tests: `seq` orders it (microseconds; 2026-era values by default).
pub fn sample(event_id: &str, audience: Audience, seq: i64) -> Notification {
    Notification::new(
        event_id,
        "test.sample",
        audience,
        format!("title {event_id}"),
        format!("message {event_id}"),
        seq,
    )
    .with_link(format!("/things/{event_id}"))
    .with_data(
        json!({"n": seq, "nested": {"ok": true}})
            .as_object()
            .cloned()
            .unwrap(),
    )
    .with_occurred_at(Utc.timestamp_millis_opt(seq / 1000).single().unwrap())
}

const BASE: i64 = 1_795_000_000_000_000;

fn newest(limit: usize) -> ListQuery {
    ListQuery {
        page: Page::NewestBefore(None),
        limit,
        unread_only: false,
    }
}

fn user(u: &str) -> Audience {
    Audience::User(u.into())
}

fn group(g: &str) -> Audience {
    Audience::Group(g.into())
}

/// Runs every check, each on a fresh store from `make`. Panics with the check's name on
/// the first failure.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn NotificationStore>>,
{
    idempotent_insert(make().await).await;
    newest_first_paging(make().await).await;
    catch_up_oldest_first(make().await).await;
    visibility(make().await).await;
    read_state_is_per_reader(make().await).await;
    mark_all_read_is_a_watermark(make().await).await;
    unread_only_filter(make().await).await;
    purge_removes_old(make().await).await;
    stores_faithfully(make().await).await;
    ping(make().await).await;
}

/// The same notification inserted again is a duplicate, not a second copy.
pub async fn idempotent_insert(store: Arc<dyn NotificationStore>) {
    let batch = vec![
        sample("evt-1", user("alice"), BASE + 1),
        sample("evt-1", group("admins"), BASE + 2),
    ];
    let first = store.insert(&batch).await.expect("insert");
    assert_eq!(first.inserted, 2, "idempotent_insert: first insert");
    for _ in 0..2 {
        let again = store.insert(&batch).await.expect("insert again");
        assert_eq!(
            again.inserted, 0,
            "idempotent_insert: redelivery inserts nothing"
        );
        assert_eq!(
            again.duplicates, 2,
            "idempotent_insert: redelivery counts duplicates"
        );
    }
    // A batch mixing new and old notifications stores the new ones.
    let mixed = vec![batch[0].clone(), sample("evt-2", user("alice"), BASE + 3)];
    let out = store.insert(&mixed).await.expect("insert mixed");
    assert_eq!(
        (out.inserted, out.duplicates),
        (1, 1),
        "idempotent_insert: mixed batch"
    );
    let reader = Reader::new("alice", vec!["admins".into()]);
    let items = store.list(&reader, &newest(50)).await.expect("list");
    assert_eq!(items.len(), 3, "idempotent_insert: one copy each");
    assert_eq!(
        store.unread_count(&reader).await.unwrap(),
        3,
        "idempotent_insert: count"
    );
}

/// `NewestBefore` pages newest first with no overlap and no gap.
pub async fn newest_first_paging(store: Arc<dyn NotificationStore>) {
    let mut batch = Vec::new();
    for i in 0..25 {
        let audience = match i % 3 {
            0 => user("pager"),
            1 => group("g1"),
            _ => Audience::Broadcast,
        };
        batch.push(sample(&format!("page-{i}"), audience, BASE + 100 + i));
    }
    store.insert(&batch).await.unwrap();
    let reader = Reader::new("pager", vec!["g1".into()]);
    let mut seen = Vec::new();
    let mut before: Option<Cursor> = None;
    loop {
        let page = store
            .list(
                &reader,
                &ListQuery {
                    page: Page::NewestBefore(before.clone()),
                    limit: 10,
                    unread_only: false,
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = Some(page.last().unwrap().notification.cursor());
        seen.extend(page.into_iter().map(|i| i.notification.seq));
    }
    let expected: Vec<i64> = (0..25).rev().map(|i| BASE + 100 + i).collect();
    assert_eq!(
        seen, expected,
        "newest_first_paging: order, no gap, no overlap"
    );
}

/// `OldestAfter` returns what came after a cursor, oldest first; time cursors work.
pub async fn catch_up_oldest_first(store: Arc<dyn NotificationStore>) {
    let batch: Vec<_> = (0..450)
        .map(|i| sample(&format!("cu-{i}"), user("carol"), BASE + 1000 + i))
        .collect();
    store.insert(&batch).await.unwrap();
    let reader = Reader::new("carol", vec![]);
    let after = batch[99].cursor();
    let page = store
        .list(
            &reader,
            &ListQuery {
                page: Page::OldestAfter(after.clone()),
                limit: 5,
                unread_only: false,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = page.iter().map(|i| i.notification.seq).collect();
    assert_eq!(
        seqs,
        (100..105).map(|i| BASE + 1000 + i).collect::<Vec<_>>(),
        "catch_up: after cursor"
    );
    let all = store.catch_up(&reader, &after).await.unwrap();
    assert_eq!(
        all.len(),
        350,
        "catch_up: pages through everything after the cursor"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].notification.cursor() < w[1].notification.cursor()),
        "catch_up: ascending"
    );
    let before_all = Cursor::after_time(Utc.timestamp_millis_opt(BASE / 1000).single().unwrap());
    let all = store.catch_up(&reader, &before_all).await.unwrap();
    assert_eq!(all.len(), 450, "catch_up: a time cursor before them all");
    let same_ms = Cursor::after_time(
        Utc.timestamp_millis_opt((BASE + 1000) / 1000)
            .single()
            .unwrap(),
    );
    let none = store.catch_up(&reader, &same_ms).await.unwrap();
    assert!(
        none.is_empty(),
        "catch_up: a time cursor excludes its own millisecond"
    );
}

/// Personal notifications reach only their user, group ones only members, broadcasts all.
pub async fn visibility(store: Arc<dyn NotificationStore>) {
    store
        .insert(&[
            sample("vis-1", user("alice"), BASE + 1),
            sample("vis-2", user("bob"), BASE + 2),
            sample("vis-3", group("admins"), BASE + 3),
            sample("vis-4", Audience::Broadcast, BASE + 4),
        ])
        .await
        .unwrap();
    let alice = Reader::new("alice", vec!["admins".into()]);
    let bob = Reader::new("bob", vec![]);
    let ids = |items: Vec<crate::model::InboxItem>| -> Vec<String> {
        items.into_iter().map(|i| i.notification.event_id).collect()
    };
    assert_eq!(
        ids(store.list(&alice, &newest(10)).await.unwrap()),
        vec!["vis-4", "vis-3", "vis-1"],
        "visibility: alice"
    );
    assert_eq!(
        ids(store.list(&bob, &newest(10)).await.unwrap()),
        vec!["vis-4", "vis-2"],
        "visibility: bob"
    );
    assert_eq!(
        store.unread_count(&alice).await.unwrap(),
        3,
        "visibility: alice count"
    );
    assert_eq!(
        store.unread_count(&bob).await.unwrap(),
        2,
        "visibility: bob count"
    );
    let hidden = notification_id("vis-2", &user("bob"));
    assert!(
        store.mark_read(&alice, &[hidden]).await.unwrap().is_empty(),
        "visibility: cannot mark another user's notification"
    );
    assert_eq!(
        store.unread_count(&bob).await.unwrap(),
        2,
        "visibility: bob unaffected"
    );
}

/// Group and broadcast read state is per reader; marking twice is harmless.
pub async fn read_state_is_per_reader(store: Arc<dyn NotificationStore>) {
    let g = sample("rs-1", group("team"), BASE + 1);
    let b = sample("rs-2", Audience::Broadcast, BASE + 2);
    store.insert(&[g.clone(), b.clone()]).await.unwrap();
    let ann = Reader::new("ann", vec!["team".into()]);
    let ben = Reader::new("ben", vec!["team".into()]);
    let marked = store
        .mark_read(&ann, &[g.id.clone(), b.id.clone(), "n_unknown".into()])
        .await
        .unwrap();
    assert_eq!(marked.len(), 2, "read_state: returns the visible ids");
    store
        .mark_read(&ann, std::slice::from_ref(&g.id))
        .await
        .unwrap();
    assert_eq!(
        store.unread_count(&ann).await.unwrap(),
        0,
        "read_state: ann read both"
    );
    assert_eq!(
        store.unread_count(&ben).await.unwrap(),
        2,
        "read_state: ben unaffected"
    );
    let items = store.list(&ann, &newest(10)).await.unwrap();
    assert!(
        items.iter().all(|i| i.read),
        "read_state: ann sees read=true"
    );
    let items = store.list(&ben, &newest(10)).await.unwrap();
    assert!(
        items.iter().all(|i| !i.read),
        "read_state: ben sees read=false"
    );
}

/// Mark-all-read covers what exists; later notifications are unread.
pub async fn mark_all_read_is_a_watermark(store: Arc<dyn NotificationStore>) {
    store
        .insert(&[
            sample("ma-1", user("dora"), BASE + 1),
            sample("ma-2", group("ops"), BASE + 2),
            sample("ma-3", Audience::Broadcast, BASE + 3),
        ])
        .await
        .unwrap();
    let dora = Reader::new("dora", vec!["ops".into()]);
    let eve = Reader::new("eve", vec!["ops".into()]);
    store.mark_all_read(&dora).await.unwrap();
    assert_eq!(
        store.unread_count(&dora).await.unwrap(),
        0,
        "mark_all: dora"
    );
    assert_eq!(
        store.unread_count(&eve).await.unwrap(),
        2,
        "mark_all: eve unaffected"
    );
    store
        .insert(&[sample("ma-4", user("dora"), BASE + 4)])
        .await
        .unwrap();
    assert_eq!(
        store.unread_count(&dora).await.unwrap(),
        1,
        "mark_all: a later one is unread"
    );
    store.mark_all_read(&dora).await.unwrap();
    store.mark_all_read(&dora).await.unwrap();
    assert_eq!(
        store.unread_count(&dora).await.unwrap(),
        0,
        "mark_all: twice is harmless"
    );
}

/// `unread_only` lists only unread items.
pub async fn unread_only_filter(store: Arc<dyn NotificationStore>) {
    let batch: Vec<_> = (0..6)
        .map(|i| sample(&format!("uo-{i}"), user("finn"), BASE + i))
        .collect();
    store.insert(&batch).await.unwrap();
    let finn = Reader::new("finn", vec![]);
    store
        .mark_read(&finn, &[batch[1].id.clone(), batch[4].id.clone()])
        .await
        .unwrap();
    let items = store
        .list(
            &finn,
            &ListQuery {
                page: Page::NewestBefore(None),
                limit: 10,
                unread_only: true,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = items.iter().map(|i| i.notification.seq - BASE).collect();
    assert_eq!(seqs, vec![5, 3, 2, 0], "unread_only");
    assert_eq!(
        store.unread_count(&finn).await.unwrap(),
        4,
        "unread_only: count"
    );
}

/// `purge` removes notifications created before the cut-off, and only those.
pub async fn purge_removes_old(store: Arc<dyn NotificationStore>) {
    store
        .insert(&[
            sample("pg-1", user("gus"), BASE + 1),
            sample("pg-2", user("gus"), BASE + 2_000_000),
        ])
        .await
        .unwrap();
    let cutoff = Utc.timestamp_micros(BASE + 1_000_000).single().unwrap();
    assert_eq!(store.purge(cutoff).await.unwrap(), 1, "purge: count");
    let gus = Reader::new("gus", vec![]);
    let items = store.list(&gus, &newest(10)).await.unwrap();
    assert_eq!(items.len(), 1, "purge: newer one kept");
    assert_eq!(items[0].notification.event_id, "pg-2");
    assert_eq!(
        store.unread_count(&gus).await.unwrap(),
        1,
        "purge: count follows"
    );
}

/// Odd ids, `$`-prefixed and dotted keys, unicode and large data round-trip exactly.
pub async fn stores_faithfully(store: Arc<dyn NotificationStore>) {
    let mut odd = sample(
        "evt/with spaces & ünïcødé $x.y",
        user("hé llo.$user"),
        BASE + 1,
    );
    odd.data = Some(
        json!({"$set": {"a.b": 1}, "$where": "1", "dots.in.key": [1, 2.5, null, "x"], "empty": {}, "emoji": "🔔", "big": "z".repeat(40_000)})
            .as_object()
            .cloned()
            .unwrap(),
    );
    odd.title = "line\nbreak \"quoted\" \u{0}nul".into();
    odd.link = None;
    odd.priority = Priority::High;
    let plain = sample("faithful-plain", user("hé llo.$user"), BASE + 2);
    store
        .insert(&[odd.clone(), plain.clone()])
        .await
        .expect("stores odd input");
    let reader = Reader::new("hé llo.$user", vec![]);
    let items = store.list(&reader, &newest(10)).await.unwrap();
    assert_eq!(items.len(), 2, "faithful: both stored");
    assert_eq!(
        items[1].notification, odd,
        "faithful: odd notification round-trips"
    );
    assert_eq!(items[0].notification, plain, "faithful: neighbour intact");
}

/// `ping` answers.
pub async fn ping(store: Arc<dyn NotificationStore>) {
    store.ping().await.expect("ping");
}
