//! The server under test: resolving `--url`, waiting until it is live, starting it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use notify_benches::http::Http;
use notify_benches::spawn::ServerSpawn;

use crate::args::Args;

pub(crate) async fn resolve(url: &str) -> Result<(SocketAddr, String), String> {
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

pub(crate) async fn wait_live(
    addr: SocketAddr,
    host: &str,
    within: Duration,
) -> Result<(), String> {
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

pub(crate) fn spawn_server(args: &Args, addr: SocketAddr) -> Result<tokio::process::Child, String> {
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
