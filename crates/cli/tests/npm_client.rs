//! Compatibility: the published `openwhisk` npm client drives the real platform.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openwhisk_npm_client_works_unchanged() {
    let stdout = common::run_npm_client_script("client.js").await;
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
