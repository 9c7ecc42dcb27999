//! One Docker container and the task that reads its output.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::{LogOutput, RemoveContainerOptions};
use bollard::Docker;
use futures::{Stream, StreamExt};
use whirl_model::Endpoint;
use whirl_spi::logbuffer::{LogBuffer, MAX_LINE};
use whirl_spi::{CollectedLogs, Container, ContainerError};

/// The containers a factory created and has not destroyed yet, by name.
pub(crate) type Registry = Mutex<HashMap<String, Arc<DockerContainer>>>;

/// A container of the `docker` factory.
pub struct DockerContainer {
    /// The container's name (what [`Container::id`] returns, and what log drivers tag lines with).
    name: String,
    /// Docker's full id.
    docker_id: String,
    endpoint: Endpoint,
    docker: Docker,
    /// `None` when the output goes to a log driver instead of the factory.
    logs: Option<Arc<LogBuffer>>,
    destroyed: tokio::sync::Mutex<bool>,
    oom_at_destroy: OnceLock<bool>,
    registry: Weak<Registry>,
}

impl std::fmt::Debug for DockerContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerContainer")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Parts {
    pub name: String,
    pub docker_id: String,
    pub endpoint: Endpoint,
    pub docker: Docker,
    pub logs: Option<Arc<LogBuffer>>,
    pub registry: Weak<Registry>,
}

fn op_error(what: &str, name: &str, e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Operation(format!("cannot {what} container {name}: {e}"))
}

impl DockerContainer {
    pub(crate) fn new(parts: Parts) -> Arc<Self> {
        Arc::new(Self {
            name: parts.name,
            docker_id: parts.docker_id,
            endpoint: parts.endpoint,
            docker: parts.docker,
            logs: parts.logs,
            destroyed: tokio::sync::Mutex::new(false),
            oom_at_destroy: OnceLock::new(),
            registry: parts.registry,
        })
    }

    /// Docker's full id of the container.
    pub fn docker_id(&self) -> &str {
        &self.docker_id
    }

    /// Whether the factory reads this container's output (no log driver takes it elsewhere).
    pub fn collects_output(&self) -> bool {
        self.logs.is_some()
    }

    /// The kernel's count of OOM kills in the container's memory cgroup, where it can be read
    /// (cgroup v1 or v2 with Docker's cgroupfs or systemd layout).
    fn cgroup_oom_kills(&self) -> Option<u64> {
        let id = &self.docker_id;
        let candidates: [(PathBuf, &str); 4] = [
            (
                format!("/sys/fs/cgroup/memory/docker/{id}/memory.oom_control").into(),
                "oom_kill ",
            ),
            (
                format!("/sys/fs/cgroup/docker/{id}/memory.events").into(),
                "oom_kill ",
            ),
            (
                format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.events").into(),
                "oom_kill ",
            ),
            (
                format!("/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.oom_control")
                    .into(),
                "oom_kill ",
            ),
        ];
        candidates.iter().find_map(|(path, key)| {
            let text = std::fs::read_to_string(path).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|n| n.trim().parse().ok())
        })
    }

    async fn oom_now(&self) -> bool {
        if self.cgroup_oom_kills().is_some_and(|n| n > 0) {
            return true;
        }
        match self.docker.inspect_container(&self.docker_id, None).await {
            Ok(info) => info.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn check_alive(&self) -> Result<(), ContainerError> {
        if *self.destroyed.lock().await {
            return Err(ContainerError::Operation(format!(
                "container {} is destroyed",
                self.name
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Container for DockerContainer {
    fn id(&self) -> &str {
        &self.name
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        self.check_alive().await?;
        self.docker
            .pause_container(&self.docker_id)
            .await
            .map_err(|e| op_error("pause", &self.name, e))
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        self.check_alive().await?;
        self.docker
            .unpause_container(&self.docker_id)
            .await
            .map_err(|e| op_error("unpause", &self.name, e))
    }

    async fn destroy(&self) -> Result<(), ContainerError> {
        let mut destroyed = self.destroyed.lock().await;
        if *destroyed {
            return Ok(());
        }
        let _ = self.oom_at_destroy.set(self.oom_now().await);
        let removed = self
            .docker
            .remove_container(
                &self.docker_id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        match removed {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(op_error("remove", &self.name, e)),
        }
        if let Some(registry) = self.registry.upgrade() {
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.name);
        }
        *destroyed = true;
        Ok(())
    }

    async fn logs(
        &self,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> Result<CollectedLogs, ContainerError> {
        match &self.logs {
            Some(buf) => Ok(buf.collect(limit_bytes, wait_for_sentinel, timeout).await),
            // The output goes to a log driver: there is nothing here to read.
            None => Ok(CollectedLogs::default()),
        }
    }

    fn attributes_logs(&self) -> bool {
        true
    }

    async fn activation_logs(
        &self,
        activation_id: &str,
        limit_bytes: usize,
        wait_for_sentinel: bool,
        timeout: Duration,
    ) -> Result<CollectedLogs, ContainerError> {
        match &self.logs {
            Some(buf) => Ok(buf
                .collect_activation(activation_id, limit_bytes, wait_for_sentinel, timeout)
                .await),
            None => Ok(CollectedLogs::default()),
        }
    }

    async fn out_of_memory(&self) -> bool {
        match self.oom_at_destroy.get() {
            Some(oom) => *oom,
            None => self.oom_now().await,
        }
    }
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Reads an attached container's multiplexed output into `buf`, one line at a time per stream
/// (lines longer than [`MAX_LINE`] are split, as Docker's own log drivers do). `keep` is held
/// until the output ends (the attach connection's write half).
pub(crate) fn spawn_pump<K: Send + 'static>(mut output: Output, keep: K, buf: Arc<LogBuffer>) {
    tokio::spawn(async move {
        let _keep = keep;
        let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        while let Some(Ok(chunk)) = output.next().await {
            let (s, bytes) = match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => (0, message),
                LogOutput::StdErr { message } => (1, message),
                LogOutput::StdIn { .. } => continue,
            };
            let p = &mut pending[s];
            p.extend_from_slice(&bytes);
            let mut start = 0;
            while let Some(i) = p[start..].iter().position(|&b| b == b'\n') {
                let line = &p[start..start + i];
                buf.push(s, String::from_utf8_lossy(line).into_owned());
                start += i + 1;
            }
            p.drain(..start);
            while p.len() as u64 >= MAX_LINE {
                let rest = p.split_off(MAX_LINE as usize);
                buf.push(s, String::from_utf8_lossy(p).into_owned());
                *p = rest;
            }
        }
        for (s, p) in pending.iter().enumerate() {
            if !p.is_empty() {
                buf.push(s, String::from_utf8_lossy(p).into_owned());
            }
            buf.end(s);
        }
    });
}
