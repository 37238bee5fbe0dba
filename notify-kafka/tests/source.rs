//! `KafkaSource` against a real broker: the core's source conformance suite, plus redelivery
//! across restarts (written as source-generic checks so they can move into the testkit).

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{broker, config, produce, raw_producer};
use futures::future::BoxFuture;
use notify_core::testkit::source::{run_all, Feed};
use notify_core::{Delivery, EventSource};
use notify_kafka::{ensure_topics, KafkaConfig, KafkaSource};
use rdkafka::producer::FutureProducer;

struct KafkaFeed {
    producer: FutureProducer,
    topic: String,
}

impl Feed for KafkaFeed {
    fn feed(&self, payload: Bytes) -> BoxFuture<'_, notify_core::Result<()>> {
        Box::pin(async move {
            // One key: one partition, so order is defined.
            produce(&self.producer, &self.topic, "k", &payload).await;
            Ok(())
        })
    }
}

async fn next(source: &dyn EventSource) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), source.next())
        .await
        .expect("a delivery within 30 s")
        .expect("next")
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_passes_the_core_source_suite() {
    let Some(b) = broker() else { return };
    let config = config(&b, "conformance");
    ensure_topics(&config).await.unwrap();
    let source = Arc::new(KafkaSource::new(&config).unwrap());
    let feed = Arc::new(KafkaFeed {
        producer: raw_producer(&b),
        topic: config.topic.clone(),
    });
    let (s, f) = (source.clone(), feed.clone());
    run_all(move || {
        let (s, f) = (s.clone(), f.clone());
        async move { (s as Arc<dyn EventSource>, f as Arc<dyn Feed>) }
    })
    .await;
    source.close().await;
}

/// Source-generic: a delivery not acknowledged before a restart is delivered again; an
/// acknowledged one is not. `open` gives a fresh source on the same position store (for
/// Kafka: the same group); `close` shuts it down cleanly.
async fn redelivers_unacked_after_restart<O, OF, C, CF>(feed: &dyn Feed, open: O, close: C)
where
    O: Fn() -> OF,
    OF: Future<Output = Arc<dyn EventSource>>,
    C: Fn(Arc<dyn EventSource>) -> CF,
    CF: Future<Output = ()>,
{
    for p in ["a", "b", "c"] {
        feed.feed(Bytes::from(format!("{{\"p\":\"{p}\"}}")))
            .await
            .unwrap();
    }
    let first = open().await;
    let a = next(&*first).await;
    assert_eq!(a.payload, Bytes::from_static(b"{\"p\":\"a\"}"));
    a.ack().await.unwrap();
    let b = next(&*first).await;
    assert_eq!(b.payload, Bytes::from_static(b"{\"p\":\"b\"}"));
    let c = next(&*first).await;
    // Acknowledged out of order while b is still open: b must come back.
    c.ack().await.unwrap();
    drop(b);
    close(first).await;

    let second = open().await;
    let again = next(&*second).await;
    assert_eq!(
        again.payload,
        Bytes::from_static(b"{\"p\":\"b\"}"),
        "the unacknowledged delivery comes back first; the acknowledged one before it does not"
    );
    again.ack().await.unwrap();
    let c_again = next(&*second).await;
    assert_eq!(c_again.payload, Bytes::from_static(b"{\"p\":\"c\"}"));
    c_again.ack().await.unwrap();
    close(second).await;

    feed.feed(Bytes::from_static(b"{\"p\":\"d\"}"))
        .await
        .unwrap();
    let third = open().await;
    let d = next(&*third).await;
    assert_eq!(
        d.payload,
        Bytes::from_static(b"{\"p\":\"d\"}"),
        "acknowledged deliveries are not seen again"
    );
    d.ack().await.unwrap();
    close(third).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_redelivers_unacked_after_restart() {
    let Some(b) = broker() else { return };
    let config: KafkaConfig = config(&b, "redeliver");
    ensure_topics(&config).await.unwrap();
    let feed = KafkaFeed {
        producer: raw_producer(&b),
        topic: config.topic.clone(),
    };
    let sources: Arc<parking_lot::Mutex<Vec<Arc<KafkaSource>>>> = Default::default();
    let open = || {
        let config = config.clone();
        let sources = sources.clone();
        async move {
            let s = Arc::new(KafkaSource::new(&config).unwrap());
            sources.lock().push(s.clone());
            s as Arc<dyn EventSource>
        }
    };
    let close = |_s: Arc<dyn EventSource>| {
        let s = sources.lock().pop().unwrap();
        async move { s.close().await }
    };
    redelivers_unacked_after_restart(&feed, open, close).await;
}

/// The sink writes the publisher's trace context as `traceparent` / `tracestate` record
/// headers and the source hands it to the pipeline with the delivery; a record without
/// them, or with an invalid one, has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_travels_in_record_headers() {
    use notify_core::{Event, EventSink, TraceContext};
    use notify_kafka::KafkaSink;
    let Some(b) = broker() else { return };
    let config = config(&b, "traceparent");
    ensure_topics(&config).await.unwrap();
    let sink = KafkaSink::new(&config).unwrap();
    let raw = |id: &str| {
        Bytes::from(format!(
            r#"{{"id":"{id}","type":"t","recipients":{{"users":["u"]}},"title":"t","message":"m"}}"#
        ))
    };
    let event = |id: &str| (Event::from_slice(&raw(id)).unwrap(), raw(id));
    let trace = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("congo=t61rcWkgMzE"),
    )
    .unwrap();
    sink.publish_traced(&[event("traced")], Some(&trace))
        .await
        .unwrap();
    sink.publish(&[event("plain")]).await.unwrap();
    let source = KafkaSource::new(&config).unwrap();
    let traced = next(&source).await;
    assert!(std::str::from_utf8(&traced.payload)
        .unwrap()
        .contains("traced"));
    assert_eq!(traced.trace.as_ref(), Some(&trace));
    traced.ack().await.unwrap();
    let plain = next(&source).await;
    assert_eq!(plain.trace, None);
    plain.ack().await.unwrap();
    source.close().await;
}
