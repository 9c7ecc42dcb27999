//! Whirl's service-provider interfaces (SPIs): the traits behind which every pluggable part of the
//! platform lives, their typed errors, and the conformance suites every implementation must pass.
//!
//! | SPI | module | implementations |
//! |---|---|---|
//! | [`LoadBalancer`] | [`loadbalancer`] | `lean` (in-process invoker), `sharding` (over the bus), later `direct` |
//! | [`ContainerFactory`] + [`Container`] | [`container`] | `process` (sandboxed processes), `docker` (Docker Engine) |
//! | [`LogStore`] | [`logstore`] | `activation` (into the record), `file` (plus JSON-lines files), `syslog` (out of band) |
//! | [`Messaging`] | [`messaging`] | `memory`, `nats` |
//! | [`EntityStore`], [`ActivationStore`], [`SubjectStore`] | [`store`] | `sqlite` (embedded file), `postgres` |
//! | [`Authenticator`] | [`auth`] | `basic` (HTTP Basic over a subject store) |
//!
//! The controller and the invoker depend only on these traits and on `whirl-model`; the
//! composition root (`whirl-compose`) is the only crate that names implementations.
//! Every trait is object safe: implementations are chosen at run time from configuration.

pub mod auth;
pub mod container;
pub mod loadbalancer;
pub mod logstore;
pub mod messaging;
pub mod store;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "log-buffer")]
pub mod logbuffer;

pub use auth::{AuthError, Authenticator};
pub use container::{
    CollectedLogs, Container, ContainerError, ContainerFactory, ContainerSpec, FactoryCapacity,
    LogLine, LogStream,
};
pub use loadbalancer::{
    detach_on_drop, ActivationFuture, ActiveCounts, HealthStatus, InvokerHealth, KindResolver,
    LoadBalancer, LoadBalancerError, LoadBalancerResolver, SingleResolver,
};
pub use logstore::{LogContext, LogError, LogStore};
pub use messaging::{Consumer, Delivery, Messaging, MessagingError, Producer};
pub use store::{
    ActivationQuery, ActivationStore, Collection, Document, EntityStore, ListQuery,
    PendingActivation, PutMode, StoreError, StoreOutcome, SubjectRecord, SubjectStore,
};
