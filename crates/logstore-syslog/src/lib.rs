//! The `syslog` log store: out of band. Action containers log through the Docker Engine's
//! `syslog` log driver (the store's [`container_parameters`](LogStore::container_parameters):
//! `--log-driver syslog --log-opt syslog-address=… syslog-format=rfc5424micro tag={{.Name}}`)
//! straight into **rsyslog**, which files each container's lines; the invoker never reads them
//! (`collects_in_band` is false, and the `docker` factory does not even attach to such
//! containers). `GET …/activations/{id}/logs` asks rsyslog's store for the activation's lines.
//!
//! # Why rsyslog
//!
//! It is a real, widely deployed log system, a Debian package that starts in milliseconds without
//! systemd, and Docker ships a driver for it, so no agent of ours runs in the log path. Its
//! RFC 5424 input keeps Docker's microsecond timestamps, the container's name (the tag) and the
//! stream (stdout is severity `info`, stderr `err`). Elasticsearch, Loki or Splunk would need
//! packages Debian does not carry; journald needs systemd.
//!
//! # What rsyslog is configured with
//!
//! An `imtcp` input on the address the store names, and a rule writing each message as one JSON
//! object per line to `<dir>/<container name>.log` (`scripts/services` writes exactly this):
//!
//! ```text
//! template(name="whirl_file" type="string" string="<dir>/%app-name:::secpath-replace%.log")
//! template(name="whirl_line" type="list") {
//!   constant(value="{\"time\":\"") property(name="timereported" dateFormat="rfc3339")
//!   constant(value="\",\"severity\":") property(name="syslogseverity")
//!   constant(value=",\"message\":\"") property(name="msg" format="json")
//!   constant(value="\"}\n")
//! }
//! ruleset(name="whirl") { action(type="omfile" dynaFile="whirl_file" template="whirl_line") }
//! ```
//!
//! # Finding one activation's lines
//!
//! The invoker annotates the records of out-of-band stores with `container`: the container's
//! id and how many activations reached it before this one (the log SPI's contract). A container
//! runs one activation at a time and its runtime ends each with a sentinel line on stdout and on
//! stderr, so per stream the container's lines fall into parts that each end with a sentinel,
//! and the activation's lines are the n-th part of each stream. This needs no clock: time stamps
//! of milliseconds (the record's) cannot tell apart warm activations that follow each other
//! within one. Lines are returned in the record format (`<time> <stream>: <message>`), both
//! streams merged by time. While the activation's output is still arriving, what came so far.
//!
//! Limits: the store reads rsyslog's files, so the controller must see rsyslog's directory (same
//! host or a shared volume); runtimes must print sentinels (OpenWhisk's and Whirl's do); and, as
//! with any log driver, a log limit is not enforced on what a container writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use whirl_model::Activation;
use whirl_spi::{Container, LogContext, LogError, LogLine, LogStore, LogStream};

/// The line OpenWhisk runtimes print on stdout and on stderr after each activation.
const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// Syslog severity of `err`, which Docker's driver gives stderr lines (stdout: `info`).
const SEVERITY_ERR: u8 = 3;

/// Settings of the `syslog` log store (`[log_store] type = "syslog"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogLogStoreConfig {
    /// Where Docker's syslog driver sends the lines (`tcp://host:port`, `udp://…`, `unix://…`).
    pub address: String,
    /// Where rsyslog files them, one `<container>.log` per container.
    pub dir: PathBuf,
}

impl Default for SyslogLogStoreConfig {
    fn default() -> Self {
        Self {
            address: "tcp://127.0.0.1:5514".into(),
            dir: "/var/log/whirl".into(),
        }
    }
}

/// The `syslog` log store.
#[derive(Debug, Clone)]
pub struct SyslogLogStore {
    config: SyslogLogStoreConfig,
}

/// One line as rsyslog filed it.
#[derive(Debug, Deserialize)]
struct Filed {
    time: String,
    severity: u8,
    message: String,
}

/// A parsed line: nanoseconds since the epoch, stream, message.
#[derive(Debug, Clone)]
struct Entry {
    ns: i128,
    stream: LogStream,
    message: String,
}

impl SyslogLogStore {
    /// A store reading rsyslog's files in `config.dir`.
    pub fn new(config: SyslogLogStoreConfig) -> Self {
        Self { config }
    }

    /// The file rsyslog keeps a container's lines in (`secpath-replace` turns `/` into `_`).
    pub fn file_of(&self, container: &str) -> PathBuf {
        self.config
            .dir
            .join(format!("{}.log", container.replace('/', "_")))
    }
}

fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Filed>(l).ok())
        .filter_map(|f| {
            let t = time::OffsetDateTime::parse(
                &f.time,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(Entry {
                ns: t.unix_timestamp_nanos(),
                stream: if f.severity <= SEVERITY_ERR {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                },
                message: f.message,
            })
        })
        .collect()
}

/// The lines of the activation that was the `run`-th (from 0) to reach the container whose
/// lines are `entries`: per stream, the part after that stream's `run`-th sentinel up to the
/// next one (see the crate documentation).
fn select(entries: &[Entry], run: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    for stream in [LogStream::Stdout, LogStream::Stderr] {
        let mut seen = 0;
        for e in entries.iter().filter(|e| e.stream == stream) {
            if e.message == SENTINEL {
                seen += 1;
                if seen > run {
                    break;
                }
            } else if seen == run {
                out.push(e.clone());
            }
        }
    }
    // Both streams in the order printed (a stable sort keeps each stream's own order).
    out.sort_by_key(|e| e.ns);
    out
}

fn system_time(ns: i128) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

async fn read(path: &Path) -> Result<String, LogError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(text),
        // Nothing of this container has reached rsyslog (yet).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(LogError::Backend(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

#[async_trait]
impl LogStore for SyslogLogStore {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn container_parameters(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        std::collections::BTreeMap::from([
            ("log-driver".to_string(), vec!["syslog".to_string()]),
            (
                "log-opt".to_string(),
                vec![
                    format!("syslog-address={}", self.config.address),
                    "syslog-format=rfc5424micro".to_string(),
                    "tag={{.Name}}".to_string(),
                ],
            ),
        ])
    }

    fn collects_in_band(&self) -> bool {
        false
    }

    async fn collect(
        &self,
        _ctx: &LogContext<'_>,
        _container: &dyn Container,
    ) -> Result<Vec<String>, LogError> {
        // Never called: the invoker skips collection for out-of-band stores.
        Ok(Vec::new())
    }

    async fn fetch(&self, activation: &Activation) -> Result<Vec<String>, LogError> {
        let container = activation.annotations.get("container");
        let id = container.and_then(|c| c["id"].as_str());
        let run = container.and_then(|c| c["run"].as_u64());
        let (Some(id), Some(run)) = (id, run) else {
            // Not run in a container of this store's (e.g. failed before one existed).
            return Ok(activation.logs.clone());
        };
        let text = read(&self.file_of(id)).await?;
        let entries = parse(&text);
        Ok(select(&entries, run as usize)
            .into_iter()
            .map(|e| {
                LogLine {
                    time: system_time(e.ns),
                    stream: e.stream,
                    message: e.message,
                }
                .formatted()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ms: i128, stream: LogStream, message: &str) -> Entry {
        Entry {
            ns: ms * 1_000_000,
            stream,
            message: message.into(),
        }
    }

    #[test]
    fn picks_the_activation_segment_per_stream() {
        use LogStream::{Stderr, Stdout};
        // Each stream's lines in order; across streams Docker's stamps may interleave.
        let entries = vec![
            e(100, Stdout, "a1"),
            e(101, Stderr, "a2"),
            e(102, Stdout, SENTINEL),
            e(102, Stderr, SENTINEL),
            e(102, Stdout, "b1"),
            e(102, Stdout, SENTINEL),
            e(101, Stderr, "b2"),
            e(103, Stderr, SENTINEL),
            e(300, Stdout, "c1"),
        ];
        let names = |v: Vec<Entry>| v.into_iter().map(|e| e.message).collect::<Vec<_>>();
        assert_eq!(names(select(&entries, 0)), ["a1", "a2"]);
        assert_eq!(names(select(&entries, 1)), ["b2", "b1"]);
        // Sentinel not arrived yet: what there is so far.
        assert_eq!(names(select(&entries, 2)), ["c1"]);
        assert!(select(&entries, 3).is_empty());
    }

    #[test]
    fn parses_rsyslog_lines() {
        let text = "{\"time\":\"2026-12-02T17:42:08.442314Z\",\"severity\":3,\"message\":\"err\"}\n\
                    {\"time\":\"2026-12-02T18:42:08.442331+01:00\",\"severity\":6,\"message\":\"hi \\\"q\\\"\"}\n\
                    garbage\n";
        let p = parse(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].stream, LogStream::Stderr);
        assert_eq!(p[1].message, "hi \"q\"");
        assert_eq!(p[1].ns - p[0].ns, 17_000);
    }
}
