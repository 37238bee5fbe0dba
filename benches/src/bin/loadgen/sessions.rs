//! The STOMP sessions: connecting one, and reading what it receives until the stop.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use notify_benches::client::{self, Ws};
use notify_benches::scan;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::now_us;

/// What every session needs to connect.
pub(crate) struct Setup {
    pub(crate) server: SocketAddr,
    pub(crate) host: String,
    pub(crate) sources: Vec<Option<Ipv4Addr>>,
    pub(crate) secret: String,
    pub(crate) groups: usize,
    /// Event ids of this run start with this.
    pub(crate) prefix: String,
}

/// Counters shared by all sessions and the progress line.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) delivered: AtomicU64,
    pub(crate) ready: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) dropped: AtomicUsize,
    pub(crate) last_arrival_us: AtomicI64,
    pub(crate) phase: Mutex<&'static str>,
}

/// What one session saw.
pub(crate) struct Outcome {
    pub(crate) index: usize,
    pub(crate) ready: bool,
    /// Why it ended before the stop (server closed, ERROR frame, I/O error).
    pub(crate) dropped: Option<String>,
    /// (event sequence number, latency in µs) per MESSAGE frame of this run.
    pub(crate) arrivals: Vec<(u32, u64)>,
    /// MESSAGE frames not from this run.
    pub(crate) foreign: u64,
}

pub(crate) async fn open(i: usize, setup: &Setup) -> Result<Ws, String> {
    client::open(
        i,
        client::Target {
            server: setup.server,
            host: &setup.host,
            source: setup.sources[i % setup.sources.len()],
            secret: &setup.secret,
            groups: setup.groups,
        },
    )
    .await
}

pub(crate) async fn session(
    i: usize,
    setup: Arc<Setup>,
    shared: Arc<Shared>,
    ready_tx: mpsc::UnboundedSender<(usize, Result<(), String>)>,
    mut stop: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Outcome {
    let mut out = Outcome {
        index: i,
        ready: false,
        dropped: None,
        arrivals: Vec::new(),
        foreign: 0,
    };
    let opened = tokio::time::timeout(Duration::from_secs(30), open(i, &setup))
        .await
        .unwrap_or_else(|_| Err("timed out after 30 s".into()));
    drop(permit);
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(e) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let _ = ready_tx.send((i, Err(e)));
            return out;
        }
    };
    out.ready = true;
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let _ = ready_tx.send((i, Ok(())));
    drop(ready_tx);
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
                            match a.event_id.strip_prefix(setup.prefix.as_str()).and_then(|s| s.parse::<u32>().ok()) {
                                Some(seq) => {
                                    out.arrivals.push((seq, arrived.saturating_sub(a.sent_at_us).max(0) as u64));
                                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                                    shared.last_arrival_us.fetch_max(arrived, Ordering::Relaxed);
                                }
                                None => out.foreign += 1,
                            }
                        } else if scan::command(text) == "ERROR" {
                            error = Some(format!("ERROR frame: {}", scan::header(text, "message").unwrap_or("?")));
                        } else if scan::command(text) == "MESSAGE" {
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
    if out.dropped.is_some() {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    out
}
