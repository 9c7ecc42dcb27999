//! Carrying a trace across processes (W3C trace context), for activation messages on a bus.
//!
//! The sender puts [`inject_current`]'s map into its message; the receiver creates its span and
//! calls [`set_parent`] with the map, so the receiver's spans join the sender's trace. Without an
//! exporter configured both are no-ops (the map stays empty).

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The trace context of the current span (`traceparent`, `tracestate`), empty when not tracing.
pub fn inject_current() -> HashMap<String, String> {
    let mut map = HashMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MapInjector(&mut map))
    });
    map
}

/// Makes `span` a child of the remote span described by `carrier`.
pub fn set_parent(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if carrier.is_empty() {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapExtractor(carrier)));
    let _ = span.set_parent(cx);
}
