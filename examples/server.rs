//! The notification service: configuration from the contract's environment variables (each
//! also a flag), demo mode without a JWT key, in-memory or real backends, served by axum.
//!
//! ```text
//! cargo run --release --example server            # demo mode: http://127.0.0.1:8080/demo
//! NOTIFY_JWT_SECRET=… NOTIFY_PUBLISH_KEY=… cargo run --release --example server
//! ```

#[path = "server/backends.rs"]
mod backends;
#[path = "server/config.rs"]
mod config;
#[path = "server/config_file.rs"]
mod config_file;
#[path = "server/deferred.rs"]
mod deferred;
#[path = "server/demo.rs"]
mod demo;
#[path = "server/escalation.rs"]
mod escalation;
#[path = "server/json_log.rs"]
mod json_log;
#[path = "server/logging.rs"]
mod logging;
#[path = "server/readiness.rs"]
mod readiness;
#[path = "server/traces.rs"]
mod traces;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::FutureExt;
use notify_core::serve::serve;
use notify_core::NotifyService;

fn main() {
    // One clear line naming the variable, then a non-zero exit.
    let fail = |e: notify_core::Error| -> ! {
        eprintln!("error: {e}");
        std::process::exit(2);
    };
    let args = config_file::parse_args().unwrap_or_else(|e| fail(e));
    let format = logging::LogFormat::parse(&args.log_format).unwrap_or_else(|e| fail(e));
    let check_only = args.check_config;
    let otlp = traces::OtlpConfig::from_args(&args).unwrap_or_else(|e| fail(e));
    // Started before the runtime: its HTTP client is a blocking one, on its own thread.
    let exporter = match (&otlp, check_only) {
        (Some(otlp), false) => Some(otlp.start().unwrap_or_else(|e| fail(e))),
        _ => None,
    };
    logging::init(format, exporter.as_ref().map(traces::Exporter::layer));
    let config = config::Config::from_args(args).unwrap_or_else(|e| fail(e));
    if check_only {
        println!(
            "configuration OK: listen {}, events {}, store {}{}",
            config.listen,
            if config.args_kafka_brokers.is_some() {
                "kafka"
            } else {
                "memory"
            },
            if config.mongo_uri.is_some() {
                "mongodb"
            } else {
                "memory"
            },
            if config.demo { " (demo mode)" } else { "" }
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(notify_core::Error::internal(e)));
    let propagator = exporter.as_ref().map(|e| {
        tracing::info!(url = e.url(), "exporting spans over OTLP/HTTP");
        e.propagator()
    });
    let result = runtime.block_on(run(config, propagator));
    drop(runtime);
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    if let Err(e) = result {
        fail(e);
    }
}

async fn run(
    config: config::Config,
    propagator: Option<Arc<dyn notify_core::trace::TracePropagator>>,
) -> notify_core::Result<()> {
    let escalation = escalation::Escalation::from_args(&config.escalation, config.listen)?;
    if config.demo {
        tracing::warn!("==============================================================");
        tracing::warn!("DEMO MODE: no NOTIFY_JWT_SECRET or NOTIFY_JWT_PUBLIC_KEY_FILE set.");
        tracing::warn!("Tokens are signed with the public demo secret and anyone can mint");
        tracing::warn!("them at /demo/token. Listening on loopback only. Never deploy this.");
        tracing::warn!("==============================================================");
    }
    let backends = backends::Backends::start(&config).await?;
    let service = NotifyService::builder(
        backends.store.clone(),
        backends.sink.clone(),
        config
            .auth
            .clone()
            .with_email_claim(escalation.email_claim.clone()),
    )
    .event_source(backends.source.clone())
    .rules(config.rules.clone())
    .config(config.service.clone())
    .preferences(backends.prefs.clone())
    .escalation(escalation.enabled());
    let service = match propagator {
        Some(p) => service.trace_propagator(p),
        None => service,
    }
    .build();
    let running = backends.run(service.clone()).await?;
    let instance = config.instance_id.clone().unwrap_or_else(instance_name);
    let escalator = escalation.spawn(service.clone(), instance.clone());
    if escalator.is_some() {
        tracing::info!(channels = ?escalation.names(), %instance, "escalation on");
    }

    let mut app = Router::new().merge(notify_axum::router(service.clone()));
    app = app.merge(demo::widget_routes());
    if config.demo {
        app = app.merge(demo::demo_routes(
            config.demo_secret.clone(),
            config.demo_publish_key.clone(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            notify_core::Error::config(
                "NOTIFY_LISTEN",
                format!("cannot listen on {}: {e}", config.listen),
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(notify_core::Error::internal)?;
    tracing::info!(
        %addr,
        store = backends.store_name,
        http = ?config.http,
        events = backends.source_name,
        "notify server listening{}",
        if config.demo { format!("; demo at http://{addr}/demo") } else { String::new() }
    );

    // Listen for SIGTERM from the start (a spawned task is polled at once), then tell the
    // HTTP server to stop accepting.
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(
        notify_axum::shutdown_on_signal(service.clone()).then(move |_| async move {
            let _ = stopped_tx.send(true);
        }),
    );
    let shutdown = {
        let mut stopped = stopped_rx.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut stopped_rx = stopped_rx;
    let limits = config.serve_limits;
    // Both adapters run in the core's hardened server loop (header-read timeout, socket
    // cap); in demo mode every request must name a loopback host.
    let server = match config.http {
        config::Http::Axum => {
            if config.demo {
                let app = demo::LoopbackOnly(app);
                tokio::spawn(serve(listener, app, limits, shutdown))
            } else {
                tokio::spawn(serve(listener, app, limits, shutdown))
            }
        }
        config::Http::Warp => {
            use warp::Filter;
            let demo = config
                .demo
                .then(|| (config.demo_secret.clone(), config.demo_publish_key.clone()));
            let app =
                warp::service(notify_warp::routes(service.clone()).or(demo::warp_routes(demo)));
            if config.demo {
                let app = demo::LoopbackOnly(app);
                tokio::spawn(serve(listener, app, limits, shutdown))
            } else {
                tokio::spawn(serve(listener, app, limits, shutdown))
            }
        }
    };
    let _ = stopped_rx.wait_for(|s| *s).await;
    // Sessions got their reconnect hint; give connections a moment, then finish writes.
    if tokio::time::timeout(Duration::from_secs(4), server)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 4 s; closing them");
    }
    if let Some(escalator) = escalator {
        escalator.shutdown(Duration::from_secs(1)).await;
    }
    running.shutdown(Duration::from_secs(4)).await;
    tracing::info!("stopped");
    Ok(())
}

/// This instance's name when `NOTIFY_INSTANCE_ID` is not set: host name and a random
/// suffix (the escalation lease owner).
fn instance_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "notify".into());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{host}-{:08x}", h.finish() as u32)
}

#[allow(dead_code)]
fn assert_send_sync(_: Arc<NotifyService>) {}
