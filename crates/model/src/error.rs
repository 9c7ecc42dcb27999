//! Validation errors and OpenWhisk's `{error, code}` response body.

use serde::{Deserialize, Serialize};

/// What is wrong with an entity or request, worded as OpenWhisk words it where it has a wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("The name '{0}' is not a valid entity name.")]
    InvalidName(String),
    #[error("{0}")]
    InvalidLimit(String),
    #[error("The request content was malformed:\n{0}")]
    Malformed(String),
    #[error("kind '{0}' is not supported.")]
    UnsupportedKind(String),
    #[error("The requested kind '{0}' is deprecated and cannot be created or updated.")]
    DeprecatedKind(String),
    #[error("{0}")]
    Invalid(String),
    #[error("The request content exceeds the maximum allowed length: {size} > {limit} bytes.")]
    TooLarge { size: usize, limit: usize },
}

/// OpenWhisk's error response body: a message and the transaction id that served the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

/// Messages that OpenWhisk returns verbatim; clients and scripts match on them.
pub mod messages {
    pub const RESOURCE_DOES_NOT_EXIST: &str = "The requested resource does not exist.";
    pub const NOT_AUTHORIZED: &str =
        "The supplied authentication is not authorized to access this resource.";
    pub const AUTH_REQUIRED: &str =
        "The resource requires authentication, which was not supplied with the request";
    pub const ENTITY_EXISTS: &str = "resource already exists";
    pub const TIMEOUT_PARAM: &str = "Timeout must be number of milliseconds up to 60000.";
    pub const RESERVED_PARAMS: &str =
        "Request defines parameters that are not allowed (e.g., reserved properties).";
    pub const DOCS_WITH_COUNT: &str = "The parameter 'docs' is not permitted with 'count'.";
    pub const ABNORMAL_INIT: &str = "The action did not initialize and exited unexpectedly.";
    pub const ABNORMAL_RUN: &str =
        "The action did not produce a valid response and exited unexpectedly.";
    pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";
    pub const NOT_DICTIONARY: &str = "The action did not return a dictionary or array.";
    pub const PROVISION_FAILED: &str = "Failed to provision resources to run the action.";
    pub const LOGS_TRUNCATED_PREFIX: &str =
        "Logs were truncated because the total bytes size exceeds the limit of";
    pub const LOG_COLLECTION_ISSUE: &str =
        "There was an issue while collecting your logs. Data might be missing.";
    pub const DEV_ERROR_LOGS_WARNING: &str =
        "The action did not initialize or run as expected. Log data might be missing.";
    /// Recorded instead of logs when an activation ran beside others in a container that cannot
    /// tell their output apart (Whirl's own; OpenWhisk mixes such logs silently).
    pub const LOGS_NOT_ATTRIBUTED: &str =
        "Logs were not collected: this activation ran concurrently with others in one container, \
         and this container cannot tell their output apart. Use an out-of-band log store for \
         actions with limits.concurrency above 1 on this container factory.";
    pub const SYSTEM_OVERLOADED: &str = "System is overloaded, try again later.";
    pub const NO_INVOKERS: &str = "No invokers available.";
    pub const INTERRUPTED: &str =
        "The activation was interrupted before it completed: the platform stopped or the invoker was lost.";

    /// OpenWhisk's message for a run that exceeded the action's time limit.
    pub fn timed_out(ms: u64) -> String {
        format!("The action exceeded its time limits of {ms} milliseconds.")
    }

    /// OpenWhisk's message for an /init that exceeded the action's time limit.
    pub fn init_timed_out(ms: u64) -> String {
        format!("The action exceeded its time limits of {ms} milliseconds during initialization.")
    }

    /// OpenWhisk's message for a response over the payload limit.
    pub fn truncated_response(size: usize, limit: usize, truncated: &str) -> String {
        format!(
            "The action produced a response that exceeded the allowed length: {size} > {limit} bytes. The truncated response was: {truncated}"
        )
    }

    /// OpenWhisk's log-truncation line.
    pub fn logs_truncated(limit_bytes: usize) -> String {
        format!("{LOGS_TRUNCATED_PREFIX} {limit_bytes} bytes.")
    }
}
