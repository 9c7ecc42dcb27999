//! The `process` container factory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;
use whirl_model::manifest::Launcher;
use whirl_model::Endpoint;
use whirl_spi::{Container, ContainerError, ContainerFactory, ContainerSpec, FactoryCapacity};

use crate::cgroup::{Cgroups, ContainerCgroup, Controller, Limits};
use crate::config::{ProcessFactoryConfig, SandboxMode};
use crate::container::{Parts, ProcessContainer, Registry};
use crate::sandbox::{
    self, Identity, Isolation, Mount, SandboxSpec, PRIVATE_DIR_INSIDE, SANDBOX_GID, SANDBOX_UID,
};
use whirl_spi::logbuffer::{spawn_reader, LogBuffer};

/// Name of the (empty) directory under `root_dir` each sandbox mounts its new root on.
const NEW_ROOT: &str = ".newroot";
/// The runtime's socket, in the container's private directory.
const SOCKET: &str = "runtime.sock";
/// Longest container directory name (keeps the socket path within the 108 bytes of `sun_path`).
const MAX_ID: usize = 40;
/// The search path inside containers, also used to find interpreters (system ones first: a
/// version manager's shims on the invoker's PATH do not work in a sandbox).
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The `process` [`ContainerFactory`]: each container is Whirl's action runtime, started as a
/// sandboxed child process of the invoker (see the crate documentation).
pub struct ProcessFactory {
    config: ProcessFactoryConfig,
    prepared: OnceCell<Prepared>,
    registry: Arc<Registry>,
    seq: AtomicU64,
    /// Interpreter command → (absolute path, prefix to bind when outside the read-only paths).
    interpreters: Mutex<HashMap<String, (PathBuf, Option<PathBuf>)>>,
}

impl std::fmt::Debug for ProcessFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFactory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the factory found out about the machine, once.
struct Prepared {
    /// `None` with `sandbox = "off"`.
    cgroups: Option<Cgroups>,
    /// New namespaces and root (else host paths are used).
    isolation: bool,
    /// Switch to the sandbox identity.
    set_user: bool,
    /// The runtime executable.
    program: PathBuf,
    /// Directories bound read-only (to decide whether a path needs a bind of its own).
    readonly_dirs: Vec<PathBuf>,
    /// Mounts every container gets (system directories, the runtime executable).
    base_mounts: Vec<Mount>,
    /// What the sandbox lacks, and whether `sandbox = "required"` insists on it.
    missing: Vec<(String, bool)>,
}

fn startup(msg: impl Into<String>) -> ContainerError {
    ContainerError::Startup(msg.into())
}

impl ProcessFactory {
    /// A factory with this configuration. Nothing is touched until [`ContainerFactory::init`] (or
    /// the first `create`).
    pub fn new(config: ProcessFactoryConfig) -> Result<Self, ContainerError> {
        config.validate().map_err(startup)?;
        Ok(Self {
            config,
            prepared: OnceCell::new(),
            registry: Arc::new(Mutex::new(HashMap::new())),
            seq: AtomicU64::new(0),
            interpreters: Mutex::new(HashMap::new()),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &ProcessFactoryConfig {
        &self.config
    }

    /// What the sandbox lacks on this machine, in words (empty when complete, and with
    /// `sandbox = "off"`); probes the machine on first use.
    pub async fn missing_isolation(&self) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .prepared()
            .await?
            .missing
            .iter()
            .map(|(what, _)| what.clone())
            .collect())
    }

    async fn prepared(&self) -> Result<&Prepared, ContainerError> {
        self.prepared
            .get_or_try_init(|| async {
                let config = self.config.clone();
                let prepared = tokio::task::spawn_blocking(move || probe(&config))
                    .await
                    .map_err(|e| startup(format!("probe failed: {e}")))??;
                let missing = &prepared.missing;
                let fatal: Vec<&String> = missing
                    .iter()
                    .filter(|(_, required)| *required)
                    .map(|(what, _)| what)
                    .collect();
                if self.config.sandbox == SandboxMode::Required && !fatal.is_empty() {
                    return Err(startup(format!(
                        "process factory: sandbox = \"required\" but this machine lacks: {}",
                        fatal
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )));
                }
                if !missing.is_empty() {
                    tracing::warn!(
                        "PROCESS FACTORY SANDBOX INCOMPLETE: containers run WITHOUT: {}",
                        missing
                            .iter()
                            .map(|(w, _)| w.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
                Ok(prepared)
            })
            .await
    }

    /// Creates a container and returns it with its concrete type (what
    /// [`ContainerFactory::create`] does, for callers that want [`ProcessContainer`]'s extras).
    pub async fn create_process(
        &self,
        spec: ContainerSpec,
    ) -> Result<Arc<ProcessContainer>, ContainerError> {
        if let Some(image) = &spec.image {
            return Err(ContainerError::UserStartup(format!(
                "The process container factory cannot run container images ('{image}'); use a docker factory."
            )));
        }
        let p = self.prepared().await?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = container_id(seq, &spec.name);
        let dir = self.config.root_dir.join(&id);
        let socket = dir.join(SOCKET);
        if socket.as_os_str().len() >= 108 {
            return Err(startup(format!(
                "process factory: socket path {} is too long for a unix socket; use a shorter root_dir",
                socket.display()
            )));
        }
        let interpreter = match spec.kind.launcher {
            Launcher::Native => None,
            Launcher::Python => {
                Some(self.interpreter(spec.kind.command.as_deref().unwrap_or("python3"))?)
            }
            Launcher::Node => {
                Some(self.interpreter(spec.kind.command.as_deref().unwrap_or("node"))?)
            }
        };

        make_private_dir(&dir, p.set_user)?;
        let cgroup = match &p.cgroups {
            Some(cgroups) => {
                let limits = Limits {
                    memory_bytes: spec.memory_mb << 20,
                    pids: self.config.pids_limit,
                    cpu_shares: spec.cpu_shares,
                };
                match cgroups.create(&id, limits) {
                    Ok(cg) => Some(cg),
                    Err(e) => {
                        let _ = fs::remove_dir_all(&dir);
                        return Err(startup(format!(
                            "process factory: cannot create cgroups for {id}: {e}"
                        )));
                    }
                }
            }
            None => None,
        };

        let mut child =
            match self.spawn_runtime(p, &spec, &dir, cgroup.as_ref(), interpreter.as_ref()) {
                Ok(child) => child,
                Err(e) => {
                    if let Some(cg) = &cgroup {
                        cg.remove().await;
                    }
                    let _ = fs::remove_dir_all(&dir);
                    return Err(e);
                }
            };
        let logs = LogBuffer::new(self.config.log_buffer_bytes);
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, 0, logs.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, 1, logs.clone());
        }
        let container = ProcessContainer::start(
            Parts {
                id: id.clone(),
                endpoint: Endpoint::Unix(socket),
                dir,
                cgroup,
                logs,
                registry: Arc::downgrade(&self.registry),
                isolated: p.isolation,
            },
            child,
        );
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, container.clone());
        Ok(container)
    }

    /// Spawns the runtime for a container whose directory and cgroups exist.
    fn spawn_runtime(
        &self,
        p: &Prepared,
        spec: &ContainerSpec,
        dir: &Path,
        cgroup: Option<&ContainerCgroup>,
        interpreter: Option<&(PathBuf, Option<PathBuf>)>,
    ) -> Result<tokio::process::Child, ContainerError> {
        // Paths as the runtime sees them.
        let (seen_dir, seen_tmp) = if p.isolation {
            (PathBuf::from(PRIVATE_DIR_INSIDE), PathBuf::from("/tmp"))
        } else {
            (dir.to_path_buf(), dir.join("tmp"))
        };
        let mut cmd = tokio::process::Command::new(&p.program);
        cmd.args(&self.config.runtime_command[1..]);
        if self.config.sandbox != SandboxMode::Off {
            let mut mounts = p.base_mounts.clone();
            if let Some((_, Some(prefix))) = interpreter {
                mounts.push(Mount::Bind {
                    source: prefix.clone(),
                    target: prefix.clone(),
                    writable: false,
                });
            }
            mounts.push(Mount::Bind {
                source: dir.to_path_buf(),
                target: seen_dir.clone(),
                writable: true,
            });
            mounts.push(Mount::Bind {
                source: dir.join("tmp"),
                target: seen_tmp.clone(),
                writable: true,
            });
            let sandbox = SandboxSpec {
                strict: self.config.sandbox == SandboxMode::Required,
                cgroups: cgroup.map(|c| c.procs_files()).unwrap_or_default(),
                isolation: p.isolation.then(|| Isolation {
                    hostname: sandbox::hostname_for(&spec.name),
                    new_root: self.config.root_dir.join(NEW_ROOT),
                    mounts,
                }),
                nofile: Some(self.config.nofile),
                user: p.set_user.then_some(Identity {
                    uid: SANDBOX_UID,
                    gid: SANDBOX_GID,
                }),
                no_new_privs: true,
            };
            let json = serde_json::to_string(&sandbox)
                .map_err(|e| startup(format!("process factory: sandbox spec: {e}")))?;
            cmd.arg("--sandbox").arg(json);
        }
        let mut listen = OsString::from("unix:");
        listen.push(seen_dir.join(SOCKET));
        cmd.arg("--listen")
            .arg(listen)
            .arg("--launcher")
            .arg(launcher_name(spec.kind.launcher));
        if let Some((path, _)) = interpreter {
            cmd.arg("--command").arg(path);
        }
        cmd.arg("--work-dir").arg(seen_dir.join("work"));
        // Nothing of the invoker's environment (it may hold secrets) reaches actions.
        cmd.env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOME", &seen_tmp)
            .env("LANG", "C.UTF-8")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        // The container dies with the invoker, even when the invoker is killed outright: the
        // kernel sends SIGKILL to the child when the spawning thread's process goes away (and the
        // sandbox's pid 1 takes the whole pid namespace with it).
        let invoker_pid = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() as u32 != invoker_pid {
                    // The invoker died before the signal was armed.
                    libc::_exit(137);
                }
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| {
            startup(format!(
                "process factory: cannot start {}: {e}",
                p.program.display()
            ))
        })
    }

    /// Resolves an interpreter command once: absolute as given, otherwise searched in the system
    /// directories first, then the invoker's PATH; followed to its real file, with the install
    /// prefix to bind when it lies outside the read-only paths.
    fn interpreter(&self, command: &str) -> Result<(PathBuf, Option<PathBuf>), ContainerError> {
        let mut cache = self.interpreters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(command) {
            return Ok(found.clone());
        }
        let readonly_dirs = self
            .prepared
            .get()
            .map(|p| p.readonly_dirs.as_slice())
            .unwrap_or_default();
        let found = find_program(command).ok_or_else(|| {
            startup(format!(
                "process factory: interpreter '{command}' not found"
            ))
        })?;
        let real = fs::canonicalize(&found).map_err(|e| {
            startup(format!(
                "process factory: interpreter {}: {e}",
                found.display()
            ))
        })?;
        let prefix = if readonly_dirs.iter().any(|d| real.starts_with(d)) {
            None
        } else {
            // `<prefix>/bin/python3.12` → `<prefix>` (its libraries live beside bin/).
            let parent = real.parent().unwrap_or(Path::new("/"));
            let prefix = if parent.file_name().is_some_and(|n| n == "bin") {
                parent.parent()
            } else {
                Some(parent)
            };
            prefix
                .filter(|p| *p != Path::new("/"))
                .map(Path::to_path_buf)
        };
        cache.insert(command.to_string(), (real.clone(), prefix.clone()));
        Ok((real, prefix))
    }
}

fn launcher_name(l: Launcher) -> &'static str {
    match l {
        Launcher::Python => "python",
        Launcher::Node => "node",
        Launcher::Native => "native",
    }
}

/// A short, unique directory and cgroup name: a sequence number and the start of the name.
fn container_id(seq: u64, name: &str) -> String {
    let mut id = format!("{seq:x}_");
    id.extend(
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
    );
    id.truncate(MAX_ID);
    id
}

fn find_program(command: &str) -> Option<PathBuf> {
    if command.contains('/') {
        return Some(PathBuf::from(command));
    }
    let invoker_path = std::env::var("PATH").unwrap_or_default();
    SYSTEM_PATH
        .split(':')
        .chain(invoker_path.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The container's private directory: the socket, `work/` and `tmp/`, owned by the sandbox user.
fn make_private_dir(dir: &Path, chown: bool) -> Result<(), ContainerError> {
    let err = |e: std::io::Error| {
        startup(format!(
            "process factory: cannot create {}: {e}",
            dir.display()
        ))
    };
    let mut builder = fs::DirBuilder::new();
    builder.mode(0o700);
    builder.create(dir).map_err(err)?;
    for sub in [dir.join("work"), dir.join("tmp")] {
        builder.create(&sub).map_err(err)?;
        if chown {
            std::os::unix::fs::chown(&sub, Some(SANDBOX_UID), Some(SANDBOX_GID)).map_err(err)?;
        }
    }
    if chown {
        std::os::unix::fs::chown(dir, Some(SANDBOX_UID), Some(SANDBOX_GID)).map_err(err)?;
    }
    Ok(())
}

/// Finds out what this machine offers.
fn probe(config: &ProcessFactoryConfig) -> Result<Prepared, ContainerError> {
    let program = {
        let p = find_program(&config.runtime_command[0]).ok_or_else(|| {
            startup(format!(
                "process factory: runtime '{}' not found",
                config.runtime_command[0]
            ))
        })?;
        fs::canonicalize(&p)
            .map_err(|e| startup(format!("process factory: runtime {}: {e}", p.display())))?
    };
    let new_root = config.root_dir.join(NEW_ROOT);
    fs::create_dir_all(&new_root).map_err(|e| {
        startup(format!(
            "process factory: cannot create {}: {e}",
            new_root.display()
        ))
    })?;

    let mut prepared = Prepared {
        cgroups: None,
        isolation: false,
        set_user: false,
        program,
        readonly_dirs: Vec::new(),
        base_mounts: Vec::new(),
        missing: Vec::new(),
    };
    if config.sandbox == SandboxMode::Off {
        return Ok(prepared);
    }

    let missing = &mut prepared.missing;
    let (cgroups, absent) = Cgroups::detect(&config.invoker_id);
    for (c, why) in absent {
        missing.push((
            format!("{} [{why}]", c.describe()),
            c != Controller::Freezer,
        ));
    }
    prepared.cgroups = Some(cgroups);

    let found = sandbox::probe(&new_root);
    match found.isolation {
        Ok(()) => prepared.isolation = true,
        Err(f) => missing.push((
            format!("pid/mount/ipc/uts namespaces and a private root: actions see the host's files and processes [{f}]"),
            true,
        )),
    }
    prepared.set_user = found.set_user;
    if !found.set_user {
        missing.push((
            "an unprivileged identity (no CAP_SETUID/CAP_SETGID): actions run as the invoker's user".into(),
            true,
        ));
    }

    if prepared.set_user && !prepared.isolation {
        // Without a private root the runtime reaches its directory through the host's path.
        if let Some(blocked) = config.root_dir.ancestors().find(|d| {
            fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 == 0 && m.uid() != SANDBOX_UID)
        }) {
            prepared.set_user = false;
            missing.push((
                format!(
                    "an unprivileged identity: without a private root, uid {SANDBOX_UID} cannot reach {}; \
                     actions run as the invoker's user",
                    blocked.display()
                ),
                true,
            ));
        }
    }

    for path in &config.readonly_paths {
        let Ok(meta) = fs::symlink_metadata(path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(to) = fs::read_link(path) {
                prepared.base_mounts.push(Mount::Symlink {
                    path: path.clone(),
                    to,
                });
            }
        } else {
            prepared.base_mounts.push(Mount::Bind {
                source: path.clone(),
                target: path.clone(),
                writable: false,
            });
            if meta.is_dir() {
                prepared.readonly_dirs.push(path.clone());
            }
        }
    }
    if !prepared
        .readonly_dirs
        .iter()
        .any(|d| prepared.program.starts_with(d))
    {
        let exe = prepared.program.clone();
        prepared.base_mounts.push(Mount::Bind {
            source: exe.clone(),
            target: exe,
            writable: false,
        });
    }
    Ok(prepared)
}

#[async_trait]
impl ContainerFactory for ProcessFactory {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn init(&self) -> Result<(), ContainerError> {
        let p = self.prepared().await?;
        // Containers this instance created are not leftovers (should init() come late).
        let ours: Vec<String> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut removed = 0;
        if let Some(cgroups) = &p.cgroups {
            removed += cgroups.remove_leftovers(&ours).await;
        }
        let root = self.config.root_dir.clone();
        removed += tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != NEW_ROOT
                    && !ours.contains(&name)
                    && fs::remove_dir_all(entry.path()).is_ok()
                {
                    n += 1;
                }
            }
            n
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(
                removed,
                "process factory removed leftovers of a previous run"
            );
        }
        Ok(())
    }

    fn capacity(&self) -> FactoryCapacity {
        FactoryCapacity {
            user_memory_mb: self.config.user_memory_mb,
            max_containers: self.config.effective_max_containers(),
        }
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        Ok(self.create_process(spec).await?)
    }

    async fn cleanup(&self) {
        let all: Vec<Arc<ProcessContainer>> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|c| c.destroy())).await;
        if let Some(cgroups) = self.prepared.get().and_then(|p| p.cgroups.as_ref()) {
            cgroups.remove_bases();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_clean() {
        assert_eq!(
            container_id(10, "wsk0_1_guest_hello"),
            "a_wsk0_1_guest_hello"
        );
        assert_eq!(container_id(0, "a/b c"), "0_abc");
        assert_eq!(container_id(1, &"x".repeat(100)).len(), MAX_ID);
    }

    #[test]
    fn finds_system_programs_first() {
        assert_eq!(
            find_program("sh").unwrap().parent().unwrap(),
            Path::new("/usr/bin")
        );
        assert!(find_program("surely-no-such-program").is_none());
    }
}
