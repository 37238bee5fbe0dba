//! # notify-axum
//!
//! Serves a [`NotifyService`] with axum: STOMP over WebSocket at `/notify`, SSE at
//! `/api/stream`, the REST API, `POST /api/events`, `/health/live`, `/health/ready` and
//! `/metrics`, with CORS, origin checks, JSON errors and body limits, as in the contract.
//! Everything but the HTTP glue (sessions, auth, routing, inbox, SSE) lives in `notify-core`.
//!
//! Mount it next to your own routes:
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use notify_core::{auth::Authenticator, MemorySource, MemoryStore, NotifyService, Pipeline};
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
//! let app = Router::new()
//!     .route("/", get(|| async { "my app" }))
//!     .merge(notify_axum::router(service.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(notify_axum::shutdown_on_signal(service.clone()))
//!     .await?;
//! pipeline.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::{SinkExt, StreamExt};
use notify_core::api::{self, ApiBody};
pub use notify_core::stomp::WsBuffers;
use notify_core::stomp::{self, Inbound, Outbound};
use notify_core::{Error, NotifyService};

pub use notify_core::service::shutdown_on_signal;

/// All routes of the contract, with default WebSocket buffers.
pub fn router(service: Arc<NotifyService>) -> Router {
    router_with(service, WsBuffers::default())
}

/// All routes of the contract.
pub fn router_with(service: Arc<NotifyService>, buffers: WsBuffers) -> Router {
    let mut router = Router::new().route(
        "/notify",
        get(move |state, ws, headers, uri| ws_handler(state, ws, headers, uri, buffers))
            .fallback(|| async {
                let body = serde_json::json!({"error": {"code": "method_not_allowed", "message": "use GET"}});
                (
                    StatusCode::METHOD_NOT_ALLOWED,
                    [
                        (http::header::CONTENT_TYPE, "application/json"),
                        (http::header::ALLOW, "GET,HEAD"),
                    ],
                    body.to_string(),
                )
            }),
    );
    for path in api::ROUTES {
        router = router.route(path, any(api_handler));
    }
    router.with_state(service)
}

async fn api_handler(State(service): State<Arc<NotifyService>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let limit = service.config().max_body_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return into_axum(api::error_response(&Error::PayloadTooLarge {
                what: "body",
                limit,
            }))
        }
    };
    let response = api::handle(&service, Request::from_parts(parts, body)).await;
    into_axum(response)
}

fn into_axum(response: http::Response<ApiBody>) -> Response {
    response
        .map(|body| match body {
            ApiBody::Full(bytes) => Body::from(bytes),
            ApiBody::Stream(stream) => Body::from_stream(stream.map(Ok::<_, Infallible>)),
        })
        .into_response()
}

async fn ws_handler(
    State(service): State<Arc<NotifyService>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    headers: HeaderMap,
    uri: Uri,
    buffers: WsBuffers,
) -> Response {
    let handshake = match stomp::handshake(&service, &headers, uri.query()) {
        Ok(h) => h,
        Err(e) => return into_axum(api::error_response(&e)),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let body = serde_json::json!({"error": {"code": "websocket_required", "message": rejection.body_text()}});
            return (
                StatusCode::BAD_REQUEST,
                [(http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    };
    ws.protocols(stomp::SUBPROTOCOLS)
        .read_buffer_size(buffers.read)
        .write_buffer_size(buffers.write)
        .max_write_buffer_size(buffers.max_write)
        .max_message_size(buffers.max_message)
        .max_frame_size(buffers.max_message)
        .on_upgrade(move |socket| serve_socket(service, handshake, socket))
}

async fn serve_socket(service: Arc<NotifyService>, handshake: stomp::Handshake, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let incoming = stream.map(|msg| match msg {
        Ok(Message::Text(t)) => Inbound::Text(t.as_str().to_owned()),
        Ok(Message::Binary(b)) => Inbound::Binary(b),
        Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => Inbound::Ping,
        Ok(Message::Close(_)) | Err(_) => Inbound::Close,
    });
    let outgoing = sink.with(|out: Outbound| {
        std::future::ready(Ok::<_, axum::Error>(match out {
            Outbound::Text(t) => Message::Text(t.into()),
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        }))
    });
    stomp::run_session(service, handshake, Box::pin(incoming), Box::pin(outgoing)).await;
}
