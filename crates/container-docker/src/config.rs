//! Configuration of the `docker` factory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Configuration of the `docker` container factory (`[container_factory] type = "docker"`).
///
/// `invoker_id` is not configurable in the file: the composition root fills it in from the
/// invoker's id and data directory, so two platforms on one Docker host never take each other's
/// containers for leftovers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerFactoryConfig {
    /// The Docker Engine API: `unix:///var/run/docker.sock` (the default, or `DOCKER_HOST`),
    /// another `unix://` socket, or `tcp://host:port` / `http://host:port`.
    pub host: Option<String>,
    /// Memory available to action containers, in MB (capped at the Docker host's memory).
    pub user_memory_mb: u64,
    /// Most containers alive at once. Default: `user_memory_mb / 128` (at least 1).
    pub max_containers: Option<usize>,
    /// Docker network the containers join; the invoker reaches each at its IP on this network,
    /// port 8080 (OpenWhisk's `container-args.network`, default `bridge`).
    pub network: String,
    /// Images per runtime kind, overriding the manifest's `image` (e.g. map every kind to the
    /// image `scripts/build-images` builds: `{ "python:3" = "whirl/runtime:local" }`).
    pub images: BTreeMap<String, String>,
    /// Most processes (and threads) in one container (`--pids-limit`).
    pub pids_limit: i64,
    /// Soft and hard limit of open files in one container (`--ulimit nofile`).
    pub nofile: i64,
    /// Capabilities dropped from every container (OpenWhisk drops NET_RAW and NET_ADMIN).
    pub cap_drop: Vec<String>,
    /// Docker log driver when the log store asks for none: the factory reads each container's
    /// output itself (attach), so Docker need not also store it (`none`). Set `json-file` to keep
    /// `docker logs` working.
    pub log_driver: String,
    /// Most bytes of output kept per container while nobody collects it (as the process factory).
    pub log_buffer_bytes: usize,
    /// Most `docker create`+`start` sequences in flight at once (OpenWhisk's `parallel-runs`).
    pub parallel_creates: usize,
    /// How long one Engine API call may take, in seconds (image pulls get ten times as long).
    pub timeout_secs: u64,
    /// Extra environment for every container (OpenWhisk's `container-args.extra-env-vars`).
    pub env: BTreeMap<String, String>,
    /// DNS servers for the containers (`--dns`).
    pub dns: Vec<String>,

    /// Labels every container (`whirl.invoker=<invoker_id>`) and prefixes its name.
    #[serde(skip)]
    pub invoker_id: String,
}

impl Default for DockerFactoryConfig {
    fn default() -> Self {
        Self {
            host: None,
            user_memory_mb: 2048,
            max_containers: None,
            network: "bridge".into(),
            images: BTreeMap::new(),
            pids_limit: 1024,
            nofile: 1024,
            cap_drop: vec!["NET_RAW".into(), "NET_ADMIN".into()],
            log_driver: "none".into(),
            log_buffer_bytes: 10 << 20,
            parallel_creates: 10,
            timeout_secs: 60,
            env: BTreeMap::new(),
            dns: Vec::new(),
            invoker_id: "0".into(),
        }
    }
}

impl DockerFactoryConfig {
    /// The container count the factory reports: `max_containers`, or `user_memory_mb / 128`.
    pub fn effective_max_containers(&self) -> usize {
        self.max_containers
            .unwrap_or((self.user_memory_mb / 128) as usize)
            .max(1)
    }

    /// Checks the values a factory cannot work without.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.invoker_id.is_empty()
            && self
                .invoker_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !id_ok {
            return Err(format!(
                "docker factory: invoker_id '{}' must be letters, digits, '_', '-', '.'",
                self.invoker_id
            ));
        }
        if self.user_memory_mb == 0 || self.pids_limit <= 0 || self.nofile <= 0 {
            return Err(
                "docker factory: user_memory_mb, pids_limit and nofile must be positive".into(),
            );
        }
        if self.network.is_empty() || self.network == "host" || self.network == "none" {
            return Err(format!(
                "docker factory: network '{}' cannot be used: containers need an address of their own",
                self.network
            ));
        }
        if self.parallel_creates == 0 || self.timeout_secs == 0 {
            return Err(
                "docker factory: parallel_creates and timeout_secs must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_unknown_keys_and_validation() {
        let c: DockerFactoryConfig = serde_json::from_str(
            r#"{"images":{"python:3":"whirl/runtime:local"},"network":"whirl"}"#,
        )
        .unwrap();
        assert_eq!(c.images["python:3"], "whirl/runtime:local");
        assert_eq!(c.cap_drop, ["NET_RAW", "NET_ADMIN"]);
        assert_eq!(c.effective_max_containers(), 16);
        assert!(c.validate().is_ok());
        let err = serde_json::from_str::<DockerFactoryConfig>(r#"{"invoker_id":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let host = DockerFactoryConfig {
            network: "host".into(),
            ..Default::default()
        };
        assert!(host.validate().is_err());
    }
}
