//! The checks the fuzz targets run, as plain functions, so that a crash input can be replayed
//! with `cargo fuzz run <target> <file>` and its regression test written against the same
//! properties in `notify-core/tests/fuzz_regressions.rs`.

pub mod session;

use std::sync::{Arc, OnceLock};

use notify_core::auth::Authenticator;
use notify_core::model::notification_id;
use notify_core::pipeline::notifications_for;
use notify_core::stomp::frame::{parse_all, Frame, MAX_FRAME_BYTES, MAX_HEADERS};
use notify_core::{Event, MemorySource, MemoryStore, NotifyService, Rules, ServiceConfig};

/// The frame parser: never panics, bounds bodies, and encoding a parsed frame parses back to
/// it (for frames whose headers are escaped and whose body is text, the only ones the
/// server writes).
pub fn check_frame_bytes(data: &[u8]) {
    let Ok(frames) = parse_all(data) else {
        return;
    };
    for f in frames {
        assert!(f.body.len() <= MAX_FRAME_BYTES, "body over the frame limit");
        round_trips(&f);
    }
}

fn round_trips(f: &Frame) {
    // CONNECT and CONNECTED headers cannot be escaped, so they do not round-trip by design;
    // a frame at the header limit gains one (`content-length`) and goes over it.
    if matches!(f.command.as_str(), "CONNECT" | "CONNECTED")
        || std::str::from_utf8(&f.body).is_err()
        || f.headers.len() >= MAX_HEADERS
    {
        return;
    }
    let text = f.encode();
    if text.len() > MAX_FRAME_BYTES {
        // Escaping made it larger than a client may send.
        return;
    }
    let back = parse_all(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(back.len(), 1, "{text:?}");
    let g = &back[0];
    assert_eq!(g.command, f.command);
    assert_eq!(g.body, f.body, "{text:?}");
    // Encoding adds `content-length` to a body that had none; nothing else changes.
    assert_eq!(&g.headers[..f.headers.len()], &f.headers[..], "{text:?}");
}

/// Rules with templates, so that accepted events also exercise rendering.
const RULES: &str = r#"
[[rule]]
type = "purchase.*"
to_groups = ["purchasing-admins"]
to_users = ["{data.approver}"]
title = "New purchase request"
message = "{data.requester} requested {data.item}"
link = "/purchases/{data.purchaseId}"

[[rule]]
type = "broadcast.x"
broadcast = true
title = "{title}"
message = "{id}: {data}"
"#;

fn event_service() -> &'static Arc<NotifyService> {
    static SERVICE: OnceLock<Arc<NotifyService>> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let (_source, publisher) = MemorySource::new(16);
        NotifyService::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(publisher),
            Authenticator::hs256(session::SECRET),
        )
        .rules(Rules::from_toml(RULES).expect("the fuzz rules parse"))
        .config(ServiceConfig {
            link_origins: Some(vec!["https://app.example".into()]),
            ..ServiceConfig::default()
        })
        .build()
    })
}

/// The event parser, as the Kafka consumer (one object) and `POST /api/events` (an object
/// or an array) run it: never panics; an accepted event has a valid id and at least one
/// notification, with stable ids that serialize.
pub fn check_event_bytes(data: &[u8]) {
    let service = event_service();
    let now = chrono::Utc::now();
    if let Ok((event, notifications)) = notifications_for(service, data, now) {
        check_accepted(&event, &notifications);
        let (_, again) = notifications_for(service, data, now).expect("accepted twice");
        let ids =
            |ns: &[notify_core::Notification]| ns.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&notifications), ids(&again), "ids are stable");
    }
    // The HTTP batch form: each element of an array is an event.
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(data) {
        for item in items {
            if let Ok(event) = Event::from_value(item) {
                let _ = service.rules().resolve(&event);
            }
        }
    }
}

fn check_accepted(event: &Event, notifications: &[notify_core::Notification]) {
    let chars = event.id.chars().count();
    assert!((1..=128).contains(&chars), "id of {chars} chars accepted");
    assert!(
        !notifications.is_empty(),
        "an accepted event has a recipient"
    );
    for n in notifications {
        assert_eq!(n.id, notification_id(&event.id, &n.audience));
        let json: serde_json::Value =
            serde_json::from_slice(&n.to_json_bytes(false)).expect("notification JSON parses");
        assert_eq!(json["event_id"], event.id.as_str());
        if let Some(link) = &n.link {
            notify_core::model::check_link(link, Some(&["https://app.example".to_string()]))
                .expect("an accepted link is valid");
        }
    }
}
