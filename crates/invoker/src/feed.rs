//! The invoker's bus feed: how an invoker that runs as its own process (`whirl invoker`) takes
//! activations from its topic, tells the controllers what it does, and pings them.
//!
//! # Per activation
//!
//! 1. The feed pulls the [`ActivationMessage`] from topic `invoker<index>` (consumer group of the
//!    same name). It never holds more than it can run: the consumer's window is `max_peek` minus
//!    the activations in progress ([`Consumer::set_max_peek`]).
//! 2. It sends [`AckMessage::Started`] to the root controller and waits until the bus has stored
//!    it, *then* acknowledges the activation message, and only after the bus confirmed that
//!    acknowledgement does it run the activation. So a message the bus delivers again was never
//!    started by anyone who acknowledged it, and a controller that heard `Started` knows the
//!    activation may have run (if the invoker dies, the controller records it as a whisk error
//!    instead of running it elsewhere).
//! 3. A message the bus marks `redelivered` may have reached a member that died between step 2's
//!    `Started` and its acknowledgement. The feed looks for a stored record first and, if there is
//!    one, only repeats the completion: an activation never runs twice because of a redelivery.
//! 4. The activation runs to its stored record ([`Invoker::run_and_store`]); then the feed sends
//!    [`AckMessage::Completed`], carrying the record when it fits the bus.
//!
//! Every bus or store call on this path is retried with capped backoff while the service is
//! unavailable; nothing is dropped because NATS or PostgreSQL restarted.
//!
//! # Pings
//!
//! Every `ping_interval` the feed publishes [`HealthPing::Invoker`] with its id, index, user
//! memory and incarnation (random per process start, so controllers tell a restart from a
//! pause). While shutting down it pings `enabled: false`, stops pulling, and lets the
//! activations in progress finish.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};
use whirl_model::message::{completion_topic, invoker_topic, AckMessage, HealthPing, HEALTH_TOPIC};
use whirl_model::{Action, ActivationMessage, ActivationResponse, StatusCode};
use whirl_spi::{Collection, Consumer, EntityStore, Messaging, MessagingError, Producer};

use crate::Invoker;

/// Largest completion that carries its record; larger records are read from the store by the
/// controller (NATS' default maximum payload is 1 MiB).
const MAX_RECORD_ON_BUS: usize = 900 * 1024;

/// How the feed runs.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// This invoker's instance index: its topic is `invoker<index>`.
    pub index: u32,
    /// Most activations held or running at once.
    pub max_peek: usize,
    pub ping_interval: Duration,
    /// How long pings older than this are kept on the bus (controllers ignore stale ones).
    pub health_retention: Duration,
}

/// What the feed talks to besides the invoker.
pub struct FeedDeps {
    pub messaging: Arc<dyn Messaging>,
    /// Where the feed reads the actions it runs (cached by revision).
    pub entities: Arc<dyn EntityStore>,
}

/// A running feed: stop it with [`Feed::shutdown`].
pub struct Feed {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    invoker: Invoker,
    cfg: FeedConfig,
    deps: FeedDeps,
    producer: Arc<dyn Producer>,
    incarnation: String,
    running: AtomicUsize,
    finished: Notify,
    actions: Mutex<HashMap<String, (u64, Arc<Action>)>>,
}

impl Feed {
    /// Creates the invoker's topic and consumer and starts pulling and pinging.
    pub async fn start(
        invoker: Invoker,
        cfg: FeedConfig,
        deps: FeedDeps,
    ) -> Result<Self, MessagingError> {
        let topic = invoker_topic(cfg.index);
        deps.messaging.ensure_topic(&topic).await?;
        deps.messaging
            .ensure_transient_topic(HEALTH_TOPIC, cfg.health_retention)
            .await?;
        let consumer = deps
            .messaging
            .consumer(&topic, &topic, cfg.max_peek.max(1))
            .await?;
        let producer = deps.messaging.producer();
        let incarnation = format!("{:016x}", rand::random::<u64>());
        info!(invoker = invoker.id(), index = cfg.index, %incarnation, "invoker feed started");
        let state = Arc::new(State {
            invoker,
            cfg,
            deps,
            producer,
            incarnation,
            running: AtomicUsize::new(0),
            finished: Notify::new(),
            actions: Mutex::new(HashMap::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(ping_loop(state.clone(), stop_rx.clone()));
        let task = tokio::spawn(pull_loop(state, consumer, stop_rx));
        Ok(Self { stop, task })
    }

    /// Stops pulling (messages not started go back to the bus), announces the shutdown, and
    /// waits for the activations in progress to finish.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

async fn ping_loop(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.cfg.ping_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = *stop.borrow();
        let ping = HealthPing::Invoker {
            id: state.invoker.id().to_string(),
            index: state.cfg.index,
            user_memory_mb: state.invoker.pool().user_memory_mb,
            incarnation: state.incarnation.clone(),
            enabled: !stopping,
            sent_at_ms: whirl_model::time::now_ms(),
        };
        if let Ok(body) = serde_json::to_vec(&ping) {
            if let Err(e) = state.producer.send(HEALTH_TOPIC, Bytes::from(body)).await {
                debug!(error = %e, "health ping not sent");
            }
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
    }
}

async fn pull_loop(
    state: Arc<State>,
    mut consumer: Box<dyn Consumer>,
    stop: watch::Receiver<bool>,
) {
    let max = state.cfg.max_peek.max(1);
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        let running = state.running.load(Ordering::Acquire);
        if running >= max {
            // Full: wait for an activation to finish (or the stop).
            let finished = state.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if state.running.load(Ordering::Acquire) >= max {
                let mut stop = stop.clone();
                tokio::select! {
                    _ = finished => {}
                    _ = stop.changed() => {}
                }
            }
            continue;
        }
        consumer.set_max_peek(max - running);
        let batch = match consumer.peek(Duration::from_millis(500)).await {
            Ok(b) => {
                backoff = Duration::from_millis(100);
                b
            }
            Err(e) => {
                warn!(error = %e, "cannot pull activations; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        for d in batch {
            let msg: ActivationMessage = match serde_json::from_slice(&d.payload) {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "dropping an activation message that cannot be read");
                    ack_until_done(consumer.as_mut(), d.id, &stop).await;
                    continue;
                }
            };
            if d.redelivered {
                if let Some(done) = already_recorded(&state, &msg).await {
                    info!(activation = %msg.activation_id, "redelivered activation already has a record; not running it again");
                    ack_until_done(consumer.as_mut(), d.id, &stop).await;
                    tokio::spawn(send_completed(state.clone(), msg, done));
                    continue;
                }
            }
            let started = AckMessage::Started {
                activation_id: msg.activation_id,
                invoker: state.invoker.id().to_string(),
                incarnation: state.incarnation.clone(),
            };
            send_until_done(&state, &completion_topic(&msg.root_controller), &started).await;
            if !ack_until_done(consumer.as_mut(), d.id, &stop).await {
                // Stopping before the acknowledgement: the message goes back to the bus.
                break;
            }
            state.running.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(run_one(state.clone(), msg));
        }
    }
    drop(consumer); // unacknowledged messages go back to the bus at once
    while state.running.load(Ordering::Acquire) > 0 {
        let finished = state.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        if state.running.load(Ordering::Acquire) == 0 {
            break;
        }
        finished.await;
    }
}

async fn run_one(state: Arc<State>, mut msg: ActivationMessage) {
    msg.extra_annotations.push((
        "invoker".into(),
        Value::String(state.invoker.id().to_string()),
    ));
    let record = match action_for(&state, &msg).await {
        Ok(action) => state.invoker.run_and_store(action, msg.clone()).await,
        Err(response) => {
            let stub = stub_action(&msg);
            let record = state.invoker.record_failure(&stub, &msg, response);
            whirl_spi::store::store_with_retry(state.invoker.activations().as_ref(), record).await
        }
    };
    send_completed(state.clone(), msg, record).await;
    state.running.fetch_sub(1, Ordering::AcqRel);
    state.finished.notify_waiters();
}

async fn send_completed(
    state: Arc<State>,
    msg: ActivationMessage,
    record: whirl_model::Activation,
) {
    let system_error = record.response.status == StatusCode::WhiskError;
    let mut done = AckMessage::Completed {
        activation_id: msg.activation_id,
        invoker: state.invoker.id().to_string(),
        incarnation: state.incarnation.clone(),
        system_error,
        activation: Some(Box::new(record)),
    };
    let topic = completion_topic(&msg.root_controller);
    let body = serde_json::to_vec(&done).unwrap_or_default();
    if body.len() > MAX_RECORD_ON_BUS {
        if let AckMessage::Completed { activation, .. } = &mut done {
            *activation = None;
        }
    }
    send_until_done(&state, &topic, &done).await;
}

/// The record of a redelivered activation, if one is stored already.
async fn already_recorded(
    state: &State,
    msg: &ActivationMessage,
) -> Option<whirl_model::Activation> {
    let store = state.invoker.activations();
    let ns = msg.user.namespace.to_string();
    let mut pause = Duration::from_millis(50);
    for _ in 0..20 {
        match store.get(&ns, &msg.activation_id).await {
            Ok(found) => return found,
            Err(e) => {
                warn!(activation = %msg.activation_id, error = %e, "cannot look for an existing record; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
    None
}

/// Publishes an acknowledgement, retrying with backoff until the bus stores it.
async fn send_until_done(state: &State, topic: &str, msg: &AckMessage) {
    let body = Bytes::from(serde_json::to_vec(msg).unwrap_or_default());
    let mut pause = Duration::from_millis(50);
    loop {
        match state.producer.send(topic, body.clone()).await {
            Ok(()) => return,
            Err(e) => {
                warn!(topic, error = %e, "cannot send an acknowledgement; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Acknowledges a delivery, retrying with backoff until the bus confirms it. Returns false only
/// when the feed is stopping and the acknowledgement never went through.
async fn ack_until_done(
    consumer: &mut dyn Consumer,
    id: u64,
    stop: &watch::Receiver<bool>,
) -> bool {
    let mut pause = Duration::from_millis(50);
    loop {
        match consumer.ack(id).await {
            Ok(()) => return true,
            Err(_) if *stop.borrow() => return false,
            Err(e) => {
                warn!(error = %e, "cannot acknowledge an activation message; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The action a message names, from the feed's cache or the entity store. A newer revision than
/// the message's is used (the action was updated in between, as a warm OpenWhisk invoker would
/// also run what it fetches); a missing action ends the activation as a developer error.
async fn action_for(
    state: &State,
    msg: &ActivationMessage,
) -> Result<Arc<Action>, ActivationResponse> {
    if let Some((rev, a)) = state.actions.lock().get(&msg.action) {
        if *rev >= msg.revision {
            return Ok(a.clone());
        }
    }
    let path = msg.action.trim_start_matches('/');
    let (ns, name) = path.split_once('/').unwrap_or((path, ""));
    let mut pause = Duration::from_millis(50);
    let mut attempts = 0;
    let doc = loop {
        match state.deps.entities.get(Collection::Actions, ns, name).await {
            Ok(Some(doc)) => break doc,
            Ok(None) => {
                return Err(ActivationResponse::developer_error(format!(
                    "The action '{}' no longer exists.",
                    msg.action
                )))
            }
            Err(e) if attempts < 30 => {
                attempts += 1;
                warn!(action = %msg.action, error = %e, "cannot read the action; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                warn!(action = %msg.action, error = %e, "giving up reading the action");
                return Err(ActivationResponse::whisk_error(
                    whirl_model::error::messages::PROVISION_FAILED,
                ));
            }
        }
    };
    let action: Action = serde_json::from_value(doc.body).map_err(|e| {
        warn!(action = %msg.action, error = %e, "stored action cannot be read");
        ActivationResponse::whisk_error("The action's document is corrupted.")
    })?;
    let action = Arc::new(action);
    state
        .actions
        .lock()
        .insert(msg.action.clone(), (doc.rev, action.clone()));
    Ok(action)
}

/// A minimal action standing for one that cannot be read, so its failure still gets a record
/// with the right name and path.
fn stub_action(msg: &ActivationMessage) -> Action {
    let path = msg.action.trim_start_matches('/');
    let (ns, name) = path.rsplit_once('/').unwrap_or(("", path));
    Action {
        namespace: ns.to_string(),
        name: name.to_string(),
        version: "0.0.0".into(),
        publish: false,
        exec: whirl_model::Exec::Sequence {
            components: Vec::new(),
        },
        annotations: Default::default(),
        parameters: Default::default(),
        limits: whirl_model::ActionLimits::standard(&Default::default()),
        updated: 0,
    }
}
