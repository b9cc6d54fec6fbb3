//! Real backends of the ports in `codebox_core::ports`, each behind a cargo feature so a
//! binary links only what it uses. Every adapter passes the same conformance suite as the
//! in-memory one, against a real server.

#[cfg(feature = "aws-sdk")]
pub mod aws;
pub mod fs;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
