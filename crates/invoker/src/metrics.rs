//! The invoker's Prometheus metrics (every series carries the const label `invoker`):
//!
//! | metric | type | labels | |
//! |---|---|---|---|
//! | `whirl_invoker_activations_total` | counter | `kind`, `status` | activations run to a record (`success`, `application_error`, `developer_error`, `whisk_error`) |
//! | `whirl_invoker_activation_seconds` | histogram | `kind`, `phase` | `wait` (accepted by the controller → start), `init` (/init), `run` (/run), `invoker` (the invoker's whole part) |
//! | `whirl_invoker_container_create_seconds` | histogram | `kind`, `purpose` | container creations: `cold` (for an activation: a cold start) or `prewarm` (a stem cell) |
//! | `whirl_invoker_container_starts_total` | counter | `start` | containers taken by activations: `warm`, `prewarm`, `cold` |
//! | `whirl_invoker_containers` | gauge | `state` | `busy`, `warm` (idle, running), `paused` (idle, suspended), `prewarm` |
//! | `whirl_invoker_queue_length` | gauge | | activations waiting for a container |
//! | `whirl_invoker_memory_mb` | gauge | `use` | `used` and `total` user memory |
//!
//! On the activation path, updates are atomic increments on handles looked up once at start
//! (one per kind of the manifest, plus `other`): no lock, no allocation, no label hashing. The
//! pool gauges are read from the pool when a scrape asks for them.
//!
//! [`Invoker::register_metrics`] registers all of them in a registry: the controller's in a
//! standalone platform (one `/metrics` for both), or the invoker process's own.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use whirl_model::{Activation, RuntimeManifest};

use crate::{Inner, Invoker};

/// The `tracing` target of the invoker's request spans (`whirl_telemetry::TRACE_TARGET`).
pub const TRACE_TARGET: &str = "whirl_trace";

/// Latency buckets in seconds, from 100 µs (a warm /run) to 5 minutes (the longest action).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The `status` label of each [`StatusCode`], by its code.
pub const STATUS_LABELS: [&str; 4] = [
    "success",
    "application_error",
    "developer_error",
    "whisk_error",
];

/// The handles of one kind.
struct KindMetrics {
    status: [IntCounter; 4],
    wait: Histogram,
    init: Histogram,
    run: Histogram,
    invoker: Histogram,
    cold: Histogram,
    prewarm: Histogram,
}

/// The invoker's counters and histograms.
pub(crate) struct InvokerMetrics {
    manifest: Arc<RuntimeManifest>,
    /// Manifest order, then `other`.
    kinds: Vec<KindMetrics>,
    activations: IntCounterVec,
    latency: HistogramVec,
    creates: HistogramVec,
    invoker_id: String,
}

impl InvokerMetrics {
    pub(crate) fn new(invoker_id: &str, manifest: Arc<RuntimeManifest>) -> Self {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("invoker", invoker_id);
        let hopts = |name: &str, help: &str| {
            HistogramOpts::new(name, help)
                .const_label("invoker", invoker_id)
                .buckets(LATENCY_BUCKETS.to_vec())
        };
        let activations = IntCounterVec::new(
            opts(
                "whirl_invoker_activations_total",
                "Activations the invoker ran to a record, by kind and status.",
            ),
            &["kind", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            hopts(
                "whirl_invoker_activation_seconds",
                "Activation latency by phase: wait (accepted to start), init, run, invoker (the invoker's whole part).",
            ),
            &["kind", "phase"],
        )
        .expect("valid metric");
        let creates = HistogramVec::new(
            hopts(
                "whirl_invoker_container_create_seconds",
                "Container creations by kind and purpose (cold: for an activation; prewarm: a stem cell).",
            ),
            &["kind", "purpose"],
        )
        .expect("valid metric");
        let names = manifest
            .kinds
            .iter()
            .map(|k| k.kind.as_str())
            .chain(std::iter::once("other"));
        let kinds = names
            .map(|kind| KindMetrics {
                status: STATUS_LABELS.map(|s| activations.with_label_values(&[kind, s])),
                wait: latency.with_label_values(&[kind, "wait"]),
                init: latency.with_label_values(&[kind, "init"]),
                run: latency.with_label_values(&[kind, "run"]),
                invoker: latency.with_label_values(&[kind, "invoker"]),
                cold: creates.with_label_values(&[kind, "cold"]),
                prewarm: creates.with_label_values(&[kind, "prewarm"]),
            })
            .collect();
        Self {
            manifest,
            kinds,
            activations,
            latency,
            creates,
            invoker_id: invoker_id.to_owned(),
        }
    }

    fn kind(&self, kind: &str) -> &KindMetrics {
        let i = self.manifest.position(kind).unwrap_or(self.kinds.len() - 1);
        &self.kinds[i]
    }

    /// An activation ended in `record` after `invoker_time` in the invoker.
    pub(crate) fn finished(
        &self,
        record: &Activation,
        kind: &str,
        received_at_ms: u64,
        invoker_time: Duration,
    ) {
        let k = self.kind(kind);
        k.status[record.response.status as usize].inc();
        k.wait
            .observe(record.start.saturating_sub(received_at_ms) as f64 / 1000.0);
        k.invoker.observe(invoker_time.as_secs_f64());
    }

    /// A successful /init.
    pub(crate) fn init(&self, kind: &str, took: Duration) {
        self.kind(kind).init.observe(took.as_secs_f64());
    }

    /// A /run that got an answer (or timed out).
    pub(crate) fn run(&self, kind: &str, took: Duration) {
        self.kind(kind).run.observe(took.as_secs_f64());
    }

    /// A container was created: for an activation (`cold`) or as a stem cell.
    pub(crate) fn created(&self, kind: &str, cold: bool, took: Duration) {
        let k = self.kind(kind);
        if cold { &k.cold } else { &k.prewarm }.observe(took.as_secs_f64());
    }
}

/// Reads the pool's gauges at scrape time.
struct PoolCollector {
    inner: Weak<Inner>,
    containers: IntGaugeVec,
    queue: IntGauge,
    memory: IntGaugeVec,
    starts: IntCounterVec,
    /// Scrapes may run at once; the counters are reset and set under this lock.
    scrape: Mutex<()>,
    descs: Vec<Desc>,
}

impl PoolCollector {
    fn new(inner: Weak<Inner>, invoker_id: &str) -> Self {
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("invoker", invoker_id);
        let containers = IntGaugeVec::new(
            opts(
                "whirl_invoker_containers",
                "Containers in the pool by state: busy, warm (idle), paused (idle, suspended), prewarm.",
            ),
            &["state"],
        )
        .expect("valid metric");
        let queue = IntGauge::with_opts(opts(
            "whirl_invoker_queue_length",
            "Activations waiting for a container.",
        ))
        .expect("valid metric");
        let memory = IntGaugeVec::new(
            opts(
                "whirl_invoker_memory_mb",
                "User memory of the pool in MB: used and total.",
            ),
            &["use"],
        )
        .expect("valid metric");
        let starts = IntCounterVec::new(
            opts(
                "whirl_invoker_container_starts_total",
                "Containers taken by activations: warm, prewarm (a stem cell), cold (created for it).",
            ),
            &["start"],
        )
        .expect("valid metric");
        let descs = [
            containers.desc(),
            queue.desc(),
            memory.desc(),
            starts.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Self {
            inner,
            containers,
            queue,
            memory,
            starts,
            scrape: Mutex::new(()),
            descs,
        }
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(inner) = self.inner.upgrade() else {
            return Vec::new();
        };
        let s = inner.pool.snapshot();
        // A slot whose lifecycle lock is taken is being suspended or resumed: not counted as paused.
        let paused = inner
            .pool
            .idle_slots()
            .iter()
            .filter(|slot| slot.suspended.try_lock().is_ok_and(|g| *g))
            .count();
        let _guard = self.scrape.lock();
        let c = &self.containers;
        c.with_label_values(&["busy"]).set(s.busy as i64);
        c.with_label_values(&["warm"])
            .set(s.idle.saturating_sub(paused) as i64);
        c.with_label_values(&["paused"]).set(paused as i64);
        c.with_label_values(&["prewarm"]).set(s.prewarmed as i64);
        self.queue.set(s.queued as i64);
        self.memory
            .with_label_values(&["used"])
            .set(s.used_memory_mb as i64);
        self.memory
            .with_label_values(&["total"])
            .set(s.user_memory_mb as i64);
        for (label, n) in [
            ("warm", s.warm_starts),
            ("prewarm", s.prewarm_starts),
            ("cold", s.cold_starts),
        ] {
            let counter = self.starts.with_label_values(&[label]);
            counter.reset();
            counter.inc_by(n);
        }
        let mut out = self.containers.collect();
        out.extend(self.queue.collect());
        out.extend(self.memory.collect());
        out.extend(self.starts.collect());
        out
    }
}

impl Invoker {
    /// Registers this invoker's metrics (see the [module](self) table) in `registry`: the
    /// controller's in a standalone platform, or the invoker process's own.
    pub fn register_metrics(&self, registry: &Registry) -> prometheus::Result<()> {
        let m = &self.inner.metrics;
        registry.register(Box::new(m.activations.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.creates.clone()))?;
        registry.register(Box::new(PoolCollector::new(
            Arc::downgrade(&self.inner),
            &m.invoker_id,
        )))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_per_kind_and_other() {
        let manifest: RuntimeManifest = serde_json::from_value(serde_json::json!({"kinds": [
            {"kind": "python:3", "default": true, "launcher": "python"},
            {"kind": "nodejs:20", "default": true, "launcher": "node"}
        ]}))
        .unwrap();
        let m = InvokerMetrics::new("inv7", Arc::new(manifest));
        m.init("python:default", Duration::from_millis(3));
        m.run("python:3", Duration::from_micros(200));
        m.run("blackbox", Duration::from_micros(200));
        m.created("nodejs:20", true, Duration::from_millis(40));
        let r = Registry::new();
        r.register(Box::new(m.latency.clone())).unwrap();
        r.register(Box::new(m.creates.clone())).unwrap();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&r.gather())
            .unwrap();
        assert!(text.contains(
            r#"whirl_invoker_activation_seconds_count{invoker="inv7",kind="python:3",phase="init"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"whirl_invoker_activation_seconds_count{invoker="inv7",kind="other",phase="run"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"whirl_invoker_container_create_seconds_count{invoker="inv7",kind="nodejs:20",purpose="cold"} 1"#
        ), "{text}");
        assert_eq!(
            STATUS_LABELS[whirl_model::StatusCode::WhiskError as usize],
            "whisk_error"
        );
    }
}
