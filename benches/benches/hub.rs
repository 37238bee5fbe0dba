//! Hub fan-out: one notification offered to 1, 1,000 and 10,000 in-process sessions
//! (broadcast, and a group holding every session), and a personal notification routed
//! among 10,000 sessions. Only `deliver` is timed; the queues are drained between
//! iterations, untimed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use futures::FutureExt;
use notify_benches::fixtures;
use notify_core::hub::{session_queue, SessionReceiver};
use notify_core::store::Reader;
use notify_core::{Audience, LocalHub, Push, SessionHub};

fn hub_with(n: usize) -> (LocalHub, Vec<SessionReceiver>) {
    let hub = LocalHub::new();
    let mut receivers = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = session_queue(256);
        hub.register(
            &Arc::new(Reader::new(format!("u{i}"), vec!["everyone".into()])),
            tx,
        );
        receivers.push(rx);
    }
    (hub, receivers)
}

fn drain(receivers: &mut [SessionReceiver]) {
    for rx in receivers {
        while let Some(Some(_)) = rx.recv().now_or_never() {}
    }
}

fn timed_deliver(
    hub: &LocalHub,
    receivers: &mut [SessionReceiver],
    push: &Arc<Push>,
    expect: usize,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let reached = hub.deliver(push);
        total += t.elapsed();
        assert_eq!(reached, expect);
        drain(receivers);
    }
    total
}

fn bench(c: &mut Criterion) {
    let broadcast = Push::new(
        fixtures::notification(Audience::Broadcast),
        chrono::Utc::now(),
    );
    let group = Push::new(
        fixtures::notification(Audience::Group("everyone".into())),
        chrono::Utc::now(),
    );
    let mut g = c.benchmark_group("hub_fanout");
    for n in [1usize, 1_000, 10_000] {
        let (hub, mut receivers) = hub_with(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("broadcast", n), &n, |b, &n| {
            b.iter_custom(|iters| timed_deliver(&hub, &mut receivers, &broadcast, n, iters))
        });
        g.bench_with_input(BenchmarkId::new("group", n), &n, |b, &n| {
            b.iter_custom(|iters| timed_deliver(&hub, &mut receivers, &group, n, iters))
        });
    }
    g.finish();

    let (hub, mut receivers) = hub_with(10_000);
    let personal = Push::new(
        fixtures::notification(Audience::User("u4242".into())),
        chrono::Utc::now(),
    );
    let mut g = c.benchmark_group("hub_route");
    g.throughput(Throughput::Elements(1));
    g.bench_function("personal_among_10000", |b| {
        b.iter_custom(|iters| timed_deliver(&hub, &mut receivers, &personal, 1, iters))
    });
    g.bench_function("register_unregister_at_10000", |b| {
        let reader = Arc::new(Reader::new(
            "newcomer",
            vec!["everyone".into(), "ops".into()],
        ));
        b.iter(|| {
            let (tx, _rx) = session_queue(256);
            let id = hub.register(&reader, tx);
            hub.unregister(id);
        })
    });
    g.finish();
}

// `criterion_group!` makes a public function; a private module keeps it undocumented.
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
