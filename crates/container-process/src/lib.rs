//! The `process` container factory: Whirl's embedded default. Each container is Whirl's own action
//! runtime (`whirl runtime`) started as a sandboxed child process of the invoker, serving
//! OpenWhisk's `/init` and `/run` on a unix socket in the container's private directory.
//!
//! # Creating a container
//!
//! [`ProcessFactory::create`](whirl_spi::ContainerFactory::create) does the cheap, host-side part
//! and returns at once (the runtime client's first `/init` retries until the socket appears):
//!
//! 1. makes the container's private directory `<root_dir>/<id>/` (the socket, `work/`, `tmp/`),
//!    owned by the sandbox user;
//! 2. makes its cgroups `<own cgroup>/whirl/<invoker_id>/<id>` in the memory, pids, cpu and freezer
//!    controllers (cgroup v1, v2 or hybrid, found at run time) with the container's limits;
//! 3. spawns `<runtime_command...> --sandbox '<SandboxSpec JSON>' --listen unix:<socket>
//!    --launcher <l> [--command <interpreter>] --work-dir <dir>` in its own process group, with a
//!    clean environment, stdin from `/dev/null`, and stdout/stderr piped to background tasks
//!    that timestamp each line into the container's bounded log buffer.
//!
//! # The sandbox, step by step, and why
//!
//! The runtime binary calls [`sandbox::enter`] first thing (before any thread exists), as root:
//!
//! * **join the cgroups** — so the runtime, the interpreter and anything the action forks are
//!   bounded in memory (killed by the kernel past it, which [`out_of_memory`] reports) and in
//!   processes (a fork bomb stops at `pids_limit`), weighted for cpu, and freezable as a unit for
//!   suspend/resume;
//! * **new pid, mount, ipc and uts namespaces, and fork** — the runtime becomes pid 1 of its own
//!   pid namespace: the action cannot see or signal host processes or other containers, and when
//!   the factory kills the one process it started, the kernel kills the whole namespace;
//!   the network namespace stays the host's so actions can call the platform's API;
//! * **a new root on tmpfs, then `pivot_root`** — the action sees the system directories
//!   read-only (`readonly_paths`), its interpreter and the runtime binary, a fresh `/proc`, a
//!   minimal `/dev`, and, writable, only its private directory (at `/whirl`) and `/tmp` (also in
//!   it). The platform's data directory, the invoker's files and other containers' directories
//!   do not exist in that view;
//! * **hostname, rlimits** — the container's name; `nofile` open files;
//! * **drop privileges** — empty capability bounding set, no supplementary groups, uid/gid
//!   65534, `PR_SET_NO_NEW_PRIVS`: the action is an unprivileged user that cannot regain
//!   privileges through set-uid binaries.
//!
//! With `sandbox = "auto"` (the default) the factory probes once which of these the machine
//! allows (namespaces and mounts need CAP_SYS_ADMIN, the identity change CAP_SETUID/CAP_SETGID,
//! limits a writable cgroup hierarchy) and logs one warning naming what is missing; `required`
//! refuses to start instead; `off` runs plain child processes (debugging only).
//!
//! # Lifecycle
//!
//! * `suspend`/`resume` freeze and thaw the cgroup (v1 `freezer.state`, v2 `cgroup.freeze`), or
//!   send SIGSTOP/SIGCONT to the process group without a freezer.
//! * `destroy` (idempotent) kills every process in the cgroups and the process group, waits for
//!   the runtime process to be reaped, removes the cgroups and the private directory.
//! * A runtime that exits on its own is reaped at once by a background task, which remembers its
//!   exit status ([`ProcessContainer::exit_status`]).
//! * `init()` removes this invoker's leftovers (cgroups: their processes are killed first; private
//!   directories); `cleanup()` destroys every container the factory created.
//!
//! # What a cold start costs
//!
//! `create()` does ~1 ms of host-side work (directories, cgroups, spawn) and returns. Of the
//! sandbox's own start, the namespaces, the new root and the identity change take ~1.5 ms; on a
//! cgroup-v1 machine, joining the cgroups usually takes longer: the first cgroup migration after a
//! quiet spell waits for an RCU grace period (5–16 ms measured here), unless the hierarchies are
//! mounted with `favordynmods` (an operator's choice). Stem cells (prewarmed containers) take all
//! of it off the activation's path. `tests/sandbox.rs::create_cost` prints the figures.
//!
//! [`out_of_memory`]: whirl_spi::Container::out_of_memory

#![warn(missing_docs)]

mod cgroup;
mod config;
mod container;
mod factory;
pub mod sandbox;

pub use config::{ProcessFactoryConfig, SandboxMode};
pub use container::ProcessContainer;
pub use factory::ProcessFactory;
pub use whirl_spi::logbuffer::SENTINEL;
