//! The bodies the API answers with (and the one it takes for an account), as the OpenAPI
//! document shows them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::{OutputEncoding, TaskKind, TaskStatus, Verdict};
use crate::time::{self, Timestamp};

/// `POST /register` and `POST /login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3–64 characters of `[A-Za-z0-9_.-]`.
    #[cfg_attr(
        feature = "schema",
        schema(example = "ada", pattern = r"^[A-Za-z0-9_.-]{3,64}$")
    )]
    pub username: String,
    /// 8–72 characters, any (more than 72 bytes of UTF-8 are pre-hashed, not cut).
    #[cfg_attr(
        feature = "schema",
        schema(example = "correct horse battery", min_length = 8, max_length = 72)
    )]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UserCreated {
    pub id: Uuid,
    pub username: String,
    #[serde(with = "time::rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub token: String,
    #[cfg_attr(feature = "schema", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TaskAccepted {
    pub id: Uuid,
    pub status: TaskStatus,
    #[serde(with = "time::rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TaskStatusView {
    pub id: Uuid,
    pub kind: TaskKind,
    pub status: TaskStatus,
    #[serde(with = "time::rfc3339")]
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::rfc3339_opt")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<Timestamp>,
    #[serde(with = "time::rfc3339_opt")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
}

/// A code task's outcome as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CodeOutputView {
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    /// The terminating signal's name, e.g. `SIGSEGV`.
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// `""` after a successful compile, the compiler's messages after a failed one,
    /// `null` for interpreted languages.
    pub compile_output: Option<String>,
    /// Wall time of the run step, from the program's start to its end.
    pub time_ms: Option<u64>,
    /// CPU time (user + system) of the program and every process it started.
    pub cpu_time_ms: Option<u64>,
    /// Peak resident memory of the program's largest process, in KiB; `null` where the
    /// program never ran.
    pub memory_kb: Option<u64>,
    /// Whether stdout or stderr was cut at the output limit.
    pub truncated: bool,
    /// How `stdout`, `stderr` and `compile_output` are written (`?encoding=`).
    pub encoding: OutputEncoding,
    /// Judged tasks only: how many tests passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<u32>,
    /// Judged tasks only: how many tests there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// Judged tasks only: each test's outcome in order (empty after a compile error).
    /// The task's `stdout` and `stderr` are then empty, and its figures are the largest of
    /// any test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<TestView>>,
}

impl CodeOutputView {
    /// Whether the outputs are base64 (`?encoding=base64`) rather than text.
    pub fn base64(&self) -> bool {
        self.encoding == OutputEncoding::Base64
    }
}

/// One test's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TestView {
    /// The test's place in the request's `tests`, from 0.
    pub index: u32,
    /// `accepted`, `wrong_answer`, `runtime_error`, `time_limit`, `memory_limit`,
    /// `output_limit` or `skipped`.
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub time_ms: Option<u64>,
    pub cpu_time_ms: Option<u64>,
    pub memory_kb: Option<u64>,
    pub truncated: bool,
}

/// `GET /result/{id}` of a code task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CodeResultView {
    pub id: Uuid,
    pub status: TaskStatus,
    #[serde(flatten)]
    pub result: CodeOutputView,
}

/// `GET /result/{id}` of an image task with `Accept: application/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ImageResultView {
    pub id: Uuid,
    pub status: TaskStatus,
    pub verdict: Verdict,
    /// The output PNG, base64-encoded; `null` when there is none.
    pub image_base64: Option<String>,
    /// Why there is no output, when there is none.
    pub error: Option<String>,
}

/// The result part of `GET /task/{id}`, told apart by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultView {
    Code(CodeOutputView),
    Image(ImageOutputView),
}

impl ResultView {
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Code(r) => r.verdict,
            Self::Image(r) => r.verdict,
        }
    }
}

/// An image task's outcome inside `GET /task/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ImageOutputView {
    pub verdict: Verdict,
    /// The output PNG, base64-encoded; `null` when there is none.
    pub image_base64: Option<String>,
    /// Why there is no output, when there is none.
    pub error: Option<String>,
}

/// `GET /task/{id}`: the status, and the result once finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TaskView {
    #[serde(flatten)]
    pub status: TaskStatusView,
    pub result: Option<ResultView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TaskList {
    pub items: Vec<TaskStatusView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /webhook/key`: the key the caller's webhook calls are signed with, theirs alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct WebhookKey {
    /// 64 hex digits; this text, as bytes, is the HMAC key.
    pub key: String,
    /// How a call is signed with it.
    #[cfg_attr(
        feature = "schema",
        schema(
            example = "X-Codebox-Signature: sha256=<hex HMAC-SHA256 of \"<X-Codebox-Timestamp>.<body>\">"
        )
    )]
    pub scheme: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ServiceInfo {
    #[cfg_attr(feature = "schema", schema(example = "codebox"))]
    pub service: String,
    #[cfg_attr(feature = "schema", schema(example = "ok"))]
    pub status: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Health {
    #[cfg_attr(feature = "schema", schema(example = "ok"))]
    pub status: String,
    /// Each checked part (`store`, `queue`) and how it answered.
    pub checks: std::collections::BTreeMap<String, String>,
}
