//! The STOMP session state machine driven in memory over a fuzzed sequence of WebSocket
//! messages, as `notify-core/tests/properties.rs` does with proptest: a stream of
//! [`Inbound`] messages in, a channel of [`Outbound`] out, tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;
use futures::StreamExt;
use notify_core::auth::{sign_hs256, Authenticator};
use notify_core::pipeline::notifications_for;
use notify_core::stomp::frame::{parse_all, push_escaped};
use notify_core::stomp::{self, Handshake, Inbound, Outbound};
use notify_core::{MemorySource, MemoryStore, Notification, NotifyService, Push, ServiceConfig};

/// The HS256 secret of the fuzzed services.
pub const SECRET: &[u8] = b"fuzz-secret-of-at-least-32-bytes-long";

/// One fuzzed session: an optional CONNECT (with the frames sent in its message), then
/// messages and events.
#[derive(Arbitrary, Debug)]
pub struct SessionInput {
    /// Whether the handshake carried a valid token (`?access_token=`).
    pub handshake_token: bool,
    /// The CONNECT the driver sends first, if any.
    pub connect: Option<ConnectSpec>,
    /// What follows, in order.
    pub messages: Vec<Step>,
    /// The session's outgoing queue, small enough to overflow (slow consumer).
    pub queue: u8,
}

/// A CONNECT frame with hostile header values.
#[derive(Arbitrary, Debug)]
pub struct ConnectSpec {
    /// `STOMP` instead of `CONNECT`.
    pub stomp_command: bool,
    /// Which token the frame carries.
    pub token: Token,
    /// The `heart-beat` header, if any.
    pub heart_beat: Option<Value>,
    /// The `accept-version` header, if any.
    pub accept_version: Option<Value>,
    /// More headers.
    pub extra: Vec<(Name, Value)>,
    /// Frames sent in the same WebSocket message, after the CONNECT.
    pub same_message: Vec<FrameSpec>,
}

/// The token a CONNECT carries.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Token {
    /// Alice's, valid for an hour, member of group `g`.
    Valid,
    /// Valid for `n` seconds only.
    ShortLived(u8),
    /// Expired.
    Expired,
    /// Signed with another secret.
    Forged,
    /// None in the frame.
    Absent,
}

/// One step of the client or the world.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// One WebSocket text message holding these frames.
    Frames(Vec<FrameSpec>),
    /// A text message of raw bytes (lossily UTF-8).
    Raw(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
    /// A heart-beat EOL.
    HeartBeat,
    /// A WebSocket ping.
    Ping,
    /// The client closes.
    Close,
    /// A notification is stored and pushed live.
    Push(Audience),
    /// Time passes (tens of milliseconds).
    Sleep(u16),
}

/// Who a pushed notification is for.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Audience {
    /// Alice herself.
    Alice,
    /// Her group `g`.
    Group,
    /// A group she is not in.
    OtherGroup,
    /// Everyone.
    Broadcast,
    /// Another user.
    Bob,
}

/// A client frame.
#[derive(Arbitrary, Debug)]
pub struct FrameSpec {
    /// Its command.
    pub command: Command,
    /// Its headers, escaped unless `raw_headers`.
    pub headers: Vec<(Name, Value)>,
    /// Whether headers go unescaped (malformed escapes, colons and EOLs in values).
    pub raw_headers: bool,
    /// Its body.
    pub body: Body,
}

/// A STOMP command, or any upper-case word.
#[derive(Arbitrary, Debug)]
#[allow(missing_docs)]
pub enum Command {
    Connect,
    Stomp,
    Subscribe,
    Unsubscribe,
    Send,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    Other(u8),
}

/// A header name.
#[derive(Arbitrary, Debug)]
#[allow(missing_docs)]
pub enum Name {
    Id,
    Destination,
    Since,
    Receipt,
    ContentLength,
    ContentType,
    HeartBeat,
    AcceptVersion,
    Ack,
    Authorization,
    Host,
    Other(String),
}

/// A header value.
#[derive(Arbitrary, Debug)]
pub enum Value {
    /// Any text.
    Text(String),
    /// A number that breaks naive arithmetic.
    Huge(u8),
    /// Any unsigned number.
    Number(u64),
    /// Any signed number.
    Signed(i64),
    /// Two numbers, as `heart-beat` has.
    Pair(u64, u64),
    /// A destination, ours or not.
    Destination(u8),
    /// A subscription id among a few, or a long one.
    SubscriptionId(u8),
    /// A cursor: of a stored notification, or extreme.
    Cursor(u8),
    /// A bearer token.
    Bearer(Token),
}

/// A frame body.
#[derive(Arbitrary, Debug)]
pub enum Body {
    /// None.
    Empty,
    /// `{"all":true}`.
    ReadAll,
    /// `{"ids":[…]}` with these ids (a few real ones by index, the rest as given).
    ReadIds(Vec<u8>),
    /// Any text.
    Text(String),
    /// Any bytes, NULs included.
    Bytes(Vec<u8>),
}

const HUGE: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "4294967295",
    "4294967296",
    "-1",
    "0",
    "65535",
    "65536",
    "99999999999999999999999999999999",
    "1e400",
    " 1",
    "+1",
];

const DESTINATIONS: &[&str] = &[
    "/user/queue/notifications",
    "/topic/notifications",
    "/topic/groups.g",
    "/topic/groups.other",
    "/topic/groups.",
    "/app/read",
    "/user/bob/queue/notifications",
    "/queue/x",
    "",
];

fn token(t: Token) -> Option<String> {
    match t {
        Token::Valid => Some(sign_hs256(SECRET, "alice", &["g".into()], 3600)),
        Token::ShortLived(s) => Some(sign_hs256(SECRET, "alice", &["g".into()], i64::from(s))),
        Token::Expired => Some(sign_hs256(SECRET, "alice", &["g".into()], -120)),
        Token::Forged => Some(sign_hs256(
            b"another-secret-of-at-least-32-bytes-long",
            "alice",
            &["g".into()],
            3600,
        )),
        Token::Absent => None,
    }
}

struct Ctx {
    service: Arc<NotifyService>,
    cursors: Vec<String>,
    ids: Vec<String>,
    events: u64,
}

impl Ctx {
    fn name(&self, n: &Name) -> String {
        match n {
            Name::Id => "id",
            Name::Destination => "destination",
            Name::Since => "since",
            Name::Receipt => "receipt",
            Name::ContentLength => "content-length",
            Name::ContentType => "content-type",
            Name::HeartBeat => "heart-beat",
            Name::AcceptVersion => "accept-version",
            Name::Ack => "ack",
            Name::Authorization => "Authorization",
            Name::Host => "host",
            Name::Other(s) => return s.clone(),
        }
        .to_string()
    }

    fn value(&self, v: &Value) -> String {
        match v {
            Value::Text(s) => s.clone(),
            Value::Huge(i) => HUGE[usize::from(*i) % HUGE.len()].to_string(),
            Value::Number(n) => n.to_string(),
            Value::Signed(n) => n.to_string(),
            Value::Pair(a, b) => format!("{a},{b}"),
            Value::Destination(i) => DESTINATIONS[usize::from(*i) % DESTINATIONS.len()].into(),
            Value::SubscriptionId(i) => match i % 8 {
                7 => "s".repeat(usize::from(*i) * 2),
                n => format!("sub-{n}"),
            },
            Value::Cursor(i) => match (i % 8, self.cursors.get(usize::from(*i % 4))) {
                (0..=3, Some(c)) => c.clone(),
                (4, _) => "7fffffffffffffff-zzz".into(),
                (5, _) => "0-".into(),
                (6, _) => "2026-11-25T10:00:00Z".into(),
                _ => "ffffffffffffffff-x".into(),
            },
            Value::Bearer(t) => format!("Bearer {}", token(*t).unwrap_or_default()),
        }
    }

    fn frame(&self, f: &FrameSpec) -> Vec<u8> {
        let command = match &f.command {
            Command::Connect => "CONNECT".to_string(),
            Command::Stomp => "STOMP".into(),
            Command::Subscribe => "SUBSCRIBE".into(),
            Command::Unsubscribe => "UNSUBSCRIBE".into(),
            Command::Send => "SEND".into(),
            Command::Ack => "ACK".into(),
            Command::Nack => "NACK".into(),
            Command::Begin => "BEGIN".into(),
            Command::Commit => "COMMIT".into(),
            Command::Abort => "ABORT".into(),
            Command::Disconnect => "DISCONNECT".into(),
            Command::Other(n) => ["FOO", "MESSAGE", "ERROR", "RECEIPT", "CONNECTED", "connect"]
                [usize::from(*n) % 6]
                .into(),
        };
        let escape = !f.raw_headers && !matches!(command.as_str(), "CONNECT" | "STOMP");
        let mut out = command;
        out.push('\n');
        for (n, v) in &f.headers {
            let (n, v) = (self.name(n), self.value(v));
            if escape {
                push_escaped(&mut out, &n);
                out.push(':');
                push_escaped(&mut out, &v);
            } else {
                out.push_str(&n);
                out.push(':');
                out.push_str(&v);
            }
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        match &f.body {
            Body::Empty => {}
            Body::ReadAll => bytes.extend_from_slice(br#"{"all":true}"#),
            Body::ReadIds(picks) => {
                let ids: Vec<String> = picks
                    .iter()
                    .map(|p| match self.ids.get(usize::from(*p)) {
                        Some(id) => id.clone(),
                        None => format!("n_{p}"),
                    })
                    .collect();
                bytes.extend(serde_json::json!({ "ids": ids }).to_string().into_bytes());
            }
            Body::Text(s) => bytes.extend_from_slice(s.as_bytes()),
            Body::Bytes(b) => bytes.extend_from_slice(b),
        }
        bytes.push(0);
        bytes
    }

    fn connect(&self, c: &ConnectSpec) -> Vec<u8> {
        let mut out = String::from(if c.stomp_command {
            "STOMP\n"
        } else {
            "CONNECT\n"
        });
        if let Some(v) = &c.accept_version {
            out.push_str(&format!("accept-version:{}\n", self.value(v)));
        } else {
            out.push_str("accept-version:1.2\n");
        }
        if let Some(v) = &c.heart_beat {
            out.push_str(&format!("heart-beat:{}\n", self.value(v)));
        }
        if let Some(t) = token(c.token) {
            out.push_str(&format!("Authorization:Bearer {t}\n"));
        }
        for (n, v) in &c.extra {
            out.push_str(&format!("{}:{}\n", self.name(n), self.value(v)));
        }
        out.push_str("\n\0");
        let mut bytes = out.into_bytes();
        for f in &c.same_message {
            bytes.extend(self.frame(f));
        }
        bytes
    }

    /// Stores a notification for `to` and pushes it to the live sessions.
    async fn push(&mut self, to: Audience) {
        self.events += 1;
        let recipients = match to {
            Audience::Alice => serde_json::json!({"users": ["alice"]}),
            Audience::Group => serde_json::json!({"groups": ["g"]}),
            Audience::OtherGroup => serde_json::json!({"groups": ["other"]}),
            Audience::Broadcast => serde_json::json!({"broadcast": true}),
            Audience::Bob => serde_json::json!({"users": ["bob"]}),
        };
        let event = serde_json::json!({
            "id": format!("fuzz-{}", self.events), "type": "fuzz.x",
            "recipients": recipients, "title": "t", "message": "m",
        });
        let (_, notifications) = notifications_for(
            &self.service,
            event.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .expect("the driver's events are valid");
        self.store(&notifications).await;
        for n in notifications {
            self.service
                .hub()
                .deliver(&Push::new(n, chrono::Utc::now()));
        }
    }

    async fn store(&mut self, notifications: &[Notification]) {
        self.service
            .store()
            .insert(notifications)
            .await
            .expect("the memory store takes them");
        for n in notifications {
            self.cursors.push(n.cursor().to_string());
            self.ids.push(n.id.clone());
        }
    }
}

fn service(queue: u8) -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    let mut config = ServiceConfig {
        connect_timeout: Duration::from_secs(1),
        session_queue: usize::from(queue % 64).max(1),
        resume_max: 3,
        ..ServiceConfig::default()
    };
    config.limits.user_rate = 0;
    NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(SECRET),
    )
    .config(config)
    .build()
}

/// Runs one fuzzed session to its end and checks what must hold whatever the input: the
/// session ends (no hang), every frame the server wrote parses, an ERROR is followed by a
/// close, and nothing stays registered in the hub or counted against the limits.
pub fn check_session(input: SessionInput) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let service = service(input.queue);
    let out = runtime.block_on(async {
        let mut ctx = Ctx {
            service: service.clone(),
            cursors: Vec::new(),
            ids: Vec::new(),
            events: 0,
        };
        // A backlog for resumes.
        for to in [
            Audience::Alice,
            Audience::Group,
            Audience::Broadcast,
            Audience::Alice,
        ] {
            ctx.push(to).await;
        }
        let mut first = Vec::new();
        if let Some(c) = &input.connect {
            first.push(Inbound::Text(
                String::from_utf8_lossy(&ctx.connect(c)).into_owned(),
            ));
        }
        let handshake = Handshake::with_token(if input.handshake_token {
            token(Token::Valid)
        } else {
            None
        });
        let steps = input.messages.into_iter();
        let rest = futures::stream::unfold((steps, ctx), |(mut steps, mut ctx)| async move {
            loop {
                let inbound = match steps.next()? {
                    Step::Frames(frames) => {
                        let bytes: Vec<u8> = frames.iter().flat_map(|f| ctx.frame(f)).collect();
                        Inbound::Text(String::from_utf8_lossy(&bytes).into_owned())
                    }
                    Step::Raw(b) => Inbound::Text(String::from_utf8_lossy(&b).into_owned()),
                    Step::Binary(b) => Inbound::Binary(b.into()),
                    Step::HeartBeat => Inbound::Text("\n".into()),
                    Step::Ping => Inbound::Ping,
                    Step::Close => Inbound::Close,
                    Step::Push(to) => {
                        ctx.push(to).await;
                        continue;
                    }
                    Step::Sleep(t) => {
                        tokio::time::sleep(Duration::from_millis(u64::from(t) * 10)).await;
                        continue;
                    }
                };
                return Some((inbound, (steps, ctx)));
            }
        });
        let incoming = futures::stream::iter(first).chain(rest);
        let (tx, rx) = futures::channel::mpsc::unbounded::<Outbound>();
        let sink = futures::SinkExt::sink_map_err(tx, |_| ());
        let session = stomp::run_session(
            service.clone(),
            handshake,
            Box::pin(incoming),
            Box::pin(sink),
        );
        tokio::time::timeout(Duration::from_secs(100 * 24 * 3600), session)
            .await
            .expect("a session over a finite input ends");
        rx.collect::<Vec<_>>().await
    });
    assert_eq!(
        service.hub().session_count(),
        0,
        "a session stayed registered"
    );
    assert_eq!(
        service.limits().connections(),
        0,
        "a connection slot leaked"
    );
    assert_eq!(
        service.limits().user_sessions("alice"),
        0,
        "a session slot leaked"
    );
    let mut errored = false;
    for o in &out {
        match o {
            Outbound::Text(t) if t == "\n" => {}
            Outbound::Text(t) => {
                let frames = parse_all(t.as_bytes()).unwrap_or_else(|e| {
                    panic!("the server wrote an unparseable frame ({e}): {t:?}")
                });
                errored |= frames.iter().any(|f| f.command == "ERROR");
            }
            Outbound::Close { .. } => errored = false,
        }
    }
    assert!(!errored, "an ERROR without a close: {out:?}");
}
