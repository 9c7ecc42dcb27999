//! The log-store SPI: how an activation's log lines are collected and where the REST API reads
//! them back. A store may collect in band (the invoker reads the container's output after each run)
//! or declare collection out of band (containers log straight into an external system; the invoker
//! skips collection entirely and `fetch` asks that system).

use std::collections::BTreeMap;

use async_trait::async_trait;
use whirl_model::{Action, Activation};

use crate::container::Container;

/// What a log store gets to collect one activation's logs.
#[derive(Debug)]
pub struct LogContext<'a> {
    /// The finished activation (its `logs` still empty).
    pub activation: &'a Activation,
    pub action: &'a Action,
    /// The action's log limit in bytes (0 means: collect nothing).
    pub limit_bytes: usize,
    /// The runtime prints sentinel lines after each activation.
    pub sentinelled: bool,
    /// The activation ended in a developer error (the sentinel may never come).
    pub developer_error: bool,
    /// The container may have run other activations at the same time (the action's effective
    /// concurrency is above 1): only lines tagged with this activation's id are its own
    /// ([`Container::activation_logs`]).
    pub concurrent: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Collection failed part way; the lines read so far are kept.
    #[error("log collection failed: {message}")]
    Collecting {
        message: String,
        partial: Vec<String>,
    },
    #[error("logs are not available: {0}")]
    Unavailable(String),
    #[error("log store error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// The configured type name.
    fn name(&self) -> &'static str;

    /// Extra container-creation parameters this store needs (e.g. a log driver and its options).
    fn container_parameters(&self) -> BTreeMap<String, Vec<String>> {
        BTreeMap::new()
    }

    /// False when logs flow out of band: the invoker then never calls [`LogStore::collect`], and
    /// annotates each record with `container`: `{"id": <Container::id>, "run": <n>}`, the
    /// container the activation ran in and how many activations reached that container before
    /// it, so that [`LogStore::fetch`] can find the activation's lines in the external system
    /// (the n-th sentinel-framed part of the container's output).
    fn collects_in_band(&self) -> bool {
        true
    }

    /// Collects one activation's log lines from its container, formatted for the activation record.
    async fn collect(
        &self,
        ctx: &LogContext<'_>,
        container: &dyn Container,
    ) -> Result<Vec<String>, LogError>;

    /// The log lines of a stored activation, for `GET .../activations/{id}/logs`.
    async fn fetch(&self, activation: &Activation) -> Result<Vec<String>, LogError>;
}
