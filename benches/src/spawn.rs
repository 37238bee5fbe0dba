//! The environment of a server the load generators start (`loadgen --spawn-server`, `fleet`'s
//! instances): listen address, secret and publish key (or demo mode), Kafka, extra
//! `KEY=VALUE`s and where its output goes. Shared so both start it the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// The demo mode's secret and publish key (the example server's defaults).
pub const DEMO_SECRET: &str = "notify-demo-secret";
/// See [`DEMO_SECRET`].
pub const DEMO_PUBLISH_KEY: &str = "notify-demo-key";

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpawn<'a> {
    /// The server binary.
    pub path: &'a Path,
    /// `NOTIFY_LISTEN`.
    pub listen: SocketAddr,
    /// `NOTIFY_JWT_SECRET`.
    pub secret: &'a str,
    /// `NOTIFY_PUBLISH_KEY`.
    pub publish_key: &'a str,
    /// `NOTIFY_KAFKA_BROKERS`, for Kafka mode.
    pub kafka_brokers: Option<&'a str>,
    /// Extra environment, `KEY=VALUE` each.
    pub env: &'a [String],
    /// File for its stdout and stderr (default: discarded).
    pub log: Option<PathBuf>,
}

impl ServerSpawn<'_> {
    /// The command, not started, killed when dropped. The server refuses HS256 secrets under
    /// 32 bytes except in demo mode, whose secret and key are the defaults: with both, neither
    /// is set. `RUST_LOG` is `warn` unless the caller's environment sets it.
    pub fn command(&self) -> Result<Command, String> {
        let mut cmd = Command::new(self.path);
        cmd.env("NOTIFY_LISTEN", self.listen.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if self.secret == DEMO_SECRET && self.publish_key == DEMO_PUBLISH_KEY {
            cmd.env_remove("NOTIFY_JWT_SECRET")
                .env_remove("NOTIFY_PUBLISH_KEY");
        } else {
            cmd.env("NOTIFY_JWT_SECRET", self.secret)
                .env("NOTIFY_PUBLISH_KEY", self.publish_key);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        if let Some(brokers) = self.kafka_brokers {
            cmd.env("NOTIFY_KAFKA_BROKERS", brokers);
        }
        for kv in self.env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--server-env wants KEY=VALUE, got {kv:?}"))?;
            cmd.env(k, v);
        }
        match &self.log {
            Some(p) => {
                let f = std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let f2 = f.try_clone().map_err(|e| e.to_string())?;
                cmd.stdout(f).stderr(f2);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        Ok(cmd)
    }
}
