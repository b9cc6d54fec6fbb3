//! The codebox HTTP API as it is on the wire, written once for the server
//! (`codebox-functions`), the `codebox` CLI and the tests: the response bodies, a task's
//! status and verdicts with the rule for a finished task, timestamps, and a task's live
//! events with a parser of their stream. serde only; the OpenAPI schemas the server
//! documents them with are behind the `schema` feature.
//!
//! Files: `status.rs` (a task's kind and status, verdicts, output encodings), `time.rs`
//! (timestamps on the wire), `views.rs` (response bodies), `events.rs` (live events and
//! the Server-Sent Events parser), `languages.rs` (the language listing).

pub mod events;
pub mod languages;
pub mod status;
pub mod time;
pub mod views;

pub use languages::{CompilerVersion, Language};
pub use status::{OutputEncoding, TaskKind, TaskStatus, Verdict};
pub use views::*;
