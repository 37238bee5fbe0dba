//! [`KafkaConfig`]: the contract's `NOTIFY_KAFKA_*` variables, low-latency client defaults and
//! the passthrough of any other librdkafka property.

use std::collections::BTreeMap;
use std::time::Duration;

use notify_core::pipeline::PipelineConfig;
use notify_core::{Error, Result};
use rdkafka::ClientConfig;

/// Contract variable: bootstrap brokers (`host:port,host:port`).
pub const ENV_BROKERS: &str = "NOTIFY_KAFKA_BROKERS";
/// Contract variable: the input topic.
pub const ENV_TOPIC: &str = "NOTIFY_KAFKA_TOPIC";
/// Contract variable: the shared (storing) consumer group.
pub const ENV_GROUP: &str = "NOTIFY_KAFKA_GROUP";
/// Contract variable: this instance's name (names its fan-out group).
pub const ENV_INSTANCE_ID: &str = "NOTIFY_INSTANCE_ID";

/// Default input topic.
pub const DEFAULT_TOPIC: &str = "notification-events";
/// Default shared consumer group.
pub const DEFAULT_GROUP: &str = "notify";

const PREFIX: &str = "NOTIFY_KAFKA_";
const CONSUMER_PREFIX: &str = "CONSUMER_";
const PRODUCER_PREFIX: &str = "PRODUCER_";

/// librdkafka properties the adapter sets itself; overriding them would break a guarantee.
const RESERVED: &[(&str, &str)] = &[
    ("bootstrap.servers", "use NOTIFY_KAFKA_BROKERS"),
    ("metadata.broker.list", "use NOTIFY_KAFKA_BROKERS"),
    ("group.id", "use NOTIFY_KAFKA_GROUP"),
    (
        "enable.auto.offset.store",
        "offsets are stored only after the store write",
    ),
    (
        "enable.auto.commit",
        "offsets are committed only after the store write",
    ),
];

/// Where a passthrough property applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    All,
    Consumer,
    Producer,
}

/// Everything the Kafka adapter needs.
///
/// # Environment (see [`KafkaConfig::from_env`])
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `NOTIFY_KAFKA_BROKERS` | — | bootstrap servers; unset means "no Kafka" |
/// | `NOTIFY_KAFKA_TOPIC` | `notification-events` | input topic (read by the shared group, which stores, and by every instance's fan-out, which pushes); dead letters go to `<topic>.dlq` |
/// | `NOTIFY_KAFKA_GROUP` | `notify` | shared group that stores events; each instance's fan-out group is `<group>-fanout-<instance>` |
/// | `NOTIFY_INSTANCE_ID` | host name + random suffix | this instance's name |
/// | `NOTIFY_KAFKA_<PROPERTY>` | | any librdkafka property for every client: the rest of the name lower-cased, `_` → `.`, `__` → `_` (e.g. `NOTIFY_KAFKA_FETCH_WAIT_MAX_MS=50` → `fetch.wait.max.ms=50`, `NOTIFY_KAFKA_SASL_USERNAME` → `sasl.username`) |
/// | `NOTIFY_KAFKA_CONSUMER_<PROPERTY>` | | the same, for the consumers only |
/// | `NOTIFY_KAFKA_PRODUCER_<PROPERTY>` | | the same, for the producer only |
///
/// Passthrough properties override the defaults (see [`KafkaConfig::consumer_defaults`] and
/// [`KafkaConfig::producer_defaults`]); `bootstrap.servers`, `group.id`,
/// `enable.auto.commit` and `enable.auto.offset.store` are refused because the adapter's
/// guarantees depend on them.
#[derive(Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]` (`NOTIFY_KAFKA_BROKERS`).
    pub brokers: String,
    /// The topic business systems publish events to (`NOTIFY_KAFKA_TOPIC`).
    pub topic: String,
    /// Shared consumer group (store writes).
    pub group: String,
    /// This instance's name.
    pub instance_id: String,
    /// Extra librdkafka properties for every client (passthrough).
    pub settings: BTreeMap<String, String>,
    /// Extra librdkafka properties for the consumers only.
    pub consumer_settings: BTreeMap<String, String>,
    /// Extra librdkafka properties for the producer only.
    pub producer_settings: BTreeMap<String, String>,
    /// Create the input and dead-letter topics at start when they are missing.
    pub create_topics: bool,
    /// Tuning of the storing pipeline (`push_live` is always turned off).
    pub pipeline: PipelineConfig,
    /// How long [`crate::KafkaRunning::shutdown`] lets the pipeline drain (default 4 s;
    /// closing the consumers and flushing then take at most 6 s more, so the whole
    /// shutdown fits the contract's 10 s).
    pub drain_timeout: Duration,
}

/// Passthrough values may be credentials (`sasl.password`): `Debug` shows only their names.
struct Keys<'a>(&'a BTreeMap<String, String>);

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("instance_id", &self.instance_id)
            .field("settings", &Keys(&self.settings))
            .field("consumer_settings", &Keys(&self.consumer_settings))
            .field("producer_settings", &Keys(&self.producer_settings))
            .field("create_topics", &self.create_topics)
            .field("pipeline", &self.pipeline)
            .field("drain_timeout", &self.drain_timeout)
            .finish()
    }
}

impl KafkaConfig {
    /// A configuration with the contract's defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.to_string(),
            group: DEFAULT_GROUP.to_string(),
            instance_id: default_instance_id(),
            settings: BTreeMap::new(),
            consumer_settings: BTreeMap::new(),
            producer_settings: BTreeMap::new(),
            create_topics: true,
            pipeline: PipelineConfig::default(),
            drain_timeout: Duration::from_secs(4),
        }
    }

    /// Another input topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Another shared group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Another instance id.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    /// Sets a librdkafka property for every client.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Reads the process environment. `Ok(None)` when `NOTIFY_KAFKA_BROKERS` is unset
    /// (in-process events); errors name the variable.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(std::env::vars())
    }

    /// Like [`KafkaConfig::from_env`], from the given `(name, value)` pairs.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Option<Self>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let Some(brokers) = vars.get(ENV_BROKERS) else {
            return Ok(None);
        };
        let brokers = brokers.trim();
        if brokers.is_empty() || brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(config_error(
                ENV_BROKERS,
                "must be a comma-separated list of host:port",
            ));
        }
        let mut config = KafkaConfig::new(brokers);
        if let Some(topic) = vars.get(ENV_TOPIC) {
            config.topic = topic.trim().to_string();
        }
        if let Some(group) = vars.get(ENV_GROUP) {
            config.group = group.trim().to_string();
        }
        if let Some(id) = vars.get(ENV_INSTANCE_ID) {
            config.instance_id = id.trim().to_string();
        }
        for (name, value) in &vars {
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if matches!(rest, "BROKERS" | "TOPIC" | "GROUP") {
                continue;
            }
            let (target, property) = passthrough_property(rest);
            if property.is_empty() {
                return Err(config_error(name, "names no librdkafka property"));
            }
            if let Some((_, why)) = RESERVED.iter().find(|(p, _)| *p == property) {
                return Err(config_error(
                    name,
                    format!("{property} cannot be overridden: {why}"),
                ));
            }
            // librdkafka knows its properties: check this one now so the error names the
            // variable, not a client that fails later.
            let mut probe = ClientConfig::new();
            probe.set(&property, value);
            if let Err(e) = probe.create_native_config() {
                // The value may be a password: never echo it (librdkafka's own message
                // quotes it too, so it is blanked there as well).
                return Err(config_error(
                    name,
                    format!("{property}: {}", redact_value(&config_problem(&e), value)),
                ));
            }
            let map = match target {
                Target::All => &mut config.settings,
                Target::Consumer => &mut config.consumer_settings,
                Target::Producer => &mut config.producer_settings,
            };
            map.insert(property, value.clone());
        }
        config.validate()?;
        Ok(Some(config))
    }

    /// Adds the `NOTIFY_KAFKA_*` passthrough settings of the process environment to a
    /// configuration built otherwise (e.g. from command-line flags); errors name the variable.
    pub fn with_env_passthrough(mut self) -> Result<Self> {
        let vars = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with(PREFIX)
                    && !matches!(&k[PREFIX.len()..], "BROKERS" | "TOPIC" | "GROUP")
            })
            .chain([(ENV_BROKERS.to_string(), self.brokers.clone())]);
        if let Some(env) = Self::from_vars(vars)? {
            self.settings.extend(env.settings);
            self.consumer_settings.extend(env.consumer_settings);
            self.producer_settings.extend(env.producer_settings);
        }
        Ok(self)
    }

    /// Checks names; errors name the variable.
    pub fn validate(&self) -> Result<()> {
        check_topic(ENV_TOPIC, &self.topic)?;
        if self.group.is_empty() || self.group.chars().any(char::is_control) {
            return Err(config_error(
                ENV_GROUP,
                "must be a non-empty name without control characters",
            ));
        }
        if self.instance_id.is_empty() || self.instance_id.chars().any(char::is_control) {
            return Err(config_error(
                ENV_INSTANCE_ID,
                "must be a non-empty name without control characters",
            ));
        }
        Ok(())
    }

    /// The dead-letter topic, `<topic>.dlq`.
    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.topic)
    }

    /// This instance's fan-out group, `<group>-fanout-<instance>`.
    pub fn fanout_group(&self) -> String {
        format!("{}-fanout-{}", self.group, self.instance_id)
    }

    /// The consumer defaults, before passthrough settings: low fetch latency, fast
    /// reconnects, lag statistics every second.
    pub fn consumer_defaults() -> &'static [(&'static str, &'static str)] {
        &[
            ("fetch.wait.max.ms", "10"),
            ("fetch.error.backoff.ms", "100"),
            ("socket.nagle.disable", "true"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "1000"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
            ("auto.commit.interval.ms", "500"),
            ("statistics.interval.ms", "1000"),
            ("enable.partition.eof", "false"),
        ]
    }

    /// The producer defaults, before passthrough settings: idempotent, `acks=all`, no
    /// lingering, delivery given up after 30 s (so `POST /api/events` answers).
    pub fn producer_defaults() -> &'static [(&'static str, &'static str)] {
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "0"),
            ("socket.nagle.disable", "true"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "1000"),
            ("message.timeout.ms", "30000"),
        ]
    }

    fn base(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", format!("notify-{}-{role}", self.instance_id));
        c
    }

    /// The librdkafka configuration of a consumer in `group` (defaults, then passthrough).
    pub(crate) fn consumer_config(&self, group: &str, role: &str) -> ClientConfig {
        let mut c = self.base(role);
        for (k, v) in Self::consumer_defaults() {
            c.set(*k, *v);
        }
        for (k, v) in self.settings.iter().chain(&self.consumer_settings) {
            c.set(k, v);
        }
        c.set("group.id", group);
        c
    }

    /// The librdkafka configuration of the producer (defaults, then passthrough).
    pub(crate) fn producer_config(&self, role: &str) -> ClientConfig {
        let mut c = self.base(role);
        for (k, v) in Self::producer_defaults() {
            c.set(*k, *v);
        }
        for (k, v) in self.settings.iter().chain(&self.producer_settings) {
            c.set(k, v);
        }
        c
    }

    /// The configuration of an admin client.
    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut c = self.base("admin");
        for (k, v) in &self.settings {
            c.set(k, v);
        }
        c
    }
}

fn passthrough_property(rest: &str) -> (Target, String) {
    let (target, rest) = if let Some(r) = rest.strip_prefix(CONSUMER_PREFIX) {
        (Target::Consumer, r)
    } else if let Some(r) = rest.strip_prefix(PRODUCER_PREFIX) {
        (Target::Producer, r)
    } else {
        (Target::All, rest)
    };
    // `__` is a literal underscore, `_` a dot.
    let property = rest
        .split("__")
        .map(|part| part.to_ascii_lowercase().replace('_', "."))
        .collect::<Vec<_>>()
        .join("_");
    (target, property)
}

fn check_topic(variable: &str, topic: &str) -> Result<()> {
    // Kafka topic names: [a-zA-Z0-9._-], at most 249; leave room for a suffix (".dlq"; the
    // limit of 242 dates from a longer one and is kept so valid names stay valid).
    if topic.is_empty() || topic.len() > 242 {
        return Err(config_error(variable, "must be 1 to 242 characters"));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(config_error(
            variable,
            format!("{topic:?} is not a valid topic name (letters, digits, '.', '_', '-')"),
        ));
    }
    if topic == "." || topic == ".." {
        return Err(config_error(variable, "is not a valid topic name"));
    }
    Ok(())
}

/// What librdkafka said about a property, without the key and value that rdkafka's
/// `Display` appends.
fn config_problem(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, description, _, _) => description.clone(),
        other => other.to_string(),
    }
}

/// `message` with every occurrence of `value` blanked.
fn redact_value(message: &str, value: &str) -> String {
    if value.is_empty() {
        return message.to_string();
    }
    message.replace(value, "<redacted>")
}

fn config_error(variable: &str, message: impl std::fmt::Display) -> Error {
    Error::config(variable, message)
}

/// Host name plus a random suffix, so two processes on one host have distinct fan-out groups.
pub fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "notify".to_string());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{}", random_suffix())
}

fn random_suffix() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_refused_value_is_not_echoed() {
        for (name, value) in [
            ("NOTIFY_KAFKA_SOCKET_TIMEOUT_MS", "hunter2-Pa55word"),
            ("NOTIFY_KAFKA_SASL_PASWORD", "hunter2-Pa55word"),
            (
                "NOTIFY_KAFKA_CONSUMER_SESSION_TIMEOUT_MS",
                "hunter2-Pa55word",
            ),
        ] {
            let err =
                KafkaConfig::from_vars(vars(&[("NOTIFY_KAFKA_BROKERS", "a:9092"), (name, value)]))
                    .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains(name), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        // Accepted settings are not shown by Debug either.
        let ok = KafkaConfig::from_vars(vars(&[
            ("NOTIFY_KAFKA_BROKERS", "a:9092"),
            ("NOTIFY_KAFKA_SASL_PASSWORD", "hunter2-Pa55word"),
        ]))
        .unwrap()
        .unwrap();
        let text = format!("{ok:?}");
        assert!(text.contains("sasl.password"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn unset_brokers_means_no_kafka() {
        assert!(KafkaConfig::from_vars(vars(&[("NOTIFY_KAFKA_TOPIC", "x")]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn defaults_and_names() {
        let c = KafkaConfig::from_vars(vars(&[
            ("NOTIFY_KAFKA_BROKERS", "a:9092,b:9092"),
            ("NOTIFY_INSTANCE_ID", "web-1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.brokers, "a:9092,b:9092");
        assert_eq!(c.topic, "notification-events");
        assert_eq!(c.group, "notify");
        assert_eq!(c.dlq_topic(), "notification-events.dlq");
        assert_eq!(c.fanout_group(), "notify-fanout-web-1");
        assert!(c.settings.is_empty());
    }

    #[test]
    fn default_instance_ids_differ() {
        let a = default_instance_id();
        let b = default_instance_id();
        assert_ne!(a, b);
        assert!(!a.is_empty());
    }

    #[test]
    fn passthrough_maps_names() {
        let c = KafkaConfig::from_vars(vars(&[
            ("NOTIFY_KAFKA_BROKERS", "a:1"),
            ("NOTIFY_KAFKA_FETCH_WAIT_MAX_MS", "50"),
            ("NOTIFY_KAFKA_CONSUMER_SESSION_TIMEOUT_MS", "30000"),
            ("NOTIFY_KAFKA_PRODUCER_LINGER_MS", "5"),
            ("NOTIFY_KAFKA_TOPIC", "orders"),
            ("NOTIFY_KAFKA_GROUP", "g"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.settings.get("fetch.wait.max.ms").unwrap(), "50");
        assert_eq!(
            c.consumer_settings.get("session.timeout.ms").unwrap(),
            "30000"
        );
        assert_eq!(c.producer_settings.get("linger.ms").unwrap(), "5");
        assert_eq!(c.topic, "orders");
        assert_eq!(c.group, "g");
        let cc = c.consumer_config("g", "t");
        assert_eq!(cc.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(cc.get("session.timeout.ms"), Some("30000"));
        let pc = c.producer_config("t");
        assert_eq!(pc.get("linger.ms"), Some("5"));
        assert_eq!(pc.get("acks"), Some("all"));
        assert_eq!(passthrough_property("SSL__ENGINE_ID").1, "ssl_engine.id");
    }

    #[test]
    fn errors_name_the_variable() {
        let err =
            |pairs: &[(&str, &str)]| KafkaConfig::from_vars(vars(pairs)).unwrap_err().to_string();
        assert!(err(&[("NOTIFY_KAFKA_BROKERS", " ")]).starts_with("NOTIFY_KAFKA_BROKERS:"));
        assert!(err(&[
            ("NOTIFY_KAFKA_BROKERS", "a:1"),
            ("NOTIFY_KAFKA_TOPIC", "a b")
        ])
        .starts_with("NOTIFY_KAFKA_TOPIC:"));
        assert!(
            err(&[("NOTIFY_KAFKA_BROKERS", "a:1"), ("NOTIFY_KAFKA_GROUP", "")])
                .starts_with("NOTIFY_KAFKA_GROUP:")
        );
        let e = err(&[
            ("NOTIFY_KAFKA_BROKERS", "a:1"),
            ("NOTIFY_KAFKA_NO_SUCH_THING", "1"),
        ]);
        assert!(e.starts_with("NOTIFY_KAFKA_NO_SUCH_THING:"), "{e}");
        let e = err(&[
            ("NOTIFY_KAFKA_BROKERS", "a:1"),
            ("NOTIFY_KAFKA_FETCH_WAIT_MAX_MS", "soon"),
        ]);
        assert!(e.starts_with("NOTIFY_KAFKA_FETCH_WAIT_MAX_MS:"), "{e}");
        let e = err(&[
            ("NOTIFY_KAFKA_BROKERS", "a:1"),
            ("NOTIFY_KAFKA_ENABLE_AUTO_COMMIT", "false"),
        ]);
        assert!(e.starts_with("NOTIFY_KAFKA_ENABLE_AUTO_COMMIT:"), "{e}");
    }
}
