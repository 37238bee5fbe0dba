//! [`NotifyService`]: the assembled service that the HTTP adapters serve and the pipeline
//! feeds. It owns the store, the hub, auth, rules and limits; nothing here knows HTTP.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::hub::{LocalHub, PendingPushes, SessionHub};
use crate::limits::{Limits, LimitsConfig};
use crate::model::SeqClock;
use crate::prefs::{ContactCache, MemoryPreferences, MuteRegistry, PreferenceStore};
use crate::rules::Rules;
use crate::source::{EventSink, EventSource};
use crate::store::NotificationStore;
use crate::trace::{TracePropagator, Tracing};

/// Limits and switches of the service (contract defaults).
///
/// Its `Debug` output never shows the publish key, so a logged configuration leaks no secret.
#[derive(Clone)]
pub struct ServiceConfig {
    /// API key for `POST /api/events`; `None` refuses every publish.
    pub publish_key: Option<String>,
    /// CORS and WebSocket `Origin` allow-list; `None` means no CORS and any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Outgoing queue per session; overflow closes it as a slow consumer.
    pub session_queue: usize,
    /// Heart-beat the server offers and wants, both ways.
    pub heartbeat: Duration,
    /// Most subscriptions on one STOMP session.
    pub max_subscriptions: usize,
    /// Largest HTTP request body.
    pub max_body_bytes: usize,
    /// How long a client may take to send CONNECT after the WebSocket opens.
    pub connect_timeout: Duration,
    /// A write to a client that takes longer than this closes the session (slow consumer).
    pub write_timeout: Duration,
    /// SSE keep-alive comment interval.
    pub sse_keepalive: Duration,
    /// Notifications older than this are purged.
    pub retention: Duration,
    /// A resuming client (`since`) also gets what was stored this long before its cursor.
    /// Zero for one instance; a cluster whose writers stamp cursors from their own clocks
    /// sets a margin above their clock skew, so nothing is missed (clients de-duplicate).
    pub resume_overlap: Duration,
    /// Most stored notifications one resume sends (`NOTIFY_RESUME_MAX`); the last one of a
    /// truncated backlog is flagged and the client pages the rest over REST.
    pub resume_max: usize,
    /// Connection caps and token buckets (contract section 7).
    pub limits: LimitsConfig,
    /// When set, an absolute `link` must have one of these origins
    /// (`scheme://host[:port]`); paths starting with `/` are always accepted.
    pub link_origins: Option<Vec<String>>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            publish_key: None,
            allowed_origins: None,
            session_queue: 256,
            heartbeat: Duration::from_secs(10),
            max_subscriptions: 64,
            max_body_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            sse_keepalive: Duration::from_secs(15),
            retention: Duration::from_secs(30 * 24 * 3600),
            resume_overlap: Duration::ZERO,
            resume_max: 1000,
            limits: LimitsConfig::default(),
            link_origins: None,
        }
    }
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field(
                "publish_key",
                &self.publish_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allowed_origins", &self.allowed_origins)
            .field("session_queue", &self.session_queue)
            .field("heartbeat", &self.heartbeat)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("sse_keepalive", &self.sse_keepalive)
            .field("retention", &self.retention)
            .field("resume_overlap", &self.resume_overlap)
            .field("resume_max", &self.resume_max)
            .field("limits", &self.limits)
            .field("link_origins", &self.link_origins)
            .finish_non_exhaustive()
    }
}

/// The running service: shared by the HTTP adapters (as `Arc<NotifyService>`) and the
/// [`crate::pipeline::Pipeline`].
pub struct NotifyService {
    pub(crate) store: Arc<dyn NotificationStore>,
    pub(crate) hub: Arc<dyn SessionHub>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) source: Option<Arc<dyn EventSource>>,
    pub(crate) auth: Authenticator,
    pub(crate) rules: Arc<Rules>,
    pub(crate) pending: PendingPushes,
    pub(crate) clock: SeqClock,
    pub(crate) config: ServiceConfig,
    pub(crate) limits: Limits,
    pub(crate) tracing: Tracing,
    pub(crate) prefs: Arc<dyn PreferenceStore>,
    pub(crate) mutes: Arc<MuteRegistry>,
    pub(crate) contacts: ContactCache,
    pub(crate) escalation: bool,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for NotifyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyService")
            .field("config", &self.config)
            .field("sessions", &self.hub.session_count())
            .finish()
    }
}

/// Builds a [`NotifyService`].
pub struct NotifyServiceBuilder {
    store: Arc<dyn NotificationStore>,
    sink: Arc<dyn EventSink>,
    auth: Authenticator,
    hub: Option<Arc<dyn SessionHub>>,
    source: Option<Arc<dyn EventSource>>,
    rules: Rules,
    config: ServiceConfig,
    tracing: Tracing,
    prefs: Option<Arc<dyn PreferenceStore>>,
    escalation: bool,
}

impl std::fmt::Debug for NotifyServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyServiceBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NotifyServiceBuilder {
    /// Where preferences and the escalation schedule live (default: in memory).
    pub fn preferences(mut self, store: Arc<dyn PreferenceStore>) -> Self {
        self.prefs = Some(store);
        self
    }

    /// Schedule escalations when notifications are stored (set it when an
    /// [`crate::escalation::Escalator`] with at least one channel runs against the same
    /// preference store, on this or another instance).
    pub fn escalation(mut self, on: bool) -> Self {
        self.escalation = on;
        self
    }

    /// Uses another hub than the [`LocalHub`].
    pub fn hub(mut self, hub: Arc<dyn SessionHub>) -> Self {
        self.hub = Some(hub);
        self
    }

    /// The event source, so `/health/ready` can ping it.
    pub fn event_source(mut self, source: Arc<dyn EventSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Rules for bare events.
    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Limits and switches.
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// Ties the spans of each event's path to an exporter's trace context (see
    /// [`crate::trace`]); without it a producer's `traceparent` is passed on unchanged.
    pub fn trace_propagator(mut self, propagator: Arc<dyn TracePropagator>) -> Self {
        self.tracing = Tracing::new(propagator);
        self
    }

    /// Carries trace context as `tracing` does, e.g. another service's
    /// ([`NotifyService::tracing`]) for a second view of the same process.
    pub fn tracing(mut self, tracing: Tracing) -> Self {
        self.tracing = tracing;
        self
    }

    /// Finishes the service and installs the metrics recorder (once per process).
    pub fn build(self) -> Arc<NotifyService> {
        crate::metrics::install_prometheus();
        // The cap is exported so that alerts can compare the sessions gauge with it.
        crate::metrics::set_max_connections(self.config.limits.max_connections);
        let (shutdown, _) = watch::channel(false);
        let prefs = self
            .prefs
            .unwrap_or_else(|| Arc::new(MemoryPreferences::new()));
        let mutes = Arc::new(MuteRegistry::new(
            prefs.clone(),
            crate::prefs::DEFAULT_REFRESH,
        ));
        Arc::new(NotifyService {
            store: self.store,
            hub: self
                .hub
                .unwrap_or_else(|| Arc::new(LocalHub::new().with_mutes(mutes.clone()))),
            sink: self.sink,
            source: self.source,
            auth: self.auth,
            rules: Arc::new(self.rules),
            pending: PendingPushes::new(),
            clock: SeqClock::new(),
            limits: Limits::new(self.config.limits),
            config: self.config,
            tracing: self.tracing,
            prefs,
            mutes,
            contacts: ContactCache::new(),
            escalation: self.escalation,
            shutdown,
        })
    }
}

impl NotifyService {
    /// Starts a builder with the three things every service needs.
    pub fn builder(
        store: Arc<dyn NotificationStore>,
        sink: Arc<dyn EventSink>,
        auth: Authenticator,
    ) -> NotifyServiceBuilder {
        NotifyServiceBuilder {
            store,
            sink,
            auth,
            hub: None,
            source: None,
            rules: Rules::empty(),
            config: ServiceConfig::default(),
            tracing: Tracing::default(),
            prefs: None,
            escalation: false,
        }
    }

    /// The preference store.
    pub fn preferences(&self) -> &Arc<dyn PreferenceStore> {
        &self.prefs
    }

    /// Muted types cached for pushes and the inbox.
    pub fn mutes(&self) -> &Arc<MuteRegistry> {
        &self.mutes
    }

    /// Contacts this process last remembered.
    pub fn contacts(&self) -> &ContactCache {
        &self.contacts
    }

    /// True when stored notifications are scheduled for escalation.
    pub fn escalation_enabled(&self) -> bool {
        self.escalation
    }

    /// Where notifications and read state are kept (inbox pages, counts, resumes).
    pub fn store(&self) -> &Arc<dyn NotificationStore> {
        &self.store
    }

    /// The registry of live sessions that pushes are delivered through.
    pub fn hub(&self) -> &Arc<dyn SessionHub> {
        &self.hub
    }

    /// Verifies the bearer tokens of sessions, streams and REST calls.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The event-type rules that turn events into notifications.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The live limits: connection and session counts, token buckets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How trace context is carried (see [`crate::trace`]).
    pub fn tracing(&self) -> &Tracing {
        &self.tracing
    }

    /// Pushes sent live but not stored yet.
    pub fn pending(&self) -> &PendingPushes {
        &self.pending
    }

    /// True when `origin` may call the API and open WebSockets.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        match &self.config.allowed_origins {
            None => true,
            Some(list) => list
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin)),
        }
    }

    /// Asks sessions to close with a reconnect hint and streams to end.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.hub.shut_down();
    }

    /// True once [`NotifyService::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A receiver that changes to `true` at shutdown.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Readiness of each component: `(name, Ok | error)`. Also refreshes the `notify_ready`
    /// and `notify_component_up` gauges.
    pub async fn readiness(&self) -> Vec<(&'static str, crate::Result<()>)> {
        let mut out = vec![("store", within_2s("store", self.store.ping()).await)];
        if let Some(source) = &self.source {
            out.push((
                "event_source",
                within_2s("event_source", source.ping()).await,
            ));
        }
        let components: Vec<(&'static str, bool)> =
            out.iter().map(|(name, r)| (*name, r.is_ok())).collect();
        let ready = !self.is_shutting_down() && components.iter().all(|(_, up)| *up);
        crate::metrics::readiness(&components, ready);
        out
    }
}

async fn within_2s(
    component: &'static str,
    check: impl std::future::Future<Output = crate::Result<()>>,
) -> crate::Result<()> {
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(r) => r,
        Err(_) => Err(crate::Error::Unavailable {
            component,
            message: "no answer within 2 s".into(),
            source: None,
        }),
    }
}

/// Completes on SIGTERM or Ctrl-C, after telling the service to close its sessions with a
/// reconnect hint. Pass it to the HTTP server's graceful shutdown (`axum::serve(..)
/// .with_graceful_shutdown(..)`, `warp::serve(..).graceful(..)`).
///
/// The signal handlers are installed when this is called (inside a Tokio runtime), not when
/// the future is first polled, so a SIGTERM right after start-up is never missed.
pub fn shutdown_on_signal(
    service: Arc<NotifyService>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut int) = signals;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term.take()) => {},
                _ = wait(int.take()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested: closing sessions");
        service.shutdown();
    }
}
