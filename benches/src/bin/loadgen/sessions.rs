//! The STOMP sessions: connecting one, and reading what it receives until the stop.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_benches::client::{self, Ws};
use tokio::sync::{mpsc, watch};

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
    let received = client::receive(&mut ws, &setup.prefix, &mut stop, |arrived| {
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        shared.last_arrival_us.fetch_max(arrived, Ordering::Relaxed);
    })
    .await;
    out.arrivals = received.arrivals;
    out.foreign = received.foreign;
    out.dropped = received.dropped;
    if out.dropped.is_some() {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    out
}
