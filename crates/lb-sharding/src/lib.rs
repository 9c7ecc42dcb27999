//! The `sharding` load balancer: OpenWhisk's ShardingContainerPoolBalancer over the Messaging
//! SPI (NATS JetStream in a distributed deployment), for controllers and invokers that run as
//! separate processes.
//!
//! # What it does
//!
//! - **Scheduling** ([`schedule`]): home invoker by hash of namespace and action, co-prime step
//!   sizes, memory slots per invoker divided among the live controllers, the managed/blackbox
//!   split, concurrency slots for actions with `limits.concurrency > 1`, a random healthy invoker
//!   when all are full, and no decision (503) when none is healthy. No I/O, no lock on the
//!   memory-only path.
//! - **Dispatch**: the [`ActivationMessage`] goes to topic `invoker<index>`; acknowledgements
//!   come back on `completed-<controller>` ([`AckMessage`]): `Started` when the invoker takes the
//!   activation, `Completed` with the stored record.
//! - **Health** ([`health`]): invokers and controllers ping on `health` every second. Each
//!   invoker is Healthy, Unhealthy, Unresponsive or Offline as in OpenWhisk: Offline without a
//!   ping for `invoker_offline_ms`; Unhealthy when it (re)appears or after more than 3 system
//!   errors among its last 10 results; Unresponsive after more than 3 forced completions among
//!   them. An Unhealthy or Unresponsive invoker gets the health test action
//!   (`whisk.system/invokerHealthTestAction<controller>`) at once and then every
//!   `test_action_interval_ms`; its success makes it Healthy again.
//!
//! # Failures, beyond OpenWhisk
//!
//! - **An invoker dies** (no pings while this controller's own pings still come back, so it is
//!   not a bus outage; or it comes back as a new incarnation). Activations it had *started*
//!   (`Started` received) end at once with a whisk-internal-error record (the store keeps the
//!   first record of an id, so a late real record cannot make a second one). Activations it had
//!   *not started* are still on the bus, held by no one once the invoker's in-progress signals
//!   stop: every controller drains a dead invoker's topic and re-dispatches what it finds to a
//!   healthy invoker (the root controller stays the same, so the completion still reaches the
//!   caller). A restarted invoker takes its own topic's backlog itself.
//! - **A controller dies**: its invokers still run its activations to stored records; the
//!   completions wait on its topic until it comes back (and are then dropped as unknown).
//! - **The bus is unavailable**: `publish` fails with 503 (nothing was accepted); the consumers
//!   retry with backoff; invokers are not declared dead while this controller cannot hear
//!   itself either.
//! - **No completion at all** within `max(timeout, 60 s) × 2 + 60 s` (OpenWhisk's forced
//!   completion): a whisk-internal-error record, and the invoker's ring notes a timeout.

pub mod health;
pub mod schedule;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};
use whirl_model::message::{
    activation_record, completion_topic, invoker_topic, AckMessage, HealthPing, HEALTH_TOPIC,
};
use whirl_model::{
    Action, Activation, ActivationId, ActivationMessage, ActivationResponse, Exec, Identity,
};
use whirl_spi::{
    ActivationFuture, ActivationStore, Collection, Consumer, EntityStore, HealthStatus,
    InvokerHealth, LoadBalancer, LoadBalancerError, Messaging, MessagingError, Producer, PutMode,
};

use crate::health::{Outcome, Registry};
use crate::schedule::{schedule, Candidate};

/// Settings of the `sharding` balancer (`[load_balancer] type = "sharding"`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardingBalancerConfig {
    /// Share of the invokers (the first ones) that run managed kinds.
    pub managed_fraction: f64,
    /// Share of the invokers (the last ones) that run blackbox images.
    pub blackbox_fraction: f64,
    /// How often controllers ping (invokers have their own setting).
    pub ping_interval_ms: u64,
    /// An invoker without a ping for this long is Offline.
    pub invoker_offline_ms: u64,
    /// How often an Unhealthy or Unresponsive invoker gets the health test action.
    pub test_action_interval_ms: u64,
    /// Forced completion after `max(timeout, 60 s) × timeout_factor + timeout_addon_ms`.
    pub timeout_factor: u64,
    pub timeout_addon_ms: u64,
}

impl Default for ShardingBalancerConfig {
    fn default() -> Self {
        Self {
            managed_fraction: 0.9,
            blackbox_fraction: 0.1,
            ping_interval_ms: 1000,
            invoker_offline_ms: 6000,
            test_action_interval_ms: 60_000,
            timeout_factor: 2,
            timeout_addon_ms: 60_000,
        }
    }
}

/// What the balancer is built from.
pub struct ShardingDeps {
    pub messaging: Arc<dyn Messaging>,
    /// Where error records of lost activations go, and large records are read back.
    pub activations: Arc<dyn ActivationStore>,
    /// Where the health test action is installed.
    pub entities: Arc<dyn EntityStore>,
}

/// One dispatched activation this controller waits for.
struct Entry {
    /// Position of the invoker whose slots it holds.
    invoker: u32,
    memory_mb: u64,
    max_concurrent: u64,
    slot_key: String,
    namespace: String,
    /// The incarnation of the invoker that said `Started`.
    started: Option<String>,
    tx: Option<oneshot::Sender<Activation>>,
    action: Arc<Action>,
    /// The message without its content (enough for an error record, or a re-dispatch).
    stub: ActivationMessage,
    deadline: Instant,
    health_test: bool,
}

#[derive(Default)]
struct InFlight {
    entries: HashMap<ActivationId, Entry>,
    by_namespace: HashMap<String, u64>,
}

pub(crate) struct Shared {
    name: String,
    controller_id: String,
    incarnation: String,
    cfg: ShardingBalancerConfig,
    deps: ShardingDeps,
    producer: Arc<dyn Producer>,
    pub(crate) registry: RwLock<Registry>,
    in_flight: Mutex<InFlight>,
    /// The health test action's revision (0 until installed).
    test_action: Mutex<Option<(u64, Arc<Action>)>>,
    stop: watch::Sender<bool>,
}

/// The `sharding` balancer.
pub struct ShardingBalancer {
    shared: Arc<Shared>,
}

/// OpenWhisk's message for an activation whose invoker went away after starting it.
pub const INVOKER_LOST: &str =
    "The invoker running this activation stopped before the activation completed.";
/// The message of a forced completion.
pub const NO_COMPLETION: &str =
    "The activation did not complete within its time limit and the platform's grace period.";

fn unavailable(e: MessagingError) -> LoadBalancerError {
    match e {
        MessagingError::TooLarge { size, limit } => LoadBalancerError::TooLarge(format!(
            "The activation of {size} bytes exceeds the limit of {limit} bytes."
        )),
        other => LoadBalancerError::Unavailable(other.to_string()),
    }
}

impl ShardingBalancer {
    /// Creates the controller's topics and consumers, installs the health test action, and
    /// starts the health, completion and supervision tasks.
    pub async fn start(
        name: impl Into<String>,
        controller_id: impl Into<String>,
        cfg: ShardingBalancerConfig,
        deps: ShardingDeps,
    ) -> Result<Self, LoadBalancerError> {
        let controller_id = controller_id.into();
        let m = deps.messaging.clone();
        let retention = Duration::from_millis(cfg.invoker_offline_ms.max(1000) * 10);
        m.ensure_transient_topic(HEALTH_TOPIC, retention)
            .await
            .map_err(unavailable)?;
        let completions = completion_topic(&controller_id);
        m.ensure_topic(&completions).await.map_err(unavailable)?;
        let health_consumer = m
            .consumer(HEALTH_TOPIC, &format!("health-{controller_id}"), 256)
            .await
            .map_err(unavailable)?;
        let completion_consumer = m
            .consumer(&completions, &completions, 1024)
            .await
            .map_err(unavailable)?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            name: name.into(),
            incarnation: format!("{:016x}", rand::random::<u64>()),
            producer: m.producer(),
            registry: RwLock::new(Registry::new(&cfg)),
            in_flight: Mutex::new(InFlight::default()),
            test_action: Mutex::new(None),
            controller_id,
            cfg,
            deps,
            stop,
        });
        if let Err(e) = shared.install_test_action().await {
            warn!(error = %e, "could not install the invoker health test action");
        }
        tokio::spawn(health_loop(
            shared.clone(),
            health_consumer,
            stop_rx.clone(),
        ));
        tokio::spawn(completion_loop(
            shared.clone(),
            completion_consumer,
            stop_rx.clone(),
        ));
        tokio::spawn(ping_loop(shared.clone(), stop_rx.clone()));
        tokio::spawn(supervise(shared.clone(), stop_rx));
        info!(controller = %shared.controller_id, "sharding balancer started");
        Ok(Self { shared })
    }

    /// How many controllers this one currently counts (itself included).
    pub fn cluster_size_now(&self) -> usize {
        self.shared.registry.read().cluster_size()
    }
}

/// The path that identifies an action for hashing and concurrency slots (`ns/pkg/name`).
fn action_path(action: &Action) -> String {
    format!("{}/{}", action.namespace, action.name)
}

impl Shared {
    fn test_action_name(&self) -> String {
        format!("invokerHealthTestAction{}", self.controller_id)
    }

    /// Creates or updates `whisk.system/invokerHealthTestAction<controller>` (nodejs:default,
    /// 128 MB, returns its parameters).
    async fn install_test_action(&self) -> Result<(), whirl_spi::StoreError> {
        let name = self.test_action_name();
        let body = json!({
            "namespace": "whisk.system",
            "name": name,
            "version": "0.0.1",
            "publish": false,
            "exec": {"kind": "nodejs:default", "code": "function main(params) { return params; }", "binary": false},
            "annotations": [],
            "parameters": [],
            "limits": {"timeout": 60000, "memory": 128, "logs": 0, "concurrency": 1},
        });
        let existing = self
            .deps
            .entities
            .get(Collection::Actions, "whisk.system", &name)
            .await?;
        let rev = match existing {
            Some(doc) => doc.rev,
            None => match self
                .deps
                .entities
                .put(
                    Collection::Actions,
                    "whisk.system",
                    &name,
                    &body,
                    PutMode::Create,
                )
                .await
            {
                Ok(rev) => rev,
                Err(whirl_spi::StoreError::Conflict(_)) => self
                    .deps
                    .entities
                    .get(Collection::Actions, "whisk.system", &name)
                    .await?
                    .map(|d| d.rev)
                    .unwrap_or(0),
                Err(e) => return Err(e),
            },
        };
        let action: Action = serde_json::from_value(body)
            .map_err(|e| whirl_spi::StoreError::Backend(e.to_string()))?;
        *self.test_action.lock() = Some((rev, Arc::new(action)));
        Ok(())
    }

    /// Chooses an invoker and takes its slots. Returns its position in the registry.
    fn choose(&self, action: &Action, namespace: &str, path: &str) -> Option<u32> {
        let reg = self.registry.read();
        let topo = reg.topology();
        let blackbox = matches!(action.exec, Exec::Blackbox { .. });
        let (set, steps) = if blackbox {
            (&topo.blackbox, &topo.blackbox_steps)
        } else {
            (&topo.managed, &topo.managed_steps)
        };
        let hash = schedule::home_hash(namespace, path);
        let d = schedule(
            set,
            steps,
            hash,
            path,
            action.limits.concurrency,
            action.limits.memory,
        )?;
        if d.forced {
            warn!(
                action = path,
                "system is overloaded: no invoker has room, forcing one"
            );
        }
        Some(set[d.position].index)
    }

    fn candidate(&self, index: u32) -> Option<Arc<Candidate>> {
        self.registry.read().candidate(index)
    }

    fn release(&self, e: &Entry) {
        if let Some(c) = self.candidate(e.invoker) {
            c.slots.release(&e.slot_key, e.max_concurrent, e.memory_mb);
        }
    }

    async fn send(&self, topic: &str, body: Bytes) -> Result<(), MessagingError> {
        self.producer.send(topic, body).await
    }

    /// Registers an activation, then publishes it to invoker `index`.
    async fn dispatch(
        &self,
        index: u32,
        action: Arc<Action>,
        msg: ActivationMessage,
        health_test: bool,
    ) -> Result<oneshot::Receiver<Activation>, LoadBalancerError> {
        let body = Bytes::from(serde_json::to_vec(&msg).map_err(|e| {
            LoadBalancerError::Unavailable(format!("cannot encode the activation: {e}"))
        })?);
        let (tx, rx) = oneshot::channel();
        let mut stub = msg;
        stub.content = None;
        let timeout = action.limits.timeout.max(60_000);
        let deadline = Instant::now()
            + Duration::from_millis(
                timeout * self.cfg.timeout_factor.max(1) + self.cfg.timeout_addon_ms,
            );
        let id = stub.activation_id;
        let namespace = stub.user.namespace.to_string();
        {
            let mut f = self.in_flight.lock();
            *f.by_namespace.entry(namespace.clone()).or_default() += 1;
            f.entries.insert(
                id,
                Entry {
                    invoker: index,
                    memory_mb: action.limits.memory,
                    max_concurrent: action.limits.concurrency,
                    slot_key: action_path(&action),
                    namespace,
                    started: None,
                    tx: Some(tx),
                    action,
                    stub,
                    deadline,
                    health_test,
                },
            );
        }
        if let Err(e) = self.send(&invoker_topic(index), body).await {
            if let Some(entry) = self.take(&id) {
                self.release(&entry);
            }
            return Err(unavailable(e));
        }
        Ok(rx)
    }

    /// Removes an entry and its namespace count.
    fn take(&self, id: &ActivationId) -> Option<Entry> {
        let mut f = self.in_flight.lock();
        let e = f.entries.remove(id)?;
        if let Some(n) = f.by_namespace.get_mut(&e.namespace) {
            *n -= 1;
            if *n == 0 {
                f.by_namespace.remove(&e.namespace);
            }
        }
        Some(e)
    }

    /// Ends an activation with `activation` (as stored): frees its slots, feeds invoker health,
    /// and wakes the caller.
    fn finish(&self, entry: Entry, activation: Activation, outcome: Outcome) {
        self.release(&entry);
        self.registry
            .write()
            .record_outcome(entry.invoker, outcome, entry.health_test);
        if let Some(tx) = entry.tx {
            let _ = tx.send(activation);
        }
    }

    /// Ends an activation that will get no record from an invoker with a whisk-internal-error
    /// record of its own (the store keeps the first record of an id).
    async fn fail(&self, entry: Entry, message: &str, outcome: Outcome) {
        let now = whirl_model::time::now_ms();
        let record = activation_record(
            &entry.action,
            &entry.stub,
            now,
            now,
            None,
            ActivationResponse::whisk_error(message),
            Vec::new(),
            false,
        );
        let stored =
            whirl_spi::store::store_with_retry(self.deps.activations.as_ref(), record).await;
        self.finish(entry, stored, outcome);
    }

    async fn on_ack(&self, ack: AckMessage) {
        match ack {
            AckMessage::Started {
                activation_id,
                invoker,
                incarnation,
            } => {
                let mut f = self.in_flight.lock();
                if let Some(e) = f.entries.get_mut(&activation_id) {
                    e.started = Some(incarnation);
                    debug!(activation = %activation_id, invoker, "started");
                }
            }
            AckMessage::Completed {
                activation_id,
                system_error,
                activation,
                ..
            } => {
                let Some(entry) = self.take(&activation_id) else {
                    debug!(activation = %activation_id, "completion of an activation this controller no longer waits for");
                    return;
                };
                let outcome = if system_error {
                    Outcome::SystemError
                } else {
                    Outcome::Success
                };
                let record = match activation {
                    Some(a) => *a,
                    None => match self.read_record(&entry).await {
                        Some(a) => a,
                        None => {
                            self.release(&entry);
                            return;
                        }
                    },
                };
                self.finish(entry, record, outcome);
            }
        }
    }

    /// A record too large for the bus, from the store.
    async fn read_record(&self, entry: &Entry) -> Option<Activation> {
        let ns = entry.stub.user.namespace.to_string();
        let mut pause = Duration::from_millis(50);
        for _ in 0..30 {
            match self
                .deps
                .activations
                .get(&ns, &entry.stub.activation_id)
                .await
            {
                Ok(Some(a)) => return Some(a),
                Ok(None) => return None,
                Err(e) => {
                    warn!(error = %e, "cannot read a completed activation's record; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
        None
    }

    /// The invoker incarnation `incarnation` is gone: what it started ends with error records.
    async fn invoker_lost(&self, incarnation: &str) {
        let lost: Vec<ActivationId> = {
            let f = self.in_flight.lock();
            f.entries
                .iter()
                .filter(|(_, e)| e.started.as_deref() == Some(incarnation))
                .map(|(id, _)| *id)
                .collect()
        };
        if !lost.is_empty() {
            warn!(
                count = lost.len(),
                incarnation, "recording activations of a lost invoker as whisk errors"
            );
        }
        for id in lost {
            if let Some(e) = self.take(&id) {
                self.fail(e, INVOKER_LOST, Outcome::SystemError).await;
            }
        }
    }

    /// Sends the health test action to invoker `index`.
    async fn send_test_action(&self, index: u32) {
        if self.test_action.lock().is_none() {
            if let Err(e) = self.install_test_action().await {
                warn!(error = %e, "cannot install the invoker health test action");
                return;
            }
        }
        let Some((rev, action)) = self.test_action.lock().clone() else {
            return;
        };
        let Some(c) = self.candidate(index) else {
            return;
        };
        c.slots.force_acquire(
            &action_path(&action),
            action.limits.concurrency,
            action.limits.memory,
        );
        let user = Identity {
            subject: "whisk.system".into(),
            namespace: whirl_model::EntityName::new("whisk.system").expect("valid namespace"),
            uuid: format!("{:032x}", rand::random::<u128>()),
            key: String::new(),
            limits: Default::default(),
        };
        let msg = ActivationMessage {
            version: whirl_model::message::MESSAGE_VERSION,
            transid: "sid_invokerHealth".into(),
            action: action.fully_qualified_name(),
            revision: rev,
            user,
            activation_id: ActivationId::generate(),
            root_controller: self.controller_id.clone(),
            blocking: false,
            content: Some(json!({})),
            init_args: Vec::new(),
            cause: None,
            received_at_ms: whirl_model::time::now_ms(),
            load_balancer: self.name.clone(),
            extra_annotations: Vec::new(),
            trace_context: Default::default(),
        };
        debug!(invoker = index, "sending the health test action");
        if let Err(e) = self.dispatch(index, action, msg, true).await {
            warn!(invoker = index, error = %e, "could not send the health test action");
        }
    }
}

#[async_trait]
impl LoadBalancer for ShardingBalancer {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn publish(
        &self,
        action: Arc<Action>,
        mut msg: ActivationMessage,
    ) -> Result<ActivationFuture, LoadBalancerError> {
        let s = &self.shared;
        msg.load_balancer.clone_from(&s.name);
        msg.root_controller.clone_from(&s.controller_id);
        // The invoker's spans continue the request's trace across the bus.
        msg.trace_context = whirl_telemetry::propagation::inject_current();
        let path = action_path(&action);
        let index = s
            .choose(&action, msg.user.namespace.as_ref(), &path)
            .ok_or(LoadBalancerError::NoInvokers)?;
        let rx = s.dispatch(index, action, msg, false).await?;
        Ok(Box::pin(async move {
            rx.await.map_err(|_| {
                LoadBalancerError::Lost(
                    "the controller stopped before the activation completed".into(),
                )
            })
        }))
    }

    fn active_activations_for(&self, namespace: &str) -> u64 {
        self.shared
            .in_flight
            .lock()
            .by_namespace
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }

    fn total_active_activations(&self) -> u64 {
        self.shared.in_flight.lock().entries.len() as u64
    }

    async fn invoker_health(&self) -> Vec<InvokerHealth> {
        self.shared
            .registry
            .read()
            .health()
            .into_iter()
            .map(|(id, status, user_memory_mb)| InvokerHealth {
                id,
                status,
                user_memory_mb,
                load_balancer: self.shared.name.clone(),
            })
            .collect()
    }

    fn keeps_accepted(&self) -> bool {
        true
    }

    fn cluster_size(&self) -> usize {
        self.cluster_size_now()
    }

    async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }
}

async fn ping_loop(s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(s.cfg.ping_interval_ms.max(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let ping = HealthPing::Controller {
            id: s.controller_id.clone(),
            incarnation: s.incarnation.clone(),
            sent_at_ms: whirl_model::time::now_ms(),
        };
        if let Ok(body) = serde_json::to_vec(&ping) {
            if let Err(e) = s.send(HEALTH_TOPIC, Bytes::from(body)).await {
                debug!(error = %e, "controller ping not sent");
            }
        }
    }
}

/// Pulls and acknowledges one consumer's messages, handing each payload to `handle`, with
/// backoff while the bus is unavailable.
async fn consume<F, Fut>(
    mut consumer: Box<dyn Consumer>,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut handle: F,
) where
    F: FnMut(Bytes) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = tokio::select! {
            b = consumer.peek(Duration::from_millis(500)) => b,
            _ = stop.changed() => return,
        };
        match batch {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                for d in batch {
                    handle(d.payload.clone()).await;
                    if let Err(e) = consumer.ack(d.id).await {
                        debug!(what, error = %e, "ack failed (the message will come again)");
                    }
                }
            }
            Err(e) => {
                warn!(what, error = %e, "cannot pull; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn health_loop(s: Arc<Shared>, consumer: Box<dyn Consumer>, stop: watch::Receiver<bool>) {
    consume(consumer, stop, "health", |payload| {
        let s = s.clone();
        async move {
            let ping: HealthPing = match serde_json::from_slice(&payload) {
                Ok(p) => p,
                Err(e) => {
                    debug!(error = %e, "unreadable health ping");
                    return;
                }
            };
            let events = s
                .registry
                .write()
                .on_ping(&ping, &s.controller_id, &s.incarnation);
            s.handle_events(events).await;
        }
    })
    .await;
}

async fn completion_loop(s: Arc<Shared>, consumer: Box<dyn Consumer>, stop: watch::Receiver<bool>) {
    consume(consumer, stop, "completions", |payload| {
        let s = s.clone();
        async move {
            match serde_json::from_slice::<AckMessage>(&payload) {
                Ok(ack) => s.on_ack(ack).await,
                Err(e) => debug!(error = %e, "unreadable acknowledgement"),
            }
        }
    })
    .await;
}

/// What the registry asks the balancer to do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An invoker incarnation is gone for good: fail what it started.
    Lost { incarnation: String },
    /// Invoker `index` went Offline: drain its topic.
    Drain { index: u32 },
    /// Send the health test action to invoker `index`.
    Test { index: u32 },
}

impl Shared {
    async fn handle_events(self: &Arc<Self>, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Lost { incarnation } => self.invoker_lost(&incarnation).await,
                Event::Drain { index } => {
                    tokio::spawn(drain(self.clone(), index));
                }
                Event::Test { index } => self.send_test_action(index).await,
            }
        }
    }
}

/// Every half second: Offline detection, health test actions, forced completions.
async fn supervise(s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let events = s.registry.write().tick(Instant::now());
        s.handle_events(events).await;
        let now = Instant::now();
        let overdue: Vec<ActivationId> = {
            let f = s.in_flight.lock();
            f.entries
                .iter()
                .filter(|(_, e)| e.deadline <= now)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in overdue {
            if let Some(e) = s.take(&id) {
                warn!(activation = %id, "no completion received: forcing it");
                s.fail(e, NO_COMPLETION, Outcome::Timeout).await;
            }
        }
    }
}

/// Takes the messages left on a dead invoker's topic (never started: the invoker acknowledges
/// only what it starts) and re-dispatches each to a healthy invoker, until the invoker is back.
async fn drain(s: Arc<Shared>, index: u32) {
    let topic = invoker_topic(index);
    let mut consumer = match s.deps.messaging.consumer(&topic, &topic, 32).await {
        Ok(c) => c,
        Err(e) => {
            warn!(invoker = index, error = %e, "cannot drain a dead invoker's topic");
            s.registry.write().drain_ended(index);
            return;
        }
    };
    info!(invoker = index, "draining the topic of an offline invoker");
    let mut moved = 0usize;
    while s.registry.read().is_offline(index) && !*s.stop.borrow() {
        let batch = match consumer.peek(Duration::from_millis(500)).await {
            Ok(b) => b,
            Err(e) => {
                debug!(invoker = index, error = %e, "drain: cannot pull");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for d in batch {
            let Ok(msg) = serde_json::from_slice::<ActivationMessage>(&d.payload) else {
                let _ = consumer.ack(d.id).await;
                continue;
            };
            if redispatch(&s, index, &msg, d.payload.clone()).await {
                if consumer.ack(d.id).await.is_ok() {
                    moved += 1;
                }
            } else {
                // No healthy invoker: keep holding it and try again shortly.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    drop(consumer);
    s.registry.write().drain_ended(index);
    info!(invoker = index, moved, "stopped draining");
}

/// Sends a drained message to another invoker; updates this controller's bookkeeping if it is
/// the message's root.
async fn redispatch(s: &Shared, from: u32, msg: &ActivationMessage, body: Bytes) -> bool {
    let path = msg.action.trim_start_matches('/').to_string();
    let own = s
        .in_flight
        .lock()
        .entries
        .get(&msg.activation_id)
        .map(|e| e.action.clone());
    let action = match own {
        Some(a) => a,
        // Another controller's activation: schedule it by memory 256 MB / managed, its
        // root controller keeps the bookkeeping.
        None => Arc::new(stub_for(&path)),
    };
    let Some(to) = s.choose(&action, msg.user.namespace.as_ref(), &path) else {
        // Give back nothing: `choose` took no slot.
        return false;
    };
    if to == from {
        if let Some(c) = s.candidate(to) {
            c.slots
                .release(&path, action.limits.concurrency, action.limits.memory);
        }
        return false;
    }
    if s.send(&invoker_topic(to), body).await.is_err() {
        if let Some(c) = s.candidate(to) {
            c.slots
                .release(&path, action.limits.concurrency, action.limits.memory);
        }
        return false;
    }
    let mut f = s.in_flight.lock();
    match f.entries.get_mut(&msg.activation_id) {
        Some(e) => {
            // Our own: the slots now held are on `to`; the dead invoker's were reset.
            e.invoker = to;
        }
        None => {
            drop(f);
            // Not ours: the root controller releases nothing here, so give the slot back now.
            if let Some(c) = s.candidate(to) {
                c.slots
                    .release(&path, action.limits.concurrency, action.limits.memory);
            }
        }
    }
    info!(activation = %msg.activation_id, from, to, "re-dispatched an activation of an offline invoker");
    true
}

/// A stand-in for an action this controller does not know (for scheduling a drained message).
fn stub_for(path: &str) -> Action {
    let (ns, name) = path.rsplit_once('/').unwrap_or(("", path));
    Action {
        namespace: ns.into(),
        name: name.into(),
        version: "0.0.0".into(),
        publish: false,
        exec: Exec::Code {
            kind: "unknown".into(),
            code: String::new(),
            binary: false,
            main: None,
        },
        annotations: Default::default(),
        parameters: Default::default(),
        limits: whirl_model::ActionLimits::standard(&Default::default()),
        updated: 0,
    }
}

/// `HealthStatus` names as OpenWhisk's `/invokers` route prints them.
pub fn status_word(s: HealthStatus) -> &'static str {
    match s {
        HealthStatus::Healthy => "up",
        HealthStatus::Unhealthy => "unhealthy",
        HealthStatus::Unresponsive => "unresponsive",
        HealthStatus::Offline => "down",
    }
}
