//! STOMP session hardening (issue 12, items 1–4 and 7), driven in memory with paused time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use notify_core::auth::{sign_hs256, Authenticator};
use notify_core::limits::LimitsConfig;
use notify_core::model::{notification_id, Audience, Notification};
use notify_core::stomp::{self, Handshake, Inbound, Outbound};
use notify_core::{MemorySource, MemoryStore, NotificationStore, NotifyService, ServiceConfig};

const SECRET: &[u8] = b"stomp-hardening-secret-of-32-bytes+";

fn service_with(config: ServiceConfig, store: Arc<MemoryStore>) -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    NotifyService::builder(store, Arc::new(publisher), Authenticator::hs256(SECRET))
        .config(config)
        .build()
}

fn service() -> Arc<NotifyService> {
    service_with(ServiceConfig::default(), Arc::new(MemoryStore::new()))
}

fn connect(user: &str, extra: &str) -> String {
    let token = sign_hs256(SECRET, user, &[], 3600);
    format!("CONNECT\naccept-version:1.2\n{extra}Authorization:Bearer {token}\n\n\0")
}

/// The text frames the server wrote, and whether it closed.
struct Seen {
    texts: Vec<String>,
    closed: bool,
}

impl Seen {
    fn error(&self) -> Option<&str> {
        self.texts
            .iter()
            .find(|t| t.starts_with("ERROR"))
            .map(String::as_str)
    }
    fn has(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.contains(needle))
    }
}

/// Runs a session over `messages`; with `hold`, the input stays open afterwards (the
/// session lives on) until `release` fires.
async fn session(
    service: &Arc<NotifyService>,
    messages: Vec<String>,
    hold: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Seen {
    let (tx, rx) = futures::channel::mpsc::unbounded::<Outbound>();
    let input = futures::stream::iter(messages.into_iter().map(Inbound::Text));
    let incoming: std::pin::Pin<Box<dyn futures::Stream<Item = Inbound> + Send>> = match hold {
        Some(release) => Box::pin(input.chain(futures::stream::once(async move {
            let _ = release.await;
            Inbound::Close
        }))),
        None => Box::pin(input),
    };
    let sink = futures::SinkExt::sink_map_err(tx, |_| ());
    tokio::time::timeout(
        Duration::from_secs(3600),
        stomp::run_session(
            service.clone(),
            Handshake::default(),
            incoming,
            Box::pin(sink),
        ),
    )
    .await
    .expect("the session ends");
    let out: Vec<Outbound> = rx.collect().await;
    Seen {
        closed: out.iter().any(|o| matches!(o, Outbound::Close { .. })),
        texts: out
            .into_iter()
            .filter_map(|o| match o {
                Outbound::Text(t) => Some(t),
                Outbound::Close { .. } => None,
            })
            .collect(),
    }
}

#[tokio::test(start_paused = true)]
async fn frames_after_connect_in_the_same_message_are_handled_in_order() {
    let service = service();
    let message = format!(
        "{}SUBSCRIBE\nid:s1\ndestination:/user/queue/notifications\nreceipt:r1\n\n\0SUBSCRIBE\nid:s2\ndestination:/topic/notifications\nreceipt:r2\n\n\0",
        connect("alice", "")
    );
    let seen = session(&service, vec![message], None).await;
    assert!(seen.error().is_none(), "{:?}", seen.texts);
    let connected = seen.texts.iter().position(|t| t.starts_with("CONNECTED"));
    let r1 = seen.texts.iter().position(|t| t.contains("receipt-id:r1"));
    let r2 = seen.texts.iter().position(|t| t.contains("receipt-id:r2"));
    assert!(
        connected < r1 && r1 < r2 && connected.is_some(),
        "{:?}",
        seen.texts
    );
}

#[tokio::test(start_paused = true)]
async fn subscription_ids_over_256_bytes_are_refused() {
    let service = service();
    let ok = format!(
        "SUBSCRIBE\nid:{}\ndestination:/topic/notifications\nreceipt:ok\n\n\0",
        "a".repeat(256)
    );
    let long = format!(
        "SUBSCRIBE\nid:{}\ndestination:/topic/notifications\nreceipt:long\n\n\0",
        "b".repeat(257)
    );
    let seen = session(&service, vec![connect("alice", ""), ok, long], None).await;
    assert!(seen.has("receipt-id:ok"));
    let error = seen.error().expect("an ERROR");
    assert!(error.contains("subscription id too long"), "{error}");
    assert!(error.contains("receipt-id:long"), "{error}");
    assert!(seen.closed);
    assert_eq!(service.hub().session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn one_message_may_carry_at_most_32_frames() {
    let service = service();
    let frames = |n: usize| -> String {
        (0..n)
            .map(|i| format!("ACK\nid:{i}\nreceipt:a{i}\n\n\0"))
            .collect()
    };
    let seen = session(&service, vec![connect("alice", ""), frames(32)], None).await;
    assert!(seen.error().is_none(), "32 frames are fine");
    assert!(seen.has("receipt-id:a31"));
    let seen = session(&service, vec![connect("alice", ""), frames(33)], None).await;
    let error = seen.error().expect("an ERROR");
    assert!(error.contains("too many frames"), "{error}");
    assert!(!seen.has("receipt-id:a0"), "none of the 33 is handled");
    // Also when they ride along with CONNECT.
    let seen = session(
        &service,
        vec![format!("{}{}", connect("alice", ""), frames(32))],
        None,
    )
    .await;
    assert!(seen.error().unwrap().contains("too many frames"));
}

#[tokio::test(start_paused = true)]
async fn huge_heart_beats_do_not_overflow_timers() {
    let service = service();
    for hb in [
        "18446744073709551615,18446744073709551615",
        "18446744073709551615,0",
        "0,18446744073709551615",
    ] {
        let seen = session(
            &service,
            vec![connect("alice", &format!("heart-beat:{hb}\n")), "\n".into()],
            None,
        )
        .await;
        assert!(seen.has("CONNECTED"), "{hb}: {:?}", seen.texts);
    }
}

#[tokio::test(start_paused = true)]
async fn unauthenticated_sockets_get_a_small_budget_before_connect() {
    let service = service();
    // 17 heart-beats without a CONNECT.
    let seen = session(&service, vec!["\n".to_string(); 17], None).await;
    assert!(seen.error().unwrap().contains("CONNECT expected"));
    // 65 KiB of heart-beats in a few messages.
    let seen = session(&service, vec!["\n".repeat(40 * 1024); 2], None).await;
    assert!(seen.error().unwrap().contains("CONNECT expected"));
}

fn stored(user: &str, n: usize) -> Vec<Notification> {
    (0..n)
        .map(|i| {
            let audience = Audience::User(user.to_string());
            let event_id = format!("ev-{i}");
            let value = serde_json::json!({
                "id": notification_id(&event_id, &audience),
                "event_id": event_id,
                "type": "t.x",
                "audience": {"kind": "user", "id": user},
                "title": "t",
                "message": "m",
                "priority": "normal",
                "cursor": format!("{:x}-a", 1_000_000 + i),
            });
            Notification::from_json(&value).expect("a stored notification")
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_resume_sends_at_most_resume_max_and_flags_the_last_frame() {
    let store = Arc::new(MemoryStore::new());
    store.insert(&stored("alice", 7)).await.unwrap();
    let service = service_with(
        ServiceConfig {
            resume_max: 5,
            ..ServiceConfig::default()
        },
        store,
    );
    let sub = "SUBSCRIBE\nid:s\ndestination:/user/queue/notifications\nsince:0-\nreceipt:r\n\n\0";
    let seen = session(&service, vec![connect("alice", ""), sub.into()], None).await;
    let messages: Vec<&String> = seen
        .texts
        .iter()
        .filter(|t| t.starts_with("MESSAGE"))
        .collect();
    assert_eq!(messages.len(), 5, "{:?}", seen.texts);
    assert!(messages[4].contains("backlog-truncated:true"));
    assert!(messages[..4]
        .iter()
        .all(|m| !m.contains("backlog-truncated")));
    assert!(seen.has("receipt-id:r"));

    // Not flagged when everything fits.
    let store = Arc::new(MemoryStore::new());
    store.insert(&stored("alice", 3)).await.unwrap();
    let service = service_with(ServiceConfig::default(), store);
    let seen = session(&service, vec![connect("alice", ""), sub.into()], None).await;
    assert_eq!(
        seen.texts
            .iter()
            .filter(|t| t.starts_with("MESSAGE"))
            .count(),
        3
    );
    assert!(!seen.has("backlog-truncated"));
}

#[tokio::test(start_paused = true)]
async fn resumes_are_rate_limited_per_user() {
    let service = service_with(
        ServiceConfig {
            limits: LimitsConfig {
                user_rate: 20,
                ..LimitsConfig::default()
            },
            ..ServiceConfig::default()
        },
        Arc::new(MemoryStore::new()),
    );
    // A CONNECT costs 1, each resume 10: the second resume is over 20.
    let resumes: String = (0..3)
        .map(|i| {
            format!("SUBSCRIBE\nid:s{i}\ndestination:/user/queue/notifications\nsince:0-\nreceipt:r{i}\n\n\0")
        })
        .collect();
    let seen = session(&service, vec![connect("alice", ""), resumes], None).await;
    assert!(seen.has("receipt-id:r0"));
    let error = seen.error().expect("an ERROR");
    assert!(
        error.contains("message:limit exceeded\\c NOTIFY_USER_RATE"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn sessions_per_user_and_connections_are_capped_and_come_back() {
    let service = service_with(
        ServiceConfig {
            limits: LimitsConfig {
                max_sessions_per_user: 2,
                max_connections: 3,
                ..LimitsConfig::default()
            },
            ..ServiceConfig::default()
        },
        Arc::new(MemoryStore::new()),
    );
    let mut releases = Vec::new();
    let mut live = Vec::new();
    for user in ["alice", "alice", "bob"] {
        let (tx, rx) = tokio::sync::oneshot::channel();
        releases.push(tx);
        let s = service.clone();
        let m = vec![connect(user, "")];
        live.push(tokio::spawn(async move { session(&s, m, Some(rx)).await }));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(service.hub().session_count(), 3);
    let seen = session(&service, vec![connect("carol", "")], None).await;
    assert!(
        seen.error()
            .unwrap()
            .contains("message:limit exceeded\\c NOTIFY_MAX_CONNECTIONS"),
        "{:?}",
        seen.texts
    );
    // Free bob's connection: alice's third session now hits the per-user cap.
    releases.pop().unwrap().send(()).unwrap();
    live.pop().unwrap().await.unwrap();
    let seen = session(&service, vec![connect("alice", "")], None).await;
    assert!(
        seen.error()
            .unwrap()
            .contains("message:limit exceeded\\c NOTIFY_MAX_SESSIONS_PER_USER"),
        "{:?}",
        seen.texts
    );
    for r in releases {
        r.send(()).unwrap();
    }
    for l in live {
        assert!(l.await.unwrap().has("CONNECTED"));
    }
    assert_eq!(service.hub().session_count(), 0);
    assert_eq!(service.limits().connections(), 0);
    assert_eq!(service.limits().user_sessions("alice"), 0);
}
