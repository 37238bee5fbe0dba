//! `GET`/`PUT /api/preferences` over the framework-free API (contract section 5a): defaults,
//! validation naming the field, the REST rules of the hardened API (no query tokens, CORS
//! preflight allowing `PUT`), and muted types left out of the inbox and the unread count.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use notify_core::api::{self, ApiBody};
use notify_core::auth::{sign_hs256, Authenticator};
use notify_core::{MemorySource, MemoryStore, NotifyService, Pipeline, ServiceConfig};
use serde_json::{json, Value};

const SECRET: &[u8] = b"preferences-api-secret-of-32-bytes+";
const ORIGIN: &str = "https://app.example.com";

async fn call(
    service: &Arc<NotifyService>,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("origin", ORIGIN);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request.body(Bytes::from(body.to_string())).unwrap();
    let response = api::handle(service, request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        ApiBody::Full(b) => b,
        ApiBody::Stream(_) => panic!("unexpected stream"),
    };
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_over_rest() {
    let (source, publisher) = MemorySource::new(16);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher.clone()),
        Authenticator::hs256(SECRET),
    )
    .config(ServiceConfig {
        allowed_origins: Some(vec![ORIGIN.to_string()]),
        ..ServiceConfig::default()
    })
    .build();
    let pipeline = Pipeline::new(service.clone(), Arc::new(source)).spawn();
    let token = sign_hs256(SECRET, "alice", &["ops".to_string()], 3600);

    // Defaults when never set.
    let (status, headers, v) =
        call(&service, Method::GET, "/api/preferences", Some(&token), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["muted_types"], json!([]));
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        ORIGIN,
        "CORS on the answer"
    );

    // The browser's preflight for a PUT.
    let (status, headers, _) = call(&service, Method::OPTIONS, "/api/preferences", None, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let methods = headers
        .get("access-control-allow-methods")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(methods.contains("PUT"), "{methods}");

    // Query tokens are for /notify and /api/stream only.
    let (status, _, v) = call(
        &service,
        Method::GET,
        &format!("/api/preferences?access_token={token}"),
        None,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "token_in_query");
    let (status, _, _) = call(&service, Method::PUT, "/api/preferences", None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Validation names the field; nothing is stored.
    for (body, field) in [
        (
            r#"{"quiet_hours":{"from":"25:00","to":"07:00"}}"#,
            "quiet_hours.from",
        ),
        (r#"{"muted_types":[1]}"#, "muted_types[0]"),
        (r#"{"tz":"Mars/Olympus"}"#, "tz"),
        (
            r#"{"email":{"min_priority":"urgent"}}"#,
            "email.min_priority",
        ),
    ] {
        let (status, _, v) = call(
            &service,
            Method::PUT,
            "/api/preferences",
            Some(&token),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let (status, _, v) = call(
        &service,
        Method::PUT,
        "/api/preferences",
        Some(&token),
        "not json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _, _) = call(
        &service,
        Method::DELETE,
        "/api/preferences",
        Some(&token),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // A valid PUT answers the stored object; GET returns it.
    let prefs = json!({
        "muted_types": ["marketing.*"],
        "tz": "Asia/Seoul",
        "quiet_hours": {"from": "22:00", "to": "07:00"},
        "email": {"enabled": false, "min_priority": "high", "after_s": 600},
        "digest": {"enabled": false, "at": "09:00"}
    });
    let (status, _, v) = call(
        &service,
        Method::PUT,
        "/api/preferences",
        Some(&token),
        &prefs.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, prefs);
    let (_, _, v) = call(&service, Method::GET, "/api/preferences", Some(&token), "").await;
    assert_eq!(v, prefs);

    // Muted types are neither listed nor counted, personal, group and broadcast alike.
    let events = [
        json!({"id":"p1","type":"marketing.promo","recipients":{"users":["alice"]},"title":"t","message":"m"}),
        json!({"id":"p2","type":"marketing.promo","recipients":{"groups":["ops"]},"title":"t","message":"m"}),
        json!({"id":"p3","type":"marketing.news","recipients":{"broadcast":true},"title":"t","message":"m"}),
        json!({"id":"p4","type":"purchase.approved","recipients":{"users":["alice"]},"title":"t","message":"m"}),
    ];
    for e in &events {
        publisher
            .send_raw(Bytes::from(e.to_string()))
            .await
            .unwrap();
    }
    let bob = sign_hs256(SECRET, "bob", &["ops".to_string()], 3600);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        // bob muted nothing: he sees the group and broadcast ones, so all are stored.
        let (_, _, v) = call(
            &service,
            Method::GET,
            "/api/notifications/unread-count",
            Some(&bob),
            "",
        )
        .await;
        if v["unread_count"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not stored: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, _, v) = call(
        &service,
        Method::GET,
        "/api/notifications",
        Some(&token),
        "",
    )
    .await;
    let types: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["purchase.approved"], "{v}");
    assert_eq!(v["unread_count"], 1, "{v}");
    let (_, _, v) = call(
        &service,
        Method::GET,
        "/api/notifications/unread-count",
        Some(&token),
        "",
    )
    .await;
    assert_eq!(v["unread_count"], 1, "{v}");
    pipeline.shutdown(Duration::from_secs(5)).await;
}
