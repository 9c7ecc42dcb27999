//! The container SPI's conformance suite against the `process` factory, with the real runtime
//! and real interpreters (/usr/bin/python3, /usr/bin/node) in the real sandbox.

mod common;

use whirl_model::manifest::Launcher;
use whirl_spi::conformance::container::{container_factory, TestAction};

async fn conformance(launcher: Launcher, name: &str) {
    let area = common::Area::new().await;
    let factory = area.factory(name);
    container_factory(
        &factory,
        common::kind(launcher),
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
