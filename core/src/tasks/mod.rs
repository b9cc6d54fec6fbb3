//! Tasks: what a client sends (`request`), how it is checked (`validate`), the service
//! users and workers call (`service`), waiting for a task's end (`wait`; an end stored in
//! the same process handed to its waiters, `ended`), the outbox and
//! its sweeper (`outbox`), PNG uploads (`uploads`), and the finished tasks' summaries an
//! API process keeps (`finished`).

mod ended;
mod finished;
mod outbox;
mod request;
mod service;
mod uploads;
mod validate;
mod wait;

#[cfg(test)]
mod tests;

pub use outbox::{SWEEP_AFTER, SWEEP_BATCH};
pub use request::*;
pub use service::*;
pub use uploads::{UPLOAD_KEPT, UPLOAD_TTL, UPLOADS, upload_key, upload_prefix};
pub use validate::{check_file_path, check_spec, check_webhook_url};
pub use wait::EndWatch;
