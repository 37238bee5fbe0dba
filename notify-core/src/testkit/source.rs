//! The conformance suite for [`EventSource`]s: what is published arrives, in order; an
//! acknowledged delivery is not seen again; a dead-lettered one is settled.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::source::EventSource;
use crate::Error;

/// Something that can put raw payloads into the source under test.
pub trait Feed: Send + Sync {
    /// Publishes one payload; completes when the source will deliver it.
    fn feed(&self, payload: Bytes) -> futures::future::BoxFuture<'_, crate::Result<()>>;
}

impl Feed for crate::MemoryPublisher {
    fn feed(&self, payload: Bytes) -> futures::future::BoxFuture<'_, crate::Result<()>> {
        Box::pin(self.send_raw(payload))
    }
}

async fn next(source: &dyn EventSource) -> crate::source::Delivery {
    tokio::time::timeout(Duration::from_secs(30), source.next())
        .await
        .expect("a delivery within 30 s")
        .expect("next")
        .expect("source still open")
}

/// Runs the checks on a fresh `(source, feed)` from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn EventSource>, Arc<dyn Feed>)>,
{
    let (source, feed) = make().await;
    delivers_in_order(&*source, &*feed).await;
    dead_letter_settles(&*source, &*feed).await;
    source.ping().await.expect("ping");
}

/// 100 payloads arrive in the order they were fed, each acknowledged.
pub async fn delivers_in_order(source: &dyn EventSource, feed: &dyn Feed) {
    for i in 0..100 {
        feed.feed(Bytes::from(format!("{{\"n\":{i}}}")))
            .await
            .expect("feed");
    }
    for i in 0..100 {
        let d = next(source).await;
        assert_eq!(
            d.payload,
            Bytes::from(format!("{{\"n\":{i}}}")),
            "delivers_in_order"
        );
        d.ack().await.expect("ack");
    }
}

/// A dead-lettered delivery is settled and the next one follows.
pub async fn dead_letter_settles(source: &dyn EventSource, feed: &dyn Feed) {
    feed.feed(Bytes::from_static(b"not json")).await.unwrap();
    feed.feed(Bytes::from_static(b"{\"after\":true}"))
        .await
        .unwrap();
    let bad = next(source).await;
    assert_eq!(bad.payload, Bytes::from_static(b"not json"));
    bad.dead_letter(&Error::invalid_body("invalid JSON"))
        .await
        .expect("dead letter");
    let good = next(source).await;
    assert_eq!(
        good.payload,
        Bytes::from_static(b"{\"after\":true}"),
        "dead_letter_settles: next follows"
    );
    good.ack().await.unwrap();
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_source_conformance() {
        super::run_all(|| async {
            let (source, publisher) = crate::MemorySource::new(1024);
            (
                std::sync::Arc::new(source) as std::sync::Arc<dyn crate::EventSource>,
                std::sync::Arc::new(publisher) as std::sync::Arc<dyn super::Feed>,
            )
        })
        .await;
    }
}
