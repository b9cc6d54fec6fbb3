//! Timestamps: UTC, millisecond precision, RFC 3339 on the wire (`2026-11-22T09:21:18.261Z`),
//! as the API's wire types write them (`codebox_api::time`).

use chrono::{SubsecRound, Utc};

pub use codebox_api::time::{Timestamp, format, parse, rfc3339, rfc3339_opt};

/// Now, truncated to milliseconds so that every backend stores and returns the same value.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(3)
}
