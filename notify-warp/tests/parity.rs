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
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("handshake answer in time")
            .unwrap();
        assert!(n > 0, "closed before the head");
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap().to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    HttpResponse {
        status,
        headers: head,
        body: String::new(),
    }
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
