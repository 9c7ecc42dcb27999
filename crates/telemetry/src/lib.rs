//! Whirl's observability plumbing, shared by every server process (`whirl standalone`, and the
//! controller and invoker processes of a distributed deployment).
//!
//! - [`init`] installs the process's `tracing` subscriber: log lines on stdout filtered by
//!   `WHIRL_LOG`, and, when [`TelemetryConfig::otlp_endpoint`] is set, an OpenTelemetry layer
//!   that exports the request spans over OTLP/HTTP (protobuf) to a collector.
//! - [`metrics`] serves a Prometheus registry over HTTP, for processes that have no API port of
//!   their own (a standalone invoker); the controller serves `GET /metrics` on its API port.
//! - [`propagation`] carries a trace across a process boundary (W3C `traceparent`), for messages
//!   on the bus.
//!
//! The controller and invoker crates do not depend on this crate: they emit spans with the
//! `tracing` macros under the target [`TRACE_TARGET`] and keep their metrics in `prometheus`
//! types. Those spans are disabled (a callsite check, nothing allocated) unless an OTLP endpoint
//! is configured, so tracing costs the warm path nothing when it is off.

pub mod metrics;
pub mod propagation;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use serde::{Deserialize, Serialize};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The `tracing` target of the request spans (HTTP request, load balancer, invoker, container).
/// Log output leaves these spans out; the OTLP exporter takes exactly these.
pub const TRACE_TARGET: &str = "whirl_trace";

/// The `[telemetry]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`); spans are posted to
    /// `<endpoint>/v1/traces` as protobuf. Unset: no spans are recorded or exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Extra HTTP headers on every export request (e.g. a collector's `authorization`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub otlp_headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// Fraction of new traces recorded (0.0–1.0); a trace continued from a caller follows the
    /// caller's sampling decision.
    pub sample_ratio: f64,
    /// Longest time spans wait in the exporter's batch before they are sent, in ms.
    pub export_interval_ms: u64,
    /// Time limit of one export request, in ms.
    pub export_timeout_ms: u64,
    /// Where a process without an API port (`whirl invoker`) serves `GET /metrics`, e.g.
    /// `127.0.0.1:9102`. Unset: not served. (The controller serves it on its API port.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            otlp_headers: BTreeMap::new(),
            service_name: "whirl".into(),
            sample_ratio: 1.0,
            export_interval_ms: 1000,
            export_timeout_ms: 10_000,
            metrics_listen: None,
        }
    }
}

impl TelemetryConfig {
    /// Checks the settings without starting anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.sample_ratio),
            "sample_ratio must be between 0 and 1"
        );
        if let Some(e) = &self.otlp_endpoint {
            anyhow::ensure!(
                e.starts_with("http://") || e.starts_with("https://"),
                "otlp_endpoint must be an http:// or https:// URL, got {e:?}"
            );
        }
        Ok(())
    }

    /// The URL spans are posted to.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        Some(if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        })
    }
}

/// Keeps the exporter running; dropping it flushes the spans still batched and stops it.
/// Drop it outside any async runtime (after `block_on` returns).
#[must_use = "dropping the guard stops the span exporter"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("whirl: could not flush the span exporter: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs filtered by the environment variable `log_env` (an
/// `EnvFilter` directive string, `default_filter` when unset), and the OTLP span exporter when
/// configured.
pub fn init(
    config: &TelemetryConfig,
    log_env: &str,
    default_filter: &str,
) -> anyhow::Result<TelemetryGuard> {
    config.validate()?;
    let directives = std::env::var(log_env).unwrap_or_else(|_| default_filter.to_string());
    let mut log_filter = EnvFilter::try_new(&directives)
        .or_else(|_| EnvFilter::try_new(default_filter))
        .context("log filter")?;
    if !directives.contains(TRACE_TARGET) {
        log_filter = log_filter.add_directive(format!("{TRACE_TARGET}=off").parse()?);
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_filter(log_filter);
    let provider = match config.traces_url() {
        Some(url) => Some(provider(config, &url)?),
        None => None,
    };
    // Two shapes rather than an `Option` layer: an absent layer would count as one that wants
    // every callsite, and the request spans would then be built (and dropped) on the warm path.
    let installed = match &provider {
        Some(p) => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let otel = tracing_opentelemetry::layer()
                .with_tracer(p.tracer("whirl"))
                .with_filter(Targets::new().with_target(TRACE_TARGET, tracing::Level::TRACE));
            tracing_subscriber::registry()
                .with(fmt)
                .with(otel)
                .try_init()
        }
        None => tracing_subscriber::registry().with(fmt).try_init(),
    };
    installed.context("a tracing subscriber is already installed")?;
    if let Some(url) = config.traces_url() {
        tracing::info!(%url, "exporting spans over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
}

fn provider(config: &TelemetryConfig, url: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(Duration::from_millis(config.export_timeout_ms))
        .with_headers(config.otlp_headers.clone().into_iter().collect())
        .build()
        .context("cannot build the OTLP span exporter")?;
    // The batch processor runs on its own thread: exporting never runs on the request path.
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(config.export_interval_ms.max(1)))
                .build(),
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_urls() {
        let c: TelemetryConfig = toml::from_str("").unwrap();
        assert_eq!(c, TelemetryConfig::default());
        assert_eq!(c.traces_url(), None);
        let c: TelemetryConfig =
            toml::from_str("otlp_endpoint = \"http://127.0.0.1:4318/\"\nsample_ratio = 0.5\n")
                .unwrap();
        assert_eq!(
            c.traces_url().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        c.validate().unwrap();
        let c: TelemetryConfig =
            toml::from_str("otlp_endpoint = \"http://c:4318/v1/traces\"\n").unwrap();
        assert_eq!(c.traces_url().as_deref(), Some("http://c:4318/v1/traces"));
        assert!(toml::from_str::<TelemetryConfig>("bogus = 1\n").is_err());
        let bad = TelemetryConfig {
            sample_ratio: 2.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = TelemetryConfig {
            otlp_endpoint: Some("127.0.0.1:4318".into()),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
