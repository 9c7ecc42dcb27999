//! Authentication (HTTP Basic `uuid:key` through the [`Authenticator`](whirl_spi::Authenticator))
//! and namespace authorization.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use whirl_model::error::messages;
use whirl_model::names::DEFAULT_NAMESPACE;
use whirl_model::Identity;

use crate::error::{ApiError, AUTH_INVALID};
use crate::Inner;

/// Splits an `Authorization` header value into `(uuid, key)`; None when it is not valid Basic
/// credentials.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (uuid, key) = s.split_once(':')?;
    if uuid.is_empty() || key.is_empty() {
        return None;
    }
    Some((uuid.to_owned(), key.to_owned()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Identity);

impl FromRequestParts<Arc<Inner>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, inner: &Arc<Inner>) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized(messages::AUTH_REQUIRED));
        };
        let header = header
            .to_str()
            .map_err(|_| ApiError::unauthorized(AUTH_INVALID))?;
        let (uuid, key) = parse_basic(header).ok_or(ApiError::unauthorized(AUTH_INVALID))?;
        // Caching identities is the authenticator's business (it knows when keys change).
        match inner.auth.authenticate(&uuid, &key).await {
            Ok(Some(identity)) => Ok(Caller(identity)),
            Ok(None) => Err(ApiError::unauthorized(AUTH_INVALID)),
            Err(e) => {
                tracing::error!("authentication failed: {e}");
                Err(ApiError::internal(format!("Authentication failed: {e}")))
            }
        }
    }
}

/// The namespace a path names, for this caller: `_` or the caller's own; any other is forbidden
/// (shared packages are read through [`resolve_namespace`]).
pub(crate) fn authorize_namespace<'a>(caller: &'a Identity, ns: &str) -> Result<&'a str, ApiError> {
    let own = caller.namespace.as_str();
    if ns == DEFAULT_NAMESPACE || ns == own {
        Ok(own)
    } else {
        Err(ApiError::forbidden())
    }
}

/// The namespace a path names, for reading shared entities: `_` or the caller's own (owner), or
/// any other valid namespace name (not the owner; what may be read there is decided per entity).
pub(crate) fn resolve_namespace<'a>(
    caller: &'a Identity,
    ns: &'a str,
) -> Result<(&'a str, bool), ApiError> {
    let own = caller.namespace.as_str();
    if ns == DEFAULT_NAMESPACE || ns == own {
        Ok((own, true))
    } else if whirl_model::names::is_valid_name(ns) {
        Ok((ns, false))
    } else {
        Err(ApiError::forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whirl_model::EntityName;

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(
            parse_basic(&basic("u-1:k:ey")),
            Some(("u-1".into(), "k:ey".into()))
        );
        assert_eq!(
            parse_basic(&basic("u-1:k").replace("Basic", "basic")),
            Some(("u-1".into(), "k".into()))
        );
        assert_eq!(parse_basic(&basic("nocolon")), None);
        assert_eq!(parse_basic(&basic(":k")), None);
        assert_eq!(parse_basic(&basic("u:")), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic"), None);
    }

    #[test]
    fn namespaces_are_the_callers_own() {
        let id = Identity {
            subject: "guest".into(),
            namespace: EntityName::new("guest").unwrap(),
            uuid: "u".into(),
            key: "k".into(),
            limits: Default::default(),
        };
        assert_eq!(authorize_namespace(&id, "_").unwrap(), "guest");
        assert_eq!(authorize_namespace(&id, "guest").unwrap(), "guest");
        let e = authorize_namespace(&id, "other").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(e.message, messages::NOT_AUTHORIZED);
    }
}
