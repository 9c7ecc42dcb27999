//! Whirl's domain model: the entities OpenWhisk users already know (actions, activations, identities,
//! runtime kinds), their JSON shapes exactly as OpenWhisk's REST API and action-runtime protocol
//! spell them, names and limits with their validation rules, and the typed messages that cross
//! subsystem boundaries (controller → invoker).
//!
//! This crate does no I/O and has no async code: every other crate depends on it, and it depends on
//! nothing of Whirl's.

pub mod action;
pub mod activation;
pub mod endpoint;
pub mod error;
pub mod identity;
pub mod limits;
pub mod logtag;
pub mod manifest;
pub mod message;
pub mod names;
pub mod package;
pub mod params;
pub mod time;
pub mod trigger;

pub use action::{Action, ActionLimits, Exec, ExecKind};
pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use endpoint::Endpoint;
pub use error::{ErrorBody, ModelError};
pub use identity::{Identity, UserLimits};
pub use limits::SystemLimits;
pub use manifest::{RuntimeKind, RuntimeManifest};
pub use message::ActivationMessage;
pub use names::{EntityName, FullyQualifiedName};
pub use package::{Binding, Package, PackagePut};
pub use params::{KeyValue, Params};
pub use trigger::{EntityRef, ReducedRule, Rule, RulePut, RuleStatus, Trigger, TriggerPut};
