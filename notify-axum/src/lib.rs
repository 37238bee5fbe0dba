#![doc = include_str!("../README.md")]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::{SinkExt, StreamExt};
use notify_core::adapter::{self, ROUTES, WEBSOCKET_ROUTE};
use notify_core::api::ApiBody;
use notify_core::stomp::{self, Handshake, Inbound, Outbound};
use notify_core::NotifyService;

pub use notify_core::adapter::WsBuffers;
pub use notify_core::service::shutdown_on_signal;

/// All routes of the contract, with default WebSocket buffers.
pub fn router(service: Arc<NotifyService>) -> Router {
    router_with(service, WsBuffers::default())
}

/// All routes of the contract.
pub fn router_with(service: Arc<NotifyService>, buffers: WsBuffers) -> Router {
    let websocket = get(move |state, method, headers, uri, ws| {
        ws_handler(state, method, headers, uri, ws, buffers)
    })
    .fallback(|| async { into_axum(adapter::websocket_method_not_allowed()) });
    let mut router = Router::new().route(WEBSOCKET_ROUTE, websocket);
    for path in ROUTES {
        router = router.route(path, any(api_handler));
    }
    router.with_state(service)
}

async fn api_handler(State(service): State<Arc<NotifyService>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    into_axum(adapter::serve_api(&service, parts, body.into_data_stream()).await)
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
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    buffers: WsBuffers,
) -> Response {
    let upgrade = match adapter::check_upgrade(&service, &method, &headers, uri.query()) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return into_axum(*refusal),
    };
    // The core's checks passed; axum may still refuse (no upgrade state on the connection).
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return into_axum(adapter::websocket_required(&rejection.body_text())),
    };
    // The session task keeps only the handshake, not the rest of the request.
    let handshake = upgrade.handshake;
    ws.protocols(stomp::SUBPROTOCOLS)
        .read_buffer_size(buffers.read)
        .write_buffer_size(buffers.write)
        .max_write_buffer_size(buffers.max_write)
        .max_message_size(buffers.max_message)
        .max_frame_size(buffers.max_message)
        .on_upgrade(move |socket| serve_socket(service, handshake, socket))
}

/// Maps axum's WebSocket messages to the session's and back.
async fn serve_socket(service: Arc<NotifyService>, handshake: Handshake, socket: WebSocket) {
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
