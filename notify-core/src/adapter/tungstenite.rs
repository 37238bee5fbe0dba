//! Running a STOMP session over a connection upgraded by hand, with tungstenite. Both
//! adapters use it rather than their framework's WebSocket (warp's `Ws` cannot set
//! tungstenite's buffer sizes; axum's splits the socket and wraps it in a task of its own):
//! what an idle session costs is then decided here, in one place.

use bytes::Bytes;
use futures::{ready, Sink, Stream};
use http::{header, HeaderValue, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::Upgrade;
use crate::api::ApiBody;
use crate::service::NotifyService;
use crate::stomp::{self, Handshake, Inbound, Outbound, WsBuffers};

/// tungstenite's configuration for `buffers`.
pub fn websocket_config(b: WsBuffers) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(b.read)
        .write_buffer_size(b.write)
        .max_write_buffer_size(b.max_write)
        .max_message_size(Some(b.max_message))
        .max_frame_size(Some(b.max_message))
}

impl Upgrade {
    /// The `101 Switching Protocols` answer: the accept key and the chosen sub-protocol.
    pub fn switching_protocols(&self) -> Response<ApiBody> {
        let mut response = Response::new(ApiBody::Full(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        // Base64 of a SHA-1 digest: always a valid header value.
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(p) = self.protocol {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
        }
        response
    }
}

/// Spawns the STOMP session of an upgrade answered with [`Upgrade::switching_protocols`]:
/// `upgraded` resolves to the connection once the server switched it to the WebSocket
/// protocol (hyper's `OnUpgrade`, wrapped for tokio's I/O traits). The task keeps only the
/// `handshake` of the [`Upgrade`]: the rest of the upgrade request has no business living
/// as long as the session does.
pub fn spawn_session<F, S, E>(
    service: Arc<NotifyService>,
    handshake: Handshake,
    upgraded: F,
    buffers: WsBuffers,
) where
    F: Future<Output = Result<S, E>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: std::fmt::Display,
{
    let socket = async move {
        let io = match upgraded.await {
            Ok(io) => io,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return None;
            }
        };
        let config = Some(websocket_config(buffers));
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, config).await;
        Some(StompSocket(ws))
    };
    tokio::spawn(stomp::run_socket_from(service, handshake, socket));
}

/// A tungstenite WebSocket as the session's socket: messages mapped to [`Inbound`] and from
/// [`Outbound`], without splitting it (a split would cost a shared lock per session).
struct StompSocket<S>(WebSocketStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for StompSocket<S> {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            let msg = match ready!(Pin::new(&mut self.0).poll_next(cx)) {
                Some(msg) => msg,
                None => return Poll::Ready(None),
            };
            return Poll::Ready(Some(match msg {
                Ok(Message::Text(t)) => Inbound::Text(t.as_str().to_owned()),
                Ok(Message::Binary(b)) => Inbound::Binary(b),
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => Inbound::Ping,
                // Raw frames are never yielded when reading; axum skips them too.
                Ok(Message::Frame(_)) => continue,
                Ok(Message::Close(_)) | Err(_) => Inbound::Close,
            }));
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outbound> for StompSocket<S> {
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, out: Outbound) -> Result<(), Self::Error> {
        let msg = match out {
            Outbound::Text(t) => Message::Text(t.into()),
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        };
        Pin::new(&mut self.0).start_send(msg)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_buffers_are_valid_for_tungstenite() {
        let b = WsBuffers::default();
        assert!(b.max_write > b.write);
        let c = websocket_config(b);
        assert_eq!(c.read_buffer_size, b.read);
        assert_eq!(c.max_message_size, Some(1024 * 1024));
    }

    /// What an idle session costs is mostly its task's future (BENCHMARKS.md, issue #14):
    /// it must not grow back to the ~2.9 KB it had when the opening and the closing were
    /// states of the same future. Sizes differ by compiler and profile, hence the margin.
    #[tokio::test]
    async fn an_idle_sessions_future_stays_small() {
        let (_source, publisher) = crate::MemorySource::new(16);
        let service = NotifyService::builder(
            Arc::new(crate::store::MemoryStore::new()),
            Arc::new(publisher),
            crate::auth::Authenticator::hs256(b"size"),
        )
        .build();
        let (io, _peer) = tokio::io::duplex(64);
        let socket = async move {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            Some(StompSocket(ws))
        };
        let session = stomp::run_socket_from(service, Handshake::default(), socket);
        let size = std::mem::size_of_val(&session);
        assert!(size <= 1280, "a session's future is {size} bytes");
    }
}
