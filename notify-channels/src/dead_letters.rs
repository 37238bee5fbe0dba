//! Records of escalations a channel could not deliver after its retries.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// One undeliverable escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Which channel gave up.
    pub channel: String,
    /// The escalation key (`Delivery::key`).
    pub key: String,
    /// The body that was not delivered.
    pub body: Value,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was given up.
    pub at: DateTime<Utc>,
}

impl DeadLetter {
    /// As one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "channel": self.channel,
            "key": self.key,
            "error": self.error,
            "attempts": self.attempts,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "body": self.body,
        })
    }
}

/// Where dead letters go.
#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Keeps one record.
    async fn record(&self, letter: DeadLetter);
}

/// Dead letters appended to a JSON-lines file, one object per line.
#[derive(Debug)]
pub struct JsonlDeadLetters {
    path: PathBuf,
    lock: Mutex<()>,
}

impl JsonlDeadLetters {
    /// Appends to `path` (created when missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlDeadLetters {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl DeadLetters for JsonlDeadLetters {
    async fn record(&self, letter: DeadLetter) {
        let line = format!("{}\n", letter.to_json());
        let _guard = self.lock.lock();
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), error = %e, letter = %line.trim_end(), "could not write the dead letter");
        }
    }
}

/// Dead letters kept in memory (tests, or when no file is configured: they are also logged).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<DeadLetter>>,
}

impl MemoryDeadLetters {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything recorded so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters.lock().clone()
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn record(&self, letter: DeadLetter) {
        self.letters.lock().push(letter);
    }
}
