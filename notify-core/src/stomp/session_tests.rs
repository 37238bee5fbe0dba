//! `run_session` driven in memory: a channel of [`Inbound`] messages in, a channel of
//! [`Outbound`] messages out, and tokio's paused clock, so heart-beats, timeouts and token
//! expiry are checked to the millisecond without waiting for them.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::channel::mpsc;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::frame::{parse_all, Frame};
use super::{run_session, Handshake, Inbound, Outbound, USER_QUEUE};
use crate::auth::{sign_hs256, Authenticator};
use crate::model::{Audience, Notification, Push};
use crate::service::{NotifyService, ServiceConfig};
use crate::store::MemoryStore;
use crate::MemorySource;

const SECRET: &[u8] = b"session-tests";

fn service(config: ServiceConfig) -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(SECRET),
    )
    .config(config)
    .build()
}

/// One session under test, and the client's ends of its two channels.
struct Client {
    to_session: mpsc::UnboundedSender<Inbound>,
    from_session: mpsc::Receiver<Outbound>,
    session: JoinHandle<()>,
}

impl Client {
    /// Starts a session whose outgoing channel holds `outgoing` messages before a write
    /// blocks (a client that stops reading).
    fn start(service: &Arc<NotifyService>, outgoing: usize) -> Client {
        let (to_session, incoming) = mpsc::unbounded();
        let (sink, from_session) = mpsc::channel(outgoing);
        let session = tokio::spawn(run_session(
            service.clone(),
            Handshake::default(),
            incoming,
            sink,
        ));
        Client {
            to_session,
            from_session,
            session,
        }
    }

    fn send(&mut self, frame: Frame) {
        self.to_session
            .unbounded_send(Inbound::Text(frame.encode()))
            .expect("session is reading");
    }

    /// The next message from the session (the paused clock runs on until one comes).
    async fn next(&mut self) -> Outbound {
        tokio::time::timeout(Duration::from_secs(3600), self.from_session.next())
            .await
            .expect("a message within the hour")
            .expect("the session has not ended")
    }

    /// The next frame; heart-beats are returned as a frame with the command `"\n"`.
    async fn frame(&mut self) -> Frame {
        match self.next().await {
            Outbound::Text(t) if t == "\n" => Frame::new("\n"),
            Outbound::Text(t) => {
                let mut frames = parse_all(t.as_bytes()).expect("session frames parse");
                assert_eq!(frames.len(), 1, "one frame per message here: {t:?}");
                frames.remove(0)
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    async fn expect(&mut self, command: &str) -> Frame {
        let f = self.frame().await;
        assert_eq!(f.command, command, "{f:?}");
        f
    }

    /// The close that must come next, as (code, reason).
    async fn closed(&mut self) -> (u16, String) {
        match self.next().await {
            Outbound::Close { code, reason } => (code, reason),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    async fn connect(&mut self, user: &str, ttl_secs: i64, heart_beat: &str) -> Frame {
        self.send(
            Frame::new("CONNECT")
                .header("accept-version", "1.2")
                .header(
                    "Authorization",
                    format!("Bearer {}", sign_hs256(SECRET, user, &[], ttl_secs)),
                )
                .header("heart-beat", heart_beat),
        );
        self.expect("CONNECTED").await
    }

    fn subscribe(&mut self, since: Option<&str>) {
        let mut f = Frame::new("SUBSCRIBE")
            .header("id", "q")
            .header("destination", USER_QUEUE)
            .header("receipt", "sub");
        if let Some(since) = since {
            f = f.header("since", since);
        }
        self.send(f);
    }
}

fn notification(user: &str, event_id: &str, seq: i64) -> Notification {
    Notification::new(event_id, "t", Audience::User(user.into()), "t", "m", seq)
        .with_occurred_at(Utc::now())
}

#[tokio::test(start_paused = true)]
async fn heart_beats_go_out_and_a_silent_client_is_dropped() {
    let service = service(ServiceConfig {
        heartbeat: Duration::from_secs(1),
        ..ServiceConfig::default()
    });
    let mut c = Client::start(&service, 16);
    let connected = c.connect("alice", 3600, "2000,3000").await;
    // We offer 1 s both ways; the client asked for 3 s from us and sends every 2 s.
    assert_eq!(connected.get("heart-beat"), Some("1000,1000"));
    // So we send every 3 s and expect the client every 2 s; the session checks both on a
    // 2 s tick, so the first heart-beat goes out on the tick at 4 s.
    let start = Instant::now();
    assert_eq!(c.frame().await.command, "\n");
    let first = start.elapsed();
    assert_eq!(first, Duration::from_secs(4), "first heart-beat");
    // A ping counts as life; after it, nothing: the session keeps sending heart-beats and
    // drops the client on the first tick after more than 2 x 2 s of silence.
    c.to_session.unbounded_send(Inbound::Ping).unwrap();
    let ping = Instant::now();
    loop {
        match c.next().await {
            Outbound::Text(t) => assert_eq!(t, "\n"),
            Outbound::Close { code, .. } => {
                assert_eq!(code, 1001);
                break;
            }
        }
    }
    assert_eq!(
        ping.elapsed(),
        Duration::from_secs(6),
        "dropped after the ping"
    );
    c.session.await.unwrap();
    assert_eq!(service.hub().session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn connect_must_come_in_time() {
    let service = service(ServiceConfig {
        connect_timeout: Duration::from_secs(7),
        ..ServiceConfig::default()
    });
    let mut c = Client::start(&service, 16);
    // Heart-beats before CONNECT do not count as CONNECT.
    c.to_session
        .unbounded_send(Inbound::Text("\n".into()))
        .unwrap();
    let start = Instant::now();
    let error = c.expect("ERROR").await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(7),
        "ERROR at the timeout"
    );
    assert_eq!(error.get("message"), Some("CONNECT expected"));
    assert_eq!(c.closed().await.0, 1008);
    c.session.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_session_ends_when_the_token_expires() {
    let service = service(ServiceConfig::default());
    let mut c = Client::start(&service, 16);
    // No heart-beats, so the only thing that ends the session is the token.
    c.connect("alice", 30, "0,0").await;
    c.subscribe(None);
    c.expect("RECEIPT").await;
    let start = Instant::now();
    let error = c.expect("ERROR").await;
    let after = start.elapsed();
    assert_eq!(error.get("message"), Some("unauthorized: token expired"));
    assert!(
        after > Duration::from_secs(28) && after <= Duration::from_secs(31),
        "closed {after:?} after CONNECT"
    );
    assert_eq!(c.closed().await.0, 1008);
    c.session.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_live_and_later_sessions_with_a_reconnect_hint() {
    let service = service(ServiceConfig::default());
    let mut live = Client::start(&service, 16);
    live.connect("alice", 3600, "0,0").await;
    live.subscribe(None);
    live.expect("RECEIPT").await;
    service.shutdown();
    let error = live.expect("ERROR").await;
    assert_eq!(
        error.get("message"),
        Some("server shutting down; reconnect")
    );
    assert_eq!(live.closed().await.0, 1012);
    live.session.await.unwrap();
    // A session that connects during the shutdown is told at once.
    let mut late = Client::start(&service, 16);
    late.connect("bob", 3600, "0,0").await;
    let error = late.expect("ERROR").await;
    assert_eq!(
        error.get("message"),
        Some("server shutting down; reconnect")
    );
    assert_eq!(late.closed().await.0, 1012);
    late.session.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let service = service(ServiceConfig {
        session_queue: 4,
        ..ServiceConfig::default()
    });
    // Two messages fit in the outgoing channel (one per sender plus its capacity of one);
    // after that every write blocks until the client reads.
    let mut c = Client::start(&service, 1);
    c.connect("alice", 3600, "0,0").await;
    c.subscribe(None);
    c.expect("RECEIPT").await;
    for i in 0..20 {
        let n = notification(
            "alice",
            &format!("flood-{i}"),
            Utc::now().timestamp_micros(),
        );
        service.hub().deliver(&Push::new(n, Utc::now()));
        tokio::task::yield_now().await;
    }
    // Now read everything: some MESSAGEs, then the ERROR, then the close.
    let mut messages = 0;
    let error = loop {
        let f = c.frame().await;
        match f.command.as_str() {
            "MESSAGE" => messages += 1,
            "ERROR" => break f,
            other => panic!("unexpected {other}"),
        }
    };
    assert!(messages < 20, "{messages} messages before the ERROR");
    assert_eq!(error.get("message"), Some("slow consumer"));
    assert_eq!(c.closed().await.0, 1013);
    c.session.await.unwrap();
    assert_eq!(service.hub().session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_resume_does_not_repeat_what_it_replayed() {
    let service = service(ServiceConfig::default());
    let base = Utc::now().timestamp_micros();
    let before = notification("alice", "before", base);
    let missed = notification("alice", "missed", base + 1);
    service
        .store()
        .insert(&[before.clone(), missed.clone()])
        .await
        .unwrap();
    let mut c = Client::start(&service, 16);
    c.connect("alice", 3600, "0,0").await;
    c.subscribe(Some(&before.cursor().to_string()));
    let replayed = c.expect("MESSAGE").await;
    assert_eq!(replayed.get("message-id"), Some(missed.id.as_str()));
    c.expect("RECEIPT").await;
    // The live copy of the replayed notification arrives after the resume: skipped once.
    service
        .hub()
        .deliver(&Push::new(missed.clone(), Utc::now()));
    let live = notification("alice", "live", base + 2);
    service.hub().deliver(&Push::new(live.clone(), Utc::now()));
    let next = c.expect("MESSAGE").await;
    assert_eq!(next.get("message-id"), Some(live.id.as_str()));
    // Later copies are delivered again (the skip is once per replayed id).
    service
        .hub()
        .deliver(&Push::new(missed.clone(), Utc::now()));
    let again = c.expect("MESSAGE").await;
    assert_eq!(again.get("message-id"), Some(missed.id.as_str()));
    c.send(Frame::new("DISCONNECT").header("receipt", "bye"));
    c.expect("RECEIPT").await;
    assert_eq!(c.closed().await.0, 1000);
    c.session.await.unwrap();
}
