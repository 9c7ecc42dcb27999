//! The controller's Prometheus metrics and `GET /metrics`.
//!
//! | metric | type | labels | |
//! |---|---|---|---|
//! | `whirl_controller_activations_total` | counter | `kind`, `outcome` | invokes dispatched: a blocking invoke's status (`success`, `application_error`, `developer_error`, `whisk_error`), `accepted` (answered 202: non-blocking, a rule, or the wait ran out) or `failed` (the balancer refused it) |
//! | `whirl_controller_invoke_seconds` | histogram | `kind` | end to end: request received → response of a completed blocking invoke |
//! | `whirl_controller_throttled_total` | counter | `limit` | 429s: `invocations_per_minute`, `concurrent_invocations`, `fires_per_minute` |
//! | `whirl_controller_active_activations` | gauge | `balancer` | activations dispatched and not completed |
//! | `whirl_invoker_health` | gauge | `invoker`, `balancer`, `status` | 1 for the invoker's current state (`healthy`, `unhealthy`, `unresponsive`, `offline`), 0 for the others |
//!
//! All carry the const label `controller`. The registry also holds whatever the composition root
//! registers in it (the in-process invoker's metrics in a standalone platform,
//! `whirl_invoker_*`), so one scrape covers both.
//!
//! Updates on the invoke path are atomic increments on handles looked up once (per kind of the
//! manifest, plus `other`); the gauges are read from the balancers when a scrape asks.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use whirl_model::{RuntimeManifest, StatusCode as ActivationStatus};
use whirl_spi::{HealthStatus, InvokerHealth};

use crate::Inner;

/// The `tracing` target of the request spans (`whirl_telemetry::TRACE_TARGET`): spans of this
/// target are recorded only when an OTLP exporter is configured.
pub(crate) const TRACE_TARGET: &str = "whirl_trace";

/// Latency buckets in seconds, from 100 µs to 5 minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

const OUTCOMES: [&str; 6] = [
    "success",
    "application_error",
    "developer_error",
    "whisk_error",
    "accepted",
    "failed",
];

const HEALTH: [(HealthStatus, &str); 4] = [
    (HealthStatus::Healthy, "healthy"),
    (HealthStatus::Unhealthy, "unhealthy"),
    (HealthStatus::Unresponsive, "unresponsive"),
    (HealthStatus::Offline, "offline"),
];

/// How a dispatched activation was answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// A blocking invoke got its record.
    Completed(ActivationStatus),
    /// Answered 202 with the id.
    Accepted,
    /// The balancer refused it.
    Failed,
}

impl Outcome {
    fn index(self) -> usize {
        match self {
            Outcome::Completed(s) => s as usize,
            Outcome::Accepted => 4,
            Outcome::Failed => 5,
        }
    }
}

struct KindHandles {
    outcomes: [IntCounter; 6],
    end_to_end: Histogram,
}

/// Rejections by the throttles, one handle per limit.
#[derive(Clone)]
pub(crate) struct Rejections {
    vec: IntCounterVec,
    pub invocations: IntCounter,
    pub concurrent: IntCounter,
    pub fires: IntCounter,
}

impl Default for Rejections {
    fn default() -> Self {
        Self::new("controller0")
    }
}

impl Rejections {
    pub fn new(controller: &str) -> Self {
        let vec = IntCounterVec::new(
            Opts::new(
                "whirl_controller_throttled_total",
                "Requests refused with 429 by a throttle, by limit.",
            )
            .const_label("controller", controller),
            &["limit"],
        )
        .expect("valid metric");
        Self {
            invocations: vec.with_label_values(&["invocations_per_minute"]),
            concurrent: vec.with_label_values(&["concurrent_invocations"]),
            fires: vec.with_label_values(&["fires_per_minute"]),
            vec,
        }
    }
}

/// The controller's metrics and its registry.
pub(crate) struct ControllerMetrics {
    registry: Registry,
    manifest: Arc<RuntimeManifest>,
    /// Manifest order, then `other`.
    kinds: Vec<KindHandles>,
    health: IntGaugeVec,
    active: IntGaugeVec,
    /// Serializes scrapes (the gauges are reset and refilled by each).
    scrape: Mutex<()>,
}

impl ControllerMetrics {
    pub fn new(controller: &str, manifest: Arc<RuntimeManifest>, rejections: &Rejections) -> Self {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("controller", controller);
        let activations = IntCounterVec::new(
            opts(
                "whirl_controller_activations_total",
                "Invokes dispatched, by kind and outcome (a blocking invoke's status, accepted, failed).",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let end_to_end = HistogramVec::new(
            HistogramOpts::new(
                "whirl_controller_invoke_seconds",
                "End-to-end latency of completed blocking invokes (request received to response).",
            )
            .const_label("controller", controller)
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["kind"],
        )
        .expect("valid metric");
        let health = IntGaugeVec::new(
            opts(
                "whirl_invoker_health",
                "Invoker health as the load balancer sees it: 1 for the current status.",
            ),
            &["invoker", "balancer", "status"],
        )
        .expect("valid metric");
        let active = IntGaugeVec::new(
            opts(
                "whirl_controller_active_activations",
                "Activations dispatched by a load balancer and not yet completed.",
            ),
            &["balancer"],
        )
        .expect("valid metric");
        let kinds = manifest
            .kinds
            .iter()
            .map(|k| k.kind.as_str())
            .chain(std::iter::once("other"))
            .map(|kind| KindHandles {
                outcomes: OUTCOMES.map(|o| activations.with_label_values(&[kind, o])),
                end_to_end: end_to_end.with_label_values(&[kind]),
            })
            .collect();
        let registry = Registry::new();
        for c in [
            Box::new(activations) as Box<dyn prometheus::core::Collector>,
            Box::new(end_to_end),
            Box::new(health.clone()),
            Box::new(active.clone()),
            Box::new(rejections.vec.clone()),
        ] {
            registry.register(c).expect("distinct metrics");
        }
        Self {
            registry,
            manifest,
            kinds,
            health,
            active,
            scrape: Mutex::new(()),
        }
    }

    /// The registry `GET /metrics` serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn kind(&self, kind: &str) -> &KindHandles {
        let i = self.manifest.position(kind).unwrap_or(self.kinds.len() - 1);
        &self.kinds[i]
    }

    /// Counts a dispatched activation of an action of `kind`; a completed blocking invoke also
    /// records its end-to-end latency.
    pub fn dispatched(&self, kind: &str, outcome: Outcome, took: Option<Duration>) {
        let k = self.kind(kind);
        k.outcomes[outcome.index()].inc();
        if let (Outcome::Completed(_), Some(t)) = (outcome, took) {
            k.end_to_end.observe(t.as_secs_f64());
        }
    }

    /// The text exposition of every metric, after reading the balancers' gauges.
    fn encode(
        &self,
        balancers: &[(String, u64, Vec<InvokerHealth>)],
    ) -> prometheus::Result<String> {
        let _guard = self.scrape.lock();
        self.health.reset();
        self.active.reset();
        for (name, active, invokers) in balancers {
            self.active.with_label_values(&[name]).set(*active as i64);
            for inv in invokers {
                for (status, label) in HEALTH {
                    self.health
                        .with_label_values(&[&inv.id, &inv.load_balancer, label])
                        .set(i64::from(inv.status == status));
                }
            }
        }
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

/// `GET /metrics`.
async fn scrape(State(inner): State<Arc<Inner>>) -> Response {
    let balancers =
        futures::future::join_all(inner.balancers.all().into_iter().map(|b| async move {
            let health = b.invoker_health().await;
            (b.name().to_owned(), b.total_active_activations(), health)
        }))
        .await;
    match inner.metrics.encode(&balancers) {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        Err(e) => crate::error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            .into_response(),
    }
}

/// `GET /metrics`, when enabled.
pub(crate) fn routes(config: &crate::ControllerConfig) -> Router<Arc<Inner>> {
    let r = Router::new();
    if config.metrics {
        r.route("/metrics", get(scrape))
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_health_read_back() {
        let manifest: RuntimeManifest = serde_json::from_value(serde_json::json!({"kinds": [
            {"kind": "python:3", "default": true, "launcher": "python"}
        ]}))
        .unwrap();
        let rej = Rejections::new("c1");
        let m = ControllerMetrics::new("c1", Arc::new(manifest), &rej);
        m.dispatched(
            "python:default",
            Outcome::Completed(ActivationStatus::Success),
            Some(Duration::from_micros(400)),
        );
        m.dispatched("sequence", Outcome::Accepted, None);
        rej.concurrent.inc();
        let health = vec![InvokerHealth {
            id: "invoker0".into(),
            status: HealthStatus::Unresponsive,
            user_memory_mb: 1024,
            load_balancer: "lean".into(),
        }];
        let text = m.encode(&[("lean".into(), 3, health)]).unwrap();
        for line in [
            r#"whirl_controller_activations_total{controller="c1",kind="python:3",outcome="success"} 1"#,
            r#"whirl_controller_activations_total{controller="c1",kind="other",outcome="accepted"} 1"#,
            r#"whirl_controller_invoke_seconds_bucket{controller="c1",kind="python:3",le="0.0005"} 1"#,
            r#"whirl_controller_throttled_total{controller="c1",limit="concurrent_invocations"} 1"#,
            r#"whirl_controller_active_activations{balancer="lean",controller="c1"} 3"#,
            r#"whirl_invoker_health{balancer="lean",controller="c1",invoker="invoker0",status="unresponsive"} 1"#,
            r#"whirl_invoker_health{balancer="lean",controller="c1",invoker="invoker0",status="healthy"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
