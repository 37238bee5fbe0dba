//! Property tests for everything a client or producer controls (issue 12, item 12): the
//! STOMP frame parser, the session state machine over arbitrary frame sequences, the event
//! parser, cursors. Run with overflow checks on (the test profile), so any arithmetic on a
//! huge header value that wraps is a failure, not a silent bug. The same inputs run under
//! libFuzzer in `fuzz/` where a nightly toolchain exists.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use notify_core::auth::{sign_hs256, Authenticator};
use notify_core::stomp::{self, frame::parse_all, Handshake, Inbound, Outbound, MAX_FRAME_BYTES};
use notify_core::{Cursor, Event, MemorySource, MemoryStore, NotifyService, ServiceConfig};
use proptest::prelude::*;

const SECRET: &[u8] = b"properties-secret-of-32-bytes-or-more";

/// Numbers that break naive arithmetic, as header text.
fn huge_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-1".to_string()),
        Just("65536".to_string()),
        Just("65535".to_string()),
        Just("0".to_string()),
        Just("99999999999999999999999999999999".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,40}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![huge_number(), "[ -~]{0,40}", "[0-9]{1,20},[0-9]{1,20}",]
}

/// One client frame, mostly well-formed, with hostile values.
fn client_frame() -> impl Strategy<Value = String> {
    let command = prop_oneof![
        Just("SUBSCRIBE"),
        Just("UNSUBSCRIBE"),
        Just("SEND"),
        Just("ACK"),
        Just("NACK"),
        Just("BEGIN"),
        Just("DISCONNECT"),
        Just("CONNECT"),
        Just("STOMP"),
        Just("FOO"),
    ];
    let name = prop_oneof![
        Just("id"),
        Just("destination"),
        Just("since"),
        Just("receipt"),
        Just("content-length"),
        Just("heart-beat"),
        Just("accept-version"),
        Just("ack"),
    ];
    let destination = prop_oneof![
        Just("/user/queue/notifications".to_string()),
        Just("/topic/notifications".to_string()),
        Just("/topic/groups.g".to_string()),
        Just("/topic/groups.other".to_string()),
        Just("/app/read".to_string()),
        "/[a-z/.]{0,20}",
    ];
    let body = prop_oneof![
        Just(String::new()),
        Just(r#"{"all":true}"#.to_string()),
        Just(r#"{"ids":["n_1","n_2"]}"#.to_string()),
        Just(r#"{"ids":[1e400]}"#.to_string()),
        "[ -~]{0,64}",
    ];
    (
        command,
        destination,
        proptest::collection::vec((name, header_value()), 0..6),
        body,
        prop::option::of("[ -~]{0,300}"),
    )
        .prop_map(|(command, destination, headers, body, id)| {
            let mut f = format!("{command}\ndestination:{destination}\n");
            if let Some(id) = id {
                f.push_str(&format!("id:{}\n", id.replace(':', "\\c")));
            }
            for (n, v) in headers {
                f.push_str(&format!("{n}:{}\n", v.replace(':', "\\c")));
            }
            f.push('\n');
            f.push_str(&body);
            f.push('\0');
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frame_parser_survives_huge_numeric_headers(
        cmd in "[A-Z]{1,12}",
        len in huge_number(),
        headers in proptest::collection::vec(("[a-z\\-]{1,12}", huge_number()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut input = format!("{cmd}\ncontent-length:{len}\n").into_bytes();
        for (n, v) in &headers {
            input.extend(format!("{n}:{v}\n").into_bytes());
        }
        input.push(b'\n');
        input.extend(&body);
        input.push(0);
        if let Ok(frames) = parse_all(&input) {
            for f in frames {
                prop_assert!(f.body.len() <= MAX_FRAME_BYTES);
            }
        }
    }

    #[test]
    fn frame_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse_all(&bytes);
    }

    #[test]
    fn event_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Event::from_slice(&bytes);
    }

    #[test]
    fn event_parser_never_panics_on_hostile_json(
        id in prop_oneof![Just(serde_json::json!("e")), Just(serde_json::json!(u64::MAX)), Just(serde_json::json!(1e308)), "[ -~]{0,200}".prop_map(serde_json::Value::from)],
        priority in prop_oneof![Just(serde_json::json!("high")), Just(serde_json::json!(-1)), "[a-z]{0,8}".prop_map(serde_json::Value::from)],
        occurred in prop_oneof![Just(serde_json::json!("2026-11-25T10:00:00Z")), Just(serde_json::json!("+275760-09-13T00:00:00Z")), Just(serde_json::json!(i64::MIN)), "[0-9T:\\-+Z.]{0,40}".prop_map(serde_json::Value::from)],
        link in prop_oneof![Just(serde_json::json!("/a")), Just(serde_json::json!("javascript:alert(1)")), Just(serde_json::json!("//evil.example")), "[ -~]{0,80}".prop_map(serde_json::Value::from)],
        users in proptest::collection::vec("[ -~]{0,20}", 0..4),
        data in prop_oneof![Just(serde_json::json!({"n": u64::MAX})), Just(serde_json::json!([1, 2])), Just(serde_json::json!(null))],
    ) {
        let v = serde_json::json!({
            "id": id, "type": "t.x", "title": "t", "message": "m", "priority": priority,
            "occurred_at": occurred, "link": link, "recipients": {"users": users}, "data": data,
        });
        let _ = Event::from_slice(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn cursors_never_panic(s in prop_oneof![huge_number(), "[ -~]{0,60}", "[0-9]{1,30}_[ -~]{0,20}"]) {
        let _ = Cursor::parse(&s, "since");
        let _ = Cursor::parse_or_time(&s, "since");
    }
}

fn service() -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(SECRET),
    )
    .config(ServiceConfig {
        connect_timeout: Duration::from_secs(1),
        ..ServiceConfig::default()
    })
    .build()
}

/// Runs one session over `messages` (after a CONNECT, unless `connect` is false) in paused
/// time; returns what the server wrote.
fn run(service: &Arc<NotifyService>, connect: bool, messages: Vec<String>) -> Vec<Outbound> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let token = sign_hs256(SECRET, "alice", &["g".into()], 3600);
        let mut inbound = Vec::new();
        if connect {
            inbound.push(Inbound::Text(format!(
                "CONNECT\naccept-version:1.2\nheart-beat:0,0\nAuthorization:Bearer {token}\n\n\0"
            )));
        }
        inbound.extend(messages.into_iter().map(Inbound::Text));
        let (tx, rx) = futures::channel::mpsc::unbounded::<Outbound>();
        let sink = futures::SinkExt::sink_map_err(tx, |_| ());
        let session = stomp::run_session(
            service.clone(),
            Handshake::default(),
            Box::pin(futures::stream::iter(inbound)),
            Box::pin(sink),
        );
        tokio::time::timeout(Duration::from_secs(600), session)
            .await
            .expect("a session over a finite input must end");
        rx.collect::<Vec<_>>().await
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of frames, grouped into messages any way: the session ends, never
    /// panics, and leaves nothing registered in the hub.
    #[test]
    fn session_survives_arbitrary_frame_sequences(
        messages in proptest::collection::vec(proptest::collection::vec(client_frame(), 1..5), 0..6),
        connect in prop::bool::weighted(0.9),
    ) {
        let service = service();
        let messages: Vec<String> = messages.into_iter().map(|m| m.concat()).collect();
        let out = run(&service, connect, messages);
        prop_assert_eq!(service.hub().session_count(), 0);
        prop_assert_eq!(service.limits().connections(), 0);
        prop_assert_eq!(service.limits().user_sessions("alice"), 0);
        // Every ERROR is followed by a close.
        if let Some(i) = out.iter().position(|o| matches!(o, Outbound::Text(t) if t.starts_with("ERROR"))) {
            let closed = out[i..].iter().any(|o| matches!(o, Outbound::Close { .. }));
            prop_assert!(closed, "an ERROR without a close");
        }
    }

    /// Arbitrary bytes as messages after CONNECT.
    #[test]
    fn session_survives_arbitrary_messages(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..512), 0..6),
    ) {
        let service = service();
        let messages = messages
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect();
        let _ = run(&service, true, messages);
        prop_assert_eq!(service.hub().session_count(), 0);
    }
}

#[test]
fn a_huge_content_length_after_connect_closes_the_session_and_leaks_nothing() {
    let service = service();
    let out = run(
        &service,
        true,
        vec!["SEND\ndestination:/app/read\ncontent-length:18446744073709551615\n\nx\0".into()],
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Outbound::Text(t) if t.starts_with("ERROR"))),
        "{out:?}"
    );
    assert_eq!(service.hub().session_count(), 0);
}
