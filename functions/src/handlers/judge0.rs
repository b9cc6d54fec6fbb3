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
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use codebox_core::bytes::Bytes;
use codebox_core::domain::{CodeSpec, Limits, Task, TaskResult, TaskSpec, TaskStatus, Verdict};
use codebox_core::languages;
use codebox_core::tasks::{LimitsRequest, SubmitRequest, TestRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::create_task::{submit, wait_for_end};
use crate::extract::{JsonObject, Query};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

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
const ALL_FIELDS: &[&str] = &[
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

/// A submission as Judge0 takes it. Fields Judge0 has and codebox cannot honour are
/// refused (422) rather than ignored; the per-process and file-size knobs are accepted
/// and ignored, since codebox's own limits apply to the whole sandbox.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Judge0SubmissionRequest)]
pub struct SubmissionRequest {
    /// The program (base64 with `base64_encoded=true`).
    pub source_code: String,
    /// A Judge0 language id from `GET /judge0/languages`.
    #[schema(example = 71)]
    pub language_id: u16,
    /// Must be empty: compiler options are not enabled.
    pub compiler_options: Option<String>,
    /// Split as a shell would (quotes kept together), no shell run.
    pub command_line_arguments: Option<String>,
    pub stdin: Option<String>,
    /// With it, the verdict is Accepted or Wrong Answer.
    pub expected_output: Option<String>,
    /// Seconds, 0.001–20 (codebox limits wall time; default 5).
    #[schema(minimum = 0.001, maximum = 20.0)]
    pub cpu_time_limit: Option<f64>,
    pub cpu_extra_time: Option<f64>,
    /// Seconds, 0.001–20; used when `cpu_time_limit` is not given.
    #[schema(minimum = 0.001, maximum = 20.0)]
    pub wall_time_limit: Option<f64>,
    /// KB, up to 1048576 (1 GiB); rounded up to whole MiB, at least 16 MiB.
    #[schema(minimum = 0.0, maximum = 1048576.0)]
    pub memory_limit: Option<f64>,
    /// KB, up to 1048576 (1 GiB); rounded up to whole MiB, at least 1 MiB.
    #[schema(minimum = 0.0, maximum = 1048576.0)]
    pub stack_limit: Option<f64>,
    pub max_processes_and_or_threads: Option<f64>,
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    pub max_file_size: Option<f64>,
    /// Must be false.
    pub redirect_stderr_to_stdout: Option<bool>,
    /// Must be false: a sandbox has no network.
    pub enable_network: Option<bool>,
    pub number_of_runs: Option<f64>,
    /// Must be absent: callbacks are not enabled.
    pub callback_url: Option<String>,
    /// Must be absent: additional files are not enabled.
    pub additional_files: Option<String>,
}

/// `base64_encoded`, `wait`, `fields`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SubmissionParams {
    /// Request and response text fields (`source_code`, `stdin`, `expected_output`,
    /// `stdout`, `stderr`, `compile_output`, `message`) in base64.
    pub base64_encoded: Option<bool>,
    /// `POST` only: answer once the submission has run (up to 25 s).
    pub wait: Option<bool>,
    /// Comma-separated fields to return, or `*` for all.
    pub fields: Option<String>,
}

impl SubmissionParams {
    /// `task` as a submission, in the encoding and with the fields asked for.
    fn view(&self, state: &AppState, task: &Task, fields: &[&str]) -> Map<String, Value> {
        filtered(
            submission(state, task, self.base64_encoded.unwrap_or(false)),
            fields,
        )
    }
}

/// `GET /judge0/submissions/batch`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct BatchParams {
    /// Comma-separated tokens, at most 20.
    pub tokens: String,
    pub base64_encoded: Option<bool>,
    pub fields: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Judge0BatchRequest)]
pub struct BatchRequest {
    /// 1–20 submissions, each taken or refused on its own.
    #[schema(min_items = 1, max_items = 20)]
    pub submissions: Vec<Value>,
}

/// A submission as Judge0 shows it; which fields appear follows `fields`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0Submission)]
pub struct Submission {
    pub token: Option<String>,
    pub status: Option<StatusView>,
    pub status_id: Option<u8>,
    pub language_id: Option<u16>,
    pub language: Option<LanguageView>,
    pub source_code: Option<String>,
    pub stdin: Option<String>,
    pub expected_output: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub compile_output: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// CPU time in seconds, as a decimal string.
    pub time: Option<String>,
    /// Wall time in seconds, as a decimal string.
    pub wall_time: Option<String>,
    /// Peak memory in KB.
    pub memory: Option<u64>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    pub number_of_runs: Option<u32>,
    pub cpu_time_limit: Option<String>,
    pub cpu_extra_time: Option<String>,
    pub wall_time_limit: Option<String>,
    pub memory_limit: Option<u64>,
    pub stack_limit: Option<u64>,
    pub max_processes_and_or_threads: Option<u64>,
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    pub max_file_size: Option<u64>,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub redirect_stderr_to_stdout: Option<bool>,
    pub callback_url: Option<String>,
    pub additional_files: Option<String>,
    pub enable_network: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = Judge0Status)]
pub struct StatusView {
    pub id: u8,
    pub description: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = Judge0Language)]
pub struct LanguageView {
    pub id: u16,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0LanguageDetail)]
pub struct LanguageDetail {
    pub id: u16,
    pub name: String,
    pub is_archived: bool,
    pub source_file: String,
    pub compile_cmd: Option<String>,
    pub run_cmd: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0Token)]
pub struct Token {
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0SubmissionList)]
pub struct SubmissionList {
    /// In the order of `tokens`; `null` for a token that is not one of yours.
    pub submissions: Vec<Option<Map<String, Value>>>,
}

fn unprocessable(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

/// The codebox task a Judge0 submission asks for.
/// A Judge0 limit in KB (0–1048576) as whole MiB, rounded up, at least `min`.
fn whole_mib(name: &str, kb: Option<f64>, min: u32) -> Result<Option<u32>, ApiError> {
    match kb {
        None => Ok(None),
        Some(kb) if kb.is_finite() && (0.0..=1_048_576.0).contains(&kb) => {
            Ok(Some(((kb / 1024.0).ceil() as u32).max(min)))
        }
        Some(kb) => Err(unprocessable(format!("{name} {kb} KB is not 0 to 1048576"))),
    }
}

fn to_task(req: SubmissionRequest, base64: bool) -> Result<SubmitRequest, ApiError> {
    let text = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v {
            Some(s) if base64 => {
                let bytes = STANDARD
                    .decode(s.replace(['\n', '\r'], ""))
                    .map_err(|_| unprocessable(format!("{name} is not valid base64")))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| unprocessable(format!("{name} is not UTF-8 text")))
            }
            other => Ok(other),
        }
    };
    let (def, compiler) = languages::by_judge0(req.language_id).ok_or_else(|| {
        unprocessable(format!(
            "language with id {} doesn't exist",
            req.language_id
        ))
    })?;
    let refuse = |set: bool, what: &str| {
        if set {
            Err(unprocessable(format!("{what} is not enabled here")))
        } else {
            Ok(())
        }
    };
    refuse(
        req.compiler_options
            .as_deref()
            .is_some_and(|o| !o.is_empty()),
        "compiler_options",
    )?;
    refuse(req.enable_network == Some(true), "enable_network")?;
    refuse(
        req.redirect_stderr_to_stdout == Some(true),
        "redirect_stderr_to_stdout",
    )?;
    refuse(req.callback_url.is_some(), "callback_url")?;
    refuse(req.additional_files.is_some(), "additional_files")?;
    let seconds = req.cpu_time_limit.or(req.wall_time_limit);
    let time_ms = match seconds {
        None => None,
        Some(s) if s.is_finite() && (0.001..=20.0).contains(&s) => {
            Some((s * 1000.0).round() as u32)
        }
        Some(s) => {
            return Err(unprocessable(format!(
                "time limit {s} s is not 0.001 to 20"
            )));
        }
    };
    let memory_mb = whole_mib("memory_limit", req.memory_limit, Limits::MIN.memory_mb)?;
    let stack_mb = whole_mib("stack_limit", req.stack_limit, Limits::MIN.stack_mb)?;
    let args = match req.command_line_arguments.as_deref() {
        None | Some("") => None,
        Some(line) => Some(
            shell_words::split(line)
                .map_err(|e| unprocessable(format!("command_line_arguments: {e}")))?,
        ),
    };
    let stdin = text("stdin", req.stdin)?;
    let expected = text("expected_output", req.expected_output)?;
    let code = text("source_code", Some(req.source_code))?;
    let limits = LimitsRequest {
        time_ms,
        memory_mb,
        output_kb: None,
        stack_mb,
        cpu_ms: None,
    };
    let mut task = SubmitRequest {
        language: Some(def.id.to_owned()),
        compiler,
        code,
        limits: Some(limits),
        ..SubmitRequest::default()
    };
    match expected {
        Some(expected_stdout) => {
            task.tests = Some(vec![TestRequest {
                stdin,
                expected_stdout: Some(expected_stdout),
                args,
            }]);
        }
        None => {
            task.stdin = stdin;
            task.args = args;
        }
    }
    Ok(task)
}

/// Judge0's status of a task.
fn status_of(task: &Task) -> (u8, Option<String>) {
    let Some(TaskResult::Code(r)) = &task.result else {
        return match task.status {
            TaskStatus::Queued => (1, None),
            TaskStatus::Running => (2, None),
            _ => (13, Some("the task has no code result".to_owned())),
        };
    };
    let (code, signal) = (r.exit_code, r.signal.as_deref());
    match r.verdict {
        Verdict::Ok | Verdict::Accepted => (3, None),
        Verdict::WrongAnswer => (4, None),
        Verdict::TimeLimit => (5, Some("Time limit exceeded".to_owned())),
        Verdict::CompileError => (6, None),
        Verdict::OutputLimit => (8, Some("Output limit exceeded".to_owned())),
        Verdict::MemoryLimit => (12, Some("Memory limit exceeded".to_owned())),
        Verdict::RuntimeError => match (code, signal) {
            (_, Some(name)) => {
                let id = match name {
                    "SIGSEGV" => 7,
                    "SIGXFSZ" => 8,
                    "SIGFPE" => 9,
                    "SIGABRT" => 10,
                    _ => 12,
                };
                let number = signal_number(name).map_or(String::new(), |n| format!("{n} "));
                (id, Some(format!("Killed by signal {number}({name})")))
            }
            (Some(c), None) => (11, Some(format!("Exited with error status {c}"))),
            (None, None) => (12, None),
        },
        Verdict::Cancelled => (13, Some("Cancelled".to_owned())),
        Verdict::InternalError | Verdict::Skipped => (13, None),
    }
}

fn signal_number(name: &str) -> Option<i32> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| i as i32 + 1)
        .or_else(|| name.strip_prefix("SIG")?.parse().ok())
}

fn seconds(ms: Option<u64>) -> Option<String> {
    ms.map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000))
}

fn language_name(
    def: &languages::LanguageDef,
    compiler: Option<codebox_core::domain::Compiler>,
    state: &AppState,
) -> String {
    let listing = state.languages.read();
    let probed = listing.iter().find(|l| l.id == def.id);
    let version = match (compiler, probed) {
        (Some(c), Some(l)) => l
            .compilers
            .iter()
            .find(|v| v.id == c)
            .and_then(|v| v.version.clone()),
        (None, Some(l)) => l.version.clone(),
        _ => None,
    };
    let tool = match compiler {
        Some(c) => c.as_str().to_uppercase().replace("CLANG", "Clang"),
        None => String::new(),
    };
    match (tool.is_empty(), version) {
        // "C# (Mono)" → "C# (Mono 6.8.0.105)", as Judge0 names them.
        (true, Some(v)) if def.name.ends_with(')') => {
            format!("{} {v})", def.name.trim_end_matches(')'))
        }
        (true, Some(v)) => format!("{} ({v})", def.name),
        (true, None) => def.name.to_owned(),
        (false, Some(v)) => format!("{} ({tool} {v})", def.name),
        (false, None) => format!("{} ({tool})", def.name),
    }
}

/// Every field of a submission, as JSON values.
fn submission(state: &AppState, task: &Task, base64: bool) -> Map<String, Value> {
    let encode = |b: &[u8]| -> Value {
        if b.is_empty() {
            Value::Null
        } else if base64 {
            Value::String(STANDARD.encode(b))
        } else {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
    };
    let empty = CodeSpec::default();
    let spec = match &task.spec {
        TaskSpec::Code(c) => c,
        TaskSpec::Image(_) => &empty,
    };
    let result = match &task.result {
        Some(TaskResult::Code(r)) if task.status.is_finished() => Some(r),
        _ => None,
    };
    // A judged submission's run is its one test.
    let test = spec.tests.first();
    let run = result.and_then(|r| r.tests.as_ref().and_then(|t| t.first()));
    let (stdout, stderr) = match (run, result) {
        (Some(t), _) => (t.stdout.as_bytes(), t.stderr.as_bytes()),
        (None, Some(r)) => (r.stdout.as_bytes(), r.stderr.as_bytes()),
        (None, None) => (&[][..], &[][..]),
    };
    let (exit_code, signal, cpu, wall, memory) = match (run, result) {
        (Some(t), _) => (
            t.exit_code,
            t.signal.clone(),
            t.cpu_time_ms,
            t.time_ms,
            t.memory_kb,
        ),
        (None, Some(r)) => (
            r.exit_code,
            r.signal.clone(),
            r.cpu_time_ms,
            r.time_ms,
            r.memory_kb,
        ),
        (None, None) => (None, None, None, None, None),
    };
    let (status_id, message) = status_of(task);
    let description = STATUSES
        .iter()
        .find(|(id, _)| *id == status_id)
        .map_or("", |(_, d)| d);
    let judge0_id = languages::judge0_id(&spec.language, spec.compiler);
    let language = languages::find(&spec.language)
        .map(|def| json!({"id": judge0_id, "name": language_name(def, spec.compiler, state)}));
    let args = test.map_or(&spec.args, |t| &t.args);
    let stdin = test.map_or(&spec.stdin, |t| &t.stdin);
    let limits = spec.limits;
    let fields = [
        ("token", json!(task.id.to_string())),
        (
            "status",
            json!({"id": status_id, "description": description}),
        ),
        ("status_id", json!(status_id)),
        ("language_id", json!(judge0_id)),
        ("language", language.unwrap_or(Value::Null)),
        ("source_code", encode(spec.code.as_bytes())),
        ("stdin", encode(stdin.as_bytes())),
        (
            "expected_output",
            test.map_or(Value::Null, |t| encode(t.expected_stdout.as_bytes())),
        ),
        ("stdout", encode(stdout)),
        ("stderr", encode(stderr)),
        (
            "compile_output",
            encode(
                result
                    .and_then(|r| r.compile_output.as_ref())
                    .map_or(&[][..], Bytes::as_bytes),
            ),
        ),
        (
            "message",
            message.map_or(Value::Null, |m| encode(m.as_bytes())),
        ),
        ("exit_code", json!(exit_code)),
        (
            "exit_signal",
            json!(signal.as_deref().and_then(signal_number)),
        ),
        ("time", json!(seconds(cpu))),
        ("wall_time", json!(seconds(wall))),
        ("memory", json!(memory)),
        (
            "created_at",
            json!(codebox_core::time::format(&task.created_at)),
        ),
        (
            "finished_at",
            json!(task.finished_at.as_ref().map(codebox_core::time::format)),
        ),
        ("number_of_runs", json!(1)),
        (
            "cpu_time_limit",
            json!(seconds(Some(u64::from(limits.time_ms)))),
        ),
        ("cpu_extra_time", json!("0.0")),
        (
            "wall_time_limit",
            json!(seconds(Some(u64::from(limits.time_ms)))),
        ),
        ("memory_limit", json!(u64::from(limits.memory_mb) * 1024)),
        ("stack_limit", json!(u64::from(limits.stack_mb) * 1024)),
        ("max_processes_and_or_threads", json!(64)),
        ("enable_per_process_and_thread_time_limit", json!(false)),
        ("enable_per_process_and_thread_memory_limit", json!(false)),
        ("max_file_size", json!(u64::from(limits.output_kb))),
        ("compiler_options", Value::Null),
        (
            "command_line_arguments",
            if args.is_empty() {
                Value::Null
            } else {
                json!(shell_words::join(args))
            },
        ),
        ("redirect_stderr_to_stdout", json!(false)),
        ("callback_url", Value::Null),
        ("additional_files", Value::Null),
        ("enable_network", json!(false)),
    ];
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The fields asked for: `None` = the default set, `*` = all.
fn pick_fields(fields: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    match fields.map(str::trim) {
        None | Some("") => Ok(DEFAULT_FIELDS.to_vec()),
        Some("*") => Ok(ALL_FIELDS.to_vec()),
        Some(list) => {
            let mut picked = Vec::new();
            let mut unknown = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match ALL_FIELDS.iter().find(|f| **f == name) {
                    Some(f) => picked.push(*f),
                    None => unknown.push(name.to_owned()),
                }
            }
            if unknown.is_empty() {
                Ok(picked)
            } else {
                Err(ApiError::bad_request(format!(
                    "invalid fields: [{}]",
                    unknown.join(", ")
                )))
            }
        }
    }
}

fn filtered(all: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    all.into_iter()
        .filter(|(k, _)| fields.contains(&k.as_str()))
        .collect()
}

/// The caller's task by token; anything else (not a task id, another user's) is 404.
async fn task_of(state: &AppState, owner: uuid::Uuid, token: &str) -> ApiResult<Task> {
    let id = uuid::Uuid::parse_str(token.trim())
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no submission {token}")))?;
    Ok(state.tasks.get(owner, id).await?)
}

#[utoipa::path(get, path = "/judge0/about", tag = "judge0",
    responses((status = 200, description = "What Judge0 clients read first: `version` picks their language ids", body = Object)))]
pub async fn about() -> axum::Json<Value> {
    axum::Json(json!({
        "version": VERSION,
        "homepage": "https://github.com/codebox",
        "source_code": "https://github.com/codebox",
        "maintainer": "codebox, a Judge0 CE 1.13.1-compatible API",
    }))
}

#[utoipa::path(get, path = "/judge0/config_info", tag = "judge0",
    responses((status = 200, description = "The configuration as Judge0 describes it", body = Object)))]
pub async fn config_info() -> axum::Json<Value> {
    let (d, max) = (Limits::DEFAULT, Limits::MAX);
    axum::Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": false,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": false,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": false,
        "max_queue_size": 10000,
        "cpu_time_limit": f64::from(d.time_ms) / 1000.0,
        "max_cpu_time_limit": f64::from(max.time_ms) / 1000.0,
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": 0.0,
        "wall_time_limit": f64::from(d.time_ms) / 1000.0,
        "max_wall_time_limit": f64::from(max.time_ms) / 1000.0,
        "memory_limit": d.memory_mb * 1024,
        "max_memory_limit": max.memory_mb * 1024,
        "stack_limit": d.stack_mb * 1024,
        "max_stack_limit": max.stack_mb * 1024,
        "max_processes_and_or_threads": 64,
        "max_max_processes_and_or_threads": 64,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": d.output_kb,
        "max_max_file_size": max.output_kb,
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 0,
        "enable_batched_submissions": true,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "enable_network": false,
        "allow_enable_network": false,
    }))
}

/// Every Judge0 id codebox runs, with its name and the versions of the runner image.
fn language_list(
    state: &AppState,
) -> Vec<(
    u16,
    String,
    &'static languages::LanguageDef,
    Option<codebox_core::domain::Compiler>,
)> {
    let mut list: Vec<_> = languages::LANGUAGES
        .iter()
        .flat_map(|def| {
            def.judge0
                .iter()
                .map(move |&(id, compiler)| (id, def, compiler))
        })
        .map(|(id, def, compiler)| (id, language_name(def, compiler, state), def, compiler))
        .collect();
    list.sort_by_key(|l| l.0);
    list
}

#[utoipa::path(get, path = "/judge0/languages", tag = "judge0",
    responses((status = 200, description = "The languages by Judge0 id", body = Vec<LanguageView>)))]
pub async fn languages_list(State(state): State<AppState>) -> axum::Json<Vec<LanguageView>> {
    axum::Json(
        language_list(&state)
            .into_iter()
            .map(|(id, name, _, _)| LanguageView { id, name })
            .collect(),
    )
}

#[utoipa::path(get, path = "/judge0/languages/{id}", tag = "judge0",
    params(("id" = u16, Path, description = "Judge0 language id")),
    responses(
        (status = 200, description = "The language", body = LanguageDetail),
        (status = 404, description = "No such language", body = Problem, content_type = "application/problem+json")))]
pub async fn language(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<axum::Json<LanguageDetail>> {
    let found = id
        .parse::<u16>()
        .ok()
        .and_then(|id| language_list(&state).into_iter().find(|l| l.0 == id));
    let Some((id, name, def, compiler)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no language with id {id}"),
        ));
    };
    let spec = CodeSpec {
        language: def.id.to_owned(),
        compiler,
        ..CodeSpec::default()
    };
    let plan = languages::plan(&spec)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no language with id {id}")))?;
    Ok(axum::Json(LanguageDetail {
        id,
        name,
        is_archived: false,
        source_file: plan.source.to_owned(),
        compile_cmd: plan.compile.map(|c| c.join(" ")),
        run_cmd: plan.run.join(" "),
    }))
}

#[utoipa::path(get, path = "/judge0/statuses", tag = "judge0",
    responses((status = 200, description = "The statuses by Judge0 id", body = Vec<StatusView>)))]
pub async fn statuses() -> axum::Json<Vec<StatusView>> {
    axum::Json(
        STATUSES
            .iter()
            .map(|(id, d)| StatusView {
                id: *id,
                description: (*d).to_owned(),
            })
            .collect(),
    )
}

#[utoipa::path(post, path = "/judge0/submissions", tag = "judge0", request_body = SubmissionRequest,
    params(SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 201, description = "Queued: the token (with `wait=true`: the finished submission, or the token after 25 s)", body = Submission),
        (status = 400, description = "Unknown field in `fields`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A submission codebox cannot take", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over your limits; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The queue is unavailable", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<SubmissionParams>,
    JsonObject(body): JsonObject<SubmissionRequest>,
) -> ApiResult<Response> {
    let base64 = params.base64_encoded.unwrap_or(false);
    let fields = pick_fields(params.fields.as_deref())?;
    let request = to_task(body, base64)?;
    let submitted = submit(&state, me.user_id, request, None)
        .await
        .map_err(as_unprocessable)?;
    let task = submitted.task;
    if params.wait == Some(true) {
        let within = super::create_task::MAX_WAIT;
        let task = wait_for_end(&state, &task, within).await?.unwrap_or(task);
        let view = filtered(submission(&state, &task, base64), &fields);
        return Ok((StatusCode::CREATED, axum::Json(view)).into_response());
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(Token {
            token: task.id.to_string(),
        }),
    )
        .into_response())
}

/// codebox's 400 for an invalid task is Judge0's 422.
fn as_unprocessable(e: ApiError) -> ApiError {
    if e.status == StatusCode::BAD_REQUEST {
        unprocessable(e.detail)
    } else {
        e
    }
}

#[utoipa::path(get, path = "/judge0/submissions/{token}", tag = "judge0",
    params(("token" = String, Path, description = "The token `POST /judge0/submissions` gave"), SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "The submission", body = Submission),
        (status = 400, description = "Unknown field in `fields`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such submission of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(params): Query<SubmissionParams>,
) -> ApiResult<axum::Json<Map<String, Value>>> {
    let fields = pick_fields(params.fields.as_deref())?;
    let task = task_of(&state, me.user_id, &token).await?;
    Ok(axum::Json(params.view(&state, &task, &fields)))
}

#[utoipa::path(delete, path = "/judge0/submissions/{token}", tag = "judge0",
    params(("token" = String, Path, description = "The submission's token"), SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "Cancelled (it was queued or running); the submission as it now is", body = Submission),
        (status = 400, description = "Finished submissions are kept (`enable_submission_delete` is false), or an unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such submission of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(params): Query<SubmissionParams>,
) -> ApiResult<axum::Json<Map<String, Value>>> {
    let fields = pick_fields(params.fields.as_deref())?;
    let task = task_of(&state, me.user_id, &token).await?;
    if task.status.is_finished() {
        return Err(ApiError::bad_request(
            "finished submissions are kept: enable_submission_delete is false",
        ));
    }
    state.tasks.cancel(me.user_id, task.id).await?;
    let task = state.tasks.get(me.user_id, task.id).await?;
    Ok(axum::Json(params.view(&state, &task, &fields)))
}

#[utoipa::path(post, path = "/judge0/submissions/batch", tag = "judge0", request_body = BatchRequest,
    params(SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 201, description = "One item per submission, in order: its token, or the problem that refused it", body = Vec<Object>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not 1 to 20 submissions", body = Problem, content_type = "application/problem+json")))]
pub async fn create_batch(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<SubmissionParams>,
    JsonObject(body): JsonObject<BatchRequest>,
) -> ApiResult<Response> {
    if !(1..=MAX_BATCH).contains(&body.submissions.len()) {
        return Err(unprocessable(format!(
            "a batch has 1 to {MAX_BATCH} submissions, not {}",
            body.submissions.len()
        )));
    }
    let base64 = params.base64_encoded.unwrap_or(false);
    let mut items = Vec::with_capacity(body.submissions.len());
    for (i, value) in body.submissions.into_iter().enumerate() {
        let item = async {
            let req: SubmissionRequest = serde_json::from_value(value)
                .map_err(|e| unprocessable(format!("submissions[{i}]: {e}")))?;
            let task = to_task(req, base64)?;
            submit(&state, me.user_id, task, None)
                .await
                .map_err(as_unprocessable)
        }
        .await;
        items.push(match item {
            Ok(s) => json!({"token": s.task.id.to_string()}),
            Err(e) => serde_json::to_value(e.problem()).unwrap_or(Value::Null),
        });
    }
    Ok((StatusCode::CREATED, axum::Json(items)).into_response())
}

#[utoipa::path(get, path = "/judge0/submissions/batch", tag = "judge0",
    params(BatchParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "The submissions in the order of `tokens`", body = SubmissionList),
        (status = 400, description = "More than 20 tokens, or an unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json")))]
pub async fn show_batch(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<BatchParams>,
) -> ApiResult<axum::Json<SubmissionList>> {
    let fields = pick_fields(params.fields.as_deref())?;
    let tokens: Vec<&str> = params
        .tokens
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BATCH} tokens, not {}",
            tokens.len()
        )));
    }
    let base64 = params.base64_encoded.unwrap_or(false);
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        submissions.push(match task_of(&state, me.user_id, token).await {
            Ok(task) => Some(filtered(submission(&state, &task, base64), &fields)),
            Err(e) if e.status == StatusCode::NOT_FOUND => None,
            Err(e) => return Err(e),
        });
    }
    Ok(axum::Json(SubmissionList { submissions }))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/judge0/about", get(about))
            .route("/judge0/config_info", get(config_info))
            .route("/judge0/languages", get(languages_list))
            .route("/judge0/languages/{id}", get(language))
            .route("/judge0/statuses", get(statuses))
            .route("/judge0/submissions", axum::routing::post(create))
            .route(
                "/judge0/submissions/batch",
                get(show_batch).post(create_batch),
            )
            .route("/judge0/submissions/{token}", get(show).delete(delete))
            .with_state(state),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use codebox_core::domain::CodeResult;

    fn request(language_id: u16) -> SubmissionRequest {
        serde_json::from_value(json!({"source_code": "print(1)", "language_id": language_id}))
            .unwrap()
    }

    #[test]
    fn a_submission_becomes_a_task() {
        let t = to_task(request(75), false).unwrap();
        assert_eq!(t.language.as_deref(), Some("c"));
        assert_eq!(t.compiler, Some(codebox_core::domain::Compiler::Clang));
        let mut r = request(71);
        r.source_code = STANDARD.encode("print(2)");
        r.expected_output = Some(STANDARD.encode("2\n"));
        r.stdin = Some(STANDARD.encode("x"));
        r.command_line_arguments = Some("a 'b c'".into());
        r.memory_limit = Some(128_000.0);
        r.cpu_time_limit = Some(2.5);
        r.stack_limit = Some(64_000.0);
        let t = to_task(r, true).unwrap();
        assert_eq!(t.code.as_deref(), Some("print(2)"));
        let tests = t.tests.unwrap();
        assert_eq!(tests[0].expected_stdout.as_deref(), Some("2\n"));
        assert_eq!(tests[0].stdin.as_deref(), Some("x"));
        assert_eq!(tests[0].args, Some(vec!["a".to_owned(), "b c".to_owned()]));
        let limits = t.limits.unwrap();
        assert_eq!((limits.time_ms, limits.memory_mb), (Some(2500), Some(125)));
        assert_eq!(
            limits.stack_mb,
            Some(63),
            "64 000 KB, rounded up to whole MiB"
        );
    }

    #[test]
    fn what_codebox_cannot_do_is_refused() {
        type Spoil = Box<dyn Fn(&mut SubmissionRequest)>;
        let cases: Vec<Spoil> = vec![
            Box::new(|r| r.language_id = 9999),
            Box::new(|r| r.enable_network = Some(true)),
            Box::new(|r| r.callback_url = Some("http://127.0.0.1/".into())),
            Box::new(|r| r.additional_files = Some("UEsFBg==".into())),
            Box::new(|r| r.compiler_options = Some("-O3".into())),
            Box::new(|r| r.redirect_stderr_to_stdout = Some(true)),
            Box::new(|r| r.cpu_time_limit = Some(30.0)),
            Box::new(|r| r.memory_limit = Some(-1.0)),
            Box::new(|r| r.stack_limit = Some(2_000_000.0)),
            Box::new(|r| r.command_line_arguments = Some("'unclosed".into())),
        ];
        for spoil in cases {
            let mut r = request(71);
            spoil(&mut r);
            let e = to_task(r, false).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.detail);
        }
        let mut r = request(71);
        r.source_code = "not base64!".into();
        assert_eq!(
            to_task(r, true).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn runtime_errors_split_by_signal_as_judge0_does() {
        let task = |r: CodeResult| Task {
            status: TaskStatus::Completed,
            result: Some(TaskResult::Code(r)),
            ..Task::new(uuid::Uuid::nil(), TaskSpec::Code(CodeSpec::default()))
        };
        let signalled = |name: &str| CodeResult {
            signal: Some(name.to_owned()),
            ..CodeResult::empty(Verdict::RuntimeError)
        };
        for (result, id) in [
            (CodeResult::empty(Verdict::Ok), 3),
            (CodeResult::empty(Verdict::Accepted), 3),
            (CodeResult::empty(Verdict::WrongAnswer), 4),
            (CodeResult::empty(Verdict::TimeLimit), 5),
            (CodeResult::empty(Verdict::CompileError), 6),
            (signalled("SIGSEGV"), 7),
            (signalled("SIGXFSZ"), 8),
            (signalled("SIGFPE"), 9),
            (signalled("SIGABRT"), 10),
            (
                CodeResult {
                    exit_code: Some(1),
                    ..CodeResult::empty(Verdict::RuntimeError)
                },
                11,
            ),
            (signalled("SIGKILL"), 12),
            (CodeResult::empty(Verdict::InternalError), 13),
        ] {
            assert_eq!(status_of(&task(result.clone())).0, id, "{result:?}");
        }
        assert_eq!(signal_number("SIGSEGV"), Some(11));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("SIG40"), Some(40));
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(pick_fields(None).unwrap(), DEFAULT_FIELDS);
        assert_eq!(pick_fields(Some("*")).unwrap(), ALL_FIELDS);
        assert_eq!(
            pick_fields(Some("stdout, status")).unwrap(),
            ["stdout", "status"]
        );
        assert!(pick_fields(Some("stdout,password")).is_err());
    }
}
