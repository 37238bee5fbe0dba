//! `fleet run`: the orchestrator (see the crate docs of `fleet`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use notify_benches::clock::now_us;
use notify_benches::deliveries::Deliveries;
use notify_benches::http::{Http, Response};
use notify_benches::procfs;
use notify_benches::spawn::ServerSpawn;
use notify_benches::stats::Summary;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};

use crate::wire::{self, HolderResult};

/// Flags of `fleet run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Server binary (e.g. target/release/examples/server).
    #[arg(long)]
    server: PathBuf,
    /// Server instances to start.
    #[arg(long, default_value_t = 6)]
    instances: usize,
    /// Port of the first instance on 127.0.0.1; the others follow.
    #[arg(long, default_value_t = 18300)]
    base_port: u16,
    /// Extra environment for every instance, KEY=VALUE (repeatable): the shared topic,
    /// group and store go here.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    server_env: Vec<String>,
    /// Kafka bootstrap servers (NOTIFY_KAFKA_BROKERS of every instance).
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Directory for the instances' logs (default: discarded).
    #[arg(long)]
    server_log_dir: Option<PathBuf>,
    /// Sessions in total.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    sessions: usize,
    /// Load-generator processes holding the sessions (0: enough for 17,000 each).
    #[arg(long, default_value_t = 0)]
    holders: usize,
    /// Groups; user u<i> is in group g<i mod groups>.
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// New sessions per second, all holders together.
    #[arg(long, default_value_t = 3000.0)]
    ramp: f64,
    /// Handshakes in flight per holder.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// HS256 secret (NOTIFY_JWT_SECRET of every instance).
    #[arg(long, default_value = "fleet-secret-fleet-secret-fleet-secret")]
    secret: String,
    /// Publish key (NOTIFY_PUBLISH_KEY of every instance).
    #[arg(long, default_value = "fleet-publish-key")]
    publish_key: String,
    /// Personal events per second (to a random session's user) in the steady phase.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds of the steady phase.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Broadcasts after the steady phase.
    #[arg(long, default_value_t = 0)]
    broadcasts: usize,
    /// Milliseconds between broadcasts (0: back to back).
    #[arg(long, default_value_t = 3000)]
    broadcast_interval_ms: u64,
    /// Pad each event's `data` with this many bytes.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Seconds to hold the sessions idle after connecting, before reading memory again.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
    /// Seconds to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Directory for the holders' result files.
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Worker threads per holder (0: one per core).
    #[arg(long, default_value_t = 0)]
    holder_threads: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A label copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Seed of the personal-stream recipients.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the orchestrator; the exit code.
pub(crate) fn main(args: RunArgs) -> i32 {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(args))
}

/// One server instance.
struct Instance {
    addr: SocketAddr,
    child: Child,
    pid: u32,
}

/// One holder process and what it reported so far.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    out: PathBuf,
    ready: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    reported: Arc<AtomicUsize>,
    delivered: Arc<AtomicU64>,
    done: Arc<AtomicUsize>,
}

/// The report.
#[derive(Debug, Default, Serialize)]
struct Report {
    label: String,
    args: String,
    started_at: String,
    nproc: usize,
    load_avg_at_start: String,
    cpu_pressure_at_start: String,
    cpu_pressure_at_end: String,
    nofile_limit: u64,
    sessions_requested: usize,
    sessions_ready: usize,
    connect_failures: usize,
    connect_failure_samples: Vec<String>,
    connect_seconds: f64,
    sessions_dropped: usize,
    dropped_samples: Vec<String>,
    instances: Vec<InstanceStats>,
    holders: Vec<HolderStats>,
    /// Flattened: the JSON keeps its top-level `events_published`, `lost`, ... fields.
    #[serde(flatten)]
    deliveries: Deliveries,
    personal: Option<PhaseStats>,
    broadcast: Option<PhaseStats>,
    broadcast_events: Vec<BroadcastStats>,
}

#[derive(Debug, Default, Serialize)]
struct InstanceStats {
    port: u16,
    pid: u32,
    sessions: usize,
    rss_kib_before: u64,
    rss_kib_connected: u64,
    rss_kib_after_hold: u64,
    rss_kib_at_end: u64,
    rss_kib_per_session: f64,
    open_files_connected: u64,
    threads: u64,
    cpu_seconds_connect: f64,
    cpu_seconds_workload: f64,
}

#[derive(Debug, Default, Serialize)]
struct HolderStats {
    pid: u32,
    first: usize,
    count: usize,
    rss_kib_connected: u64,
    open_files: u64,
    connect_seconds: f64,
    cpu_seconds: f64,
}

#[derive(Debug, Default, Serialize)]
struct PhaseStats {
    events: usize,
    expected: u64,
    delivered: u64,
    publish_seconds: f64,
    /// Frames delivered per second from the first send to the last arrival.
    frames_per_s: f64,
    latency_us: Summary,
    server_cpu_seconds: f64,
}

#[derive(Debug, Default, Serialize)]
struct BroadcastStats {
    seq: usize,
    recipients: usize,
    delivered: usize,
    p50_us: u64,
    p99_us: u64,
    last_us: u64,
    frames_per_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Personal,
    Broadcast,
}

struct EventRec {
    kind: Kind,
    target: usize,
    sent_us: i64,
    ok: bool,
}

fn event_body(id: &str, kind: Kind, target: usize, sent_us: i64, pad: usize) -> String {
    let recipients = match kind {
        Kind::Personal => serde_json::json!({"users": [format!("u{target}")]}),
        Kind::Broadcast => serde_json::json!({"broadcast": true}),
    };
    let data = if pad > 0 {
        serde_json::json!({"sent_at_us": sent_us, "pad": "x".repeat(pad)})
    } else {
        serde_json::json!({"sent_at_us": sent_us})
    };
    serde_json::json!({
        "id": id,
        "type": "fleet.test",
        "recipients": recipients,
        "title": "Fleet test",
        "message": "A notification from the fleet load generator",
        "data": data,
    })
    .to_string()
}

fn spawn_instance(args: &RunArgs, k: usize, addr: SocketAddr) -> Result<Child, String> {
    let mut cmd = ServerSpawn {
        path: &args.server,
        listen: addr,
        secret: &args.secret,
        publish_key: &args.publish_key,
        kafka_brokers: args.kafka_brokers.as_deref(),
        env: &args.server_env,
        log: args
            .server_log_dir
            .as_ref()
            .map(|dir| dir.join(format!("instance-{k}.log"))),
    }
    .command()?;
    cmd.env("NOTIFY_INSTANCE_ID", format!("fleet-{k}"));
    cmd.spawn()
        .map_err(|e| format!("{}: {e}", args.server.display()))
}

async fn wait_live(addr: SocketAddr, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut http = Http::new(addr, addr.to_string());
        match http.request("GET", "/health/live", &[], b"").await {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("instance {addr} not live ({last})"))
}

#[allow(clippy::too_many_arguments)]
fn spawn_holder(
    args: &RunArgs,
    h: usize,
    first: usize,
    count: usize,
    servers: &str,
    ramp: f64,
    prefix: &str,
    out: &PathBuf,
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("hold")
        .args(["--servers", servers])
        .args(["--first", &first.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--groups", &args.groups.to_string()])
        .args(["--source-octet", &(10 + h).to_string()])
        .args(["--ramp", &ramp.to_string()])
        .args([
            "--connect-concurrency",
            &args.connect_concurrency.to_string(),
        ])
        .args(["--secret", &args.secret])
        .args(["--prefix", prefix])
        .args(["--threads", &args.holder_threads.to_string()])
        .arg("--out")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| format!("holder {h}: {e}"))
}

#[allow(clippy::too_many_lines)]
async fn run(args: RunArgs) -> i32 {
    let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    let mut report = Report {
        label: args.label.clone(),
        args: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        started_at: chrono::Utc::now().to_rfc3339(),
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load_avg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cpu_pressure_at_start: procfs::cpu_pressure(),
        nofile_limit: nofile,
        sessions_requested: args.sessions,
        ..Report::default()
    };
    let k = args.instances.max(1);
    let holders_n = if args.holders > 0 {
        args.holders
    } else {
        args.sessions.div_ceil(17_000).max(1)
    };
    if args.sessions.div_ceil(k) + 200 > nofile as usize
        || args.sessions.div_ceil(holders_n) + 200 > nofile as usize
    {
        eprintln!(
            "warning: {} sessions over {k} instances and {holders_n} holders come near the open-file limit of {nofile} per process",
            args.sessions
        );
    }

    // 1. Instances.
    let mut instances = Vec::new();
    for i in 0..k {
        let addr: SocketAddr = ([127, 0, 0, 1], args.base_port + i as u16).into();
        match spawn_instance(&args, i, addr) {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                instances.push(Instance { addr, child, pid });
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    for inst in &mut instances {
        if let Err(e) = wait_live(inst.addr, Duration::from_secs(30)).await {
            eprintln!("error: {e}");
            return 2;
        }
        if let Ok(Some(status)) = inst.child.try_wait() {
            eprintln!(
                "error: instance {} exited ({status}); port taken?",
                inst.addr
            );
            return 2;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<(u64, f64)> = instances
        .iter()
        .map(|i| {
            (
                procfs::rss_kib(i.pid).unwrap_or(0),
                procfs::cpu_seconds(i.pid).unwrap_or(0.0),
            )
        })
        .collect();

    // 2. Holders.
    let run_id = now_us() / 1000;
    let prefix = format!("fl{run_id}-");
    let servers = instances
        .iter()
        .map(|i| i.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let per = args.sessions.div_ceil(holders_n);
    let mut holders = Vec::new();
    let connect_started = Instant::now();
    for h in 0..holders_n {
        let first = h * per;
        let count = per.min(args.sessions.saturating_sub(first));
        if count == 0 {
            break;
        }
        let out = args
            .work_dir
            .join(format!("fleet-{run_id}-holder-{h}.json"));
        let mut child = match spawn_holder(
            &args,
            h,
            first,
            count,
            &servers,
            args.ramp / holders_n as f64,
            &prefix,
            &out,
        ) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let Some(lines) = child.stdout.take() else {
            eprintln!("error: holder {h} has no stdout");
            return 2;
        };
        let holder = Holder {
            pid: child.id().unwrap_or(0),
            stdin: child.stdin.take(),
            out,
            ready: Arc::default(),
            failed: Arc::default(),
            reported: Arc::default(),
            delivered: Arc::default(),
            done: Arc::default(),
            child,
        };
        let (ready, failed, reported, delivered, done) = (
            holder.ready.clone(),
            holder.failed.clone(),
            holder.reported.clone(),
            holder.delivered.clone(),
            holder.done.clone(),
        );
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(lines).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split_whitespace();
                let mut number = || {
                    parts
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                match line.split_whitespace().next() {
                    Some(wire::READY) => {
                        let _ = number();
                        ready.store(number() as usize, Ordering::Relaxed);
                        failed.store(number() as usize, Ordering::Relaxed);
                        reported.store(1, Ordering::Relaxed);
                    }
                    Some(wire::DELIVERED) => {
                        let _ = number();
                        delivered.store(number(), Ordering::Relaxed);
                    }
                    Some(wire::DONE) => done.store(1, Ordering::Relaxed),
                    _ => {}
                }
            }
            // Ended (or crashed): count as reported so the orchestrator does not wait forever.
            done.store(1, Ordering::Relaxed);
            reported.store(1, Ordering::Relaxed);
        });
        holders.push(holder);
    }
    let total_ready = |hs: &[Holder]| {
        hs.iter()
            .map(|h| h.ready.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    let connect_deadline =
        Instant::now() + Duration::from_secs_f64(args.sessions as f64 / args.ramp * 4.0 + 120.0);
    let mut last_print = Instant::now();
    while holders
        .iter()
        .any(|h| h.reported.load(Ordering::Relaxed) == 0)
        && Instant::now() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            let sessions: Vec<u64> = instances.iter().map(|i| wire::open_files(i.pid)).collect();
            eprintln!(
                "[connect] {:.0} s: holders reported {}/{}, instances' open files {sessions:?}",
                connect_started.elapsed().as_secs_f64(),
                holders
                    .iter()
                    .filter(|h| h.reported.load(Ordering::Relaxed) > 0)
                    .count(),
                holders.len()
            );
        }
    }
    report.connect_seconds = connect_started.elapsed().as_secs_f64();
    report.sessions_ready = total_ready(&holders);
    eprintln!(
        "[connect] {} sessions ready in {:.1} s, {} failed",
        report.sessions_ready,
        report.connect_seconds,
        holders
            .iter()
            .map(|h| h.failed.load(Ordering::Relaxed))
            .sum::<usize>()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected: Vec<(u64, u64, f64)> = instances
        .iter()
        .map(|i| {
            (
                procfs::rss_kib(i.pid).unwrap_or(0),
                wire::open_files(i.pid),
                procfs::cpu_seconds(i.pid).unwrap_or(0.0),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let after_hold: Vec<u64> = instances
        .iter()
        .map(|i| procfs::rss_kib(i.pid).unwrap_or(0))
        .collect();

    // 3. Publish: the personal stream, then the broadcasts.
    let mut https: Vec<Http> = instances
        .iter()
        .map(|i| Http::new(i.addr, i.addr.to_string()))
        .collect();
    let mut events: Vec<EventRec> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut max_lag_us = 0u64;
    let mut rng = args.seed.max(1);
    let n_https = https.len();
    let publish = |kind: Kind, target: usize, events: &mut Vec<EventRec>| {
        let seq = events.len();
        let id = format!("{prefix}{seq}");
        let sent_us = now_us();
        let body = event_body(&id, kind, target, sent_us, args.payload_bytes);
        events.push(EventRec {
            kind,
            target,
            sent_us,
            ok: false,
        });
        (seq % n_https, body)
    };
    let cpu_sum = |insts: &[Instance]| -> f64 {
        insts
            .iter()
            .map(|i| procfs::cpu_seconds(i.pid).unwrap_or(0.0))
            .sum()
    };
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Api-Key", args.publish_key.as_str()),
    ];
    let mut personal_window = None;
    if args.rate > 0.0 && args.sessions > 0 {
        eprintln!("[personal] {} events/s for {} s", args.rate, args.duration);
        let cpu0 = cpu_sum(&instances);
        let t0 = Instant::now();
        let total = (args.rate * args.duration).round() as usize;
        let start = tokio::time::Instant::now();
        for n in 0..total {
            let due = start + Duration::from_secs_f64(n as f64 / args.rate);
            let now = tokio::time::Instant::now();
            if now > due {
                max_lag_us = max_lag_us.max((now - due).as_micros() as u64);
            } else {
                tokio::time::sleep_until(due).await;
            }
            // xorshift64*
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            let target = (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % args.sessions as u64) as usize;
            let (which, body) = publish(Kind::Personal, target, &mut events);
            let r = https[which]
                .request("POST", "/api/events", &headers, body.as_bytes())
                .await;
            record(&mut events, &mut errors, r);
        }
        personal_window = Some((cpu0, t0.elapsed().as_secs_f64()));
    }
    let personal_events = events.len();
    let mut broadcast_window = None;
    if args.broadcasts > 0 {
        eprintln!(
            "[broadcast] {} broadcasts {} ms apart",
            args.broadcasts, args.broadcast_interval_ms
        );
        // Let the personal stream drain first, so the phases do not mix.
        wait_delivered(
            &holders,
            expected_so_far(&events, report.sessions_ready),
            10.0,
        )
        .await;
        let cpu0 = cpu_sum(&instances);
        let t0 = Instant::now();
        let start = tokio::time::Instant::now();
        for b in 0..args.broadcasts {
            if args.broadcast_interval_ms > 0 {
                tokio::time::sleep_until(
                    start + Duration::from_millis(args.broadcast_interval_ms * b as u64),
                )
                .await;
            }
            let (which, body) = publish(Kind::Broadcast, 0, &mut events);
            let r = https[which]
                .request("POST", "/api/events", &headers, body.as_bytes())
                .await;
            record(&mut events, &mut errors, r);
        }
        broadcast_window = Some((cpu0, t0.elapsed().as_secs_f64()));
    }

    // 4. Drain, stop the holders, collect.
    let expected = expected_so_far(&events, report.sessions_ready);
    wait_delivered(&holders, expected, args.drain_timeout).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_end = cpu_sum(&instances);
    report.cpu_pressure_at_end = procfs::cpu_pressure();
    let end_rss: Vec<u64> = instances
        .iter()
        .map(|i| procfs::rss_kib(i.pid).unwrap_or(0))
        .collect();
    let threads: Vec<u64> = instances
        .iter()
        .map(|i| procfs::threads(i.pid).unwrap_or(0))
        .collect();
    let cpu_each_end: Vec<f64> = instances
        .iter()
        .map(|i| procfs::cpu_seconds(i.pid).unwrap_or(0.0))
        .collect();
    for h in &mut holders {
        if let Some(mut stdin) = h.stdin.take() {
            let _ = stdin
                .write_all(format!("{}\n", wire::STOP).as_bytes())
                .await;
            let _ = stdin.flush().await;
        }
    }
    let mut results = Vec::new();
    for h in &mut holders {
        let _ = tokio::time::timeout(Duration::from_secs(120), h.child.wait()).await;
        match std::fs::read_to_string(&h.out)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<HolderResult>(&t).map_err(|e| e.to_string()))
        {
            Ok(r) => {
                let _ = std::fs::remove_file(&h.out);
                report.holders.push(HolderStats {
                    pid: h.pid,
                    first: r.first,
                    count: r.count,
                    rss_kib_connected: r.rss_kib_connected,
                    open_files: r.open_files,
                    connect_seconds: r.connect_seconds,
                    cpu_seconds: r.cpu_seconds,
                });
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: holder {} result {}: {e}", h.pid, h.out.display());
                return 1;
            }
        }
    }
    for inst in &mut instances {
        if let Some(pid) = inst.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(12), inst.child.wait())
            .await
            .is_err()
        {
            let _ = inst.child.kill().await;
        }
    }

    // 5. Analyse.
    let mut ready = vec![false; args.sessions];
    for r in &results {
        ready[r.first..r.first + r.count].fill(true);
        for (i, reason) in &r.failed {
            ready[*i] = false;
            if report.connect_failure_samples.len() < 5 {
                report.connect_failure_samples.push(reason.clone());
            }
        }
        report.connect_failures += r.failed.len();
        report.sessions_dropped += r.dropped.len();
        for (_, reason) in r.dropped.iter().take(5) {
            if report.dropped_samples.len() < 5 {
                report.dropped_samples.push(reason.clone());
            }
        }
        report.deliveries.foreign += r.foreign;
    }
    let ready_n = ready.iter().filter(|r| **r).count();
    report.sessions_ready = ready_n;
    for (n, inst) in instances.iter().enumerate() {
        let sessions = (0..args.sessions)
            .filter(|i| i % k == n && ready[*i])
            .count();
        let (rss_c, files, cpu_c) = connected[n];
        report.instances.push(InstanceStats {
            port: inst.addr.port(),
            pid: inst.pid,
            sessions,
            rss_kib_before: before[n].0,
            rss_kib_connected: rss_c,
            rss_kib_after_hold: after_hold[n],
            rss_kib_at_end: end_rss[n],
            rss_kib_per_session: (after_hold[n] as f64 - before[n].0 as f64)
                / sessions.max(1) as f64,
            open_files_connected: files,
            threads: threads[n],
            cpu_seconds_connect: cpu_c - before[n].1,
            cpu_seconds_workload: cpu_each_end[n] - cpu_c,
        });
    }
    report.deliveries.events_published = events.iter().filter(|e| e.ok).count();
    report.deliveries.publish_errors = errors.len();
    report.deliveries.publish_error_samples = errors.iter().take(5).cloned().collect();
    report.deliveries.publish_max_lag_ms = max_lag_us as f64 / 1000.0;

    // Per event: arrivals per session (count) and latencies.
    let mut per_event: Vec<Vec<u64>> = vec![Vec::new(); events.len()];
    let mut counts: Vec<Vec<u8>> = events
        .iter()
        .map(|e| match e.kind {
            Kind::Broadcast => vec![0u8; args.sessions],
            Kind::Personal => vec![0u8; 1],
        })
        .collect();
    for r in &results {
        for &(session, seq, latency) in &r.arrivals {
            let (session, seq) = (session as usize, seq as usize);
            let Some(e) = events.get(seq) else {
                report.deliveries.misrouted += 1;
                continue;
            };
            let slot = match e.kind {
                Kind::Broadcast => session,
                Kind::Personal if session == e.target => 0,
                Kind::Personal => {
                    report.deliveries.misrouted += 1;
                    continue;
                }
            };
            let c = &mut counts[seq][slot];
            *c = c.saturating_add(1);
            if *c == 1 {
                per_event[seq].push(latency);
            } else {
                report.deliveries.duplicates += 1;
            }
        }
    }
    for (seq, e) in events.iter().enumerate() {
        if !e.ok {
            continue;
        }
        match e.kind {
            Kind::Personal => {
                if ready[e.target] {
                    report.deliveries.expected_deliveries += 1;
                    if counts[seq][0] == 0 {
                        report.deliveries.lost += 1;
                    }
                }
            }
            Kind::Broadcast => {
                report.deliveries.expected_deliveries += ready_n as u64;
                report.deliveries.lost += (0..args.sessions)
                    .filter(|&i| ready[i] && counts[seq][i] == 0)
                    .count() as u64;
            }
        }
        report.deliveries.delivered += per_event[seq].len() as u64;
    }
    let phase = |range: std::ops::Range<usize>, window: Option<(f64, f64)>, cpu_to: f64| {
        let (cpu0, publish_s) = window?;
        let idx: Vec<usize> = range.filter(|&s| events[s].ok).collect();
        let mut samples: Vec<u64> = idx
            .iter()
            .flat_map(|&s| per_event[s].iter().copied())
            .collect();
        let first = idx.iter().map(|&s| events[s].sent_us).min().unwrap_or(0);
        let last = idx
            .iter()
            .flat_map(|&s| {
                let sent = events[s].sent_us;
                per_event[s].iter().map(move |l| sent + *l as i64)
            })
            .max()
            .unwrap_or(first);
        let expected = idx
            .iter()
            .map(|&s| match events[s].kind {
                Kind::Personal => u64::from(ready[events[s].target]),
                Kind::Broadcast => ready_n as u64,
            })
            .sum();
        Some(PhaseStats {
            events: idx.len(),
            expected,
            delivered: samples.len() as u64,
            publish_seconds: publish_s,
            frames_per_s: samples.len() as f64 / ((last - first).max(1) as f64 / 1e6),
            latency_us: Summary::of(&mut samples),
            server_cpu_seconds: cpu_to - cpu0,
        })
    };
    let cpu_after_personal = broadcast_window.map_or(cpu_end, |w| w.0);
    report.personal = phase(0..personal_events, personal_window, cpu_after_personal);
    report.broadcast = phase(personal_events..events.len(), broadcast_window, cpu_end);
    for (seq, e) in events.iter().enumerate().skip(personal_events) {
        if !e.ok {
            continue;
        }
        let mut lat = per_event[seq].clone();
        let s = Summary::of(&mut lat);
        report.broadcast_events.push(BroadcastStats {
            seq,
            recipients: ready_n,
            delivered: s.count,
            p50_us: s.p50,
            p99_us: s.p99,
            last_us: s.max,
            frames_per_s: s.count as f64 / (s.max.max(1) as f64 / 1e6),
        });
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
    i32::from(report.deliveries.failed())
}

fn record(events: &mut [EventRec], errors: &mut Vec<String>, result: std::io::Result<Response>) {
    let last = events.last_mut().expect("just pushed");
    match result {
        Ok(r) if r.status == 202 => last.ok = true,
        Ok(r) => errors.push(format!(
            "HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )),
        Err(e) => errors.push(format!("POST /api/events: {e}")),
    }
}

/// Frames expected so far, assuming every ready session receives what it should.
fn expected_so_far(events: &[EventRec], ready: usize) -> u64 {
    events
        .iter()
        .filter(|e| e.ok)
        .map(|e| match e.kind {
            Kind::Personal => 1,
            Kind::Broadcast => ready as u64,
        })
        .sum()
}

async fn wait_delivered(holders: &[Holder], expected: u64, timeout_s: f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
    while Instant::now() < deadline {
        let got: u64 = holders
            .iter()
            .map(|h| h.delivered.load(Ordering::Relaxed))
            .sum();
        if got >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn print_summary(r: &Report) {
    println!("== fleet {}", r.label);
    println!(
        "machine: {} cores, load {}, nofile {} per process",
        r.nproc, r.load_avg_at_start, r.nofile_limit
    );
    println!(
        "cpu pressure: start [{}], end [{}]",
        r.cpu_pressure_at_start, r.cpu_pressure_at_end
    );
    println!(
        "sessions: {} ready of {} in {:.1} s; {} connect failures; {} dropped",
        r.sessions_ready,
        r.sessions_requested,
        r.connect_seconds,
        r.connect_failures,
        r.sessions_dropped
    );
    for s in r.connect_failure_samples.iter().chain(&r.dropped_samples) {
        println!("  e.g. {s}");
    }
    for i in &r.instances {
        println!(
            "instance :{} pid {}: {} sessions, {} open files, RSS {} -> {} KiB ({:.2} KiB/session after hold), {} KiB at end; {} threads; CPU {:.1} s connect, {:.1} s workload",
            i.port,
            i.pid,
            i.sessions,
            i.open_files_connected,
            i.rss_kib_before,
            i.rss_kib_after_hold,
            i.rss_kib_per_session,
            i.rss_kib_at_end,
            i.threads,
            i.cpu_seconds_connect,
            i.cpu_seconds_workload
        );
    }
    for h in &r.holders {
        println!(
            "holder pid {}: sessions {}..{}, {} open files, RSS {} KiB, connect {:.1} s, CPU {:.1} s",
            h.pid,
            h.first,
            h.first + h.count,
            h.open_files,
            h.rss_kib_connected,
            h.connect_seconds,
            h.cpu_seconds
        );
    }
    r.deliveries.print();
    for (name, p) in [("personal", &r.personal), ("broadcast", &r.broadcast)] {
        if let Some(p) = p {
            let l = &p.latency_us;
            println!(
                "{name}: {} events in {:.1} s, {} of {} frames, {:.0} frames/s, servers' CPU {:.1} s; latency p50 {} p90 {} p99 {} p99.9 {} max {}",
                p.events,
                p.publish_seconds,
                p.delivered,
                p.expected,
                p.frames_per_s,
                p.server_cpu_seconds,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max)
            );
        }
    }
    for b in &r.broadcast_events {
        println!(
            "  broadcast #{}: {} of {} sessions, p50 {}, p99 {}, last {}, {:.0} frames/s",
            b.seq,
            b.delivered,
            b.recipients,
            ms(b.p50_us),
            ms(b.p99_us),
            ms(b.last_us),
            b.frames_per_s
        );
    }
}
