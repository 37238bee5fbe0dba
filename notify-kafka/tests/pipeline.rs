//! The storing pipeline and the fan-out against a real broker: at-least-once across a crash
//! between store write and commit, dead letters, per-partition order across audiences, two
//! instances, events from an independent producer (Kafka's own console producer), and a
//! store outage that does not stop pushes.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::*;
use notify_core::store::{InsertOutcome, ListQuery, NotificationStore, Reader};
use notify_core::{InboxItem, MemoryStore, Notification};
use notify_kafka::{
    EventPublisher, OutgoingEvent, HEADER_ERROR, HEADER_ERROR_FIELD, HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::Notify;

/// A store that records which events it was asked to write and can hang after the write
/// (a crash after the store write, before the acknowledgement and commit).
struct Recording {
    inner: Arc<MemoryStore>,
    hang_after_write: AtomicBool,
    written: Notify,
    event_ids: Mutex<Vec<String>>,
}

impl Recording {
    fn new(inner: Arc<MemoryStore>, hang: bool) -> Arc<Self> {
        Arc::new(Recording {
            inner,
            hang_after_write: AtomicBool::new(hang),
            written: Notify::new(),
            event_ids: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl NotificationStore for Recording {
    async fn insert(&self, batch: &[Notification]) -> notify_core::Result<InsertOutcome> {
        let outcome = self.inner.insert(batch).await?;
        self.event_ids
            .lock()
            .extend(batch.iter().map(|n| n.event_id.clone()));
        if self.hang_after_write.load(Ordering::SeqCst) {
            self.written.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(outcome)
    }
    async fn list(&self, r: &Reader, q: &ListQuery) -> notify_core::Result<Vec<InboxItem>> {
        self.inner.list(r, q).await
    }
    async fn unread_count(&self, r: &Reader) -> notify_core::Result<u64> {
        self.inner.unread_count(r).await
    }
    async fn mark_read(&self, r: &Reader, ids: &[String]) -> notify_core::Result<Vec<String>> {
        self.inner.mark_read(r, ids).await
    }
    async fn mark_all_read(&self, r: &Reader) -> notify_core::Result<()> {
        self.inner.mark_all_read(r).await
    }
    async fn purge(&self, before: DateTime<Utc>) -> notify_core::Result<u64> {
        self.inner.purge(before).await
    }
    async fn ping(&self) -> notify_core::Result<()> {
        Ok(())
    }
}

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_store_write_before_commit_redelivers_and_stores_once() {
    let Some(b) = broker() else { return };
    let mut cfg = config(&b, "alo");
    cfg.drain_timeout = Duration::from_millis(500);
    let memory = Arc::new(MemoryStore::new());

    // First instance: the event is pushed at once (the fan-out does not wait for the
    // store); the store write succeeds, then the process "dies" before the
    // acknowledgement (the store call never returns), and is shut down.
    let first_store = Recording::new(memory.clone(), true);
    let first_svc = service(first_store.clone());
    let mut alice = session(&first_svc, "alice", &[], 64);
    let first = start(cfg.clone(), first_svc).await;
    let p = raw_producer(&b);
    produce(
        &p,
        &cfg.topic,
        "alice",
        event("evt-alo-1", "alice").as_bytes(),
    )
    .await;
    let pushes = recv_n(&mut alice, 1, T).await;
    assert_eq!(pushes[0].notification.event_id, "evt-alo-1");
    tokio::time::timeout(T, first_store.written.notified())
        .await
        .expect("first instance wrote to the store");
    assert_eq!(memory.len(), 1);
    first.shutdown().await;

    // Second instance in the same group: the event is delivered again and written again
    // (an idempotent duplicate: same id, same cursor).
    let second_store = Recording::new(memory.clone(), false);
    let svc = service(second_store.clone());
    let second = start(cfg.clone().instance_id(unique("i2")), svc).await;
    let deadline = std::time::Instant::now() + T;
    while second_store.event_ids.lock().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not redelivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        second_store.event_ids.lock().as_slice(),
        ["evt-alo-1".to_string()],
        "the event was seen again after the crash"
    );
    assert_eq!(memory.len(), 1, "and stored once");
    let stored = memory
        .list(
            &Reader::new("alice", vec![]),
            &ListQuery {
                page: notify_core::store::Page::NewestBefore(None),
                limit: 10,
                unread_only: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        stored[0].notification.cursor(),
        pushes[0].notification.cursor(),
        "the pushed cursor is the stored one"
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_go_to_the_dlq_and_do_not_block_the_partition() {
    let Some(b) = broker() else { return };
    let cfg = config(&b, "dlq");
    create_topic(&b, &cfg.topic, 1).await;
    let memory = Arc::new(MemoryStore::new());
    let svc = service(memory.clone());
    let mut alice = session(&svc, "alice", &[], 64);
    let running = start(cfg.clone(), svc).await;

    let p = raw_producer(&b);
    let malformed = produce(&p, &cfg.topic, "alice", b"{not json").await;
    let schema = produce(
        &p,
        &cfg.topic,
        "alice",
        br#"{"id":"evt-bad-2","type":"t","recipients":{"users":["alice"]},"title":"t","message":"m","priority":"urgent"}"#,
    )
    .await;
    let nobody = produce(
        &p,
        &cfg.topic,
        "alice",
        br#"{"id":"evt-bad-3","type":"t","title":"t","message":"m"}"#,
    )
    .await;
    produce(
        &p,
        &cfg.topic,
        "alice",
        event("evt-good-4", "alice").as_bytes(),
    )
    .await;

    let pushes = recv_n(&mut alice, 1, T).await;
    assert_eq!(pushes[0].notification.event_id, "evt-good-4");
    stored(&memory, 1, "the good event is stored").await;

    let dlq = read_topic(&b, &cfg.dlq_topic(), 3, T);
    assert_eq!(dlq.len(), 3, "three dead letters");
    let expected = [
        (malformed, "invalid JSON", None),
        (schema, "priority", Some("priority")),
        (nobody, "recipient", Some("recipients")),
    ];
    for (m, ((partition, offset), needle, field)) in dlq.iter().zip(expected) {
        let reason = header(m, HEADER_ERROR).expect("notify-error header");
        assert!(
            reason.contains(needle),
            "reason {reason:?} mentions {needle:?}"
        );
        assert_eq!(header(m, HEADER_SOURCE_TOPIC).as_deref(), Some(&*cfg.topic));
        assert_eq!(
            header(m, HEADER_SOURCE_PARTITION),
            Some(partition.to_string())
        );
        assert_eq!(header(m, HEADER_SOURCE_OFFSET), Some(offset.to_string()));
        assert_eq!(header(m, HEADER_ERROR_FIELD).as_deref(), field);
    }
    assert_eq!(
        dlq[0].payload(),
        Some(&b"{not json"[..]),
        "payload kept as is"
    );

    // Everything, dead letters included, gets committed.
    running.shutdown().await;
    let committed = committed_offset(&b, &cfg.group, &cfg.topic, 0);
    assert_eq!(committed, 4);
}

fn committed_offset(brokers: &str, group: &str, topic: &str, partition: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    match got.elements()[0].offset() {
        Offset::Offset(o) => o,
        other => panic!("no committed offset: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_events_arrive_in_order() {
    let Some(b) = broker() else { return };
    let cfg = config(&b, "order");
    let memory = Arc::new(MemoryStore::new());
    let svc = service(memory.clone());
    let mut alice = session(&svc, "alice", &["buyers"], 4096);
    let running = start(cfg.clone(), svc).await;

    // One partition (one key) carrying alice's personal, group and broadcast
    // notifications, interleaved with other users' events on other partitions.
    let p: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..1000 {
        let recipients = match i % 3 {
            0 => serde_json::json!({ "users": ["alice"] }),
            1 => serde_json::json!({ "groups": ["buyers"] }),
            _ => serde_json::json!({ "broadcast": true }),
        };
        let ev = serde_json::json!({
            "id": format!("evt-alice-{i}"), "type": "test.order", "recipients": recipients,
            "title": "t", "message": "m",
        })
        .to_string();
        pending.push(
            p.send_result(
                rdkafka::producer::FutureRecord::to(&cfg.topic)
                    .key("alice")
                    .payload(&ev),
            )
            .map_err(|(e, _)| e)
            .unwrap(),
        );
        if i % 10 == 0 {
            for user in ["bob", "carol"] {
                produce(
                    &p,
                    &cfg.topic,
                    user,
                    event(&format!("evt-{user}-{i}"), user).as_bytes(),
                )
                .await;
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }

    let pushes = recv_n(&mut alice, 1000, Duration::from_secs(60)).await;
    let ids: Vec<String> = pushes
        .iter()
        .map(|p| p.notification.event_id.clone())
        .collect();
    let expected: Vec<String> = (0..1000).map(|i| format!("evt-alice-{i}")).collect();
    assert_eq!(
        ids, expected,
        "alice's 1,000 notifications of one partition in offset order, whatever the audience"
    );
    assert_quiet(&mut alice, Duration::from_millis(300)).await;

    // The lag gauge is exported for the input topic (librdkafka statistics, every second).
    let wanted = format!(
        "notify_kafka_consumer_lag{{topic=\"{}\",partition=\"",
        cfg.topic
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = notify_core::metrics::render().expect("prometheus recorder installed");
        if text.contains(&wanted) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {wanted} in /metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stored(&memory, 1200, "every event stored").await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_both_push_and_store_once() {
    let Some(b) = broker() else { return };
    let cfg = config(&b, "two");
    let memory = Arc::new(MemoryStore::new());
    let svc_a = service(memory.clone());
    let svc_b = service(memory.clone());
    let mut alice_a = session(&svc_a, "alice", &["buyers"], 256);
    let mut alice_b = session(&svc_b, "alice", &["buyers"], 256);
    let mut bob_b = session(&svc_b, "bob", &["buyers"], 256);
    let a = start(cfg.clone().instance_id("node-a"), svc_a).await;
    let b_running = start(cfg.clone().instance_id("node-b"), svc_b).await;
    // Let the group settle on two members.
    let deadline = std::time::Instant::now() + T;
    while a.source().assigned_partitions() + b_running.source().assigned_partitions() != 4 {
        assert!(std::time::Instant::now() < deadline, "group did not settle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let publisher = EventPublisher::new(&cfg).unwrap();
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(
            OutgoingEvent::new(format!("evt-two-{i}"), "test.two")
                .to_user("alice")
                .title("t")
                .message("m"),
        );
    }
    events.push(
        OutgoingEvent::new("evt-two-group", "test.two")
            .to_group("buyers")
            .title("t")
            .message("m"),
    );
    publisher.publish_all(&events).await.unwrap();

    let ids = |v: Vec<Arc<notify_core::Push>>| -> HashSet<String> {
        v.into_iter()
            .map(|p| p.notification.event_id.clone())
            .collect()
    };
    let on_a = ids(recv_n(&mut alice_a, 21, T).await);
    let on_b = ids(recv_n(&mut alice_b, 21, T).await);
    assert_eq!(on_a.len(), 21);
    assert_eq!(on_a, on_b, "a session on each instance got every event");
    let bob = recv_n(&mut bob_b, 1, T).await;
    assert_eq!(bob[0].notification.event_id, "evt-two-group");
    stored(&memory, 21, "stored once for the cluster").await;
    assert_quiet(&mut alice_a, Duration::from_millis(300)).await;
    a.shutdown().await;
    b_running.shutdown().await;
}

fn kafka_libs() -> Option<std::path::PathBuf> {
    let cache = std::env::var("NOTIFY_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/notify")
        });
    let home = cache.join("kafka-4.1.1");
    home.join("libs").is_dir().then_some(home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_kafkas_console_producer_reach_a_session() {
    let Some(b) = broker() else { return };
    let Some(home) = kafka_libs() else {
        panic!("Kafka's jars are missing: run scripts/kafka.sh install");
    };
    let cfg = config(&b, "console");
    let memory = Arc::new(MemoryStore::new());
    let svc = service(memory.clone());
    let mut alice = session(&svc, "alice", &["ops"], 64);
    let mut bob = session(&svc, "bob", &["ops"], 64);
    let running = start(cfg.clone(), svc).await;

    let lines = format!(
        "alice\t{}\nops\t{}\n",
        event("evt-console-1", "alice"),
        serde_json::json!({
            "id": "evt-console-2", "type": "ops.notice",
            "recipients": {"groups": ["ops"]},
            "title": "Maintenance", "message": "tonight", "priority": "high"
        })
    );
    let mut child = tokio::process::Command::new("java")
        .arg("-Xmx256m")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            home.join("log4j2.properties").display()
        ))
        .arg("-Dnotify.log.level=WARN")
        .arg("-Dnotify.log.target=SYSTEM_ERR")
        .arg("-cp")
        .arg(format!("{}/*", home.join("libs").display()))
        .arg("org.apache.kafka.tools.ConsoleProducer")
        .args(["--bootstrap-server", &b, "--topic", &cfg.topic])
        .args(["--property", "parse.key=true"])
        .args(["--property", "key.separator=\t"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("java runs");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(lines.as_bytes()).await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("console producer exits")
        .unwrap();
    assert!(status.success(), "console producer: {status}");

    let got = recv_n(&mut alice, 2, T).await;
    let ids: HashSet<&str> = got
        .iter()
        .map(|p| p.notification.event_id.as_str())
        .collect();
    assert_eq!(ids, HashSet::from(["evt-console-1", "evt-console-2"]));
    let b_got = recv_n(&mut bob, 1, T).await;
    assert_eq!(b_got[0].notification.event_id, "evt-console-2");
    assert_eq!(b_got[0].notification.title, "Maintenance");
    stored(&memory, 2, "both stored").await;
    running.shutdown().await;
}

/// A store that is down until `up` is set.
struct Outage {
    inner: Arc<MemoryStore>,
    up: AtomicBool,
    failed: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl NotificationStore for Outage {
    async fn insert(&self, batch: &[Notification]) -> notify_core::Result<InsertOutcome> {
        if !self.up.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(notify_core::Error::unavailable_because(
                "store",
                "down for the test",
            ));
        }
        self.inner.insert(batch).await
    }
    async fn list(&self, r: &Reader, q: &ListQuery) -> notify_core::Result<Vec<InboxItem>> {
        self.inner.list(r, q).await
    }
    async fn unread_count(&self, r: &Reader) -> notify_core::Result<u64> {
        self.inner.unread_count(r).await
    }
    async fn mark_read(&self, r: &Reader, ids: &[String]) -> notify_core::Result<Vec<String>> {
        self.inner.mark_read(r, ids).await
    }
    async fn mark_all_read(&self, r: &Reader) -> notify_core::Result<()> {
        self.inner.mark_all_read(r).await
    }
    async fn purge(&self, before: DateTime<Utc>) -> notify_core::Result<u64> {
        self.inner.purge(before).await
    }
    async fn ping(&self) -> notify_core::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_pauses_commits_nothing_and_catches_up() {
    let Some(b) = broker() else { return };
    let cfg = config(&b, "outage");
    create_topic(&b, &cfg.topic, 1).await;
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(Outage {
        inner: memory.clone(),
        up: AtomicBool::new(false),
        failed: Default::default(),
    });
    let svc = service(store.clone());
    let mut alice = session(&svc, "alice", &[], 256);
    let running = start(cfg.clone(), svc.clone()).await;
    let p = raw_producer(&b);
    for i in 0..50 {
        produce(
            &p,
            &cfg.topic,
            "alice",
            event(&format!("evt-out-{i}"), "alice").as_bytes(),
        )
        .await;
    }
    // While the store is down: pushed live at once and in order, storage retries, nothing
    // committed.
    let pushes = recv_n(&mut alice, 50, T).await;
    let ids: Vec<String> = pushes
        .iter()
        .map(|p| p.notification.event_id.clone())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("evt-out-{i}")).collect();
    assert_eq!(
        ids, expected,
        "live pushes continue in order during the outage"
    );
    let deadline = std::time::Instant::now() + T;
    while store.failed.load(Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline, "no store attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(memory.len(), 0);
    assert_eq!(
        svc.pending().len(),
        50,
        "unstored pushes are kept for resumes"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await; // > auto.commit.interval.ms
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("group.id", &cfg.group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&cfg.topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    assert!(
        matches!(
            got.elements()[0].offset(),
            Offset::Invalid | Offset::Offset(0)
        ),
        "nothing committed during the outage: {:?}",
        got.elements()[0].offset()
    );

    // The store comes back: the backlog is written once, committed, and the record of
    // unstored pushes empties; nothing is pushed a second time.
    store.up.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + T;
    while memory.len() < 50 || !svc.pending().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "stored {} of 50, {} unstored pushes left",
            memory.len(),
            svc.pending().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_quiet(&mut alice, Duration::from_millis(300)).await;
    running.shutdown().await;
    assert_eq!(memory.len(), 50);
    assert_eq!(committed_offset(&b, &cfg.group, &cfg.topic, 0), 50);
}
