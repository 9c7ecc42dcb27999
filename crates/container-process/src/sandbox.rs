//! The sandbox a container's runtime enters before it starts: what the factory asks for
//! ([`SandboxSpec`], passed as JSON in `--sandbox`) and the code that does it ([`enter`]).
//!
//! [`enter`] runs inside the freshly executed runtime process, before it starts any thread, as
//! root. In order:
//!
//! 1. **Join the cgroups** the factory prepared, so every process the container ever starts is
//!    under its memory, pids and cpu limits and can be frozen as one.
//! 2. **Unshare** the pid, mount, ipc and uts namespaces (the network stays the host's: actions may
//!    call the platform's API on loopback).
//! 3. **Fork**, so the child is pid 1 of the new pid namespace. The parent only waits and exits
//!    with the child's status; the child asks for SIGKILL when the parent dies
//!    (`PR_SET_PDEATHSIG`), and the death of a pid namespace's pid 1 kills everything in it, so
//!    killing the one process the factory knows takes the whole container down.
//! 4. **Build a new root** on a tmpfs: the system directories bound read-only, the runtime's
//!    executable and the interpreter's install prefix if they live elsewhere, a fresh `/proc` (it
//!    only shows the container's processes), a minimal `/dev`, and the container's private
//!    directory and `/tmp` writable. Nothing else of the host is visible: not the platform's data
//!    directory, not other containers. Then `pivot_root` into it, detach the old root and make the
//!    new root itself read-only.
//! 5. Set the **hostname** (the container's name) and **rlimits** (open files; processes are
//!    bounded by the pids cgroup).
//! 6. **Drop privileges**: empty the capability bounding set, drop supplementary groups, switch to
//!    an unprivileged uid/gid (65534, "nobody", by default), which clears every capability, and
//!    set `PR_SET_NO_NEW_PRIVS` so no set-uid binary or file capability can regain any.
//!
//! Steps the factory found unavailable on this machine are simply absent from the spec. When a
//! requested step fails anyway: with `strict` the runtime exits; without it the optional steps
//! (cgroups, hostname, rlimits, identity, no-new-privs) are skipped with one line on stderr. The
//! namespaces and the new root are never degraded at this point: the runtime's paths (socket,
//! work directory) were chosen for the new root.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{
    fork, pivot_root, setgroups, sethostname, setresgid, setresuid, ForkResult, Gid, Uid,
};
use serde::{Deserialize, Serialize};

/// The unprivileged identity containers run as by default (`nobody`/`nogroup`).
pub const SANDBOX_UID: u32 = 65534;
/// The group of [`SANDBOX_UID`].
pub const SANDBOX_GID: u32 = 65534;

/// Where a container's private directory appears inside its new root.
pub const PRIVATE_DIR_INSIDE: &str = "/whirl";

/// Device nodes bound into the sandbox's `/dev` (those the host has). Not `tty`: the runtime
/// shares the invoker's session, so `/dev/tty` would be the operator's terminal.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// What the sandboxed runtime must do to itself before it starts; written by the factory, read by
/// [`enter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    /// Fail instead of degrading when a step cannot be done (`sandbox = "required"`).
    #[serde(default)]
    pub strict: bool,
    /// `cgroup.procs` files to write our pid into, one per cgroup hierarchy.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// New namespaces and a new root; `None` keeps the host's.
    #[serde(default)]
    pub isolation: Option<Isolation>,
    /// RLIMIT_NOFILE (soft and hard).
    #[serde(default)]
    pub nofile: Option<u64>,
    /// The identity to switch to, dropping every capability.
    #[serde(default)]
    pub user: Option<Identity>,
    /// Set `PR_SET_NO_NEW_PRIVS`.
    #[serde(default)]
    pub no_new_privs: bool,
}

/// New pid, mount, ipc and uts namespaces, and the new root's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolation {
    /// The hostname inside the uts namespace.
    pub hostname: String,
    /// An empty directory to mount the new root's tmpfs on (any will do: the mount is only seen
    /// in the container's own mount namespace, so every container can use the same one).
    pub new_root: PathBuf,
    /// What the new root contains, in order, besides `/proc` and `/dev`.
    pub mounts: Vec<Mount>,
}

/// One entry of the new root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Mount {
    /// Bind a host file or directory at `target` (read-only unless `writable`; never set-uid or
    /// device files).
    Bind {
        /// Host path.
        source: PathBuf,
        /// Path inside the new root.
        target: PathBuf,
        /// Writable (the container's own directories) or read-only (everything else).
        #[serde(default)]
        writable: bool,
    },
    /// A symbolic link at `path` pointing to `to` (e.g. `/bin -> usr/bin` on merged-usr systems).
    Symlink {
        /// Path inside the new root.
        path: PathBuf,
        /// Link target, as the host has it.
        to: PathBuf,
    },
}

/// A uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A sandbox step failed and the spec did not allow going on without it.
#[derive(Debug, thiserror::Error)]
#[error("sandbox: {step}: {source}")]
pub struct SandboxError {
    /// Which step.
    pub step: String,
    /// Why.
    #[source]
    pub source: io::Error,
}

fn fail(step: impl Into<String>) -> impl FnOnce(nix::Error) -> SandboxError {
    let step = step.into();
    move |e| SandboxError {
        step,
        source: io::Error::from(e),
    }
}

fn fail_io(step: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let step = step.into();
    move |source| SandboxError { step, source }
}

/// Puts the calling process into the sandbox `spec` describes, then returns so the caller can
/// start the runtime.
///
/// Must be called before the process starts any thread (unsharing a mount namespace and forking
/// both require it). With isolation, the process forks: the original process never returns from
/// this call (it waits for the sandboxed child and exits with its status); the child, pid 1 of the
/// new pid namespace, returns `Ok(())`.
pub fn enter(spec: &SandboxSpec) -> Result<(), SandboxError> {
    let degrade = |e: SandboxError| -> Result<(), SandboxError> {
        if spec.strict {
            return Err(e);
        }
        eprintln!("whirl sandbox: {e}; continuing without it");
        Ok(())
    };

    let pid = std::process::id().to_string();
    for procs in &spec.cgroups {
        if let Err(e) = fs::write(procs, &pid) {
            degrade(fail_io(format!("joining cgroup {}", procs.display()))(e))?;
        }
    }

    if let Some(iso) = &spec.isolation {
        unshare(
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS,
        )
        .map_err(fail("unsharing namespaces"))?;
        become_pid_one()?;
        build_root(iso)?;
        if let Err(e) = sethostname(&iso.hostname) {
            degrade(fail("setting the hostname")(e))?;
        }
    }

    if let Some(n) = spec.nofile {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, n, n) {
            degrade(fail("limiting open files")(e))?;
        }
    }
    if let Some(id) = spec.user {
        if let Err(e) = drop_privileges(id) {
            degrade(e)?;
        }
    }
    if spec.no_new_privs {
        if let Err(e) = nix::sys::prctl::set_no_new_privs() {
            degrade(fail("setting no_new_privs")(e))?;
        }
    }
    Ok(())
}

/// Forks; the parent waits for the child and exits with its status, the child returns as pid 1
/// of the pid namespace unshared just before.
fn become_pid_one() -> Result<(), SandboxError> {
    // The parent holds the write end and never writes: the child sees the pipe hang up if the
    // parent is already gone, closing the race between fork and PR_SET_PDEATHSIG.
    let (alive_r, alive_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(fail("creating a pipe"))?;
    // SAFETY: this process is single-threaded (the documented precondition of `enter`), so the
    // child may do anything the parent could.
    match unsafe { fork() }.map_err(fail("forking into the pid namespace"))? {
        ForkResult::Parent { child } => {
            drop(alive_r);
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => std::process::exit(128 + sig as i32),
                    Ok(_) | Err(nix::Error::EINTR) => continue,
                    Err(_) => std::process::exit(125),
                }
            }
        }
        ForkResult::Child => {
            drop(alive_w);
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(fail("setting the parent-death signal"))?;
            let mut fds = [PollFd::new(alive_r.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0) {
                // Hung up: the parent died before PR_SET_PDEATHSIG took effect.
                std::process::exit(137);
            }
            Ok(())
        }
    }
}

/// `target` inside the directory `root`.
fn inside(root: &Path, target: &Path) -> PathBuf {
    root.join(target.strip_prefix("/").unwrap_or(target))
}

fn mount_flags(step: &str, target: &Path, flags: MsFlags) -> Result<(), SandboxError> {
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(fail(format!("{step} {}", target.display())))
}

fn build_root(iso: &Isolation) -> Result<(), SandboxError> {
    // Our mounts must not propagate back to the host (and pivot_root refuses shared mounts).
    mount_flags(
        "making mounts private",
        Path::new("/"),
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
    )?;
    let root = &iso.new_root;
    mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=1m"),
    )
    .map_err(fail("mounting the new root's tmpfs"))?;

    for m in &iso.mounts {
        match m {
            Mount::Bind {
                source,
                target,
                writable,
            } => bind(source, &inside(root, target), *writable)?,
            Mount::Symlink { path, to } => {
                let at = inside(root, path);
                if let Some(parent) = at.parent() {
                    fs::create_dir_all(parent)
                        .map_err(fail_io(format!("creating {}", parent.display())))?;
                }
                symlink(to, &at).map_err(fail_io(format!("linking {}", path.display())))?;
            }
        }
    }

    let proc = root.join("proc");
    fs::create_dir_all(&proc).map_err(fail_io("creating /proc"))?;
    // A fresh procfs: mounted from inside the new pid namespace, it shows only its processes.
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(fail("mounting /proc"))?;
    build_dev(&root.join("dev"))?;

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
    // the new root, with no directory of the host's left to climb back to.
    std::env::set_current_dir(root).map_err(fail_io("entering the new root"))?;
    pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detaching the old root"))?;
    std::env::set_current_dir("/").map_err(fail_io("entering /"))?;
    mount_flags(
        "making the root read-only",
        Path::new("/"),
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
    )
}

fn bind(source: &Path, target: &Path, writable: bool) -> Result<(), SandboxError> {
    let meta = fs::metadata(source).map_err(fail_io(format!("looking at {}", source.display())))?;
    if meta.is_dir() {
        fs::create_dir_all(target).map_err(fail_io(format!("creating {}", target.display())))?;
    } else {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(fail_io(format!("creating {}", parent.display())))?;
        }
        fs::File::create(target).map_err(fail_io(format!("creating {}", target.display())))?;
    }
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail(format!("binding {}", source.display())))?;
    // Bind mounts take their flags from a remount.
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    mount_flags("restricting", target, flags)
}

fn build_dev(dev: &Path) -> Result<(), SandboxError> {
    fs::create_dir_all(dev).map_err(fail_io("creating /dev"))?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .map_err(fail("mounting /dev"))?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if host.exists() {
            let at = dev.join(name);
            fs::File::create(&at).map_err(fail_io(format!("creating /dev/{name}")))?;
            mount(
                Some(&host),
                &at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(fail(format!("binding /dev/{name}")))?;
        }
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(fail_io(format!("linking /dev/{link}")))?;
    }
    let shm = dev.join("shm");
    fs::create_dir_all(&shm).map_err(fail_io("creating /dev/shm"))?;
    // Charged to the container's memory cgroup like any other memory it uses.
    mount(
        Some("tmpfs"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777"),
    )
    .map_err(fail("mounting /dev/shm"))
}

fn drop_privileges(id: Identity) -> Result<(), SandboxError> {
    // Empty the bounding set first (needs CAP_SETPCAP, which the uid change takes away): nothing
    // executed later can be granted a capability outside it.
    for cap in 0..=63 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break; // past the last capability this kernel knows
            }
            return Err(fail_io("dropping the capability bounding set")(e));
        }
    }
    setgroups(&[]).map_err(fail("dropping supplementary groups"))?;
    let (uid, gid) = (Uid::from_raw(id.uid), Gid::from_raw(id.gid));
    setresgid(gid, gid, gid).map_err(fail(format!("switching to gid {}", id.gid)))?;
    // Leaving uid 0 for good clears the permitted, effective and ambient capability sets.
    setresuid(uid, uid, uid).map_err(fail(format!("switching to uid {}", id.uid)))?;
    // A credential change clears the parent-death signal; arm it again so this process (pid 1 of
    // the container's namespace, taking everything in it along) still dies with its parent.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(fail("re-arming the parent-death signal"))?;
    Ok(())
}

/// What a probe of this machine found possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// New namespaces and a private root can be made.
    pub isolation: Result<(), ProbeFailure>,
    /// The uid/gid can be changed (CAP_SETUID and CAP_SETGID).
    pub set_user: bool,
}

/// Why isolation is unavailable (an errno from a step of the probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeFailure {
    pub step: &'static str,
    pub errno: nix::Error,
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.errno.desc())
    }
}

/// Tries what [`enter`] will do, without touching this process: in a thread of its own (a thread
/// can unshare its mount namespace alone, and the namespace dies with it), unshare the
/// namespaces and mount a tmpfs on `new_root`.
pub(crate) fn probe(new_root: &Path) -> Probe {
    let new_root = new_root.to_path_buf();
    let isolation = std::thread::spawn(move || -> Result<(), ProbeFailure> {
        let step = |step: &'static str| move |errno| ProbeFailure { step, errno };
        unshare(
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS,
        )
        .map_err(step("unsharing pid, mount, ipc and uts namespaces"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(step("making mounts private"))?;
        mount(
            Some("tmpfs"),
            &new_root,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=4k"),
        )
        .map_err(step("mounting a tmpfs"))?;
        let _ = umount2(&new_root, MntFlags::MNT_DETACH);
        Ok(())
    })
    .join()
    .unwrap_or(Err(ProbeFailure {
        step: "probe thread",
        errno: nix::Error::UnknownErrno,
    }));
    Probe {
        isolation,
        set_user: has_caps(&[CAP_SETGID, CAP_SETUID]),
    }
}

/// Capability numbers from linux/capability.h (the libc crate does not export them).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// Whether this process has these effective capabilities (from /proc/self/status).
fn has_caps(caps: &[u32]) -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    caps.iter().all(|c| eff & (1u64 << c) != 0)
}

/// A hostname the kernel accepts (at most 64 bytes) made from a container name.
pub(crate) fn hostname_for(name: &str) -> String {
    let h: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    if h.is_empty() {
        "whirl".into()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_as_json() {
        let spec = SandboxSpec {
            strict: true,
            cgroups: vec!["/sys/fs/cgroup/memory/whirl/0/c1/cgroup.procs".into()],
            isolation: Some(Isolation {
                hostname: "c1".into(),
                new_root: "/var/lib/whirl/containers/.newroot".into(),
                mounts: vec![
                    Mount::Bind {
                        source: "/usr".into(),
                        target: "/usr".into(),
                        writable: false,
                    },
                    Mount::Symlink {
                        path: "/bin".into(),
                        to: "usr/bin".into(),
                    },
                ],
            }),
            nofile: Some(1024),
            user: Some(Identity {
                uid: SANDBOX_UID,
                gid: SANDBOX_GID,
            }),
            no_new_privs: true,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""type":"symlink""#), "{json}");
        assert_eq!(serde_json::from_str::<SandboxSpec>(&json).unwrap(), spec);
        assert!(serde_json::from_str::<SandboxSpec>(r#"{"bogus":1}"#).is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(hostname_for("wsk0_12_guest_hello"), "wsk0_12_guest_hello");
        assert_eq!(hostname_for("/ /"), "whirl");
        assert_eq!(hostname_for(&"a".repeat(100)).len(), 64);
    }
}
