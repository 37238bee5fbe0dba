//! Helpers for the tests against a real broker (`NOTIFY_TEST_KAFKA`).
#![allow(dead_code, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify_core::auth::Authenticator;
use notify_core::hub::{session_queue, SessionReceiver};
use notify_core::{MemorySource, NotificationStore, NotifyService, Push, Reader};
use notify_kafka::{Kafka, KafkaConfig, KafkaRunning};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The broker under test, or `None` after printing the skip line.
pub(crate) fn broker() -> Option<String> {
    match std::env::var("NOTIFY_TEST_KAFKA") {
        Ok(b) if !b.trim().is_empty() => {
            init_tracing();
            Some(b)
        }
        _ => {
            println!("skipping: NOTIFY_TEST_KAFKA not set");
            None
        }
    }
}

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,notify_kafka=info".into()),
        )
        .with_test_writer()
        .try_init();
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t-{name}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A configuration on a fresh topic and group.
pub(crate) fn config(brokers: &str, name: &str) -> KafkaConfig {
    let topic = unique(name);
    KafkaConfig::new(brokers)
        .group(format!("{topic}-g"))
        .topic(topic)
        .instance_id(unique("i"))
}

/// Creates `topic` with `partitions` partitions (before `Kafka::start`, which then keeps it).
pub(crate) async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let r = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap();
    for x in r {
        x.unwrap();
    }
}

/// A service on `store` with a local hub (its own sink is an unused in-memory one).
pub(crate) fn service(store: Arc<dyn NotificationStore>) -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    NotifyService::builder(store, Arc::new(publisher), Authenticator::hs256(b"test")).build()
}

/// Connects and starts, waiting until the storing consumer has partitions.
pub(crate) async fn start(config: KafkaConfig, service: Arc<NotifyService>) -> KafkaRunning {
    let kafka = Kafka::connect(config).await.expect("connect");
    let running = kafka.start(service).await.expect("start");
    assert!(
        running.wait_fanout(Duration::from_secs(30)).await,
        "fan-out got partitions"
    );
    assert!(
        running.wait_assigned(Duration::from_secs(30)).await,
        "storing consumer got partitions"
    );
    running
}

/// Waits until `store` holds `n` notifications (pushes do not wait for the store, so a
/// test that saw a push may still have to wait for the write), then asserts exactly `n`.
pub(crate) async fn stored(store: &notify_core::MemoryStore, n: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.len(), n, "{what}");
}

/// Registers a session for `user` and returns its queue.
pub(crate) fn session(
    service: &NotifyService,
    user: &str,
    groups: &[&str],
    capacity: usize,
) -> SessionReceiver {
    let (tx, rx) = session_queue(capacity);
    service.hub().register(
        &Arc::new(Reader::new(
            user,
            groups.iter().map(|g| g.to_string()).collect(),
        )),
        tx,
    );
    rx
}

/// The next `n` pushes, or panics after `timeout`.
pub(crate) async fn recv_n(
    rx: &mut SessionReceiver,
    n: usize,
    timeout: Duration,
) -> Vec<Arc<Push>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(p)) => out.push(p),
            Ok(None) => panic!("session closed after {} of {n}", out.len()),
            Err(_) => panic!("only {} of {n} pushes within {timeout:?}", out.len()),
        }
    }
    out
}

/// Nothing more arrives within `wait`.
pub(crate) async fn assert_quiet(rx: &mut SessionReceiver, wait: Duration) {
    if let Ok(Some(p)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected push {}", p.notification.id);
    }
}

/// A plain producer (the test's own, not the adapter's code).
pub(crate) fn raw_producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

pub(crate) async fn produce(
    p: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> (i32, i64) {
    let d = p
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
    (d.partition, d.offset)
}

/// A valid event for `user`.
pub(crate) fn event(id: &str, user: &str) -> String {
    serde_json::json!({
        "id": id,
        "type": "test.event",
        "recipients": { "users": [user] },
        "title": "t",
        "message": format!("message {id}"),
    })
    .to_string()
}

/// Reads `n` messages of `topic` from the beginning (all partitions).
pub(crate) fn read_topic(
    brokers: &str,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

pub(crate) fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let h = m.headers()?;
    h.iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
