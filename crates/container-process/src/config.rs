//! Configuration of the `process` factory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How much isolation the factory insists on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Use every isolation feature this machine offers; run without the missing ones and log one
    /// warning at start naming them (the default: works on a laptop and on a hardened host).
    #[default]
    Auto,
    /// Refuse to start unless namespaces, the private root, the identity change and the memory,
    /// pids and cpu cgroups are all available. (A missing freezer is tolerated: suspend falls back
    /// to SIGSTOP.)
    Required,
    /// No sandbox and no cgroups: the runtime is a plain child process of the invoker, with the
    /// invoker's identity and view of the machine and no limits. For debugging only.
    Off,
}

impl SandboxMode {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Auto => "auto",
            SandboxMode::Required => "required",
            SandboxMode::Off => "off",
        }
    }
}

/// Configuration of the `process` container factory.
///
/// The serialized fields come from the operator's config file; `root_dir`, `runtime_command` and
/// `invoker_id` are not configurable there: the composition root fills them in (they depend on
/// the data directory, the running binary and the invoker's identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessFactoryConfig {
    /// Memory available to action containers, in MB (reported as the factory's capacity).
    pub user_memory_mb: u64,
    /// Most containers alive at once. Default: `user_memory_mb / 128` (at least 1): OpenWhisk's
    /// smallest memory limit is 128 MB, so a memory-based pool can never fit more than that, and
    /// the count also bounds processes and open descriptors when many tiny containers idle.
    pub max_containers: Option<usize>,
    /// How much isolation to insist on.
    pub sandbox: SandboxMode,
    /// Most processes (and threads) in one container (cgroup pids controller).
    pub pids_limit: u64,
    /// Soft and hard limit of open files in one container (RLIMIT_NOFILE).
    pub nofile: u64,
    /// System directories the sandbox sees, read-only, at the same path; absent ones are skipped,
    /// and one that is a symbolic link (`/bin -> usr/bin`) is recreated as that link.
    pub readonly_paths: Vec<PathBuf>,
    /// Most bytes of output kept per container while nobody collects it; past it the oldest lines
    /// are dropped and the next collection is marked truncated. Default 10 MiB, OpenWhisk's
    /// largest per-activation log limit, so a collector never loses lines it would have kept.
    pub log_buffer_bytes: usize,

    /// Directory for the containers' private directories (e.g. `<data_dir>/containers`); it
    /// belongs to this factory alone: `init()` removes whatever it finds in it.
    #[serde(skip)]
    pub root_dir: PathBuf,
    /// Program and leading arguments that start Whirl's runtime, e.g. `[<current exe>, "runtime"]`;
    /// the factory appends `--sandbox <spec> --listen ... --launcher ... --work-dir ...`.
    #[serde(skip)]
    pub runtime_command: Vec<String>,
    /// Names this invoker's cgroups (`whirl/<invoker_id>/<container>`), so a restarted invoker finds
    /// its predecessor's leftovers and nobody else's. Letters, digits, `_`, `-` and `.`.
    #[serde(skip)]
    pub invoker_id: String,
}

impl Default for ProcessFactoryConfig {
    fn default() -> Self {
        Self {
            user_memory_mb: 2048,
            max_containers: None,
            sandbox: SandboxMode::Auto,
            pids_limit: 1024,
            nofile: 1024,
            readonly_paths: [
                "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            log_buffer_bytes: 10 << 20,
            root_dir: PathBuf::new(),
            runtime_command: Vec::new(),
            invoker_id: "0".into(),
        }
    }
}

impl ProcessFactoryConfig {
    /// The container count the factory reports: `max_containers`, or `user_memory_mb / 128`.
    pub fn effective_max_containers(&self) -> usize {
        self.max_containers
            .unwrap_or((self.user_memory_mb / 128) as usize)
            .max(1)
    }

    /// Checks the values a factory cannot work without.
    pub fn validate(&self) -> Result<(), String> {
        if !self.root_dir.is_absolute() {
            return Err(format!(
                "process factory: root_dir must be an absolute path, not '{}'",
                self.root_dir.display()
            ));
        }
        if self.runtime_command.is_empty() {
            return Err("process factory: runtime_command is empty".into());
        }
        let id_ok = !self.invoker_id.is_empty()
            && self
                .invoker_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !self.invoker_id.starts_with('.');
        if !id_ok {
            return Err(format!(
                "process factory: invoker_id '{}' must be letters, digits, '_', '-', '.'",
                self.invoker_id
            ));
        }
        if self.pids_limit == 0 || self.nofile == 0 || self.user_memory_mb == 0 {
            return Err(
                "process factory: user_memory_mb, pids_limit and nofile must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: ProcessFactoryConfig =
            serde_json::from_str(r#"{"sandbox":"required","pids_limit":64}"#).unwrap();
        assert_eq!(c.sandbox, SandboxMode::Required);
        assert_eq!(c.pids_limit, 64);
        assert_eq!(c.effective_max_containers(), 16);
        let err = serde_json::from_str::<ProcessFactoryConfig>(r#"{"root_dir":"/x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `root_dir`"),
            "{err}"
        );
        assert!(serde_json::from_str::<ProcessFactoryConfig>(r#"{"sandbox":"maybe"}"#).is_err());
    }

    #[test]
    fn validation() {
        let mut c = ProcessFactoryConfig::default();
        assert!(c.validate().is_err(), "empty root_dir");
        c.root_dir = "/var/lib/whirl/containers".into();
        c.runtime_command = vec!["/usr/bin/whirl".into(), "runtime".into()];
        assert!(c.validate().is_ok());
        c.invoker_id = "../x".into();
        assert!(c.validate().is_err());
    }
}
