//! The HTTP side: `/init` and `/run` over HTTP/1.1 on a unix or TCP socket, and the runner that
//! turns them into action-loop exchanges.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use whirl_model::error::messages;
use whirl_model::logtag;

use crate::code::{self, InitBody, InitValue, Unpacked};
use crate::native::NativePool;
use crate::process::{describe, exit_status_soon, ActionProcess, Exited};
use crate::{Launcher, Listen, RuntimeArgs, SENTINEL};

const PYTHON_LAUNCHER: &str = include_str!("../launchers/launcher.py");
const NODE_LAUNCHER: &str = include_str!("../launchers/launcher.cjs");

const INIT_TWICE: &str = "Cannot initialize the action more than once.";
const NOT_INITIALIZED: &str = "System not initialized.";

type Body = Full<Bytes>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Initializing,
    Ready,
    Failed,
}

struct State {
    launcher: Launcher,
    work_dir: PathBuf,
    phase: Cell<Phase>,
    /// The one action-loop process; holding the lock is holding the right to exchange with it.
    runner: Arc<tokio::sync::Mutex<Runner>>,
    /// After an `/init` with concurrency above 1 (node only): the launcher, shared by every
    /// activation in flight; `runner` is then no longer used.
    mux: RefCell<Option<Rc<Mux>>>,
    /// After an `/init` with concurrency above 1 (native): one executable per concurrent slot.
    native: RefCell<Option<Rc<NativePool>>>,
}

pub(crate) async fn serve(args: RuntimeArgs) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let temp;
    let work_dir = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.canonicalize()?
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("whirl-runtime-")
                .tempdir()?;
            temp.path().canonicalize()?
        }
    };

    let listener = Listener::bind(&args.listen)?;
    let runner = Runner::boot(args.launcher, args.command.as_deref(), &work_dir);
    let state = Rc::new(State {
        launcher: args.launcher,
        work_dir,
        phase: Cell::new(Phase::Uninitialized),
        runner: Arc::new(tokio::sync::Mutex::new(runner)),
        mux: RefCell::new(None),
        native: RefCell::new(None),
    });

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(Stream::Unix(s)) => spawn_connection(s, &state),
                Ok(Stream::Tcp(s)) => {
                    let _ = s.set_nodelay(true);
                    spawn_connection(s, &state)
                }
                // Out of descriptors or an aborted handshake: keep serving.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            },
        }
    }
    if let Listen::Unix(path) = &args.listen {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Listener {
    fn bind(listen: &Listen) -> anyhow::Result<Self> {
        Ok(match listen {
            Listen::Unix(path) => {
                if path.exists() {
                    std::fs::remove_file(path)?;
                }
                Listener::Unix(UnixListener::bind(path)?)
            }
            Listen::Tcp(addr) => {
                // Resolve and bind synchronously: tokio's resolver would start a blocking thread.
                let std = std::net::TcpListener::bind(addr.as_str())?;
                std.set_nonblocking(true)?;
                Listener::Tcp(TcpListener::from_std(std)?)
            }
        })
    }

    async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
        }
    }
}

fn spawn_connection<S>(stream: S, state: &Rc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let state = state.clone();
    tokio::task::spawn_local(async move {
        let service = hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

async fn handle(state: Rc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let is_init = match path {
        "/init" => true,
        "/run" => false,
        _ => return error(StatusCode::NOT_FOUND, "Not found."),
    };
    if req.method() != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Only POST is allowed.");
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Error reading request body: {e}"),
            )
        }
    };
    if is_init {
        init(state, body).await
    } else {
        run(state, body).await
    }
}

async fn init(state: Rc<State>, body: Bytes) -> Response<Body> {
    if state.phase.get() != Phase::Uninitialized {
        return error(StatusCode::FORBIDDEN, INIT_TWICE);
    }
    let value = match serde_json::from_slice::<InitBody>(&body) {
        Ok(InitBody { value: Some(v) }) => v,
        Ok(InitBody { value: None }) => InitValue::default(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Error unmarshaling request: {e}"),
            )
        }
    };
    if value.code.as_deref().is_none_or(str::is_empty) {
        return error(StatusCode::FORBIDDEN, "Missing main/no code to execute.");
    }
    let concurrency = value.concurrency();
    if concurrency > 1 && state.launcher == Launcher::Python {
        // The platform refuses such actions when they are created; this guards a manifest that
        // claims otherwise: running them one at a time would mix their logs.
        state.phase.set(Phase::Failed);
        sentinels();
        return error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "This runtime runs one activation at a time (launcher '{}'); \
                 limits.concurrency {concurrency} is not supported.",
                launcher_name(state.launcher)
            ),
        );
    }
    state.phase.set(Phase::Initializing);

    // The work runs in its own task, so a client that gives up mid-way cannot leave the launcher
    // half-initialized: the next request waits for the lock instead.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    tokio::task::spawn_local(async move {
        let mut runner = task_state.runner.clone().lock_owned().await;
        let outcome = match code::unpack(task_state.launcher, &task_state.work_dir, &value) {
            Ok(unpacked) if concurrency > 1 && task_state.launcher == Launcher::Native => {
                match unpacked.file.clone() {
                    Some(exec) => NativePool::start(
                        exec,
                        unpacked.dir.clone(),
                        value.env_strings(),
                        usize::try_from(concurrency).unwrap_or(usize::MAX),
                        value.activation_id(),
                    )
                    .await
                    .map(|pool| *task_state.native.borrow_mut() = Some(Rc::new(pool))),
                    None => Err("The action has no executable.".into()),
                }
            }
            Ok(unpacked) => runner.init(&unpacked, &value).await,
            Err(msg) => Err(msg),
        };
        match &outcome {
            Ok(()) => {
                if concurrency > 1 {
                    if let Some(process) = runner.process.take() {
                        runner.gone = Some(messages::ABNORMAL_RUN.to_string());
                        *task_state.mux.borrow_mut() = Some(Mux::start(process));
                    }
                }
                task_state.phase.set(Phase::Ready)
            }
            Err(_) => {
                task_state.phase.set(Phase::Failed);
                // The launcher tagged the initialization's output with the activation it ran for.
                match value.activation_id().filter(|_| concurrency > 1) {
                    Some(id) => tagged_sentinels(id),
                    None => sentinels(),
                }
            }
        }
        let _ = tx.send(outcome);
    });
    match rx.await {
        Ok(Ok(())) => json(StatusCode::OK, Bytes::from_static(b"{\"ok\":true}")),
        Ok(Err(msg)) => error(StatusCode::BAD_GATEWAY, &msg),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Initialization was interrupted.",
        ),
    }
}

async fn run(state: Rc<State>, body: Bytes) -> Response<Body> {
    if state.phase.get() != Phase::Ready {
        sentinels();
        return error(StatusCode::FORBIDDEN, NOT_INITIALIZED);
    }
    let mux = state.mux.borrow().clone();
    if let Some(mux) = mux {
        return run_concurrently(Concurrent::Node(mux), body).await;
    }
    let native = state.native.borrow().clone();
    if let Some(pool) = native {
        return run_concurrently(Concurrent::Native(pool), body).await;
    }
    if !is_json_object(&body) {
        sentinels();
        return error(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.",
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let runner = state.runner.clone();
    tokio::task::spawn_local(async move {
        let mut runner = runner.lock_owned().await;
        let outcome = runner.run(&body).await;
        sentinels();
        let _ = tx.send(outcome);
    });
    match rx.await {
        Ok((status, body)) => json(status, body),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The activation was interrupted.",
        ),
    }
}

/// The part of a `/run` body the runtime itself reads in concurrent mode.
#[derive(Deserialize)]
struct RunHead<'a> {
    #[serde(default, borrow)]
    activation_id: Option<Cow<'a, str>>,
}

/// What runs the activations of a container with concurrency above 1.
enum Concurrent {
    Node(Rc<Mux>),
    Native(Rc<NativePool>),
}

/// One activation among several in flight. Node: the launcher tags the activation's output and
/// prints its tagged sentinels itself; the runtime only does so when the launcher cannot (it
/// died). Native: the pool does both for the copy that ran it.
async fn run_concurrently(runner: Concurrent, body: Bytes) -> Response<Body> {
    let activation_id = match serde_json::from_slice::<RunHead>(&body) {
        Ok(head) if body.trim_ascii_start().first() == Some(&b'{') => {
            head.activation_id.map(Cow::into_owned)
        }
        _ => {
            sentinels();
            return error(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object.",
            );
        }
    };
    // In its own task, so a client that gives up cannot leave a request half-written.
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_local(async move {
        let mux = match runner {
            Concurrent::Node(mux) => mux,
            Concurrent::Native(pool) => {
                // The pool tags the copy's output and prints the sentinels itself.
                let _ = tx.send(pool.run(&body, activation_id.as_deref()).await);
                return;
            }
        };
        let outcome = mux.run(&body).await;
        let (status, body) = match outcome {
            Ok(answer) => answer,
            Err(died) => {
                match activation_id.as_deref() {
                    Some(id) => tagged_sentinels(id),
                    None => sentinels(),
                }
                (StatusCode::BAD_GATEWAY, error_body(&died))
            }
        };
        let _ = tx.send((status, body));
    });
    match rx.await {
        Ok((status, body)) => json(status, body),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The activation was interrupted.",
        ),
    }
}

fn launcher_name(l: Launcher) -> &'static str {
    match l {
        Launcher::Python => "python",
        Launcher::Node => "node",
        Launcher::Native => "native",
    }
}

fn is_json_object(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn error_body(msg: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(&serde_json::json!({ "error": msg })).unwrap_or_default())
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    json(status, error_body(msg))
}

/// Prints the end-of-activation sentinel on stdout and stderr.
fn sentinels() {
    const LINE: &[u8] = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n";
    debug_assert_eq!(&LINE[..LINE.len() - 1], SENTINEL.as_bytes());
    write_fully(&mut std::io::stdout().lock(), LINE);
    write_fully(&mut std::io::stderr().lock(), LINE);
}

/// Prints the tagged sentinel of activation `id` on stdout and stderr (concurrent mode).
pub(crate) fn tagged_sentinels(id: &str) {
    let mut line = logtag::tagged(id, SENTINEL);
    line.push('\n');
    write_fully(&mut std::io::stdout().lock(), line.as_bytes());
    write_fully(&mut std::io::stderr().lock(), line.as_bytes());
}

/// Writes all of `bytes`, waiting out `EAGAIN`: the launcher shares our stdout and stderr and may
/// have switched them to non-blocking mode (node does).
pub(crate) fn write_fully(out: &mut impl Write, mut bytes: &[u8]) {
    let mut attempts = 0;
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && attempts < 5000 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
    let _ = out.flush();
}

/// The launcher side: owns the action-loop process.
struct Runner {
    launcher: Launcher,
    process: Option<ActionProcess>,
    /// Why there is no process (it could not start, or it died); answered to every later request.
    gone: Option<String>,
    next_id: u64,
}

/// The init message to python and node launchers.
#[derive(Serialize)]
struct InitMessage<'a> {
    id: u64,
    init: InitDetails<'a>,
}

/// Whether the launcher runs requests concurrently and tags output (and for which activation the
/// initialization's own output is).
#[derive(Serialize)]
struct InitConcurrency<'a> {
    concurrency: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_id: Option<&'a str>,
}

#[derive(Serialize)]
struct InitDetails<'a> {
    dir: &'a Path,
    file: Option<&'a Path>,
    archive: bool,
    main: &'a str,
    name: Option<&'a str>,
    env: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    concurrent: Option<InitConcurrency<'a>>,
}

/// A python or node launcher's answer.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

impl Runner {
    /// For python and node, starts the interpreter with our launcher right away, so a prewarmed
    /// container has it loaded before `/init`.
    fn boot(launcher: Launcher, command: Option<&Path>, work_dir: &Path) -> Self {
        let mut runner = Runner {
            launcher,
            process: None,
            gone: None,
            next_id: 1,
        };
        let (script, name, default_cmd) = match launcher {
            Launcher::Python => (PYTHON_LAUNCHER, ".whirl-launcher.py", "python3"),
            Launcher::Node => (NODE_LAUNCHER, ".whirl-launcher.cjs", "node"),
            Launcher::Native => return runner,
        };
        let script_path = work_dir.join(name);
        let program: OsString = command
            .map(|c| c.as_os_str().to_owned())
            .unwrap_or_else(|| default_cmd.into());
        let started = std::fs::write(&script_path, script).and_then(|()| {
            ActionProcess::spawn(
                &program,
                &[script_path.as_os_str()],
                work_dir,
                [
                    ("PYTHONIOENCODING", "UTF-8"),
                    ("PYTHONDONTWRITEBYTECODE", "1"),
                ],
            )
        });
        match started {
            Ok(p) => runner.process = Some(p),
            Err(e) => {
                let msg = format!(
                    "The {} launcher could not be started: {e}.",
                    program.to_string_lossy()
                );
                let _ = writeln!(std::io::stderr(), "whirl runtime: {msg}");
                runner.gone = Some(msg);
            }
        }
        runner
    }

    fn gone_message(&self, init: bool) -> String {
        self.gone.clone().unwrap_or_else(|| {
            if init {
                messages::ABNORMAL_INIT
            } else {
                messages::ABNORMAL_RUN
            }
            .to_string()
        })
    }

    fn died(&mut self, init: bool, how: Exited) -> String {
        self.process = None;
        let base = if init {
            messages::ABNORMAL_INIT
        } else {
            messages::ABNORMAL_RUN
        };
        let msg = format!("{base} The process {}.", how.0);
        self.gone = Some(msg.clone());
        msg
    }

    async fn init(&mut self, unpacked: &Unpacked, value: &InitValue) -> Result<(), String> {
        match self.launcher {
            Launcher::Native => self.init_native(unpacked, value).await,
            Launcher::Python | Launcher::Node => self.init_script(unpacked, value).await,
        }
    }

    async fn init_script(&mut self, unpacked: &Unpacked, value: &InitValue) -> Result<(), String> {
        let Some(process) = self.process.as_mut() else {
            return Err(self.gone_message(true));
        };
        let env = value
            .env_strings()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let message = InitMessage {
            id: 0,
            init: InitDetails {
                dir: &unpacked.dir,
                file: unpacked.file.as_deref(),
                archive: unpacked.archive,
                main: value.main(),
                name: value.name.as_deref(),
                env,
                concurrent: (value.concurrency() > 1).then(|| InitConcurrency {
                    concurrency: value.concurrency(),
                    activation_id: value.activation_id(),
                }),
            },
        };
        process.out.clear();
        serde_json::to_writer(&mut process.out, &message).map_err(|e| e.to_string())?;
        process.out.push(b'\n');
        if let Err(how) = process.exchange().await {
            return Err(self.died(true, how));
        }
        let reply = serde_json::from_slice::<Reply>(&process.line);
        let outcome = match reply {
            Ok(Reply { ok: Some(true), .. }) => Ok(()),
            Ok(Reply { error: Some(e), .. }) => Err(e.into_owned()),
            _ => Err(format!(
                "The launcher answered /init with '{}'.",
                String::from_utf8_lossy(&process.line)
            )),
        };
        process.trim();
        outcome
    }

    async fn init_native(&mut self, unpacked: &Unpacked, value: &InitValue) -> Result<(), String> {
        let exec = unpacked
            .file
            .as_deref()
            .ok_or("The action has no executable.")?;
        let env = value.env_strings();
        // OpenWhisk's actionloop option: the executable first acknowledges with {"ok":true}.
        let wait_for_ack = std::env::var_os("OW_WAIT_FOR_ACK").is_some_and(|v| !v.is_empty());
        let ack_env = wait_for_ack.then_some(("__OW_WAIT_FOR_ACK", "1"));
        let env_iter = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(ack_env);
        let mut process =
            ActionProcess::spawn(exec.as_os_str(), &[] as &[&OsStr], &unpacked.dir, env_iter)
                .map_err(|e| format!("Cannot start action: {e}."))?;
        if wait_for_ack {
            if let Err(how) = process.read_line().await {
                return Err(self.died(true, how));
            }
            let acked = serde_json::from_slice::<serde_json::Value>(&process.line)
                .ok()
                .and_then(|v| v.get("ok").and_then(serde_json::Value::as_bool))
                == Some(true);
            if !acked {
                return Err("The action did not initialize properly.".into());
            }
        }
        self.process = Some(process);
        Ok(())
    }

    /// One activation: returns the HTTP status and body to answer `/run` with.
    async fn run(&mut self, body: &[u8]) -> (StatusCode, Bytes) {
        let id = self.next_id;
        self.next_id += 1;
        let launcher = self.launcher;
        let Some(process) = self.process.as_mut() else {
            return (
                StatusCode::BAD_GATEWAY,
                error_body(&self.gone_message(false)),
            );
        };
        let out = &mut process.out;
        out.clear();
        if launcher == Launcher::Native {
            push_single_line(out, body);
        } else {
            // The request id is the seam for intra-container concurrency: answers carry it back.
            let _ = write!(out, "{{\"id\":{id},\"run\":");
            push_single_line(out, body);
            out.push(b'}');
        }
        out.push(b'\n');

        if let Err(how) = process.exchange().await {
            let msg = self.died(false, how);
            return (StatusCode::BAD_GATEWAY, error_body(&msg));
        }
        let answer = match launcher {
            Launcher::Native => match serde_json::from_slice::<&RawValue>(&process.line) {
                Ok(raw) => result_response(raw),
                Err(_) => (
                    StatusCode::BAD_GATEWAY,
                    error_body(messages::NOT_DICTIONARY),
                ),
            },
            Launcher::Python | Launcher::Node => script_answer(&process.line, id),
        };
        process.trim();
        answer
    }
}

/// A python or node launcher's answer to run request `id`, as the `/run` response.
fn script_answer(line: &[u8], id: u64) -> (StatusCode, Bytes) {
    match serde_json::from_slice::<Reply>(line) {
        Ok(Reply { id: Some(got), .. }) if got != id => (
            StatusCode::BAD_GATEWAY,
            error_body(&format!(
                "The launcher answered request {got} instead of {id}."
            )),
        ),
        Ok(Reply {
            result: Some(raw), ..
        }) => result_response(raw),
        Ok(Reply { error: Some(e), .. }) => (StatusCode::BAD_GATEWAY, error_body(&e)),
        _ => (
            StatusCode::BAD_GATEWAY,
            error_body(messages::NOT_DICTIONARY),
        ),
    }
}

/// The launcher of a container that runs several activations at once (node only): requests go
/// out on its stdin as they come, each with its own id, and one reader task hands every answer
/// on fd 3 to the request with that id. When the process dies, every request in flight fails
/// with the same message, and so does every later one.
pub(crate) struct Mux {
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: RefCell<HashMap<u64, tokio::sync::oneshot::Sender<Vec<u8>>>>,
    gone: RefCell<Option<String>>,
    next_id: Cell<u64>,
}

impl Mux {
    fn start(process: ActionProcess) -> Rc<Mux> {
        let (mut child, stdin, mut replies) = process.into_parts();
        let mux = Rc::new(Mux {
            stdin: tokio::sync::Mutex::new(stdin),
            pending: RefCell::new(HashMap::new()),
            gone: RefCell::new(None),
            next_id: Cell::new(1),
        });
        let weak = Rc::downgrade(&mux);
        tokio::task::spawn_local(async move {
            use tokio::io::AsyncBufReadExt;
            let mut line = Vec::with_capacity(4096);
            let how = loop {
                line.clear();
                let read = tokio::select! {
                    biased;
                    r = replies.read_until(b'\n', &mut line) => r,
                    status = child.wait() => break describe(status),
                };
                match read {
                    Ok(0) => break exit_status_soon(&mut child, "closed file descriptor 3").await,
                    Err(e) => break format!("could not be talked to: {e}"),
                    Ok(_) => {}
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let Some(mux) = weak.upgrade() else { return };
                let id = serde_json::from_slice::<Reply>(&line)
                    .ok()
                    .and_then(|r| r.id);
                let waiter = id.and_then(|id| mux.pending.borrow_mut().remove(&id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(std::mem::take(&mut line));
                        if line.capacity() < 4096 {
                            line.reserve(4096);
                        }
                    }
                    None => {
                        let _ = writeln!(
                            std::io::stderr(),
                            "whirl runtime: the launcher answered an unknown request: {}",
                            String::from_utf8_lossy(&line)
                        );
                    }
                }
            };
            if let Some(mux) = weak.upgrade() {
                *mux.gone.borrow_mut() =
                    Some(format!("{} The process {how}.", messages::ABNORMAL_RUN));
                // Dropping the senders fails every request in flight.
                mux.pending.borrow_mut().clear();
            }
            // Keep the child until here so kill-on-drop never ends a live launcher early.
            drop(child);
        });
        mux
    }

    fn gone_message(&self) -> String {
        self.gone
            .borrow()
            .clone()
            .unwrap_or_else(|| messages::ABNORMAL_RUN.to_string())
    }

    /// One activation: the answer to give, or why the launcher could not give one.
    async fn run(&self, body: &[u8]) -> Result<(StatusCode, Bytes), String> {
        use tokio::io::AsyncWriteExt;
        if self.gone.borrow().is_some() {
            return Err(self.gone_message());
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut out = Vec::with_capacity(body.len() + 32);
        let _ = write!(out, "{{\"id\":{id},\"run\":");
        push_single_line(&mut out, body);
        out.extend_from_slice(b"}\n");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        let written = {
            let mut stdin = self.stdin.lock().await;
            match stdin.write_all(&out).await {
                Ok(()) => stdin.flush().await,
                Err(e) => Err(e),
            }
        };
        if written.is_err() {
            self.pending.borrow_mut().remove(&id);
            // The reader task notices the exit and says how; give it a moment.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            return Err(self.gone_message());
        }
        match rx.await {
            Ok(line) => Ok(script_answer(&line, id)),
            Err(_) => Err(self.gone_message()),
        }
    }
}

/// A JSON object or array is the result; anything else is OpenWhisk's "not a dictionary" failure.
pub(crate) fn result_response(raw: &RawValue) -> (StatusCode, Bytes) {
    let text = raw.get().trim_ascii();
    match text.as_bytes().first() {
        Some(b'{') | Some(b'[') => (StatusCode::OK, Bytes::copy_from_slice(text.as_bytes())),
        _ => (
            StatusCode::BAD_GATEWAY,
            error_body(messages::NOT_DICTIONARY),
        ),
    }
}

/// Appends a JSON text as one line: raw newlines can only be insignificant whitespace in valid
/// JSON, so they become spaces.
pub(crate) fn push_single_line(out: &mut Vec<u8>, json: &[u8]) {
    out.extend(
        json.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
}
