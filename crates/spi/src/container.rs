//! The container SPI: a factory that creates isolated environments running an action runtime, and
//! the containers it creates. Factories own lifecycle only (create, pause, resume, destroy, logs);
//! the /init and /run protocol is spoken by the invoker through `whirl-runtime-client`, the same way
//! for every factory, at the container's [`Endpoint`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use whirl_model::manifest::RuntimeKind;
use whirl_model::Endpoint;

/// Everything a factory needs to create one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// A unique, sanitized name (`[A-Za-z0-9_.-]`), e.g. `wsk0_12_guest_hello`.
    pub name: String,
    /// The runtime kind (launcher, interpreter, default image).
    pub kind: RuntimeKind,
    /// A user-supplied image (blackbox actions); overrides the kind's image.
    pub image: Option<String>,
    /// Memory limit for the whole container, in MB.
    pub memory_mb: u64,
    /// Relative CPU weight (OpenWhisk: `max(1024 / (userMemory / memory), 2)`).
    pub cpu_shares: u64,
    /// Environment for the runtime process (e.g. `__OW_API_HOST`).
    pub env: Vec<(String, String)>,
    /// Extra factory-specific parameters from the log store (OpenWhisk's `containerParameters`,
    /// e.g. `--log-driver`), keyed by parameter name.
    pub parameters: BTreeMap<String, Vec<String>>,
}

/// How much a factory can hold; the container pool never exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactoryCapacity {
    /// Memory available to action containers, in MB.
    pub user_memory_mb: u64,
    /// Most containers alive at once (busy, idle, paused and prewarmed together).
    pub max_containers: usize,
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One line a container printed, with the time it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub time: SystemTime,
    pub stream: LogStream,
    pub message: String,
}

impl LogLine {
    /// OpenWhisk's activation-record format: `<time padded to 30> <stream>: <message>`.
    pub fn formatted(&self) -> String {
        format!(
            "{:<30} {}: {}",
            whirl_model::time::log_timestamp(self.time),
            self.stream.as_str(),
            self.message
        )
    }
}

/// What [`Container::logs`] read since the previous call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectedLogs {
    /// Lines in order, sentinels removed.
    pub lines: Vec<LogLine>,
    /// Output stopped at the byte limit; the rest of this activation's output was discarded.
    pub truncated: bool,
    /// Both sentinels were seen (false when not waited for, or when they never came).
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The platform could not provide the container (recorded as a whisk internal error).
    #[error("{0}")]
    Startup(String),
    /// The user's part is at fault, e.g. an image that cannot be pulled (a developer error).
    #[error("{0}")]
    UserStartup(String),
    /// The container ran out of memory and was killed.
    #[error("The action exhausted its memory and was aborted.")]
    MemoryExhausted,
    #[error("container operation failed: {0}")]
    Operation(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Creates containers. One factory serves one invoker.
#[async_trait]
pub trait ContainerFactory: Send + Sync + 'static {
    /// The configured type name (`process`, `docker`, ...).
    fn name(&self) -> &'static str;

    /// Prepares the factory and removes containers a previous run of this invoker left behind.
    async fn init(&self) -> Result<(), ContainerError>;

    /// What this factory can hold on this host.
    fn capacity(&self) -> FactoryCapacity;

    /// Creates and starts a container whose runtime will listen at its endpoint. Returns once the
    /// container is started; the runtime may still be booting (the first /init retries connecting).
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError>;

    /// Destroys every container this factory created (at shutdown). Must be safe to call twice.
    async fn cleanup(&self);
}

/// One running container.
#[async_trait]
pub trait Container: Send + Sync + 'static {
    /// A unique id within its factory.
    fn id(&self) -> &str;

    /// Where its action runtime listens.
    fn endpoint(&self) -> &Endpoint;

    /// Freezes every process in the container (no CPU use while idle).
    async fn suspend(&self) -> Result<(), ContainerError>;

    /// Thaws a suspended container.
    async fn resume(&self) -> Result<(), ContainerError>;

    /// Kills the container and frees its resources. Idempotent.
    async fn destroy(&self) -> Result<(), ContainerError>;

    /// Reads the output printed since the previous call, up to `limit_bytes` of message text. With
    /// `wait_for_sentinel`, waits (at most `timeout`) until the sentinel line has been seen on both
    /// stdout and stderr, which ends one activation's output.
    async fn logs(
        &self,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> Result<CollectedLogs, ContainerError>;

    /// Whether [`Container::activation_logs`] can tell apart the output of activations that run
    /// at once in this container (its output reader understands [`whirl_model::logtag`] tags).
    fn attributes_logs(&self) -> bool {
        false
    }

    /// Reads the output of activation `activation_id` alone, for a container that runs several
    /// activations at once: the lines tagged with its id, up to `limit_bytes` of message text.
    /// With `wait_for_sentinel`, waits (at most `timeout`) for its tagged sentinels on both
    /// streams. Untagged output (written outside any activation) belongs to no activation and is
    /// discarded. Containers that cannot attribute output answer [`ContainerError::Operation`].
    async fn activation_logs(
        &self,
        activation_id: &str,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> Result<CollectedLogs, ContainerError> {
        let _ = (activation_id, limit_bytes, wait_for_sentinel, timeout);
        Err(ContainerError::Operation(
            "this container cannot attribute output to activations".into(),
        ))
    }

    /// Whether the container was killed for exceeding its memory limit (checked after a failure).
    async fn out_of_memory(&self) -> bool {
        false
    }
}
