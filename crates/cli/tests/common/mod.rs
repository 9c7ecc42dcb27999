//! Test support: starts the real `whirl` binary on a free port with its own data directory, and
//! talks to it over HTTP like any client would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

pub const GUEST: (&str, &str) = (
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502",
    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
);

/// A running platform. Killed (SIGTERM, then SIGKILL) on drop.
pub struct Platform {
    pub child: Option<Child>,
    /// The server subcommand: `standalone` or `controller`.
    pub mode: &'static str,
    pub port: u16,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Platform {
    /// Starts a platform with the built-in config plus `extra_config` (TOML sections).
    pub async fn start(extra_config: &str) -> Platform {
        Self::start_as("standalone", extra_config).await
    }

    /// Starts `whirl <mode>` (`standalone` or `controller`) with the built-in config plus
    /// `extra_config`.
    pub async fn start_as(mode: &'static str, extra_config: &str) -> Platform {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let config = if extra_config.is_empty() {
            None
        } else {
            let p = tmp.path().join("whirl.toml");
            std::fs::write(&p, extra_config).unwrap();
            Some(p)
        };
        let log = tmp.path().join("whirl.log");
        let mut p = Platform {
            child: None,
            mode,
            port: free_port(),
            data_dir,
            config,
            log,
            _tmp: Some(tmp),
            http: reqwest::Client::new(),
        };
        p.spawn().await;
        p
    }

    /// (Re)starts the binary on the same port and data directory.
    pub async fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_whirl"));
        cmd.arg(self.mode)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("WHIRL_LOG", "info,whirl=debug")
            .stdin(Stdio::null());
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(cmd.spawn().expect("start whirl"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/api/v1")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("whirl exited early ({st}); log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "whirl did not become ready; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the binary gracefully (SIGTERM) and waits for it.
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc_kill(child.id() as i32, 15);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("whirl did not stop on SIGTERM; log:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("/api/v1/namespaces/_{path}"))
    }

    /// Sends a request as guest; returns status and JSON body (Null if not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(GUEST, method, path, body).await
    }

    pub async fn call_as(
        &self,
        auth: (&str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.api(path)
        };
        let mut req = self
            .http
            .request(method, url)
            .basic_auth(auth.0, Some(auth.1));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Creates (or replaces) an action from code text.
    pub async fn put_action(&self, name: &str, kind: &str, code: &str, extra: Value) -> Value {
        let mut body = json!({"exec": {"kind": kind, "code": code}});
        merge(&mut body, extra);
        let (st, v) = self
            .call(
                reqwest::Method::PUT,
                &format!("/actions/{name}?overwrite=true"),
                Some(body),
            )
            .await;
        assert_eq!(st, 200, "create {name}: {v}");
        v
    }

    /// Invokes blocking and returns (status, body).
    pub async fn invoke(&self, name: &str, params: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/actions/{name}?blocking=true"),
            Some(params),
        )
        .await
    }

    /// Waits until the activation record exists and returns it.
    pub async fn wait_activation(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (st, v) = self.get(&format!("/activations/{id}")).await;
            if st == 200 {
                return v;
            }
            assert!(Instant::now() < deadline, "activation {id} never stored");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc_kill(c.id() as i32, 15);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn merge(a: &mut Value, b: Value) {
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

/// Builds a zip archive in memory and returns it base64-encoded.
pub fn zip_b64(files: &[(&str, &[u8], u32)]) -> String {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, data, mode) in files {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

pub fn annotation<'a>(activation: &'a Value, key: &str) -> Option<&'a Value> {
    activation["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs one of the scripts in tests/npm (which use the published `openwhisk` npm client) against
/// a fresh platform, installing the client first if needed; panics with both outputs and the
/// platform's log unless the script succeeds. Returns its stdout.
pub async fn run_npm_client_script(script: &str) -> String {
    let dir = repo_root().join("crates/cli/tests/npm");
    if !dir.join("node_modules/openwhisk").exists() {
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for this test");
        assert!(st.success(), "npm install failed");
    }
    let p = Platform::start("").await;
    let host = p.url("");
    let script = script.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(dir)
            .env("WHIRL_APIHOST", host)
            .env("WHIRL_AUTH", format!("{}:{}", GUEST.0, GUEST.1))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "npm client failed:\n{stdout}\n{stderr}\nplatform log:\n{}",
        p.log_text()
    );
    stdout
}

/// The (stream, message) pairs of an activation record's log lines.
pub fn log_messages(act: &Value) -> Vec<(String, String)> {
    act["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("logs: {act}"))
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            let (stream, msg) = l[31..].split_once(": ").expect("stream: message");
            (stream.to_string(), msg.to_string())
        })
        .collect()
}

/// Invokes `name` once per parameter object, all at once, blocking; (status, body) of each.
pub async fn invoke_all(p: &Platform, name: &str, params: Vec<Value>) -> Vec<(u16, Value)> {
    let calls = params.into_iter().map(|params| {
        let path = format!("/actions/{name}?blocking=true");
        async move { p.call(reqwest::Method::POST, &path, Some(params)).await }
    });
    futures::future::join_all(calls).await
}
