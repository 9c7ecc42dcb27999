//! The container SPI's conformance suite against the `docker` factory: real containers of the
//! runtime image `scripts/build-images` builds, on the real Docker daemon (which
//! `scripts/services` starts; without one these tests fail, naming it).

mod common;

use whirl_model::manifest::Launcher;
use whirl_spi::conformance::container::{container_factory, TestAction};

async fn conformance(launcher: Launcher, name: &str) {
    container_factory(
        &common::factory(name),
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
