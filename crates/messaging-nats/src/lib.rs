//! Whirl's `nats` messaging: the [`whirl_spi::Messaging`] SPI on NATS JetStream (async-nats),
//! for controllers and invokers that run as separate processes.
//!
//! # Mapping
//!
//! - **A stream per topic.** Topic `t` is the stream `<prefix>_<t>` holding the one subject
//!   `<prefix>.<t>` (names escaped, see [`NatsMessagingConfig::prefix`]). One stream per topic
//!   rather than one stream with a subject per topic because a topic is the unit the platform
//!   creates and removes (an invoker's topic lives and dies with that invoker), because each topic
//!   then has its own limits and storage (one invoker's backlog never counts against another's),
//!   because a consumer needs no subject filter, and because in a clustered JetStream each stream
//!   is its own replicated log with its own leader, so topics spread over the servers instead of
//!   funnelling every message of the platform through one log.
//!   Streams use file storage and *interest* retention: a message is kept until every consumer
//!   group that existed when it was published has acknowledged it, and a message published to a
//!   topic that has no group is dropped (as in the `memory` implementation, nobody would see it).
//! - **A durable pull consumer per (topic, group)**, named after the group, created with
//!   `DeliverPolicy::New` by the group's first member: members of a group share it (each message
//!   goes to one of them), and a group sees every message published after it was created. The
//!   durable consumer outlives its members, so messages published while a group has no member
//!   wait for its next one.
//! - **Explicit acknowledgement and back-pressure.** A member pulls (one pull request at a time)
//!   at most `max_peek` minus what it already holds, so it never holds more than `max_peek`
//!   unacknowledged messages. The server-side `max_ack_pending` of the group's consumer is set to
//!   `max_peek` at creation and raised, never lowered, when a member with a larger `max_peek`
//!   joins: it bounds what the whole group has in flight (for the usual one-member group, such as
//!   an invoker's topic, exactly `max_peek`).
//! - **Ordering.** Per (topic, group), deliveries follow the stream order (publish order), except
//!   that redeliveries come first when they are due.
//! - **`peek`** waits on the member's inbox subscription (a long-polling pull request that expires
//!   with the peek's timeout): no polling.
//!
//! # Redelivery: exactly what happens
//!
//! Delivery is *at least once*. A message that a member holds (delivered to it, not acknowledged)
//! is delivered again to a member of the same group in exactly these cases:
//!
//! 1. **The member is dropped.** Its held messages are negatively acknowledged (NAK) at once, so
//!    the server redelivers them immediately (before newer messages), marked `redelivered`.
//!    This includes messages that had reached the member but that `peek` had not yet returned.
//! 2. **The member's process dies, or its connection is down for longer than `ack_wait`.** While a
//!    member lives, a background task tells the server every `ack_wait / 3` that each held message
//!    is still in progress (`+WPI`), so a long-running activation never times out. When those
//!    signals stop, the server redelivers the message `ack_wait` after the last one. In the case
//!    of a connection outage longer than `ack_wait` the original member may still be running the
//!    message when another member receives it: *this is the one case in which a message can be
//!    processed twice concurrently*, and the only protection is the `redelivered` flag (below).
//! 3. **The server crashes hard** (SIGKILL, power loss) after an acknowledgement was confirmed but
//!    before the consumer's state reached disk: the message may come back after the server
//!    restarts. A clean server stop and restart (SIGTERM) keeps all state, including
//!    acknowledgements; messages held before a restart stay held by their member (the in-progress
//!    signals resume after the reconnection) and can be acknowledged afterwards.
//!
//! Guarantees the caller can build on:
//!
//! - `redelivered == false` means the server never delivered this message to anyone before (its
//!   delivery count is 1). `redelivered == true` means it may have been seen — and possibly
//!   processed, partly or wholly — by another member. Issue 5's invoker therefore must not run a
//!   redelivered activation blindly: it has to check (activation store / journal) whether the
//!   activation already started, and if so record it as a whisk internal error instead of running
//!   it again.
//! - [`Consumer::ack`] returns `Ok` only after the server confirmed the acknowledgement (a
//!   "double ack"); from then on the message is never delivered again (case 3 aside). If `ack`
//!   fails (`Unavailable`), the message is still held and the ack may be retried.
//! - [`Producer::send`] returns `Ok` once JetStream stored the message. Every send carries a unique
//!   `Nats-Msg-Id`, and a send that times out is retried with the same id within its deadline, so
//!   retries never duplicate. A send that returns `Unavailable` after the connection broke while the
//!   message was in flight *may* still have been stored.
//!
//! # Outages
//!
//! The client reconnects by itself (every 100 ms to 1 s). While it is disconnected, `send`,
//! `ack`, `ensure_topic` and `consumer` wait for the connection up to `request_timeout_ms` and then
//! fail with [`MessagingError::Unavailable`]; `peek` waits up to its own timeout and then fails
//! with `Unavailable` (so a feed loop backs off by its peek timeout, never spins). After the
//! reconnection everything works again on the same objects, and JetStream's file storage keeps the
//! messages published before a server restart.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::{Client, StatusCode};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use whirl_spi::{Consumer, Delivery, Messaging, MessagingError, Producer};

/// Configuration of the `nats` messaging (the `[messaging]` section with `type = "nats"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsMessagingConfig {
    /// The server(s): `nats://host:port`, several separated by commas; credentials may be given as
    /// `nats://user:password@host:port`.
    pub url: String,
    /// Prefix of every stream (`<prefix>_<topic>`) and subject (`<prefix>.<topic>`), so several
    /// platforms (or test runs) can share one server. Letters, digits, `-` and `_` only.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long the server waits for an acknowledgement or an in-progress signal before it
    /// redelivers a message held by a member that went away (process died, connection lost).
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
    /// The bound on `send`, `ack`, `ensure_topic` and `consumer`, including the time spent waiting
    /// for a lost connection to come back; also how long the first connection is awaited.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Replicas of each topic's stream and consumers (a clustered JetStream; 1 for one server).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
}

fn default_prefix() -> String {
    "whirl".into()
}
fn default_ack_wait_ms() -> u64 {
    30_000
}
fn default_request_timeout_ms() -> u64 {
    5_000
}
fn default_replicas() -> usize {
    1
}

impl NatsMessagingConfig {
    /// The defaults with the given server URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            ack_wait_ms: default_ack_wait_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            replicas: default_replicas(),
        }
    }
}

fn unavailable(what: impl std::fmt::Display) -> MessagingError {
    MessagingError::Unavailable(what.to_string())
}

/// Escapes a topic or group name for use as (part of) a stream name, consumer name and subject
/// token: letters, digits and `-` stay, every other byte becomes `_xx` (hex).
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Connection state shared with the client's event callback.
#[derive(Debug, Clone, Copy)]
struct ConnState {
    connected: bool,
    /// Incremented on every (re)connection; a pull request made under an older epoch is gone.
    epoch: u64,
}

struct Shared {
    client: Client,
    js: jetstream::Context,
    config: NatsMessagingConfig,
    state: watch::Receiver<ConnState>,
}

impl Shared {
    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    fn stream_name(&self, topic: &str) -> String {
        format!("{}_{}", self.config.prefix, escape(topic))
    }

    fn subject(&self, topic: &str) -> String {
        format!("{}.{}", self.config.prefix, escape(topic))
    }

    /// Waits until the client is connected, up to `deadline`.
    async fn connected(&self, deadline: Instant) -> Result<ConnState, MessagingError> {
        let mut rx = self.state.clone();
        let wait = async move { rx.wait_for(|s| s.connected).await.map(|s| *s) };
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(unavailable("the NATS client is closed")),
            Err(_) => Err(unavailable(format!(
                "not connected to NATS at {}",
                self.config.url
            ))),
        }
    }

    async fn ensure_stream(
        &self,
        topic: &str,
        max_age: Option<Duration>,
    ) -> Result<(), MessagingError> {
        if topic.is_empty() {
            return Err(MessagingError::Other("empty topic name".into()));
        }
        let name = self.stream_name(topic);
        if name.len() > 200 {
            return Err(MessagingError::Other(format!(
                "topic name too long for a JetStream stream: {topic}"
            )));
        }
        let deadline = Instant::now() + self.request_timeout();
        loop {
            self.connected(deadline).await?;
            let cfg = stream::Config {
                name: name.clone(),
                subjects: vec![self.subject(topic)],
                retention: stream::RetentionPolicy::Interest,
                storage: stream::StorageType::File,
                num_replicas: self.config.replicas,
                max_age: max_age.unwrap_or_default(),
                ..Default::default()
            };
            match self.js.get_or_create_stream(cfg).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() + Duration::from_millis(100) < deadline => {
                    tracing::debug!(topic, error = %e, "ensure_topic failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(unavailable(format!("cannot create topic {topic}: {e}"))),
            }
        }
    }

    /// Creates the group's durable consumer, or raises its `max_ack_pending` to `max_peek`.
    async fn ensure_consumer(
        &self,
        topic: &str,
        group: &str,
        max_peek: usize,
    ) -> Result<String, MessagingError> {
        let stream = self.stream_name(topic);
        let durable = escape(group);
        let deadline = Instant::now() + self.request_timeout();
        let mut last = String::new();
        while Instant::now() < deadline {
            self.connected(deadline).await?;
            match self.try_ensure_consumer(&stream, &durable, max_peek).await {
                Ok(()) => return Ok(durable),
                Err(e) => {
                    tracing::debug!(topic, group, error = %e, "creating the consumer failed, retrying");
                    last = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(unavailable(format!(
            "cannot create the consumer of group {group} on topic {topic}: {last}"
        )))
    }

    async fn try_ensure_consumer(
        &self,
        stream: &str,
        durable: &str,
        max_peek: usize,
    ) -> Result<(), String> {
        let cfg = pull::Config {
            durable_name: Some(durable.to_string()),
            deliver_policy: jetstream::consumer::DeliverPolicy::New,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_millis(self.config.ack_wait_ms),
            max_deliver: -1,
            max_ack_pending: max_peek as i64,
            num_replicas: self.config.replicas,
            ..Default::default()
        };
        let s = self
            .js
            .get_stream_no_info(stream)
            .await
            .map_err(|e| e.to_string())?;
        let existing = s
            .get_or_create_consumer::<pull::Config>(durable, cfg.clone())
            .await
            .map_err(|e| e.to_string())?;
        let current = existing.cached_info().config.max_ack_pending;
        if current < max_peek as i64 {
            // Creating an existing durable with a changed (updatable) field updates it.
            s.create_consumer(cfg).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Messaging on NATS JetStream. Cloning is cheap; clones share one connection.
#[derive(Clone)]
pub struct NatsMessaging {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NatsMessaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMessaging")
            .field("url", &self.shared.config.url)
            .field("prefix", &self.shared.config.prefix)
            .finish()
    }
}

impl NatsMessaging {
    /// Connects to the server and waits up to `request_timeout_ms` for the first connection
    /// (failing with `Unavailable` after that). Later outages are handled by reconnecting.
    pub async fn connect(config: &NatsMessagingConfig) -> Result<Self, MessagingError> {
        let prefix_ok = !config.prefix.is_empty()
            && config
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            return Err(MessagingError::Other(format!(
                "invalid NATS prefix {:?}: letters, digits, - and _ only",
                config.prefix
            )));
        }
        let (tx, rx) = watch::channel(ConnState {
            connected: false,
            epoch: 0,
        });
        let tx = Arc::new(tx);
        let events = tx.clone();
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1_000))
            })
            .request_timeout(Some(timeout))
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => events.send_modify(|s| {
                            s.connected = true;
                            s.epoch += 1;
                        }),
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            events.send_modify(|s| s.connected = false)
                        }
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| MessagingError::Other(format!("NATS url {}: {e}", config.url)))?;
        if client.connection_state() == async_nats::connection::State::Connected {
            tx.send_if_modified(|s| {
                let was = s.connected;
                s.connected = true;
                if s.epoch == 0 {
                    s.epoch = 1;
                }
                !was
            });
        }
        let mut js = jetstream::new(client.clone());
        js.set_timeout(timeout);
        let shared = Arc::new(Shared {
            client,
            js,
            config: config.clone(),
            state: rx,
        });
        shared.connected(Instant::now() + timeout).await?;
        Ok(Self { shared })
    }

    /// The configuration this instance was connected with.
    pub fn config(&self) -> &NatsMessagingConfig {
        &self.shared.config
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.shared.state.borrow().connected
    }

    /// Deletes the stream of `topic` (its messages and groups). Deleting a missing topic is fine.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), MessagingError> {
        let deadline = Instant::now() + self.shared.request_timeout();
        self.shared.connected(deadline).await?;
        match self
            .shared
            .js
            .delete_stream(self.shared.stream_name(topic))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Deletes every topic under this configuration's prefix (tests and administration).
    pub async fn delete_all_topics(&self) -> Result<usize, MessagingError> {
        let deadline = Instant::now() + self.shared.request_timeout();
        self.shared.connected(deadline).await?;
        let mine = format!("{}_", self.shared.config.prefix);
        let mut names = self.shared.js.stream_names();
        let mut doomed = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.map_err(unavailable)?;
            if name.starts_with(&mine) {
                doomed.push(name);
            }
        }
        for name in &doomed {
            self.shared
                .js
                .delete_stream(name)
                .await
                .map_err(unavailable)?;
        }
        Ok(doomed.len())
    }
}

#[async_trait]
impl Messaging for NatsMessaging {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), MessagingError> {
        self.shared.ensure_stream(topic, None).await
    }

    /// A stream with `max_age`: JetStream drops older messages even under interest retention.
    async fn ensure_transient_topic(
        &self,
        topic: &str,
        max_age: Duration,
    ) -> Result<(), MessagingError> {
        self.shared.ensure_stream(topic, Some(max_age)).await
    }

    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(NatsProducer {
            shared: self.shared.clone(),
        })
    }

    async fn consumer(
        &self,
        topic: &str,
        group: &str,
        max_peek: usize,
    ) -> Result<Box<dyn Consumer>, MessagingError> {
        if max_peek == 0 {
            return Err(MessagingError::Other("max_peek must be at least 1".into()));
        }
        if group.is_empty() {
            return Err(MessagingError::Other("empty group name".into()));
        }
        self.shared.ensure_stream(topic, None).await?;
        let durable = self.shared.ensure_consumer(topic, group, max_peek).await?;
        let inbox = self.shared.client.new_inbox();
        let sub = self
            .shared
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(unavailable)?;
        let held: Arc<Mutex<BTreeMap<u64, async_nats::Subject>>> = Arc::default();
        let keepalive = tokio::spawn(keep_alive(
            self.shared.client.clone(),
            held.clone(),
            Duration::from_millis((self.shared.config.ack_wait_ms / 3).max(50)),
        ));
        Ok(Box::new(NatsConsumer {
            shared: self.shared.clone(),
            next_subject: format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                self.shared.stream_name(topic),
                durable
            ),
            inbox,
            sub,
            max_peek,
            held,
            handed_out: 0,
            buffer: VecDeque::new(),
            pull: None,
            next_id: 1,
            keepalive,
        }))
    }
}

/// Sends `+WPI` (work in progress) for every held message, so the server does not redeliver the
/// messages of a member that is alive.
async fn keep_alive(
    client: Client,
    held: Arc<Mutex<BTreeMap<u64, async_nats::Subject>>>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let replies: Vec<async_nats::Subject> = held.lock().values().cloned().collect();
        if client.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        for reply in replies {
            let _ = client.publish(reply, Bytes::from_static(b"+WPI")).await;
        }
    }
}

/// A producer (see [`Messaging::producer`]).
struct NatsProducer {
    shared: Arc<Shared>,
}

fn unique_msg_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[async_trait]
impl Producer for NatsProducer {
    async fn send(&self, topic: &str, payload: Bytes) -> Result<(), MessagingError> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.request_timeout();
        shared.connected(deadline).await?;
        let limit = shared.client.server_info().max_payload;
        // Headers (the message id) take a little room of their own.
        let limit = limit.saturating_sub(128);
        if limit > 0 && payload.len() > limit {
            return Err(MessagingError::TooLarge {
                size: payload.len(),
                limit,
            });
        }
        let subject = shared.subject(topic);
        let id = unique_msg_id();
        loop {
            shared.connected(deadline).await?;
            let publish = jetstream::context::Publish::build()
                .payload(payload.clone())
                .message_id(&id);
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = async {
                let ack = shared
                    .js
                    .send_publish(subject.clone(), publish)
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await.map_err(|e| e.to_string())
            };
            let last = match tokio::time::timeout(left, attempt).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => "timed out".to_string(),
            };
            if Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(unavailable(format!(
                    "publishing to topic {topic} failed: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The pull request a member has outstanding (at most one).
struct Pull {
    remaining: usize,
    expires: Instant,
    epoch: u64,
}

/// A member of a consumer group (see [`Messaging::consumer`]).
struct NatsConsumer {
    shared: Arc<Shared>,
    next_subject: String,
    inbox: String,
    sub: async_nats::Subscriber,
    max_peek: usize,
    /// Ack subjects of every message this member holds: returned by `peek` and not acknowledged,
    /// or received and not yet returned (`buffer`). Shared with the keep-alive task.
    held: Arc<Mutex<BTreeMap<u64, async_nats::Subject>>>,
    /// How many held messages were returned by `peek` (the others are in `buffer`).
    handed_out: usize,
    buffer: VecDeque<Delivery>,
    pull: Option<Pull>,
    next_id: u64,
    keepalive: tokio::task::JoinHandle<()>,
}

/// What one inbox message meant.
enum Inbox {
    Message,
    /// The outstanding pull request ended (expired, or the server refused it).
    PullOver,
    /// No JetStream answered the pull request (server restarting, consumer missing).
    NoResponders,
    /// The server refused or cut the pull request (409 and the like): pull again after a pause.
    Refused,
    Ignored,
}

impl NatsConsumer {
    /// Room for new messages: `max_peek` minus held messages minus what is already requested.
    fn room(&self) -> usize {
        let requested = self.pull.as_ref().map_or(0, |p| p.remaining);
        self.max_peek
            .saturating_sub(self.held.lock().len())
            .saturating_sub(requested)
    }

    fn handle(&mut self, m: async_nats::Message) -> Inbox {
        if let Some(status) = m.status {
            if status == StatusCode::IDLE_HEARTBEAT {
                return Inbox::Ignored;
            }
            self.pull = None;
            if status == StatusCode::NO_RESPONDERS {
                return Inbox::NoResponders;
            }
            if status != StatusCode::TIMEOUT && status != StatusCode::NOT_FOUND {
                tracing::debug!(?status, description = ?m.description, "pull request refused");
                return Inbox::Refused;
            }
            return Inbox::PullOver;
        }
        let Some(reply) = m.reply.clone() else {
            return Inbox::Ignored;
        };
        let jm = jetstream::Message {
            message: m,
            context: self.shared.js.clone(),
        };
        let redelivered = jm.info().map(|i| i.delivered > 1).unwrap_or(false);
        if let Some(p) = self.pull.as_mut() {
            p.remaining = p.remaining.saturating_sub(1);
            if p.remaining == 0 {
                self.pull = None;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.held.lock().insert(id, reply);
        self.buffer.push_back(Delivery {
            id,
            payload: jm.message.payload,
            redelivered,
        });
        Inbox::Message
    }

    /// Hands out the buffered deliveries.
    fn hand_out(&mut self) -> Vec<Delivery> {
        let out: Vec<Delivery> = self.buffer.drain(..).collect();
        self.handed_out += out.len();
        out
    }

    /// Takes whatever is already waiting in the inbox, without waiting.
    fn drain_ready(&mut self) {
        while let Some(Some(m)) = self.sub.next().now_or_never() {
            self.handle(m);
        }
    }
}

use futures::FutureExt;

#[async_trait]
impl Consumer for NatsConsumer {
    async fn peek(&mut self, timeout: Duration) -> Result<Vec<Delivery>, MessagingError> {
        let deadline = Instant::now() + timeout;
        if self.handed_out >= self.max_peek {
            tokio::time::sleep(timeout).await;
            return Ok(Vec::new());
        }
        let mut no_responders = false;
        loop {
            self.drain_ready();
            if !self.buffer.is_empty() {
                return Ok(self.hand_out());
            }
            let state = *self.shared.state.borrow();
            if !state.connected {
                match self.shared.connected(deadline).await {
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
            // A pull request from before a reconnection, or long expired, is gone.
            if let Some(p) = &self.pull {
                if p.epoch != state.epoch || Instant::now() > p.expires + Duration::from_secs(1) {
                    self.pull = None;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.pull.is_none() && left >= Duration::from_millis(20) {
                let room = self.room();
                if room > 0 {
                    let body = serde_json::json!({
                        "batch": room,
                        "expires": left.as_nanos() as u64,
                    });
                    self.shared
                        .client
                        .publish_with_reply(
                            self.next_subject.clone(),
                            self.inbox.clone(),
                            Bytes::from(body.to_string()),
                        )
                        .await
                        .map_err(unavailable)?;
                    self.pull = Some(Pull {
                        remaining: room,
                        expires: Instant::now() + left,
                        epoch: state.epoch,
                    });
                }
            }
            // Wake on the next change of the connection state only: a clone still counts as
            // unseen every change made since the shared receiver was created, and waiting on
            // those would return at once and spin this loop until the deadline.
            let mut state_rx = self.shared.state.clone();
            state_rx.borrow_and_update();
            tokio::select! {
                m = self.sub.next() => match m {
                    Some(m) => match self.handle(m) {
                        Inbox::NoResponders => {
                            no_responders = true;
                            // JetStream may still be starting after a reconnection: back off.
                            let pause = Instant::now() + Duration::from_millis(200);
                            tokio::time::sleep_until(pause.min(deadline)).await;
                        }
                        Inbox::Refused => {
                            let pause = Instant::now() + Duration::from_millis(100);
                            tokio::time::sleep_until(pause.min(deadline)).await;
                        }
                        Inbox::Message | Inbox::PullOver | Inbox::Ignored => {}
                    },
                    None => return Err(unavailable("the NATS subscription closed")),
                },
                _ = state_rx.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
            if Instant::now() >= deadline {
                self.drain_ready();
                if !self.buffer.is_empty() {
                    return Ok(self.hand_out());
                }
                if no_responders {
                    return Err(unavailable(
                        "no JetStream consumer answered the pull request",
                    ));
                }
                return Ok(Vec::new());
            }
        }
    }

    /// Acknowledges a delivery and waits for the server to confirm it. Acknowledging an id twice,
    /// or one this member never handed out, does nothing.
    async fn ack(&mut self, id: u64) -> Result<(), MessagingError> {
        let Some(reply) = self.held.lock().get(&id).cloned() else {
            return Ok(());
        };
        if self.buffer.iter().any(|d| d.id == id) {
            return Ok(()); // not handed out yet
        }
        let deadline = Instant::now() + self.shared.request_timeout();
        loop {
            self.shared.connected(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let r = tokio::time::timeout(
                left,
                self.shared
                    .client
                    .request(reply.clone(), Bytes::from_static(b"+ACK")),
            )
            .await;
            match r {
                Ok(Ok(_)) => {
                    self.held.lock().remove(&id);
                    self.handed_out = self.handed_out.saturating_sub(1);
                    return Ok(());
                }
                Ok(Err(e)) if Instant::now() + Duration::from_millis(100) < deadline => {
                    tracing::debug!(error = %e, "ack failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => return Err(unavailable(format!("acknowledgement failed: {e}"))),
                Err(_) => return Err(unavailable("acknowledgement timed out")),
            }
        }
    }
    /// Lowers (or raises) the member's own window; the group's server-side `max_ack_pending`
    /// stays as created (an upper bound for the whole group).
    fn set_max_peek(&mut self, max_peek: usize) {
        self.max_peek = max_peek;
    }
}

impl Drop for NatsConsumer {
    fn drop(&mut self) {
        self.keepalive.abort();
        let held = std::mem::take(&mut *self.held.lock());
        if held.is_empty() {
            return;
        }
        // Give the held messages back at once (NAK, in delivery order); without a runtime, the
        // server redelivers them after ack_wait.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.shared.client.clone();
            rt.spawn(async move {
                for reply in held.into_values() {
                    let _ = client.publish(reply, Bytes::from_static(b"-NAK")).await;
                }
                let _ = client.flush().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_safe_names_and_escapes_the_rest() {
        assert_eq!(escape("invoker-0"), "invoker-0");
        assert_eq!(escape("a.b c_*>"), "a_2eb_20c_5f_2a_3e");
        assert_ne!(escape("a_2e"), escape("a."));
    }

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_keys() {
        let c: NatsMessagingConfig = serde_json::from_str(r#"{"url": "nats://h:1"}"#).unwrap();
        assert_eq!(c, NatsMessagingConfig::new("nats://h:1"));
        assert!(serde_json::from_str::<NatsMessagingConfig>(r#"{"url":"x","nope":1}"#).is_err());
        assert!(serde_json::from_str::<NatsMessagingConfig>(r#"{}"#).is_err());
    }
}
