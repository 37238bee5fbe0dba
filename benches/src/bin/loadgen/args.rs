//! The command-line flags and their checks.

use std::path::PathBuf;

use clap::Parser;

/// Command-line flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for the notification server: N WebSocket STOMP sessions, events over POST /api/events, latency, loss, duplicates and server memory per session"
)]
pub(crate) struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// STOMP sessions to open (user u<i> for session i).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub(crate) sessions: usize,
    /// Number of groups; user u<i> is in group g<i mod groups>.
    #[arg(long, default_value_t = 10)]
    pub(crate) groups: usize,
    /// Loopback source addresses to spread sessions over (127.0.0.2 ...); 0: 127.0.0.1 only.
    #[arg(long, default_value_t = 4)]
    pub(crate) source_addrs: u8,
    /// New sessions per second during the ramp.
    #[arg(long, default_value_t = 2000.0)]
    pub(crate) ramp: f64,
    /// Session handshakes in flight at most.
    #[arg(long, default_value_t = 128)]
    pub(crate) connect_concurrency: usize,
    /// HS256 secret the server verifies tokens with (its NOTIFY_JWT_SECRET).
    #[arg(long, env = "NOTIFY_JWT_SECRET", default_value = "notify-demo-secret")]
    pub(crate) secret: String,
    /// The server's publish key (NOTIFY_PUBLISH_KEY).
    #[arg(long, env = "NOTIFY_PUBLISH_KEY", default_value = "notify-demo-key")]
    pub(crate) publish_key: String,
    /// Events per second in the steady phase (0: no steady phase).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,
    /// Length of the steady phase in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Steady-phase mix as weights personal,group,broadcast.
    #[arg(long, default_value = "90,10,0")]
    pub(crate) mix: String,
    /// Broadcasts to send after the steady phase.
    #[arg(long, default_value_t = 0)]
    pub(crate) broadcasts: usize,
    /// Milliseconds between broadcasts; 0 sends them back to back (a burst).
    #[arg(long, default_value_t = 1000)]
    pub(crate) broadcast_interval_ms: u64,
    /// Pad each event's `data` with a string of this many bytes (`data.pad`).
    #[arg(long, default_value_t = 0)]
    pub(crate) payload_bytes: usize,
    /// Seconds to hold the sessions idle after connecting (memory measurement).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) hold: f64,
    /// Seconds to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value_t = 15.0)]
    pub(crate) drain_timeout: f64,
    /// PID of the server under test, for its resident memory and CPU time.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Start this server binary (e.g. target/release/examples/server) listening on --url,
    /// with NOTIFY_JWT_SECRET and NOTIFY_PUBLISH_KEY from these flags; stopped at the end.
    #[arg(long)]
    pub(crate) spawn_server: Option<PathBuf>,
    /// Extra environment for the spawned server, KEY=VALUE (repeatable).
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub(crate) server_env: Vec<String>,
    /// File for the spawned server's output (default: discarded).
    #[arg(long)]
    pub(crate) server_log: Option<PathBuf>,
    /// Kafka bootstrap servers: the spawned server runs in Kafka mode
    /// (NOTIFY_KAFKA_BROKERS), so published events travel through Kafka.
    #[arg(long)]
    pub(crate) kafka_brokers: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// A label for this run, copied into the JSON.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// Worker threads of the load generator (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// No progress line.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Seed of the event mix.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

pub(crate) fn parse_mix(s: &str) -> Result<[u64; 3], String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses() {
        assert_eq!(parse_mix("90,10,0").unwrap(), [90, 10, 0]);
        assert!(parse_mix("0,0,0").is_err());
        assert!(parse_mix("1,2").is_err());
    }
}
