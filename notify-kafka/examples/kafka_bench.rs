//! Latency and throughput of the Kafka path against a real broker.
//!
//! ```text
//! NOTIFY_TEST_KAFKA=127.0.0.1:9092 cargo run --release -p notify-kafka --example kafka_bench -- latency 400 50 30
//! NOTIFY_TEST_KAFKA=127.0.0.1:9092 cargo run --release -p notify-kafka --example kafka_bench -- latency 400 5000 10
//! NOTIFY_TEST_KAFKA=127.0.0.1:9092 cargo run --release -p notify-kafka --example kafka_bench -- throughput 100000
//! ```
//!
//! `latency USERS RATE SECONDS`: sessions for USERS users on the in-memory hub; events are
//! published through `KafkaSink` (as `POST /api/events` does) at RATE per second, round-robin
//! over the users; latency is from the `publish` call to the push arriving in the session's
//! queue (the fan-out consumer of the input topic → hub; storage runs beside it).
//! The first 2 s are warm-up and not counted.
//!
//! `throughput N`: N events are produced first, then the storing pipeline starts; reports the
//! rate at which it consumes and stores them (in-memory store).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use notify_core::auth::Authenticator;
use notify_core::hub::session_queue;
use notify_core::{Event, EventSink, MemorySource, MemoryStore, NotifyService, Reader};
use notify_kafka::{Kafka, KafkaConfig, KafkaSink};
use parking_lot::Mutex;

fn brokers() -> String {
    std::env::var("NOTIFY_TEST_KAFKA")
        .or_else(|_| std::env::var("NOTIFY_KAFKA_BROKERS"))
        .unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn fresh_config() -> KafkaConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("bench-{nanos}");
    let mut c = KafkaConfig::new(brokers())
        .group(format!("{topic}-g"))
        .topic(topic);
    // Passthrough settings from the environment, as the server would take them.
    if let Ok(Some(env)) = KafkaConfig::from_vars(
        std::env::vars()
            .chain([("NOTIFY_KAFKA_BROKERS".to_string(), brokers())])
            .filter(|(k, _)| !matches!(k.as_str(), "NOTIFY_KAFKA_TOPIC" | "NOTIFY_KAFKA_GROUP")),
    ) {
        c.settings = env.settings;
        c.consumer_settings = env.consumer_settings;
        c.producer_settings = env.producer_settings;
    }
    c
}

fn service(store: Arc<MemoryStore>) -> Arc<NotifyService> {
    let (_s, publisher) = MemorySource::new(16);
    NotifyService::builder(store, Arc::new(publisher), Authenticator::hs256(b"bench")).build()
}

fn event(i: u64, user: &str) -> (Event, Bytes) {
    let raw = Bytes::from(
        serde_json::json!({
            "id": format!("b-{i}"),
            "type": "bench.event",
            "recipients": {"users": [user]},
            "title": "Bench",
            "message": format!("event {i}"),
            "data": {"i": i},
        })
        .to_string(),
    );
    (Event::from_slice(&raw).unwrap(), raw)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn latency(users: usize, rate: u64, seconds: u64) {
    let config = fresh_config();
    let store = Arc::new(MemoryStore::new());
    let svc = service(store.clone());
    let kafka = Kafka::connect(config.clone()).await.expect("connect");
    let sink = KafkaSink::new(&config).expect("sink");
    let total = rate * seconds;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let t0 = Instant::now();
    let samples: Arc<Mutex<Vec<(u64, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut receivers = Vec::new();
    let names: Vec<String> = (0..users).map(|u| format!("user-{u}")).collect();
    for name in &names {
        let (tx, rx) = session_queue(4096);
        svc.hub()
            .register(&Arc::new(Reader::new(name.clone(), vec![])), tx);
        let sent_at = sent_at.clone();
        let samples = samples.clone();
        receivers.push(tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let now = t0.elapsed().as_nanos() as u64;
                let i: u64 = p.notification.event_id[2..].parse().unwrap();
                let sent = sent_at[i as usize].load(Ordering::Relaxed);
                samples.lock().push((i, (now - sent) as f64 / 1e6));
            }
        }));
    }
    let running = kafka.start(svc.clone()).await.expect("start");
    assert!(running.wait_fanout(Duration::from_secs(30)).await);
    assert!(running.wait_assigned(Duration::from_secs(30)).await);
    // Let the fan-out's first fetches settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let acks: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut next = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while next < due {
            let i = next;
            next += 1;
            let ev = event(i, &names[(i % users as u64) as usize]);
            let sink = sink.clone();
            let sent_at = sent_at.clone();
            sent_at[i as usize].store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let acks = acks.clone();
            tokio::spawn(async move {
                sink.publish(&[ev]).await.expect("publish");
                let sent = sent_at[i as usize].load(Ordering::Relaxed);
                let now = t0.elapsed().as_nanos() as u64;
                acks.lock().push((now - sent) as f64 / 1e6);
            });
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples.lock().len() < total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let produce_secs = started.elapsed().as_secs_f64();
    let warmup = rate * 2;
    let mut lat: Vec<f64> = samples
        .lock()
        .iter()
        .filter(|(i, _)| *i >= warmup)
        .map(|(_, l)| *l)
        .collect();
    let received = samples.lock().len();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency users={users} rate={rate}/s seconds={seconds}: sent={total} received={received} \
         stored={} counted={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms (wall {:.1}s)",
        store.len(),
        lat.len(),
        pct(&lat, 50.0),
        pct(&lat, 90.0),
        pct(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        produce_secs,
    );
    let mut acks = acks.lock().clone();
    acks.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  publish acknowledged (KafkaSink, acks=all): p50={:.2}ms p99={:.2}ms max={:.2}ms",
        pct(&acks, 50.0),
        pct(&acks, 99.0),
        acks.last().copied().unwrap_or(f64::NAN)
    );
    running.shutdown().await;
    for r in receivers {
        r.abort();
    }
}

async fn throughput(n: u64) {
    let config = fresh_config();
    let store = Arc::new(MemoryStore::new());
    let svc = service(store.clone());
    let kafka = Kafka::connect(config.clone()).await.expect("connect");
    let sink = KafkaSink::new(&config).expect("sink");
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push(event(i, &format!("user-{}", i % 400)));
        if batch.len() == 1000 {
            sink.publish(&batch).await.expect("publish");
            batch.clear();
        }
    }
    sink.publish(&batch).await.expect("publish");
    println!(
        "produced {n} events through KafkaSink in {:.2}s ({:.0}/s)",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let running = kafka.start(svc).await.expect("start");
    while (store.len() as u64) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if t.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "throughput: consumed and stored {} of {n} events in {secs:.2}s ({:.0} events/s, including group join)",
        store.len(),
        store.len() as f64 / secs
    );
    running.shutdown().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(num(1, 100_000)).await,
        _ => latency(num(1, 400) as usize, num(2, 50), num(3, 30)).await,
    }
}
