//! Request bodies: read up to the service's limit, then answered by the API.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::request::Parts;
use http::{Request, Response};

use crate::api::{self, ApiBody};
use crate::error::Error;
use crate::service::NotifyService;

/// Reads a body up to `limit` bytes. Any failure to read it (over the limit, or the client
/// went away) is a 413, as axum's `to_bytes` reports both the same way.
pub async fn read_body<S, B, E>(body: S, limit: usize) -> Result<Bytes, Error>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    let too_large = || Error::PayloadTooLarge {
        what: "body",
        limit,
    };
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| too_large())?;
        if buf.len() + chunk.remaining() > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            buf.put_slice(part);
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

/// Answers one API request whose body is still a stream: reads it up to
/// [`crate::service::ServiceConfig::max_body_bytes`] (413 past that) and hands the request
/// to [`api::handle`].
pub async fn serve_api<S, B, E>(
    service: &Arc<NotifyService>,
    parts: Parts,
    body: S,
) -> Response<ApiBody>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    match read_body(body, service.config().max_body_bytes).await {
        Ok(body) => api::handle(service, Request::from_parts(parts, body)).await,
        Err(e) => api::error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_up_to_the_limit() {
        let chunks = |parts: &[&'static [u8]]| {
            futures::stream::iter(
                parts
                    .iter()
                    .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p)))
                    .collect::<Vec<_>>(),
            )
        };
        let body = read_body(chunks(&[b"ab", b"cd"]), 4).await.unwrap();
        assert_eq!(&body[..], b"abcd");
        let err = read_body(chunks(&[b"ab", b"cde"]), 4).await.unwrap_err();
        assert!(matches!(err, Error::PayloadTooLarge { limit: 4, .. }));
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Err(std::io::Error::other("reset")),
        ]);
        assert!(matches!(
            read_body(failing, 4).await,
            Err(Error::PayloadTooLarge { .. })
        ));
    }
}
