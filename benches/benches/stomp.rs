//! STOMP frame encode and decode: the MESSAGE frame every push becomes, the generic
//! encoder, the parser on the frames clients send and on a MESSAGE (what a client decodes),
//! and the notification's JSON serialization that precedes them (once per push).

use std::hint::black_box;

use criterion::{criterion_main, Criterion, Throughput};
use notify_benches::fixtures;
use notify_core::stomp::frame::{encode_message, parse_all, Frame};
use notify_core::{Audience, Push};

fn bench(c: &mut Criterion) {
    let n = fixtures::notification(Audience::User("alice".into()));
    let push = Push::new(n.clone(), chrono::Utc::now());
    let body = push.json.clone();
    let message = encode_message("/user/queue/notifications", "sub-0", &n.id, &body);

    let mut g = c.benchmark_group("stomp");
    g.throughput(Throughput::Bytes(message.len() as u64));
    g.bench_function("encode_message", |b| {
        b.iter(|| {
            encode_message(
                black_box("/user/queue/notifications"),
                black_box("sub-0"),
                black_box(&n.id),
                black_box(&body),
            )
        })
    });
    let frame = Frame::new("MESSAGE")
        .header("destination", "/user/queue/notifications")
        .header("subscription", "sub-0")
        .header("message-id", n.id.clone())
        .header("content-type", "application/json")
        .body(body.to_vec());
    g.bench_function("frame_encode_generic", |b| {
        b.iter(|| black_box(&frame).encode())
    });
    g.bench_function("parse_message", |b| {
        b.iter(|| parse_all(black_box(message.as_bytes())).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    let connect = b"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\nAuthorization:Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl\n\n\0";
    g.bench_function("parse_connect", |b| {
        b.iter(|| parse_all(black_box(connect)).unwrap())
    });
    let subscribe = b"SUBSCRIBE\nid:sub-0\ndestination:/user/queue/notifications\nsince:1795000000123456_n_0123456789abcdefghjkmnpqrs\nreceipt:r-1\n\n\0";
    g.bench_function("parse_subscribe", |b| {
        b.iter(|| parse_all(black_box(subscribe)).unwrap())
    });
    g.bench_function("heartbeat", |b| {
        b.iter(|| parse_all(black_box(b"\n")).unwrap())
    });
    g.bench_function("notification_json", |b| {
        b.iter(|| black_box(&n).to_json_bytes(false))
    });
    g.bench_function("push_new", |b| {
        b.iter(|| Push::new(black_box(&n).clone(), chrono::Utc::now()))
    });
    g.finish();
}

// `criterion_group!` makes a public function; a private module keeps it undocumented.
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
