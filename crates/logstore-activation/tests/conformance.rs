//! The log-store SPI's conformance suite against the `activation` store, with real sandboxed
//! containers of the `process` factory running the real runtime and interpreters.

mod common;

use whirl_logstore_activation::ActivationLogStore;
use whirl_model::manifest::Launcher;
use whirl_spi::conformance::logstore::log_store;

async fn conformance(launcher: Launcher, name: &str) {
    let area = common::Area::new();
    let factory = area.factory(name);
    log_store(&ActivationLogStore, &factory, common::kind(launcher)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python() {
    conformance(Launcher::Python, "logs-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node() {
    conformance(Launcher::Node, "logs-node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native() {
    conformance(Launcher::Native, "logs-native").await;
}
