//! The transport conformance suite: drives a running server (any HTTP adapter) through a
//! real WebSocket STOMP client and plain HTTP/1.1, scenario by scenario. Every adapter runs
//! the same scenarios; a behaviour difference between adapters is a bug.
//!
//! The server must be a [`super::memory_service`] (or configured like it) served at `addr`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{TEST_PUBLISH_KEY, TEST_SECRET};
use crate::auth::sign_hs256;
use crate::stomp::frame::{parse_all, Frame};

const WAIT: Duration = Duration::from_secs(10);

/// A unique name per call, so scenarios never see each other's notifications.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A token for `user` in `groups`, valid for an hour.
pub fn token(user: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    sign_hs256(TEST_SECRET.as_bytes(), user, &groups, 3600)
}

/// A minimal HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    /// The HTTP status code of the answer (e.g. 429).
    pub status: u16,
    /// The response head after the status line, as received (for header assertions).
    pub headers: String,
    /// The response body decoded as UTF-8.
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends one request over a fresh connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("HTTP response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    HttpResponse {
        status,
        headers: head.to_string(),
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Publishes events with the test key.
pub async fn publish(addr: SocketAddr, events: &Value) -> HttpResponse {
    http(
        addr,
        "POST",
        "/api/events",
        &[
            ("X-Api-Key", TEST_PUBLISH_KEY),
            ("Content-Type", "application/json"),
        ],
        events.to_string().as_bytes(),
    )
    .await
}

/// An event for `users`.
pub fn event_for(users: &[&str], title: &str) -> Value {
    json!({
        "id": unique("evt"),
        "type": "test.transport",
        "recipients": {"users": users},
        "title": title,
        "message": "m",
        "data": {"k": 1},
    })
}

/// A real STOMP client over WebSocket.
#[derive(Debug)]
pub struct StompClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames that arrived in the same WebSocket message as an earlier one.
    queued: std::collections::VecDeque<Frame>,
}

impl StompClient {
    /// Opens `/notify` with the `v12.stomp` sub-protocol, optionally with a query token and
    /// an `Authorization` header token.
    pub async fn open(
        addr: SocketAddr,
        query_token: Option<&str>,
        header_token: Option<&str>,
    ) -> Self {
        let url = match query_token {
            Some(t) => format!("ws://{addr}/notify?access_token={t}"),
            None => format!("ws://{addr}/notify"),
        };
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "v12.stomp, v11.stomp".parse().unwrap(),
        );
        if let Some(t) = header_token {
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("v12.stomp"),
            "sub-protocol negotiated"
        );
        StompClient {
            ws,
            queued: Default::default(),
        }
    }

    /// Sends raw text.
    pub async fn send_raw(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: Frame) {
        self.send_raw(frame.encode()).await;
    }

    /// The next frame (heart-beats skipped); `None` when the server closed.
    pub async fn recv(&mut self) -> Option<Frame> {
        if let Some(f) = self.queued.pop_front() {
            return Some(f);
        }
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let frames = parse_all(t.as_bytes()).expect("server frames parse");
                    // Several frames may share one message (queued pushes are batched).
                    self.queued.extend(frames);
                    if let Some(f) = self.queued.pop_front() {
                        return Some(f);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next frame, which must be `command`.
    pub async fn expect(&mut self, command: &str) -> Frame {
        let f = self
            .recv()
            .await
            .unwrap_or_else(|| panic!("expected {command}, connection closed"));
        assert_eq!(f.command, command, "expected {command}, got {f:?}");
        f
    }

    /// After an ERROR the server closes.
    pub async fn expect_closed(&mut self) {
        assert!(self.recv().await.is_none(), "the server closes after ERROR");
    }

    /// CONNECT (with an optional Authorization header) and return the answer.
    pub async fn connect(&mut self, token: Option<&str>) -> Frame {
        let mut f = Frame::new("CONNECT")
            .header("accept-version", "1.2,1.1,1.0")
            .header("heart-beat", "10000,10000");
        if let Some(t) = token {
            f = f.header("Authorization", format!("Bearer {t}"));
        }
        self.send(f).await;
        self.recv().await.expect("an answer to CONNECT")
    }

    /// SUBSCRIBE with a receipt, waiting for it (or returning the ERROR).
    pub async fn subscribe(&mut self, id: &str, destination: &str, since: Option<&str>) -> Frame {
        let mut f = Frame::new("SUBSCRIBE")
            .header("id", id)
            .header("destination", destination)
            .header("receipt", format!("r-{id}"));
        if let Some(s) = since {
            f = f.header("since", s);
        }
        self.send(f).await;
        self.recv().await.expect("RECEIPT or ERROR")
    }
}

async fn connected(addr: SocketAddr, user: &str, groups: &[&str]) -> StompClient {
    let mut c = StompClient::open(addr, Some(&token(user, groups)), None).await;
    c.expect_connected().await;
    c
}

impl StompClient {
    async fn expect_connected(&mut self) {
        let f = self.connect(None).await;
        assert_eq!(f.command, "CONNECTED", "{f:?}");
    }
}

/// Runs every scenario against the server at `addr`.
pub async fn run_all(addr: SocketAddr) {
    health(addr).await;
    token_locations(addr).await;
    bad_tokens_are_refused(addr).await;
    push_reaches_the_right_sessions(addr).await;
    forbidden_destinations(addr).await;
    malformed_and_oversized_frames(addr).await;
    resume_with_since(addr).await;
    read_via_send_and_rest(addr).await;
    rest_errors_name_the_field(addr).await;
    sse_stream(addr).await;
    slow_consumer_is_closed_and_resumes(addr).await;
}

/// `/health/live` and `/health/ready` answer UP; `/metrics` has the contract's names.
pub async fn health(addr: SocketAddr) {
    let live = http(addr, "GET", "/health/live", &[], b"").await;
    assert_eq!(
        (live.status, live.json()["status"].clone()),
        (200, json!("UP"))
    );
    let ready = http(addr, "GET", "/health/ready", &[], b"").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let metrics = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("notify_sessions"),
        "metrics: {}",
        metrics.body
    );
}

/// A token works from the query, the handshake header and the CONNECT header.
pub async fn token_locations(addr: SocketAddr) {
    let t = token("tok-user", &[]);
    let mut a = StompClient::open(addr, Some(&t), None).await;
    assert_eq!(a.connect(None).await.command, "CONNECTED", "query token");
    let mut b = StompClient::open(addr, None, Some(&t)).await;
    assert_eq!(
        b.connect(None).await.command,
        "CONNECTED",
        "handshake header token"
    );
    let mut c = StompClient::open(addr, None, None).await;
    let f = c.connect(Some(&t)).await;
    assert_eq!(f.command, "CONNECTED", "CONNECT header token");
    assert_eq!(f.get("version"), Some("1.2"));
    assert_eq!(f.get("heart-beat"), Some("10000,10000"));
}

/// Missing, forged and expired tokens get ERROR and a close.
pub async fn bad_tokens_are_refused(addr: SocketAddr) {
    let forged = sign_hs256(b"wrong-secret", "mallory", &[], 3600);
    let expired = sign_hs256(TEST_SECRET.as_bytes(), "late", &[], -3600);
    for (what, token) in [
        ("missing", None),
        ("forged", Some(forged)),
        ("expired", Some(expired)),
    ] {
        let mut c = StompClient::open(addr, None, None).await;
        let f = c.connect(token.as_deref()).await;
        assert_eq!(f.command, "ERROR", "{what} token: {f:?}");
        c.expect_closed().await;
    }
}

/// Personal, group and broadcast notifications reach exactly the right subscriptions.
pub async fn push_reaches_the_right_sessions(addr: SocketAddr) {
    let alice = unique("alice");
    let bob = unique("bob");
    let group = unique("team");
    let mut a = connected(addr, &alice, &[&group]).await;
    assert_eq!(
        a.subscribe("q", "/user/queue/notifications", None)
            .await
            .command,
        "RECEIPT"
    );
    assert_eq!(
        a.subscribe("g", &format!("/topic/groups.{group}"), None)
            .await
            .command,
        "RECEIPT"
    );
    let mut b = connected(addr, &bob, &[]).await;
    assert_eq!(
        b.subscribe("q", "/user/queue/notifications", None)
            .await
            .command,
        "RECEIPT"
    );
    assert_eq!(
        b.subscribe("t", "/topic/notifications", None).await.command,
        "RECEIPT"
    );

    let personal = event_for(&[&alice], "personal");
    assert_eq!(publish(addr, &personal).await.status, 202);
    let m = a.expect("MESSAGE").await;
    assert_eq!(m.get("destination"), Some("/user/queue/notifications"));
    assert_eq!(m.get("subscription"), Some("q"));
    assert_eq!(m.get("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&m.body).unwrap();
    assert_eq!(body["event_id"], personal["id"]);
    assert_eq!(body["audience"], json!({"kind": "user", "id": alice}));
    assert_eq!(m.get("message-id"), body["id"].as_str());
    assert!(body["cursor"].is_string() && body["read"] == json!(false));

    let group_event = json!({"id": unique("evt"), "type": "t", "recipients": {"groups": [group]}, "title": "g", "message": "m"});
    assert_eq!(publish(addr, &group_event).await.status, 202);
    let mut subs: Vec<String> = Vec::new();
    for _ in 0..2 {
        subs.push(
            a.expect("MESSAGE")
                .await
                .get("subscription")
                .unwrap()
                .to_string(),
        );
    }
    subs.sort();
    assert_eq!(
        subs,
        vec!["g", "q"],
        "a group notification reaches the user queue and the group topic"
    );

    let broadcast = json!({"id": unique("evt"), "type": "t", "recipients": {"broadcast": true}, "title": "b", "message": "m"});
    assert_eq!(publish(addr, &broadcast).await.status, 202);
    let mut subs: Vec<String> = Vec::new();
    for _ in 0..2 {
        let m = b.expect("MESSAGE").await;
        let body: Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(
            body["event_id"], broadcast["id"],
            "bob got neither alice's nor the group's notification"
        );
        subs.push(m.get("subscription").unwrap().to_string());
    }
    subs.sort();
    assert_eq!(subs, vec!["q", "t"]);
    let m = a.expect("MESSAGE").await;
    assert_eq!(
        m.get("subscription"),
        Some("q"),
        "the broadcast reaches alice's queue"
    );
}

/// A non-member's group, another user's queue and unknown destinations are refused.
pub async fn forbidden_destinations(addr: SocketAddr) {
    for destination in [
        "/topic/groups.secret",
        "/user/bob/queue/notifications",
        "/queue/anything",
    ] {
        let mut c = connected(addr, &unique("eve"), &["other"]).await;
        let f = c.subscribe("x", destination, None).await;
        assert_eq!(f.command, "ERROR", "{destination}");
        assert!(
            f.get("message").unwrap_or("").contains(destination),
            "ERROR names {destination}: {f:?}"
        );
        c.expect_closed().await;
    }
    let mut c = connected(addr, &unique("many"), &[]).await;
    for i in 0..64 {
        c.send(
            Frame::new("SUBSCRIBE")
                .header("id", format!("s{i}"))
                .header("destination", "/topic/notifications"),
        )
        .await;
    }
    c.send(
        Frame::new("SUBSCRIBE")
            .header("id", "s64")
            .header("destination", "/topic/notifications"),
    )
    .await;
    assert_eq!(
        c.expect("ERROR").await.get("message"),
        Some("too many subscriptions")
    );
    let mut c = connected(addr, &unique("sender"), &[]).await;
    c.send(
        Frame::new("SEND")
            .header("destination", "/topic/notifications")
            .body(b"x".to_vec()),
    )
    .await;
    c.expect("ERROR").await;
}

/// Malformed and oversized frames get ERROR and a close; other sessions keep working.
pub async fn malformed_and_oversized_frames(addr: SocketAddr) {
    let user = unique("bystander");
    let mut ok = connected(addr, &user, &[]).await;
    ok.subscribe("q", "/user/queue/notifications", None).await;
    let mut bad = connected(addr, &unique("fuzzer"), &[]).await;
    bad.send_raw("SUBSCRIBE\nno-colon-here\n\n\0".into()).await;
    bad.expect("ERROR").await;
    bad.expect_closed().await;
    let mut big = connected(addr, &unique("big"), &[]).await;
    big.send_raw(format!(
        "SEND\ndestination:/app/read\n\n{}\0",
        "x".repeat(70 * 1024)
    ))
    .await;
    big.expect("ERROR").await;
    big.expect_closed().await;
    assert_eq!(
        publish(addr, &event_for(&[&user], "still here"))
            .await
            .status,
        202
    );
    ok.expect("MESSAGE").await;
}

/// A SUBSCRIBE with `since` gets what was missed, oldest first, then live.
pub async fn resume_with_since(addr: SocketAddr) {
    let user = unique("resumer");
    let mut c = connected(addr, &user, &[]).await;
    c.subscribe("q", "/user/queue/notifications", None).await;
    publish(addr, &event_for(&[&user], "first")).await;
    let first = c.expect("MESSAGE").await;
    let cursor = serde_json::from_slice::<Value>(&first.body).unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    c.send(Frame::new("DISCONNECT").header("receipt", "bye"))
        .await;
    assert_eq!(c.expect("RECEIPT").await.get("receipt-id"), Some("bye"));
    let mut missed = Vec::new();
    for i in 0..5 {
        let e = event_for(&[&user], &format!("missed {i}"));
        missed.push(e["id"].as_str().unwrap().to_string());
        publish(addr, &e).await;
    }
    // Let the pipeline store them (resume also covers unstored pushes; this keeps it simple).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = connected(addr, &user, &[]).await;
    c.send(
        Frame::new("SUBSCRIBE")
            .header("id", "q")
            .header("destination", "/user/queue/notifications")
            .header("since", cursor)
            .header("receipt", "sub"),
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let m = c.expect("MESSAGE").await;
        got.push(
            serde_json::from_slice::<Value>(&m.body).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        got, missed,
        "resume: every missed notification, oldest first"
    );
    c.expect("RECEIPT").await;
    let live = event_for(&[&user], "live");
    publish(addr, &live).await;
    let m = c.expect("MESSAGE").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&m.body).unwrap()["event_id"],
        live["id"]
    );
}

async fn unread(addr: SocketAddr, token: &str) -> u64 {
    let r = http(
        addr,
        "GET",
        "/api/notifications/unread-count",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["unread_count"].as_u64().unwrap()
}

/// `SEND /app/read` and the REST calls mark read; counts follow.
pub async fn read_via_send_and_rest(addr: SocketAddr) {
    let user = unique("reader");
    let t = token(&user, &[]);
    // Broadcasts from other scenarios count too: compare with the count before.
    let base = unread(addr, &t).await;
    let mut c = connected(addr, &user, &[]).await;
    c.subscribe("q", "/user/queue/notifications", None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        publish(addr, &event_for(&[&user], &format!("r{i}"))).await;
        ids.push(
            c.expect("MESSAGE")
                .await
                .get("message-id")
                .unwrap()
                .to_string(),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(unread(addr, &t).await, base + 3);
    c.send(
        Frame::new("SEND")
            .header("destination", "/app/read")
            .header("receipt", "rd")
            .body(json!({"ids": [ids[0]]}).to_string().into_bytes()),
    )
    .await;
    c.expect("RECEIPT").await;
    assert_eq!(unread(addr, &t).await, base + 2);
    let auth = format!("Bearer {t}");
    let r = http(
        addr,
        "POST",
        &format!("/api/notifications/{}/read", ids[1]),
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(unread(addr, &t).await, base + 1);
    let r = http(
        addr,
        "POST",
        "/api/notifications/n_nope/read",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let r = http(
        addr,
        "POST",
        "/api/notifications/read-all",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(unread(addr, &t).await, 0);
    let list = http(
        addr,
        "GET",
        "/api/notifications?limit=2",
        &[("Authorization", &auth)],
        b"",
    )
    .await
    .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["next_cursor"].is_string());
    assert_eq!(list["items"][0]["read"], json!(true));
}

/// Bad input gets a 400 naming the field; missing credentials a 401.
pub async fn rest_errors_name_the_field(addr: SocketAddr) {
    let bad = publish(addr, &json!({"id": "x", "type": "t", "recipients": {"users": ["u"]}, "title": "t", "message": "m", "priority": "urgent"})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["field"], "priority");
    let none = publish(
        addr,
        &json!({"id": "x", "type": "t", "title": "t", "message": "m"}),
    )
    .await;
    assert_eq!(
        (none.status, none.json()["error"]["field"].clone()),
        (400, json!("recipients"))
    );
    let r = http(
        addr,
        "POST",
        "/api/events",
        &[("X-Api-Key", TEST_PUBLISH_KEY)],
        b"{oops",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "invalid_input");
    let r = http(
        addr,
        "POST",
        "/api/events",
        &[("X-Api-Key", "wrong")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 401);
    let r = http(addr, "GET", "/api/notifications", &[], b"").await;
    assert_eq!(r.status, 401);
    let t = format!("Bearer {}", token("lim", &[]));
    let r = http(
        addr,
        "GET",
        "/api/notifications?limit=500",
        &[("Authorization", &t)],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("limit"))
    );
    let r = http(
        addr,
        "GET",
        "/api/notifications?before=zzz",
        &[("Authorization", &t)],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("before"))
    );
    let r = http(
        addr,
        "GET",
        "/api/nothing-here",
        &[("Authorization", &t)],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let huge = vec![b' '; 1024 * 1024 + 10];
    let r = http(
        addr,
        "POST",
        "/api/events",
        &[("X-Api-Key", TEST_PUBLISH_KEY)],
        &huge,
    )
    .await;
    assert_eq!(r.status, 413);
}

/// SSE delivers `event: notification` with the cursor as `id`.
pub async fn sse_stream(addr: SocketAddr) {
    let user = unique("sse");
    let t = token(&user, &[]);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /api/stream?access_token={t} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Wait for the stream to open before publishing.
    while !String::from_utf8_lossy(&buf).contains("connected") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("SSE opens")
            .unwrap();
        assert!(n > 0, "SSE stream closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&buf).contains("text/event-stream"));
    let e = event_for(&[&user], "sse");
    publish(addr, &e).await;
    while !String::from_utf8_lossy(&buf).contains("event: notification")
        || !String::from_utf8_lossy(&buf).contains("\n\n")
    {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("SSE event")
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains(e["id"].as_str().unwrap()), "{text}");
    assert!(text.contains("\nid: "), "{text}");
}

/// A client that stops reading is closed as a slow consumer, and loses nothing when it
/// resumes with `since`.
pub async fn slow_consumer_is_closed_and_resumes(addr: SocketAddr) {
    let user = unique("slow");
    let mut c = connected(addr, &user, &[]).await;
    c.subscribe("q", "/user/queue/notifications", None).await;
    publish(addr, &event_for(&[&user], "before")).await;
    let first = c.expect("MESSAGE").await;
    let cursor = serde_json::from_slice::<Value>(&first.body).unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    // Stop reading; publish far more than socket buffers and the session queue hold.
    let big = "x".repeat(50 * 1024);
    let mut ids = Vec::new();
    for _ in 0..40 {
        let batch: Vec<Value> = (0..10)
            .map(|_| {
                let mut e = event_for(&[&user], "flood");
                e["data"] = json!({"pad": big});
                ids.push(e["id"].as_str().unwrap().to_string());
                e
            })
            .collect();
        assert_eq!(publish(addr, &Value::Array(batch)).await.status, 202);
    }
    // Now read: somewhere there is an ERROR "slow consumer", then the close.
    let mut saw_error = false;
    while let Some(f) = c.recv().await {
        if f.command == "ERROR" {
            assert_eq!(f.get("message"), Some("slow consumer"));
            saw_error = true;
        }
    }
    assert!(saw_error, "slow consumer ERROR");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = connected(addr, &user, &[]).await;
    c.send(
        Frame::new("SUBSCRIBE")
            .header("id", "q")
            .header("destination", "/user/queue/notifications")
            .header("since", cursor),
    )
    .await;
    let mut got = std::collections::HashSet::new();
    while got.len() < ids.len() {
        let m = c.expect("MESSAGE").await;
        got.insert(
            serde_json::from_slice::<Value>(&m.body).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        ids.iter().all(|id| got.contains(id)),
        "nothing lost after resume"
    );
}
