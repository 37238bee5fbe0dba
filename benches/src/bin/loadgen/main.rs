//! `loadgen`: drives a running notification server the way browsers do.
//!
//! 1. Opens `--sessions` real WebSocket STOMP 1.2 sessions (user `u<i>`, in group
//!    `g<i mod groups>`, each with its own HS256 JWT), spread over loopback source addresses
//!    127.0.0.2, 127.0.0.3, ... so tens of thousands of sockets fit, at `--ramp` sessions/s.
//!    A session counts as ready once its SUBSCRIBE to `/user/queue/notifications` got its
//!    RECEIPT.
//! 2. Optionally holds them idle (`--hold`) to measure the server's memory per session.
//! 3. Publishes events over `POST /api/events` at `--rate` events/s for `--duration` s with a
//!    personal/group/broadcast `--mix`, then `--broadcasts` broadcasts `--broadcast-interval-ms`
//!    apart (0: a burst). Each event carries `data.sent_at_us`, the send time.
//! 4. Measures, per delivered MESSAGE frame, the latency from `sent_at_us` to its arrival;
//!    delivered frames per second; lost, duplicated and misrouted notifications (every
//!    expected (session, event) pair is checked); connection failures and dropped sessions;
//!    and the server's resident memory and CPU time (`--server-pid`, or `--spawn-server`).
//! 5. Prints a summary and writes `--json`.
//!
//! Kafka: events are always published over `POST /api/events`; a server in Kafka mode
//! (`NOTIFY_KAFKA_BROKERS`) produces them to its input topic, consumes, stores and fans out,
//! so the measured latency covers the whole Kafka path. `--kafka-brokers` starts the spawned
//! server in that mode. Producing straight to the topic (without the HTTP hop) is not built
//! in: any producer can send `event_body`'s JSON while loadgen holds the sessions
//! (`--rate 0 --hold <s>`), since arrivals are measured from `data.sent_at_us`.

mod http;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures::StreamExt;
use notify_benches::client::{self, Ws};
use notify_benches::procfs;
use notify_benches::scan;
use notify_benches::spawn::ServerSpawn;
use notify_benches::stats::Summary;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::http::Http;

/// Command-line flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for the notification server: N WebSocket STOMP sessions, events over POST /api/events, latency, loss, duplicates and server memory per session"
)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// STOMP sessions to open (user u<i> for session i).
    #[arg(long, short = 'n', default_value_t = 100)]
    sessions: usize,
    /// Number of groups; user u<i> is in group g<i mod groups>.
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// Loopback source addresses to spread sessions over (127.0.0.2 ...); 0: 127.0.0.1 only.
    #[arg(long, default_value_t = 4)]
    source_addrs: u8,
    /// New sessions per second during the ramp.
    #[arg(long, default_value_t = 2000.0)]
    ramp: f64,
    /// Session handshakes in flight at most.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// HS256 secret the server verifies tokens with (its NOTIFY_JWT_SECRET).
    #[arg(long, env = "NOTIFY_JWT_SECRET", default_value = "notify-demo-secret")]
    secret: String,
    /// The server's publish key (NOTIFY_PUBLISH_KEY).
    #[arg(long, env = "NOTIFY_PUBLISH_KEY", default_value = "notify-demo-key")]
    publish_key: String,
    /// Events per second in the steady phase (0: no steady phase).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Length of the steady phase in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Steady-phase mix as weights personal,group,broadcast.
    #[arg(long, default_value = "90,10,0")]
    mix: String,
    /// Broadcasts to send after the steady phase.
    #[arg(long, default_value_t = 0)]
    broadcasts: usize,
    /// Milliseconds between broadcasts; 0 sends them back to back (a burst).
    #[arg(long, default_value_t = 1000)]
    broadcast_interval_ms: u64,
    /// Pad each event's `data` with a string of this many bytes (`data.pad`).
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Seconds to hold the sessions idle after connecting (memory measurement).
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
    /// Seconds to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value_t = 15.0)]
    drain_timeout: f64,
    /// PID of the server under test, for its resident memory and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Start this server binary (e.g. target/release/examples/server) listening on --url,
    /// with NOTIFY_JWT_SECRET and NOTIFY_PUBLISH_KEY from these flags; stopped at the end.
    #[arg(long)]
    spawn_server: Option<PathBuf>,
    /// Extra environment for the spawned server, KEY=VALUE (repeatable).
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// File for the spawned server's output (default: discarded).
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// Kafka bootstrap servers: the spawned server runs in Kafka mode
    /// (NOTIFY_KAFKA_BROKERS), so published events travel through Kafka.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A label for this run, copied into the JSON.
    #[arg(long, default_value = "")]
    label: String,
    /// Worker threads of the load generator (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Seed of the event mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// What every session needs to connect.
struct Setup {
    server: SocketAddr,
    host: String,
    sources: Vec<Option<Ipv4Addr>>,
    secret: String,
    groups: usize,
    /// Event ids of this run start with this.
    prefix: String,
}

/// Counters shared by all sessions and the progress line.
#[derive(Default)]
struct Shared {
    delivered: AtomicU64,
    ready: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    last_arrival_us: AtomicI64,
    phase: Mutex<&'static str>,
}

/// What one session saw.
struct Outcome {
    index: usize,
    ready: bool,
    /// Why it ended before the stop (server closed, ERROR frame, I/O error).
    dropped: Option<String>,
    /// (event sequence number, latency in µs) per MESSAGE frame of this run.
    arrivals: Vec<(u32, u64)>,
    /// MESSAGE frames not from this run.
    foreign: u64,
}

async fn open(i: usize, setup: &Setup) -> Result<Ws, String> {
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

async fn session(
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

/// Who an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Personal,
    Group,
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Steady,
    Broadcast,
}

struct EventRec {
    kind: Kind,
    /// Session index (personal) or group number (group).
    target: usize,
    phase: Phase,
    sent_us: i64,
    /// Ready sessions that should receive it.
    expected: usize,
}

/// xorshift64*: enough randomness for an event mix, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The event JSON the load generator publishes.
fn event_body(id: &str, kind: Kind, target: usize, sent_us: i64, pad: usize) -> String {
    let recipients = match kind {
        Kind::Personal => serde_json::json!({"users": [format!("u{target}")]}),
        Kind::Group => serde_json::json!({"groups": [format!("g{target}")]}),
        Kind::Broadcast => serde_json::json!({"broadcast": true}),
    };
    serde_json::json!({
        "id": id,
        "type": "loadgen.test",
        "recipients": recipients,
        "title": "Load test",
        "message": "A notification from the load generator",
        "data": if pad > 0 {
            serde_json::json!({"sent_at_us": sent_us, "pad": "x".repeat(pad)})
        } else {
            serde_json::json!({"sent_at_us": sent_us})
        },
    })
    .to_string()
}

struct Publisher {
    http: Http,
    pad: usize,
    key: String,
    prefix: String,
    events: Vec<EventRec>,
    errors: Vec<String>,
    /// Behind schedule at most, µs.
    max_lag_us: u64,
    ready: Vec<bool>,
    ready_count: usize,
    group_ready: Vec<usize>,
    ready_list: Vec<usize>,
}

impl Publisher {
    async fn publish(&mut self, kind: Kind, target: usize, phase: Phase) {
        let seq = self.events.len();
        let id = format!("{}{seq}", self.prefix);
        let sent_us = now_us();
        let body = event_body(&id, kind, target, sent_us, self.pad);
        let result = self
            .http
            .request(
                "POST",
                "/api/events",
                &[
                    ("Content-Type", "application/json"),
                    ("X-Api-Key", self.key.as_str()),
                ],
                body.as_bytes(),
            )
            .await;
        let expected = match kind {
            Kind::Personal => usize::from(self.ready[target]),
            Kind::Group => self.group_ready[target],
            Kind::Broadcast => self.ready_count,
        };
        let ok = match result {
            Ok(r) if r.status == 202 => true,
            Ok(r) => {
                self.errors.push(format!(
                    "HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                false
            }
            Err(e) => {
                self.errors.push(format!("POST /api/events: {e}"));
                false
            }
        };
        self.events.push(EventRec {
            kind,
            target,
            phase,
            sent_us,
            expected: if ok { expected } else { 0 },
        });
    }

    fn expected_total(&self) -> u64 {
        self.events.iter().map(|e| e.expected as u64).sum()
    }
}

/// The JSON report.
#[derive(Debug, Serialize, Default)]
struct Report {
    label: String,
    args: String,
    started_at: String,
    machine: Machine,
    sessions_requested: usize,
    sessions_ready: usize,
    connect_failures: usize,
    connect_failure_reasons: Vec<(String, usize)>,
    connect_seconds: f64,
    connect_rate_per_s: f64,
    sessions_dropped: usize,
    dropped_reasons: Vec<(String, usize)>,
    server: Option<ServerStats>,
    loadgen_rss_kib_after_connect: u64,
    loadgen_cpu_seconds: f64,
    events_published: usize,
    publish_errors: usize,
    publish_error_samples: Vec<String>,
    publish_max_lag_ms: f64,
    expected_deliveries: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    misrouted: u64,
    foreign: u64,
    phases: Vec<PhaseReport>,
    broadcast_events: Vec<BroadcastEvent>,
}

#[derive(Debug, Serialize, Default)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    mem_total_kib: u64,
    load_avg_at_start: String,
    /// `/proc/pressure/cpu` "some" line at the start and at the end of the run.
    cpu_pressure_at_start: String,
    cpu_pressure_at_end: String,
    nofile_limit: u64,
}

#[derive(Debug, Serialize, Default)]
struct ServerStats {
    pid: u32,
    rss_kib_before_connect: u64,
    rss_kib_after_connect: u64,
    rss_kib_after_hold: Option<u64>,
    rss_kib_at_end: u64,
    peak_rss_kib: u64,
    rss_kib_per_session: f64,
    threads: u64,
    cpu_seconds_connect: f64,
    cpu_seconds_workload: f64,
}

#[derive(Debug, Serialize, Default)]
struct PhaseReport {
    phase: String,
    events: usize,
    expected: u64,
    delivered: u64,
    seconds: f64,
    /// Events per second actually published.
    event_rate: f64,
    /// Delivered frames per second from the first send to the last arrival.
    delivered_per_s: f64,
    latency_us: Summary,
    server_cpu_seconds: Option<f64>,
}

#[derive(Debug, Serialize, Default)]
struct BroadcastEvent {
    seq: usize,
    recipients: usize,
    delivered: usize,
    p50_us: u64,
    p99_us: u64,
    last_us: u64,
    frames_per_s: f64,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        mem_total_kib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        load_avg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpu_pressure_at_start: cpu_pressure(),
        cpu_pressure_at_end: String::new(),
        nofile_limit: 0,
    }
}

fn cpu_pressure() -> String {
    std::fs::read_to_string("/proc/pressure/cpu")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn top_reasons(reasons: impl Iterator<Item = String>) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(8);
    v
}

fn parse_mix(s: &str) -> Result<[u64; 3], String> {
    let parts: Vec<u64> = s
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--mix wants three weights personal,group,broadcast, got {s:?}"))?;
    match parts.as_slice() {
        [p, g, b] if p + g + b > 0 => Ok([*p, *g, *b]),
        _ => Err(format!(
            "--mix wants three weights personal,group,broadcast, got {s:?}"
        )),
    }
}

fn main() {
    let args = Args::parse();
    let nofile = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: cannot raise the open-file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    };
    if args.sessions as u64 + 64 > nofile {
        eprintln!(
            "warning: {} sessions need about as many open files; the limit is {nofile} (per process, and the server needs as many)",
            args.sessions
        );
    }
    if args.kafka_brokers.is_some() && args.spawn_server.is_none() {
        eprintln!("note: --kafka-brokers only configures a server started with --spawn-server; the server at --url publishes wherever it is configured to");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = builder.build().expect("tokio runtime");
    let code = runtime.block_on(run(args, nofile));
    std::process::exit(code);
}

async fn resolve(url: &str) -> Result<(SocketAddr, String), String> {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let addr = tokio::net::lookup_host(host.as_str())
        .await
        .map_err(|e| format!("--url {url}: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("--url {url}: no IPv4 address"))?;
    Ok((addr, host))
}

async fn wait_live(addr: SocketAddr, host: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut http = Http::new(addr, host.to_string());
        match http.request("GET", "/health/live", &[], b"").await {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("server not live at {host} ({last})"))
}

fn spawn_server(args: &Args, addr: SocketAddr) -> Result<tokio::process::Child, String> {
    let path = args.spawn_server.as_ref().expect("checked by caller");
    ServerSpawn {
        path,
        listen: addr,
        secret: &args.secret,
        publish_key: &args.publish_key,
        kafka_brokers: args.kafka_brokers.as_deref(),
        env: &args.server_env,
        log: args.server_log.clone(),
    }
    .command()?
    .spawn()
    .map_err(|e| format!("--spawn-server {}: {e}", path.display()))
}

#[allow(clippy::too_many_lines)]
async fn run(args: Args, nofile: u64) -> i32 {
    let mix = match parse_mix(&args.mix) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (server_addr, host) = match resolve(&args.url).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut report = Report {
        label: args.label.clone(),
        args: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started_at: chrono::Utc::now().to_rfc3339(),
        machine: Machine {
            nofile_limit: nofile,
            ..machine()
        },
        sessions_requested: args.sessions,
        ..Report::default()
    };
    let mut child = None;
    let mut server_pid = args.server_pid;
    if args.spawn_server.is_some() {
        match spawn_server(&args, server_addr) {
            Ok(c) => {
                server_pid = c.id();
                child = Some(c);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    if let Err(e) = wait_live(server_addr, &host, Duration::from_secs(15)).await {
        eprintln!("error: {e}");
        return 2;
    }
    // Let a freshly started server settle before the baseline; make sure it is the one
    // answering (not another server already on that port).
    if let Some(c) = child.as_mut() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(Some(status)) = c.try_wait() {
            eprintln!("error: the spawned server exited ({status}); is {host} already taken?");
            return 2;
        }
    }
    let me = std::process::id();
    let cpu_me_start = procfs::cpu_seconds(me).unwrap_or(0.0);
    let rss_before = server_pid.and_then(procfs::rss_kib).unwrap_or(0);
    let cpu_before = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);

    let run_id = now_us() / 1000;
    let setup = Arc::new(Setup {
        server: server_addr,
        host: host.clone(),
        sources: if args.source_addrs == 0 {
            vec![None]
        } else {
            (0..args.source_addrs)
                .map(|k| Some(Ipv4Addr::new(127, 0, 0, 2 + k.min(252))))
                .collect()
        },
        secret: args.secret.clone(),
        groups: args.groups.max(1),
        prefix: format!("lg{run_id}-"),
    });
    let shared = Arc::new(Shared::default());
    *shared.phase.lock().unwrap() = "connect";
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();

    // The progress line.
    let progress_task = {
        let shared = shared.clone();
        let total = args.sessions;
        let quiet = args.quiet;
        tokio::spawn(async move {
            if quiet {
                return;
            }
            let mut last = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let d = shared.delivered.load(Ordering::Relaxed);
                let phase = *shared.phase.lock().unwrap();
                eprint!(
                    "\r[{phase:>9}] sessions {}/{total} ready, {} failed, {} dropped | delivered {d} ({}/s)      ",
                    shared.ready.load(Ordering::Relaxed),
                    shared.failed.load(Ordering::Relaxed),
                    shared.dropped.load(Ordering::Relaxed),
                    d - last,
                );
                last = d;
            }
        })
    };

    // Connect with a ramp, at most `connect_concurrency` handshakes in flight.
    let connect_started = Instant::now();
    let spawner = {
        let setup = setup.clone();
        let shared = shared.clone();
        let n = args.sessions;
        let ramp = args.ramp.max(1.0);
        let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut handles = Vec::with_capacity(n);
            for i in 0..n {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / ramp)).await;
                let permit = limit.clone().acquire_owned().await.expect("never closed");
                handles.push(tokio::spawn(session(
                    i,
                    setup.clone(),
                    shared.clone(),
                    ready_tx.clone(),
                    stop_rx.clone(),
                    permit,
                )));
            }
            handles
        })
    };
    let mut ready = vec![false; args.sessions];
    let mut failures = Vec::new();
    for _ in 0..args.sessions {
        match ready_rx.recv().await {
            Some((i, Ok(()))) => ready[i] = true,
            Some((_, Err(e))) => failures.push(e),
            None => break,
        }
    }
    let handles = spawner.await.expect("spawner");
    report.connect_seconds = connect_started.elapsed().as_secs_f64();
    report.sessions_ready = ready.iter().filter(|r| **r).count();
    report.connect_failures = failures.len();
    report.connect_rate_per_s = report.sessions_ready as f64 / report.connect_seconds.max(1e-9);
    report.connect_failure_reasons = top_reasons(failures.into_iter());

    // Settle, then read the server's memory.
    *shared.phase.lock().unwrap() = "settle";
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = server_pid.and_then(procfs::rss_kib).unwrap_or(0);
    let cpu_after_connect = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);
    report.loadgen_rss_kib_after_connect = procfs::rss_kib(me).unwrap_or(0);
    let mut rss_after_hold = None;
    if args.hold > 0.0 {
        *shared.phase.lock().unwrap() = "hold";
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
        rss_after_hold = server_pid.and_then(procfs::rss_kib);
    }

    // Publish.
    let ready_list: Vec<usize> = (0..args.sessions).filter(|i| ready[*i]).collect();
    let groups = args.groups.max(1);
    let mut group_ready = vec![0usize; groups];
    for i in &ready_list {
        group_ready[i % groups] += 1;
    }
    let mut publisher = Publisher {
        http: Http::new(server_addr, host.clone()),
        pad: args.payload_bytes,
        key: args.publish_key.clone(),
        prefix: setup.prefix.clone(),
        events: Vec::new(),
        errors: Vec::new(),
        max_lag_us: 0,
        ready_count: ready_list.len(),
        ready: ready.clone(),
        group_ready,
        ready_list,
    };
    let mut rng = Rng(args.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut phase_cpu: Vec<(Phase, f64, f64, Instant, Instant)> = Vec::new();
    if args.rate > 0.0 && args.duration > 0.0 && !publisher.ready_list.is_empty() {
        *shared.phase.lock().unwrap() = "steady";
        let cpu0 = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);
        let t0 = Instant::now();
        let total = (args.rate * args.duration).round() as usize;
        let start = tokio::time::Instant::now();
        let weight = mix[0] + mix[1] + mix[2];
        for k in 0..total {
            let due = start + Duration::from_secs_f64(k as f64 / args.rate);
            let now = tokio::time::Instant::now();
            if now > due {
                publisher.max_lag_us = publisher.max_lag_us.max((now - due).as_micros() as u64);
            } else {
                tokio::time::sleep_until(due).await;
            }
            let roll = rng.next() % weight;
            let (kind, target) = if roll < mix[0] {
                let list = &publisher.ready_list;
                (Kind::Personal, list[rng.below(list.len())])
            } else if roll < mix[0] + mix[1] {
                (Kind::Group, rng.below(groups))
            } else {
                (Kind::Broadcast, 0)
            };
            publisher.publish(kind, target, Phase::Steady).await;
        }
        let cpu1 = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);
        phase_cpu.push((Phase::Steady, cpu0, cpu1, t0, Instant::now()));
    }
    if args.broadcasts > 0 && !publisher.ready_list.is_empty() {
        *shared.phase.lock().unwrap() = "broadcast";
        let cpu0 = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);
        let t0 = Instant::now();
        let start = tokio::time::Instant::now();
        for k in 0..args.broadcasts {
            if args.broadcast_interval_ms > 0 {
                tokio::time::sleep_until(
                    start + Duration::from_millis(args.broadcast_interval_ms * k as u64),
                )
                .await;
            }
            publisher
                .publish(Kind::Broadcast, 0, Phase::Broadcast)
                .await;
        }
        // The broadcast phase's CPU is read after the drain (below): its deliveries take
        // longer than its publishing.
        phase_cpu.push((Phase::Broadcast, cpu0, 0.0, t0, Instant::now()));
    }

    // Drain.
    *shared.phase.lock().unwrap() = "drain";
    let expected_total = publisher.expected_total();
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    while shared.delivered.load(Ordering::Relaxed) < expected_total
        && Instant::now() < drain_deadline
        && shared.dropped.load(Ordering::Relaxed) < report.sessions_ready.max(1)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer, to catch duplicates that would arrive late.
    if expected_total > 0 {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let cpu_end = server_pid.and_then(procfs::cpu_seconds).unwrap_or(0.0);
    for p in &mut phase_cpu {
        if p.0 == Phase::Broadcast {
            p.2 = cpu_end;
        }
    }
    report.machine.cpu_pressure_at_end = cpu_pressure();
    let rss_end = server_pid.and_then(procfs::rss_kib).unwrap_or(0);
    let peak = server_pid.and_then(procfs::peak_rss_kib).unwrap_or(0);
    let threads = server_pid.and_then(procfs::threads).unwrap_or(0);

    // Stop the sessions and collect what they saw.
    *shared.phase.lock().unwrap() = "close";
    let _ = stop_tx.send(true);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(o) = h.await {
            outcomes.push(o);
        }
    }
    progress_task.abort();
    if !args.quiet {
        eprintln!();
    }
    outcomes.sort_by_key(|o| o.index);
    report.loadgen_cpu_seconds = procfs::cpu_seconds(me).unwrap_or(0.0) - cpu_me_start;

    if let Some(pid) = server_pid {
        let ready_n = report.sessions_ready.max(1) as f64;
        report.server = Some(ServerStats {
            pid,
            rss_kib_before_connect: rss_before,
            rss_kib_after_connect: rss_after,
            rss_kib_after_hold: rss_after_hold,
            rss_kib_at_end: rss_end,
            peak_rss_kib: peak,
            rss_kib_per_session: (rss_after as f64 - rss_before as f64) / ready_n,
            threads,
            cpu_seconds_connect: cpu_after_connect - cpu_before,
            cpu_seconds_workload: cpu_end - cpu_after_connect,
        });
    }

    analyse(&mut report, &publisher, &outcomes, &phase_cpu);

    // Stop a spawned server.
    if let Some(mut c) = child {
        if let Some(pid) = c.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(12), c.wait())
            .await
            .is_err()
        {
            let _ = c.kill().await;
        }
    }

    print_summary(&report);
    if let Some(path) = &args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("error: {}: {e}", path.display());
                    return 1;
                }
            }
            Err(e) => {
                eprintln!("error: JSON: {e}");
                return 1;
            }
        }
    }
    if report.lost > 0 || report.duplicates > 0 || report.misrouted > 0 {
        1
    } else {
        0
    }
}

fn analyse(
    report: &mut Report,
    publisher: &Publisher,
    outcomes: &[Outcome],
    phase_cpu: &[(Phase, f64, f64, Instant, Instant)],
) {
    let events = &publisher.events;
    report.events_published = events.iter().filter(|e| e.expected > 0).count();
    report.publish_errors = publisher.errors.len();
    report.publish_error_samples = publisher.errors.iter().take(5).cloned().collect();
    report.publish_max_lag_ms = publisher.max_lag_us as f64 / 1000.0;
    report.expected_deliveries = publisher.expected_total();
    report.sessions_dropped = outcomes.iter().filter(|o| o.dropped.is_some()).count();
    report.dropped_reasons = top_reasons(outcomes.iter().filter_map(|o| o.dropped.clone()));
    report.foreign = outcomes.iter().map(|o| o.foreign).sum();

    // Per session: which events arrived (sorted), duplicates and misrouted ones.
    let groups = publisher.group_ready.len().max(1);
    let mut received: Vec<Vec<u32>> = vec![Vec::new(); publisher.ready.len()];
    let mut per_event: Vec<Vec<u64>> = vec![Vec::new(); events.len()];
    let mut last_arrival_us: Vec<i64> = vec![i64::MIN; events.len()];
    for o in outcomes {
        let mut seqs: Vec<u32> = Vec::with_capacity(o.arrivals.len());
        for &(seq, latency) in &o.arrivals {
            let Some(e) = events.get(seq as usize) else {
                report.misrouted += 1;
                continue;
            };
            let meant = match e.kind {
                Kind::Personal => e.target == o.index,
                Kind::Group => o.index % groups == e.target,
                Kind::Broadcast => true,
            };
            if !meant {
                report.misrouted += 1;
                continue;
            }
            seqs.push(seq);
            per_event[seq as usize].push(latency);
            last_arrival_us[seq as usize] =
                last_arrival_us[seq as usize].max(e.sent_us + latency as i64);
        }
        report.delivered += seqs.len() as u64;
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        report.duplicates += (before - seqs.len()) as u64;
        received[o.index] = seqs;
    }
    // Every expected (session, event) pair.
    let has = |session: usize, seq: usize| received[session].binary_search(&(seq as u32)).is_ok();
    for (seq, e) in events.iter().enumerate() {
        if e.expected == 0 {
            continue;
        }
        let missing = match e.kind {
            Kind::Personal => usize::from(!has(e.target, seq)),
            Kind::Group => publisher
                .ready_list
                .iter()
                .filter(|&&i| i % groups == e.target && !has(i, seq))
                .count(),
            Kind::Broadcast => publisher
                .ready_list
                .iter()
                .filter(|&&i| !has(i, seq))
                .count(),
        };
        report.lost += missing as u64;
    }

    for &(phase, cpu0, cpu1, t0, t1) in phase_cpu {
        let idx: Vec<usize> = (0..events.len())
            .filter(|&s| events[s].phase == phase && events[s].expected > 0)
            .collect();
        let mut samples: Vec<u64> = idx
            .iter()
            .flat_map(|&s| per_event[s].iter().copied())
            .collect();
        let delivered = samples.len() as u64;
        let first_sent = idx.iter().map(|&s| events[s].sent_us).min().unwrap_or(0);
        let last = idx
            .iter()
            .map(|&s| last_arrival_us[s])
            .max()
            .unwrap_or(first_sent);
        let span_s = ((last - first_sent).max(1)) as f64 / 1e6;
        let publish_s = (t1 - t0).as_secs_f64();
        report.phases.push(PhaseReport {
            phase: format!("{phase:?}").to_lowercase(),
            events: idx.len(),
            expected: idx.iter().map(|&s| events[s].expected as u64).sum(),
            delivered,
            seconds: publish_s,
            event_rate: idx.len() as f64 / publish_s.max(1e-9),
            delivered_per_s: delivered as f64 / span_s,
            latency_us: Summary::of(&mut samples),
            server_cpu_seconds: (cpu1 > 0.0).then_some(cpu1 - cpu0),
        });
    }
    for (seq, e) in events.iter().enumerate() {
        if e.phase != Phase::Broadcast || e.expected == 0 {
            continue;
        }
        let mut lat = per_event[seq].clone();
        let s = Summary::of(&mut lat);
        report.broadcast_events.push(BroadcastEvent {
            seq,
            recipients: e.expected,
            delivered: s.count,
            p50_us: s.p50,
            p99_us: s.p99,
            last_us: s.max,
            frames_per_s: s.count as f64 / (s.max.max(1) as f64 / 1e6),
        });
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn print_summary(r: &Report) {
    println!("== loadgen {}", r.label);
    println!(
        "machine: {} cores, {}, {:.1} GiB, load {} , nofile {}",
        r.machine.nproc,
        r.machine.cpu_model,
        r.machine.mem_total_kib as f64 / 1048576.0,
        r.machine.load_avg_at_start,
        r.machine.nofile_limit
    );
    println!(
        "cpu pressure: start [{}], end [{}]",
        r.machine.cpu_pressure_at_start, r.machine.cpu_pressure_at_end
    );
    println!(
        "sessions: {} ready of {} in {:.1} s ({:.0}/s); {} connect failures; {} dropped",
        r.sessions_ready,
        r.sessions_requested,
        r.connect_seconds,
        r.connect_rate_per_s,
        r.connect_failures,
        r.sessions_dropped
    );
    for (reason, n) in &r.connect_failure_reasons {
        println!("  connect failure x{n}: {reason}");
    }
    for (reason, n) in &r.dropped_reasons {
        println!("  dropped x{n}: {reason}");
    }
    if let Some(s) = &r.server {
        println!(
            "server pid {}: RSS {} KiB before, {} KiB after connect ({:.2} KiB/session){}, {} KiB at end, peak {} KiB; {} threads; CPU {:.2} s connecting, {:.2} s workload",
            s.pid,
            s.rss_kib_before_connect,
            s.rss_kib_after_connect,
            s.rss_kib_per_session,
            s.rss_kib_after_hold.map(|k| format!(", {k} KiB after hold")).unwrap_or_default(),
            s.rss_kib_at_end,
            s.peak_rss_kib,
            s.threads,
            s.cpu_seconds_connect,
            s.cpu_seconds_workload
        );
    }
    println!(
        "loadgen: RSS {} KiB after connect, CPU {:.2} s",
        r.loadgen_rss_kib_after_connect, r.loadgen_cpu_seconds
    );
    if r.expected_deliveries > 0 || r.events_published > 0 {
        println!(
            "events: {} published, {} publish errors, schedule lag max {:.1} ms",
            r.events_published, r.publish_errors, r.publish_max_lag_ms
        );
        for e in &r.publish_error_samples {
            println!("  publish error: {e}");
        }
        println!(
            "deliveries: {} expected, {} delivered, {} lost, {} duplicated, {} misrouted, {} foreign",
            r.expected_deliveries, r.delivered, r.lost, r.duplicates, r.misrouted, r.foreign
        );
    }
    for p in &r.phases {
        let l = &p.latency_us;
        println!(
            "phase {}: {} events in {:.1} s ({:.1}/s), {} of {} frames delivered, {:.0} frames/s{}",
            p.phase,
            p.events,
            p.seconds,
            p.event_rate,
            p.delivered,
            p.expected,
            p.delivered_per_s,
            p.server_cpu_seconds
                .map(|c| format!(", server CPU {c:.2} s"))
                .unwrap_or_default()
        );
        println!(
            "  latency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.2} ms, n={})",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            l.mean / 1000.0,
            l.count
        );
    }
    if !r.broadcast_events.is_empty() {
        let mut p99: Vec<u64> = r.broadcast_events.iter().map(|b| b.p99_us).collect();
        let mut last: Vec<u64> = r.broadcast_events.iter().map(|b| b.last_us).collect();
        let mut rate: Vec<u64> = r
            .broadcast_events
            .iter()
            .map(|b| b.frames_per_s as u64)
            .collect();
        let p99s = Summary::of(&mut p99);
        let lasts = Summary::of(&mut last);
        let rates = Summary::of(&mut rate);
        println!(
            "broadcasts: {} events; per-event p99 across sessions: median {}, worst {}; time to last session: median {}, worst {}; frames/s per event: median {}",
            r.broadcast_events.len(),
            ms(p99s.p50),
            ms(p99s.max),
            ms(lasts.p50),
            ms(lasts.max),
            rates.p50
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies_are_valid_events() {
        for kind in [Kind::Personal, Kind::Group, Kind::Broadcast] {
            let body = event_body("lg1-7", kind, 3, 1234, 5);
            let event = notify_core::Event::from_slice(body.as_bytes()).expect("valid");
            assert_eq!(event.id, "lg1-7");
            assert_eq!(
                event.data.unwrap().get("sent_at_us"),
                Some(&serde_json::json!(1234))
            );
        }
    }

    #[test]
    fn mix_parses() {
        assert_eq!(parse_mix("90,10,0").unwrap(), [90, 10, 0]);
        assert!(parse_mix("0,0,0").is_err());
        assert!(parse_mix("1,2").is_err());
    }

    #[test]
    fn rng_spreads() {
        let mut r = Rng(7);
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            seen[r.below(4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
