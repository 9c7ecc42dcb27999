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
//! The invoker annotates the records of out-of-band stores with `container` (the log SPI's
//! contract). A container runs one activation at a time and its runtime ends each with a
//! sentinel line on stdout and on stderr, so per stream the container's lines fall into segments
//! that each end with a sentinel; the activation's segment is the one whose sentinel was stamped
//! nearest to the activation's end (and not before its start). Lines are returned in the record
//! format (`<time> <stream>: <message>`), both streams merged by time. While an activation's
//! sentinel has not reached rsyslog yet, the lines since the previous sentinel are returned.
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
        self.config.dir.join(format!("{}.log", container.replace('/', "_")))
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

/// The lines of one activation that ran from `start_ns` to `end_ns` in the container whose
/// lines are `entries` (see the crate documentation).
fn select(entries: &[Entry], start_ns: i128, end_ns: i128) -> Vec<Entry> {
    let mut out = Vec::new();
    for stream in [LogStream::Stdout, LogStream::Stderr] {
        let lines: Vec<&Entry> = entries.iter().filter(|e| e.stream == stream).collect();
        let sentinels: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].message == SENTINEL)
            .collect();
        // The activation's own sentinel: stamped nearest its end, not before its start.
        let own = sentinels
            .iter()
            .copied()
            .filter(|&i| lines[i].ns >= start_ns)
            .min_by_key(|&i| (lines[i].ns - end_ns).abs());
        let (from, to) = match own {
            Some(end) => {
                let from = sentinels
                    .iter()
                    .copied()
                    .rfind(|&i| i < end)
                    .map_or(0, |i| i + 1);
                (from, end)
            }
            // Not arrived (yet): what came after the last sentinel before the start.
            None => {
                let from = sentinels
                    .iter()
                    .copied()
                    .rfind(|&i| lines[i].ns < start_ns)
                    .map_or(0, |i| i + 1);
                (from, lines.len())
            }
        };
        out.extend(
            lines[from..to]
                .iter()
                .filter(|e| e.message != SENTINEL)
                .map(|e| (*e).clone()),
        );
    }
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
        let Some(container) = activation.annotations.get("container").and_then(|v| v.as_str())
        else {
            // Not run in a container of this store's (e.g. failed before one existed).
            return Ok(activation.logs.clone());
        };
        let text = read(&self.file_of(container)).await?;
        let entries = parse(&text);
        let start_ns = i128::from(activation.start) * 1_000_000;
        let end_ms = if activation.end == 0 {
            whirl_model::time::now_ms()
        } else {
            activation.end
        };
        let end_ns = i128::from(end_ms) * 1_000_000;
        Ok(select(&entries, start_ns, end_ns)
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
        let entries = vec![
            e(100, Stdout, "a1"),
            e(101, Stderr, "a2"),
            e(102, Stdout, SENTINEL),
            e(102, Stderr, SENTINEL),
            e(200, Stdout, "b1"),
            e(201, Stderr, "b2"),
            e(202, Stdout, SENTINEL),
            e(203, Stderr, SENTINEL),
            e(300, Stdout, "c1"),
        ];
        let names = |v: Vec<Entry>| v.into_iter().map(|e| e.message).collect::<Vec<_>>();
        assert_eq!(names(select(&entries, 99 * 1_000_000, 102 * 1_000_000)), ["a1", "a2"]);
        assert_eq!(names(select(&entries, 199 * 1_000_000, 202 * 1_000_000)), ["b1", "b2"]);
        // The previous sentinel stamped after this start (a late read) still ends the previous one.
        assert_eq!(names(select(&entries, 102 * 1_000_000, 202 * 1_000_000)), ["b1", "b2"]);
        // Sentinel not arrived yet.
        assert_eq!(names(select(&entries, 299 * 1_000_000, 301 * 1_000_000)), ["c1"]);
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
