//! Web actions: `/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]`, any method,
//! for actions annotated `web-export: true` (OpenWhisk's `WebActions`).
//!
//! - The action runs as its namespace's owner, blocking; the caller need not authenticate, but
//!   when it sends valid Basic credentials the action learns its namespace as `__ow_user`.
//! - The action receives `__ow_method` (lower case), `__ow_headers` (lower-cased names),
//!   `__ow_path` (what follows the action in the URL) and, after them, the query parameters and
//!   then the body's fields (JSON object or form). With `raw-http: true` it gets the query string as
//!   `__ow_query` and the body as `__ow_body` instead (text as is; binary types and JSON
//!   base64-encoded). A body that is not a JSON object or form also arrives as `__ow_body`.
//! - Query or body parameters may not override `__ow_*` fields or `final` parameters (400).
//! - `require-whisk-auth`: a string or number must equal the `X-Require-Whisk-Auth` header; `true`
//!   requires valid credentials (401 otherwise).
//! - Unless `web-custom-options: true`, OPTIONS is answered with CORS headers without running the
//!   action, and every answer carries them.
//! - Extensions: `.http` (the default) reads `{statusCode, headers, body}` (a string body of a
//!   binary content type is base64-decoded; a JSON body is sent as JSON), `.json`, `.html`,
//!   `.svg`, `.text` project the result. An application error's `error` field is projected
//!   instead of the result; developer and whisk errors are a 400; an activation still running
//!   after the wait is a 202.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value};
use whirl_model::error::messages;
use whirl_model::message::MESSAGE_VERSION;
use whirl_model::{Activation, ActivationId, ActivationMessage, Identity, StatusCode as Outcome};

use crate::actions::Target;
use crate::cache::ResolvedAction;
use crate::context::TransId;
use crate::error::ApiError;
use crate::invoke::ACTIVATION_ID_HEADER;
use crate::{read_body, Inner};

/// The path prefix of web actions.
pub(crate) const WEB_PREFIX: &str = "/api/v1/web/";

/// Marks a response as a web action's own: the request middleware leaves its body and headers
/// alone (an action may answer 404 with its own page).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebResponse;

const PROPERTY_NOT_FOUND: &str = "Response does not include requested property.";
const ERROR_PROCESSING: &str = "There was an error processing your request.";
const NOT_READY: &str = "Response not yet ready.";
const CONTENT_TYPE_MISMATCH: &str = "Response type in header did not match generated content type.";
const UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
const REQUIRE_WHISK_AUTH: HeaderName = HeaderName::from_static("x-require-whisk-auth");

fn invalid_media(m: &str) -> ApiError {
    ApiError::bad_request(format!("Response is not valid '{m}'."))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extension {
    Http,
    Json,
    Html,
    Svg,
    Text,
}

/// Splits `name.ext` into the action name and its extension (`.http` when none is known).
fn split_extension(segment: &str) -> (&str, Extension) {
    for (suffix, e) in [
        (".http", Extension::Http),
        (".json", Extension::Json),
        (".html", Extension::Html),
        (".svg", Extension::Svg),
        (".text", Extension::Text),
    ] {
        if let Some(base) = segment.strip_suffix(suffix) {
            return (base, e);
        }
    }
    (segment, Extension::Http)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The media type of a `Content-Type` value, lower case, without parameters.
fn mime_of(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json_family(m: &str) -> bool {
    m == "application/json" || m.ends_with("+json")
}

/// Whether a media type carries bytes rather than text (OpenWhisk base64-encodes those).
fn is_binary(m: &str) -> bool {
    !(m.starts_with("text/")
        || is_json_family(m)
        || m.ends_with("+xml")
        || matches!(
            m,
            "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/xhtml+xml"
        ))
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// Adds the CORS headers OpenWhisk sends for web actions that do not answer OPTIONS themselves.
fn add_cors(h: &mut HeaderMap, request: &HeaderMap) {
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"),
    );
    let allow = request
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(
                "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
            )
        });
    h.insert("access-control-allow-headers", allow);
}

fn finish(mut r: Response, cors: Option<&HeaderMap>, id: Option<&ActivationId>) -> Response {
    if let Some(req) = cors {
        add_cors(r.headers_mut(), req);
    }
    if let Some(id) = id {
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            r.headers_mut().insert(ACTIVATION_ID_HEADER, v);
        }
    }
    r.extensions_mut().insert(WebResponse);
    r
}

/// An error as a web action answers it: OpenWhisk's JSON error body, written here (the
/// middleware leaves web responses alone).
fn error_response(e: ApiError, tid: &TransId) -> Response {
    let body = serde_json::json!({"error": e.message, "code": tid.as_str()});
    let mut r = crate::context::json(e.status, &body);
    r.extensions_mut().insert(WebResponse);
    r
}

/// Any method on `/api/v1/web/...`.
pub(crate) async fn handle(
    State(inner): State<Arc<Inner>>,
    tid: TransId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut cors = false;
    let mut activation = None;
    let result = serve(
        &inner,
        &tid,
        method,
        &uri,
        &headers,
        body,
        &mut cors,
        &mut activation,
    )
    .await;
    let r = match result {
        Ok(r) => r,
        Err(e) => error_response(e, &tid),
    };
    finish(r, cors.then_some(&headers), activation.as_ref())
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    inner: &Arc<Inner>,
    tid: &TransId,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    cors: &mut bool,
    activation: &mut Option<ActivationId>,
) -> Result<Response, ApiError> {
    let rest = uri.path().strip_prefix(WEB_PREFIX).unwrap_or("");
    let mut parts = rest.splitn(4, '/');
    let (Some(ns), Some(pkg), Some(last)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::not_found());
    };
    let extra_path = parts.next().map(|p| format!("/{p}")).unwrap_or_default();
    let (ns, pkg, last) = (decode(ns), decode(pkg), decode(last));
    let (name, ext) = split_extension(&last);
    let valid = |s: &str| whirl_model::names::is_valid_name(s);
    if !valid(&ns) || !valid(&pkg) || !valid(name) {
        return Err(ApiError::not_found());
    }
    let owner = inner
        .auth
        .identity_for_namespace(&ns)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(ApiError::not_found)?;
    let target = Target {
        namespace: ns.clone(),
        package: (pkg != "default").then(|| pkg.clone()),
        name: name.to_owned(),
    };
    let resolved = inner
        .resolve_target(&target, true)
        .await
        .map_err(|e| match e.status {
            StatusCode::INTERNAL_SERVER_ERROR => e,
            _ => ApiError::not_found(),
        })?;
    let annotations = &resolved.action.annotations;
    if !truthy(annotations.get("web-export")) {
        return Err(ApiError::not_found());
    }
    let custom_options = truthy(annotations.get("web-custom-options"));
    *cors = !custom_options;
    if method == Method::OPTIONS && !custom_options {
        return Ok(StatusCode::OK.into_response());
    }
    // The caller, when it says who it is.
    let caller = match headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()) {
        Some(h) => match crate::auth::parse_basic(h) {
            Some((u, k)) => inner.auth.authenticate(&u, &k).await.ok().flatten(),
            None => None,
        },
        None => None,
    };
    if method != Method::OPTIONS {
        let allowed = match annotations.get("require-whisk-auth") {
            None | Some(Value::Bool(false)) => true,
            Some(Value::Bool(true)) => caller.is_some(),
            Some(Value::String(s)) => header_is(headers, s),
            Some(Value::Number(n)) => header_is(headers, &n.to_string()),
            Some(_) => false,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "The resource requires authentication, which was not supplied with the request",
            ));
        }
    }
    let raw = truthy(annotations.get("raw-http"));
    let bytes = read_body(headers, body, inner.config.limits.max_payload_bytes).await?;
    let mime = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(mime_of)
        .unwrap_or_default();
    let body_value: Option<Value> = if bytes.is_empty() {
        None
    } else if !raw && is_json_family(&mime) {
        Some(serde_json::from_slice(&bytes).map_err(ApiError::malformed)?)
    } else if !raw && mime == "application/x-www-form-urlencoded" {
        let form: Map<String, Value> = form_urlencoded(&bytes);
        Some(Value::Object(form))
    } else if is_binary(&mime) || mime == "application/json" {
        Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(&bytes),
        ))
    } else {
        Some(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    drop(bytes);

    let mut args = Map::new();
    args.insert(
        "__ow_method".into(),
        Value::String(method.as_str().to_ascii_lowercase()),
    );
    let mut hs = Map::new();
    for (k, v) in headers {
        if let Ok(v) = v.to_str() {
            hs.insert(k.as_str().to_owned(), Value::String(v.to_owned()));
        }
    }
    args.insert("__ow_headers".into(), Value::Object(hs));
    args.insert("__ow_path".into(), Value::String(extra_path));
    if let Some(c) = &caller {
        args.insert(
            "__ow_user".into(),
            Value::String(c.namespace.as_str().to_owned()),
        );
    }
    let query = uri.query().unwrap_or("");
    let mut given: Vec<String> = Vec::new();
    if raw {
        args.insert("__ow_query".into(), Value::String(query.to_owned()));
    } else {
        for (k, v) in form_urlencoded(query.as_bytes()) {
            given.push(k.clone());
            args.insert(k, v);
        }
    }
    match body_value {
        Some(Value::Object(fields)) if !raw => {
            for (k, v) in fields {
                given.push(k.clone());
                args.insert(k, v);
            }
        }
        Some(v) => {
            args.insert("__ow_body".into(), v);
        }
        None if raw => {
            args.insert("__ow_body".into(), Value::String(String::new()));
        }
        None => {}
    }
    if given
        .iter()
        .any(|k| k.starts_with("__ow_") || resolved.immutable.iter().any(|i| i == k))
    {
        return Err(ApiError::bad_request(messages::RESERVED_PARAMS));
    }
    let content = if resolved.defaults.is_empty() {
        args
    } else {
        let mut merged = resolved.defaults.clone();
        merged.extend(args);
        merged
    };
    inner.throttles.check_invoke_rate(&owner)?;
    crate::invoke::check_concurrency(inner, &owner, &resolved)?;
    let wait = inner.config.limits.max_blocking_wait_ms;
    let record = match run_blocking(inner, owner, tid, resolved, content, wait).await? {
        Ok(record) => record,
        Err(id) => {
            *activation = Some(id);
            return Err(ApiError::new(StatusCode::ACCEPTED, NOT_READY));
        }
    };
    *activation = Some(record.activation_id);
    respond(&record, ext)
}

fn header_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(REQUIRE_WHISK_AUTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

/// Parses `a=1&b=x` (query strings and form bodies) into string values.
fn form_urlencoded(bytes: &[u8]) -> Map<String, Value> {
    let s = String::from_utf8_lossy(bytes);
    let mut m = Map::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let d = |x: &str| decode(&x.replace('+', " "));
        m.insert(d(k), Value::String(d(v)));
    }
    m
}

/// Runs the action (or sequence) blocking for up to `wait_ms`: the record, or the id when it is
/// still running.
async fn run_blocking(
    inner: &Arc<Inner>,
    user: Identity,
    tid: &TransId,
    resolved: Arc<ResolvedAction>,
    content: Map<String, Value>,
    wait_ms: u64,
) -> Result<Result<Activation, ActivationId>, ApiError> {
    let received_at_ms = whirl_model::time::now_ms();
    let id = ActivationId::generate();
    let wait = Duration::from_millis(wait_ms);
    if crate::conductor::is_composite(&resolved) {
        let ctx = crate::sequence::SequenceContext {
            inner: inner.clone(),
            user,
            tid: tid.clone(),
            received_at_ms,
        };
        let run = tokio::spawn(crate::conductor::run_composite(
            ctx,
            resolved,
            id,
            Value::Object(content),
            None,
        ));
        return match tokio::time::timeout(wait, run).await {
            Ok(Ok(record)) => Ok(Ok(record)),
            Ok(Err(e)) => Err(ApiError::internal(e.to_string())),
            Err(_) => Ok(Err(id)),
        };
    }
    let action = &resolved.action;
    let balancer = inner.balancers.resolve(action);
    let msg = ActivationMessage {
        version: MESSAGE_VERSION,
        transid: tid.as_str().to_owned(),
        action: action.fully_qualified_name(),
        revision: resolved.rev,
        user,
        activation_id: id,
        root_controller: inner.config.controller_id.clone(),
        blocking: true,
        content: Some(Value::Object(content)),
        init_args: resolved.init_args.clone(),
        cause: None,
        received_at_ms,
        load_balancer: balancer.name().to_owned(),
        extra_annotations: resolved.extra_annotations.clone(),
        trace_context: Default::default(),
    };
    let completion = balancer.publish(action.clone(), msg).await?;
    match tokio::time::timeout(wait, completion).await {
        Ok(Ok(record)) => Ok(Ok(record)),
        Err(_) | Ok(Err(whirl_spi::LoadBalancerError::Lost(_))) => Ok(Err(id)),
        Ok(Err(e)) => Err(e.into()),
    }
}

/// Turns a finished activation into the web response its extension asks for.
fn respond(record: &Activation, ext: Extension) -> Result<Response, ApiError> {
    let projection = match record.response.status {
        Outcome::Success => record
            .response
            .result
            .clone()
            .unwrap_or(Value::Object(Map::new())),
        Outcome::ApplicationError => record
            .response
            .result
            .as_ref()
            .and_then(|r| r.get("error"))
            .cloned()
            .ok_or_else(|| ApiError::not_found_with(PROPERTY_NOT_FOUND))?,
        Outcome::DeveloperError | Outcome::WhiskError => {
            return Err(ApiError::bad_request(ERROR_PROCESSING))
        }
    };
    match ext {
        Extension::Json => match projection {
            v @ (Value::Object(_) | Value::Array(_)) => {
                Ok(crate::context::json(StatusCode::OK, &v))
            }
            _ => Err(invalid_media("application/json")),
        },
        Extension::Html => match field_or(&projection, "html") {
            Some(Value::String(s)) => Ok(text(StatusCode::OK, "text/html; charset=UTF-8", s)),
            _ => Err(invalid_media("text/html")),
        },
        Extension::Svg => match field_or(&projection, "svg") {
            Some(Value::String(s)) => Ok(text(StatusCode::OK, "image/svg+xml", s)),
            _ => Err(invalid_media("image/svg+xml")),
        },
        Extension::Text => {
            let v = match &projection {
                Value::Object(m) => m.get("body").or_else(|| m.get("text")).cloned(),
                other => Some(other.clone()),
            };
            let s = match v {
                Some(v @ (Value::Object(_) | Value::Array(_))) => {
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                }
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => return Err(ApiError::not_found_with(PROPERTY_NOT_FOUND)),
            };
            Ok(text(StatusCode::OK, "text/plain; charset=UTF-8", s))
        }
        Extension::Http => http_result(projection),
    }
}

/// The `body` field, else `alt`, of an object; a non-object itself.
fn field_or(v: &Value, alt: &str) -> Option<Value> {
    match v {
        Value::Object(m) => m.get("body").or_else(|| m.get(alt)).cloned(),
        other => Some(other.clone()),
    }
}

fn text(status: StatusCode, content_type: &'static str, s: String) -> Response {
    let mut r = Response::new(Body::from(s));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `.http`: `{statusCode, headers, body}`.
fn http_result(v: Value) -> Result<Response, ApiError> {
    let bad = || invalid_media("message/http");
    let Value::Object(fields) = v else {
        return Err(bad());
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    match fields.get("headers") {
        None => {}
        Some(Value::Object(hs)) => {
            for (k, v) in hs {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?;
                let values = match v {
                    Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                for v in values {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err(bad()),
                    };
                    headers.push((name.clone(), HeaderValue::from_str(&s).map_err(|_| bad())?));
                }
            }
        }
        Some(_) => return Err(bad()),
    }
    let code = match fields.get("statusCode") {
        None => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(bad)?),
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| bad())?),
        Some(_) => return Err(bad()),
    };
    let code = match code {
        Some(c) => Some(
            u16::try_from(c)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(bad)?,
        ),
        None => None,
    };
    let content_type = headers
        .iter()
        .find(|(k, _)| *k == CONTENT_TYPE)
        .map(|(_, v)| v.to_str().unwrap_or("").to_owned());
    headers.retain(|(k, _)| *k != CONTENT_TYPE);
    let (status, ct, bytes): (StatusCode, Option<String>, Vec<u8>) = match fields.get("body") {
        None | Some(Value::Null) => (code.unwrap_or(StatusCode::NO_CONTENT), None, Vec::new()),
        Some(Value::String(s)) if s.is_empty() => {
            (code.unwrap_or(StatusCode::NO_CONTENT), None, Vec::new())
        }
        Some(Value::String(s)) => {
            let ct = content_type.unwrap_or_else(|| "text/html".into());
            let mime = mime_of(&ct);
            if mime.is_empty() || !mime.contains('/') {
                return Err(ApiError::bad_request(UNKNOWN_CONTENT_TYPE));
            }
            let decode_b64 = is_binary(&mime)
                || (is_json_family(&mime) && whirl_model::action::is_binary_code(s));
            let bytes = if decode_b64 {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| ApiError::bad_request(CONTENT_TYPE_MISMATCH))?
            } else {
                s.clone().into_bytes()
            };
            let ct = if !is_binary(&mime) && !ct.to_ascii_lowercase().contains("charset") {
                format!("{ct}; charset=UTF-8")
            } else {
                ct
            };
            (code.unwrap_or(StatusCode::OK), Some(ct), bytes)
        }
        Some(js) => {
            let ct = content_type.unwrap_or_else(|| "application/json".into());
            if !is_json_family(&mime_of(&ct)) {
                return Err(ApiError::bad_request(CONTENT_TYPE_MISMATCH));
            }
            (
                code.unwrap_or(StatusCode::OK),
                Some(ct),
                serde_json::to_vec(js).unwrap_or_default(),
            )
        }
    };
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in headers {
        r.headers_mut().append(k, v);
    }
    if let Some(ct) = ct {
        if let Ok(v) = HeaderValue::from_str(&ct) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(split_extension("a.json"), ("a", Extension::Json));
        assert_eq!(split_extension("a"), ("a", Extension::Http));
        assert_eq!(split_extension("a.b.text"), ("a.b", Extension::Text));
        assert_eq!(split_extension("a.png"), ("a.png", Extension::Http));
    }

    #[test]
    fn media_types() {
        assert!(is_binary("image/png"));
        assert!(is_binary("application/octet-stream"));
        assert!(!is_binary("text/plain"));
        assert!(!is_binary("application/vnd.api+json"));
        assert_eq!(mime_of("Text/HTML; charset=utf-8"), "text/html");
    }

    #[test]
    fn forms() {
        let m = form_urlencoded(b"a=1&b=x+y&c=%2F&d");
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"a":"1","b":"x y","c":"/","d":""})
        );
    }
}
