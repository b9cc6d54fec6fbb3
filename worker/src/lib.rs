//! The codebox worker: takes tasks from the queue, runs code tasks in a throwaway,
//! locked-down sandbox each and image tasks in a child process under limits,
//! and commits outcomes.

pub mod consumer;
pub mod filters;
pub mod http_control;
pub mod run;
mod run_watch;
pub mod sandbox;
pub mod settings;
pub mod stages;
pub mod tls;
