//! The STOMP session state machine: after CONNECT, subscriptions, pushes, heart-beats,
//! `SEND /app/read`, receipts and resumes, until the session closes.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
// tokio's clock rather than std's: the same instant in production, and paused time in the
// session's unit tests drives the heart-beat checks too.
use tokio::time::Instant;

use super::close::{error, fail_close, finish, limit, parse_frames, Close, WriteFail};
use super::connect::{connect_frame, first_frames};
use super::destination::{
    Destination, Subscription, BROADCAST_TOPIC, GROUP_TOPIC_PREFIX, USER_QUEUE,
};
use super::frame::{encode_message, push_message, Frame};
use super::transport::{Handshake, Inbound, Outbound};
use crate::auth::Principal;
use crate::hub::{session_queue, SessionReceiver, Signal};
use crate::inbox;
use crate::limits::ConnectionGuard;
use crate::metrics;
use crate::model::{Cursor, Push};
use crate::registration::{Registration, SessionSlots};
use crate::service::NotifyService;
use crate::store::Reader;

/// Most pushes written as one WebSocket message.
const BATCH_FRAMES: usize = 32;
/// Most notification JSON bytes joined into one WebSocket message. Writing several frames
/// at once saves a syscall per frame in bursts; the cap bounds the message (and so
/// tungstenite's write buffer, which is released after each write) to a few KiB.
const BATCH_BYTES: usize = 3 * 1024;
/// Longest a starting session waits for the user's muted types (a store outage must not
/// hold CONNECTED back; the cached entry, or nothing muted, stands meanwhile). A point read
/// answers in milliseconds; a resume after CONNECT may wait for the store once more.
const MUTES_WAIT: Duration = Duration::from_secs(1);
/// Most frames one WebSocket message may carry: each may cost a store read (a resume), so
/// one message must not queue hundreds of them.
pub const MAX_FRAMES_PER_MESSAGE: usize = 32;
/// Longest subscription `id`, in bytes: ids are echoed in every MESSAGE frame.
pub const MAX_SUBSCRIPTION_ID_BYTES: usize = 256;

struct Session<T> {
    service: Arc<NotifyService>,
    /// The client's messages in, ours out: one object, so an adapter need not split its
    /// WebSocket (a split costs a shared lock allocation per session).
    socket: T,
    /// Pushes, and the overflow and shutdown signals.
    rx: SessionReceiver,
    /// Shared with the hub's entry for this session.
    reader: Arc<Reader>,
    subs: Vec<Subscription>,
    /// Ids replayed by a resume; the live copies that follow are skipped once.
    resumed: Option<Box<Resumed>>,
    last_write: Instant,
    last_read: Instant,
}

/// The ids a resume replayed, and when: their live copies that follow are skipped once.
/// Boxed in an `Option`: only sessions that resumed in the last minute pay for it.
struct Resumed {
    ids: HashSet<String>,
    at: Instant,
}

/// Runs one STOMP session to its end: CONNECT (with auth), then subscriptions, pushes,
/// heart-beats, `SEND /app/read`, receipts, and ERROR-and-close on any violation.
///
/// `incoming` yields the client's messages; `outgoing` takes ours. The adapter only converts
/// between its WebSocket type and [`Inbound`]/[`Outbound`]. An adapter whose WebSocket is
/// one object (a stream of messages and a sink) should prefer [`run_socket`], which needs no
/// split.
pub async fn run_session<I, O>(
    service: Arc<NotifyService>,
    handshake: Handshake,
    incoming: I,
    outgoing: O,
) where
    I: Stream<Item = Inbound> + Unpin + Send,
    O: Sink<Outbound> + Unpin + Send,
{
    run_socket(service, handshake, Joined { incoming, outgoing }).await;
}

/// [`run_session`] over one `socket` that yields the client's messages and takes ours.
pub fn run_socket<T>(
    service: Arc<NotifyService>,
    handshake: Handshake,
    socket: T,
) -> impl Future<Output = ()> + Send
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send,
{
    run_socket_from(service, handshake, std::future::ready(Some(socket)))
}

/// [`run_socket`] over a socket still to be made (`None`: it could not be, and the session
/// ends): an upgrade to finish, a WebSocket to wrap around the connection.
///
/// Why a plain function returning a future, with the opening boxed: a task's future is as
/// large as its largest state, plus every argument for its whole life, and an idle
/// session's task lives for hours. The opening (the socket's making, CONNECT, limits, the
/// muted-types lookup) and the closing handshake run in boxed futures of their own, freed
/// when they end, and the future that stays holds the session and its wait only: about
/// 1.6 KB less per session than one `async fn` over all of it.
pub(crate) fn run_socket_from<F, T>(
    service: Arc<NotifyService>,
    handshake: Handshake,
    socket: F,
) -> impl Future<Output = ()> + Send
where
    F: Future<Output = Option<T>> + Send,
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send,
{
    let opening = Box::pin(async move { open(service, handshake, socket.await?).await });
    async move {
        let Some(mut opened) = opening.await else {
            return;
        };
        let close = opened.run().await;
        let Opened {
            mut session,
            registration,
            ..
        } = opened;
        let id = registration.id();
        drop(registration);
        tracing::debug!(session = id, user = %session.reader.user, "STOMP session closed");
        // A slow consumer's ERROR waits behind a full socket: give it the whole write
        // timeout.
        let timeout = session.service.config.write_timeout;
        Box::pin(finish(&mut session.socket, close, timeout)).await;
    }
}

/// A session past CONNECT, registered, its CONNECTED frame sent.
struct Opened<T> {
    session: Session<T>,
    /// Its place in the hub; dropped before the closing handshake.
    registration: Registration,
    expires_at: chrono::DateTime<chrono::Utc>,
    send_interval: Option<Duration>,
    recv_interval: Option<Duration>,
}

impl<T> Opened<T>
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send,
{
    async fn run(&mut self) -> Close {
        self.session
            .run(self.expires_at, self.send_interval, self.recv_interval)
            .await
    }
}

/// CONNECT to CONNECTED and the frames that came with CONNECT: `None` when the session
/// ended there (closed, with an ERROR when the client deserved one).
async fn open<T>(
    service: Arc<NotifyService>,
    mut handshake: Handshake,
    mut socket: T,
) -> Option<Opened<T>>
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send,
{
    let connect_timeout = service.config.connect_timeout;
    let mut frames = match tokio::time::timeout(connect_timeout, first_frames(&mut socket)).await {
        Ok(Ok(Some(frames))) => frames.into_iter(),
        Ok(Ok(None)) => {
            metrics::session_closed("client");
            return None;
        }
        Ok(Err(close)) => {
            finish(&mut socket, close, Duration::from_secs(2)).await;
            return None;
        }
        Err(_) => {
            let close = error(
                "CONNECT expected",
                "no CONNECT frame within the time limit",
                None,
            );
            finish(&mut socket, close, Duration::from_secs(2)).await;
            return None;
        }
    };
    // The message holding CONNECT may carry more frames: they are handled, in order, once
    // the session is up (a SUBSCRIBE sent with its CONNECT is honoured).
    let connect = frames
        .next()
        .expect("first_frames returns at least one frame");
    let rest: Vec<Frame> = frames.collect();
    let connection = handshake.connection.take();
    let started = match start(&service, &handshake, connection, &connect, rest.len()) {
        Ok(ok) => ok,
        Err(close) => {
            finish(&mut socket, close, Duration::from_secs(2)).await;
            return None;
        }
    };
    let Started {
        principal,
        connected: frame_out,
        send_interval,
        recv_interval,
        slots,
    } = started;
    let reader = Arc::new(principal.reader());
    let expires_at = principal.expires_at;
    // Muted types are loaded before the session can receive its first push; escalation
    // e-mails go to the address of the user's last connection, so users who can be
    // escalated to have their contact remembered (a write only when it changed).
    // Neither waits for a store that is down: sessions start during a store outage.
    service.mutes().muted_within(&reader.user, MUTES_WAIT).await;
    if service.mutes().escalates(&reader.user) {
        crate::prefs::rest::remember_in_background(&service, &principal);
    }
    drop((connect, handshake, principal));
    let (sender, rx) = session_queue(service.config.session_queue);
    // Unregisters (and frees the limit slots) on every exit path, a panic included.
    let registration = Registration::new(&service.hub, &reader, sender, slots);
    tracing::debug!(session = registration.id(), user = %reader.user, "STOMP session connected");
    let now = Instant::now();
    let mut session = Session {
        service,
        socket,
        rx,
        reader,
        subs: Vec::new(),
        resumed: None,
        last_write: now,
        last_read: now,
    };
    let connected = frame_out.encode();
    drop(frame_out);
    let close = match session.write(Outbound::Text(connected)).await {
        Ok(()) => session.handle_all(rest).await,
        Err(_) => Some(Close::Done {
            reason: "client",
            code: 1000,
        }),
    };
    if let Some(close) = close {
        drop(registration);
        let timeout = session.service.config.write_timeout;
        finish(&mut session.socket, close, timeout).await;
        return None;
    }
    Some(Opened {
        session,
        registration,
        expires_at,
        send_interval,
        recv_interval,
    })
}

/// A session that passed CONNECT and its limits.
struct Started {
    principal: Principal,
    connected: Frame,
    send_interval: Option<Duration>,
    recv_interval: Option<Duration>,
    slots: SessionSlots,
}

/// CONNECT and the limits a new session must pass: the frames in its message, the
/// instance's connections (unless the upgrade already took the session's slot), the user's
/// request rate (a CONNECT counts as a request) and the user's sessions.
fn start(
    service: &NotifyService,
    handshake: &Handshake,
    connection: Option<ConnectionGuard>,
    connect: &Frame,
    frames_after_connect: usize,
) -> Result<Started, Close> {
    if frames_after_connect >= MAX_FRAMES_PER_MESSAGE {
        return Err(too_many_frames());
    }
    let connection = match connection {
        Some(slot) => slot,
        None => service
            .limits
            .connection()
            .map_err(|r| limit(r, Some(connect)))?,
    };
    let (principal, connected, send_interval, recv_interval) =
        connect_frame(service, handshake, connect)?;
    service
        .limits
        .user_request(&principal.user)
        .map_err(|r| limit(r, Some(connect)))?;
    let user_session = service
        .limits
        .user_session(&principal.user)
        .map_err(|r| limit(r, Some(connect)))?;
    Ok(Started {
        principal,
        connected,
        send_interval,
        recv_interval,
        slots: SessionSlots {
            connection: Some(connection),
            user_session: Some(user_session),
        },
    })
}

fn too_many_frames() -> Close {
    error(
        "too many frames in one message",
        format!("at most {MAX_FRAMES_PER_MESSAGE} frames per WebSocket message"),
        None,
    )
}

impl<T> Session<T>
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send,
{
    async fn write(&mut self, msg: Outbound) -> Result<(), WriteFail> {
        let timeout = self.service.config.write_timeout;
        let result = tokio::select! {
            // The write first: it usually completes at once, and then the timer is never
            // polled, so never registered with (and removed from) the timer wheel.
            biased;
            r = self.socket.send(msg) => r.map_err(|_| WriteFail::Closed),
            _ = self.rx.overflow() => Err(WriteFail::Slow),
            _ = tokio::time::sleep(timeout) => Err(WriteFail::Slow),
        };
        self.last_write = Instant::now();
        result
    }

    async fn run(
        &mut self,
        expires_at: chrono::DateTime<chrono::Utc>,
        send_interval: Option<Duration>,
        recv_interval: Option<Duration>,
    ) -> Close {
        // Heart-beat checks only when heart-beats were agreed: an interval is one more
        // allocation (its boxed timer) per session, for nothing on a `heart-beat:0,0` one.
        let mut ticker = send_interval
            .into_iter()
            .chain(recv_interval)
            .min()
            .map(|every| tokio::time::interval_at(Instant::now() + every, every));
        let expires_in = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let expiry = tokio::time::sleep(expires_in);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                biased;
                signal = self.rx.signal() => match signal {
                    Signal::Overflowed => return Close::SlowConsumer,
                    Signal::ShuttingDown => return Close::Error {
                        message: "server shutting down; reconnect".into(),
                        detail: "the server is restarting; reconnect and resume with `since`".into(),
                        receipt: None,
                        code: 1012,
                        reason: "shutdown",
                    },
                },
                msg = self.socket.next() => {
                    self.last_read = Instant::now();
                    let bytes: Vec<u8> = match msg {
                        None | Some(Inbound::Close) => return Close::Done { reason: "client", code: 1000 },
                        Some(Inbound::Ping) => continue,
                        Some(Inbound::Text(t)) => t.into_bytes(),
                        Some(Inbound::Binary(b)) => b.to_vec(),
                    };
                    let frames = match parse_frames(&bytes) {
                        Ok(f) => f,
                        Err(close) => return close,
                    };
                    // Boxed, as are the other awaits below: see `run_socket`.
                    if let Some(close) = Box::pin(self.handle_all(frames)).await {
                        return close;
                    }
                }
                push = self.rx.recv() => {
                    let Some(push) = push else {
                        return Close::Done { reason: "error", code: 1011 };
                    };
                    // Pushes already waiting go out in the same WebSocket message (one
                    // write), at most BATCH_FRAMES of them and BATCH_BYTES of JSON: a push
                    // that would pass the cap waits for the next message, so only a single
                    // push larger than the cap makes a larger message.
                    let mut bytes = push.json.len();
                    let mut batch = vec![push];
                    while batch.len() < BATCH_FRAMES {
                        match self.rx.try_recv_if(|p| bytes + p.json.len() <= BATCH_BYTES) {
                            Some(p) => {
                                bytes += p.json.len();
                                batch.push(p)
                            }
                            None => break,
                        }
                    }
                    if let Err(fail) = Box::pin(self.deliver(&batch)).await {
                        return fail_close(fail);
                    }
                }
                _ = async {
                    if let Some(ticker) = ticker.as_mut() {
                        ticker.tick().await;
                    }
                }, if ticker.is_some() => {
                    if let Some(recv) = recv_interval {
                        if self.last_read.elapsed() > recv * 2 {
                            return Close::Done { reason: "heartbeat", code: 1001 };
                        }
                    }
                    if let Some(send) = send_interval {
                        if self.last_write.elapsed() + Duration::from_millis(500) >= send {
                            if let Err(fail) = Box::pin(self.write(Outbound::Text("\n".into()))).await {
                                return fail_close(fail);
                            }
                        }
                    }
                }
                _ = &mut expiry => {
                    return Close::Error {
                        message: "unauthorized: token expired".into(),
                        detail: "the access token expired; reconnect with a fresh token and resume with `since`".into(),
                        receipt: None,
                        code: 1008,
                        reason: "expired",
                    };
                }
            }
        }
    }

    async fn receipt(&mut self, frame: &Frame) -> Option<Close> {
        let id = frame.get("receipt")?.to_string();
        self.write(Outbound::Text(
            Frame::new("RECEIPT").header("receipt-id", id).encode(),
        ))
        .await
        .err()
        .map(fail_close)
    }

    /// Handles the frames of one message in order, at most [`MAX_FRAMES_PER_MESSAGE`] of
    /// them (each may cost a store read); `Some` ends the session.
    async fn handle_all(&mut self, frames: Vec<Frame>) -> Option<Close> {
        if frames.len() > MAX_FRAMES_PER_MESSAGE {
            return Some(too_many_frames());
        }
        for frame in frames {
            if let Some(close) = self.handle(frame).await {
                return Some(close);
            }
        }
        None
    }

    /// Handles one client frame; `Some` ends the session.
    async fn handle(&mut self, frame: Frame) -> Option<Close> {
        match frame.command.as_str() {
            "SUBSCRIBE" => self.subscribe(&frame).await,
            "UNSUBSCRIBE" => {
                let Some(id) = frame.get("id") else {
                    return Some(error(
                        "missing header: id",
                        "UNSUBSCRIBE needs an id header",
                        Some(&frame),
                    ));
                };
                self.subs.retain(|s| &*s.id != id);
                self.receipt(&frame).await
            }
            "SEND" => {
                let destination = frame.get("destination").unwrap_or("");
                if destination != "/app/read" {
                    return Some(error(
                        format!("SEND not allowed: {destination}"),
                        "clients may only SEND to /app/read",
                        Some(&frame),
                    ));
                }
                if let Err(refusal) = self.service.limits.user_request(&self.reader.user) {
                    return Some(limit(refusal, Some(&frame)));
                }
                match inbox::apply_read_request(&self.service, &self.reader, &frame.body).await {
                    Ok(_) => self.receipt(&frame).await,
                    Err(e) => Some(error(
                        format!("/app/read: {e}"),
                        e.to_string(),
                        Some(&frame),
                    )),
                }
            }
            "ACK" | "NACK" => self.receipt(&frame).await,
            "DISCONNECT" => {
                if let Some(close) = self.receipt(&frame).await {
                    return Some(close);
                }
                Some(Close::Done {
                    reason: "client",
                    code: 1000,
                })
            }
            "BEGIN" | "COMMIT" | "ABORT" => Some(error(
                "transactions are not supported",
                format!("{} is not supported", frame.command),
                Some(&frame),
            )),
            "CONNECT" | "STOMP" => Some(error(
                "already connected",
                "CONNECT was sent twice",
                Some(&frame),
            )),
            other => Some(error(
                format!("unknown command: {other}"),
                "not a STOMP client command",
                Some(&frame),
            )),
        }
    }

    async fn subscribe(&mut self, frame: &Frame) -> Option<Close> {
        let (Some(id), Some(destination)) = (frame.get("id"), frame.get("destination")) else {
            return Some(error(
                "missing header: id or destination",
                "SUBSCRIBE needs id and destination headers",
                Some(frame),
            ));
        };
        if id.len() > MAX_SUBSCRIPTION_ID_BYTES {
            return Some(error(
                "subscription id too long",
                format!("subscription ids are limited to {MAX_SUBSCRIPTION_ID_BYTES} bytes"),
                Some(frame),
            ));
        }
        let kind = if destination == USER_QUEUE {
            Destination::UserQueue
        } else if destination == BROADCAST_TOPIC {
            Destination::Broadcast
        } else if let Some(group) = destination.strip_prefix(GROUP_TOPIC_PREFIX) {
            if !self.reader.groups.iter().any(|g| g == group) {
                return Some(error(
                    format!("forbidden destination: {destination}"),
                    format!("user {} is not a member of group {group}", self.reader.user),
                    Some(frame),
                ));
            }
            Destination::Group(destination.into())
        } else {
            return Some(error(
                format!("unknown destination: {destination}"),
                format!(
                    "subscribe to {USER_QUEUE}, {BROADCAST_TOPIC} or {GROUP_TOPIC_PREFIX}<group>"
                ),
                Some(frame),
            ));
        };
        if self.subs.iter().any(|s| &*s.id == id) {
            return Some(error(
                format!("duplicate subscription id: {id}"),
                "subscription ids must be unique within a session",
                Some(frame),
            ));
        }
        if self.subs.len() >= self.service.config.max_subscriptions {
            return Some(error(
                "too many subscriptions",
                format!(
                    "at most {} subscriptions per session",
                    self.service.config.max_subscriptions
                ),
                Some(frame),
            ));
        }
        let sub = Subscription {
            id: id.into(),
            kind,
        };
        if let (Destination::UserQueue, Some(since)) = (&sub.kind, frame.get("since")) {
            let since = match Cursor::parse_or_time(since, "since") {
                Ok(c) => c,
                Err(e) => {
                    return Some(error(
                        e.to_string(),
                        "the since header must be a cursor from a notification",
                        Some(frame),
                    ))
                }
            };
            // A resume reads up to NOTIFY_RESUME_MAX stored notifications: it costs more of
            // the user's bucket than a request.
            if let Err(refusal) = self.service.limits.user_resume(&self.reader.user) {
                return Some(limit(refusal, Some(frame)));
            }
            let backlog =
                match inbox::resume_backlog_bounded(&self.service, &self.reader, &since).await {
                    Ok(b) => b,
                    Err(e) => {
                        return Some(Close::Error {
                            message: "resume unavailable; retry".into(),
                            detail: e.to_string(),
                            receipt: frame.get("receipt").map(str::to_string),
                            code: 1013,
                            reason: "error",
                        })
                    }
                };
            self.resumed = Some(Box::new(Resumed {
                ids: HashSet::new(),
                at: Instant::now(),
            }));
            let last = backlog.items.len().saturating_sub(1);
            for (i, item) in backlog.items.into_iter().enumerate() {
                let mut text = encode_message(sub.kind.as_str(), &sub.id, &item.id, &item.json);
                if backlog.truncated && i == last {
                    // More was missed than one resume sends: the client pages the rest over
                    // REST, from this notification's cursor.
                    text = text.replacen("MESSAGE\n", "MESSAGE\nbacklog-truncated:true\n", 1);
                }
                if let Err(fail) = self.write(Outbound::Text(text)).await {
                    return Some(fail_close(fail));
                }
                metrics::pushed(None);
                if let Some(resumed) = &mut self.resumed {
                    resumed.ids.insert(item.id);
                }
            }
        }
        self.subs.reserve_exact(1);
        self.subs.push(sub);
        self.receipt(frame).await
    }

    /// Writes the frames of `pushes` for every matching subscription as one WebSocket
    /// message (one write), skipping live copies of notifications a resume just replayed.
    async fn deliver(&mut self, pushes: &[Arc<Push>]) -> Result<(), WriteFail> {
        if self
            .resumed
            .as_ref()
            .is_some_and(|r| r.ids.is_empty() || r.at.elapsed() > Duration::from_secs(60))
        {
            self.resumed = None;
        }
        let mut text = String::new();
        let mut frames: Vec<&Arc<Push>> = Vec::new();
        for push in pushes {
            let n = &push.notification;
            let skip_user_queue = self.resumed.as_mut().is_some_and(|r| r.ids.remove(&n.id));
            for sub in &self.subs {
                if !sub.kind.matches(&n.audience)
                    || (skip_user_queue && sub.kind == Destination::UserQueue)
                {
                    continue;
                }
                push_message(&mut text, sub.kind.as_str(), &sub.id, push.stomp_tail());
                frames.push(push);
            }
        }
        if frames.is_empty() {
            return Ok(());
        }
        self.write(Outbound::Text(text)).await?;
        let now = chrono::Utc::now();
        for push in frames {
            metrics::pushed((now - push.event_time).to_std().ok());
        }
        Ok(())
    }
}

/// A separate stream and sink as one socket, for [`run_session`].
struct Joined<I, O> {
    incoming: I,
    outgoing: O,
}

impl<I: Stream + Unpin, O: Unpin> Stream for Joined<I, O> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Pin::new(&mut self.incoming).poll_next(cx)
    }
}

impl<I: Unpin, O: Sink<Outbound> + Unpin> Sink<Outbound> for Joined<I, O> {
    type Error = O::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        Pin::new(&mut self.outgoing).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), O::Error> {
        Pin::new(&mut self.outgoing).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        Pin::new(&mut self.outgoing).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        Pin::new(&mut self.outgoing).poll_close(cx)
    }
}
