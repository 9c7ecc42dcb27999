//! Entity cache invalidation across controllers. Each controller caches resolved actions; when
//! one writes or deletes an action or a package it tells the others on the bus
//! (`cacheInvalidation`, [`EntityChanged`]) and they drop the entry (or every packaged entry),
//! so an update made through one controller is what the next invoke through any other runs,
//! without waiting for the cache's TTL. (OpenWhisk's controllers do the same over Kafka.)
//!
//! A message that is lost (bus down) leaves at most the TTL of staleness; a publish failure is
//! logged and does not fail the write that caused it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use whirl_model::message::{EntityChanged, CACHE_INVALIDATION_TOPIC};
use whirl_spi::{Messaging, MessagingError, Producer};

use crate::Inner;

/// How long invalidations stay on the bus for a controller that is away (then its cache TTL
/// covers it).
const RETENTION: Duration = Duration::from_secs(600);

pub(crate) struct Publisher {
    producer: Arc<dyn Producer>,
}

impl Inner {
    /// Tells the other controllers that `namespace/name` (or, with `packaged`, any packaged
    /// action) changed.
    pub(crate) async fn entity_changed(&self, namespace: &str, name: &str, packaged: bool) {
        let Some(p) = self.invalidations.get() else {
            return;
        };
        let msg = EntityChanged {
            from: self.config.controller_id.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            packaged,
        };
        let body = Bytes::from(serde_json::to_vec(&msg).unwrap_or_default());
        if let Err(e) = p.producer.send(CACHE_INVALIDATION_TOPIC, body).await {
            tracing::warn!(error = %e, "could not tell other controllers about an entity change");
        }
    }

    fn apply(&self, msg: &EntityChanged) {
        if msg.from == self.config.controller_id {
            return;
        }
        self.actions.begin_write();
        if msg.packaged {
            self.actions.remove_packaged();
        }
        if !msg.name.is_empty() {
            self.actions.remove(&msg.namespace, &msg.name);
        }
        tracing::debug!(namespace = %msg.namespace, name = %msg.name, packaged = msg.packaged, "cache entry invalidated by another controller");
    }
}

/// Subscribes `inner` to other controllers' changes and lets it publish its own.
pub(crate) async fn share(inner: Arc<Inner>, m: Arc<dyn Messaging>) -> Result<(), MessagingError> {
    m.ensure_transient_topic(CACHE_INVALIDATION_TOPIC, RETENTION)
        .await?;
    let group = format!("cache-{}", inner.config.controller_id);
    let mut consumer = m.consumer(CACHE_INVALIDATION_TOPIC, &group, 256).await?;
    let _ = inner.invalidations.set(Publisher {
        producer: m.producer(),
    });
    let weak = Arc::downgrade(&inner);
    drop(inner);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let batch = consumer.peek(Duration::from_secs(1)).await;
            let Some(inner) = weak.upgrade() else { return };
            match batch {
                Ok(batch) => {
                    backoff = Duration::from_millis(100);
                    for d in batch {
                        if let Ok(msg) = serde_json::from_slice::<EntityChanged>(&d.payload) {
                            inner.apply(&msg);
                        }
                        let _ = consumer.ack(d.id).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull cache invalidations; retrying");
                    drop(inner);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    });
    Ok(())
}
