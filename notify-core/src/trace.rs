//! W3C trace context (`traceparent`, `tracestate`) carried as plain data from producers
//! through rules, store and push, and the hook that ties it to `tracing` spans.
//!
//! The core does not depend on OpenTelemetry: a [`TraceContext`] is two validated strings.
//! An application that exports spans installs a [`TracePropagator`] (the example server's
//! is built on `tracing-opentelemetry`); the spans of an event's path then continue the
//! producer's trace and the context handed on (Kafka record headers, STOMP MESSAGE and SSE
//! `traceparent`) names the server's own span. Without one, the producer's context is passed
//! on unchanged.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;

use crate::model::Event;
use crate::service::NotifyService;

/// The W3C header (HTTP, Kafka record, STOMP MESSAGE, SSE field) that carries the context.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header with vendor-specific trace state, passed on beside [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` passed on (W3C: 32 members of at most 256 bytes; a value this long
/// is dropped rather than cut).
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A validated W3C trace context: `traceparent` in its version-00 form, and `tracestate`
/// when one came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` (and optional `tracestate`) as W3C Trace Context says:
    /// `version-traceid-parentid-flags` in lowercase hex, trace and parent id not all zeros.
    /// Returns `None` for an invalid `traceparent` (the receiver then starts a new trace);
    /// an invalid or oversized `tracestate` alone is dropped. A future version is read by its
    /// first four fields and passed on as version 00.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let tp = traceparent.trim_matches([' ', '\t']);
        let b = tp.as_bytes();
        if b.len() < 55 {
            return None;
        }
        let lower_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let (version, trace_id, parent_id, flags) = (&b[0..2], &b[3..35], &b[36..52], &b[53..55]);
        let dashes = b[2] == b'-' && b[35] == b'-' && b[52] == b'-';
        let valid = dashes
            && lower_hex(version)
            && version != b"ff"
            && lower_hex(trace_id)
            && trace_id.iter().any(|c| *c != b'0')
            && lower_hex(parent_id)
            && parent_id.iter().any(|c| *c != b'0')
            && lower_hex(flags)
            // Version 00 is exactly 55 characters; later versions may append `-fields`.
            && (b.len() == 55 || (version != b"00" && b[55] == b'-'));
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(|s| s.trim_matches([' ', '\t']))
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_TRACESTATE_BYTES
                    && s.bytes().all(|c| (0x20..0x7f).contains(&c))
            })
            .map(str::to_string);
        Some(TraceContext {
            traceparent: format!("00{}", &tp[2..55]),
            tracestate,
        })
    }

    /// The `traceparent` value (version 00).
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The id of the span this context names (the parent of whatever continues it): 16
    /// lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }
}

impl std::fmt::Display for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.traceparent)
    }
}

/// Ties trace context to `tracing` spans: implemented over a span exporter (OpenTelemetry)
/// by the application, installed with
/// [`crate::service::NotifyServiceBuilder::trace_propagator`].
pub trait TracePropagator: Send + Sync + std::fmt::Debug + 'static {
    /// Makes `span`, just created and not yet entered, a child of `remote`.
    fn continue_trace(&self, span: &tracing::Span, remote: &TraceContext);
    /// The context naming `span`, to hand on; `None` when the span is not traced.
    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext>;
}

/// How a service carries trace context: through its [`TracePropagator`] when one is
/// installed, else by passing the producer's context on unchanged.
#[derive(Debug, Clone, Default)]
pub struct Tracing {
    propagator: Option<Arc<dyn TracePropagator>>,
}

impl Tracing {
    /// Carries context through `propagator`.
    pub fn new(propagator: Arc<dyn TracePropagator>) -> Self {
        Tracing {
            propagator: Some(propagator),
        }
    }

    /// Continues `remote` in `span` (a new root span when there is none) and returns the
    /// context to hand on from inside it.
    pub fn continue_in(
        &self,
        span: &tracing::Span,
        remote: Option<TraceContext>,
    ) -> Option<TraceContext> {
        let Some(p) = &self.propagator else {
            return remote;
        };
        if let Some(remote) = &remote {
            p.continue_trace(span, remote);
        }
        p.context_of(span).or(remote)
    }

    /// The context to hand on from inside `span` (a child of a span set up with
    /// [`Tracing::continue_in`]); `inherited` when no propagator is installed or the span
    /// is not traced.
    pub fn context_of(
        &self,
        span: &tracing::Span,
        inherited: Option<TraceContext>,
    ) -> Option<TraceContext> {
        match &self.propagator {
            Some(p) => p.context_of(span).or(inherited),
            None => inherited,
        }
    }
}

/// The trace context of a request's `traceparent` and `tracestate` headers, if valid.
pub fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header(TRACEPARENT)?, header(TRACESTATE))
}

/// The span of one `POST /api/events` (`notify.publish`), continuing the request's trace
/// context, and the context to hand on with the events. The event id is a field when one
/// event is published.
pub(crate) fn publish_span(
    service: &NotifyService,
    headers: &HeaderMap,
    events: &[(Event, Bytes)],
) -> (tracing::Span, Option<TraceContext>) {
    let span = tracing::info_span!(
        "notify.publish",
        otel.kind = "server",
        events = events.len(),
        event_id = tracing::field::Empty,
    );
    if let [(event, _)] = events {
        span.record("event_id", event.id.as_str());
    }
    let trace = service.tracing.continue_in(&span, from_headers(headers));
    (span, trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example() {
        let c = TraceContext::parse(TP, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(c.traceparent(), TP);
        assert_eq!(c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent_id(), "00f067aa0ba902b7");
        assert!(c.sampled());
        assert_eq!(c.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(c.to_string(), TP);
        assert!(!TraceContext::parse(&TP.replace("-01", "-00"), None)
            .unwrap()
            .sampled());
    }

    #[test]
    fn rejects_what_w3c_rejects() {
        for bad in [
            "",
            "garbage",
            &TP.to_uppercase(),
            &TP.replace("4bf92f3577b34da6a3ce929d0e0e4736", &"0".repeat(32)),
            &TP.replace("00f067aa0ba902b7", &"0".repeat(16)),
            &TP.replacen("00-", "ff-", 1),
            &format!("{TP}-extra"),
            &TP.replace('-', "_"),
            &TP[..54],
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn future_versions_pass_on_as_00_and_bad_tracestate_is_dropped() {
        let future = TP.replacen("00-", "cc-", 1) + "-what-comes-next";
        assert_eq!(
            TraceContext::parse(&future, None).unwrap().traceparent(),
            TP
        );
        let c = TraceContext::parse(TP, Some(&"a".repeat(MAX_TRACESTATE_BYTES + 1))).unwrap();
        assert_eq!(c.tracestate(), None);
        assert_eq!(
            TraceContext::parse(TP, Some("a=b\n")).unwrap().tracestate(),
            None
        );
    }

    #[test]
    fn without_a_propagator_the_context_passes_through() {
        let t = Tracing::default();
        let c = TraceContext::parse(TP, None);
        assert_eq!(t.continue_in(&tracing::Span::none(), c.clone()), c);
        assert_eq!(t.context_of(&tracing::Span::none(), None), None);
    }
}
