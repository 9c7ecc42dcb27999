//! Whirl's `memory` messaging: in-process topics with consumer groups, explicit acknowledgement
//! and back-pressure, implementing [`whirl_spi::Messaging`].
//!
//! This is what a single-process (standalone) Whirl uses between its controller and invoker, and
//! what tests use instead of NATS. It is a real implementation of the SPI, held to the same
//! conformance suite as the networked ones:
//!
//! - each (topic, group) pair has one shared queue, created when the group's first consumer
//!   subscribes; a message published to a topic is appended to the queue of every group that exists
//!   at that moment, so each group sees every message published after it subscribed, and the
//!   consumers of one group share the queue (each message goes to one of them);
//! - a consumer holds at most `max_peek` unacknowledged deliveries; [`Consumer::peek`] never hands out
//!   more;
//! - when a consumer is dropped, its unacknowledged messages go back to the *front* of the group's
//!   queue (in their original order), marked `redelivered`, and a waiting consumer is woken;
//! - per (topic, group), messages are delivered in publish order, redeliveries aside;
//! - `peek` waits on a [`tokio::sync::Notify`], never polling.
//!
//! Messages are never copied or serialized: a payload is a [`Bytes`] shared by every group's queue.
//! A group's queue outlives its consumers (like a Kafka consumer group's offset), so messages
//! published while a group momentarily has no consumer wait for its next one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use whirl_spi::{Consumer, Delivery, Messaging, MessagingError, Producer};

/// Configuration of the `memory` messaging (the `[messaging]` section with `type = "memory"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryMessagingConfig {
    /// Largest payload [`Producer::send`] accepts, in bytes; `None` (the default) accepts any size,
    /// since nothing is copied. Set it to mimic a networked backend's limit.
    pub max_message_bytes: Option<usize>,
}

/// The in-process message hub. Cloning it is cheap and clones share the same topics.
#[derive(Clone, Default)]
pub struct MemoryMessaging {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for MemoryMessaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMessaging")
            .field("topics", &self.hub.topics.lock().len())
            .field("max_message_bytes", &self.hub.max_message_bytes)
            .finish()
    }
}

impl MemoryMessaging {
    /// An empty hub with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty hub with the given configuration.
    pub fn with_config(config: &MemoryMessagingConfig) -> Self {
        Self {
            hub: Arc::new(Hub {
                topics: Mutex::default(),
                max_message_bytes: config.max_message_bytes,
            }),
        }
    }
}

#[derive(Default)]
struct Hub {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    max_message_bytes: Option<usize>,
}

impl Hub {
    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock();
        if let Some(t) = topics.get(name) {
            return t.clone();
        }
        let t = Arc::new(Topic::default());
        topics.insert(name.to_string(), t.clone());
        t
    }
}

#[derive(Default)]
struct Topic {
    groups: Mutex<HashMap<String, Arc<Group>>>,
}

/// One consumer group's shared queue on one topic.
#[derive(Default)]
struct Group {
    queue: Mutex<VecDeque<Message>>,
    /// Woken when messages are appended or returned to the queue.
    notify: Notify,
}

#[derive(Clone)]
struct Message {
    payload: Bytes,
    redelivered: bool,
}

#[async_trait]
impl Messaging for MemoryMessaging {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), MessagingError> {
        self.hub.topic(topic);
        Ok(())
    }

    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(MemoryProducer {
            hub: self.hub.clone(),
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
        let topic = self.hub.topic(topic);
        let group = topic
            .groups
            .lock()
            .entry(group.to_string())
            .or_default()
            .clone();
        Ok(Box::new(MemoryConsumer {
            group,
            max_peek,
            unacked: BTreeMap::new(),
            next_id: 1,
        }))
    }
}

/// A producer of a [`MemoryMessaging`] hub (see [`Messaging::producer`]).
struct MemoryProducer {
    hub: Arc<Hub>,
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn send(&self, topic: &str, payload: Bytes) -> Result<(), MessagingError> {
        if let Some(limit) = self.hub.max_message_bytes {
            if payload.len() > limit {
                return Err(MessagingError::TooLarge {
                    size: payload.len(),
                    limit,
                });
            }
        }
        let topic = self.hub.topic(topic);
        // Holding the groups lock while appending keeps one publish order across all groups.
        let groups = topic.groups.lock();
        for group in groups.values() {
            group.queue.lock().push_back(Message {
                payload: payload.clone(),
                redelivered: false,
            });
            group.notify.notify_waiters();
        }
        Ok(())
    }
}

/// A member of a consumer group (see [`Messaging::consumer`]).
struct MemoryConsumer {
    group: Arc<Group>,
    max_peek: usize,
    /// Deliveries not yet acknowledged, by delivery id (ids increase, so this is delivery order).
    unacked: BTreeMap<u64, Message>,
    next_id: u64,
}

impl MemoryConsumer {
    /// Takes up to `n` messages from the group queue without awaiting (so `peek` is cancel safe:
    /// nothing is taken unless it is returned).
    fn take(&mut self, n: usize) -> Vec<Delivery> {
        let mut queue = self.group.queue.lock();
        let n = n.min(queue.len());
        let mut out = Vec::with_capacity(n);
        for m in queue.drain(..n) {
            let id = self.next_id;
            self.next_id += 1;
            out.push(Delivery {
                id,
                payload: m.payload.clone(),
                redelivered: m.redelivered,
            });
            self.unacked.insert(id, m);
        }
        out
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    /// Waits up to `timeout` for messages. A consumer already holding `max_peek` unacknowledged
    /// deliveries gets nothing, after waiting out the timeout (so a feed loop does not spin).
    async fn peek(&mut self, timeout: Duration) -> Result<Vec<Delivery>, MessagingError> {
        let capacity = self.max_peek.saturating_sub(self.unacked.len());
        if capacity == 0 {
            tokio::time::sleep(timeout).await;
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let group = self.group.clone();
        loop {
            // Register interest before looking, so a publish between the look and the wait
            // still wakes us.
            let notified = group.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.take(capacity);
            if !got.is_empty() {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// Acknowledges a delivery. Acknowledging an id twice, or one this consumer never handed out,
    /// does nothing.
    async fn ack(&mut self, id: u64) -> Result<(), MessagingError> {
        self.unacked.remove(&id);
        Ok(())
    }

    fn set_max_peek(&mut self, max_peek: usize) {
        self.max_peek = max_peek;
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        if self.unacked.is_empty() {
            return;
        }
        let mut queue = self.group.queue.lock();
        for (_, mut m) in std::mem::take(&mut self.unacked).into_iter().rev() {
            m.redelivered = true;
            queue.push_front(m);
        }
        drop(queue);
        self.group.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let m = MemoryMessaging::new();
        whirl_spi::conformance::messaging::messaging(&m).await;
    }

    #[tokio::test]
    async fn redeliveries_go_to_the_front_in_order() {
        let m = MemoryMessaging::new();
        let mut a = m.consumer("t", "g", 2).await.unwrap();
        let p = m.producer();
        for i in 0..4u8 {
            p.send("t", Bytes::from(vec![i])).await.unwrap();
        }
        let got = a.peek(Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.len(), 2);
        drop(a);
        let mut b = m.consumer("t", "g", 10).await.unwrap();
        let got = b.peek(Duration::from_millis(10)).await.unwrap();
        let seen: Vec<(u8, bool)> = got.iter().map(|d| (d.payload[0], d.redelivered)).collect();
        assert_eq!(seen, [(0, true), (1, true), (2, false), (3, false)]);
    }

    #[tokio::test]
    async fn a_cancelled_peek_loses_nothing() {
        let m = MemoryMessaging::new();
        let mut c = m.consumer("t", "g", 10).await.unwrap();
        // A peek that times out under an outer timeout is dropped while waiting.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), c.peek(Duration::from_secs(5)))
                .await
                .is_err()
        );
        m.producer()
            .send("t", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let got = c.peek(Duration::from_millis(10)).await.unwrap();
        assert_eq!(
            got.len(),
            1,
            "the message published after the cancelled peek is delivered"
        );
    }

    #[tokio::test]
    async fn waiting_consumers_of_a_group_each_get_a_message() {
        let m = MemoryMessaging::new();
        let mut a = m.consumer("t", "g", 1).await.unwrap();
        let mut b = m.consumer("t", "g", 1).await.unwrap();
        let p = m.producer();
        let (ra, rb, _) = tokio::join!(
            a.peek(Duration::from_secs(5)),
            b.peek(Duration::from_secs(5)),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                p.send("t", Bytes::from_static(b"1")).await.unwrap();
                p.send("t", Bytes::from_static(b"2")).await.unwrap();
            }
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.len() + rb.len(),
            2,
            "both messages delivered, one each (max_peek 1)"
        );
        assert_eq!((ra.len(), rb.len()), (1, 1));
    }

    #[tokio::test]
    async fn too_large_is_refused() {
        let m = MemoryMessaging::with_config(&MemoryMessagingConfig {
            max_message_bytes: Some(4),
        });
        let err = m
            .producer()
            .send("t", Bytes::from_static(b"12345"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, MessagingError::TooLarge { size: 5, limit: 4 }),
            "{err}"
        );
        m.producer()
            .send("t", Bytes::from_static(b"1234"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn zero_max_peek_is_refused() {
        let m = MemoryMessaging::new();
        assert!(m.consumer("t", "g", 0).await.is_err());
    }

    /// Figures, printed and never asserted:
    /// `cargo test -p whirl-messaging-memory --release -- --ignored --nocapture messaging_bench`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: run explicitly with --release --ignored --nocapture"]
    async fn messaging_bench() {
        use std::time::Instant;
        let m = MemoryMessaging::new();
        let p = m.producer();
        let payload = Bytes::from(vec![7u8; 1024]);

        // Round trip: send, then a waiting consumer in another task receives and acks.
        let mut c = m.consumer("rt", "g", 1).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let receiver = tokio::spawn(async move {
            for _ in 0..10_000 {
                let d = c.peek(Duration::from_secs(5)).await.unwrap();
                c.ack(d[0].id).await.unwrap();
                tx.send(Instant::now()).unwrap();
            }
        });
        let mut lat = Vec::new();
        for _ in 0..10_000 {
            let t = Instant::now();
            p.send("rt", payload.clone()).await.unwrap();
            let got = rx.recv().await.unwrap();
            lat.push(got - t);
        }
        receiver.await.unwrap();
        lat.sort();
        println!(
            "memory messaging: send -> peek in another task: p50 {:?} p99 {:?}",
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );

        // Throughput: one producer, one consumer with max_peek 128.
        let mut c = m.consumer("tp", "g", 128).await.unwrap();
        let n = 200_000;
        let t = Instant::now();
        let consumer = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                for d in c.peek(Duration::from_secs(5)).await.unwrap() {
                    c.ack(d.id).await.unwrap();
                    got += 1;
                }
            }
        });
        for _ in 0..n {
            p.send("tp", payload.clone()).await.unwrap();
        }
        consumer.await.unwrap();
        println!(
            "memory messaging: {:.0} messages/s (1 KiB, one producer, one consumer)",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn config_rejects_unknown_keys() {
        let e = serde_json::from_str::<MemoryMessagingConfig>(r#"{"max_bytes": 3}"#);
        assert!(e.is_err());
    }
}
