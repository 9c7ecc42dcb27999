//! The `file` log store (OpenWhisk's DockerToActivationFileLogStore): the invoker collects each
//! activation's output into its record exactly as the `activation` store does, and also appends
//! one JSON object per line to rotating files that a log shipper (Filebeat, Fluent Bit, Vector,
//! ...) can follow:
//!
//! ```json
//! {"time":"2026-12-02T17:30:01.123456789Z","stream":"stdout","message":"hello",
//!  "activationId":"…32 hex…","action":"guest/pkg/hello","namespace":"guest"}
//! ```
//!
//! Files are `<dir>/userlogs-<epoch ms>.log`; a new one starts once the current one would exceed
//! `max_file_bytes`, and only the newest `max_files` are kept. Writing happens on a thread of its
//! own, fed through a bounded channel: the activation path only formats its lines and hands them
//! over (waiting only if the writer falls a whole channel behind), so a slow disk never blocks
//! the invoker's tasks. The writer flushes whenever it has caught up, so the files trail the
//! records by at most one batch.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use whirl_model::Activation;
use whirl_spi::{Container, LogContext, LogError, LogStore};

/// Settings of the `file` log store (`[log_store] type = "file"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLogStoreConfig {
    /// Directory of the log files (default: `<data dir>/logs`).
    pub dir: Option<PathBuf>,
    /// Size after which a new file is started, in bytes (OpenWhisk's: 100 MB).
    pub max_file_bytes: u64,
    /// How many files to keep (the oldest are removed).
    pub max_files: usize,
}

impl Default for FileLogStoreConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_file_bytes: 100 << 20,
            max_files: 10,
        }
    }
}

impl FileLogStoreConfig {
    /// The directory, defaulting into `data_dir`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("logs"))
    }
}

/// One structured line of the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileLine {
    /// When the line was printed (RFC 3339, UTC, nanoseconds).
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub message: String,
    pub activation_id: String,
    /// The action's path, `namespace/[package/]name`.
    pub action: String,
    /// The invoking namespace.
    pub namespace: String,
}

/// The `file` log store.
#[derive(Debug)]
pub struct FileLogStore {
    dir: PathBuf,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

/// Activations' worth of lines the writer may fall behind before collectors wait.
const BACKLOG: usize = 1024;

impl FileLogStore {
    /// Creates the directory and starts the writer thread.
    pub fn open(config: &FileLogStoreConfig, dir: PathBuf) -> std::io::Result<Self> {
        fs::create_dir_all(&dir)?;
        if config.max_file_bytes == 0 || config.max_files == 0 {
            return Err(std::io::Error::other(
                "file log store: max_file_bytes and max_files must be positive",
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(BACKLOG);
        let writer = Writer {
            dir: dir.clone(),
            max_file_bytes: config.max_file_bytes,
            max_files: config.max_files,
            current: None,
        };
        std::thread::Builder::new()
            .name("whirl-file-logs".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self { dir, tx })
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Splits a formatted record line (`<time padded to 30> <stream>: <message>`) into its parts.
fn split_formatted(line: &str) -> Option<(&str, &str, &str)> {
    let time = line.get(..30)?.trim_end();
    let rest = line.get(31..)?;
    let (stream, message) = rest.split_once(": ")?;
    Some((time, stream, message))
}

#[async_trait]
impl LogStore for FileLogStore {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn collect(
        &self,
        ctx: &LogContext<'_>,
        container: &dyn Container,
    ) -> Result<Vec<String>, LogError> {
        let lines = whirl_logstore_activation::read_activation_logs(ctx, container).await?;
        if lines.is_empty() {
            return Ok(lines);
        }
        let activation = ctx.activation;
        let action = activation
            .path()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/{}", ctx.action.namespace, ctx.action.name));
        let id = activation.activation_id.to_string();
        let mut chunk = Vec::with_capacity(lines.iter().map(|l| l.len() + 160).sum());
        for line in &lines {
            let Some((time, stream, message)) = split_formatted(line) else {
                continue;
            };
            let entry = FileLine {
                time: time.to_string(),
                stream: stream.to_string(),
                message: message.to_string(),
                activation_id: id.clone(),
                action: action.clone(),
                namespace: activation.namespace.clone(),
            };
            if serde_json::to_writer(&mut chunk, &entry).is_ok() {
                chunk.push(b'\n');
            }
        }
        if self.tx.send(chunk).await.is_err() {
            tracing::warn!(activation = %id, "file log store: the writer has stopped; lines not written");
        }
        Ok(lines)
    }

    async fn fetch(&self, activation: &Activation) -> Result<Vec<String>, LogError> {
        Ok(activation.logs.clone())
    }
}

struct Writer {
    dir: PathBuf,
    max_file_bytes: u64,
    max_files: usize,
    current: Option<(BufWriter<File>, u64)>,
}

impl Writer {
    fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>) {
        while let Some(chunk) = rx.blocking_recv() {
            self.write(&chunk);
            // Everything queued meanwhile goes out before the flush.
            while let Ok(chunk) = rx.try_recv() {
                self.write(&chunk);
            }
            if let Some((w, _)) = &mut self.current {
                if let Err(e) = w.flush() {
                    tracing::warn!(error = %e, "file log store: flush failed");
                }
            }
        }
    }

    fn write(&mut self, chunk: &[u8]) {
        let len = chunk.len() as u64;
        let rotate = match &self.current {
            None => true,
            Some((_, size)) => *size > 0 && size + len > self.max_file_bytes,
        };
        if rotate {
            if let Err(e) = self.rotate() {
                tracing::warn!(error = %e, dir = %self.dir.display(), "file log store: cannot open a log file");
                return;
            }
        }
        if let Some((w, size)) = &mut self.current {
            match w.write_all(chunk) {
                Ok(()) => *size += len,
                Err(e) => tracing::warn!(error = %e, "file log store: write failed"),
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some((mut w, _)) = self.current.take() {
            w.flush()?;
        }
        let mut ms = whirl_model::time::now_ms();
        let mut path = self.dir.join(format!("userlogs-{ms}.log"));
        while path.exists() {
            ms += 1;
            path = self.dir.join(format!("userlogs-{ms}.log"));
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.current = Some((BufWriter::with_capacity(64 * 1024, file), 0));
        // Keep the newest `max_files` (names sort by time: same number of digits for centuries).
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("userlogs-") && n.ends_with(".log"))
            })
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(self.max_files);
        for old in &files[..excess] {
            let _ = fs::remove_file(old);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_record_lines() {
        let line = format!(
            "{:<30} stderr: a: b",
            whirl_model::time::log_timestamp(std::time::SystemTime::UNIX_EPOCH)
        );
        let (time, stream, message) = split_formatted(&line).unwrap();
        assert_eq!(time, "1970-01-01T00:00:00.000000000Z");
        assert_eq!((stream, message), ("stderr", "a: b"));
    }

    #[test]
    fn rotates_and_keeps_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = Writer {
            dir: tmp.path().to_path_buf(),
            max_file_bytes: 100,
            max_files: 3,
            current: None,
        };
        for i in 0..10 {
            w.write(format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(60)).as_bytes());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if let Some((f, _)) = &mut w.current {
            f.flush().unwrap();
        }
        let mut files: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 3, "{files:?}");
        let last = fs::read_to_string(files.last().unwrap()).unwrap();
        assert!(last.contains("\"n\":9"), "{last}");
        for f in &files {
            assert!(fs::metadata(f).unwrap().len() <= 100);
        }
    }
}
