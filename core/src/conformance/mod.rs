//! One contract suite per port. The in-memory adapters run it in their unit tests and
//! every real adapter runs the very same functions against its real backend, so that
//! backends are interchangeable. Each suite makes its own unique names, so it can run
//! against a shared server and in parallel with itself. They panic on a broken contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod events;
mod limits;
mod queue;
mod stores;

pub use events::event_bus;
pub use limits::rate_limiter;
pub use queue::queue;
pub use stores::{blob_store, session_store, task_store, user_store};
