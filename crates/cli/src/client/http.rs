//! The REST plumbing: one HTTP client per command, requests relative to the caller's namespace,
//! and the client's error type with wsk-compatible exit codes.

use std::fmt;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::Method;
use serde_json::Value;

/// Characters escaped inside one path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Escapes one path segment.
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Exit code for a usage error (also clap's).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the API host cannot be reached.
pub const EXIT_NETWORK: i32 = 3;

/// Everything a client command can fail with. Printed as one line on stderr.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error status.
    Http {
        /// What the command was doing, e.g. "Unable to get action 'hello'".
        context: String,
        status: u16,
        /// The server's `error` message (or the status text).
        message: String,
        /// The server's transaction id (`code`).
        code: Option<String>,
    },
    /// The server could not be reached or did not answer.
    Network { context: String, message: String },
    /// The command line or a file it names is not usable.
    Usage(String),
    /// Anything else.
    Other(String),
}

impl CliError {
    /// wsk's exit codes: HTTP errors exit with `status - 256` (404 → 148, 401 → 145, 502 → 246),
    /// network errors with 3, usage errors with 2, anything else with 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Http { status, .. } if (300..=511).contains(status) => {
                i32::from(*status) - 256
            }
            CliError::Http { .. } => 1,
            CliError::Network { .. } => EXIT_NETWORK,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Other(_) => 1,
        }
    }

    /// Adds what the command was doing to an HTTP or network error.
    pub fn context(self, what: impl Into<String>) -> Self {
        match self {
            CliError::Http {
                status,
                message,
                code,
                ..
            } => CliError::Http {
                context: what.into(),
                status,
                message,
                code,
            },
            CliError::Network { message, .. } => CliError::Network {
                context: what.into(),
                message,
            },
            e => e,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, always: server messages may hold newlines.
        let one = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        match self {
            CliError::Http {
                context,
                status,
                message,
                code,
            } => {
                write!(f, "{context}: {} (HTTP {status}", one(message))?;
                if let Some(c) = code {
                    write!(f, ", code {c}")?;
                }
                write!(f, ")")
            }
            CliError::Network { context, message } => write!(f, "{context}: {}", one(message)),
            CliError::Usage(m) | CliError::Other(m) => write!(f, "{}", one(m)),
        }
    }
}

/// Shorthand for a usage error.
pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// A server's answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// The `x-openwhisk-activation-id` header.
    pub activation_id: Option<String>,
}

impl Response {
    /// The status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// This response as an error (the server's `error` and `code` fields).
    pub fn error(&self, context: impl Into<String>) -> CliError {
        let message = match &self.body["error"] {
            Value::String(s) => s.clone(),
            Value::Null => match self.status {
                401 => "The supplied authentication is invalid.".into(),
                404 => "The requested resource does not exist.".into(),
                s => reqwest::StatusCode::from_u16(s)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_string(),
            },
            other => other.to_string(),
        };
        CliError::Http {
            context: context.into(),
            status: self.status,
            message,
            code: self.body["code"].as_str().map(str::to_owned),
        }
    }

    /// The body if the status is 2xx, else the error.
    pub fn into_ok(self, context: impl Into<String>) -> Result<Value, CliError> {
        if self.ok() {
            Ok(self.body)
        } else {
            Err(self.error(context))
        }
    }
}

/// A connection to one API host as one subject.
pub struct Client {
    /// `http://host:port` (no trailing slash).
    pub apihost: String,
    auth: Option<(String, String)>,
    /// The namespace relative names live in (`_` = the caller's own).
    pub namespace: String,
    verbose: bool,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// A client for `apihost` (scheme optional, `http://` assumed) with `auth` = `uuid:key`.
    pub fn new(
        apihost: &str,
        auth: Option<&str>,
        namespace: &str,
        verbose: bool,
    ) -> Result<Self, CliError> {
        let apihost = normalize_host(apihost)?;
        let auth = match auth {
            None => None,
            Some(a) => {
                let (u, k) = a
                    .split_once(':')
                    .ok_or_else(|| usage("The authorization key must have the form UUID:KEY."))?;
                Some((u.to_owned(), k.to_owned()))
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("whirl-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Other(format!("cannot build the HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Other(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self {
            apihost,
            auth,
            namespace: namespace.to_owned(),
            verbose,
            http,
            rt,
        })
    }

    /// `/api/v1/namespaces/{ns}` for `ns`, or the client's namespace.
    pub fn ns_path(&self, ns: Option<&str>) -> String {
        format!(
            "/api/v1/namespaces/{}",
            seg(ns.unwrap_or(self.namespace.as_str()))
        )
    }

    /// Sends a request to `path` (from the host root, already escaped). Any status is `Ok`;
    /// only failing to talk to the server is an error.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response, CliError> {
        let url = format!("{}{path}", self.apihost);
        if self.verbose {
            eprintln!("> {method} {url}{}", query_text(query));
        }
        let mut req = self.http.request(method, &url);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some((u, k)) = &self.auth {
            req = req.basic_auth(u, Some(k));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let verbose = self.verbose;
        self.rt.block_on(async move {
            let resp = req.send().await.map_err(|e| network(&url, &e))?;
            let status = resp.status().as_u16();
            let activation_id = resp
                .headers()
                .get("x-openwhisk-activation-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await.map_err(|e| network(&url, &e))?;
            if verbose {
                eprintln!("< {status} ({} bytes)", bytes.len());
            }
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            };
            Ok(Response {
                status,
                body,
                activation_id,
            })
        })
    }

    /// GET that must succeed.
    pub fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        context: &str,
    ) -> Result<Value, CliError> {
        self.send(Method::GET, path, query, None)
            .map_err(|e| e.context(context))?
            .into_ok(context)
    }
}

fn query_text(q: &[(&str, String)]) -> String {
    if q.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("?{}", parts.join("&"))
}

/// `host`, `host:port` or a URL → `scheme://host[:port][/path]` without a trailing slash.
pub fn normalize_host(apihost: &str) -> Result<String, CliError> {
    let h = apihost.trim().trim_end_matches('/');
    if h.is_empty() {
        return Err(usage("The API host is empty."));
    }
    let h = if h.contains("://") {
        h.to_owned()
    } else {
        format!("http://{h}")
    };
    if h.starts_with("https://") {
        return Err(usage(format!(
            "The API host '{h}' uses https, which this build of the client does not speak; use http://."
        )));
    }
    if !h.starts_with("http://") {
        return Err(usage(format!("The API host '{h}' is not an http:// URL.")));
    }
    let h = h.strip_suffix("/api/v1").unwrap_or(&h).to_owned();
    Ok(h)
}

fn network(url: &str, e: &reqwest::Error) -> CliError {
    // The innermost cause says what happened ("Connection refused (os error 111)").
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_timeout() {
        "the request timed out".to_owned()
    } else {
        cause.to_string()
    };
    let host = url
        .split("/api/")
        .next()
        .unwrap_or(url)
        .trim_end_matches('/');
    CliError::Network {
        context: "Request failed".into(),
        message: format!("cannot reach {host}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host("127.0.0.1:3233").unwrap(),
            "http://127.0.0.1:3233"
        );
        assert_eq!(normalize_host("http://h:1/api/v1/").unwrap(), "http://h:1");
        assert!(normalize_host("https://h").is_err());
        assert!(normalize_host("ftp://h").is_err());
    }

    #[test]
    fn exit_codes_follow_wsk() {
        let e = |status| CliError::Http {
            context: "x".into(),
            status,
            message: "m".into(),
            code: None,
        };
        assert_eq!(e(404).exit_code(), 148);
        assert_eq!(e(401).exit_code(), 145);
        assert_eq!(e(502).exit_code(), 246);
        assert_eq!(usage("u").exit_code(), 2);
    }

    #[test]
    fn errors_are_one_line() {
        let e = CliError::Http {
            context: "Unable to create action 'a'".into(),
            status: 400,
            message: "The request content was malformed:\nbad".into(),
            code: Some("tid".into()),
        };
        assert_eq!(
            e.to_string(),
            "Unable to create action 'a': The request content was malformed: bad (HTTP 400, code tid)"
        );
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
