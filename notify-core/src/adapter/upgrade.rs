//! The checks of a WebSocket upgrade request on [`super::WEBSOCKET_ROUTE`], in the order both
//! adapters apply them, with axum's messages for a request that is not a WebSocket handshake.

use http::{header, HeaderMap, HeaderValue, Method, Response};

use super::responses::{websocket_method_not_allowed, websocket_required};
use crate::api::{self, ApiBody};
use crate::error::Error;
use crate::service::NotifyService;
use crate::stomp::{self, Handshake};

/// A WebSocket upgrade request that passed every check: what the session needs from it, and
/// what the `101 Switching Protocols` answer carries.
#[derive(Debug)]
pub struct Upgrade {
    /// What the STOMP session learned from the handshake (the token, if any), with the
    /// connection slot the upgrade holds for the session.
    pub handshake: Handshake,
    /// The sub-protocol chosen among every `Sec-WebSocket-Protocol` header the client sent.
    pub protocol: Option<&'static str>,
    /// The client's `Sec-WebSocket-Key`, from which the `Sec-WebSocket-Accept` answer derives.
    /// An own copy: a value taken from the request's `HeaderMap` shares the server's whole
    /// HTTP/1 read buffer (hyper: 8 KiB), which would stay allocated for as long as it lives.
    pub key: HeaderValue,
}

/// Checks a request on the WebSocket route, in this order: the method (405 unless GET or
/// HEAD), the origin and token sources ([`stomp::handshake`]: 403 for a foreign origin),
/// the upgrade headers (400 `websocket_required`, with the same messages as axum's
/// `WebSocketUpgrade` extractor), then the instance's connection cap: over
/// `NOTIFY_MAX_CONNECTIONS` the answer is 429 with `Retry-After` and code `rate_limited`
/// (counted in `notify_limit_refusals_total`), before anything is upgraded. The slot taken
/// travels in [`Upgrade::handshake`] and is freed when the session ends (or the upgrade
/// fails). A bad token is not refused here: the session answers it with a STOMP ERROR
/// frame at CONNECT. A refusal is the answer to send (boxed: it is large and rare).
pub fn check_upgrade(
    service: &NotifyService,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Upgrade, Box<Response<ApiBody>>> {
    if method != Method::GET && method != Method::HEAD {
        return Err(Box::new(websocket_method_not_allowed()));
    }
    let mut handshake =
        stomp::handshake(service, headers, query).map_err(|e| Box::new(api::error_response(&e)))?;
    let key = upgrade_key(method, headers).map_err(|m| Box::new(websocket_required(m)))?;
    // Last, so that only a real upgrade counts against the cap.
    let slot = service
        .limits
        .connection()
        .map_err(|r| Box::new(api::error_response(&Error::from(r))))?;
    handshake.connection = Some(slot);
    // Every `Sec-WebSocket-Protocol` header counts, not only the first.
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Ok(Upgrade {
        handshake,
        protocol: stomp::choose_subprotocol(Some(&offered)),
        key: own_copy(key),
    })
}

/// `value` in an allocation of its own, not a slice of the request's read buffer.
fn own_copy(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

/// The checks axum's `WebSocketUpgrade` extractor makes on an HTTP/1.1 upgrade, with its
/// messages, so both adapters refuse a non-WebSocket request the same way.
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
