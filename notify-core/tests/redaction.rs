//! Secrets stay out of logs and `Debug` output (issue 12, item 10).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use notify_core::auth::Authenticator;
use notify_core::{MemorySource, MemoryStore, NotifyService, Pipeline, ServiceConfig};

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn rejected_events_are_logged_without_their_payload() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (source, publisher) = MemorySource::new(8);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher.clone()),
        Authenticator::hs256(b"k"),
    )
    .build();
    let pipeline = Pipeline::new(service, Arc::new(source)).spawn();
    // No recipients: rejected. The data carries a secret that must not reach the logs.
    publisher
        .send_raw(Bytes::from_static(
            br#"{"id":"e1","type":"t","title":"t","message":"m","data":{"password":"hunter2-S3CRET"}}"#,
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while publisher.dead_lettered() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pipeline.shutdown(Duration::from_secs(1)).await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("event rejected"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "payload leaked into the log: {text}"
    );
}

#[test]
fn service_config_debug_hides_the_publish_key() {
    let config = ServiceConfig {
        publish_key: Some("pk-hunter2-S3CRET".into()),
        ..ServiceConfig::default()
    };
    let text = format!("{config:?} {config:#?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("publish_key"), "{text}");
}
