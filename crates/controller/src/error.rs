//! API errors and OpenWhisk's `{"error": message, "code": transaction id}` bodies.
//!
//! Handlers return [`ApiError`]; it becomes a bodiless response that carries its message in an
//! extension, and the request middleware ([`crate::context`]), which knows the transaction id,
//! writes the JSON body. The same middleware gives bodies to errors produced by the router itself
//! (404 for unknown routes, 405 for a wrong method).

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use whirl_model::error::messages;
use whirl_spi::{LoadBalancerError, StoreError};

/// The challenge OpenWhisk sends with a 401.
pub(crate) const WWW_AUTHENTICATE: &str = "Basic realm=\"OpenWhisk secure realm\", charset=UTF-8";

/// Message for authentication that was supplied but is not valid.
pub(crate) const AUTH_INVALID: &str = "The supplied authentication is invalid";

/// Message for a concurrent update that lost.
pub(crate) const CONCURRENT_MODIFICATION: &str = "Concurrent modification to resource detected.";

/// Message for a stored document that cannot be read.
pub(crate) const CORRUPTED_ENTITY: &str = "Resource is corrupted and cannot be read.";

/// An error response: a status and a message (the transaction id is added by the middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    /// Adds `WWW-Authenticate` (401 only).
    pub challenge: bool,
}

/// The message of an error response, carried as a response extension to the middleware.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMessage(pub Cow<'static, str>);

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            challenge: false,
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 for a request body that does not parse, worded as OpenWhisk (Pekko) words it.
    pub fn malformed(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("The request content was malformed:\n{detail}"))
    }

    /// 400 for a query parameter that does not parse, worded as OpenWhisk (Pekko) words it.
    pub fn bad_query(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!(
            "The query parameter '{name}' was malformed:\n{detail}"
        ))
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, messages::RESOURCE_DOES_NOT_EXIST)
    }

    /// 404 with a message of its own.
    pub fn not_found_with(message: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, messages::NOT_AUTHORIZED)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn unauthorized(message: &'static str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: Cow::Borrowed(message),
            challenge: true,
        }
    }

    /// OpenWhisk's 413 for an entity field or request over its limit.
    pub fn entity_too_big(field: &str, is: usize, allowed: usize) -> Self {
        Self::too_large(format!(
            "{field} larger than allowed: {is} > {allowed} bytes."
        ))
    }

    /// 415 for a body that is not JSON.
    pub fn unsupported_content_type(given: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("The request's Content-Type [{given}] is not supported. Expected:\napplication/json"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => ApiError::conflict(CONCURRENT_MODIFICATION),
            StoreError::Corrupt(m) => {
                tracing::error!("corrupt document: {m}");
                ApiError::internal(CORRUPTED_ENTITY)
            }
            StoreError::Backend(m) => {
                tracing::error!("store failed: {m}");
                ApiError::internal(format!("The store failed: {m}"))
            }
        }
    }
}

impl From<LoadBalancerError> for ApiError {
    fn from(e: LoadBalancerError) -> Self {
        let status = match e {
            LoadBalancerError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            LoadBalancerError::NoInvokers
            | LoadBalancerError::Unavailable(_)
            | LoadBalancerError::Lost(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        if self.challenge {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        r.extensions_mut().insert(ErrorMessage(self.message));
        r
    }
}

/// The message for an error response that a handler did not word (router 404/405 and the like),
/// as Pekko words its defaults.
pub(crate) fn default_message(status: StatusCode, allow: Option<&str>) -> Cow<'static, str> {
    match status {
        StatusCode::NOT_FOUND => Cow::Borrowed("The requested resource could not be found."),
        StatusCode::METHOD_NOT_ALLOWED => match allow {
            Some(a) if !a.is_empty() => {
                Cow::Owned(format!("HTTP method not allowed, supported methods: {a}"))
            }
            _ => Cow::Borrowed("HTTP method not allowed."),
        },
        StatusCode::PAYLOAD_TOO_LARGE => Cow::Borrowed("The request content was too large."),
        s => Cow::Borrowed(s.canonical_reason().unwrap_or("Error")),
    }
}
