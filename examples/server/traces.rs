//! Span export over OTLP (http/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, through
//! `tracing-opentelemetry`, and the propagator that ties the core's plain trace context
//! (`traceparent` from producers, to clients) to those spans.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use notify_core::trace::{TracePropagator, TRACEPARENT, TRACESTATE};
use notify_core::{Error, Result, TraceContext};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::Layer;

use crate::config::Args;
use crate::logging::BoxedLayer;

/// Longest wait for the receiver, per export and for the final flush at exit.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// The export settings: the collector's base URL and the service name.
#[derive(Debug, Clone)]
pub(crate) struct OtlpConfig {
    /// Where spans go: `<endpoint>/v1/traces`.
    traces_url: String,
    /// `service.name` of the exported spans.
    service_name: String,
}

impl OtlpConfig {
    /// The export settings, or `None` when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset or empty.
    /// Errors name the variable.
    pub(crate) fn from_args(args: &Args) -> Result<Option<Self>> {
        let Some(endpoint) = args
            .otel_exporter_otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(None);
        };
        let url = url::Url::parse(endpoint).map_err(|e| {
            Error::config(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("not a URL: {endpoint:?} ({e})"),
            )
        })?;
        if url.scheme() != "http" || url.host().is_none() {
            return Err(Error::config(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!(
                    "must be an http:// URL of an OTLP/HTTP receiver (port 4318), got {endpoint:?}"
                ),
            ));
        }
        match args.otel_exporter_otlp_protocol.trim() {
            "" | "http/protobuf" => {}
            other => {
                return Err(Error::config(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    format!("only http/protobuf is supported, got {other:?}"),
                ))
            }
        }
        let service_name = match args.otel_service_name.trim() {
            "" => "notify".to_string(),
            name => name.to_string(),
        };
        Ok(Some(OtlpConfig {
            // As the OTLP exporter specification says for the signal-independent variable.
            traces_url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            service_name,
        }))
    }

    /// Starts the exporter (a batch processor on its own thread). Call outside the Tokio
    /// runtime: the HTTP client is a blocking one.
    pub(crate) fn start(&self) -> Result<Exporter> {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&self.traces_url)
            // A receiver that does not answer must not hold the final flush past the
            // contract's 10 s shutdown.
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| Error::config("OTEL_EXPORTER_OTLP_ENDPOINT", e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(self.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Exporter {
            provider,
            url: self.traces_url.clone(),
        })
    }
}

/// A running span exporter; [`Exporter::shutdown`] flushes what is buffered.
#[derive(Debug)]
pub(crate) struct Exporter {
    provider: SdkTracerProvider,
    url: String,
}

impl Exporter {
    /// The `tracing` layer that turns spans into OpenTelemetry spans. Its own filter: the
    /// service's spans at `info`, whatever `RUST_LOG` says about log lines.
    pub(crate) fn layer(&self) -> BoxedLayer {
        let tracer = self.provider.tracer("notify");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(
                Targets::new()
                    .with_target("notify_core", LevelFilter::INFO)
                    .with_target("notify_kafka", LevelFilter::INFO)
                    .with_target("notify_mongo", LevelFilter::INFO),
            )
            .boxed()
    }

    /// Where spans go, for the start-up log line.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The propagator to install in the service.
    pub(crate) fn propagator(&self) -> Arc<dyn TracePropagator> {
        Arc::new(OtelPropagator)
    }

    /// Exports what is buffered and stops (at exit), waiting at most [`EXPORT_TIMEOUT`].
    pub(crate) fn shutdown(self) {
        let (done, wait) = std::sync::mpsc::channel();
        let provider = self.provider;
        std::thread::spawn(move || {
            let _ = done.send(provider.shutdown());
        });
        match wait.recv_timeout(EXPORT_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("span export: final flush failed: {e}"),
            Err(_) => eprintln!(
                "span export: final flush still running after {EXPORT_TIMEOUT:?}; exiting"
            ),
        }
    }
}

/// Continues W3C trace context in `tracing-opentelemetry` spans.
#[derive(Debug)]
struct OtelPropagator;

impl TracePropagator for OtelPropagator {
    fn continue_trace(&self, span: &tracing::Span, remote: &TraceContext) {
        let mut carrier = HashMap::with_capacity(2);
        carrier.insert(TRACEPARENT.to_string(), remote.traceparent().to_string());
        if let Some(state) = remote.tracestate() {
            carrier.insert(TRACESTATE.to_string(), state.to_string());
        }
        let parent = TraceContextPropagator::new().extract(&carrier);
        let _ = span.set_parent(parent);
    }

    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext> {
        let cx = span.context();
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        let state = sc.trace_state().header();
        TraceContext::parse(
            &traceparent,
            Some(&state).filter(|s| !s.is_empty()).map(|s| s.as_str()),
        )
    }
}
