//! In-memory adapters of every store and queue port: the embedded profile's backends and
//! the reference the conformance suites are written against.

mod blobs;
mod events;
mod limits;
mod queue;
mod sessions;
pub mod tasks;
mod users;

pub use blobs::MemoryBlobStore;
pub use events::{Fanout, MemoryEventBus, live_after};
pub use limits::MemoryRateLimiter;
pub use queue::MemoryQueue;
pub use sessions::MemorySessionStore;
pub use tasks::MemoryTaskStore;
pub use users::MemoryUserStore;
