//! One container: the runtime process, its cgroups, its private directory and its output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{watch, Notify};
use whirl_model::Endpoint;
use whirl_spi::{CollectedLogs, Container, ContainerError};

use crate::cgroup::ContainerCgroup;
use whirl_spi::logbuffer::LogBuffer;

/// The containers a factory created and has not destroyed yet.
pub(crate) type Registry = Mutex<HashMap<String, Arc<ProcessContainer>>>;

/// How long `destroy` waits for the killed process to be reaped.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long the outer process gets to exit on its own once its child was killed.
const CHILD_GRACE: Duration = Duration::from_millis(200);

/// A container of the `process` factory: Whirl's runtime in a sandboxed child process.
pub struct ProcessContainer {
    id: String,
    endpoint: Endpoint,
    dir: PathBuf,
    pid: u32,
    cgroup: Option<ContainerCgroup>,
    logs: Arc<LogBuffer>,
    /// `Some(status)` once the process was reaped (`Some(None)` if waiting for it failed).
    exit: watch::Receiver<Option<Option<ExitStatus>>>,
    /// Asks the reaper task to kill the process (it owns the `Child`, so it alone may signal the
    /// pid without racing the reaping).
    kill: Arc<Notify>,
    /// Held while destroying; `true` once destroyed.
    destroyed: tokio::sync::Mutex<bool>,
    /// The OOM verdict read just before the cgroup is removed.
    oom_at_destroy: OnceLock<bool>,
    registry: Weak<Registry>,
    isolated: bool,
}

impl std::fmt::Debug for ProcessContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessContainer")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// What the factory hands over to a new container.
pub(crate) struct Parts {
    pub id: String,
    pub endpoint: Endpoint,
    pub dir: PathBuf,
    pub cgroup: Option<ContainerCgroup>,
    pub logs: Arc<LogBuffer>,
    pub registry: Weak<Registry>,
    /// The runtime runs in its own pid namespace (behind an outer process that waits for it).
    pub isolated: bool,
}

impl ProcessContainer {
    /// Takes ownership of a freshly spawned runtime process: starts the task that reaps it (so it
    /// never lingers as a zombie, and its exit status is remembered).
    pub(crate) fn start(parts: Parts, mut child: Child) -> Arc<Self> {
        let pid = child.id().unwrap_or(0);
        let kill = Arc::new(Notify::new());
        let (exit_tx, exit) = watch::channel(None);
        let kill_rx = kill.clone();
        let id = parts.id.clone();
        tokio::spawn(async move {
            // Spawned in its own process group: the group id is the pid.
            let group = Pid::from_raw(pid as i32);
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status.ok(),
                    _ = kill_rx.notified() => {
                        // The child is not reaped yet, so its pid (and group) are still ours.
                        let _ = killpg(group, Signal::SIGKILL);
                        let _ = child.start_kill();
                    }
                }
            };
            // Without a pid namespace, processes the runtime started outlive it in its group.
            let _ = killpg(group, Signal::SIGKILL);
            tracing::debug!(container = %id, ?status, "container process exited");
            exit_tx.send_replace(Some(status));
        });
        Arc::new(Self {
            id: parts.id,
            endpoint: parts.endpoint,
            dir: parts.dir,
            pid,
            cgroup: parts.cgroup,
            logs: parts.logs,
            exit,
            kill,
            destroyed: tokio::sync::Mutex::new(false),
            oom_at_destroy: OnceLock::new(),
            registry: parts.registry,
            isolated: parts.isolated,
        })
    }

    /// The host pid of the runtime process the factory started (outside the sandbox's pid
    /// namespace; the runtime itself is pid 1 inside it).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How the runtime process ended, once it has (`None` while it runs).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit.borrow().flatten()
    }

    /// Whether the runtime process has ended (and was reaped).
    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// The container's private directory on the host (socket, work directory, `/tmp`).
    pub fn private_dir(&self) -> &Path {
        &self.dir
    }

    /// The container's cgroup directories (empty without cgroups).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroup
            .as_ref()
            .map(ContainerCgroup::dirs)
            .unwrap_or_default()
    }

    async fn check_alive(&self) -> Result<(), ContainerError> {
        if *self.destroyed.lock().await {
            return Err(ContainerError::Operation(format!(
                "container {} is destroyed",
                self.id
            )));
        }
        Ok(())
    }

    /// SIGSTOP/SIGCONT to the process group: the fallback without a freezer.
    fn signal_group(&self, signal: Signal) -> Result<(), ContainerError> {
        if self.has_exited() {
            return Err(ContainerError::Operation(format!(
                "container {} has exited",
                self.id
            )));
        }
        killpg(Pid::from_raw(self.pid as i32), signal).map_err(|e| {
            ContainerError::Operation(format!(
                "cannot send {signal} to container {}: {e}",
                self.id
            ))
        })
    }
}

#[async_trait]
impl Container for ProcessContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        self.check_alive().await?;
        match &self.cgroup {
            Some(cg) if cg.can_freeze() => cg.set_frozen(true).await.map_err(|e| {
                ContainerError::Operation(format!("cannot freeze container {}: {e}", self.id))
            }),
            _ => self.signal_group(Signal::SIGSTOP),
        }
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        self.check_alive().await?;
        match &self.cgroup {
            Some(cg) if cg.can_freeze() => cg.set_frozen(false).await.map_err(|e| {
                ContainerError::Operation(format!("cannot thaw container {}: {e}", self.id))
            }),
            _ => self.signal_group(Signal::SIGCONT),
        }
    }

    async fn destroy(&self) -> Result<(), ContainerError> {
        let mut destroyed = self.destroyed.lock().await;
        if *destroyed {
            return Ok(());
        }
        if let Some(cg) = &self.cgroup {
            let _ = self.oom_at_destroy.set(cg.oom_killed());
            // Every process in the container, wherever it is in the tree, inner ones first.
            cg.kill_all(self.isolated).await;
        } else if self.isolated && !self.has_exited() {
            // No cgroup to enumerate: the sandbox's init is the outer process's child. Killing it
            // first lets the outer process reap it and exit, so no zombie is orphaned.
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
                    .unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(child), Signal::SIGKILL);
            }
            let mut exit = self.exit.clone();
            let _ = tokio::time::timeout(CHILD_GRACE, exit.wait_for(Option::is_some)).await;
        }
        // Whatever is left, and the process group.
        self.kill.notify_one();
        let mut exit = self.exit.clone();
        if tokio::time::timeout(EXIT_WAIT, exit.wait_for(Option::is_some))
            .await
            .is_err()
        {
            tracing::warn!(container = %self.id, pid = self.pid, "container process did not exit after SIGKILL");
        }
        if let Some(cg) = &self.cgroup {
            cg.remove().await;
        }
        let dir = self.dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
        if let Ok(Err(e)) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(container = %self.id, error = %e, "cannot remove the container's private directory");
            }
        }
        if let Some(registry) = self.registry.upgrade() {
            registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
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
        Ok(self
            .logs
            .collect(limit_bytes, wait_for_sentinel, timeout)
            .await)
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
        Ok(self
            .logs
            .collect_activation(activation_id, limit_bytes, wait_for_sentinel, timeout)
            .await)
    }

    async fn out_of_memory(&self) -> bool {
        match (self.oom_at_destroy.get(), &self.cgroup) {
            (Some(oom), _) => *oom,
            (None, Some(cg)) => cg.oom_killed(),
            (None, None) => false,
        }
    }
}
