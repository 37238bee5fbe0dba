//! notify-warp answers exactly like notify-axum at the edges the transport suite does not
//! reach: wrong methods and paths, CORS, origin checks, failed WebSocket handshakes,
//! sub-protocol choice and body limits. Both adapters serve the same service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use notify_core::auth::Authenticator;
use notify_core::testkit::transport::{http, token, HttpResponse};
use notify_core::testkit::{TEST_PUBLISH_KEY, TEST_SECRET};
use notify_core::{MemorySource, MemoryStore, NotifyService, ServiceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Method, path, headers, body.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

const ORIGIN: &str = "https://app.example";

/// Headers whose presence and value must match (the rest, like `date`, may differ).
const COMPARED: &[&str] = &[
    "content-type",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "vary",
    "allow",
    "www-authenticate",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "retry-after",
];

fn service() -> Arc<NotifyService> {
    let (_source, publisher) = MemorySource::new(16);
    NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(TEST_SECRET.as_bytes()),
    )
    .config(ServiceConfig {
        publish_key: Some(TEST_PUBLISH_KEY.into()),
        allowed_origins: Some(vec![ORIGIN.into()]),
        ..ServiceConfig::default()
    })
    .build()
}

async fn servers(service: &Arc<NotifyService>) -> (SocketAddr, SocketAddr) {
    let axum_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let axum_addr = axum_listener.local_addr().unwrap();
    let app = notify_axum::router(service.clone());
    tokio::spawn(async move { axum::serve(axum_listener, app).await });
    let warp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let warp_addr = warp_listener.local_addr().unwrap();
    tokio::spawn(
        warp::serve(notify_warp::routes(service.clone()))
            .incoming(warp_listener)
            .run(),
    );
    (axum_addr, warp_addr)
}

fn headers(r: &HttpResponse) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r
        .headers
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| COMPARED.contains(&k.as_str()))
        .collect();
    out.sort();
    out
}

/// The raw head of a WebSocket handshake answer (the connection stays open after a 101).
async fn handshake_head(addr: SocketAddr, extra: &[(&str, &str)]) -> HttpResponse {
    handshake(addr, extra).await.0
}

/// A WebSocket handshake: the answer (with its body, when it has a `content-length`) and
/// the connection, still open after a 101.
async fn handshake(addr: SocketAddr, extra: &[(&str, &str)]) -> (HttpResponse, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "GET /notify HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let read = |raw: &mut Vec<u8>, n: usize, buf: &[u8]| {
        assert!(n > 0, "closed before the answer was complete");
        raw.extend_from_slice(&buf[..n]);
    };
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("handshake answer in time")
            .unwrap();
        read(&mut raw, n, &buf);
    }
    let head_len = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body_len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.trim().parse().unwrap());
    while raw.len() < head_len + 4 + body_len {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("handshake answer body in time")
            .unwrap();
        read(&mut raw, n, &buf);
    }
    let body = String::from_utf8_lossy(&raw[head_len + 4..]).into_owned();
    (
        HttpResponse {
            status,
            headers: head,
            body,
        },
        stream,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_answers_like_axum() {
    let service = service();
    let (axum_addr, warp_addr) = servers(&service).await;
    let bearer = format!("Bearer {}", token("parity", &[]));
    let huge = vec![b' '; 1024 * 1024 + 10];
    let not_ws = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
    ];
    let cases: Vec<Case> = vec![
        ("GET", "/health/live", vec![], b""),
        ("GET", "/health/live/", vec![], b""),
        ("GET", "/nope", vec![], b""),
        // Unknown paths under /api, one or more segments: the core's JSON 404 from both.
        ("GET", "/api/x", vec![], b""),
        ("GET", "/api/x/y", vec![], b""),
        ("POST", "/api/x/y/z", vec![], b""),
        ("GET", "/api/notifications/", vec![], b""),
        ("GET", "/api/notifications/a/b/read", vec![], b""),
        ("GET", "/api/", vec![], b""),
        ("GET", "/api", vec![], b""),
        ("PUT", "/health/live", vec![], b""),
        (
            "GET",
            "/api/notifications/n_1/read",
            vec![("Authorization", &bearer)],
            b"",
        ),
        ("GET", "/api/notifications//read", vec![], b""),
        ("GET", "/api/notifications", vec![("Origin", ORIGIN)], b""),
        (
            "GET",
            "/api/notifications",
            vec![("Origin", "https://evil.example")],
            b"",
        ),
        (
            "GET",
            "/api/notifications?limit=0",
            vec![("Authorization", &bearer), ("Origin", ORIGIN)],
            b"",
        ),
        (
            "GET",
            "/api/notifications/unread-count?access_token=bad",
            vec![],
            b"",
        ),
        (
            "OPTIONS",
            "/api/notifications",
            vec![("Origin", ORIGIN), ("Access-Control-Request-Method", "GET")],
            b"",
        ),
        (
            "OPTIONS",
            "/api/events",
            vec![("Origin", "https://evil.example")],
            b"",
        ),
        ("POST", "/api/events", vec![("X-Api-Key", "wrong")], b"{}"),
        (
            "POST",
            "/api/events",
            vec![("X-Api-Key", TEST_PUBLISH_KEY)],
            b"{oops",
        ),
        (
            "POST",
            "/api/events",
            vec![("X-Api-Key", TEST_PUBLISH_KEY)],
            &huge,
        ),
        ("GET", "/notify", vec![], b""),
        ("HEAD", "/notify", vec![], b""),
        (
            "GET",
            "/notify",
            vec![("Origin", "https://evil.example")],
            b"",
        ),
        (
            "GET",
            "/notify",
            vec![("Connection", "keep-alive, Upgrade")],
            b"",
        ),
        ("GET", "/notify", not_ws.to_vec(), b""),
        (
            "GET",
            "/notify",
            vec![
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", "x"),
            ],
            b"",
        ),
        ("GET", "/notify/", vec![], b""),
        ("POST", "/notify", vec![], b""),
        (
            "DELETE",
            "/notify",
            vec![("Origin", "https://evil.example")],
            b"",
        ),
    ];
    for (method, path, headers_in, body) in &cases {
        let a = http(axum_addr, method, path, headers_in, body).await;
        let w = http(warp_addr, method, path, headers_in, body).await;
        let what = format!("{method} {path} {headers_in:?}");
        assert_eq!(
            w.status, a.status,
            "{what}: status\naxum: {a:?}\nwarp: {w:?}"
        );
        assert_eq!(
            headers(&w),
            headers(&a),
            "{what}: headers\naxum: {a:?}\nwarp: {w:?}"
        );
        assert_eq!(w.body, a.body, "{what}: body");
    }

    // The drift the shared route table fixed: a multi-segment unknown path under /api is the
    // core's JSON 404 in warp too, not warp's own text.
    let w = http(warp_addr, "GET", "/api/x/y", &[], b"").await;
    assert_eq!(w.status, 404);
    assert_eq!(w.json()["error"]["code"], "not_found", "{w:?}");

    // Sub-protocol choice, CORS-free 101 answers.
    for offered in [
        vec![("Sec-WebSocket-Protocol", "v12.stomp, v11.stomp")],
        vec![("Sec-WebSocket-Protocol", "v10.stomp, v11.stomp")],
        vec![
            ("Sec-WebSocket-Protocol", "v10.stomp"),
            ("Sec-WebSocket-Protocol", "v12.stomp"),
        ],
        vec![("Sec-WebSocket-Protocol", "mqtt")],
        vec![("Origin", ORIGIN)],
    ] {
        let a = handshake_head(axum_addr, &offered).await;
        let w = handshake_head(warp_addr, &offered).await;
        assert_eq!((w.status, a.status), (101, 101), "{offered:?}");
        assert_eq!(headers(&w), headers(&a), "{offered:?}");
    }

    // `/metrics` (its numbers move, so only its type).
    let a = http(axum_addr, "GET", "/metrics", &[], b"").await;
    let w = http(warp_addr, "GET", "/metrics", &[], b"").await;
    assert_eq!((w.status, headers(&w)), (a.status, headers(&a)));
    service.shutdown();
}

/// Mounted next to other routes, notify-warp leaves their paths alone and other paths still
/// reach the application.
#[tokio::test]
async fn combines_with_application_routes() {
    use warp::Filter;
    let service = service();
    let home = warp::path::end().map(|| "home");
    let app = home.or(notify_warp::routes(service.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(app).incoming(listener).run());
    let r = http(addr, "GET", "/", &[], b"").await;
    assert_eq!((r.status, r.body.as_str()), (200, "home"));
    let r = http(addr, "GET", "/health/live", &[], b"").await;
    assert_eq!(r.status, 200);
    let r = http(addr, "GET", "/elsewhere", &[], b"").await;
    assert_eq!(r.status, 404);

    // Under a prefix, the core sees the path after it.
    let prefixed = warp::path("n").and(notify_warp::routes(service.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(prefixed).incoming(listener).run());
    let r = http(addr, "GET", "/n/health/live", &[], b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = http(addr, "GET", "/n/api/notifications", &[], b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = http(addr, "GET", "/health/live", &[], b"").await;
    assert_eq!(r.status, 404);
    service.shutdown();
}

/// Over `NOTIFY_MAX_CONNECTIONS`, both adapters refuse a WebSocket upgrade with the same
/// 429 (`Retry-After`, code `rate_limited`, field the variable) before upgrading; a socket
/// that closes gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_refuse_upgrades_over_the_connection_cap_with_429() {
    let (_source, publisher) = MemorySource::new(16);
    let mut config = ServiceConfig::default();
    config.limits.max_connections = 2;
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(TEST_SECRET.as_bytes()),
    )
    .config(config)
    .build();
    let (axum_addr, warp_addr) = servers(&service).await;
    // One open WebSocket through each adapter fills the shared cap of 2.
    let (a, held_axum) = handshake(axum_addr, &[]).await;
    let (w, _held_warp) = handshake(warp_addr, &[]).await;
    assert_eq!((a.status, w.status), (101, 101));
    assert_eq!(service.limits().connections(), 2);

    let before = refusals(axum_addr).await;
    let (a, _) = handshake(axum_addr, &[]).await;
    let (w, _) = handshake(warp_addr, &[]).await;
    assert_eq!((a.status, w.status), (429, 429), "axum: {a:?}\nwarp: {w:?}");
    assert_eq!(headers(&w), headers(&a));
    assert_eq!(w.body, a.body);
    let e = &a.json()["error"];
    assert_eq!(e["code"], "rate_limited", "{a:?}");
    assert_eq!(e["field"], "NOTIFY_MAX_CONNECTIONS", "{a:?}");
    assert!(
        a.headers.to_ascii_lowercase().contains("retry-after: "),
        "{a:?}"
    );
    assert_eq!(refusals(warp_addr).await, before + 2.0);
    assert_eq!(service.limits().connections(), 2, "refusals take no slot");

    // Closing one socket frees its slot for the next upgrade.
    drop(held_axum);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (w, _kept) = handshake(warp_addr, &[]).await;
        if w.status == 101 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.shutdown();
}

/// `notify_limit_refusals_total{limit="NOTIFY_MAX_CONNECTIONS"}` as `/metrics` shows it.
async fn refusals(addr: SocketAddr) -> f64 {
    let m = http(addr, "GET", "/metrics", &[], b"").await;
    m.body
        .lines()
        .find(|l| l.starts_with("notify_limit_refusals_total{limit=\"NOTIFY_MAX_CONNECTIONS\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}
