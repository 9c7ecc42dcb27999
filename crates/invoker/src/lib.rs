//! Whirl's invoker: runs activations in containers.
//!
//! For each activation the invoker
//! 1. takes a container from the [`pool`] (warm → prewarmed → cold → evict → queue),
//! 2. speaks OpenWhisk's protocol to the container's runtime (`/init` once, then `/run`) through
//!    `whirl-runtime-client`, the same for every container factory,
//! 3. collects the activation's logs through the `LogStore` SPI (unless collection is out of band),
//! 4. keeps the container warm (success or application error) or destroys it (developer or whisk
//!    error, timeout, crash: OpenWhisk's ContainerProxy rules),
//! 5. stores exactly one activation record and returns it.
//!
//! An action with `limits.concurrency` N (of a kind whose runtime can share a container) runs up
//! to N activations at once in one container, memory charged once ([`pool`] explains how); each
//! activation's logs are the lines tagged with its id (`LogContext::concurrent`).
//!
//! Idle warm containers are suspended after a grace period and resumed on reuse, and destroyed
//! after an idle timeout, by one janitor task (no per-activation timers on the warm path).
//! Prewarmed stem cells of the manifest's kinds are kept ready and backfilled when used.
//!
//! Its Prometheus metrics (module [`metrics`]) are atomic handles updated on the activation path
//! and pool gauges read at scrape time; [`Invoker::register_metrics`] puts them in a registry.
//! Its spans (target `whirl_trace`: `invoker.activation`, `container.create`, `container.init`,
//! `container.run`, each with the activation id) are recorded only when traces are exported.
//!
//! The invoker depends only on the model and the SPI traits; the composition root hands it a
//! container factory, a log store and an activation store.

pub mod feed;
pub mod lease;
pub mod metrics;
pub mod payload;
pub mod pool;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, info_span, warn, Instrument};
use whirl_model::error::messages;
use whirl_model::manifest::RuntimeKind;
use whirl_model::{
    Action, Activation, ActivationMessage, ActivationResponse, RuntimeManifest, StatusCode,
};
use whirl_runtime_client::{InitFailureKind, RuntimeClient};
use whirl_spi::{
    ActivationStore, ContainerError, ContainerFactory, ContainerSpec, LogContext, LogError,
    LogStore,
};

pub use pool::PoolSnapshot;
use pool::{Acquired, Pool, Slot, WarmKey};

/// Invoker settings (the `[invoker]` config section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvokerConfig {
    /// Stable id of this invoker (names containers, owns journal entries).
    pub id: String,
    /// Instance index in a distributed deployment (its bus topic is `invoker<index>`; the
    /// sharding balancer's hashing counts invokers by index). Default: the trailing digits of
    /// `id` (`invoker2` → 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Memory for action containers in MB; defaults to what the container factory reports.
    pub user_memory_mb: Option<u64>,
    /// Idle time after which a warm container is suspended, in ms.
    pub pause_grace_ms: u64,
    /// Idle time after which a warm container is destroyed, in ms.
    pub idle_timeout_ms: u64,
    /// Keep the manifest's stem cells prewarmed.
    pub prewarm: bool,
    /// The API host actions see as `__OW_API_HOST`.
    pub api_host: String,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        Self {
            id: "invoker0".into(),
            index: None,
            user_memory_mb: None,
            pause_grace_ms: 10_000,
            idle_timeout_ms: 600_000,
            prewarm: true,
            api_host: "http://127.0.0.1:3233".into(),
        }
    }
}

impl InvokerConfig {
    /// The instance index: `index`, or the trailing digits of `id`.
    pub fn instance_index(&self) -> Option<u32> {
        self.index.or_else(|| {
            let digits: String = self
                .id
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            digits.parse().ok()
        })
    }
}

/// What the invoker is built from.
pub struct InvokerDeps {
    pub factory: Arc<dyn ContainerFactory>,
    pub logs: Arc<dyn LogStore>,
    pub activations: Arc<dyn ActivationStore>,
    pub manifest: Arc<RuntimeManifest>,
    /// Largest result an action may return, in bytes.
    pub max_payload_bytes: usize,
}

struct Inner {
    config: InvokerConfig,
    deps: InvokerDeps,
    pool: Pool,
    shutdown: tokio::sync::watch::Sender<bool>,
    metrics: metrics::InvokerMetrics,
}

/// A running invoker. Cheap to clone.
#[derive(Clone)]
pub struct Invoker {
    inner: Arc<Inner>,
}

/// Failures that end an activation before or around the container (become its record).
struct Failure {
    response: ActivationResponse,
    init_ms: Option<u64>,
}

impl Invoker {
    /// Prepares the factory (removing leftovers of a previous run), starts the stem cells and the
    /// janitor.
    pub async fn start(config: InvokerConfig, deps: InvokerDeps) -> Result<Self, ContainerError> {
        deps.factory.init().await?;
        let cap = deps.factory.capacity();
        let user_memory = config
            .user_memory_mb
            .unwrap_or(cap.user_memory_mb)
            .min(cap.user_memory_mb.max(1));
        let (tx, _) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            metrics: metrics::InvokerMetrics::new(&config.id, deps.manifest.clone()),
            pool: Pool::new(user_memory, cap.max_containers),
            config,
            deps,
            shutdown: tx,
        });
        let invoker = Invoker { inner };
        if invoker.inner.config.prewarm {
            invoker.backfill_prewarms();
        }
        tokio::spawn(janitor(Arc::downgrade(&invoker.inner)));
        info!(
            id = %invoker.inner.config.id,
            user_memory_mb = user_memory,
            max_containers = cap.max_containers,
            factory = invoker.inner.deps.factory.name(),
            "invoker started"
        );
        Ok(invoker)
    }

    /// The invoker's id.
    pub fn id(&self) -> &str {
        &self.inner.config.id
    }

    /// Pool counts.
    pub fn pool(&self) -> PoolSnapshot {
        self.inner.pool.snapshot()
    }

    /// Runs one activation to its stored record and returns the record. Never fails: every
    /// problem becomes the record's outcome.
    pub async fn run(&self, action: Arc<Action>, msg: ActivationMessage) -> Activation {
        let activation = self.observed(&action, &msg).await;
        // The record is written by the store's group commit while the result goes back to the
        // caller (OpenWhisk also answers before storing): the warm path does not wait for a
        // database round trip. A crash in between is covered by the controller's journal.
        let store = self.inner.deps.activations.clone();
        let record = activation.clone();
        tokio::spawn(async move {
            if let Err(e) = store.store(&record).await {
                warn!(activation = %record.activation_id, error = %e, "could not store the activation record");
            }
        });
        activation
    }

    /// Runs one activation and returns once its record is stored (retrying the store with
    /// backoff while it is unavailable), so a caller may acknowledge it afterwards. Returns the
    /// stored record: if another component stored one first (a controller that gave this invoker
    /// up for dead), that one.
    pub async fn run_and_store(&self, action: Arc<Action>, msg: ActivationMessage) -> Activation {
        let activation = self.observed(&action, &msg).await;
        whirl_spi::store::store_with_retry(self.inner.deps.activations.as_ref(), activation).await
    }

    /// The activation store records are written to.
    pub fn activations(&self) -> &Arc<dyn ActivationStore> {
        &self.inner.deps.activations
    }

    /// The record of an activation that ends without running (e.g. its action cannot be read).
    pub fn record_failure(
        &self,
        action: &Action,
        msg: &ActivationMessage,
        response: ActivationResponse,
    ) -> Activation {
        self.failed_before_run(action, msg, response)
    }

    /// [`Invoker::execute`] in the activation's span, counted in the metrics.
    async fn observed(&self, action: &Arc<Action>, msg: &ActivationMessage) -> Activation {
        let t0 = std::time::Instant::now();
        let span = info_span!(target: metrics::TRACE_TARGET, "invoker.activation", activation_id = %msg.activation_id, action = %msg.action, kind = action.kind(), invoker = %self.inner.config.id);
        // Over the bus, the dispatching controller's span is the parent.
        whirl_telemetry::propagation::set_parent(&span, &msg.trace_context);
        let activation = self.execute(action, msg).instrument(span).await;
        let m = &self.inner.metrics;
        m.finished(&activation, action.kind(), msg.received_at_ms, t0.elapsed());
        activation
    }

    /// The manifest kind that serves `action`, and the memory it gets; or the record of an
    /// activation that cannot run here.
    fn resolve_kind(
        &self,
        action: &Action,
        msg: &ActivationMessage,
    ) -> Result<(RuntimeKind, u64), Box<Activation>> {
        let inner = &self.inner;
        // A blackbox action runs its own image; without a `blackbox` kind of its own in the
        // manifest it is served like a native action (OpenWhisk's action loop).
        let resolved = match (&action.exec, inner.deps.manifest.resolve(action.kind())) {
            (whirl_model::Exec::Blackbox { .. }, Err(_)) => {
                inner.deps.manifest.resolve("native:default")
            }
            (_, r) => r,
        };
        let kind = match resolved {
            Ok(k) => k.clone(),
            Err(_) => {
                return Err(Box::new(self.failed_before_run(
                    action,
                    msg,
                    ActivationResponse::developer_error(format!(
                        "The action's kind '{}' is not supported by this invoker.",
                        action.kind()
                    )),
                )));
            }
        };
        let memory = action.limits.memory;
        if memory > inner.pool.user_memory_mb() {
            return Err(Box::new(self.failed_before_run(
                action,
                msg,
                ActivationResponse::whisk_error(messages::PROVISION_FAILED),
            )));
        }
        Ok((kind, memory))
    }

    /// Activations one container of this action runs at once: the action's limit where the
    /// kind's runtime can share a container, else 1 (the controller refuses more at create
    /// time; this covers a manifest changed since).
    fn concurrency_of(kind: &RuntimeKind, action: &Action) -> usize {
        if kind.concurrent {
            usize::try_from(action.limits.concurrency)
                .unwrap_or(usize::MAX)
                .max(1)
        } else {
            1
        }
    }

    async fn execute(&self, action: &Arc<Action>, msg: &ActivationMessage) -> Activation {
        let inner = &self.inner;
        let (kind, memory) = match self.resolve_kind(action, msg) {
            Ok(k) => k,
            Err(record) => return *record,
        };
        let key = WarmKey {
            namespace: msg.user.namespace.to_string(),
            action: action.fully_qualified_name(),
            version: action.version.clone(),
            updated: action.updated,
        };
        let concurrency = Self::concurrency_of(&kind, action);
        let slot = loop {
            let acquired = loop {
                let (res, evicted) = inner.pool.acquire(&key, &kind.kind, memory, concurrency);
                for s in evicted {
                    tokio::spawn(async move {
                        let _ = s.container.destroy().await;
                    });
                }
                match res {
                    Ok(a) => break a,
                    Err(wait) => {
                        debug!(activation = %msg.activation_id, "no container free; queued");
                        let _ = wait.await;
                    }
                }
            };
            let (created, starting) = match acquired {
                Acquired::Warm(slot) => break slot,
                Acquired::Prewarm(slot) => {
                    self.backfill_prewarm(&kind, memory);
                    break slot;
                }
                Acquired::Join(join) => match join.wait().await {
                    Some(slot) => break slot,
                    // The container it waited for could not be created: look again.
                    None => continue,
                },
                Acquired::Cold => (self.create_traced(&kind, memory, action, msg).await, None),
                Acquired::ColdShared(starting) => {
                    // Should this future be dropped while creating, the joiners are let go.
                    let guard = StartingGuard {
                        pool: &inner.pool,
                        key: &key,
                        starting: Some(starting.clone()),
                        memory,
                    };
                    let created = self.create_traced(&kind, memory, action, msg).await;
                    guard.disarm();
                    (created, Some(starting))
                }
            };
            match created {
                Ok(slot) => {
                    inner.pool.register(&slot);
                    if let Some(starting) = &starting {
                        inner.pool.started(&key, starting, Some(&slot));
                    }
                    break slot;
                }
                Err(e) => {
                    inner.pool.cancel_reservation(memory);
                    if let Some(starting) = &starting {
                        inner.pool.started(&key, starting, None);
                    }
                    let response = creation_failure(e);
                    return self.failed_before_run(action, msg, response);
                }
            }
        };
        self.run_in(slot, key, &kind, action, msg).await
    }

    /// An activation is done with its container: keep it warm, or destroy it. A shared container
    /// is destroyed only when the last activation in it leaves.
    async fn finish(&self, key: WarmKey, slot: Arc<Slot>, keep: bool) {
        if slot.is_shared() {
            if self.inner.pool.leave_shared(&key, &slot, keep) {
                if let Err(e) = slot.container.destroy().await {
                    warn!(container = slot.container.id(), error = %e, "destroy failed");
                }
            }
        } else if keep {
            self.inner.pool.release(key, slot);
        } else {
            self.destroy(slot).await;
        }
    }

    async fn run_in(
        &self,
        slot: Arc<Slot>,
        key: WarmKey,
        kind: &RuntimeKind,
        action: &Arc<Action>,
        msg: &ActivationMessage,
    ) -> Activation {
        let inner = &self.inner;
        let timeout = Duration::from_millis(action.limits.timeout);
        let deadline = whirl_model::time::now_ms() + action.limits.timeout;
        // Resume a suspended container before using it.
        {
            let mut suspended = slot.suspended.lock().await;
            if *suspended {
                if let Err(e) = slot.container.resume().await {
                    warn!(container = slot.container.id(), error = %e, "resume failed");
                    drop(suspended);
                    self.finish(key, slot, false).await;
                    return self.failed_before_run(
                        action,
                        msg,
                        ActivationResponse::whisk_error(messages::PROVISION_FAILED),
                    );
                }
                *suspended = false;
            }
        }
        let mut init_ms = None;
        let mut start_ms = None;
        // Activations sharing a fresh container wait at this gate while the first one initializes
        // it (uncontended, and only before the first run, for concurrency 1).
        let gate_slot = (!slot.initialized.load(Ordering::Acquire)).then(|| slot.clone());
        let mut gate = match &gate_slot {
            Some(s) => Some(s.init_gate.lock().await),
            None => None,
        };
        if let Some(response) = gate.as_ref().and_then(|g| (**g).clone()) {
            // Its /init failed for the activation that ran it: this one ends the same way
            // (OpenWhisk aborts the runs buffered behind a failed /init likewise).
            drop(gate);
            self.finish(key, slot, false).await;
            return self.failed_before_run(action, msg, response);
        }
        if gate.is_some() && !slot.initialized.load(Ordering::Acquire) {
            let mut value = payload::init_value(action, msg, deadline);
            let concurrency = slot.max_concurrent.load(Ordering::Relaxed);
            if concurrency > 1 {
                // Whirl's runtime then runs activations at once and tags their output.
                value["concurrency"] = serde_json::json!(concurrency);
            }
            let t0 = SystemTime::now();
            start_ms = Some(epoch_ms(t0));
            let span = info_span!(target: metrics::TRACE_TARGET, "container.init", activation_id = %msg.activation_id, container = slot.container.id());
            match slot.client.init(&value, timeout).instrument(span).await {
                Ok(interval) => {
                    init_ms = Some(interval.duration().as_millis() as u64);
                    inner.metrics.init(&kind.kind, interval.duration());
                    slot.initialized.store(true, Ordering::Release);
                }
                Err(failure) => {
                    let f = self.classify_init_failure(&slot, failure, timeout).await;
                    if let Some(g) = gate.as_mut() {
                        **g = Some(f.response.clone());
                    }
                    drop(gate);
                    let now = whirl_model::time::now_ms();
                    let logs = self
                        .collect_logs(
                            &slot,
                            kind,
                            action,
                            msg,
                            &f.response,
                            start_ms.unwrap_or(now),
                        )
                        .await;
                    let record = self.record(
                        action,
                        msg,
                        start_ms.unwrap_or(now),
                        now,
                        f.init_ms,
                        f.response,
                        logs,
                        false,
                    );
                    let record = self.with_container(record, &slot);
                    self.finish(key, slot, false).await;
                    return record;
                }
            }
        }
        drop(gate);
        let (record, keep) = self
            .run_ready(&slot, kind, action, msg, start_ms, init_ms, deadline)
            .await;
        self.finish(key, slot, keep).await;
        record
    }

    /// Runs an activation in an initialized container; the record, and whether the container is
    /// still fit for more.
    #[allow(clippy::too_many_arguments)]
    async fn run_ready(
        &self,
        slot: &Arc<Slot>,
        kind: &RuntimeKind,
        action: &Action,
        msg: &ActivationMessage,
        start_ms: Option<u64>,
        init_ms: Option<u64>,
        deadline: u64,
    ) -> (Activation, bool) {
        let inner = &self.inner;
        let timeout = Duration::from_millis(action.limits.timeout);
        let params = payload::run_params(msg);
        let ids = payload::RunIds::new(action, msg);
        let body = payload::run_payload(action, msg, &params, &ids, deadline);
        let span = info_span!(target: metrics::TRACE_TARGET, "container.run", activation_id = %msg.activation_id, container = slot.container.id());
        let result = slot
            .client
            .run(&body, timeout, inner.deps.max_payload_bytes)
            .instrument(span)
            .await;
        inner.metrics.run(&kind.kind, result.interval.duration());
        let run_start = epoch_ms(result.interval.start);
        let end = epoch_ms(result.interval.end);
        let mut response = result.response;
        let timed_out = result.timed_out;
        // A killed launcher shows up as a lost connection or as the runtime's own 502; either way
        // the cgroup tells whether memory was the cause.
        if (result.connection_lost || response.status == StatusCode::DeveloperError)
            && slot.container.out_of_memory().await
        {
            response = ActivationResponse::developer_error(messages::MEMORY_EXHAUSTED);
        }
        let start = start_ms.unwrap_or(run_start);
        let logs = self
            .collect_logs(slot, kind, action, msg, &response, start)
            .await;
        let keep = matches!(
            response.status,
            StatusCode::Success | StatusCode::ApplicationError
        ) && !timed_out
            && !result.connection_lost;
        let record = self.record(action, msg, start, end, init_ms, response, logs, timed_out);
        (self.with_container(record, slot), keep)
    }

    /// For a log store that collects out of band, the record names the container the activation
    /// ran in and how many activations reached it before (annotation `container`:
    /// `{"id": <Container::id>, "run": <n>}`), so the store can find the activation's lines in its
    /// external system (the `LogStore` contract). Called once per activation that reached the
    /// container, in their order (a container runs one at a time).
    fn with_container(&self, mut record: Activation, slot: &Slot) -> Activation {
        let run = slot.runs.fetch_add(1, Ordering::Relaxed);
        if !self.inner.deps.logs.collects_in_band() {
            record.annotations.put(
                "container",
                serde_json::json!({"id": slot.container.id(), "run": run}),
            );
        }
        record
    }

    async fn classify_init_failure(
        &self,
        slot: &Slot,
        failure: whirl_runtime_client::InitFailure,
        _timeout: Duration,
    ) -> Failure {
        let mut response = failure.response;
        if matches!(
            failure.kind,
            InitFailureKind::ConnectionLost | InitFailureKind::Developer
        ) && slot.container.out_of_memory().await
        {
            response = ActivationResponse::developer_error(messages::MEMORY_EXHAUSTED);
        }
        Failure {
            response,
            init_ms: Some(failure.interval.duration_ms()),
        }
    }

    async fn collect_logs(
        &self,
        slot: &Slot,
        kind: &RuntimeKind,
        action: &Action,
        msg: &ActivationMessage,
        response: &ActivationResponse,
        start: u64,
    ) -> Vec<String> {
        let logs = &self.inner.deps.logs;
        let limit_bytes = (action.limits.logs as usize) << 20;
        if !logs.collects_in_band() {
            return Vec::new();
        }
        if limit_bytes == 0 {
            // Nothing is kept, but drop what the container printed so it does not sit in the
            // container's buffer.
            if slot.is_shared() && slot.container.attributes_logs() {
                let id = msg.activation_id.to_string();
                let _ = slot
                    .container
                    .activation_logs(&id, 0, false, Duration::ZERO)
                    .await;
            } else {
                let _ = slot.container.logs(0, false, Duration::ZERO).await;
            }
            return Vec::new();
        }
        // The log store sees the activation as it will be recorded (without logs).
        let probe = self.record(
            action,
            msg,
            start,
            start,
            None,
            response.clone(),
            Vec::new(),
            false,
        );
        let ctx = LogContext {
            activation: &probe,
            action,
            limit_bytes,
            sentinelled: kind.sentinelled_logs,
            developer_error: response.status == StatusCode::DeveloperError,
            concurrent: slot.is_shared(),
        };
        match logs.collect(&ctx, slot.container.as_ref()).await {
            Ok(lines) => lines,
            Err(LogError::Collecting {
                message,
                mut partial,
            }) => {
                warn!(activation = %msg.activation_id, %message, "log collection failed");
                partial.push(format!(
                    "{:<30} stderr: {}",
                    whirl_model::time::log_timestamp(SystemTime::now()),
                    messages::LOG_COLLECTION_ISSUE
                ));
                partial
            }
            Err(e) => {
                warn!(activation = %msg.activation_id, error = %e, "log collection failed");
                Vec::new()
            }
        }
    }

    /// The record of an activation that ended before its action ran (duration 0, no logs).
    fn failed_before_run(
        &self,
        action: &Action,
        msg: &ActivationMessage,
        response: ActivationResponse,
    ) -> Activation {
        let now = whirl_model::time::now_ms();
        self.record(action, msg, now, now, None, response, Vec::new(), false)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        action: &Action,
        msg: &ActivationMessage,
        start: u64,
        end: u64,
        init_ms: Option<u64>,
        response: ActivationResponse,
        logs: Vec<String>,
        timed_out: bool,
    ) -> Activation {
        whirl_model::message::activation_record(
            action, msg, start, end, init_ms, response, logs, timed_out,
        )
    }

    /// [`Invoker::create`] for an activation, in its `container.create` span.
    async fn create_traced(
        &self,
        kind: &RuntimeKind,
        memory_mb: u64,
        action: &Action,
        msg: &ActivationMessage,
    ) -> Result<Arc<Slot>, ContainerError> {
        let span = info_span!(target: metrics::TRACE_TARGET, "container.create", activation_id = %msg.activation_id, kind = %kind.kind);
        self.create(kind, memory_mb, Some(action))
            .instrument(span)
            .await
    }

    async fn create(
        &self,
        kind: &RuntimeKind,
        memory_mb: u64,
        action: Option<&Action>,
    ) -> Result<Arc<Slot>, ContainerError> {
        let inner = &self.inner;
        let id = inner.pool.next_id();
        let name = match action {
            Some(a) => sanitize(&format!(
                "wsk{}_{}_{}_{}",
                inner.config.id,
                id,
                a.root_namespace(),
                a.name
            )),
            None => sanitize(&format!(
                "wsk{}_{}_prewarm_{}",
                inner.config.id, id, kind.kind
            )),
        };
        let image = match action.map(|a| &a.exec) {
            Some(whirl_model::Exec::Blackbox { image, .. }) => Some(image.clone()),
            _ => None,
        };
        let user_memory = inner.pool.user_memory_mb().max(1);
        let spec = ContainerSpec {
            name,
            kind: kind.clone(),
            image,
            memory_mb,
            cpu_shares: (1024 * memory_mb / user_memory).max(2),
            env: vec![("__OW_API_HOST".into(), inner.config.api_host.clone())],
            parameters: inner.deps.logs.container_parameters(),
        };
        let t0 = std::time::Instant::now();
        let container = inner.deps.factory.create(spec).await?;
        inner
            .metrics
            .created(&kind.kind, action.is_some(), t0.elapsed());
        let client = RuntimeClient::new(container.endpoint().clone());
        Ok(Arc::new(Slot::new(
            id,
            container,
            client,
            kind.kind.clone(),
            memory_mb,
        )))
    }

    async fn destroy(&self, slot: Arc<Slot>) {
        self.inner.pool.discard(&slot);
        if let Err(e) = slot.container.destroy().await {
            warn!(container = slot.container.id(), error = %e, "destroy failed");
        }
    }

    /// Starts stem cells up to the manifest's counts.
    fn backfill_prewarms(&self) {
        for kind in &self.inner.deps.manifest.kinds {
            for cell in &kind.stem_cells {
                for _ in self.inner.pool.prewarm_count(&kind.kind, cell.memory)..cell.count {
                    self.spawn_prewarm(kind.clone(), cell.memory);
                }
            }
        }
    }

    /// Replaces a stem cell that was just used.
    fn backfill_prewarm(&self, kind: &RuntimeKind, memory_mb: u64) {
        if !self.inner.config.prewarm {
            return;
        }
        let wanted = kind
            .stem_cells
            .iter()
            .filter(|c| c.memory == memory_mb)
            .map(|c| c.count)
            .sum::<usize>();
        if self.inner.pool.prewarm_count(&kind.kind, memory_mb) < wanted {
            self.spawn_prewarm(kind.clone(), memory_mb);
        }
    }

    fn spawn_prewarm(&self, kind: RuntimeKind, memory_mb: u64) {
        if !self.inner.pool.reserve_prewarm(&kind.kind, memory_mb) {
            debug!(kind = %kind.kind, "no room for a stem cell");
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            match this.create(&kind, memory_mb, None).await {
                Ok(slot) => {
                    if *this.inner.shutdown.borrow() {
                        this.inner.pool.prewarm_ready(&kind.kind, memory_mb, None);
                        let _ = slot.container.destroy().await;
                    } else {
                        this.inner
                            .pool
                            .prewarm_ready(&kind.kind, memory_mb, Some(slot));
                    }
                }
                Err(e) => {
                    warn!(kind = %kind.kind, error = %e, "could not start a stem cell");
                    this.inner.pool.prewarm_ready(&kind.kind, memory_mb, None);
                }
            }
        });
    }

    /// Destroys every container. Activations still running end with errors (and records).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let all = self.inner.pool.drain_all();
        futures::future::join_all(all.iter().map(|s| s.container.destroy())).await;
        self.inner.deps.factory.cleanup().await;
    }
}

/// What an activation whose container could not be created records.
fn creation_failure(e: ContainerError) -> ActivationResponse {
    match e {
        ContainerError::UserStartup(m) => ActivationResponse::developer_error(m),
        ContainerError::Startup(m) => ActivationResponse::whisk_error(m),
        other => {
            warn!(error = %other, "container creation failed");
            ActivationResponse::whisk_error(messages::PROVISION_FAILED)
        }
    }
}

/// Suspends idle containers after the grace period and destroys them after the idle timeout.
async fn janitor(inner: std::sync::Weak<Inner>) {
    let tick = {
        let Some(i) = inner.upgrade() else { return };
        Duration::from_millis((i.config.pause_grace_ms / 2).clamp(10, 1000))
    };
    let mut shutdown = match inner.upgrade() {
        Some(i) => i.shutdown.subscribe(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        let now = inner.pool.now_ms();
        for slot in inner.pool.idle_slots() {
            let generation = slot.generation.load(Ordering::Acquire);
            let idle_for = now.saturating_sub(slot.last_used_ms.load(Ordering::Relaxed));
            if idle_for >= inner.config.idle_timeout_ms {
                if inner.pool.take_idle_if_unused(&slot, generation) {
                    debug!(container = slot.container.id(), "reaping idle container");
                    let _ = slot.container.destroy().await;
                }
                continue;
            }
            if idle_for >= inner.config.pause_grace_ms {
                let mut suspended = slot.suspended.lock().await;
                if !*suspended && slot.generation.load(Ordering::Acquire) == generation {
                    match slot.container.suspend().await {
                        Ok(()) => *suspended = true,
                        Err(e) => {
                            warn!(container = slot.container.id(), error = %e, "suspend failed")
                        }
                    }
                }
            }
        }
    }
}

/// Ends a shared cold start whose creating future was dropped: the reservation is returned and
/// the activations that joined it look elsewhere.
struct StartingGuard<'a> {
    pool: &'a Pool,
    key: &'a WarmKey,
    starting: Option<Arc<pool::Starting>>,
    memory: u64,
}

impl StartingGuard<'_> {
    fn disarm(mut self) {
        self.starting = None;
    }
}

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        if let Some(starting) = self.starting.take() {
            self.pool.cancel_reservation(self.memory);
            self.pool.started(self.key, &starting, None);
        }
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Container names keep `[A-Za-z0-9_.-]` only, as OpenWhisk's do.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect()
}
