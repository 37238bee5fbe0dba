//! `NOTIFY_LOG_FORMAT=json`: one JSON object per line, with the fields of every enclosing
//! span (the event id of `notify.event` and its children among them) flattened beside the
//! message, so a log shipper (ELK, Loki) can select all lines of one event by `event_id`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON line format: `timestamp`, `level`, `target`, the fields of the enclosing spans
/// (outermost first, inner ones win), the event's own fields (`message` among them; they win
/// over span fields), and `spans`, the names of the enclosing spans joined by `:`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let mut names = Vec::new();
            for span in scope.from_root() {
                names.push(span.name());
                let extensions = span.extensions();
                // The span's fields as the JSON field formatter recorded them.
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                        // `otel.*` fields are instructions to the span exporter, not data.
                        line.extend(fields.into_iter().filter(|(k, _)| !k.starts_with("otel.")));
                    }
                }
            }
            line.insert("spans".into(), names.join(":").into());
        }
        event.record(&mut Fields(&mut line));
        serde_json::to_writer(WriteAdaptor(&mut writer), &line).map_err(|_| fmt::Error)?;
        writeln!(writer)
    }
}

/// Collects an event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// `io::Write` over a `fmt::Write` (serde_json writes bytes; the JSON is UTF-8).
struct WriteAdaptor<'a, 'b>(&'a mut Writer<'b>);

impl std::io::Write for WriteAdaptor<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.write_str(s).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
