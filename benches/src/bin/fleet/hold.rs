//! `fleet hold`: opens a slice of the sessions, reports progress on stdout, records every
//! MESSAGE frame's latency, and writes the result file when told to stop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use notify_benches::client::{self, Ws};
use notify_benches::procfs;
use tokio::sync::{watch, Semaphore};

use crate::wire::{self, HolderResult};

/// Flags of `fleet hold` (set by `fleet run`).
#[derive(Debug, Clone, Args)]
pub(crate) struct HoldArgs {
    /// Server instances, `host:port`, comma-separated; session i goes to instance i mod n.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// First session index.
    #[arg(long)]
    pub first: usize,
    /// Sessions to open.
    #[arg(long)]
    pub count: usize,
    /// Groups; user u<i> is in group g<i mod groups>.
    #[arg(long, default_value_t = 10)]
    pub groups: usize,
    /// Third octet of this holder's loopback source addresses (127.0.<octet>.2 ...).
    #[arg(long)]
    pub source_octet: u8,
    /// Source addresses to spread over.
    #[arg(long, default_value_t = 2)]
    pub source_addrs: u8,
    /// New sessions per second.
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// Handshakes in flight at most.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// HS256 secret of the servers.
    #[arg(long)]
    pub secret: String,
    /// Event ids of this run start with this.
    #[arg(long)]
    pub prefix: String,
    /// Result file.
    #[arg(long)]
    pub out: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs a holder; the exit code.
pub(crate) fn main(args: HoldArgs) -> i32 {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = builder.build().expect("tokio runtime");
    runtime.block_on(hold(args))
}

struct Session {
    arrivals: Vec<(u32, u64)>,
    foreign: u64,
    failed: Option<String>,
    dropped: Option<String>,
}

async fn hold(args: HoldArgs) -> i32 {
    let mut servers = Vec::new();
    for s in &args.servers {
        match tokio::net::lookup_host(s.as_str())
            .await
            .ok()
            .and_then(|mut a| a.find(SocketAddr::is_ipv4))
        {
            Some(a) => servers.push((a, s.clone())),
            None => {
                eprintln!("holder: cannot resolve {s}");
                return 2;
            }
        }
    }
    let servers = Arc::new(servers);
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(args.count);
    let cfg = Arc::new(args.clone());
    let spawner = {
        let cfg = cfg.clone();
        let servers = servers.clone();
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for k in 0..cfg.count {
                tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / cfg.ramp))
                    .await;
                let permit = limit.clone().acquire_owned().await.expect("never closed");
                handles.push(tokio::spawn(session(
                    cfg.first + k,
                    cfg.clone(),
                    servers.clone(),
                    delivered.clone(),
                    ready_tx.clone(),
                    stop_rx.clone(),
                    permit,
                )));
            }
            handles
        })
    };
    let (mut ok, mut failed) = (0usize, 0usize);
    while ok + failed < args.count {
        match ready_rx.recv().await {
            Some(true) => ok += 1,
            Some(false) => failed += 1,
            None => break,
        }
    }
    let handles = spawner.await.expect("spawner");
    let connect_seconds = started.elapsed().as_secs_f64();
    let me = std::process::id();
    let rss_kib_connected = procfs::rss_kib(me).unwrap_or(0);
    let open_files = wire::open_files(me);
    println!("{} {ok} {failed}", wire::READY);

    // Progress until the orchestrator says stop (or closes our stdin).
    let progress = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                println!("{} {}", wire::DELIVERED, delivered.load(Ordering::Relaxed));
            }
        })
    };
    // A plain thread reads stdin (tokio's stdin needs a feature the workspace does not
    // enable); the first STOP line or the end of input stops the sessions.
    let (line_tx, line_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == wire::STOP => break,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let _ = line_tx.send(());
    });
    let _ = line_rx.await;
    progress.abort();
    let _ = stop_tx.send(true);

    let mut result = HolderResult {
        first: args.first,
        count: args.count,
        rss_kib_connected,
        open_files,
        connect_seconds,
        ..HolderResult::default()
    };
    for (k, h) in handles.into_iter().enumerate() {
        let index = args.first + k;
        let Ok(s) = h.await else { continue };
        if let Some(reason) = s.failed {
            result.failed.push((index, reason));
            continue;
        }
        if let Some(reason) = s.dropped {
            result.dropped.push((index, reason));
        }
        result.foreign += s.foreign;
        result.arrivals.extend(
            s.arrivals
                .into_iter()
                .map(|(seq, l)| (index as u32, seq, l)),
        );
    }
    result.cpu_seconds = procfs::cpu_seconds(me).unwrap_or(0.0);
    let text = match serde_json::to_string(&result) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("holder: JSON: {e}");
            return 1;
        }
    };
    if let Err(e) = std::fs::write(&args.out, text) {
        eprintln!("holder: {}: {e}", args.out.display());
        return 1;
    }
    println!("{}", wire::DONE);
    0
}

async fn open(i: usize, cfg: &HoldArgs, server: &(SocketAddr, String)) -> Result<Ws, String> {
    let n = cfg.source_addrs.max(1);
    let ip = Ipv4Addr::new(127, 0, cfg.source_octet, 2 + (i % n as usize) as u8);
    client::open(
        i,
        client::Target {
            server: server.0,
            host: &server.1,
            source: Some(ip),
            secret: &cfg.secret,
            groups: cfg.groups,
        },
    )
    .await
}

async fn session(
    i: usize,
    cfg: Arc<HoldArgs>,
    servers: Arc<Vec<(SocketAddr, String)>>,
    delivered: Arc<AtomicU64>,
    ready_tx: tokio::sync::mpsc::UnboundedSender<bool>,
    mut stop: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Session {
    let mut out = Session {
        arrivals: Vec::new(),
        foreign: 0,
        failed: None,
        dropped: None,
    };
    let server = &servers[i % servers.len()];
    let opened = tokio::time::timeout(Duration::from_secs(60), open(i, &cfg, server))
        .await
        .unwrap_or_else(|_| Err("timed out after 60 s".into()));
    drop(permit);
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(e) => {
            out.failed = Some(e);
            let _ = ready_tx.send(false);
            return out;
        }
    };
    let _ = ready_tx.send(true);
    drop(ready_tx);
    let received = client::receive(&mut ws, &cfg.prefix, &mut stop, |_| {
        delivered.fetch_add(1, Ordering::Relaxed);
    })
    .await;
    out.arrivals = received.arrivals;
    out.foreign = received.foreign;
    out.dropped = received.dropped;
    if out.dropped.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    out
}
