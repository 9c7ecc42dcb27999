//! The `docker` container factory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::{
    AttachContainerOptions, Config, CreateContainerOptions, ListContainersOptions,
    RemoveContainerOptions,
};
use bollard::image::CreateImageOptions;
use bollard::models::{HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use tokio::sync::{OnceCell, Semaphore};
use whirl_model::manifest::Launcher;
use whirl_model::Endpoint;
use whirl_spi::logbuffer::LogBuffer;
use whirl_spi::{Container, ContainerError, ContainerFactory, ContainerSpec, FactoryCapacity};

use crate::config::DockerFactoryConfig;
use crate::container::{spawn_pump, DockerContainer, Parts, Registry};
use crate::{INVOKER_LABEL, RUNTIME_PORT};

/// Longest container name we make (Docker allows more; shorter names read better in `docker ps`).
const MAX_NAME: usize = 63;

/// The `docker` [`ContainerFactory`] (see the crate documentation).
pub struct DockerFactory {
    config: DockerFactoryConfig,
    docker: OnceCell<Docker>,
    /// The Docker host's memory in MB, learned at `init`.
    host_memory_mb: OnceLock<u64>,
    registry: Arc<Registry>,
    seq: AtomicU64,
    /// Images known to be on the host (so a warm create costs no image lookup).
    present: Mutex<HashSet<String>>,
    creates: Semaphore,
}

impl std::fmt::Debug for DockerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerFactory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn startup(msg: impl Into<String>) -> ContainerError {
    ContainerError::Startup(msg.into())
}

impl DockerFactory {
    /// A factory with this configuration. The daemon is first contacted by
    /// [`ContainerFactory::init`] (or the first `create`).
    pub fn new(config: DockerFactoryConfig) -> Result<Self, ContainerError> {
        config.validate().map_err(startup)?;
        Ok(Self {
            creates: Semaphore::new(config.parallel_creates),
            config,
            docker: OnceCell::new(),
            host_memory_mb: OnceLock::new(),
            registry: Arc::new(Mutex::new(HashMap::new())),
            seq: AtomicU64::new(0),
            present: Mutex::new(HashSet::new()),
        })
    }

    fn host_name(&self) -> String {
        self.config
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
    }

    /// The Engine API client, connected and with the API version agreed with the daemon.
    pub async fn docker(&self) -> Result<&Docker, ContainerError> {
        self.docker
            .get_or_try_init(|| async {
                let host = self.host_name();
                let no_daemon = |e: &dyn std::fmt::Display| {
                    startup(format!(
                        "docker factory: no Docker daemon answers at {host}: {e} \
                         (start dockerd, e.g. with scripts/services, or set [container_factory] host)"
                    ))
                };
                let t = self.config.timeout_secs;
                let docker = if let Some(path) = host.strip_prefix("unix://") {
                    Docker::connect_with_unix(path, t, API_DEFAULT_VERSION)
                } else {
                    Docker::connect_with_http(&host, t, API_DEFAULT_VERSION)
                }
                .map_err(|e| no_daemon(&e))?;
                let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
                    .await
                    .map_err(|_| no_daemon(&"no answer within 10 s"))?
                    .map_err(|e| no_daemon(&e))?;
                docker.ping().await.map_err(|e| no_daemon(&e))?;
                Ok(docker)
            })
            .await
    }

    /// The image a container of `spec` runs.
    fn image_for(&self, spec: &ContainerSpec) -> Result<String, ContainerError> {
        if let Some(image) = &spec.image {
            return Ok(image.clone());
        }
        self.config
            .images
            .get(&spec.kind.kind)
            .or(spec.kind.image.as_ref())
            .cloned()
            .ok_or_else(|| {
                startup(format!(
                    "docker factory: no image for kind '{}' (set `image` in its manifest entry or \
                     [container_factory] images)",
                    spec.kind.kind
                ))
            })
    }

    /// Makes sure `image` is on the host, pulling it once if not.
    async fn ensure_image(
        &self,
        docker: &Docker,
        image: &str,
        blackbox: bool,
    ) -> Result<(), ContainerError> {
        if self.lock_present().contains(image) {
            return Ok(());
        }
        match docker.inspect_image(image).await {
            Ok(_) => {
                self.lock_present().insert(image.to_string());
                return Ok(());
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                return Err(startup(format!(
                    "docker factory: cannot look up image '{image}': {e}"
                )))
            }
        }
        let (from_image, tag) = split_tag(image);
        tracing::info!(image, "pulling image");
        let pull = async {
            let mut progress = docker.create_image(
                Some(CreateImageOptions {
                    from_image,
                    tag,
                    ..Default::default()
                }),
                None,
                None,
            );
            while let Some(step) = progress.next().await {
                step?;
            }
            Ok::<(), bollard::errors::Error>(())
        };
        let limit = Duration::from_secs(self.config.timeout_secs * 10);
        let outcome = match tokio::time::timeout(limit, pull).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no result within {limit:?}")),
        };
        match outcome {
            Ok(()) => {
                self.lock_present().insert(image.to_string());
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(image, %reason, "image pull failed");
                if blackbox {
                    Err(ContainerError::UserStartup(format!(
                        "Failed to pull container image '{image}'."
                    )))
                } else {
                    Err(startup(format!(
                        "docker factory: cannot pull runtime image '{image}': {reason}"
                    )))
                }
            }
        }
    }

    fn lock_present(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.present.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The log configuration for a container, and whether the factory reads its output itself.
    fn log_config(
        &self,
        parameters: &BTreeMap<String, Vec<String>>,
    ) -> (HostConfigLogConfig, bool) {
        let driver = parameters
            .get("log-driver")
            .and_then(|v| v.first())
            .cloned();
        let options: HashMap<String, String> = parameters
            .get("log-opt")
            .into_iter()
            .flatten()
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let attach = driver
            .as_deref()
            .is_none_or(|d| matches!(d, "json-file" | "local" | "none"));
        let config = HostConfigLogConfig {
            typ: Some(driver.unwrap_or_else(|| self.config.log_driver.clone())),
            config: (!options.is_empty()).then_some(options),
        };
        (config, attach)
    }

    /// Creates a container and returns it with its concrete type.
    pub async fn create_docker(
        &self,
        spec: ContainerSpec,
    ) -> Result<Arc<DockerContainer>, ContainerError> {
        let docker = self.docker().await?.clone();
        let image = self.image_for(&spec)?;
        let blackbox = spec.image.is_some();
        self.ensure_image(&docker, &image, blackbox).await?;
        let _permit = self
            .creates
            .acquire()
            .await
            .map_err(|_| startup("docker factory is shut down"))?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = container_name(&self.config.invoker_id, seq, &spec.name);
        let (log_config, attach) = self.log_config(&spec.parameters);

        let mut env: Vec<String> = self
            .config
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
        env.extend(spec.parameters.get("env").into_iter().flatten().cloned());
        env.push(format!(
            "WHIRL_LAUNCHER={}",
            launcher_name(spec.kind.launcher)
        ));
        let memory = (spec.memory_mb << 20) as i64;
        let mut labels = HashMap::from([
            (INVOKER_LABEL.to_string(), self.config.invoker_id.clone()),
            ("whirl.kind".to_string(), spec.kind.kind.clone()),
        ]);
        for label in spec.parameters.get("label").into_iter().flatten() {
            if let Some((k, v)) = label.split_once('=') {
                labels.insert(k.to_string(), v.to_string());
            }
        }
        let host_config = HostConfig {
            memory: Some(memory),
            memory_swap: Some(memory),
            cpu_shares: Some(spec.cpu_shares as i64),
            pids_limit: Some(self.config.pids_limit),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(self.config.nofile),
                hard: Some(self.config.nofile),
            }]),
            cap_drop: Some(self.config.cap_drop.clone()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            network_mode: Some(self.config.network.clone()),
            dns: (!self.config.dns.is_empty()).then(|| self.config.dns.clone()),
            log_config: Some(log_config),
            ..Default::default()
        };
        let config = Config {
            image: Some(image.clone()),
            env: Some(env),
            labels: Some(labels),
            attach_stdout: Some(attach),
            attach_stderr: Some(attach),
            host_config: Some(host_config),
            ..Default::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.clone(),
                    platform: None,
                }),
                config,
            )
            .await
            .map_err(|e| startup(format!("docker factory: cannot create {name}: {e}")))?;
        let docker_id = created.id;

        // From here on a failure removes the container again.
        let started = async {
            let logs = if attach {
                let buf = LogBuffer::new(self.config.log_buffer_bytes);
                let attached = docker
                    .attach_container(
                        &docker_id,
                        Some(AttachContainerOptions::<String> {
                            stdout: Some(true),
                            stderr: Some(true),
                            stream: Some(true),
                            ..Default::default()
                        }),
                    )
                    .await
                    .map_err(|e| format!("cannot attach: {e}"))?;
                spawn_pump(attached.output, attached.input, buf.clone());
                Some(buf)
            } else {
                None
            };
            docker
                .start_container::<String>(&docker_id, None)
                .await
                .map_err(|e| format!("cannot start: {e}"))?;
            let info = docker
                .inspect_container(&docker_id, None)
                .await
                .map_err(|e| format!("cannot inspect: {e}"))?;
            let ip = info
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(&self.config.network))
                .and_then(|n| n.ip_address)
                .filter(|ip| !ip.is_empty())
                .ok_or_else(|| format!("no address on network '{}'", self.config.network))?;
            let ip: IpAddr = ip.parse().map_err(|e| format!("bad address '{ip}': {e}"))?;
            Ok::<_, String>((logs, ip))
        }
        .await;
        let (logs, ip) = match started {
            Ok(v) => v,
            Err(e) => {
                let _ = docker
                    .remove_container(
                        &docker_id,
                        Some(RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        }),
                    )
                    .await;
                let msg = format!("docker factory: container {name} of image '{image}': {e}");
                return Err(if blackbox {
                    ContainerError::UserStartup(msg)
                } else {
                    startup(msg)
                });
            }
        };
        let container = DockerContainer::new(Parts {
            name: name.clone(),
            docker_id,
            endpoint: Endpoint::Tcp(SocketAddr::new(ip, RUNTIME_PORT)),
            docker,
            logs,
            registry: Arc::downgrade(&self.registry),
        });
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, container.clone());
        Ok(container)
    }

    /// Removes every container labelled with this invoker's id except the ones this factory
    /// created; returns how many.
    async fn remove_leftovers(&self, docker: &Docker) -> Result<usize, ContainerError> {
        let label = format!("{INVOKER_LABEL}={}", self.config.invoker_id);
        let found = docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: true,
                filters: HashMap::from([("label".to_string(), vec![label])]),
                ..Default::default()
            }))
            .await
            .map_err(|e| startup(format!("docker factory: cannot list containers: {e}")))?;
        let ours: HashSet<String> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|c| c.docker_id().to_string())
            .collect();
        let leftovers: Vec<String> = found
            .into_iter()
            .filter_map(|c| c.id)
            .filter(|id| !ours.contains(id))
            .collect();
        let removed = futures::future::join_all(leftovers.iter().map(|id| {
            docker.remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
        }))
        .await;
        Ok(removed.iter().filter(|r| r.is_ok()).count())
    }
}

fn launcher_name(l: Launcher) -> &'static str {
    match l {
        Launcher::Python => "python",
        Launcher::Node => "node",
        Launcher::Native => "native",
    }
}

/// `whirl_<invoker id>_<seq>_<name>`, cut to [`MAX_NAME`], in Docker's alphabet.
fn container_name(invoker_id: &str, seq: u64, name: &str) -> String {
    let mut out = format!("whirl_{invoker_id}_{seq:x}_");
    out.extend(
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')),
    );
    out.truncate(MAX_NAME);
    out
}

/// `repo/name:tag` → (`repo/name`, `tag`); no tag means `latest` (Docker would pull every tag);
/// a digest stays in the name.
fn split_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rfind(':') {
        Some(i) => {
            let at = image.len() - last.len() + i;
            (&image[..at], &image[at + 1..])
        }
        None => (image, "latest"),
    }
}

#[async_trait]
impl ContainerFactory for DockerFactory {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn init(&self) -> Result<(), ContainerError> {
        let docker = self.docker().await?;
        if let Ok(info) = docker.info().await {
            if let Some(total) = info.mem_total.filter(|m| *m > 0) {
                let _ = self.host_memory_mb.set(total as u64 >> 20);
            }
        }
        let removed = self.remove_leftovers(docker).await?;
        if removed > 0 {
            tracing::info!(
                removed,
                invoker = %self.config.invoker_id,
                "docker factory removed leftovers of a previous run"
            );
        }
        Ok(())
    }

    fn capacity(&self) -> FactoryCapacity {
        let memory = match self.host_memory_mb.get() {
            Some(host) => self.config.user_memory_mb.min(*host),
            None => self.config.user_memory_mb,
        };
        FactoryCapacity {
            user_memory_mb: memory,
            max_containers: self.config.effective_max_containers(),
        }
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        Ok(self.create_docker(spec).await?)
    }

    async fn cleanup(&self) {
        let all: Vec<Arc<DockerContainer>> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        futures::future::join_all(all.iter().map(|c| c.destroy())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(
            container_name("inv0-ab12", 10, "wsk0_1_guest/hello"),
            "whirl_inv0-ab12_a_wsk0_1_guesthello"
        );
        assert_eq!(container_name("i", 1, &"x".repeat(100)).len(), MAX_NAME);
        assert_eq!(
            split_tag("openwhisk/action-python-v3.11:nightly"),
            ("openwhisk/action-python-v3.11", "nightly")
        );
        assert_eq!(split_tag("me/img"), ("me/img", "latest"));
        assert_eq!(
            split_tag("localhost:5000/me/img"),
            ("localhost:5000/me/img", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/me/img:2"),
            ("localhost:5000/me/img", "2")
        );
    }
}
