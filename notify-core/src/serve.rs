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
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
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

/// Answers a socket over the cap with the canned 429 and closes it, without reading more
/// than a little of its request.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(refusal().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

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
