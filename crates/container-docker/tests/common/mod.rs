//! Shared by the tests that need Docker (also `whirl-logstore-syslog`'s): Whirl's runtime image,
//! built by `scripts/build-images`, and factories for test invokers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

use whirl_container_docker::{DockerFactory, DockerFactoryConfig};
use whirl_model::manifest::{Launcher, RuntimeKind};

/// Builds (or finds up to date) Whirl's runtime image; its name.
pub fn runtime_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/build-images");
            let out = Command::new(script)
                .output()
                .expect("run scripts/build-images");
            assert!(
                out.status.success(),
                "scripts/build-images failed (is dockerd running? scripts/services starts it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .clone()
}

pub fn kind(launcher: Launcher) -> RuntimeKind {
    let kind = match launcher {
        Launcher::Python => "python:3",
        Launcher::Node => "nodejs:20",
        Launcher::Native => "native",
    };
    RuntimeKind {
        kind: kind.into(),
        default: true,
        deprecated: false,
        launcher,
        command: None,
        image: Some("openwhisk/not-reachable-here:nightly".into()),
        sentinelled_logs: true,
        concurrent: false,
        stem_cells: vec![],
    }
}

pub fn factory(name: &str) -> DockerFactory {
    factory_with(name, DockerFactoryConfig::default())
}

/// A factory for invoker `test-<pid>-<name>` whose kinds all run the runtime image.
pub fn factory_with(name: &str, config: DockerFactoryConfig) -> DockerFactory {
    let image = runtime_image();
    DockerFactory::new(DockerFactoryConfig {
        images: BTreeMap::from(
            ["python:3", "nodejs:20", "native"].map(|k| (k.to_string(), image.clone())),
        ),
        invoker_id: format!("test-{}-{name}", std::process::id()),
        ..config
    })
    .expect("valid config")
}
