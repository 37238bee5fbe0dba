//! Measures the MongoDB store against the raw driver doing the same work on the same server.
//!
//! ```text
//! bash scripts/ferretdb.sh start /tmp/fdb && . /tmp/fdb/ferretdb.env
//! cargo run --release -p notify-mongo --example store_bench
//! ```
//!
//! Uses `NOTIFY_TEST_MONGO` (or the first argument) as the URI and fresh databases that are
//! dropped at the end. Prints a Markdown table (progress goes to stderr).

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use notify_core::model::{Audience, Cursor, Notification};
use notify_core::store::{ListQuery, NotificationStore, Page, Reader};
use notify_core::testkit::store::sample;
use notify_mongo::mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use notify_mongo::mongodb::options::IndexOptions;
use notify_mongo::mongodb::{Collection, IndexModel};
use notify_mongo::{MongoOptions, MongoStore, NOTIFICATIONS};

const BASE: i64 = 1_795_000_000_000_000;
/// Notifications per write measurement.
const WRITES: usize = 20_000;
/// Notifications for the one-insert-per-notification measurement.
const SINGLE_WRITES: usize = 2_000;
/// Latency samples per measurement (fewer if `BUDGET` runs out first).
const SAMPLES: usize = 400;
/// Time budget per latency measurement (FerretDB scans are slow).
const BUDGET: Duration = Duration::from_secs(40);

/// The document shape the store writes, built by hand for the raw-driver baseline.
fn raw_doc(n: &Notification) -> Document {
    let aud = match &n.audience {
        Audience::User(u) => format!("u:{u}"),
        Audience::Group(g) => format!("g:{g}"),
        Audience::Broadcast => "b".into(),
    };
    let body = serde_json::json!({
        "event_id": n.event_id, "type": n.notification_type, "audience": n.audience,
        "title": n.title, "message": n.message, "link": n.link, "data": n.data,
        "priority": n.priority, "occurred_at": n.occurred_at,
    })
    .to_string();
    doc! {
        "_id": &n.id,
        "aud": aud,
        "pos": raw_pos(n.seq, &n.id),
        "seq": n.seq,
        "ts": BsonDateTime::from_millis(n.seq / 1000),
        "event_id": &n.event_id,
        "body": body,
    }
}

fn raw_pos(seq: i64, id: &str) -> String {
    format!("{:016x}{id}", (seq as u64) ^ (1 << 63))
}

/// Times `f` up to `SAMPLES` times after a warm-up (at least 20 when the budget runs out).
async fn time_each<F, Fut>(mut f: F) -> Latency
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..5 {
        f(i).await;
    }
    let start = Instant::now();
    let mut v = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        if i >= 20 && start.elapsed() > BUDGET {
            break;
        }
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Latency {
        p50: ms(v[v.len() / 2]),
        p99: ms(v[(v.len() * 99) / 100]),
        n: v.len(),
    }
}

struct Latency {
    p50: f64,
    p99: f64,
    n: usize,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms (n={})",
            self.p50, self.p99, self.n
        )
    }
}

/// A mixed workload: 70 % personal (1,000 users), 20 % group (50 groups), 10 % broadcast.
fn workload(prefix: &str, count: usize, seq0: i64) -> Vec<Notification> {
    (0..count)
        .map(|i| {
            let audience = match i % 10 {
                0 => Audience::Broadcast,
                1 | 2 => Audience::Group(format!("group-{}", i % 50)),
                _ => Audience::User(format!("user-{}", i % 1000)),
            };
            sample(&format!("{prefix}-{i}"), audience, seq0 + i as i64)
        })
        .collect()
}

async fn raw_collection(store: &MongoStore, name: &str) -> Collection<Document> {
    let c = store.database().collection::<Document>(name);
    for (keys, name) in [
        (doc! {"aud": 1, "pos": 1}, "aud_pos"),
        (doc! {"ts": 1}, "ts"),
    ] {
        c.create_index(
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_string()).build())
                .build(),
        )
        .await
        .unwrap();
    }
    c
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate(n: usize, since: Instant) -> String {
    format!(
        "{:.0} notifications/s",
        n as f64 / since.elapsed().as_secs_f64()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let uri = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("NOTIFY_TEST_MONGO").ok())
        .expect("set NOTIFY_TEST_MONGO or pass the URI");
    let pid = std::process::id();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |a: String, b: String, c: String| {
        eprintln!("{a}: {b} | {c}");
        rows.push((a, b, c));
    };

    // `BENCH_ONLY=writes` or `BENCH_ONLY=reads` runs one half.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    // ---------------------------------------------------------------- writes
    if only != "reads" {
        let options = MongoOptions {
            insert_chunk: env_or("BENCH_CHUNK", MongoOptions::default().insert_chunk),
            ..MongoOptions::default()
        };
        let store = MongoStore::connect_with(&uri, &format!("bench_w_{pid}"), options)
            .await
            .expect("connect");
        let raw = raw_collection(&store, "raw_notifications").await;
        for (k, batch) in [256usize, 1000].into_iter().enumerate() {
            let work = workload(&format!("w{k}"), WRITES, BASE + k as i64 * 100_000_000);
            let t = Instant::now();
            for chunk in work.chunks(batch) {
                let o = store.insert(chunk).await.unwrap();
                assert_eq!(o.inserted, chunk.len());
            }
            let ours = rate(WRITES, t);
            let docs: Vec<Document> = workload(&format!("r{k}"), WRITES, BASE)
                .iter()
                .map(raw_doc)
                .collect();
            let t = Instant::now();
            for chunk in docs.chunks(batch) {
                raw.insert_many(chunk).ordered(false).await.unwrap();
            }
            let theirs = rate(WRITES, t);
            row(
                format!("write {WRITES}, `insert` batches of {batch}"),
                ours,
                format!("{theirs} (one `insert_many` per batch)"),
            );
            if batch == 1000 {
                let docs: Vec<Document> =
                    workload("rc", WRITES, BASE).iter().map(raw_doc).collect();
                let t = Instant::now();
                futures::stream::iter(docs.chunks(250))
                    .for_each_concurrent(4, |chunk| {
                        let raw = &raw;
                        async move {
                            raw.insert_many(chunk).ordered(false).await.unwrap();
                        }
                    })
                    .await;
                row(
                    format!("write {WRITES}, raw: chunks of 250, 4 at a time"),
                    "-".into(),
                    rate(WRITES, t),
                );
                let t = Instant::now();
                for chunk in work.chunks(batch) {
                    let o = store.insert(chunk).await.unwrap();
                    assert_eq!(o.duplicates, chunk.len());
                }
                let ours = rate(WRITES, t);
                let t = Instant::now();
                for chunk in docs.chunks(batch) {
                    let _ = raw.insert_many(chunk).ordered(false).await;
                }
                row(
                    format!("redeliver the same {WRITES} (all duplicates), batches of {batch}"),
                    ours,
                    rate(WRITES, t),
                );
            }
        }
        let singles = workload("s", SINGLE_WRITES, BASE + 500_000_000);
        let t = Instant::now();
        for n in &singles {
            store.insert(std::slice::from_ref(n)).await.unwrap();
        }
        let ours = rate(SINGLE_WRITES, t);
        let docs: Vec<Document> = workload("rs", SINGLE_WRITES, BASE + 500_000_000)
            .iter()
            .map(raw_doc)
            .collect();
        let t = Instant::now();
        for d in &docs {
            raw.insert_one(d).await.unwrap();
        }
        row(
            format!("write {SINGLE_WRITES}, one `insert` per notification"),
            ours,
            format!("{} (`insert_one`)", rate(SINGLE_WRITES, t)),
        );
        store.database().drop().await.unwrap();
    }

    // ---------------------------------------------------------------- reads
    if only != "writes" {
        // A user with 10,000 visible notifications (7,000 personal, 2,000 to a group, 1,000
        // broadcasts) in a collection that also holds 10,000 for other users and groups.
        let store =
            MongoStore::connect_with(&uri, &format!("bench_r_{pid}"), MongoOptions::default())
                .await
                .expect("connect");
        let heavy = Reader::new("heavy", vec!["team".into(), "group-7".into()]);
        let mut mine = Vec::new();
        for i in 0..10_000i64 {
            let audience = match i % 10 {
                0 => Audience::Broadcast,
                1 | 2 => Audience::Group("team".into()),
                _ => Audience::User("heavy".into()),
            };
            mine.push(sample(&format!("h-{i}"), audience, BASE + i * 3));
        }
        let others: Vec<Notification> = workload("o", 10_000, BASE + 1)
            .into_iter()
            .filter(|n| match &n.audience {
                Audience::Broadcast => false,
                Audience::Group(g) => g != "group-7",
                Audience::User(_) => true,
            })
            .collect();
        // Read state: everything up to the 2,000th read by "mark all read" (the watermark),
        // then 300 explicit reads above it.
        for chunk in mine[..2_000].chunks(1000) {
            store.insert(chunk).await.unwrap();
        }
        store.mark_all_read(&heavy).await.unwrap();
        for chunk in mine[2_000..].chunks(1000).chain(others.chunks(1000)) {
            store.insert(chunk).await.unwrap();
        }
        let explicit: Vec<String> = mine[3_000..3_300].iter().map(|n| n.id.clone()).collect();
        store.mark_read(&heavy, &explicit).await.unwrap();
        let total = store.unread_count(&heavy).await.unwrap();
        assert_eq!(total, 8_000 - 300);
        let deep: Vec<Cursor> = (0..SAMPLES)
            .map(|i| mine[(i * 7919) % 9_000 + 500].cursor())
            .collect();
        let page = |before: Option<Cursor>, unread_only: bool| ListQuery {
            page: Page::NewestBefore(before),
            limit: 20,
            unread_only,
        };

        let ours = time_each(|_| {
            let (store, heavy) = (&store, &heavy);
            async move {
                let items = store.list(heavy, &page(None, false)).await.unwrap();
                assert_eq!(items.len(), 20);
            }
        })
        .await;
        let coll = store.database().collection::<Document>(NOTIFICATIONS);
        let auds: Vec<Bson> = ["u:heavy", "g:team", "g:group-7", "b"]
            .iter()
            .map(|s| Bson::String(s.to_string()))
            .collect();
        let raw_page = |before: Option<&Cursor>| {
            let coll = &coll;
            let mut filter = doc! {"aud": {"$in": &auds}};
            if let Some(c) = before {
                filter.insert("pos", doc! {"$lt": raw_pos(c.seq, &c.id)});
            }
            async move {
                let docs: Vec<Document> = coll
                    .find(filter)
                    .sort(doc! {"pos": -1})
                    .limit(20)
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(docs.len(), 20);
            }
        };
        let theirs = time_each(|_| raw_page(None)).await;
        row(
            "inbox first page (20), user with 10,000".into(),
            ours.to_string(),
            theirs.to_string(),
        );
        let ours = time_each(|i| {
            let (store, heavy) = (&store, &heavy);
            let c = deep[i % deep.len()].clone();
            async move {
                let items = store.list(heavy, &page(Some(c), false)).await.unwrap();
                assert_eq!(items.len(), 20);
            }
        })
        .await;
        let theirs = time_each(|i| raw_page(Some(&deep[i % deep.len()]))).await;
        row(
            "inbox deep page (20, cursor 500..9,500 deep)".into(),
            ours.to_string(),
            theirs.to_string(),
        );
        let ours = time_each(|i| {
            let (store, heavy) = (&store, &heavy);
            let c = deep[i % deep.len()].clone();
            async move {
                let items = store.list(heavy, &page(Some(c), true)).await.unwrap();
                assert!(items.len() <= 20);
            }
        })
        .await;
        row(
            "inbox deep page, `unread_only`".into(),
            ours.to_string(),
            "-".into(),
        );
        let ours = time_each(|_| {
            let (store, heavy) = (&store, &heavy);
            async move {
                assert_eq!(store.unread_count(heavy).await.unwrap(), total);
            }
        })
        .await;
        let theirs = time_each(|_| {
            let coll = &coll;
            let filter = doc! {"aud": {"$in": &auds}};
            async move {
                assert_eq!(coll.count_documents(filter).await.unwrap(), 10_000);
            }
        })
        .await;
        row(
            format!("unread count ({total} of 10,000 unread: watermark + 300 explicit reads)"),
            ours.to_string(),
            format!("{theirs} (one `count_documents`, no read state)"),
        );
        let ours = time_each(|_| {
            let store = &store;
            async move { store.ping().await.unwrap() }
        })
        .await;
        row("`ping` round trip".into(), ours.to_string(), "-".into());
        store.database().drop().await.unwrap();
    }

    println!("| measurement | MongoStore | raw driver, same work, same server |");
    println!("|---|---|---|");
    for (a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
}
