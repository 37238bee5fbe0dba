//! The contract's configuration (section 7): environment variables, each also a flag.
//! Errors name the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use notify_core::auth::Authenticator;
use notify_core::limits::LimitsConfig;
use notify_core::serve::ServeLimits;
use notify_core::{Error, Result, Rules, ServiceConfig};

/// The demo secret of the contract (demo mode only).
pub(crate) const DEMO_SECRET: &str = "notify-demo-secret";
/// The demo publish key of the contract (demo mode only).
pub(crate) const DEMO_PUBLISH_KEY: &str = "notify-demo-key";

/// Command-line flags; each falls back to its environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "server",
    about = "Real-time notification service (STOMP over WebSocket, SSE, REST)"
)]
pub(crate) struct Args {
    /// HTTP/WebSocket address.
    #[arg(long, env = "NOTIFY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// HS256 secret.
    #[arg(long, env = "NOTIFY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// PEM public key for RS256/ES256 instead.
    #[arg(long, env = "NOTIFY_JWT_PUBLIC_KEY_FILE")]
    jwt_public_key_file: Option<PathBuf>,
    /// When set, tokens must carry this audience (`aud`).
    #[arg(long, env = "NOTIFY_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// When set, tokens must carry this issuer (`iss`).
    #[arg(long, env = "NOTIFY_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Claim that lists the user's groups.
    #[arg(long, env = "NOTIFY_JWT_GROUPS_CLAIM", default_value = "groups")]
    jwt_groups_claim: String,
    /// API key for POST /api/events.
    #[arg(long, env = "NOTIFY_PUBLISH_KEY", hide_env_values = true)]
    publish_key: Option<String>,
    /// Kafka bootstrap servers; unset: in-process events.
    #[arg(long, env = "NOTIFY_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Input topic; dead letters go to `<topic>.dlq`.
    #[arg(
        long,
        env = "NOTIFY_KAFKA_TOPIC",
        default_value = "notification-events"
    )]
    pub kafka_topic: String,
    /// Shared consumer group.
    #[arg(long, env = "NOTIFY_KAFKA_GROUP", default_value = "notify")]
    pub kafka_group: String,
    /// This instance's name.
    #[arg(long, env = "NOTIFY_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// MongoDB URI; unset: in-memory store.
    #[arg(long, env = "NOTIFY_MONGO_URI", hide_env_values = true)]
    pub mongo_uri: Option<String>,
    /// MongoDB database.
    #[arg(long, env = "NOTIFY_MONGO_DB", default_value = "notify")]
    pub mongo_db: String,
    /// Retention (`30d`, `12h`, `90m`, `45s`).
    #[arg(long, env = "NOTIFY_RETENTION", default_value = "30d")]
    retention: String,
    /// Rules file.
    #[arg(long, env = "NOTIFY_RULES")]
    rules: Option<PathBuf>,
    /// CORS and WebSocket origin allow-list (comma-separated).
    #[arg(long, env = "NOTIFY_ALLOWED_ORIGINS")]
    allowed_origins: Option<String>,
    /// HTTP framework: `axum` or `warp`.
    #[arg(long, env = "NOTIFY_HTTP", default_value = "axum")]
    http: String,
    /// Outgoing queue per session (frames); overflow closes it as a slow consumer.
    #[arg(long, env = "NOTIFY_SESSION_QUEUE", default_value = "256")]
    session_queue: String,
    /// Log format: `text` (colours only on a terminal) or `json` (one object per line).
    #[arg(long, env = "NOTIFY_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// TOML configuration file; its keys are the variable names above.
    #[arg(long, env = "NOTIFY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration (flags, variables, file, rules, keys) and exit: 0 when
    /// valid, 2 with one line naming the variable otherwise.
    #[arg(long)]
    pub check_config: bool,
    /// Most stored notifications one resume (`since`) sends.
    #[arg(long, env = "NOTIFY_RESUME_MAX", default_value = "1000")]
    resume_max: String,
    /// WebSocket + SSE connections per instance [default: the open-file limit less 256].
    #[arg(long, env = "NOTIFY_MAX_CONNECTIONS")]
    max_connections: Option<String>,
    /// Live sessions (STOMP + SSE) per user per instance.
    #[arg(long, env = "NOTIFY_MAX_SESSIONS_PER_USER", default_value = "20")]
    max_sessions_per_user: String,
    /// Events/s accepted per publish key (token bucket; 0 turns it off).
    #[arg(long, env = "NOTIFY_PUBLISH_RATE", default_value = "10000")]
    publish_rate: String,
    /// REST requests/s per user (token bucket; 0 turns it off).
    #[arg(long, env = "NOTIFY_USER_RATE", default_value = "50")]
    user_rate: String,
    /// Allowed origins of absolute `link` URLs (comma-separated `https://host[:port]`);
    /// unset: any http/https link.
    #[arg(long, env = "NOTIFY_LINK_ORIGINS")]
    link_origins: Option<String>,
    /// Time a client has to send complete request headers (slowloris guard).
    #[arg(long, env = "NOTIFY_HEADER_READ_TIMEOUT", default_value = "10s")]
    header_read_timeout: String,
    /// OTLP/HTTP receiver (`http://collector:4318`); set: spans are exported to
    /// `<endpoint>/v1/traces`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// OTLP protocol; only `http/protobuf` is supported.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub otel_exporter_otlp_protocol: String,
    /// `service.name` of the exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "notify")]
    pub otel_service_name: String,
    /// Escalation: e-mail, webhook, e-mail claim.
    #[command(flatten)]
    pub escalation: crate::escalation::EscalationArgs,
}

/// Parses a non-negative integer setting; errors name the variable.
fn parse_count(value: &str, variable: &str, min: u64) -> Result<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| {
            Error::config(
                variable,
                format!("must be an integer of at least {min}, got {value:?}"),
            )
        })
}

/// Parses a comma-separated list of origins (`scheme://host[:port]`).
fn parse_origins(value: &str, variable: &str) -> Result<Vec<String>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let url = url::Url::parse(o)
                .map_err(|e| Error::config(variable, format!("{o:?} is not an origin: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(Error::config(
                    variable,
                    format!("{o:?} is not an http(s) origin"),
                ));
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

/// Which adapter serves HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Http {
    Axum,
    Warp,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub listen: SocketAddr,
    pub serve_limits: ServeLimits,
    /// Escalation flags (validated by `from_args`; the channels are built at start).
    pub escalation: crate::escalation::EscalationArgs,
    pub http: Http,
    pub demo: bool,
    pub demo_secret: String,
    pub demo_publish_key: String,
    pub auth: Authenticator,
    pub rules: Rules,
    pub service: ServiceConfig,
    pub args_kafka_brokers: Option<String>,
    pub kafka_topic: String,
    pub kafka_group: String,
    pub instance_id: Option<String>,
    pub mongo_uri: Option<String>,
    pub mongo_db: String,
}

/// Parses `30d`, `12h`, `90m`, `45s` or plain seconds.
pub(crate) fn parse_duration(s: &str, variable: &str) -> Result<Duration> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().map_err(|_| {
        Error::config(
            variable,
            format!("invalid duration {s:?} (use e.g. 30d, 12h, 90m, 45s)"),
        )
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(Error::config(
                variable,
                format!("invalid duration unit in {s:?} (use d, h, m or s)"),
            ))
        }
    };
    if secs == 0 {
        return Err(Error::config(variable, "must be positive"));
    }
    Ok(Duration::from_secs(secs))
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl Config {
    /// Validates the flags and variables.
    pub(crate) fn from_args(args: Args) -> Result<Self> {
        let mut listen: SocketAddr = args.listen.parse().map_err(|_| {
            Error::config(
                "NOTIFY_LISTEN",
                format!("not an address:port: {:?}", args.listen),
            )
        })?;
        let jwt_secret = non_empty(args.jwt_secret);
        let demo = jwt_secret.is_none() && args.jwt_public_key_file.is_none();
        if jwt_secret.is_some() && args.jwt_public_key_file.is_some() {
            return Err(Error::config(
                "NOTIFY_JWT_SECRET",
                "set either NOTIFY_JWT_SECRET or NOTIFY_JWT_PUBLIC_KEY_FILE, not both",
            ));
        }
        let auth = if let Some(path) = &args.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::config(
                    "NOTIFY_JWT_PUBLIC_KEY_FILE",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Authenticator::from_public_key_pem(&pem)?
        } else if let Some(secret) = &jwt_secret {
            Authenticator::hs256_checked(secret.as_bytes())?
        } else {
            // Demo mode only: the public demo secret is short, and that is fine on loopback.
            Authenticator::hs256(DEMO_SECRET.as_bytes())
        }
        .with_groups_claim(args.jwt_groups_claim.clone());
        let audience = non_empty(args.jwt_audience);
        let issuer = non_empty(args.jwt_issuer);
        let auth = match audience {
            Some(aud) => auth.with_audience(aud),
            None => auth,
        };
        let auth = match issuer {
            Some(iss) => auth.with_issuer(iss),
            None => auth,
        };
        if auth.uses_public_key() && !auth.checks_audience_and_issuer() {
            // With a public key, tokens usually come from a shared identity provider that
            // also signs tokens for other services: without aud/iss any of them would do.
            tracing::warn!(
                "NOTIFY_JWT_AUDIENCE and/or NOTIFY_JWT_ISSUER are not set: any token your identity provider signs (for any service) is accepted"
            );
        }
        if demo && !listen.ip().is_loopback() {
            tracing::warn!(requested = %listen, "demo mode binds to loopback only");
            listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let publish_key =
            non_empty(args.publish_key).or_else(|| demo.then(|| DEMO_PUBLISH_KEY.to_string()));
        if publish_key.is_none() {
            tracing::warn!("NOTIFY_PUBLISH_KEY is not set: POST /api/events answers 401");
        }
        let rules = match &args.rules {
            Some(path) => Rules::from_file(path)?,
            None => Rules::empty(),
        };
        let allowed_origins = non_empty(args.allowed_origins).map(|s| {
            s.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect::<Vec<_>>()
        });
        let session_queue: usize = args
            .session_queue
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                Error::config(
                    "NOTIFY_SESSION_QUEUE",
                    format!("must be a positive integer, got {:?}", args.session_queue),
                )
            })?;
        let defaults = LimitsConfig::default();
        let limits = LimitsConfig {
            max_connections: match &args.max_connections {
                Some(v) => parse_count(v, "NOTIFY_MAX_CONNECTIONS", 1)? as usize,
                None => defaults.max_connections,
            },
            max_sessions_per_user: parse_count(
                &args.max_sessions_per_user,
                "NOTIFY_MAX_SESSIONS_PER_USER",
                1,
            )? as usize,
            publish_rate: parse_count(&args.publish_rate, "NOTIFY_PUBLISH_RATE", 0)?
                .min(u32::MAX.into()) as u32,
            user_rate: parse_count(&args.user_rate, "NOTIFY_USER_RATE", 0)?.min(u32::MAX.into())
                as u32,
        };
        let serve_limits = ServeLimits {
            header_read_timeout: parse_duration(
                &args.header_read_timeout,
                "NOTIFY_HEADER_READ_TIMEOUT",
            )?,
            // Room for plain requests above the WebSocket + SSE cap.
            max_tcp_connections: limits.max_connections
                + (notify_core::limits::FD_RESERVE as usize) / 2,
        };
        let link_origins = match non_empty(args.link_origins) {
            Some(v) => Some(parse_origins(&v, "NOTIFY_LINK_ORIGINS")?),
            None => None,
        };
        let service = ServiceConfig {
            publish_key,
            allowed_origins,
            session_queue,
            resume_max: parse_count(&args.resume_max, "NOTIFY_RESUME_MAX", 1)? as usize,
            limits,
            link_origins,
            retention: parse_duration(&args.retention, "NOTIFY_RETENTION")?,
            // Cursors follow Kafka record time; a client sees notifications in the order its
            // instance read the partitions, which a lagging partition (a leader failover)
            // can skew: replay a margin on resume (see notify_kafka::fanout).
            resume_overlap: if args
                .kafka_brokers
                .as_deref()
                .is_some_and(|b| !b.trim().is_empty())
            {
                Duration::from_secs(5)
            } else {
                Duration::ZERO
            },
            ..ServiceConfig::default()
        };
        let http = match args.http.trim() {
            "axum" => Http::Axum,
            "warp" => Http::Warp,
            other => {
                return Err(Error::config(
                    "NOTIFY_HTTP",
                    format!("must be axum or warp, got {other:?}"),
                ))
            }
        };
        // Validated here so --check-config catches escalation mistakes too (on a throwaway
        // runtime: the SMTP connection pool spawns its cleanup task when built).
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::internal)?
            .block_on(async {
                crate::escalation::Escalation::from_args(&args.escalation, listen)
            })?;
        Ok(Config {
            escalation: args.escalation.clone(),
            listen,
            serve_limits,
            http,
            demo,
            demo_secret: DEMO_SECRET.into(),
            demo_publish_key: DEMO_PUBLISH_KEY.into(),
            auth,
            rules,
            service,
            args_kafka_brokers: non_empty(args.kafka_brokers),
            kafka_topic: args.kafka_topic,
            kafka_group: args.kafka_group,
            instance_id: non_empty(args.instance_id),
            mongo_uri: non_empty(args.mongo_uri),
            mongo_db: args.mongo_db,
        })
    }
}
