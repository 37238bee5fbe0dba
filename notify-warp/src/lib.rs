#![doc = include_str!("../README.md")]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::stream::BoxStream;
use futures::{future, Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, Method, Request, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use notify_core::adapter::{self, WEBSOCKET_ROUTE};
use notify_core::api::{self, ApiBody};
use notify_core::{Error, NotifyService};
use warp::filters::path::Peek;
use warp::reply::Response as WarpResponse;
use warp::{Filter, Rejection, Reply};

pub use notify_core::adapter::WsBuffers;
pub use notify_core::service::shutdown_on_signal;

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
    mounted(|path| path == WEBSOCKET_ROUTE)
        .and(with_service(service))
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::ext::optional::<OnUpgrade>())
        .map(
            move |_path: String,
                  service: Arc<NotifyService>,
                  method: Method,
                  headers: HeaderMap,
                  query: Option<String>,
                  on_upgrade: Option<OnUpgrade>| {
                into_warp(upgrade(
                    service, buffers, &method, &headers, query, on_upgrade,
                ))
            },
        )
}

/// The REST API, `POST /api/events`, `/api/stream`, health and metrics: every path of
/// [`notify_core::adapter::ROUTES`], answered by [`notify_core::api::handle`].
pub fn api(
    service: Arc<NotifyService>,
) -> impl Filter<Extract = (WarpResponse,), Error = Rejection> + Clone {
    mounted(adapter::is_route)
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

async fn api_handler(
    path: String,
    service: Arc<NotifyService>,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Option<BodyStream>,
) -> WarpResponse {
    // The path after the mount point, so the core answers the same wherever it is mounted.
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let uri = match uri.parse() {
        Ok(uri) => uri,
        Err(e) => {
            return into_warp(api::error_response(&Error::internal(format!(
                "request path {uri:?} does not parse again: {e}"
            ))))
        }
    };
    let Some(body) = body else {
        return into_warp(api::error_response(&Error::internal(
            "the request body was consumed by another filter",
        )));
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();
    into_warp(adapter::serve_api(&service, parts, body).await)
}

/// Checks the upgrade request, answers `101` and runs the session on the upgraded connection.
fn upgrade(
    service: Arc<NotifyService>,
    buffers: WsBuffers,
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    on_upgrade: Option<OnUpgrade>,
) -> Response<ApiBody> {
    let upgrade = match adapter::check_upgrade(&service, method, headers, query.as_deref()) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return *refusal,
    };
    let Some(on_upgrade) = on_upgrade else {
        return adapter::websocket_required(
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        );
    };
    let response = upgrade.switching_protocols();
    // The session task keeps only the handshake, not the rest of the request.
    let handshake = upgrade.handshake;
    let upgraded = async move { on_upgrade.await.map(TokioIo::new) };
    adapter::spawn_session(service, handshake, upgraded, buffers);
    response
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
