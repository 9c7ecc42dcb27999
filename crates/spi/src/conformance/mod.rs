//! Conformance suites: one async function per SPI that exercises an implementation through the
//! trait alone and panics (with a message naming the broken rule) when it misbehaves. Every
//! implementation crate calls the suite for its SPI from its own tests, against the real backend
//! (embedded, or a real server the test scripts start), so in-memory and production
//! implementations are held to the same contract.

pub mod auth;
pub mod container;
pub mod loadbalancer;
pub mod logstore;
pub mod messaging;
pub mod stores;
