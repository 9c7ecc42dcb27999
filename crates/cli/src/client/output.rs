//! What the client prints: `ok:` lines, pretty JSON, aligned tables, timestamps, and a spinner
//! on stderr while a long wait is under way (only when stderr is a terminal).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Pretty JSON on stdout.
pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Prints rows as columns separated by two spaces, the last column unpadded. A header row, if
/// given, goes first.
pub fn table(header: Option<&[&str]>, rows: &[Vec<String>]) {
    let mut all: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if let Some(h) = header {
        all.push(h.iter().map(|s| s.to_string()).collect());
    }
    all.extend(rows.iter().cloned());
    let cols = all.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in &all {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &all {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', width[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
}

/// An epoch-milliseconds timestamp as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn datetime(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A duration in ms, short: `12ms`, `1.5s`, `2m3s`.
pub fn duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// The `value` of annotation or parameter `key` in an OpenWhisk key/value array.
pub fn kv<'a>(arr: &'a Value, key: &str) -> Option<&'a Value> {
    arr.as_array()?
        .iter()
        .find(|e| e["key"] == key)
        .map(|e| &e["value"])
}

/// A value for a table cell: strings bare, anything else as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// A spinner with a message and the seconds elapsed, redrawn on stderr until stopped (dropped).
/// Does nothing when stderr is not a terminal, so scripts and logs stay clean.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning after a short grace period (quick answers never show it).
    pub fn start(message: impl Into<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Self { stop, handle: None };
        }
        let message = message.into();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let started = Instant::now();
            let mut drawn = false;
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let t = started.elapsed();
                if t >= Duration::from_millis(300) {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{} {message} ({}s)",
                        FRAMES[i % FRAMES.len()],
                        t.as_secs()
                    );
                    let _ = err.flush();
                    drawn = true;
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if drawn {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(123_000), "2m3s");
        let a = serde_json::json!([{"key": "exec", "value": "python:3"}]);
        assert_eq!(kv(&a, "exec").unwrap(), "python:3");
        assert_eq!(cell(&serde_json::json!(1)), "1");
    }
}
