//! What holders tell the orchestrator: stdout lines while running, a JSON file at the end.

use serde::{Deserialize, Serialize};

/// Stdout line prefix: the connect phase is over (`READY <ready> <failed>`).
pub(crate) const READY: &str = "READY";
/// Stdout line prefix: frames of this run seen so far (`DELIVERED <n>`).
pub(crate) const DELIVERED: &str = "DELIVERED";
/// Stdout line: the result file is written.
pub(crate) const DONE: &str = "DONE";
/// Stdin line from the orchestrator: stop the sessions and write the result file.
pub(crate) const STOP: &str = "STOP";

/// What one holder saw, written to its `--out` file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct HolderResult {
    /// First session index of this holder.
    pub first: usize,
    /// Sessions it was asked to open.
    pub count: usize,
    /// Sessions that failed to connect: (index, reason).
    pub failed: Vec<(usize, String)>,
    /// Sessions that ended before the stop: (index, reason).
    pub dropped: Vec<(usize, String)>,
    /// (session index, event sequence number, latency µs) per MESSAGE frame of this run.
    pub arrivals: Vec<(u32, u32, u64)>,
    /// MESSAGE frames not from this run (another run's events).
    pub foreign: u64,
    /// The holder's resident memory once connected, KiB.
    pub rss_kib_connected: u64,
    /// The holder's open files once connected.
    pub open_files: u64,
    /// Seconds from the first connect to the last session ready.
    pub connect_seconds: f64,
    /// The holder's CPU time, seconds.
    pub cpu_seconds: f64,
}

/// Open files of a process (entries of `/proc/<pid>/fd`).
pub(crate) fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}
