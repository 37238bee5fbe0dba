//! W3C trace context in Kafka record headers (`traceparent`, `tracestate`), as the
//! OpenTelemetry messaging conventions carry it: read on consumption, written by the sink.

use notify_core::trace::{TRACEPARENT, TRACESTATE};
use notify_core::TraceContext;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::Message;

/// The trace context of a record's headers, if it carries a valid `traceparent`.
pub(crate) fn read(m: &impl Message) -> Option<TraceContext> {
    let headers = m.headers()?;
    let (mut parent, mut state) = (None, None);
    for h in headers.iter() {
        let value = h.value.and_then(|v| std::str::from_utf8(v).ok());
        match h.key {
            TRACEPARENT => parent = value,
            TRACESTATE => state = value,
            _ => {}
        }
    }
    TraceContext::parse(parent?, state)
}

/// The record headers that carry `trace`.
pub(crate) fn write(trace: &TraceContext) -> OwnedHeaders {
    let headers = OwnedHeaders::new_with_capacity(2).insert(Header {
        key: TRACEPARENT,
        value: Some(trace.traceparent()),
    });
    match trace.tracestate() {
        Some(state) => headers.insert(Header {
            key: TRACESTATE,
            value: Some(state),
        }),
        None => headers,
    }
}
