//! Rule rendering: parsing a bare event, finding its rule, rendering five templates, and
//! the whole event → notifications step of the pipeline (validation, rules, ids).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_main, Criterion, Throughput};
use notify_benches::fixtures;
use notify_core::auth::Authenticator;
use notify_core::pipeline::notifications_for;
use notify_core::rules::render;
use notify_core::{Event, MemorySource, MemoryStore, NotifyService, Rules};

fn bench(c: &mut Criterion) {
    let rules = Rules::from_toml(fixtures::RULES).unwrap();
    let bare = fixtures::bare_event_json("evt-1");
    let event = Event::from_slice(bare.as_bytes()).unwrap();
    let explicit = fixtures::event_json("evt-2", &["alice"], &["ops"], false);

    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_event", |b| {
        b.iter(|| Event::from_slice(black_box(bare.as_bytes())).unwrap())
    });
    g.bench_function("resolve_5_templates", |b| {
        b.iter(|| rules.resolve(black_box(&event)).unwrap())
    });
    g.bench_function("render_one_template", |b| {
        b.iter(|| {
            render(
                black_box("{data.requester} requested {data.item}"),
                &event.raw,
            )
            .unwrap()
        })
    });
    g.bench_function("find_rule", |b| {
        b.iter(|| rules.find(black_box("purchase.shipped")).is_some())
    });
    g.bench_function("rules_from_toml", |b| {
        b.iter(|| Rules::from_toml(black_box(fixtures::RULES)).unwrap())
    });

    let (_source, publisher) = MemorySource::new(16);
    let service: Arc<NotifyService> = NotifyService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(publisher),
        Authenticator::hs256(b"bench"),
    )
    .rules(rules.clone())
    .build();
    let now = chrono::Utc::now();
    g.bench_function("notifications_for_bare_event", |b| {
        b.iter(|| notifications_for(&service, black_box(bare.as_bytes()), now).unwrap())
    });
    g.bench_function("notifications_for_explicit_event", |b| {
        b.iter(|| notifications_for(&service, black_box(explicit.as_bytes()), now).unwrap())
    });
    g.finish();
}

// `criterion_group!` makes a public function; a private module keeps it undocumented.
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
