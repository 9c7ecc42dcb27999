//! The `docker` container factory: every action container is a Docker container, created through
//! the Docker Engine API (bollard), reached by the invoker over TCP at its IP on the configured
//! network, port 8080, with OpenWhisk's `/init` and `/run`.
//!
//! # Images
//!
//! A blackbox action's own image (`exec.image`) wins; otherwise the `images` map of the config
//! (kind → image), otherwise the manifest's `image` for the kind, which defaults to OpenWhisk's
//! published runtime images (they speak the same protocol). No registry is reachable from some
//! hosts: `scripts/build-images` builds Whirl's own runtime image locally and one config line maps
//! kinds to it. Every container gets `WHIRL_LAUNCHER=<python|node|native>`, which tells Whirl's
//! image which launcher to start and which other images ignore. An image that is not on the host
//! is pulled once; a blackbox image that cannot be pulled is the developer's error, naming the
//! image (OpenWhisk's `BlackboxStartupError`), a runtime image that cannot be pulled is the
//! platform's.
//!
//! # Limits and isolation (as OpenWhisk's `docker run`)
//!
//! `--memory` and `--memory-swap` both at the action's memory limit, `--cpu-shares`,
//! `--pids-limit`, `--ulimit nofile`, the configured capabilities dropped (NET_RAW and NET_ADMIN by
//! default) and `no-new-privileges`. Each container is labelled `whirl.invoker=<invoker id>`;
//! [`init`](ContainerFactory::init) removes every container carrying this invoker's label, which is
//! how a restarted invoker gets rid of what a killed one left running.
//!
//! # Output
//!
//! Unless the log store routes output elsewhere (a `log-driver` parameter naming a driver other
//! than `json-file` or `local`, e.g. the `syslog` store's), the factory attaches to the container
//! before starting it and reads stdout and stderr into the same bounded, sentinel-framing buffer
//! the `process` factory uses ([`whirl_spi::logbuffer`]), so nothing printed at boot is lost and
//! the Docker daemon need not store it too (log driver `none` unless configured). With an
//! out-of-band log store nothing is attached: the invoker never sees the output.
//!
//! # Lifecycle
//!
//! `suspend`/`resume` are `docker pause`/`unpause` (the cgroup freezer); `destroy` is
//! `docker rm --force` (idempotent); a container killed for memory is recognised by its cgroup's
//! OOM-kill counter (read directly: Docker's own `OOMKilled` flag is set asynchronously) or by
//! Docker's flag. [`capacity`](ContainerFactory::capacity) is `user_memory_mb` (at most the Docker
//! host's memory) and `max_containers`.

#![warn(missing_docs)]

mod config;
mod container;
mod factory;

pub use config::DockerFactoryConfig;
pub use container::DockerContainer;
pub use factory::DockerFactory;

/// The label every container of a factory carries, with the invoker id as its value.
pub const INVOKER_LABEL: &str = "whirl.invoker";
/// The port action runtimes listen on inside their containers (OpenWhisk's).
pub const RUNTIME_PORT: u16 = 8080;
