//! A hardened HTTP/1.1 server loop for any tower service (an axum `Router`, a
//! `warp::service(filter)`), with WebSocket upgrades (feature `server`).
//!
//! What `axum::serve` and `warp::serve` leave open, this closes:
//! - **slowloris**: a client must finish each request's headers within
//!   [`ServeLimits::header_read_timeout`], or the connection is closed;
//! - **file-descriptor exhaustion**: at most [`ServeLimits::max_tcp_connections`] sockets
//!   are open at once (WebSockets included, for their whole life); one more is answered with
//!   a 429 (`rate_limited`, field `NOTIFY_MAX_CONNECTIONS`) and closed, so `accept` never
//!   fails for want of descriptors.
//!
//! Embedders who serve the routes with their own server should set the same two limits
//! there (hyper: `http1::Builder::timer` + `header_read_timeout`).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::limits::{default_max_connections, MAX_CONNECTIONS};

/// Limits of the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a request's complete headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Most open client sockets, WebSockets included (default: `NOTIFY_MAX_CONNECTIONS`'s
    /// default plus room for plain requests, within the open-file limit).
    pub max_tcp_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            max_tcp_connections: default_max_tcp_connections(),
        }
    }
}

/// The default socket cap: the open-file limit less a small reserve for the listener, the
/// backends and the refusal socket itself; room above `NOTIFY_MAX_CONNECTIONS` for REST.
pub fn default_max_tcp_connections() -> usize {
    default_max_connections() + (crate::limits::FD_RESERVE as usize) / 2
}

/// The canned answer to a socket over [`ServeLimits::max_tcp_connections`].
fn refusal() -> String {
    let body = format!(
        r#"{{"error":{{"code":"rate_limited","message":"limit exceeded: {MAX_CONNECTIONS}","field":"{MAX_CONNECTIONS}"}}}}"#
    );
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Serves `service` on `listener` until `shutdown` completes, then stops accepting, lets
/// open requests finish and waits for every connection (upgraded ones included) to close.
/// Bound the wait with a timeout of your own.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = Arc::new(Semaphore::new(limits.max_tcp_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the connection cap
                    // keeps this rare.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!(crate::limits::LIMIT_REFUSALS_TOTAL, "limit" => MAX_CONNECTIONS)
                .increment(1);
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = TowerToHyperService::new(service.clone());
        let mut stop = stop_rx.clone();
        let io = TokioIo::new(Counted {
            stream,
            _permit: permit,
        });
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every socket, upgraded ones included, holds a permit until it closes.
    let all = u32::try_from(limits.max_tcp_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Answers a socket over the cap with the canned 429 and closes it, reading no more than
/// [`REFUSAL_READ_BYTES`] of its request.
///
/// The request is read (up to the end of its head) before answering and the socket drained
/// after: closing a socket with unread input sends a TCP reset, and a reset that overtakes
/// the 429 makes the client report "connection reset" instead of the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut buf = [0u8; 1024];
        let mut seen = Vec::new();
        while seen.len() < REFUSAL_READ_BYTES && !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                // Closed, failed, or silent: answer anyway.
                _ => break,
            }
        }
        let _ = stream.write_all(refusal().as_bytes()).await;
        let _ = stream.shutdown().await;
        // Until the client closes its side (it has read the answer), or the timeout.
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Most request bytes read from a refused socket before answering it.
const REFUSAL_READ_BYTES: usize = 8 * 1024;

/// A client socket that holds a connection slot until it is dropped, after an upgrade too.
struct Counted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Answers every request with `200 ok`.
    #[derive(Clone)]
    struct Ok200;

    impl tower_service::Service<http::Request<Incoming>> for Ok200 {
        type Response = http::Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Incoming>) -> Self::Future {
            std::future::ready(Ok(http::Response::new("ok".to_string())))
        }
    }

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .expect("an answer in time")
            .expect("the answer, not a reset");
        out
    }

    #[tokio::test]
    async fn a_socket_over_the_cap_gets_the_whole_429_and_slots_come_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_tcp_connections: 1,
        };
        tokio::spawn(serve(listener, Ok200, limits, std::future::pending()));
        let held = TcpStream::connect(addr).await.unwrap();
        // The server must have accepted `held` before the next socket arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..20 {
            let answer = get(addr).await;
            assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
            assert!(answer.contains("retry-after: 5\r\n"), "{answer}");
            assert!(
                answer.ends_with(r#""code":"rate_limited","message":"limit exceeded: NOTIFY_MAX_CONNECTIONS","field":"NOTIFY_MAX_CONNECTIONS"}}"#),
                "{answer}"
            );
        }
        drop(held);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let answer = get(addr).await;
            if answer.starts_with("HTTP/1.1 200 ") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{answer}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
