//! The controller → invoker message: everything an invoker needs to run one activation.
//! It is a serde type because it crosses process boundaries over a message bus.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::activation::ActivationId;
use crate::identity::Identity;

/// Version of the message format; bumped on incompatible changes.
pub const MESSAGE_VERSION: u32 = 1;

/// One activation, as the controller hands it to a load balancer and an invoker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationMessage {
    #[serde(default = "default_version")]
    pub version: u32,
    /// Transaction id of the request that caused this activation.
    pub transid: String,
    /// `/ns[/pkg]/name` of the action.
    pub action: String,
    /// Store revision of the action document the controller resolved.
    pub revision: u64,
    /// The invoking identity.
    pub user: Identity,
    pub activation_id: ActivationId,
    /// Which controller waits for the completion.
    pub root_controller: String,
    pub blocking: bool,
    /// The merged parameters the action receives (`value` of /run), minus init parameters.
    pub content: Option<Value>,
    /// Parameter keys that go to /init as environment instead of to /run.
    #[serde(default)]
    pub init_args: Vec<String>,
    pub cause: Option<ActivationId>,
    /// Epoch ms when the controller accepted the request (the start of `waitTime`).
    pub received_at_ms: u64,
    /// Name of the load balancer that dispatched this activation.
    #[serde(default)]
    pub load_balancer: String,
    /// Extra annotations to record on the activation (e.g. `causedBy`).
    #[serde(default)]
    pub extra_annotations: Vec<(String, Value)>,
}

fn default_version() -> u32 {
    MESSAGE_VERSION
}
