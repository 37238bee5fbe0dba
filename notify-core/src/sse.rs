//! Server-Sent Events fallback (`GET /api/stream`): the same routing and resume as STOMP,
//! written as `text/event-stream` chunks.

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::hub::session_queue;
use crate::inbox;
use crate::metrics;
use crate::model::Cursor;
use crate::service::NotifyService;
use crate::store::Reader;

/// One SSE event for a notification.
pub fn notification_event(cursor: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + cursor.len() + 40);
    out.extend_from_slice(b"event: notification\nid: ");
    out.extend_from_slice(cursor.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The event stream for `reader`: backlog after `since` (if any), then live notifications,
/// with a comment line every keep-alive interval. Ends at shutdown or when the client falls
/// behind (it reconnects with `Last-Event-ID` and loses nothing).
pub fn event_stream(
    service: Arc<NotifyService>,
    reader: Reader,
    since: Option<Cursor>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let (sender, mut queue) = session_queue(service.config().session_queue);
        let id = service.hub().register(&reader, sender);
        metrics::gauge_sessions(service.hub().session_count());
        let reason = pump(&service, &reader, since, &tx, &mut queue).await;
        service.hub().unregister(id);
        metrics::gauge_sessions(service.hub().session_count());
        metrics::session_closed(reason);
    });
    ReceiverStream::new(rx)
}

async fn pump(
    service: &Arc<NotifyService>,
    reader: &Reader,
    since: Option<Cursor>,
    tx: &mpsc::Sender<Bytes>,
    queue: &mut crate::hub::SessionReceiver,
) -> &'static str {
    if tx
        .send(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
        .await
        .is_err()
    {
        return "client";
    }
    let mut resumed = std::collections::HashSet::new();
    if let Some(since) = since {
        match inbox::resume_backlog(service, reader, &since).await {
            Ok(items) => {
                for item in items {
                    if tx
                        .send(notification_event(&item.cursor, &item.json))
                        .await
                        .is_err()
                    {
                        return "client";
                    }
                    metrics::pushed(None);
                    resumed.insert(item.id);
                }
            }
            Err(e) => {
                let msg = format!(
                    "event: error\ndata: {{\"error\":\"resume unavailable: {}\"}}\n\n",
                    e.to_string().replace('"', "'")
                );
                let _ = tx.send(Bytes::from(msg)).await;
                return "error";
            }
        }
    }
    let mut shutdown = service.shutdown_signal();
    let keepalive = service.config().sse_keepalive;
    let overflow = queue.overflow_signal();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                let _ = tx.send(Bytes::from_static(b"event: shutdown\ndata: {\"reconnect\":true}\n\n")).await;
                return "shutdown";
            }
            _ = overflow.wait() => return "slow_consumer",
            _ = tx.closed() => return "client",
            push = queue.recv() => {
                let Some(push) = push else { return "error" };
                if resumed.remove(&push.notification.id) {
                    continue;
                }
                let event = notification_event(&push.notification.cursor().to_string(), &push.json);
                if tx.send(event).await.is_err() {
                    return "client";
                }
                metrics::pushed((chrono::Utc::now() - push.event_time).to_std().ok());
            }
            _ = tick.tick() => {
                if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return "client";
                }
            }
        }
    }
}
