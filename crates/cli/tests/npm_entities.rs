//! Compatibility: the published `openwhisk` npm client drives every entity type of the real
//! platform (packages, bindings, triggers, rules, sequences of catalog actions, activations).

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openwhisk_npm_client_drives_every_entity_type() {
    let stdout = common::run_npm_client_script("entities.js").await;
    assert!(
        stdout.contains("npm entities: all checks passed"),
        "{stdout}"
    );
}
