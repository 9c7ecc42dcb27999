//! The messaging SPI: topics carrying bytes between controllers and invokers, with consumer groups
//! and explicit acknowledgement so a consumer holds at most `max_peek` unacknowledged messages
//! (back-pressure: an invoker pulls no more than it can run).
//!
//! Semantics every implementation provides (checked by the conformance suite):
//! - consumers in the same group on a topic share its messages (each message goes to one of them);
//!   different groups each see every message published after they subscribed;
//! - a message is delivered to a consumer at most once while it is unacknowledged; if the consumer is
//!   dropped, its unacknowledged messages go to another consumer of the group, marked `redelivered`;
//! - per topic and group, messages are delivered in publish order (redeliveries aside).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("messaging backend unavailable: {0}")]
    Unavailable(String),
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("messaging error: {0}")]
    Other(String),
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Identifies the delivery for [`Consumer::ack`]; unique per consumer.
    pub id: u64,
    pub payload: Bytes,
    /// The message was delivered before to a consumer that did not acknowledge it.
    pub redelivered: bool,
}

#[async_trait]
pub trait Messaging: Send + Sync + 'static {
    /// The configured type name.
    fn name(&self) -> &'static str;

    /// Creates a topic if it does not exist.
    async fn ensure_topic(&self, topic: &str) -> Result<(), MessagingError>;

    /// Creates a topic whose messages are dropped once older than `max_age`, acknowledged or
    /// not: news that is worthless when old (health pings, cache invalidations), so a group whose
    /// members are gone for good does not keep them forever. Implementations without persistence
    /// may treat it as [`Messaging::ensure_topic`].
    async fn ensure_transient_topic(
        &self,
        topic: &str,
        max_age: Duration,
    ) -> Result<(), MessagingError> {
        let _ = max_age;
        self.ensure_topic(topic).await
    }

    /// A producer; cheap to call, producers may be shared.
    fn producer(&self) -> std::sync::Arc<dyn Producer>;

    /// Subscribes to `topic` as a member of `group`.
    async fn consumer(
        &self,
        topic: &str,
        group: &str,
        max_peek: usize,
    ) -> Result<Box<dyn Consumer>, MessagingError>;
}

#[async_trait]
pub trait Producer: Send + Sync + 'static {
    /// Publishes one message; returns once the backend has accepted it.
    async fn send(&self, topic: &str, payload: Bytes) -> Result<(), MessagingError>;
}

#[async_trait]
pub trait Consumer: Send + 'static {
    /// Waits up to `timeout` for messages and returns those available, never more than
    /// `max_peek` minus the number still unacknowledged (possibly none).
    async fn peek(&mut self, timeout: Duration) -> Result<Vec<Delivery>, MessagingError>;

    /// Acknowledges a delivery: it will not be delivered again.
    async fn ack(&mut self, id: u64) -> Result<(), MessagingError>;

    /// Changes how many unacknowledged messages this consumer may hold (at least 0). A consumer
    /// that acknowledges a message when it *starts* working on it (an invoker) lowers its window
    /// by the work it has in progress, so it still pulls no more than it can run. Messages
    /// already requested from the backend before the change may still arrive.
    fn set_max_peek(&mut self, max_peek: usize);
}
