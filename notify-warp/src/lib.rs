//! # notify-warp
//!
//! Serves a [`NotifyService`] with warp: STOMP over WebSocket at `/notify`, SSE at
//! `/api/stream`, the REST API, `POST /api/events`, `/health/live`, `/health/ready` and
//! `/metrics`, with CORS, origin checks, JSON errors and body limits, as in the contract.
//! Everything but the HTTP glue (sessions, auth, routing, inbox, SSE) lives in `notify-core`;
//! this crate is the twin of `notify-axum` and behaves the same.
//!
//! [`routes`] is an ordinary warp filter: combine it with your own filters using `or`. It
//! rejects with `not_found` for every path that is not one of its own, so your routes keep
//! working; a request to one of its paths always gets the core's answer (JSON errors, never
//! warp's rejection text).
//!
//! ```no_run
//! use std::sync::Arc;
//! use notify_core::{auth::Authenticator, MemorySource, MemoryStore, NotifyService, Pipeline};
//! use warp::Filter;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let (source, publisher) = MemorySource::new(1024);
//! let source = Arc::new(source);
//! let service = NotifyService::builder(
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(publisher),
//!     Authenticator::hs256(b"secret"),
//! )
//! .event_source(source.clone())
//! .build();
//! let pipeline = Pipeline::new(service.clone(), source).spawn();
//!
//! let home = warp::path::end().map(|| "my app");
//! let app = home.or(notify_warp::routes(service.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! warp::serve(app)
//!     .incoming(listener)
//!     .graceful(notify_warp::shutdown_on_signal(service.clone()))
//!     .run()
//!     .await;
//! pipeline.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! The paths are relative to where the filter is mounted: at the root as above, or under a
//! prefix such as `warp::path("notifications").and(notify_warp::routes(service))`, in which
//! case the core sees (and answers) the path after the prefix.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{future, SinkExt, Stream, StreamExt, TryStreamExt};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use notify_core::api::{self, ApiBody};
use notify_core::stomp::{self, Inbound, Outbound};
use notify_core::{Error, NotifyService};

pub use notify_core::service::shutdown_on_signal;
pub use notify_core::stomp::WsBuffers;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use warp::filters::path::Peek;
use warp::reply::Response as WarpResponse;
use warp::{Filter, Rejection, Reply};

fn ws_config(b: WsBuffers) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(b.read)
        .write_buffer_size(b.write)
        .max_write_buffer_size(b.max_write)
        .max_message_size(Some(b.max_message))
        .max_frame_size(Some(b.max_message))
}

/// All routes of the contract as one warp filter, with default WebSocket buffers.
///
/// Paths other than the contract's are rejected with `warp::reject::not_found()`, so the
/// filter combines with an application's own routes through `or`.
pub fn routes(
    service: Arc<NotifyService>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    routes_with(service, WsBuffers::default())
}

/// All routes of the contract, with the given WebSocket buffer sizes.
pub fn routes_with(
    service: Arc<NotifyService>,
    buffers: WsBuffers,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    websocket(service.clone(), buffers).or(api(service)).unify()
}

/// `/notify`: the STOMP WebSocket endpoint alone.
pub fn websocket(
    service: Arc<NotifyService>,
    buffers: WsBuffers,
) -> impl Filter<Extract = (WarpResponse,), Error = Rejection> + Clone {
    mounted(|path| path == "/notify")
        .and(with_service(service))
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::ext::optional::<OnUpgrade>())
        .then(
            move |_path: String,
                  service: Arc<NotifyService>,
                  method: Method,
                  headers: HeaderMap,
                  query: Option<String>,
                  on_upgrade: Option<OnUpgrade>| {
                let response = ws_handler(service, buffers, &method, &headers, query, on_upgrade);
                future::ready(response)
            },
        )
}

/// The REST API, `POST /api/events`, `/api/stream`, health and metrics: every path of
/// [`notify_core::api::ROUTES`], answered by [`notify_core::api::handle`].
pub fn api(
    service: Arc<NotifyService>,
) -> impl Filter<Extract = (WarpResponse,), Error = Rejection> + Clone {
    mounted(is_api_route)
        .and(with_service(service))
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(request_body())
        .then(api_handler)
}

fn with_service(
    service: Arc<NotifyService>,
) -> impl Filter<Extract = (Arc<NotifyService>,), Error = Infallible> + Clone {
    warp::any().map(move || service.clone())
}

/// Matches when the unmatched rest of the path (as `/…`) satisfies `accept`, and extracts it
/// without consuming it; otherwise rejects with `not_found` so other routes may match.
fn mounted(
    accept: fn(&str) -> bool,
) -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path::peek().and_then(move |rest: Peek| {
        let path = format!("/{}", rest.as_str());
        future::ready(if accept(&path) {
            Ok(path)
        } else {
            Err(warp::reject::not_found())
        })
    })
}

/// Whether `path` is one of the core's routes, matched like axum's router: `{param}` is one
/// segment (even an empty one: the core then answers 404 JSON), no trailing-slash folding.
fn is_api_route(path: &str) -> bool {
    api::ROUTES.iter().any(|pattern| {
        let mut want = pattern.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(_)) if w.starts_with('{') && w.ends_with('}') => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    })
}

/// The raw query string, if any (warp's `query::raw` rejects when there is none).
fn raw_query() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

type BodyStream = BoxStream<'static, Result<Bytes, warp::Error>>;

/// The request body as a stream, or `None` when an earlier filter of the application already
/// took it (warp would otherwise answer with its own 500 text).
fn request_body() -> impl Filter<Extract = (Option<BodyStream>,), Error = Infallible> + Clone {
    warp::body::stream()
        .map(|body| Some(box_body(body)))
        .or(warp::any().map(|| None))
        .unify()
}

fn box_body<S, B>(body: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    body.map_ok(|mut chunk| chunk.copy_to_bytes(chunk.remaining()))
        .boxed()
}

fn request_uri(path: &str, query: Option<&str>) -> Result<Uri, Error> {
    let text = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    text.parse().map_err(|e| Error::Internal {
        message: format!("request path {text:?} does not parse again: {e}"),
        source: None,
    })
}

/// Reads the body up to `limit` bytes. Like `axum::body::to_bytes` in notify-axum, any
/// failure to read it (over the limit, or the client went away) answers 413.
async fn read_body(body: BodyStream, limit: usize) -> Result<Bytes, Error> {
    let too_large = Error::PayloadTooLarge {
        what: "body",
        limit,
    };
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return Err(too_large);
        };
        if buf.len() + chunk.len() > limit {
            return Err(too_large);
        }
        buf.put(chunk);
    }
    Ok(buf.freeze())
}

async fn api_handler(
    path: String,
    service: Arc<NotifyService>,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Option<BodyStream>,
) -> WarpResponse {
    let uri = match request_uri(&path, query.as_deref()) {
        Ok(uri) => uri,
        Err(e) => return into_warp(api::error_response(&e)),
    };
    let Some(body) = body else {
        return into_warp(api::error_response(&Error::Internal {
            message: "the request body was consumed by another filter".into(),
            source: None,
        }));
    };
    let body = match read_body(body, service.config().max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return into_warp(api::error_response(&e)),
    };
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    into_warp(api::handle(&service, request).await)
}

fn into_warp(response: Response<ApiBody>) -> WarpResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        ApiBody::Full(bytes) => Response::new(bytes).into_response().into_body(),
        ApiBody::Stream(stream) => {
            warp::reply::stream(SyncStream(Mutex::new(stream)).map(Ok::<_, Infallible>))
                .into_response()
                .into_body()
        }
    };
    Response::from_parts(parts, body)
}

/// `warp::reply::stream` wants a `Sync` stream; the core's SSE stream is only `Send`. The
/// mutex is never locked: `poll_next` has `&mut self` and uses `Mutex::get_mut`.
struct SyncStream(Mutex<Pin<Box<dyn Stream<Item = Bytes> + Send + 'static>>>);

impl Stream for SyncStream {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .poll_next(cx)
    }
}

fn json_error(status: StatusCode, code: &str, message: &str) -> WarpResponse {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut response = Response::new(Bytes::from(body.to_string())).into_response();
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The checks axum's `WebSocketUpgrade` extractor makes on an HTTP/1.1 upgrade, with its
/// messages, so both adapters refuse a non-WebSocket request to `/notify` the same way.
fn upgrade_key<'a>(
    method: &Method,
    headers: &'a HeaderMap,
) -> Result<&'a HeaderValue, &'static str> {
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if method != Method::GET {
        return Err("Request method must be `GET`");
    }
    if !header_str(header::CONNECTION).is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")) {
        return Err("Connection header did not include 'upgrade'");
    }
    if !headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        return Err("`Upgrade` header did not include 'websocket'");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("`Sec-WebSocket-Key` header missing")?;
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("`Sec-WebSocket-Version` header did not include '13'");
    }
    Ok(key)
}

fn ws_handler(
    service: Arc<NotifyService>,
    buffers: WsBuffers,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    on_upgrade: Option<OnUpgrade>,
) -> WarpResponse {
    // axum routes `/notify` with `get(..)`: other methods than GET and HEAD never reach the
    // handler. Here they get the same status, as JSON.
    if method != Method::GET && method != Method::HEAD {
        let mut r = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return r;
    }
    let handshake = match stomp::handshake(&service, headers, query.as_deref()) {
        Ok(h) => h,
        Err(e) => return into_warp(api::error_response(&e)),
    };
    let key = match upgrade_key(method, headers) {
        Ok(key) => key,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, "websocket_required", message),
    };
    let Some(on_upgrade) = on_upgrade else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        );
    };
    // Every `Sec-WebSocket-Protocol` header counts, not only the first.
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let protocol = stomp::choose_subprotocol(Some(&offered));

    let mut response = Response::new(Bytes::new()).into_response();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    match HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        Ok(accept) => {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Err(e) => {
            return into_warp(api::error_response(&Error::Internal {
                message: format!("Sec-WebSocket-Accept: {e}"),
                source: None,
            }))
        }
    }
    if let Some(p) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }

    let config = ws_config(buffers);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve_socket(service, handshake, socket).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    response
}

async fn serve_socket<S>(
    service: Arc<NotifyService>,
    handshake: stomp::Handshake,
    socket: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (sink, stream) = socket.split();
    let incoming = stream.filter_map(|msg| {
        future::ready(match msg {
            Ok(Message::Text(t)) => Some(Inbound::Text(t.as_str().to_owned())),
            Ok(Message::Binary(b)) => Some(Inbound::Binary(b)),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => Some(Inbound::Ping),
            // Raw frames are never yielded when reading; axum skips them too.
            Ok(Message::Frame(_)) => None,
            Ok(Message::Close(_)) | Err(_) => Some(Inbound::Close),
        })
    });
    let outgoing = sink.with(|out: Outbound| {
        future::ready(Ok::<_, tungstenite::Error>(match out {
            Outbound::Text(t) => Message::Text(t.into()),
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        }))
    });
    stomp::run_session(service, handshake, Box::pin(incoming), Box::pin(outgoing)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_routes_match_like_axum() {
        for p in [
            "/api/notifications",
            "/api/notifications/unread-count",
            "/api/notifications/read-all",
            "/api/notifications/n_1/read",
            "/api/notifications//read",
            "/api/events",
            "/api/stream",
            "/health/live",
            "/health/ready",
            "/metrics",
        ] {
            assert!(is_api_route(p), "{p}");
        }
        for p in [
            "/",
            "/notify",
            "/health/live/",
            "/api/notifications/",
            "/api/notifications/a/b/read",
            "/api",
            "/metricsx",
        ] {
            assert!(!is_api_route(p), "{p}");
        }
    }

    #[test]
    fn default_buffers_are_valid_for_tungstenite() {
        let b = WsBuffers::default();
        assert!(b.max_write > b.write);
        let c = ws_config(b);
        assert_eq!(c.read_buffer_size, b.read);
        assert_eq!(c.max_message_size, Some(1024 * 1024));
    }
}
