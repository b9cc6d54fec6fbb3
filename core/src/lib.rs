//! The heart of codebox: domain types, the ports (traits) every backend implements,
//! the services that hold the business rules, and in-memory adapters.
//!
//! Nothing here knows about HTTP, Docker, SQL or AWS: those live in `functions`,
//! `worker` and `adapters`, and meet this crate only through the ports.

pub mod auth;
pub mod bytes;
pub mod config;
/// The suites every adapter of a port passes: test code, built only for the tests
/// (`conformance` feature), never into a service's binaries.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod domain;
pub mod error;
pub mod judge;
pub mod kept;
pub mod languages;
pub mod limits;
pub mod memory;
pub mod png;
pub mod ports;
pub mod shutdown;
pub mod spill;
pub mod tasks;
pub mod telemetry;
pub mod time;

pub use error::Error;
