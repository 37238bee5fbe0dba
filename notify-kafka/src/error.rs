//! librdkafka errors into [`notify_core::Error`], in one place (as notify-mongo's `errors.rs`
//! does for the MongoDB driver): which failures mean "Kafka is unavailable, retry", which mean
//! "the configuration is wrong", and which are bugs. The rest of the crate only calls these.

use notify_core::Error;
use rdkafka::error::KafkaError;
use tokio::task::JoinError;

/// The variable named when a client cannot be created: librdkafka checks every
/// `NOTIFY_KAFKA_*` passthrough property at that moment.
pub(crate) const CLIENT_VARIABLE: &str = "NOTIFY_KAFKA_*";

/// Kafka failed while `component` (`event_source`, `event_sink`) was `what` (`producing`,
/// `fetching metadata`...): the brokers are unreachable or refused; retrying may help. The
/// librdkafka error is kept as the source.
pub(crate) fn unavailable(component: &'static str, what: &str, e: KafkaError) -> Error {
    Error::unavailable(component, format!("kafka: {what}: {e}"), e)
}

/// Kafka answered, but not usably for `component` (a topic without partitions, a topic
/// that could not be created): no librdkafka error to keep.
pub(crate) fn unusable(component: &'static str, message: impl std::fmt::Display) -> Error {
    Error::unavailable_because(component, format!("kafka: {message}"))
}

/// librdkafka refused to create `client` (`a Kafka producer`...): a property is wrong, so
/// this is a configuration error, and start-up stops rather than retries.
pub(crate) fn client(client: &str, e: KafkaError) -> Error {
    Error::config(CLIENT_VARIABLE, format!("cannot create {client}: {e}"))
}

/// The producer went away before it confirmed a delivery (the process is stopping).
pub(crate) fn producer_dropped(component: &'static str) -> Error {
    Error::unavailable_because(component, "kafka: the producer was dropped")
}

/// A blocking librdkafka call, run on its own thread, panicked.
pub(crate) fn panicked(what: &str, e: JoinError) -> Error {
    Error::internal_from(format!("{what} panicked"), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn broker_failures_are_transient_and_keep_their_source() {
        let e = unavailable(
            "event_sink",
            "producing",
            KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown),
        );
        assert!(e.is_transient());
        assert_eq!(e.http_status(), 503);
        assert!(
            e.to_string()
                .starts_with("event_sink unavailable: kafka: producing:"),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(unusable("event_source", "topic t has no partitions").is_transient());
        assert!(producer_dropped("event_sink").is_transient());
    }

    #[test]
    fn client_creation_failures_name_the_passthrough_variables() {
        let e = client(
            "a Kafka producer",
            KafkaError::ClientCreation("bad property".into()),
        );
        assert!(!e.is_transient());
        assert_eq!(e.field(), Some(CLIENT_VARIABLE));
        assert!(e.to_string().contains("bad property"), "{e}");
    }
}
