//! The log-store SPI's conformance suite against the `file` store, with real sandboxed containers
//! of the `process` factory, and the JSON-lines files it leaves behind.

#[path = "../../logstore-activation/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use whirl_logstore_file::{FileLine, FileLogStore, FileLogStoreConfig};
use whirl_model::manifest::Launcher;
use whirl_spi::conformance::logstore::log_store;

fn read_lines(dir: &std::path::Path) -> Vec<FileLine> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<FileLine>(l).expect("each line is a JSON object"))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn conformance(launcher: Launcher, name: &str) {
    let area = common::Area::new();
    let factory = area.factory(name);
    let logs = tempfile::tempdir().unwrap();
    let store = FileLogStore::open(&FileLogStoreConfig::default(), logs.path().to_path_buf())
        .expect("open the store");
    log_store(&store, &factory, common::kind(launcher)).await;

    // The suite's activations are in the files too, one JSON object per line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = read_lines(logs.path());
        if lines.iter().any(|l| l.message.starts_with("crashed ")) || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first: Vec<&FileLine> = lines
        .iter()
        .filter(|l| l.message.starts_with("first "))
        .collect();
    assert_eq!(
        first
            .iter()
            .map(|l| (l.stream.as_str(), l.message.as_str()))
            .collect::<Vec<_>>(),
        [
            ("stdout", "first stdout one"),
            ("stdout", "first stdout two ünïcödé  x"),
            ("stderr", "first stderr one"),
            ("stdout", "first stdout three"),
        ],
        "{lines:#?}"
    );
    let id = &first[0].activation_id;
    assert_eq!(id.len(), 32, "{lines:#?}");
    assert!(first.iter().all(|l| &l.activation_id == id
        && l.namespace == "guest"
        && l.action == "guest/conformance-logs"
        && l.time.len() == 30
        && l.time.ends_with('Z')));
    let second = lines
        .iter()
        .find(|l| l.message == "second stdout one")
        .unwrap();
    assert_ne!(&second.activation_id, id, "each activation has its own id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python() {
    conformance(Launcher::Python, "filelogs-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native() {
    conformance(Launcher::Native, "filelogs-native").await;
}
