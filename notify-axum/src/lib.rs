#![doc = include_str!("../README.md")]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use notify_core::adapter::{self, ROUTES, WEBSOCKET_ROUTE};
use notify_core::api::ApiBody;
use notify_core::NotifyService;

pub use notify_core::adapter::WsBuffers;
pub use notify_core::service::shutdown_on_signal;

/// All routes of the contract, with default WebSocket buffers.
pub fn router(service: Arc<NotifyService>) -> Router {
    router_with(service, WsBuffers::default())
}

/// All routes of the contract.
pub fn router_with(service: Arc<NotifyService>, buffers: WsBuffers) -> Router {
    let websocket = get(move |state, request| ws_handler(state, request, buffers))
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
    mut request: Request,
    buffers: WsBuffers,
) -> Response {
    let upgrade = match adapter::check_upgrade(
        &service,
        request.method(),
        request.headers(),
        request.uri().query(),
    ) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return into_axum(*refusal),
    };
    // The core's checks passed; the connection must still be upgradable (HTTP/1.1 served
    // with upgrades), with axum's message when it is not.
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return into_axum(adapter::websocket_required(
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        ));
    };
    let response = upgrade.switching_protocols();
    // The session task keeps only the handshake, not the rest of the request.
    let handshake = upgrade.handshake;
    drop(request);
    let upgraded = async move { on_upgrade.await.map(TokioIo::new) };
    adapter::spawn_session(service, handshake, upgraded, buffers);
    into_axum(response)
}
