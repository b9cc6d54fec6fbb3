//! The codebox worker: takes tasks from the queue, runs code tasks in a throwaway,
//! locked-down Docker container each and image tasks in a child process under limits,
//! and commits outcomes.

pub mod consumer;
pub mod filters;
pub mod http_control;
mod run_watch;
pub mod sandbox;
pub mod tls;
