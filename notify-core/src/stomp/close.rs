//! How a STOMP session ends: the reasons, the ERROR frame and WebSocket close sent for each,
//! and the close metric.

use std::time::Duration;

use futures::{Sink, SinkExt};

use super::frame::{parse_all, Frame, FrameError, MAX_FRAME_BYTES};
use super::transport::Outbound;
use crate::limits::Refusal;
use crate::metrics;

/// Why a session ends.
pub(super) enum Close {
    /// ERROR frame, then close.
    Error {
        message: String,
        detail: String,
        receipt: Option<String>,
        code: u16,
        reason: &'static str,
    },
    /// Clean close (DISCONNECT, or the peer went away).
    Done { reason: &'static str, code: u16 },
    /// The client cannot keep up.
    SlowConsumer,
}

pub(super) fn error(
    message: impl Into<String>,
    detail: impl Into<String>,
    frame: Option<&Frame>,
) -> Close {
    Close::Error {
        message: message.into(),
        detail: detail.into(),
        receipt: frame.and_then(|f| f.get("receipt")).map(str::to_string),
        code: 1008,
        reason: "error",
    }
}

/// The ERROR for a refusal by a limit: `message: limit exceeded: <variable>`.
pub(super) fn limit(refusal: Refusal, frame: Option<&Frame>) -> Close {
    Close::Error {
        message: refusal.stomp_message(),
        detail: format!(
            "over the limit set by {}; retry in {} s",
            refusal.limit,
            crate::limits::retry_after_secs(refusal.retry_after)
        ),
        receipt: frame.and_then(|f| f.get("receipt")).map(str::to_string),
        code: 1013,
        reason: "limit",
    }
}

/// Why a write to the client failed.
pub(super) enum WriteFail {
    Closed,
    Slow,
}

pub(super) fn parse_frames(bytes: &[u8]) -> Result<Vec<Frame>, Close> {
    parse_all(bytes).map_err(|e| match e {
        FrameError::TooLarge => Close::Error {
            message: "frame too large".into(),
            detail: format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
            receipt: None,
            code: 1009,
            reason: "error",
        },
        other => Close::Error {
            message: "malformed frame".into(),
            detail: other.to_string(),
            receipt: None,
            code: 1002,
            reason: "error",
        },
    })
}

/// Writes an ERROR frame and closes, or just closes.
pub(super) async fn finish<O>(out: &mut O, close: Close, timeout: Duration)
where
    O: Sink<Outbound> + Unpin,
{
    let (frame, code, reason_text, metric) = match close {
        Close::Error {
            message,
            detail,
            receipt,
            code,
            reason,
        } => {
            let mut f = Frame::new("ERROR")
                .header("message", message.clone())
                .header("content-type", "text/plain");
            if let Some(r) = receipt {
                f = f.header("receipt-id", r);
            }
            (Some(f.body(detail.into_bytes())), code, message, reason)
        }
        Close::SlowConsumer => (
            Some(
                Frame::new("ERROR")
                    .header("message", "slow consumer")
                    .header("content-type", "text/plain")
                    .body(
                        b"the session's outgoing queue overflowed; reconnect and resume with the `since` header"
                            .to_vec(),
                    ),
            ),
            1013,
            "slow consumer".to_string(),
            "slow_consumer",
        ),
        Close::Done { reason, code } => (None, code, String::new(), reason),
    };
    metrics::session_closed(metric);
    let _ = tokio::time::timeout(timeout, async {
        if let Some(f) = frame {
            out.send(Outbound::Text(f.encode())).await?;
        }
        out.send(Outbound::Close {
            code,
            reason: reason_text.chars().take(100).collect(),
        })
        .await
    })
    .await;
}

pub(super) fn fail_close(fail: WriteFail) -> Close {
    match fail {
        WriteFail::Slow => Close::SlowConsumer,
        WriteFail::Closed => Close::Done {
            reason: "client",
            code: 1000,
        },
    }
}
