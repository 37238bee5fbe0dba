//! The kit the HTTP adapters (`notify-axum`, `notify-warp`) share, so that each adapter is
//! only glue between its framework's types and these pieces:
//!
//! - the route table: [`ROUTES`] and [`WEBSOCKET_ROUTE`], with [`is_route`] matching a path
//!   against it exactly as axum's router does;
//! - the request body, read up to the service's limit ([`read_body`]), and the API answer for
//!   a request ([`serve_api`]);
//! - the error bodies the adapters answer themselves ([`json_error`],
//!   [`websocket_method_not_allowed`], [`websocket_required`]);
//! - the WebSocket upgrade: every check of the handshake ([`check_upgrade`]), the buffer
//!   settings ([`WsBuffers`]) and, with the `tungstenite` feature, the `101` answer, the
//!   tungstenite configuration and the message mapping that runs a STOMP session over an
//!   upgraded connection.

mod body;
mod responses;
mod routes;
#[cfg(feature = "tungstenite")]
mod tungstenite;
mod upgrade;

pub use crate::stomp::WsBuffers;
pub use body::{read_body, serve_api};
pub use responses::{json_error, websocket_method_not_allowed, websocket_required};
pub use routes::{is_route, ROUTES, WEBSOCKET_ROUTE};
#[cfg(feature = "tungstenite")]
pub use tungstenite::{spawn_session, websocket_config};
pub use upgrade::{check_upgrade, Upgrade};
