//! The results: the JSON report, the machine description, and the printed summary.

use notify_benches::deliveries::Deliveries;
use notify_benches::stats::Summary;
use serde::Serialize;

/// The JSON report.
#[derive(Debug, Serialize, Default)]
pub(crate) struct Report {
    pub(crate) label: String,
    pub(crate) args: String,
    pub(crate) started_at: String,
    pub(crate) machine: Machine,
    pub(crate) sessions_requested: usize,
    pub(crate) sessions_ready: usize,
    pub(crate) connect_failures: usize,
    pub(crate) connect_failure_reasons: Vec<(String, usize)>,
    pub(crate) connect_seconds: f64,
    pub(crate) connect_rate_per_s: f64,
    pub(crate) sessions_dropped: usize,
    pub(crate) dropped_reasons: Vec<(String, usize)>,
    pub(crate) server: Option<ServerStats>,
    pub(crate) loadgen_rss_kib_after_connect: u64,
    pub(crate) loadgen_cpu_seconds: f64,
    /// Flattened: the JSON keeps its top-level `events_published`, `lost`, ... fields.
    #[serde(flatten)]
    pub(crate) deliveries: Deliveries,
    pub(crate) phases: Vec<PhaseReport>,
    pub(crate) broadcast_events: Vec<BroadcastEvent>,
}

#[derive(Debug, Serialize, Default)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_total_kib: u64,
    pub(crate) load_avg_at_start: String,
    /// `/proc/pressure/cpu` "some" line at the start and at the end of the run.
    pub(crate) cpu_pressure_at_start: String,
    pub(crate) cpu_pressure_at_end: String,
    pub(crate) nofile_limit: u64,
}

#[derive(Debug, Serialize, Default)]
pub(crate) struct ServerStats {
    pub(crate) pid: u32,
    pub(crate) rss_kib_before_connect: u64,
    pub(crate) rss_kib_after_connect: u64,
    pub(crate) rss_kib_after_hold: Option<u64>,
    pub(crate) rss_kib_at_end: u64,
    pub(crate) peak_rss_kib: u64,
    pub(crate) rss_kib_per_session: f64,
    pub(crate) threads: u64,
    pub(crate) cpu_seconds_connect: f64,
    pub(crate) cpu_seconds_workload: f64,
}

#[derive(Debug, Serialize, Default)]
pub(crate) struct PhaseReport {
    pub(crate) phase: String,
    pub(crate) events: usize,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) seconds: f64,
    /// Events per second actually published.
    pub(crate) event_rate: f64,
    /// Delivered frames per second from the first send to the last arrival.
    pub(crate) delivered_per_s: f64,
    pub(crate) latency_us: Summary,
    pub(crate) server_cpu_seconds: Option<f64>,
}

#[derive(Debug, Serialize, Default)]
pub(crate) struct BroadcastEvent {
    pub(crate) seq: usize,
    pub(crate) recipients: usize,
    pub(crate) delivered: usize,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) last_us: u64,
    pub(crate) frames_per_s: f64,
}

pub(crate) fn machine() -> Machine {
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
        cpu_pressure_at_start: notify_benches::procfs::cpu_pressure(),
        cpu_pressure_at_end: String::new(),
        nofile_limit: 0,
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

pub(crate) fn print_summary(r: &Report) {
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
    let d = &r.deliveries;
    if d.expected_deliveries > 0 || d.events_published > 0 {
        d.print();
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
