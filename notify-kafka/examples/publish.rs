//! Publishes one event the way a Rust producer (e.g. the purchasing system) would.
//!
//! ```text
//! NOTIFY_KAFKA_BROKERS=127.0.0.1:9092 cargo run -p notify-kafka --example publish -- alice
//! ```
//!
//! Uses `NOTIFY_KAFKA_BROKERS` (default `127.0.0.1:9092`), `NOTIFY_KAFKA_TOPIC` and any
//! `NOTIFY_KAFKA_*` producer settings; the first argument is the recipient user.

use notify_core::Priority;
use notify_kafka::{EventPublisher, KafkaConfig, OutgoingEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = match KafkaConfig::from_env()? {
        Some(c) => c,
        None => KafkaConfig::new("127.0.0.1:9092"),
    };
    let user = std::env::args().nth(1).unwrap_or_else(|| "alice".into());
    let purchase = chrono::Utc::now().timestamp() % 100_000;

    let event = OutgoingEvent::new(format!("purchase-{purchase}-approved"), "purchase.approved")
        .to_user(&user)
        .title("Purchase approved")
        .message(format!("Your request #{purchase} was approved"))
        .link(format!("/purchases/{purchase}"))
        .data_field("purchaseId", purchase)
        .priority(Priority::Normal)
        .occurred_at(chrono::Utc::now());
    // Invalid events are refused here, with the field named, before anything is sent.
    event.validate()?;

    let publisher = EventPublisher::new(&config)?;
    let receipt = publisher.publish(&event).await?;
    println!(
        "published {} for {user} to {} partition {} offset {}",
        event.id, config.topic, receipt.partition, receipt.offset
    );
    Ok(())
}
