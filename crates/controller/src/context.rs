//! Per-request context: the transaction id, the headers every response carries (CORS,
//! `X-Request-ID`), OPTIONS pre-flight answers, and the JSON bodies of error responses.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;
use tracing::Instrument;

use crate::error::{default_message, ErrorMessage};

/// The header carrying the transaction id, in requests (optional) and in every response.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Transaction ids starting with this are reserved for the system (OpenWhisk `sid_`); a client
/// may not supply them.
const SYSTEM_PREFIX: &str = "sid_";

const TID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A request's transaction id: 32 random alphanumerics (as OpenWhisk generates them), or the
/// caller's `X-Request-ID`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransId(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Generated([u8; 32]),
    Given(Arc<str>),
}

impl TransId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut b = [0u8; 32];
        for c in &mut b {
            *c = TID_ALPHABET[rng.gen_range(0..TID_ALPHABET.len())];
        }
        Self(Repr::Generated(b))
    }

    /// The id a request asks for, if it may be used.
    pub fn from_headers(h: &HeaderMap) -> Option<Self> {
        let v = h.get(&REQUEST_ID)?.to_str().ok()?.trim();
        let ok = !v.is_empty()
            && v.len() <= 128
            && !v.starts_with(SYSTEM_PREFIX)
            && v.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(Repr::Given(Arc::from(v))))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always ASCII: built from TID_ALPHABET.
            Repr::Generated(b) => std::str::from_utf8(b).unwrap_or(""),
            Repr::Given(s) => s,
        }
    }
}

impl std::fmt::Display for TransId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TransId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<TransId>()
            .cloned()
            .unwrap_or_else(TransId::generate))
    }
}

/// Adds OpenWhisk's REST API CORS headers.
fn add_cors(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, DELETE, POST, PUT, HEAD"),
    );
}

#[derive(Serialize)]
struct ErrorBodyRef<'a> {
    error: &'a str,
    code: &'a str,
}

/// The middleware around every route: assigns the transaction id, answers OPTIONS, adds the
/// common headers and writes the JSON body of error responses.
pub(crate) async fn request_context(mut req: Request, next: Next) -> Response {
    let tid = TransId::from_headers(req.headers()).unwrap_or_else(TransId::generate);
    let web = req.uri().path().starts_with(crate::web::WEB_PREFIX);
    if req.method() == Method::OPTIONS && !web {
        let mut r = StatusCode::OK.into_response();
        finish_headers(r.headers_mut(), &tid);
        return r;
    }
    req.extensions_mut().insert(tid.clone());
    let span = crate::trace::http_span(&req, &tid);
    let mut resp = next.run(req).instrument(span.clone()).await;
    crate::trace::finish_http_span(&span, resp.status());
    if resp
        .extensions_mut()
        .remove::<crate::web::WebResponse>()
        .is_some()
    {
        // A web action's own answer: only the transaction id is added.
        if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        return resp;
    }
    let message = match resp.extensions_mut().remove::<ErrorMessage>() {
        Some(ErrorMessage(m)) => Some(m),
        None if resp.status().is_client_error() || resp.status().is_server_error() => {
            // An error from the router itself (or a bodiless one): word it if it has no body.
            let empty = resp.body().size_hint().exact() == Some(0);
            let is_json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if empty || !is_json {
                let allow = resp
                    .headers()
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok());
                Some(default_message(resp.status(), allow))
            } else {
                None
            }
        }
        None => None,
    };
    if let Some(m) = message {
        let body = serde_json::to_vec(&ErrorBodyRef {
            error: m.trim(),
            code: tid.as_str(),
        })
        .unwrap_or_default();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        *resp.body_mut() = Body::from(body);
    }
    finish_headers(resp.headers_mut(), &tid);
    resp
}

fn finish_headers(h: &mut HeaderMap, tid: &TransId) {
    add_cors(h);
    if let Ok(v) = HeaderValue::from_str(tid.as_str()) {
        h.insert(REQUEST_ID, v);
    }
}

/// A JSON response with the given status.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            crate::error::ApiError::internal(format!("response could not be serialized: {e}"))
                .into_response()
        }
    }
}

/// A response from already serialized JSON.
pub(crate) fn json_bytes(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let mut r = Response::new(bytes.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_alphanumerics() {
        let a = TransId::generate();
        let b = TransId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn callers_may_name_the_transaction_but_not_as_the_system() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(TransId::from_headers(&h).unwrap().as_str(), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("sid_invoker"));
        assert!(TransId::from_headers(&h).is_none());
        h.insert(REQUEST_ID, HeaderValue::from_static(""));
        assert!(TransId::from_headers(&h).is_none());
    }
}
