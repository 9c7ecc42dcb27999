//! The HTTP side: `/init` and `/run` over HTTP/1.1 on a unix or TCP socket, and the runner that
//! turns them into action-loop exchanges.

use std::borrow::Cow;
use std::cell::Cell;
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

use crate::code::{self, InitBody, InitValue, Unpacked};
use crate::process::{ActionProcess, Exited};
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
    state.phase.set(Phase::Initializing);

    // The work runs in its own task, so a client that gives up mid-way cannot leave the launcher
    // half-initialized: the next request waits for the lock instead.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    tokio::task::spawn_local(async move {
        let mut runner = task_state.runner.clone().lock_owned().await;
        let outcome = match code::unpack(task_state.launcher, &task_state.work_dir, &value) {
            Ok(unpacked) => runner.init(&unpacked, &value).await,
            Err(msg) => Err(msg),
        };
        match &outcome {
            Ok(()) => task_state.phase.set(Phase::Ready),
            Err(_) => {
                task_state.phase.set(Phase::Failed);
                sentinels();
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

fn error_body(msg: &str) -> Bytes {
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

/// Writes all of `bytes`, waiting out `EAGAIN`: the launcher shares our stdout and stderr and may
/// have switched them to non-blocking mode (node does).
fn write_fully(out: &mut impl Write, mut bytes: &[u8]) {
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

#[derive(Serialize)]
struct InitDetails<'a> {
    dir: &'a Path,
    file: Option<&'a Path>,
    archive: bool,
    main: &'a str,
    name: Option<&'a str>,
    env: serde_json::Map<String, serde_json::Value>,
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
            Launcher::Python | Launcher::Node => {
                match serde_json::from_slice::<Reply>(&process.line) {
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
        };
        process.trim();
        answer
    }
}

/// A JSON object or array is the result; anything else is OpenWhisk's "not a dictionary" failure.
fn result_response(raw: &RawValue) -> (StatusCode, Bytes) {
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
fn push_single_line(out: &mut Vec<u8>, json: &[u8]) {
    out.extend(
        json.iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
}
