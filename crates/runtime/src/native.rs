//! Concurrency for native action-loop executables: one executable process per concurrent slot.
//!
//! An OpenWhisk action-loop executable reads one request line, answers one line on fd 3, and only
//! then reads the next: it cannot be fed several activations at once. So a container whose action
//! has `limits.concurrency` N runs up to N copies of the executable, started as needed (the first
//! at `/init`), each with its own stdin and fd 3. Each copy's stdout and stderr go to pipes of
//! the runtime, which knows which activation that copy is running and writes every line on to
//! the container's output tagged with that activation's id ([`whirl_model::logtag`]), then the
//! activation's tagged sentinels. Output a copy prints while idle belongs to no activation and
//! goes on untagged. A copy that dies fails only its own activation; the next request starts a
//! fresh one. Memory limits apply to the container, so to all copies together.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::path::PathBuf;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::value::RawValue;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use whirl_model::error::messages;
use whirl_model::logtag;

use crate::process::{ActionProcess, Exited};
use crate::server::{error_body, push_single_line, result_response, write_fully};

/// The platform's log reader splits lines at this many bytes (newline included), so a tagged
/// line must fit: longer output lines are split into several tagged lines.
const MAX_LINE: usize = 16 * 1024;

/// One stream of one copy: its pipe and the line it has not finished yet.
struct Output {
    pipe: pipe::Receiver,
    partial: Vec<u8>,
    eof: bool,
}

/// One copy of the executable.
struct Copy {
    process: ActionProcess,
    outputs: [Output; 2],
    /// Until its first activation: the activation it was started for, which gets its start-up
    /// output.
    started_for: Option<String>,
}

impl Output {
    /// Writes the complete lines read so far on to the container's stream `s`, tagged with `id`
    /// (untagged for `None`); with `flush`, the unfinished line too.
    fn forward(&mut self, s: usize, id: Option<&str>, flush: bool) {
        let mut out = Vec::new();
        let mut start = 0;
        let max = MAX_LINE - 1 - id.map_or(0, |id| id.len() + 2);
        loop {
            let rest = &self.partial[start..];
            let (len, used) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) if nl <= max => (nl, nl + 1),
                _ if rest.len() > max => (max, max),
                _ if flush && !rest.is_empty() => (rest.len(), rest.len()),
                _ => break,
            };
            if let Some(id) = id {
                out.push(logtag::TAG_START as u8);
                out.extend_from_slice(id.as_bytes());
                out.push(logtag::TAG_END as u8);
            }
            out.extend_from_slice(&rest[..len]);
            out.push(b'\n');
            start += used;
        }
        self.partial.drain(..start);
        if !out.is_empty() {
            if s == 0 {
                write_fully(&mut std::io::stdout().lock(), &out);
            } else {
                write_fully(&mut std::io::stderr().lock(), &out);
            }
        }
    }

    /// Takes the outcome of one read from the pipe.
    fn take(&mut self, buf: &[u8], n: std::io::Result<usize>) {
        match n {
            Ok(0) | Err(_) => self.eof = true,
            Ok(n) => self.partial.extend_from_slice(&buf[..n]),
        }
    }
}

impl Copy {
    /// Reads whatever output is already in the pipes (without waiting) and forwards it.
    fn drain(&mut self, id: Option<&str>, flush: bool) {
        let mut buf = [0u8; 8192];
        for (s, o) in self.outputs.iter_mut().enumerate() {
            while !o.eof {
                match o.pipe.try_read(&mut buf) {
                    Ok(0) => o.eof = true,
                    Ok(n) => {
                        o.partial.extend_from_slice(&buf[..n]);
                        o.forward(s, id, false);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if flush {
                o.forward(s, id, true);
            }
        }
    }

    /// Sends `process.out` and waits for the answer, forwarding output tagged with `id` as it
    /// comes; afterwards forwards what the copy printed before answering.
    async fn exchange(&mut self, id: &str) -> Result<(), Exited> {
        let Copy {
            process, outputs, ..
        } = self;
        let [out, err] = outputs;
        let mut out_buf = [0u8; 8192];
        let mut err_buf = [0u8; 8192];
        let result = {
            let exchange = process.exchange();
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    r = &mut exchange => break r,
                    n = out.pipe.read(&mut out_buf), if !out.eof => {
                        out.take(&out_buf, n);
                        out.forward(0, Some(id), false);
                    }
                    n = err.pipe.read(&mut err_buf), if !err.eof => {
                        err.take(&err_buf, n);
                        err.forward(1, Some(id), false);
                    }
                }
            }
        };
        // The copy flushed its output before answering: it is in the pipes by now.
        self.drain(Some(id), true);
        result
    }
}

/// Up to `max` copies of a native executable, each running one activation at a time.
pub(crate) struct NativePool {
    exec: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    wait_for_ack: bool,
    idle: RefCell<Vec<Copy>>,
    /// One permit per copy that may run.
    slots: tokio::sync::Semaphore,
    next_request: Cell<u64>,
}

impl NativePool {
    /// Starts the first copy (at `/init`); its start-up output goes to `init_activation`.
    pub async fn start(
        exec: PathBuf,
        dir: PathBuf,
        env: Vec<(String, String)>,
        max: usize,
        init_activation: Option<&str>,
    ) -> Result<NativePool, String> {
        let wait_for_ack = std::env::var_os("OW_WAIT_FOR_ACK").is_some_and(|v| !v.is_empty());
        let pool = NativePool {
            exec,
            dir,
            env,
            wait_for_ack,
            idle: RefCell::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(max.max(1)),
            next_request: Cell::new(1),
        };
        let first = pool.spawn(init_activation).await?;
        pool.idle.borrow_mut().push(first);
        Ok(pool)
    }

    async fn spawn(&self, activation: Option<&str>) -> Result<Copy, String> {
        let ack_env = self.wait_for_ack.then_some(("__OW_WAIT_FOR_ACK", "1"));
        let env = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(ack_env);
        let (process, [out, err]) =
            ActionProcess::spawn_captured(self.exec.as_os_str(), &[] as &[&OsStr], &self.dir, env)
                .map_err(|e| format!("Cannot start action: {e}."))?;
        let output = |pipe| Output {
            pipe,
            partial: Vec::new(),
            eof: false,
        };
        let mut copy = Copy {
            process,
            outputs: [output(out), output(err)],
            started_for: activation.map(str::to_string),
        };
        if self.wait_for_ack {
            let acked = copy.process.read_line().await;
            copy.drain(activation, false);
            if let Err(how) = acked {
                return Err(format!(
                    "{} The process {}.",
                    messages::ABNORMAL_INIT,
                    how.0
                ));
            }
            let ok = serde_json::from_slice::<serde_json::Value>(&copy.process.line)
                .ok()
                .and_then(|v| v.get("ok").and_then(serde_json::Value::as_bool))
                == Some(true);
            if !ok {
                return Err("The action did not initialize properly.".into());
            }
        }
        Ok(copy)
    }

    /// One activation in a copy of its own: the `/run` answer. Prints the activation's tagged
    /// sentinels after its output in every case.
    pub async fn run(&self, body: &[u8], activation_id: Option<&str>) -> (StatusCode, Bytes) {
        let request = self.next_request.get();
        self.next_request.set(request + 1);
        let fallback = format!("request-{request}");
        let id = activation_id.unwrap_or(&fallback);
        let answer = self.run_tagged(body, id).await;
        crate::server::tagged_sentinels(id);
        answer
    }

    async fn run_tagged(&self, body: &[u8], id: &str) -> (StatusCode, Bytes) {
        // The platform sends at most `max` at once; more would wait here.
        let Ok(_permit) = self.slots.acquire().await else {
            return (StatusCode::BAD_GATEWAY, error_body(messages::ABNORMAL_RUN));
        };
        let idle = self.idle.borrow_mut().pop();
        let mut copy = match idle {
            Some(mut copy) => {
                // What it printed while idle is no activation's, except a fresh copy's start-up
                // output, which is the activation's it was started for.
                let owner = copy.started_for.take();
                copy.drain(owner.as_deref(), true);
                copy
            }
            None => match self.spawn(Some(id)).await {
                Ok(copy) => copy,
                Err(msg) => return (StatusCode::BAD_GATEWAY, error_body(&msg)),
            },
        };
        let out = &mut copy.process.out;
        out.clear();
        push_single_line(out, body);
        out.push(b'\n');
        copy.started_for = None;
        match copy.exchange(id).await {
            Ok(()) => {
                let answer = match serde_json::from_slice::<&RawValue>(&copy.process.line) {
                    Ok(raw) => result_response(raw),
                    Err(_) => (
                        StatusCode::BAD_GATEWAY,
                        error_body(messages::NOT_DICTIONARY),
                    ),
                };
                copy.process.trim();
                self.idle.borrow_mut().push(copy);
                answer
            }
            Err(how) => {
                // This copy is gone; the next request starts a fresh one.
                let msg = format!("{} The process {}.", messages::ABNORMAL_RUN, how.0);
                (StatusCode::BAD_GATEWAY, error_body(&msg))
            }
        }
    }
}
