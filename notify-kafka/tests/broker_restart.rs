//! The broker is killed (SIGKILL) and restarted mid-stream: delivery resumes and nothing is
//! lost. Alone in its own test binary because it takes the shared broker down.
//! Needs `NOTIFY_TEST_KAFKA` and `NOTIFY_TEST_KAFKA_STATE` (the `scripts/kafka.sh` state dir).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use notify_core::EventSource;
use notify_core::MemoryStore;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

fn kafka_sh(action: &str, state: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let status = Command::new("bash")
        .args([script, action, state])
        .status()
        .expect("bash runs");
    assert!(status.success(), "kafka.sh {action} failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    let Some(b) = broker() else { return };
    let Ok(state) = std::env::var("NOTIFY_TEST_KAFKA_STATE") else {
        println!("skipping: NOTIFY_TEST_KAFKA_STATE not set");
        return;
    };
    const N: usize = 300;
    let cfg = config(&b, "restart");
    let memory = Arc::new(MemoryStore::new());
    let svc = service(memory.clone());
    let alice = session(&svc, "alice", &[], 4096);
    let running = start(cfg.clone(), svc).await;

    // An idempotent producer that keeps retrying through the outage.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "180000")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .unwrap();
    let mut deliveries = Vec::with_capacity(N);
    let mut outage: Option<tokio::task::JoinHandle<Duration>> = None;
    for i in 0..N {
        let payload = event(&format!("evt-restart-{i}"), "alice");
        let f = producer
            .send_result(
                FutureRecord::to(&cfg.topic)
                    .key("alice")
                    .payload(payload.as_bytes()),
            )
            .map_err(|(e, _)| e)
            .expect("enqueued");
        deliveries.push(f);
        if i == N / 3 {
            let t0 = Instant::now();
            let s = state.clone();
            tokio::task::spawn_blocking(move || kafka_sh("kill", &s))
                .await
                .unwrap();
            // /health/ready would report the source DOWN now.
            let ping = running.source().ping().await;
            assert!(ping.is_err(), "ping fails while the broker is down");
            let state = state.clone();
            outage = Some(tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_secs(2));
                kafka_sh("restart", &state);
                t0.elapsed()
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down_for = outage.unwrap().await.unwrap();
    for (i, f) in deliveries.into_iter().enumerate() {
        f.await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("event {i} not accepted: {e}"));
    }

    // Every event reaches the session (repeats allowed, de-duplicated by id).
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < N {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, alice.recv()).await {
            Ok(Some(p)) => *seen.entry(p.notification.event_id.clone()).or_default() += 1,
            _ => panic!("only {} of {N} distinct events arrived", seen.len()),
        }
    }
    // Late repeats, if any.
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), alice.recv()).await {
        *seen.entry(p.notification.event_id.clone()).or_default() += 1;
    }
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    running.source().ping().await.expect("ping answers again");
    for i in 0..N {
        assert!(
            seen.contains_key(&format!("evt-restart-{i}")),
            "evt-restart-{i} lost"
        );
    }
    // Pushes do not wait for the store: storage may still be catching up (the storing
    // consumer rejoins its group after the restart).
    let deadline = Instant::now() + Duration::from_secs(120);
    while memory.len() < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(memory.len(), N, "each event stored exactly once");
    println!(
        "broker down and back in {down_for:?}: {N} events, all delivered, {repeats} repeated pushes, {} stored",
        memory.len()
    );
    running.shutdown().await;
}
