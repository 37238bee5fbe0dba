//! The JSON error answers the adapters give themselves, before a request reaches the API
//! (those of the API come from [`crate::api::error_response`]).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::api::ApiBody;

/// The contract's error body `{"error":{"code","message"}}` with `status`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<ApiBody> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut r = Response::new(ApiBody::Full(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The answer to a method other than GET or HEAD on the WebSocket route: 405 with `Allow`.
pub fn websocket_method_not_allowed() -> Response<ApiBody> {
    let mut r = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "use GET",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
    r
}

/// The answer to a request on the WebSocket route that is not a valid WebSocket upgrade:
/// 400 with `message` saying which part of the handshake is missing.
pub fn websocket_required(message: &str) -> Response<ApiBody> {
    json_error(StatusCode::BAD_REQUEST, "websocket_required", message)
}
