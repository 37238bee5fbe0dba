//! The HTTP API of the contract (REST, publish, SSE, health, metrics, CORS), framework-free:
//! a function from an `http::Request` with a buffered body to an `http::Response`. The
//! adapters only convert types, cap the body size and handle the WebSocket upgrade.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::auth::{bearer, key_matches};
use crate::error::{Error, Result};
use crate::inbox;
use crate::model::{Cursor, Event, MAX_EVENT_BYTES};
use crate::service::NotifyService;
use crate::store::Reader;

/// A response body: whole, or a stream (SSE).
pub enum ApiBody {
    /// A complete body.
    Full(Bytes),
    /// A streaming body; each item is written as it comes.
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>),
}

impl std::fmt::Debug for ApiBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiBody::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            ApiBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl ApiBody {
    /// The bytes of a full body (empty for a stream).
    pub fn into_full(self) -> Bytes {
        match self {
            ApiBody::Full(b) => b,
            ApiBody::Stream(_) => Bytes::new(),
        }
    }
}

pub use crate::adapter::ROUTES;

fn json_response(status: StatusCode, value: &Value) -> Response<ApiBody> {
    let mut r = Response::new(ApiBody::Full(Bytes::from(
        serde_json::to_vec(value).expect("JSON serializes"),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn empty(status: StatusCode) -> Response<ApiBody> {
    let mut r = Response::new(ApiBody::Full(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// The contract's JSON error response for an error.
pub fn error_response(e: &Error) -> Response<ApiBody> {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %e, "internal error");
    }
    let mut r = json_response(status, &e.to_json());
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Error::RateLimited { retry_after, .. } = e {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::limits::retry_after_secs(*retry_after)),
        );
    }
    r
}

/// Paths where browsers cannot send headers, so `?access_token=` is accepted there only.
pub const QUERY_TOKEN_PATHS: &[&str] = &["/notify", "/api/stream"];

/// True when the query string carries `access_token` (tokens in URLs end up in logs,
/// proxies and browser history).
pub fn has_query_token(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "access_token")
}

fn token_in_query() -> Response<ApiBody> {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": {
            "code": "token_in_query",
            "message": "access_token in the query string is accepted only on /notify and /api/stream; send an Authorization: Bearer header",
            "field": "access_token",
        }}),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn error_with(status: StatusCode, code: &str, message: &str) -> Response<ApiBody> {
    crate::adapter::json_error(status, code, message)
}

/// The bearer token of a request: `Authorization: Bearer …` or `?access_token=`.
pub(crate) fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(str::to_string)
        .or_else(|| {
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        })
}

fn principal(
    service: &NotifyService,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<crate::auth::Principal> {
    let token =
        request_token(headers, query).ok_or_else(|| Error::unauthorized("missing bearer token"))?;
    let principal = service.auth.verify(&token)?;
    service.limits.user_request(&principal.user)?;
    Ok(principal)
}

/// The verified reader of a REST request, after spending one token of its
/// `NOTIFY_USER_RATE` bucket.
fn reader(service: &NotifyService, headers: &HeaderMap, query: Option<&str>) -> Result<Reader> {
    Ok(principal(service, headers, query)?.reader())
}

/// Answers one API request. `body` must already be capped at
/// [`crate::service::ServiceConfig::max_body_bytes`] by the adapter (413 otherwise).
pub async fn handle(service: &Arc<NotifyService>, request: Request<Bytes>) -> Response<ApiBody> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = if request.method() == Method::OPTIONS {
        preflight(service, origin.as_deref())
    } else {
        match route(service, request).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    };
    add_cors(service, origin.as_deref(), response.headers_mut());
    response
}

fn preflight(service: &NotifyService, origin: Option<&str>) -> Response<ApiBody> {
    match origin {
        Some(o) if service.config.allowed_origins.is_some() && service.origin_allowed(o) => {
            let mut r = empty(StatusCode::NO_CONTENT);
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PUT, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type, X-Api-Key, Last-Event-ID"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            r
        }
        _ => error_with(StatusCode::FORBIDDEN, "forbidden", "origin not allowed"),
    }
}

/// Adds CORS headers when the request's origin is on the allow-list.
pub(crate) fn add_cors(service: &NotifyService, origin: Option<&str>, headers: &mut HeaderMap) {
    let Some(origin) = origin else { return };
    if service.config.allowed_origins.is_none() || !service.origin_allowed(origin) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn method_not_allowed(allowed: &'static str) -> Result<Response<ApiBody>> {
    let mut r = error_with(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("use {allowed}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    Ok(r)
}

async fn route(service: &Arc<NotifyService>, request: Request<Bytes>) -> Result<Response<ApiBody>> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().trim_end_matches('/');
    let query = parts.uri.query();
    if has_query_token(query) && !QUERY_TOKEN_PATHS.contains(&path) {
        return Ok(token_in_query());
    }
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let post = parts.method == Method::POST;
    match path {
        "/health/live" if get => Ok(json_response(StatusCode::OK, &json!({"status": "UP"}))),
        "/health/ready" if get => Ok(ready(service).await),
        "/metrics" if get => {
            // Readiness as of this scrape, so alerts see it without relying on probes.
            service.readiness().await;
            Ok(metrics_response())
        }
        "/api/notifications" if get => {
            let reader = reader(service, &parts.headers, query)?;
            let q = inbox::parse_list_query(query)?;
            Ok(json_response(
                StatusCode::OK,
                &inbox::list(service, &reader, &q).await?.to_json(),
            ))
        }
        "/api/notifications/unread-count" if get => {
            let reader = reader(service, &parts.headers, query)?;
            let n = inbox::unread_count(service, &reader).await?;
            Ok(json_response(StatusCode::OK, &json!({"unread_count": n})))
        }
        "/api/notifications/read-all" if post => {
            let reader = reader(service, &parts.headers, query)?;
            inbox::mark_all_read(service, &reader).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        "/api/events" if post => publish(service, &parts.headers, body).await,
        "/api/preferences" if get => {
            let principal = principal(service, &parts.headers, query)?;
            let prefs = crate::prefs::rest::get(service, &principal).await?;
            Ok(json_response(StatusCode::OK, &prefs))
        }
        "/api/preferences" if parts.method == Method::PUT => {
            let principal = principal(service, &parts.headers, query)?;
            let prefs = crate::prefs::rest::put(service, &principal, &body).await?;
            Ok(json_response(StatusCode::OK, &prefs))
        }
        "/api/preferences" => method_not_allowed("GET, PUT"),
        "/api/stream" if get => {
            let principal = principal(service, &parts.headers, query)?;
            crate::prefs::rest::remember_in_background(service, &principal);
            let since = parts
                .headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(|v| Cursor::parse_or_time(v, "Last-Event-ID"))
                .or_else(|| {
                    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                        .find(|(k, _)| k == "since")
                        .map(|(_, v)| Cursor::parse_or_time(&v, "since"))
                })
                .transpose()?;
            let slots = crate::registration::SessionSlots {
                connection: Some(service.limits.connection()?),
                user_session: Some(service.limits.user_session(&principal.user)?),
            };
            let stream = crate::sse::event_stream(service.clone(), principal, since, slots);
            let mut r = Response::new(ApiBody::Stream(Box::pin(stream)));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            Ok(r)
        }
        "/health/live"
        | "/health/ready"
        | "/metrics"
        | "/api/notifications"
        | "/api/notifications/unread-count"
        | "/api/stream" => method_not_allowed("GET"),
        "/api/notifications/read-all" | "/api/events" => method_not_allowed("POST"),
        _ => {
            if let Some(id) = path
                .strip_prefix("/api/notifications/")
                .and_then(|rest| rest.strip_suffix("/read"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
            {
                if !post {
                    return method_not_allowed("POST");
                }
                let reader = reader(service, &parts.headers, query)?;
                let id = percent_decode(id);
                inbox::mark_read(service, &reader, &id).await?;
                return Ok(empty(StatusCode::NO_CONTENT));
            }
            Err(Error::not_found(format!("no route for {path}")))
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn ready(service: &NotifyService) -> Response<ApiBody> {
    let checks = service.readiness().await;
    let mut components = serde_json::Map::new();
    let mut up = !service.is_shutting_down();
    for (name, result) in checks {
        let value = match result {
            Ok(()) => json!({"status": "UP"}),
            Err(e) => {
                up = false;
                json!({"status": "DOWN", "error": e.to_string()})
            }
        };
        components.insert(name.to_string(), value);
    }
    let status = if up { "UP" } else { "DOWN" };
    json_response(
        if up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &json!({"status": status, "components": components}),
    )
}

fn metrics_response() -> Response<ApiBody> {
    let text = crate::metrics::render()
        .unwrap_or_else(|| "# metrics are exported by another recorder in this process\n".into());
    let mut r = Response::new(ApiBody::Full(Bytes::from(text)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Validates a publish body (one event or an array) into events with their raw JSON.
/// Each event is checked as the pipeline would (rules, recipients), so a bad event is a 400
/// here rather than a dead letter later.
pub(crate) fn validate_publish(
    service: &NotifyService,
    body: &[u8],
) -> Result<Vec<(Event, Bytes)>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_body(format!("invalid JSON: {e}")))?;
    let check = |value: Value, raw: Bytes, index: Option<usize>| -> Result<(Event, Bytes)> {
        let at = |e: Error| match (e, index) {
            (Error::InvalidInput { field, message }, Some(i)) => Error::InvalidInput {
                field,
                message: format!("event [{i}]: {message}"),
            },
            (e, _) => e,
        };
        if raw.len() > MAX_EVENT_BYTES {
            return Err(at(Error::PayloadTooLarge {
                what: "event",
                limit: MAX_EVENT_BYTES,
            }));
        }
        let event = Event::from_value(value).map_err(at)?;
        let resolved = service.rules.resolve(&event).map_err(at)?;
        if let Some(link) = &resolved.link {
            crate::model::check_link(link, service.config.link_origins.as_deref()).map_err(at)?;
        }
        Ok((event, raw))
    };
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let raw = Bytes::from(serde_json::to_vec(&v).expect("JSON serializes"));
                check(v, raw, Some(i))
            })
            .collect(),
        v @ Value::Object(_) => Ok(vec![check(v, Bytes::copy_from_slice(body), None)?]),
        other => Err(Error::invalid_body(format!(
            "expected an event object or an array of events, got {}",
            crate::model::json_kind(&other)
        ))),
    }
}

async fn publish(
    service: &NotifyService,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<ApiBody>> {
    let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    match (&service.config.publish_key, given) {
        (Some(expected), Some(given)) if key_matches(given, expected) => {}
        (None, _) => {
            return Err(Error::unauthorized(
                "publishing is disabled (no publish key configured)",
            ))
        }
        (_, None) => return Err(Error::unauthorized("missing X-Api-Key header")),
        _ => return Err(Error::unauthorized("invalid X-Api-Key")),
    }
    let events = validate_publish(service, &body)?;
    service.limits.publish(events.len())?;
    let (span, trace) = crate::trace::publish_span(service, headers, &events);
    service
        .sink
        .publish_traced(&events, trace.as_ref())
        .instrument(span)
        .await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"accepted": events.len()}),
    ))
}
