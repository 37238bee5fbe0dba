//! Log output: human-readable text (colours only on a terminal) or, with
//! `NOTIFY_LOG_FORMAT=json`, one JSON object per line for log shippers (ELK, Loki), with the
//! fields of the enclosing spans (the event id among them) flattened beside the message
//! (`json_log.rs`).

use std::io::IsTerminal;

use notify_core::{Error, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Text; ANSI colours only when standard output is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses `NOTIFY_LOG_FORMAT`.
    pub(crate) fn parse(value: &str) -> Result<Self> {
        match value.trim() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::config(
                "NOTIFY_LOG_FORMAT",
                format!("must be text or json, got {other:?}"),
            )),
        }
    }
}

/// A boxed layer over the plain registry, so the OpenTelemetry layer can be added beside it.
pub(crate) type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: log lines in `format`, filtered by `RUST_LOG` (default
/// `info`), and `extra` (span export, with its own filter).
pub(crate) fn init(format: LogFormat, extra: Option<BoxedLayer>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,notify_core=info"));
    let fmt: BoxedLayer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            // A log file or a pipe gets no escape codes.
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::json_log::FlatJson)
            .boxed(),
    };
    // Per-layer filters: RUST_LOG chooses log lines and does not turn span export off.
    let mut layers: Vec<BoxedLayer> = vec![fmt.with_filter(filter).boxed()];
    layers.extend(extra);
    let _ = tracing_subscriber::registry().with(layers).try_init();
}
