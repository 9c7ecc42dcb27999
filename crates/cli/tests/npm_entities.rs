//! Compatibility: the published `openwhisk` npm client drives every entity type of the real
//! platform (packages, bindings, triggers, rules, sequences of catalog actions, activations).

mod common;

use std::process::Command;

use common::{Platform, GUEST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openwhisk_npm_client_drives_every_entity_type() {
    let dir = common::repo_root().join("crates/cli/tests/npm");
    if !dir.join("node_modules/openwhisk").exists() {
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for this test");
        assert!(st.success(), "npm install failed");
    }
    let p = Platform::start("").await;
    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let host = p.url("");
        move || {
            Command::new("node")
                .arg("entities.js")
                .current_dir(dir)
                .env("WHIRL_APIHOST", host)
                .env("WHIRL_AUTH", format!("{}:{}", GUEST.0, GUEST.1))
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "npm client failed:\n{stdout}\n{stderr}\nplatform log:\n{}",
        p.log_text()
    );
    assert!(
        stdout.contains("npm entities: all checks passed"),
        "{stdout}"
    );
}
