//! The authentication SPI: from credentials to an [`Identity`].

use async_trait::async_trait;
use whirl_model::Identity;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication backend failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The identity for HTTP Basic credentials `uuid:key`, or None if they are not valid.
    async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, AuthError>;

    /// The identity owning a namespace (for web actions and triggers, which run as the owner).
    /// Its `key` may be empty when the store does not keep keys in clear.
    async fn identity_for_namespace(&self, namespace: &str) -> Result<Option<Identity>, AuthError>;
}
