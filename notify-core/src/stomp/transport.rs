//! The WebSocket side of a STOMP session, shared by the HTTP adapters: sub-protocol
//! negotiation, the upgrade handshake, buffer sizes, and the messages exchanged with the
//! session.

use bytes::Bytes;

use crate::auth::bearer;
use crate::error::Error;
use crate::limits::ConnectionGuard;
use crate::service::NotifyService;

/// WebSocket sub-protocols we speak, preferred first.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// A message from the client, as the HTTP adapter received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message (one or more frames, or a heart-beat EOL).
    Text(String),
    /// A binary message (treated like text).
    Binary(Bytes),
    /// A WebSocket ping or pong: the peer is alive.
    Ping,
    /// The peer closed, or the connection failed.
    Close,
}

/// A message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text message carrying one frame or a heart-beat.
    Text(String),
    /// Close the WebSocket with a code and reason.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Short reason.
        reason: String,
    },
}

/// WebSocket buffer sizes for the adapters. tungstenite's defaults (128 KiB read buffer)
/// would cost more than 130 KB per idle session; these keep an idle session to a few KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsBuffers {
    /// Initial read buffer (grows for large frames).
    pub read: usize,
    /// Bytes buffered before writing to the socket (0: write each message at once).
    pub write: usize,
    /// Most bytes buffered for a client that does not read; past this the session ends.
    /// Must be larger than `write`.
    pub max_write: usize,
    /// Largest message accepted (larger than a STOMP frame may be, so an oversized frame
    /// gets a STOMP ERROR rather than a bare close).
    pub max_message: usize,
}

impl Default for WsBuffers {
    fn default() -> Self {
        WsBuffers {
            read: 256,
            write: 0,
            max_write: 4 * 1024 * 1024,
            max_message: 1024 * 1024,
        }
    }
}

/// What the adapter learned from the WebSocket handshake.
#[derive(Debug, Default)]
pub struct Handshake {
    /// A token from `?access_token=` or `Authorization: Bearer`.
    pub token: Option<String>,
    /// The connection slot (`NOTIFY_MAX_CONNECTIONS`) taken when the upgrade was accepted
    /// ([`crate::adapter::check_upgrade`]), so that a socket over the cap gets an HTTP 429
    /// before it is upgraded. When it is `None` (a transport that runs sessions without that
    /// check), the session takes a slot at CONNECT and refuses with a STOMP ERROR instead.
    pub connection: Option<ConnectionGuard>,
}

impl Handshake {
    /// A handshake that carried `token` (or none) and holds no connection slot yet.
    pub fn with_token(token: Option<String>) -> Self {
        Handshake {
            token,
            connection: None,
        }
    }
}

/// Picks our preferred sub-protocol among those the client offered
/// (`Sec-WebSocket-Protocol`), if any.
pub fn choose_subprotocol(offered: Option<&str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered?.split(',').map(str::trim).collect();
    SUBPROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// Checks a WebSocket upgrade request: the `Origin` against the allow-list, and collects the
/// token from the query or the `Authorization` header. The token is verified at CONNECT, so
/// a bad one gets a STOMP ERROR frame rather than an HTTP error.
pub fn handshake(
    service: &NotifyService,
    headers: &http::HeaderMap,
    query: Option<&str>,
) -> Result<Handshake, Error> {
    if let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        if !service.origin_allowed(origin) {
            return Err(Error::forbidden(format!("origin {origin} is not allowed")));
        }
    }
    let from_query = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(str::to_string);
    Ok(Handshake::with_token(from_query.or(from_header)))
}
