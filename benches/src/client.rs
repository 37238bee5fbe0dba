//! A STOMP client session the way the load generators open one: a WebSocket from a chosen
//! loopback source address, the user's own HS256 token, CONNECT and a SUBSCRIBE to the user
//! queue confirmed by its RECEIPT. Shared by `loadgen` and `fleet`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::scan;

/// A client's WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Where and as whom session `i` connects: user `u<i>`, in group `g<i mod groups>`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The server's address.
    pub server: SocketAddr,
    /// The `Host` of the WebSocket request.
    pub host: &'a str,
    /// The loopback source address to bind, if any (spreads sockets over more ports).
    pub source: Option<Ipv4Addr>,
    /// The server's HS256 secret, to sign the session's token.
    pub secret: &'a str,
    /// Number of groups.
    pub groups: usize,
}

/// Small buffers: tungstenite's defaults (128 KiB read buffer) would cost GBs at 19k sessions.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Opens session `i`: connects, CONNECTs with `heart-beat:0,0` and subscribes to
/// `/user/queue/notifications`; ready once the RECEIPT arrived.
pub async fn open(i: usize, to: Target<'_>) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = to.source {
        socket
            .bind(SocketAddr::new(IpAddr::V4(ip), 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let tcp = socket
        .connect(to.server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let user = format!("u{i}");
    let groups = vec![format!("g{}", i % to.groups.max(1))];
    let token = notify_core::auth::sign_hs256(to.secret.as_bytes(), &user, &groups, 4 * 3600);
    let mut request = format!("ws://{}/notify?access_token={token}", to.host)
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v12.stomp"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    ws.send(Message::text(
        "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0",
    ))
    .await
    .map_err(|e| format!("send CONNECT: {e}"))?;
    expect(&mut ws, "CONNECTED").await?;
    ws.send(Message::text(
        "SUBSCRIBE\nid:sub-0\ndestination:/user/queue/notifications\nreceipt:r-0\n\n\0",
    ))
    .await
    .map_err(|e| format!("send SUBSCRIBE: {e}"))?;
    expect(&mut ws, "RECEIPT").await?;
    Ok(ws)
}

/// Reads until a frame with `command` arrives; an ERROR frame or a close is a failure.
pub async fn expect(ws: &mut Ws, command: &str) -> Result<(), String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match scan::command(t.as_str()) {
                "" => continue,
                c if c == command => return Ok(()),
                "ERROR" => {
                    return Err(format!(
                        "ERROR frame: {}",
                        scan::header(t.as_str(), "message").unwrap_or("?")
                    ))
                }
                other => return Err(format!("expected {command}, got {other}")),
            },
            Some(Ok(Message::Close(c))) => return Err(format!("closed before {command}: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("waiting for {command}: {e}")),
            None => return Err(format!("connection ended before {command}")),
        }
    }
}
