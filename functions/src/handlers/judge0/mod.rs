//! A Judge0 CE 1.13.1-compatible API under `/judge0/`, so that existing Judge0 clients (the
//! official `judge0` Python SDK above all) work unchanged against codebox.
//!
//! A submission is an ordinary codebox task (it shows in `GET /task`): its token is the
//! task id. One with `expected_output` is a task with one test, compared as Judge0
//! compares (trailing whitespace of each line and trailing empty lines ignored), so the
//! verdict is Accepted or Wrong Answer. Authentication: Judge0's `X-Auth-Token` header
//! carrying a codebox token, or `Authorization: Bearer`. Errors are problem+json with
//! Judge0's status codes (422 for a submission it cannot take, 404 for an unknown token).

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;

use crate::problem::ApiError;
use crate::state::AppState;

pub(crate) mod errors;
mod files;
mod info;
mod listing;
mod request;
mod statistics;
mod submissions;
mod system;
mod view;
mod workers;

#[cfg(test)]
mod tests;

pub use errors::Judge0Error;
pub use info::*;
pub use request::*;
pub use statistics::*;
pub use submissions::*;
pub use view::*;
pub use workers::*;

/// The version `GET /judge0/about` reports; Judge0 clients pick their language ids by it.
pub const VERSION: &str = "1.13.1";
/// Submissions in one batch, as `config_info` says.
pub const MAX_BATCH: usize = 20;

/// The statuses, by Judge0 id.
pub const STATUSES: [(u8, &str); 14] = [
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// The fields of a submission `GET` returns without `fields` (Judge0's default).
const DEFAULT_FIELDS: &[&str] = &[
    "stdout",
    "time",
    "memory",
    "stderr",
    "token",
    "compile_output",
    "message",
    "status",
];

/// Every field of a submission (`fields=*`).
pub(crate) const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// A codebox user, by Judge0's `X-Auth-Token` or by `Authorization: Bearer`.
pub struct Judge0User(pub codebox_core::auth::Principal);

impl FromRequestParts<AppState> for Judge0User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = parts.headers.get("x-auth-token") {
            let token = token
                .to_str()
                .map_err(|_| ApiError::unauthorized("malformed X-Auth-Token header"))?;
            let principal = state.accounts.authenticate(token.trim()).await?;
            return Ok(Self(principal));
        }
        let crate::extract::AuthUser(principal) =
            crate::extract::AuthUser::from_request_parts(parts, state).await?;
        Ok(Self(principal))
    }
}

/// The body of a submission's callback, as Judge0 sends it: the default fields, base64.
pub(crate) fn callback_body(state: &AppState, task: &codebox_core::domain::Task) -> Vec<u8> {
    let fields = match view::view(state, task, true, DEFAULT_FIELDS) {
        Ok(fields) => fields,
        // Only text that is not UTF-8 without base64 is refused, and this is base64.
        Err(view::NotUtf8) => serde_json::Map::new(),
    };
    serde_json::to_vec(&fields).unwrap_or_default()
}

pub(crate) fn unprocessable(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/judge0/about", get(about))
            .route("/judge0/config_info", get(config_info))
            .route("/judge0/version", get(version))
            .route("/judge0/system_info", get(system_info))
            .route("/judge0/statistics", get(statistics))
            .route("/judge0/workers", get(workers))
            .route("/judge0/authenticate", axum::routing::post(authenticate))
            .route("/judge0/authorize", axum::routing::post(authorize))
            .route("/judge0/languages", get(languages_list))
            .route("/judge0/languages/all", get(languages_all))
            .route("/judge0/languages/{id}", get(language))
            .route("/judge0/statuses", get(statuses))
            .route("/judge0/submissions", get(index).post(create))
            .route(
                "/judge0/submissions/batch",
                get(show_batch).post(create_batch),
            )
            .route("/judge0/submissions/{token}", get(show).delete(delete))
            .with_state(state)
            .layer(axum::middleware::from_fn(errors::judge0_shapes)),
    )
}
