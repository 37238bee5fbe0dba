//! `fleet`: many server instances and many load-generator processes on one box.
//!
//! One process may hold at most 20,000 open files here, so 100,000 sessions need several
//! server instances *and* several client processes. `fleet run` is the orchestrator:
//!
//! 1. starts `--instances` servers (`--server`, ports `--base-port`…), all with the same
//!    Kafka brokers, topic, group and store (`--server-env`), each with its own
//!    `NOTIFY_INSTANCE_ID`;
//! 2. starts `--holders` copies of itself as `fleet hold`, each opening a slice of the
//!    `--sessions` WebSocket STOMP sessions (session `i` is user `u<i>` in group
//!    `g<i mod groups>`, on instance `i mod instances`), from its own loopback source
//!    addresses;
//! 3. once every holder reports its sessions ready, reads each instance's memory and open
//!    files, publishes a personal stream (`--rate` events/s for `--duration` s, to users
//!    picked at random among all sessions) and then `--broadcasts` broadcasts, all over
//!    `POST /api/events`, round-robin over the instances;
//! 4. waits until the holders have seen every expected frame (or `--drain-timeout`), stops
//!    them, merges what each session saw and reports: per-instance RSS per session and open
//!    files, the personal stream's latency, each broadcast's p50/p99/max to the last session
//!    and frames/s, and lost, duplicated and misrouted (session, event) pairs.
//!
//! Holders and the orchestrator talk over the holders' stdin/stdout (one line per message);
//! a holder writes what its sessions saw to a JSON file the orchestrator reads at the end.
//! Latency is arrival time minus the `data.sent_at_us` the event carries (one clock: all on
//! one box).

mod hold;
mod run;
mod wire;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "fleet",
    about = "Several server instances and load-generator processes on one box: 100k sessions, broadcasts to all, loss and duplicates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the instances and holders, publish, measure, report.
    Run(run::RunArgs),
    /// (internal) Hold a slice of the sessions; started by `run`.
    Hold(hold::HoldArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Hold(args) => hold::main(args),
    };
    std::process::exit(code);
}
