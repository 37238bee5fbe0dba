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

mod analysis;
mod args;
mod publish;
mod report;
mod server;
mod sessions;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use notify_benches::clock::now_us;
use notify_benches::http::Http;
use notify_benches::procfs;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::analysis::{analyse, top_reasons};
use crate::args::{parse_mix, Args};
use crate::publish::{Kind, Phase, Publisher, Rng};
use crate::report::{machine, print_summary, Machine, Report, ServerStats};
use crate::server::{resolve, spawn_server, wait_live};
use crate::sessions::{session, Outcome, Setup, Shared};

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
    report.machine.cpu_pressure_at_end = notify_benches::procfs::cpu_pressure();
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
    i32::from(report.deliveries.failed())
}
