//! Server-Sent Events fallback (`GET /api/stream`): the same routing and resume as STOMP,
//! written as `text/event-stream` chunks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Principal;
use crate::hub::{session_queue, Signal};
use crate::inbox;
use crate::metrics;
use crate::model::Cursor;
use crate::registration::{Registration, SessionSlots};
use crate::service::NotifyService;
use crate::store::Reader;
use crate::trace::TraceContext;

/// One SSE event for a notification.
pub fn notification_event(cursor: &str, json: &[u8]) -> Bytes {
    traced_notification_event(cursor, None, json)
}

/// Like [`notification_event`], with a `traceparent` field (and `tracestate` when there is
/// one) when `trace` is given. `EventSource` ignores fields it does not know (WHATWG HTML,
/// "interpreting an event stream"), so browsers are unaffected; SSE clients that parse
/// the stream themselves read it like a header.
pub fn traced_notification_event(cursor: &str, trace: Option<&TraceContext>, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + cursor.len() + 40);
    out.extend_from_slice(b"event: notification\nid: ");
    out.extend_from_slice(cursor.as_bytes());
    if let Some(trace) = trace {
        // Validated: hex digits and dashes, printable ASCII without line breaks.
        out.extend_from_slice(b"\ntraceparent: ");
        out.extend_from_slice(trace.traceparent().as_bytes());
        if let Some(state) = trace.tracestate() {
            out.extend_from_slice(b"\ntracestate: ");
            out.extend_from_slice(state.as_bytes());
        }
    }
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The event stream for `principal`: backlog after `since` (if any, at most
/// `NOTIFY_RESUME_MAX`), then live notifications, with a comment line every keep-alive
/// interval. Ends at shutdown, when the client falls behind (it reconnects with
/// `Last-Event-ID` and loses nothing), and with `event: expired` when the token expires.
/// `slots` (connection and per-user session limits) are held until the stream ends.
pub fn event_stream(
    service: Arc<NotifyService>,
    principal: Principal,
    since: Option<Cursor>,
    slots: SessionSlots,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let reader = Arc::new(principal.reader());
        let (sender, queue) = session_queue(service.config().session_queue);
        // Unregisters on every exit, a panic included.
        let _registration = Registration::new(service.hub(), &reader, sender, slots);
        let expires_at = principal.expires_at;
        let reason = pump(&service, &reader, since, expires_at, &tx, &queue).await;
        metrics::session_closed(reason);
    });
    ReceiverStream::new(rx)
}

/// The SSE event that ends a stream whose token expired.
pub const EXPIRED_EVENT: &[u8] =
    b"event: expired\ndata: {\"reason\":\"token expired\",\"reconnect\":true}\n\n";

/// The SSE event sent after a backlog cut at `NOTIFY_RESUME_MAX`: the client pages the
/// rest over REST (`GET /api/notifications?since=<cursor>`), from the last event's id.
pub fn truncated_event(cursor: &str) -> Bytes {
    Bytes::from(format!(
        "event: backlog-truncated\ndata: {{\"backlog-truncated\":true,\"next_cursor\":\"{cursor}\"}}\n\n"
    ))
}

async fn pump(
    service: &Arc<NotifyService>,
    reader: &Reader,
    since: Option<Cursor>,
    expires_at: chrono::DateTime<chrono::Utc>,
    tx: &mpsc::Sender<Bytes>,
    queue: &crate::hub::SessionReceiver,
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
        match inbox::resume_backlog_bounded(service, reader, &since).await {
            Ok(backlog) => {
                let last = backlog.items.last().map(|i| i.cursor.clone());
                for item in backlog.items {
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
                if let (true, Some(cursor)) = (backlog.truncated, last) {
                    if tx.send(truncated_event(&cursor)).await.is_err() {
                        return "client";
                    }
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
    let expires_in = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let keepalive = service.config().sse_keepalive;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    loop {
        tokio::select! {
            biased;
            signal = queue.signal() => match signal {
                Signal::Overflowed => return "slow_consumer",
                Signal::ShuttingDown => {
                    let _ = tx.send(Bytes::from_static(b"event: shutdown\ndata: {\"reconnect\":true}\n\n")).await;
                    return "shutdown";
                }
            },
            _ = tx.closed() => return "client",
            push = queue.recv() => {
                let Some(push) = push else { return "error" };
                if resumed.remove(&push.notification.id) {
                    continue;
                }
                let event = traced_notification_event(
                    &push.notification.cursor().to_string(),
                    push.trace.as_ref(),
                    &push.json,
                );
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
            _ = &mut expiry => {
                let _ = tx.send(Bytes::from_static(EXPIRED_EVENT)).await;
                return "expired";
            }
        }
    }
}
