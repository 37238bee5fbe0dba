//! Metrics through the `metrics` facade, with the contract's names. With the default
//! `prometheus` feature, [`install_prometheus`] installs a recorder whose text the HTTP
//! adapters serve at `/metrics`.

use std::time::Duration;

/// Gauge: connected sessions.
pub const SESSIONS: &str = "notify_sessions";
/// Counter by `result` (`accepted`, `stored`, `duplicate`, `dead_letter`, `rejected`).
pub const EVENTS_TOTAL: &str = "notify_events_total";
/// Counter: notifications newly stored.
pub const NOTIFICATIONS_STORED_TOTAL: &str = "notify_notifications_stored_total";
/// Counter: MESSAGE frames and SSE events written to clients.
pub const MESSAGES_PUSHED_TOTAL: &str = "notify_messages_pushed_total";
/// Counter by `reason` (`client`, `error`, `slow_consumer`, `heartbeat`, `shutdown`, `expired`).
pub const SESSIONS_CLOSED_TOTAL: &str = "notify_sessions_closed_total";
/// Histogram: event time to frame written, seconds.
pub const DELIVERY_LATENCY_SECONDS: &str = "notify_delivery_latency_seconds";
/// Histogram: one store batch write, seconds.
pub const STORE_WRITE_SECONDS: &str = "notify_store_write_seconds";
/// Gauge by `topic`, `partition`: consumer lag (set by the Kafka adapter).
pub const KAFKA_CONSUMER_LAG: &str = "notify_kafka_consumer_lag";
/// Counter: store batch writes that failed (each retry counts), for alerting on outages.
pub const STORE_WRITE_ERRORS_TOTAL: &str = "notify_store_write_errors_total";
/// Gauge: 1 when `/health/ready` would answer 200, else 0 (refreshed on every readiness check
/// and every scrape of `/metrics`).
pub const READY: &str = "notify_ready";
/// Gauge by `component` (`store`, `event_source`): 1 when it answers, else 0.
pub const COMPONENT_UP: &str = "notify_component_up";
/// Gauge: the configured connection cap (`NOTIFY_MAX_CONNECTIONS`), so alerts can compare
/// `notify_sessions` with it.
pub const MAX_CONNECTIONS: &str = "notify_max_connections";

/// Handles of the metrics written on hot paths, resolved once when our recorder is installed.
///
/// A `metrics::counter!(...)` call hashes the name and labels and looks them up in the
/// recorder's registry every time; per pushed frame that was a measurable share of the
/// fan-out cost. With another recorder (or none) the macros are used as before.
struct Handles {
    pushed: metrics::Counter,
    latency: metrics::Histogram,
    sessions: metrics::Gauge,
    events: Vec<(&'static str, metrics::Counter)>,
    closed: Vec<(&'static str, metrics::Counter)>,
}

static HANDLES: std::sync::OnceLock<Handles> = std::sync::OnceLock::new();

/// The `result` labels of [`EVENTS_TOTAL`].
// Only the Prometheus recorder (feature `prometheus`) uses it.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const EVENT_RESULTS: [&str; 5] = ["accepted", "stored", "duplicate", "dead_letter", "rejected"];
/// The `reason` labels of [`SESSIONS_CLOSED_TOTAL`].
// Only the Prometheus recorder (feature `prometheus`) uses it.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
const CLOSE_REASONS: [&str; 6] = [
    "client",
    "error",
    "slow_consumer",
    "heartbeat",
    "shutdown",
    "expired",
];

/// Resolves the hot-path handles against the recorder installed now.
// Only the Prometheus recorder (feature `prometheus`) uses it.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
fn resolve_handles() {
    let _ = HANDLES.set(Handles {
        pushed: metrics::counter!(MESSAGES_PUSHED_TOTAL),
        latency: metrics::histogram!(DELIVERY_LATENCY_SECONDS),
        sessions: metrics::gauge!(SESSIONS),
        events: EVENT_RESULTS
            .iter()
            .map(|r| (*r, metrics::counter!(EVENTS_TOTAL, "result" => *r)))
            .collect(),
        closed: CLOSE_REASONS
            .iter()
            .map(|r| (*r, metrics::counter!(SESSIONS_CLOSED_TOTAL, "reason" => *r)))
            .collect(),
    });
}

fn labelled<'a>(
    list: &'a [(&'static str, metrics::Counter)],
    label: &str,
) -> Option<&'a metrics::Counter> {
    list.iter().find(|(l, _)| *l == label).map(|(_, c)| c)
}

pub(crate) fn event(result: &'static str) {
    match HANDLES.get().and_then(|h| labelled(&h.events, result)) {
        Some(c) => c.increment(1),
        None => metrics::counter!(EVENTS_TOTAL, "result" => result).increment(1),
    }
}

pub(crate) fn session_closed(reason: &'static str) {
    match HANDLES.get().and_then(|h| labelled(&h.closed, reason)) {
        Some(c) => c.increment(1),
        None => metrics::counter!(SESSIONS_CLOSED_TOTAL, "reason" => reason).increment(1),
    }
}

pub(crate) fn pushed(latency: Option<Duration>) {
    match HANDLES.get() {
        Some(h) => {
            h.pushed.increment(1);
            if let Some(l) = latency {
                h.latency.record(l.as_secs_f64());
            }
        }
        None => {
            metrics::counter!(MESSAGES_PUSHED_TOTAL).increment(1);
            if let Some(l) = latency {
                metrics::histogram!(DELIVERY_LATENCY_SECONDS).record(l.as_secs_f64());
            }
        }
    }
}

pub(crate) fn store_write_failed() {
    metrics::counter!(STORE_WRITE_ERRORS_TOTAL).increment(1);
}

pub(crate) fn readiness(components: &[(&'static str, bool)], ready: bool) {
    for (component, up) in components {
        metrics::gauge!(COMPONENT_UP, "component" => *component).set(if *up { 1.0 } else { 0.0 });
    }
    metrics::gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// Exports the configured connection cap as `notify_max_connections`.
pub fn set_max_connections(cap: usize) {
    metrics::gauge!(MAX_CONNECTIONS).set(cap as f64);
}

// Only the Prometheus recorder (feature `prometheus`) uses it.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(SESSIONS, "Connected WebSocket and SSE sessions");
    describe_counter!(EVENTS_TOTAL, "Events processed, by result");
    describe_counter!(NOTIFICATIONS_STORED_TOTAL, "Notifications newly stored");
    describe_counter!(MESSAGES_PUSHED_TOTAL, "Notifications written to clients");
    describe_counter!(SESSIONS_CLOSED_TOTAL, "Sessions closed, by reason");
    describe_histogram!(
        DELIVERY_LATENCY_SECONDS,
        Unit::Seconds,
        "Event time to frame written"
    );
    describe_histogram!(STORE_WRITE_SECONDS, Unit::Seconds, "Store batch write time");
    describe_gauge!(KAFKA_CONSUMER_LAG, "Kafka consumer lag in messages");
    describe_counter!(STORE_WRITE_ERRORS_TOTAL, "Store batch writes that failed");
    describe_gauge!(
        READY,
        "1 when the instance is ready (store and event source answer)"
    );
    describe_gauge!(COMPONENT_UP, "1 when the component answers, by component");
    describe_gauge!(
        MAX_CONNECTIONS,
        "Configured connection cap (NOTIFY_MAX_CONNECTIONS)"
    );
}

/// Renders the current metrics as Prometheus text, if a recorder of ours is installed.
pub fn render() -> Option<String> {
    #[cfg(feature = "prometheus")]
    {
        prometheus::HANDLE.get().map(|h| h.render())
    }
    #[cfg(not(feature = "prometheus"))]
    {
        None
    }
}

/// Installs the Prometheus recorder once per process (later calls are no-ops). Returns false
/// when another recorder was installed first; then `/metrics` reports that.
pub fn install_prometheus() -> bool {
    #[cfg(feature = "prometheus")]
    {
        prometheus::install()
    }
    #[cfg(not(feature = "prometheus"))]
    {
        false
    }
}

#[cfg(feature = "prometheus")]
mod prometheus {
    use std::sync::OnceLock;

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    pub(super) static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALLED: OnceLock<bool> = OnceLock::new();

    pub(super) fn install() -> bool {
        *INSTALLED.get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(super::DELIVERY_LATENCY_SECONDS.into()),
                    &latency,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(super::STORE_WRITE_SECONDS.into()),
                        &latency,
                    )
                })
                .map(|b| b.build_recorder());
            let Ok(recorder) = recorder else {
                return false;
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                return false;
            }
            let _ = HANDLE.set(handle);
            super::describe();
            // Make the gauge and counters visible before the first event.
            metrics::gauge!(super::SESSIONS).set(0.0);
            metrics::counter!(super::NOTIFICATIONS_STORED_TOTAL).increment(0);
            metrics::counter!(super::MESSAGES_PUSHED_TOTAL).increment(0);
            metrics::counter!(super::STORE_WRITE_ERRORS_TOTAL).increment(0);
            super::resolve_handles();
            true
        })
    }
}

pub(crate) fn gauge_sessions(count: usize) {
    match HANDLES.get() {
        Some(h) => h.sessions.set(count as f64),
        None => metrics::gauge!(SESSIONS).set(count as f64),
    }
}
