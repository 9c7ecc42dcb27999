//! Control groups for containers: memory, pids, cpu and freezer, on cgroup v1, v2, or a hybrid of
//! both, detected at run time per controller.
//!
//! Each controller's cgroups live under the invoker's *own* cgroup in that hierarchy:
//! `<own>/whirl/<invoker_id>/<container>`. Staying below our own cgroup is what delegation means
//! (a service manager or container engine gave us that subtree; the rest of the machine is not
//! ours), keeps the containers inside any limit placed on the invoker, and lets a restarted invoker
//! (which its service manager starts in the same cgroup) find its predecessor's leftovers.
//!
//! No crate in our dependency tree drives cgroup files without pulling in a container engine, and
//! what we need is a handful of file writes, so this is written by hand.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The controllers the factory uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
    Freezer,
}

impl Controller {
    const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Freezer,
    ];

    fn v1_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Freezer => "freezer",
        }
    }

    /// What is missing when this controller is, in words for the operator.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Controller::Memory => "memory cgroup (no memory limit, no OOM detection)",
            Controller::Pids => "pids cgroup (no process limit)",
            Controller::Cpu => "cpu cgroup (no cpu shares)",
            Controller::Freezer => "freezer cgroup (suspend uses SIGSTOP)",
        }
    }
}

/// Where one controller lives: a v1 hierarchy of its own, or the unified v2 hierarchy.
#[derive(Debug, Clone)]
struct Hierarchy {
    v2: bool,
    /// `<mount>/<own cgroup>/whirl/<invoker_id>`.
    base: PathBuf,
}

/// The invoker's cgroup layout: per controller, where its containers' cgroups go.
#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    controllers: Vec<(Controller, Hierarchy)>,
}

/// Limits of one container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    pub cpu_shares: u64,
}

/// One controller's directory for one container.
#[derive(Debug, Clone)]
struct Ctl {
    v2: bool,
    dir: PathBuf,
}

/// The cgroups of one container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerCgroup {
    /// Every distinct directory (one per v1 hierarchy, or the single v2 one).
    dirs: Vec<PathBuf>,
    memory: Option<Ctl>,
    freezer: Option<Ctl>,
}

/// A line of /proc/self/mountinfo describing a cgroup mount.
struct CgroupMount {
    v2: bool,
    root: String,
    mount_point: PathBuf,
    options: Vec<String>,
}

fn cgroup_mounts() -> io::Result<Vec<CgroupMount>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    let mut mounts = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let v2 = match post[0] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        mounts.push(CgroupMount {
            v2,
            root: unescape(pre[3]),
            mount_point: PathBuf::from(unescape(pre[4])),
            options: post[2].split(',').map(str::to_string).collect(),
        });
    }
    Ok(mounts)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Our own cgroup path in the hierarchy `mount` (from /proc/self/cgroup), made relative to the
/// mount's root.
fn own_path(proc_cgroup: &str, mount: &CgroupMount) -> Option<String> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if mount.v2 {
            controllers.is_empty()
        } else {
            !controllers.is_empty()
                && controllers
                    .split(',')
                    .all(|c| mount.options.iter().any(|o| o == c))
        };
        if matches {
            // With a bind-mounted subtree the mount's root is a prefix of our path; inside a cgroup
            // namespace the path is already relative to it.
            let rel = if mount.root != "/" {
                path.strip_prefix(mount.root.as_str()).unwrap_or(path)
            } else {
                path
            };
            return Some(rel.trim_start_matches('/').to_string());
        }
    }
    None
}

impl Cgroups {
    /// Finds each controller and creates (or reuses) `<own>/whirl/<invoker_id>` for it. Returns
    /// the layout and the controllers that are missing, with why.
    pub(crate) fn detect(invoker_id: &str) -> (Cgroups, Vec<(Controller, String)>) {
        let mut controllers = Vec::new();
        let mut missing = Vec::new();
        let (mounts, proc_cgroup) = match (cgroup_mounts(), fs::read_to_string("/proc/self/cgroup"))
        {
            (Ok(m), Ok(p)) => (m, p),
            (Err(e), _) | (_, Err(e)) => {
                for c in Controller::ALL {
                    missing.push((c, format!("cannot read cgroup mounts: {e}")));
                }
                return (Cgroups { controllers }, missing);
            }
        };
        let unified = mounts.iter().find(|m| m.v2);
        for c in Controller::ALL {
            let found = match mounts
                .iter()
                .find(|m| !m.v2 && m.options.iter().any(|o| o == c.v1_name()))
            {
                Some(v1) => Self::prepare_v1(v1, &proc_cgroup, invoker_id),
                None => match unified {
                    Some(v2) => Self::prepare_v2(v2, &proc_cgroup, invoker_id, c),
                    None => Err("not mounted".to_string()),
                },
            };
            match found {
                Ok(h) => controllers.push((c, h)),
                Err(why) => missing.push((c, why)),
            }
        }
        (Cgroups { controllers }, missing)
    }

    fn prepare_v1(
        mount: &CgroupMount,
        proc_cgroup: &str,
        invoker_id: &str,
    ) -> Result<Hierarchy, String> {
        let own = own_path(proc_cgroup, mount)
            .ok_or("our own cgroup is not listed in /proc/self/cgroup")?;
        let base = mount.mount_point.join(own).join("whirl").join(invoker_id);
        create_base(&base)?;
        Ok(Hierarchy { v2: false, base })
    }

    fn prepare_v2(
        mount: &CgroupMount,
        proc_cgroup: &str,
        invoker_id: &str,
        c: Controller,
    ) -> Result<Hierarchy, String> {
        let own_rel = own_path(proc_cgroup, mount)
            .ok_or("our own cgroup is not listed in /proc/self/cgroup")?;
        let own = mount.mount_point.join(&own_rel);
        if c != Controller::Freezer {
            let available = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
            if !available.split_whitespace().any(|x| x == c.v1_name()) {
                return Err("not enabled in the unified hierarchy".into());
            }
        }
        let whirl = own.join("whirl");
        let base = whirl.join(invoker_id);
        create_base(&base)?;
        if c == Controller::Freezer {
            // Freezing is part of cgroup v2's core (kernel 5.2+): no controller to enable.
            return if base.join("cgroup.freeze").exists() {
                Ok(Hierarchy { v2: true, base })
            } else {
                Err("cgroup.freeze unsupported by this kernel".into())
            };
        }
        // Enable the controller down to our base. cgroup v2 forbids that in a cgroup that holds
        // processes ("no internal processes"), which is where we usually are: then move this
        // process into a leaf `<own>/invoker` first, as container engines do.
        let enable = format!("+{}", c.v1_name());
        if fs::write(own.join("cgroup.subtree_control"), &enable).is_err() && !own_rel.is_empty() {
            let leaf = own.join("invoker");
            fs::create_dir_all(&leaf)
                .map_err(|e| format!("cannot create {}: {e}", leaf.display()))?;
            fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
                .map_err(|e| format!("cannot move the invoker into {}: {e}", leaf.display()))?;
            fs::write(own.join("cgroup.subtree_control"), &enable)
                .map_err(|e| format!("cannot enable it in {}: {e}", own.display()))?;
        }
        for dir in [&whirl, &base] {
            fs::write(dir.join("cgroup.subtree_control"), &enable)
                .map_err(|e| format!("cannot enable it in {}: {e}", dir.display()))?;
        }
        Ok(Hierarchy { v2: true, base })
    }

    /// Creates a container's cgroups with its limits.
    pub(crate) fn create(&self, id: &str, limits: Limits) -> io::Result<ContainerCgroup> {
        let mut cg = ContainerCgroup {
            dirs: Vec::new(),
            memory: None,
            freezer: None,
        };
        let result = self.fill(id, limits, &mut cg);
        if let Err(e) = result {
            cg.remove_dirs();
            return Err(e);
        }
        Ok(cg)
    }

    fn fill(&self, id: &str, limits: Limits, cg: &mut ContainerCgroup) -> io::Result<()> {
        for (c, h) in &self.controllers {
            let dir = h.base.join(id);
            if !cg.dirs.contains(&dir) {
                fs::create_dir(&dir).or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                cg.dirs.push(dir.clone());
            }
            match (c, h.v2) {
                (Controller::Memory, false) => {
                    write(&dir, "memory.limit_in_bytes", limits.memory_bytes)?;
                    // memory+swap (present when swap accounting is on): no swapping past the limit.
                    if dir.join("memory.memsw.limit_in_bytes").exists() {
                        write(&dir, "memory.memsw.limit_in_bytes", limits.memory_bytes)?;
                    }
                }
                (Controller::Memory, true) => {
                    write(&dir, "memory.max", limits.memory_bytes)?;
                    if dir.join("memory.swap.max").exists() {
                        write(&dir, "memory.swap.max", 0)?;
                    }
                }
                (Controller::Pids, _) => write(&dir, "pids.max", limits.pids)?,
                (Controller::Cpu, false) => write(&dir, "cpu.shares", limits.cpu_shares.max(2))?,
                // The conversion runc and crun use: shares [2, 262144] onto weight [1, 10000].
                (Controller::Cpu, true) => write(
                    &dir,
                    "cpu.weight",
                    1 + ((limits.cpu_shares.clamp(2, 262_144) - 2) * 9999) / 262_142,
                )?,
                (Controller::Freezer, _) => {}
            }
            match c {
                Controller::Memory => cg.memory = Some(Ctl { v2: h.v2, dir }),
                Controller::Freezer => cg.freezer = Some(Ctl { v2: h.v2, dir }),
                _ => {}
            }
        }
        Ok(())
    }

    /// Kills and removes every container cgroup under this invoker's bases (a previous run's
    /// leftovers) except those named in `keep`. Returns how many were removed.
    pub(crate) async fn remove_leftovers(&self, keep: &[String]) -> usize {
        let mut names = Vec::new();
        for (_, h) in &self.controllers {
            for entry in fs::read_dir(&h.base).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !names.contains(&name) && !keep.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        for name in &names {
            let mut cg = ContainerCgroup {
                dirs: Vec::new(),
                memory: None,
                freezer: None,
            };
            for (c, h) in &self.controllers {
                let dir = h.base.join(name);
                if dir.is_dir() && !cg.dirs.contains(&dir) {
                    cg.dirs.push(dir.clone());
                }
                if *c == Controller::Freezer {
                    cg.freezer = Some(Ctl { v2: h.v2, dir });
                }
            }
            cg.kill_all(true).await;
            cg.remove().await;
        }
        names.len()
    }

    /// Removes this invoker's base directories (and `whirl/` when nobody else uses it).
    pub(crate) fn remove_bases(&self) {
        for (_, h) in &self.controllers {
            let _ = fs::remove_dir(&h.base);
            if let Some(parent) = h.base.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Creates `.../whirl/<invoker_id>`. Another invoker's `cleanup()` may remove an empty `whirl/`
/// between our two mkdirs; trying again then succeeds.
fn create_base(base: &Path) -> Result<(), String> {
    let mut result = fs::create_dir_all(base);
    for _ in 0..3 {
        match &result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => result = fs::create_dir_all(base),
            _ => break,
        }
    }
    result.map_err(|e| format!("cannot create {}: {e}", base.display()))
}

fn write(dir: &Path, file: &str, value: u64) -> io::Result<()> {
    fs::write(dir.join(file), value.to_string()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {}/{file}: {e}", dir.display()),
        )
    })
}

/// How long the sandbox's outer processes get to reap their killed children and exit.
const TOP_GRACE: Duration = Duration::from_millis(500);

/// State and parent pid of a process, from /proc/<pid>/stat.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain anything, so split after the last ')'.
    let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

fn read_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

impl ContainerCgroup {
    /// Its directories.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.clone()
    }

    /// The `cgroup.procs` files a process writes its pid into to join every cgroup.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Whether a freezer is available.
    pub(crate) fn can_freeze(&self) -> bool {
        self.freezer.is_some()
    }

    /// Freezes or thaws every process, and waits until the kernel reports it done.
    pub(crate) async fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        let Some(f) = &self.freezer else {
            return Err(io::Error::other("no freezer"));
        };
        let (file, value, state_file, done) = if f.v2 {
            (
                "cgroup.freeze",
                if frozen { "1" } else { "0" },
                "cgroup.events",
                if frozen { "frozen 1" } else { "frozen 0" },
            )
        } else {
            let v = if frozen { "FROZEN" } else { "THAWED" };
            ("freezer.state", v, "freezer.state", v)
        };
        fs::write(f.dir.join(file), value)?;
        // Freezing is asynchronous (v1 passes through FREEZING): poll until it settles. It usually
        // has by the first read.
        let mut delay = Duration::from_micros(100);
        for _ in 0..200 {
            let state = fs::read_to_string(f.dir.join(state_file))?;
            if state.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
            if !f.v2 && frozen {
                // A v1 freeze can stall on a task in an uninterruptible sleep; asking again retries.
                fs::write(f.dir.join(file), value)?;
            }
        }
        Err(io::Error::other(format!(
            "{} did not reach {done}",
            f.dir.display()
        )))
    }

    /// SIGKILLs every process in the container's cgroups; with `inner_first` (a sandbox with its
    /// own pid namespace), inner ones first.
    ///
    /// The order matters there: the sandbox's outer process (the one the factory spawned) waits for the
    /// pid namespace's init and exits with its status. Killed together, the outer one may die
    /// first, orphaning init's zombie to the machine's pid 1, which need not reap it. So processes
    /// whose parent is in the container die first; the outer ones reap them and exit on their
    /// own (or are killed after a short grace).
    pub(crate) async fn kill_all(&self, inner_first: bool) {
        let pids = if inner_first { self.pids() } else { Vec::new() };
        let (inner, top): (Vec<i32>, Vec<i32>) = pids
            .iter()
            .partition(|&&p| proc_stat(p).is_some_and(|(_, ppid)| pids.contains(&ppid)));
        for &pid in &inner {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.thaw();
        if !inner.is_empty() {
            let mut delay = Duration::from_micros(100);
            let mut waited = Duration::ZERO;
            while waited < TOP_GRACE && top.iter().any(|&p| alive(p)) {
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(10));
            }
        }
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(d) = self.dirs.iter().find(|d| d.join("cgroup.kill").exists()) {
            // cgroup v2 (5.14+): also whatever forked meanwhile.
            let _ = fs::write(d.join("cgroup.kill"), "1");
        }
        self.thaw();
    }

    fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.dirs.iter().flat_map(|d| read_pids(d)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Thaws a frozen container (killed tasks only die once thawed).
    fn thaw(&self) {
        if let Some(f) = &self.freezer {
            let _ = if f.v2 {
                fs::write(f.dir.join("cgroup.freeze"), "0")
            } else {
                fs::write(f.dir.join("freezer.state"), "THAWED")
            };
        }
    }

    /// Whether the kernel's OOM killer struck in this container.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some(m) = &self.memory else { return false };
        let counter = |file: &str, key: &str| -> Option<u64> {
            let text = fs::read_to_string(m.dir.join(file)).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        };
        if m.v2 {
            counter("memory.events", "oom_kill ").is_some_and(|n| n > 0)
        } else {
            // `oom_kill` in memory.oom_control (4.13+); before that, hitting the limit at all.
            match counter("memory.oom_control", "oom_kill ") {
                Some(n) => n > 0,
                None => counter("memory.failcnt", "").is_some_and(|n| n > 0),
            }
        }
    }

    /// Whether no process is left.
    fn is_empty(&self) -> bool {
        self.dirs.iter().all(|d| read_pids(d).is_empty())
    }

    /// Waits (briefly) for the processes to be gone, killing stragglers, then removes the cgroups.
    pub(crate) async fn remove(&self) {
        let mut delay = Duration::from_micros(200);
        for _ in 0..100 {
            if self.is_empty() {
                break;
            }
            self.kill_all(false).await;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
        self.remove_dirs();
    }

    fn remove_dirs(&self) {
        for dir in &self.dirs {
            if let Err(e) = fs::remove_dir(dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(cgroup = %dir.display(), error = %e, "cannot remove a container's cgroup");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_path_in_hybrid_layout() {
        let proc_cgroup = "4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n";
        let memory = CgroupMount {
            v2: false,
            root: "/".into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            options: vec!["rw".into(), "memory".into()],
        };
        assert_eq!(own_path(proc_cgroup, &memory).unwrap(), "process_api/abc");
        let cpu = CgroupMount {
            v2: false,
            root: "/".into(),
            mount_point: "/x".into(),
            options: vec!["rw".into(), "cpu".into(), "cpuacct".into()],
        };
        assert_eq!(own_path(proc_cgroup, &cpu).unwrap(), "");
        let unified = CgroupMount {
            v2: true,
            root: "/".into(),
            mount_point: "/sys/fs/cgroup/unified".into(),
            options: vec!["rw".into()],
        };
        assert_eq!(own_path(proc_cgroup, &unified).unwrap(), "user.slice");
        let bound = CgroupMount {
            v2: false,
            root: "/process_api".into(),
            mount_point: "/m".into(),
            options: vec!["memory".into()],
        };
        assert_eq!(own_path(proc_cgroup, &bound).unwrap(), "abc");
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
