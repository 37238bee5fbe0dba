//! Store outage: FerretDB is killed while inserts are attempted, then restarted.
//!
//! Needs `NOTIFY_TEST_MONGO` and `NOTIFY_TEST_FERRETDB_STATE` (the STATE_DIR given to
//! `scripts/ferretdb.sh start`). It kills that server, so it lives in its own test binary:
//! nothing else in this binary uses the server while it is down.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify_core::model::Audience;
use notify_core::store::NotificationStore;
use notify_core::testkit::store::sample;
use notify_core::Error;
use notify_mongo::NOTIFICATIONS;
use tokio::sync::Mutex;

const BASE: i64 = 1_795_000_000_000_000;

fn ferretdb(action: &str, state: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/ferretdb.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .arg(state)
        .status()
        .expect("run scripts/ferretdb.sh");
    assert!(status.success(), "ferretdb.sh {action} failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_fail_transiently_during_an_outage_and_land_once_after() {
    let Some(uri) = common::uri() else { return };
    let Ok(state) = std::env::var("NOTIFY_TEST_FERRETDB_STATE") else {
        println!("skipping: NOTIFY_TEST_FERRETDB_STATE not set (the outage test kills FerretDB)");
        return;
    };
    let store = Arc::new(common::fresh_store(&uri, "outage").await);
    const BATCHES: usize = 30;
    const PER_BATCH: usize = 200;
    let batches: Vec<Vec<_>> = (0..BATCHES)
        .map(|b| {
            (0..PER_BATCH)
                .map(|i| {
                    let n = b * PER_BATCH + i;
                    let audience = match n % 3 {
                        0 => Audience::User(format!("u{}", n % 7)),
                        1 => Audience::Group(format!("g{}", n % 5)),
                        _ => Audience::Broadcast,
                    };
                    sample(&format!("out-{n}"), audience, BASE + n as i64)
                })
                .collect()
        })
        .collect();

    // The producer side: every batch is retried until the store takes it, as the pipeline
    // does; every failure must be a transient `Unavailable`.
    let done = Arc::new(Mutex::new(0usize));
    let failures = Arc::new(Mutex::new(Vec::<(Duration, String)>::new()));
    let inserter = {
        let (store, batches, done, failures) = (
            store.clone(),
            batches.clone(),
            done.clone(),
            failures.clone(),
        );
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            for batch in &batches {
                loop {
                    let t0 = Instant::now();
                    match store.insert(batch).await {
                        Ok(o) => {
                            assert_eq!(o.inserted + o.duplicates, batch.len());
                            break;
                        }
                        Err(e) => {
                            assert!(
                                matches!(
                                    e,
                                    Error::Unavailable {
                                        component: "store",
                                        ..
                                    }
                                ) && e.is_transient(),
                                "outage errors are transient Unavailable, got {e:?}"
                            );
                            assert!(std::error::Error::source(&e).is_some(), "keeps the source");
                            failures.lock().await.push((t0.elapsed(), e.to_string()));
                            assert!(Instant::now() < deadline, "store never came back");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                *done.lock().await += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    while *done.lock().await < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || ferretdb("kill", &st))
        .await
        .unwrap();
    let killed_at = Instant::now();
    // While it is down: inserts and ping fail quickly and transiently.
    let t0 = Instant::now();
    let err = store.ping().await.expect_err("ping while down");
    assert!(err.is_transient(), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(8), "ping failed fast");
    while failures.lock().await.is_empty() {
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "no insert failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || ferretdb("restart", &st))
        .await
        .unwrap();
    inserter.await.expect("inserter");

    let failures = failures.lock().await.clone();
    println!(
        "{} failed insert attempts during the outage; slowest {:?}; first: {}",
        failures.len(),
        failures.iter().map(|f| f.0).max().unwrap(),
        failures[0].1
    );
    assert!(
        failures.iter().all(|f| f.0 < Duration::from_secs(8)),
        "failures are reported within the server selection timeout"
    );
    let total = (BATCHES * PER_BATCH) as u64;
    assert_eq!(
        common::count(&store, NOTIFICATIONS).await,
        total,
        "every notification stored exactly once"
    );
    // Redelivering everything (what an uncommitted Kafka offset does) adds nothing.
    for batch in &batches {
        let o = store.insert(batch).await.unwrap();
        assert_eq!((o.inserted, o.duplicates), (0, batch.len()));
    }
    assert_eq!(common::count(&store, NOTIFICATIONS).await, total);
    store.ping().await.unwrap();
    common::drop(&store).await;
}
