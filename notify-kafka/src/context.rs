//! librdkafka client contexts: logs through `tracing`, consumer lag as a gauge, and the
//! rebalance hooks of the storing consumer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use notify_core::metrics::KAFKA_CONSUMER_LAG;
use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;

use crate::source::SourceState;

/// Context of the producer and admin clients: librdkafka logs go to `tracing`.
#[derive(Debug, Clone, Default)]
pub struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if first_in_a_while(reason) {
            tracing::warn!(%error, reason, "kafka client error");
        } else {
            tracing::debug!(%error, reason, "kafka client error (repeated)");
        }
    }
}

/// How long the same client error is logged only once: librdkafka reports a down broker
/// on every reconnect attempt (up to once a second per client and broker); an operator
/// needs one line when it goes down, not one per attempt.
const REPEAT_QUIET: Duration = Duration::from_secs(60);

/// True when `reason` (with numbers stripped, so "after 3ms" and "after 5ms" are the
/// same) was not reported within [`REPEAT_QUIET`].
fn first_in_a_while(reason: &str) -> bool {
    static SEEN: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());
    let key: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
    let now = Instant::now();
    let mut seen = SEEN.lock();
    seen.retain(|(_, at)| now.duration_since(*at) < REPEAT_QUIET);
    if seen.iter().any(|(k, _)| *k == key) {
        return false;
    }
    seen.push((key, now));
    true
}

/// Context of the consumers: logs, lag gauge from librdkafka statistics, and (for the
/// storing consumer) offset tracking across rebalances and pause state.
pub(crate) struct ConsumerCtx {
    pub(crate) role: &'static str,
    pub(crate) state: Option<Arc<SourceState>>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if first_in_a_while(reason) {
            tracing::warn!(role = self.role, %error, reason, "kafka consumer error");
        } else {
            tracing::debug!(role = self.role, %error, reason, "kafka consumer error (repeated)");
        }
    }

    fn stats(&self, statistics: Statistics) {
        // The storing consumer's lag is what is not stored yet: the one operators need.
        if self.state.is_none() {
            return;
        }
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 || p.fetch_state == "none" || p.fetch_state == "stopped" {
                    continue;
                }
                // Committed-offset lag for the storing group (what is not yet stored), the
                // position lag otherwise.
                let lag = if p.consumer_lag >= 0 {
                    p.consumer_lag
                } else if p.hi_offset >= 0 && p.app_offset >= 0 {
                    (p.hi_offset - p.app_offset).max(0)
                } else {
                    continue;
                };
                metrics::gauge!(
                    KAFKA_CONSUMER_LAG,
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(state) = &self.state else {
            return;
        };
        if let Rebalance::Revoke(tpl) = rebalance {
            // Commit what is done before the partitions move; what is in flight is dropped
            // here and redelivered to the next owner.
            if !consumer.assignment_lost() {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => {}
                    Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {
                    }
                    Err(e) => tracing::warn!(error = %e, "commit before revoke failed"),
                }
            }
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(role = self.role, ?partitions, "kafka partitions revoked");
            state.revoked(&partitions);
            for p in &partitions {
                metrics::gauge!(
                    KAFKA_CONSUMER_LAG,
                    "topic" => state.topic.clone(),
                    "partition" => p.to_string()
                )
                .set(0.0);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(state) = &self.state else {
            return;
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(role = self.role, ?partitions, "kafka partitions assigned");
                state.assigned(&partitions);
                if state.is_paused() && tpl.count() > 0 {
                    if let Err(e) = consumer.pause(tpl) {
                        tracing::warn!(error = %e, "pausing newly assigned partitions failed");
                    }
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(role = self.role, error = %e, "rebalance error"),
        }
    }
}

fn log_to_tracing(level: RDKafkaLogLevel, fac: &str, message: &str) {
    let level = match level {
        RDKafkaLogLevel::Debug | RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => level,
        // Reconnect failures repeat on every attempt: once a minute is enough.
        _ if !first_in_a_while(message) => RDKafkaLogLevel::Debug,
        _ => level,
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
}
