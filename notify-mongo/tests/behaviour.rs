//! Idempotency, fan-out economy, bad input, retention and configuration errors, against a
//! real server (`NOTIFY_TEST_MONGO`; skipped when unset).

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use notify_core::model::{notification_id, Audience, Recipients};
use notify_core::store::{ListQuery, NotificationStore, Page, Reader};
use notify_core::testkit::store::sample;
use notify_core::Error;
use notify_mongo::{MongoStore, NOTIFICATIONS, READS, READ_MARKS};
use serde_json::json;

fn newest(limit: usize) -> ListQuery {
    ListQuery {
        page: Page::NewestBefore(None),
        limit,
        unread_only: false,
    }
}

const BASE: i64 = 1_795_000_000_000_000;

#[tokio::test]
async fn redelivered_event_is_stored_once_per_audience() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "redeliver").await;
    let recipients = Recipients {
        users: vec!["alice".into(), "bob".into(), "alice".into()],
        groups: vec!["admins".into()],
        broadcast: true,
    };
    let batch: Vec<_> = recipients
        .audiences()
        .into_iter()
        .enumerate()
        .map(|(i, a)| sample("evt-42", a, BASE + i as i64))
        .collect();
    assert_eq!(batch.len(), 4);
    let outcomes = [
        store.insert(&batch).await.unwrap(),
        store.insert(&batch).await.unwrap(),
        store.insert(&batch).await.unwrap(),
    ];
    assert_eq!((outcomes[0].inserted, outcomes[0].duplicates), (4, 0));
    for o in &outcomes[1..] {
        assert_eq!((o.inserted, o.duplicates), (0, 4));
    }
    assert_eq!(common::count(&store, NOTIFICATIONS).await, 4);
    // A batch that repeats a notification inside itself counts the repeat as a duplicate.
    let twice = vec![sample("evt-43", Audience::User("alice".into()), BASE + 10); 2];
    let o = store.insert(&twice).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 1));
    let alice = Reader::new("alice", vec!["admins".into()]);
    let items = store.list(&alice, &newest(50)).await.unwrap();
    assert_eq!(items.len(), 4, "alice: personal, group, broadcast, evt-43");
    assert_eq!(store.unread_count(&alice).await.unwrap(), 4);
    common::drop(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_10000_users_is_one_document() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "bcast").await;
    let b = sample("evt-all", Audience::Broadcast, BASE + 1);
    let g = sample("evt-group", Audience::Group("everyone".into()), BASE + 2);
    store.insert(&[b.clone(), g.clone()]).await.unwrap();
    assert_eq!(
        common::count(&store, NOTIFICATIONS).await,
        2,
        "one document per broadcast / group notification, not one per member"
    );
    let users: Vec<Reader> = (0..10_000)
        .map(|i| Reader::new(format!("user-{i}"), vec!["everyone".into()]))
        .collect();
    let marked = store
        .mark_read(&users[0], std::slice::from_ref(&b.id))
        .await
        .unwrap();
    assert_eq!(marked, vec![b.id.clone()]);
    store.mark_all_read(&users[1]).await.unwrap();
    assert_eq!(common::count(&store, READS).await, 1, "one read mark");
    assert_eq!(common::count(&store, READ_MARKS).await, 1, "one watermark");
    assert_eq!(store.unread_count(&users[0]).await.unwrap(), 1);
    assert_eq!(store.unread_count(&users[1]).await.unwrap(), 0);
    // Everybody else still has both unread. The read state above is the only read state in
    // the database (one `reads` and one `read_marks` document), so checking every 10th of
    // the other 9,998 users keeps the test quick on FerretDB.
    let t0 = Instant::now();
    let store_ref = &store;
    let counts: Vec<u64> = futures::stream::iter(users[2..].iter().step_by(10))
        .map(|u| async move { store_ref.unread_count(u).await.unwrap() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(counts.len(), 1_000);
    assert!(
        counts.iter().all(|&c| c == 2),
        "nobody else's count changed"
    );
    println!("1,000 unread counts in {:?}", t0.elapsed());
    let items = store.list(&users[0], &newest(10)).await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.read).collect::<Vec<_>>(),
        vec![false, true]
    );
    let items = store.list(&users[5], &newest(10)).await.unwrap();
    assert!(items.iter().all(|i| !i.read));
    common::drop(&store).await;
}

#[tokio::test]
async fn bad_input_is_stored_faithfully_or_rejected_cleanly() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "bad").await;
    let odd_user = "we\u{0}ird.$user\\ \u{1F514} \"q\"";
    let odd_group = "$group.with.dots";
    let reader = Reader::new(odd_user, vec![odd_group.into()]);
    let neighbour = sample("neighbour", Audience::User("plain".into()), BASE);
    let mut huge = sample("evt-huge", Audience::User(odd_user.into()), BASE + 1);
    huge.data = Some(
        json!({"blob": "x".repeat(60 * 1024), "$inc": {"a.b": 1}})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let mut odd_ids = Vec::new();
    for (i, id) in [
        "evt/with/slashes",
        "$where",
        "a.b.c",
        "{\"$gt\": \"\"}",
        "nul\u{0}inside",
        "tab\tand\nnewline",
        "ünïcødé 🔔",
        "back\\slash",
    ]
    .iter()
    .enumerate()
    {
        let mut n = sample(id, Audience::Group(odd_group.into()), BASE + 10 + i as i64);
        n.data = Some(
            json!({"$set": {"x": 1}, "dotted.key": "v", "$": null, ".": [], "": {"$oid": "x"}})
                .as_object()
                .cloned()
                .unwrap(),
        );
        n.message = format!("message with \u{0} and {id}");
        odd_ids.push(n);
    }
    let mut batch = vec![neighbour.clone(), huge.clone()];
    batch.extend(odd_ids.iter().cloned());
    let out = store.insert(&batch).await.expect("odd input is stored");
    assert_eq!(out.inserted, batch.len());

    let items = store.list(&reader, &newest(50)).await.unwrap();
    assert_eq!(items.len(), 1 + odd_ids.len());
    let mut expected: Vec<_> = odd_ids.iter().rev().cloned().collect();
    expected.push(huge.clone());
    let got: Vec<_> = items.into_iter().map(|i| i.notification).collect();
    assert_eq!(got, expected, "every odd notification round-trips exactly");
    // Odd ids as read targets, cursors through odd notifications.
    let ids: Vec<String> = odd_ids.iter().map(|n| n.id.clone()).collect();
    assert_eq!(store.mark_read(&reader, &ids).await.unwrap(), ids);
    assert_eq!(store.unread_count(&reader).await.unwrap(), 1);
    // A user whose name is a query operator sees nothing of others'.
    let sneaky = Reader::new("{\"$ne\": null}", vec!["$group".into()]);
    assert!(store.list(&sneaky, &newest(50)).await.unwrap().is_empty());

    // Larger than a document may be: rejected as bad input, nothing else written or harmed.
    let mut too_big = sample("evt-too-big", Audience::User("plain".into()), BASE + 100);
    too_big.data = Some(
        json!({"blob": "y".repeat(17 * 1024 * 1024)})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let innocent = sample("evt-innocent", Audience::User("plain".into()), BASE + 101);
    let err = store
        .insert(&[innocent.clone(), too_big])
        .await
        .expect_err("too big");
    assert!(
        matches!(err, Error::InvalidInput { .. }),
        "bad input, not {err:?}"
    );
    assert!(err.to_string().contains("bytes"), "{err}");
    let plain = Reader::new("plain", vec![]);
    let items = store.list(&plain, &newest(10)).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].notification, neighbour, "neighbour intact");
    common::drop(&store).await;
}

#[tokio::test]
async fn deep_pages_use_cursors() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "deep").await;
    let batch: Vec<_> = (0..3_000)
        .map(|i| {
            let a = if i % 10 == 0 {
                Audience::Broadcast
            } else {
                Audience::User("deep".into())
            };
            sample(&format!("d-{i}"), a, BASE + i)
        })
        .collect();
    let out = store.insert(&batch).await.unwrap();
    assert_eq!(out.inserted, 3_000);
    // Large batches are written as concurrent chunks; redelivery is still all duplicates.
    let again = store.insert(&batch).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 3_000));
    let reader = Reader::new("deep", vec![]);
    let mut before = None;
    let mut seen = 0;
    let mut last_seq = i64::MAX;
    loop {
        let page = store
            .list(
                &reader,
                &ListQuery {
                    page: Page::NewestBefore(before.clone()),
                    limit: 200,
                    unread_only: false,
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        for i in &page {
            assert!(i.notification.seq < last_seq);
            last_seq = i.notification.seq;
        }
        seen += page.len();
        before = Some(last.notification.cursor());
    }
    assert_eq!(seen, 3_000);
    // Unread-only paging skips explicit reads across chunk boundaries.
    let read_ids: Vec<String> = batch[..2_000].iter().map(|n| n.id.clone()).collect();
    store.mark_read(&reader, &read_ids).await.unwrap();
    let page = store
        .list(
            &reader,
            &ListQuery {
                page: Page::OldestAfter(batch[0].cursor()),
                limit: 5,
                unread_only: true,
            },
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = page.iter().map(|i| i.notification.seq - BASE).collect();
    assert_eq!(seqs, vec![2000, 2001, 2002, 2003, 2004]);
    assert_eq!(store.unread_count(&reader).await.unwrap(), 1_000);
    common::drop(&store).await;
}

#[tokio::test]
async fn unread_count_ignores_marks_of_removed_notifications() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "stale_marks").await;
    let reader = Reader::new("carol", vec!["ops".into()]);
    let batch: Vec<_> = (0..6)
        .map(|i| {
            let audience = match i % 3 {
                0 => Audience::User("carol".into()),
                1 => Audience::Group("ops".into()),
                _ => Audience::Broadcast,
            };
            sample(&format!("s-{i}"), audience, BASE + i)
        })
        .collect();
    store.insert(&batch).await.unwrap();
    let ids: Vec<String> = batch.iter().map(|n| n.id.clone()).collect();
    store.mark_read(&reader, &ids[..4]).await.unwrap();
    assert_eq!(store.unread_count(&reader).await.unwrap(), 2);
    // A retention pass removed the two oldest notifications but not yet their read marks
    // (the collections are swept one after the other).
    let coll = store
        .database()
        .collection::<notify_mongo::mongodb::bson::Document>(NOTIFICATIONS);
    for id in &ids[..2] {
        coll.delete_one(notify_mongo::mongodb::bson::doc! {"_id": id})
            .await
            .unwrap();
    }
    assert_eq!(common::count(&store, READS).await, 4);
    assert_eq!(
        store.unread_count(&reader).await.unwrap(),
        2,
        "4 stored, 2 of them read"
    );
    // Removing an unread one leaves the marks counted.
    coll.delete_one(notify_mongo::mongodb::bson::doc! {"_id": &ids[5]})
        .await
        .unwrap();
    assert_eq!(store.unread_count(&reader).await.unwrap(), 1);
    common::drop(&store).await;
}

#[tokio::test]
async fn sweeper_enforces_retention() {
    let Some(uri) = common::uri() else { return };
    let store = common::fresh_store(&uri, "sweep").await;
    let now = Utc::now().timestamp_micros();
    let hour = 3_600_000_000;
    let old = sample("old", Audience::Broadcast, now - 3 * hour);
    let fresh = sample("fresh", Audience::Broadcast, now);
    store.insert(&[old.clone(), fresh]).await.unwrap();
    let reader = Reader::new("r", vec![]);
    store
        .mark_read(&reader, std::slice::from_ref(&old.id))
        .await
        .unwrap();
    let sweeper = store.spawn_sweeper(Duration::from_secs(2 * 3600), Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(10);
    // A pass deletes notifications, then their read marks.
    while common::count(&store, NOTIFICATIONS).await != 1 || common::count(&store, READS).await != 0
    {
        assert!(
            Instant::now() < deadline,
            "sweeper did not remove the old one"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sweeper.abort();
    let _ = sweeper.await; // cancelled; nothing of it runs after this
    let items = store.list(&reader, &newest(10)).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].notification.event_id, "fresh");
    assert_eq!(common::count(&store, READS).await, 0, "read marks follow");
    assert_eq!(store.unread_count(&reader).await.unwrap(), 1);
    // Connecting again to the same database is fine (indexes are idempotent).
    let again = MongoStore::connect_with(&uri, store.database().name(), common::options())
        .await
        .expect("reconnect");
    again.ping().await.unwrap();
    common::drop(&store).await;
}

#[tokio::test]
async fn configuration_errors_name_the_variable() {
    // Needs no server: the URI is rejected before any connection.
    for bad in [
        "",
        "http://localhost",
        "mongodb://",
        "mongodb://host:notaport/",
    ] {
        let err = MongoStore::connect(bad, "notify").await.expect_err(bad);
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "NOTIFY_MONGO_URI"),
            "{bad:?}: {err:?}"
        );
    }
    let err = MongoStore::connect("mongodb://127.0.0.1:1/", "bad/name")
        .await
        .expect_err("bad db name");
    assert!(
        matches!(&err, Error::Config { variable, .. } if variable == "NOTIFY_MONGO_DB"),
        "{err:?}"
    );
    let _ = notification_id; // keep the import used in every cfg
}
