//! The container SPI's conformance suite against the `docker` factory: real containers of the
//! runtime image `scripts/build-images` builds, on the real Docker daemon (which
//! `scripts/services` starts; without one these tests fail, naming it).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

use whirl_container_docker::{DockerFactory, DockerFactoryConfig};
use whirl_model::manifest::{Launcher, RuntimeKind};
use whirl_spi::conformance::container::{container_factory, TestAction};

/// Builds (or finds up to date) Whirl's runtime image; its name.
fn runtime_image() -> String {
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

fn kind(launcher: Launcher) -> RuntimeKind {
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

fn factory(name: &str) -> DockerFactory {
    let image = runtime_image();
    DockerFactory::new(DockerFactoryConfig {
        images: BTreeMap::from(
            ["python:3", "nodejs:20", "native"].map(|k| (k.to_string(), image.clone())),
        ),
        invoker_id: format!("test-{}-{name}", std::process::id()),
        ..Default::default()
    })
    .expect("valid config")
}

async fn conformance(launcher: Launcher, name: &str) {
    container_factory(
        &factory(name),
        kind(launcher),
        &TestAction::for_launcher(launcher),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python() {
    conformance(Launcher::Python, "conf-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node() {
    conformance(Launcher::Node, "conf-node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native() {
    conformance(Launcher::Native, "conf-native").await;
}
