//! A STOMP client session the way the load generators open and read one: a WebSocket from a
//! chosen loopback source address, the user's own HS256 token, CONNECT and a SUBSCRIBE to the
//! user queue confirmed by its RECEIPT; then every MESSAGE frame's latency until the stop.
//! Shared by `loadgen` and `fleet`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::clock::now_us;
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

/// What a session received from its RECEIPT until the stop or its end.
#[derive(Debug, Default)]
pub struct Received {
    /// (event sequence number, latency in µs) per MESSAGE frame of this run.
    pub arrivals: Vec<(u32, u64)>,
    /// MESSAGE frames not from this run.
    pub foreign: u64,
    /// Why it ended before the stop (server closed, ERROR frame, I/O error); `None` if the
    /// stop ended it.
    pub dropped: Option<String>,
}

/// Reads `ws` until `stop` changes or the session ends. A MESSAGE frame whose event id is
/// `prefix` followed by a sequence number is an arrival of this run: its latency is the
/// arrival time minus the event's `data.sent_at_us`, and `on_arrival` gets the arrival time
/// (Unix µs) for the caller's live counters. Does not close `ws`.
pub async fn receive(
    ws: &mut Ws,
    prefix: &str,
    stop: &mut watch::Receiver<bool>,
    mut on_arrival: impl FnMut(i64),
) -> Received {
    let mut out = Received::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    // One WebSocket message may carry several STOMP frames.
                    let mut error = None;
                    for text in t.as_str().split_inclusive('\0') {
                        if let Some(a) = scan::message(text) {
                            let arrived = now_us();
                            match a.event_id.strip_prefix(prefix).and_then(|s| s.parse::<u32>().ok()) {
                                Some(seq) => {
                                    out.arrivals.push((seq, arrived.saturating_sub(a.sent_at_us).max(0) as u64));
                                    on_arrival(arrived);
                                }
                                None => out.foreign += 1,
                            }
                        } else if scan::command(text) == "ERROR" {
                            error = Some(format!("ERROR frame: {}", scan::header(text, "message").unwrap_or("?")));
                        } else if scan::command(text) == "MESSAGE" {
                            // No event id or `sent_at_us`: not an event this run sent.
                            out.foreign += 1;
                        }
                    }
                    if error.is_some() {
                        out.dropped = error;
                        break;
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    out.dropped = Some(format!("closed by server: {}", c.map(|c| format!("{} {}", c.code, c.reason)).unwrap_or_default()));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => { out.dropped = Some(format!("error: {e}")); break; }
                None => { out.dropped = Some("connection ended".into()); break; }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use notify_core::stomp::frame::encode_message;
    use notify_core::{Audience, Push};
    use tokio::net::TcpListener;

    /// A MESSAGE frame for event `id`, stamped `sent_at_us` unless `None`.
    fn message(id: &str, sent_at_us: Option<i64>) -> String {
        let mut n = fixtures::notification(Audience::User("u0".into()));
        n.event_id = id.into();
        if let Some(t) = sent_at_us {
            n.data
                .as_mut()
                .unwrap()
                .insert("sent_at_us".into(), t.into());
        }
        let push = Push::new(n, chrono::Utc::now());
        encode_message("/user/queue/notifications", "sub-0", "n_1", &push.json)
    }

    /// A client WebSocket to a local server that sends `texts` and then holds the connection.
    async fn serve(texts: Vec<String>) -> Ws {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            for t in texts {
                ws.send(Message::text(t)).await.unwrap();
            }
            // Keep the connection until the client goes.
            while ws.next().await.is_some() {}
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
            .await
            .unwrap();
        ws
    }

    #[tokio::test]
    async fn counts_this_runs_arrivals_and_foreign_frames_until_an_error() {
        let sent = now_us() - 1_000;
        // Two frames in one WebSocket message, as the server may batch them.
        let batch = format!(
            "{}{}",
            message("run-7", Some(sent)),
            message("old-1", Some(sent))
        );
        let mut ws = serve(vec![
            batch,
            message("run-8", None),
            "ERROR\nmessage:boom\n\n\0".into(),
            message("run-9", Some(sent)),
        ])
        .await;
        let (_stop_tx, mut stop) = watch::channel(false);
        let mut seen = Vec::new();
        let got = receive(&mut ws, "run-", &mut stop, |at| seen.push(at)).await;
        assert_eq!(got.arrivals.len(), 1, "{got:?}");
        assert_eq!(got.arrivals[0].0, 7);
        assert!(got.arrivals[0].1 >= 1_000, "{got:?}");
        assert_eq!(seen.len(), 1);
        // Another run's event and one without `sent_at_us`.
        assert_eq!(got.foreign, 2);
        assert_eq!(got.dropped.as_deref(), Some("ERROR frame: boom"));
    }

    #[tokio::test]
    async fn the_stop_ends_it_without_a_drop() {
        let mut ws = serve(Vec::new()).await;
        let (stop_tx, mut stop) = watch::channel(false);
        stop_tx.send(true).unwrap();
        let got = receive(&mut ws, "run-", &mut stop, |_| {}).await;
        assert!(got.arrivals.is_empty() && got.foreign == 0 && got.dropped.is_none());
    }
}
