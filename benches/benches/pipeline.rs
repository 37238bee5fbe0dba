//! The in-memory pipeline end to end, on a 2-worker tokio runtime:
//! Every event has a new id (the pipeline pushes a redelivered id only once), so the
//! in-memory store grows by one notification per iteration.
//!
//! - `to_queue`: an event published to the in-memory source → parsed, resolved, pushed by the
//!   hub → taken from one session's queue (the store stage runs alongside);
//! - `to_stomp_frames/N`: the same through real STOMP sessions (`run_session` with in-memory
//!   streams instead of WebSockets): a broadcast until all N sessions have written their
//!   MESSAGE frame, N = 1, 100 and 1,000.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use futures::channel::mpsc as fmpsc;
use futures::StreamExt;
use notify_benches::fixtures;
use notify_core::auth::{sign_hs256, Authenticator};
use notify_core::hub::session_queue;
use notify_core::stomp::{run_session, Handshake, Inbound, Outbound};
use notify_core::store::Reader;
use notify_core::{
    MemoryPublisher, MemorySource, MemoryStore, NotifyService, Pipeline, PipelineHandle,
    ServiceConfig,
};

const SECRET: &[u8] = b"bench-secret";

/// The same event with a new id each time (`evt-bench` becomes `evt-bench-<n>`).
struct EventIds {
    head: String,
    tail: String,
    next: std::cell::Cell<u64>,
}

impl EventIds {
    fn new(json: String) -> Self {
        let at = json.find("evt-bench").expect("fixture id") + "evt-bench".len();
        EventIds {
            head: json[..at].to_string(),
            tail: json[at..].to_string(),
            next: std::cell::Cell::new(0),
        }
    }

    fn next(&self) -> Bytes {
        let n = self.next.get();
        self.next.set(n + 1);
        Bytes::from(format!("{}-{n}{}", self.head, self.tail))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn service(rt: &tokio::runtime::Runtime) -> (Arc<NotifyService>, MemoryPublisher, PipelineHandle) {
    let (source, publisher) = MemorySource::new(4096);
    let source = Arc::new(source);
    let service = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher.clone()),
        Authenticator::hs256(SECRET),
    )
    .event_source(source.clone())
    .config(ServiceConfig {
        session_queue: 256,
        ..ServiceConfig::default()
    })
    .build();
    let pipeline = rt.block_on(async { Pipeline::new(service.clone(), source).spawn() });
    (service, publisher, pipeline)
}

fn to_queue(c: &mut Criterion) {
    let rt = runtime();
    let (service, publisher, _pipeline) = service(&rt);
    let (tx, rx) = session_queue(256);
    service
        .hub()
        .register(&Arc::new(Reader::new("alice", vec![])), tx);
    // A fresh event id every time: the pipeline pushes a redelivered id only once.
    let events = EventIds::new(fixtures::event_json("evt-bench", &["alice"], &[], false));
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    g.bench_function("to_queue", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    publisher.send_raw(events.next()).await.unwrap();
                    rx.recv().await.unwrap();
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// Starts `n` STOMP sessions subscribed to the user queue; returns their shared outbound
/// stream (CONNECTED and RECEIPT frames already read) and the inbound senders.
fn sessions(
    rt: &tokio::runtime::Runtime,
    service: &Arc<NotifyService>,
    n: usize,
) -> (
    fmpsc::UnboundedReceiver<Outbound>,
    Vec<fmpsc::UnboundedSender<Inbound>>,
) {
    let (out_tx, mut out_rx) = fmpsc::unbounded::<Outbound>();
    let mut inbound = Vec::with_capacity(n);
    rt.block_on(async {
        for i in 0..n {
            let (in_tx, in_rx) = fmpsc::unbounded::<Inbound>();
            let token = sign_hs256(SECRET, &format!("u{i}"), &[], 3600);
            in_tx
                .unbounded_send(Inbound::Text(
                    "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0".into(),
                ))
                .unwrap();
            in_tx
                .unbounded_send(Inbound::Text(
                    "SUBSCRIBE\nid:0\ndestination:/user/queue/notifications\nreceipt:r\n\n\0"
                        .into(),
                ))
                .unwrap();
            tokio::spawn(run_session(
                service.clone(),
                Handshake::with_token(Some(token)),
                in_rx,
                out_tx.clone(),
            ));
            inbound.push(in_tx);
        }
        for _ in 0..2 * n {
            match out_rx.next().await {
                Some(Outbound::Text(t)) => {
                    assert!(
                        t.starts_with("CONNECTED") || t.starts_with("RECEIPT"),
                        "{t}"
                    )
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    (out_rx, inbound)
}

fn to_stomp_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_to_stomp_frames");
    g.measurement_time(Duration::from_secs(8));
    for n in [1usize, 100, 1_000] {
        let rt = runtime();
        let (service, publisher, _pipeline) = service(&rt);
        let (mut out_rx, _inbound) = sessions(&rt, &service, n);
        let events = EventIds::new(fixtures::event_json("evt-bench", &[], &[], true));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        publisher.send_raw(events.next()).await.unwrap();
                        for _ in 0..n {
                            match out_rx.next().await {
                                Some(Outbound::Text(t)) => debug_assert!(t.starts_with("MESSAGE")),
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                    t.elapsed()
                })
            })
        });
        drop(rt);
    }
    g.finish();
}

// `criterion_group!` makes a public function; a private module keeps it undocumented.
mod group {
    criterion::criterion_group!(benches, super::to_queue, super::to_stomp_frames);
}
criterion_main!(group::benches);
