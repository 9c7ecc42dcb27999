//! The `activation` log store, Whirl's default (OpenWhisk's DockerToActivationLogStore): after each
//! run the invoker reads the container's output up to the sentinel lines, formats each line as
//! OpenWhisk does (`<time> <stream>: <message>`), enforces the action's log limit with OpenWhisk's
//! truncation message, and keeps the lines in the activation record. `fetch` returns them from the
//! record.
//!
//! For an activation that ran beside others in one container (`LogContext::concurrent`), it
//! collects only the lines tagged with the activation's id (`Container::activation_logs`); where
//! the container cannot attribute lines, the record holds one line saying so
//! ([`messages::LOGS_NOT_ATTRIBUTED`]) instead of a neighbour's output.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use whirl_model::error::messages;
use whirl_model::Activation;
use whirl_spi::{Container, LogContext, LogError, LogLine, LogStore, LogStream};

/// Settings of the `activation` log store (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationLogStoreConfig {}

/// Collects logs into the activation record.
#[derive(Debug, Default)]
pub struct ActivationLogStore;

/// How long to wait for the sentinels of a developer error (the runtime may have died, so they may
/// never come; OpenWhisk does not wait at all, we give in-flight output a moment).
const DEV_ERROR_WAIT: Duration = Duration::from_millis(100);

fn stderr_line(message: &str) -> String {
    LogLine {
        time: SystemTime::now(),
        stream: LogStream::Stderr,
        message: message.to_string(),
    }
    .formatted()
}

/// Reads one activation's output from a container and formats it for the record, as every
/// in-band log store does (shared by the `file` store later).
pub async fn read_activation_logs(
    ctx: &LogContext<'_>,
    container: &dyn Container,
) -> Result<Vec<String>, LogError> {
    let limit_mb = (ctx.limit_bytes >> 20).max(5) as u64;
    let (wait, timeout) = if ctx.developer_error {
        (ctx.sentinelled, DEV_ERROR_WAIT)
    } else {
        (ctx.sentinelled, Duration::from_secs(limit_mb * 2))
    };
    let collected = if ctx.concurrent {
        // Several activations shared the container: only the lines tagged with this one's id
        // are its own.
        if !container.attributes_logs() {
            return Ok(vec![stderr_line(messages::LOGS_NOT_ATTRIBUTED)]);
        }
        let id = ctx.activation.activation_id.to_string();
        container
            .activation_logs(&id, ctx.limit_bytes, wait, timeout)
            .await
    } else {
        container.logs(ctx.limit_bytes, wait, timeout).await
    };
    let collected = collected.map_err(|e| LogError::Collecting {
        message: e.to_string(),
        partial: Vec::new(),
    })?;
    if ctx.limit_bytes == 0 {
        // A limit of 0 collects nothing: the output was read to its end above only so that it
        // cannot reach the next activation's logs.
        return Ok(Vec::new());
    }
    let mut lines: Vec<String> = collected.lines.iter().map(LogLine::formatted).collect();
    if collected.truncated {
        lines.push(stderr_line(&messages::logs_truncated(ctx.limit_bytes)));
    }
    if ctx.developer_error {
        lines.push(stderr_line(messages::DEV_ERROR_LOGS_WARNING));
    } else if wait && !collected.complete {
        lines.push(stderr_line(messages::LOG_COLLECTION_ISSUE));
    }
    Ok(lines)
}

#[async_trait]
impl LogStore for ActivationLogStore {
    fn name(&self) -> &'static str {
        "activation"
    }

    async fn collect(
        &self,
        ctx: &LogContext<'_>,
        container: &dyn Container,
    ) -> Result<Vec<String>, LogError> {
        read_activation_logs(ctx, container).await
    }

    async fn fetch(&self, activation: &Activation) -> Result<Vec<String>, LogError> {
        Ok(activation.logs.clone())
    }
}
