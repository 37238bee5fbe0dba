use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::{mpsc, Mutex};

use super::{Acknowledge, Delivery, EventSink, EventSource};
use crate::error::{Error, Result};
use crate::model::Event;
use crate::trace::TraceContext;

/// The embedded event source: a bounded in-process channel.
///
/// Publishing waits when the channel is full, so a slow pipeline pushes back on producers
/// instead of growing memory. Dead letters are logged and counted.
#[derive(Debug)]
pub struct MemorySource {
    rx: Mutex<mpsc::Receiver<Delivery>>,
    stats: Arc<MemoryStats>,
}

/// Counters of a [`MemorySource`], shared with its publishers.
#[derive(Debug, Default)]
pub struct MemoryStats {
    /// Deliveries the pipeline acknowledged once it had handled them.
    pub acked: AtomicU64,
    /// Deliveries the pipeline dead-lettered (invalid events, set aside rather than retried).
    pub dead_lettered: AtomicU64,
}

/// The sending half of a [`MemorySource`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    tx: mpsc::Sender<Delivery>,
    seq: Arc<AtomicU64>,
    stats: Arc<MemoryStats>,
}

struct MemoryAck {
    stats: Arc<MemoryStats>,
    origin: String,
}

#[async_trait]
impl Acknowledge for MemoryAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.stats.acked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn dead_letter(self: Box<Self>, reason: &Error) -> Result<()> {
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(origin = %self.origin, %reason, "dead letter");
        Ok(())
    }
}

impl MemorySource {
    /// A source holding at most `capacity` unprocessed events, and its publisher.
    pub fn new(capacity: usize) -> (Self, MemoryPublisher) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(MemoryStats::default());
        (
            MemorySource {
                rx: Mutex::new(rx),
                stats: stats.clone(),
            },
            MemoryPublisher {
                tx,
                seq: Arc::new(AtomicU64::new(0)),
                stats,
            },
        )
    }

    /// The counters.
    pub fn stats(&self) -> &MemoryStats {
        &self.stats
    }
}

#[async_trait]
impl EventSource for MemorySource {
    async fn next(&self) -> Result<Option<Delivery>> {
        Ok(self.rx.lock().await.recv().await)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

impl MemoryPublisher {
    /// Sends one raw payload (any bytes; the pipeline validates). Waits while full.
    pub async fn send_raw(&self, payload: Bytes) -> Result<()> {
        self.send_raw_traced(payload, None).await
    }

    /// Like [`MemoryPublisher::send_raw`], with the producer's trace context.
    pub async fn send_raw_traced(&self, payload: Bytes, trace: Option<TraceContext>) -> Result<()> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let origin = format!("memory@{n}");
        let delivery = Delivery::new(
            payload,
            Some(Utc::now()),
            origin.clone(),
            Box::new(MemoryAck {
                stats: self.stats.clone(),
                origin,
            }),
        )
        .with_trace(trace);
        self.tx.send(delivery).await.map_err(|_| {
            Error::unavailable_because("event_source", "the in-memory source is closed")
        })
    }

    /// Acknowledged deliveries so far.
    pub fn acked(&self) -> u64 {
        self.stats.acked.load(Ordering::Relaxed)
    }

    /// Dead-lettered deliveries so far.
    pub fn dead_lettered(&self) -> u64 {
        self.stats.dead_lettered.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventSink for MemoryPublisher {
    async fn publish(&self, events: &[(Event, Bytes)]) -> Result<()> {
        self.publish_traced(events, None).await
    }

    async fn publish_traced(
        &self,
        events: &[(Event, Bytes)],
        trace: Option<&TraceContext>,
    ) -> Result<()> {
        for (_, raw) in events {
            self.send_raw_traced(raw.clone(), trace.cloned()).await?;
        }
        Ok(())
    }
}
