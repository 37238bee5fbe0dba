//! The start of a STOMP session: waiting for CONNECT, then checking its version and
//! token and negotiating heart-beats.

use std::time::Duration;

use futures::{Stream, StreamExt};

use super::close::{error, parse_frames, Close};
use super::frame::Frame;
use super::transport::{Handshake, Inbound};
use crate::auth::{bearer, Principal};
use crate::service::NotifyService;

/// Most bytes a socket may send before its CONNECT frame: a CONNECT with a token fits in a
/// few KiB; an unauthenticated client gets no more than one frame's worth.
pub const MAX_PRE_CONNECT_BYTES: usize = 64 * 1024;
/// Most WebSocket messages (heart-beats, pings) a socket may send before its CONNECT frame.
pub const MAX_PRE_CONNECT_MESSAGES: usize = 16;
/// Longest heart-beat interval a client may ask for; larger values are clamped (they could
/// only overflow timers, and a peer that silent is gone anyway).
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);

/// Waits for the first message that holds frames (skipping heart-beats), within the
/// pre-CONNECT budget. Returns all of that message's frames, CONNECT first: the ones that
/// follow it are handled in order once the session is up.
pub(super) async fn first_frames<I>(incoming: &mut I) -> Result<Option<Vec<Frame>>, Close>
where
    I: Stream<Item = Inbound> + Unpin,
{
    let (mut bytes_seen, mut messages) = (0usize, 0usize);
    loop {
        let bytes: Vec<u8> = match incoming.next().await {
            None | Some(Inbound::Close) => return Ok(None),
            Some(Inbound::Ping) => Vec::new(),
            Some(Inbound::Text(t)) => t.into_bytes(),
            Some(Inbound::Binary(b)) => b.to_vec(),
        };
        bytes_seen = bytes_seen.saturating_add(bytes.len());
        messages += 1;
        if bytes_seen > MAX_PRE_CONNECT_BYTES || messages > MAX_PRE_CONNECT_MESSAGES {
            return Err(error(
                "CONNECT expected",
                format!(
                    "at most {MAX_PRE_CONNECT_MESSAGES} messages and {MAX_PRE_CONNECT_BYTES} bytes before CONNECT"
                ),
                None,
            ));
        }
        let frames = parse_frames(&bytes)?;
        if !frames.is_empty() {
            return Ok(Some(frames));
        }
    }
}

/// Validates CONNECT: version, token, heart-beats. Returns the principal, the CONNECTED
/// frame and the negotiated send and receive intervals.
#[allow(clippy::type_complexity)]
pub(super) fn connect_frame(
    service: &NotifyService,
    handshake: &Handshake,
    frame: &Frame,
) -> Result<(Principal, Frame, Option<Duration>, Option<Duration>), Close> {
    if frame.command != "CONNECT" && frame.command != "STOMP" {
        return Err(error(
            "CONNECT expected",
            format!(
                "the first frame must be CONNECT or STOMP, got {}",
                frame.command
            ),
            Some(frame),
        ));
    }
    let accepted = frame.get("accept-version").unwrap_or("1.0");
    let version = ["1.2", "1.1", "1.0"]
        .into_iter()
        .find(|v| accepted.split(',').any(|a| a.trim() == *v))
        .ok_or_else(|| {
            error(
                "unsupported version",
                format!("supported versions are 1.2, 1.1, 1.0; client accepts {accepted}"),
                Some(frame),
            )
        })?;
    let token = frame
        .get("Authorization")
        .or_else(|| frame.get("authorization"))
        .and_then(bearer)
        .map(str::to_string)
        .or_else(|| {
            frame
                .get("passcode")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        })
        .or_else(|| handshake.token.clone());
    let Some(token) = token else {
        return Err(error(
            "unauthorized: no token",
            "send a JWT as ?access_token=, an Authorization: Bearer header on the handshake, or an Authorization header on CONNECT",
            Some(frame),
        ));
    };
    let principal = service
        .auth
        .verify(&token)
        .map_err(|e| error(e.to_string(), "authentication failed", Some(frame)))?;
    let ours = service.config.heartbeat.as_millis() as u64;
    let (cx, cy) = frame
        .get("heart-beat")
        .and_then(|h| {
            let (x, y) = h.split_once(',')?;
            Some((x.trim().parse::<u64>().ok()?, y.trim().parse::<u64>().ok()?))
        })
        .unwrap_or((0, 0));
    // STOMP 1.2: we send every max(ours, cy) if both are non-zero; we expect the client every
    // max(cx, ours).
    let clamp = |ms: u64| Duration::from_millis(ms).min(MAX_HEARTBEAT);
    let send = (ours > 0 && cy > 0).then(|| clamp(ours.max(cy)));
    let recv = (ours > 0 && cx > 0).then(|| clamp(ours.max(cx)));
    let connected = Frame::new("CONNECTED")
        .header("version", version)
        .header("heart-beat", format!("{ours},{ours}"))
        .header("server", concat!("notify/", env!("CARGO_PKG_VERSION")))
        .header("user-name", principal.user.clone());
    Ok((principal, connected, send, recv))
}
