//! Support for the client's end-to-end tests: runs the real `whirl` binary as a user would,
//! with its own properties file and home directory, against a platform from `common`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::{Platform, GUEST};

/// A user of the CLI: a home directory with a properties file.
pub struct User {
    pub home: tempfile::TempDir,
    pub props: PathBuf,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout after its first line (an `ok:` line) as JSON.
    pub fn json_after_first_line(&self) -> Value {
        let rest = self.stdout.split_once('\n').map(|x| x.1).unwrap_or("");
        serde_json::from_str(rest)
            .unwrap_or_else(|e| panic!("stdout is not a line and JSON ({e}):\n{}", self.stdout))
    }

    /// The stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl User {
    /// A user with no properties at all.
    pub fn bare() -> Self {
        let home = tempfile::tempdir().unwrap();
        let props = home.path().join("wskprops");
        Self {
            home,
            props,
            env: Vec::new(),
        }
    }

    /// A user whose properties file names the platform and the guest key.
    pub fn guest(p: &Platform) -> Self {
        let u = Self::bare();
        std::fs::write(
            &u.props,
            format!(
                "APIHOST=http://127.0.0.1:{}\nAUTH={}:{}\n",
                p.port, GUEST.0, GUEST.1
            ),
        )
        .unwrap();
        u
    }

    /// The command, with a clean environment: no WHISK_* variables but the test's own, HOME
    /// and WSK_CONFIG_FILE pointing into the user's directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_whirl"));
        cmd.args(args)
            .env_remove("WHISK_APIHOST")
            .env_remove("WHISK_AUTH")
            .env_remove("WHISK_NAMESPACE")
            .env("HOME", self.home.path())
            .env("WSK_CONFIG_FILE", &self.props)
            .current_dir(self.home.path())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `whirl args...` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command(args).output().expect("run whirl");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "whirl {args:?} failed: {r:?}");
        r.stdout
    }

    /// Runs with `--json`, asserts success, returns the parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a);
        assert_eq!(r.code, 0, "whirl {a:?} failed: {r:?}");
        r.json()
    }

    /// Runs, asserts failure with `code` and a single `error:` line on stderr containing `needle`.
    pub fn fails(&self, args: &[&str], code: i32, needle: &str) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, code, "whirl {args:?}: wrong exit code: {r:?}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "whirl {args:?}: one error line expected: {r:?}"
        );
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "whirl {args:?}: expected an error with {needle:?}: {r:?}"
        );
        r
    }

    /// Writes a file in the user's directory and returns its path.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let p = self.home.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}
