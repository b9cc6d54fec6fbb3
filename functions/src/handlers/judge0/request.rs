//! A submission as Judge0 clients send it, and the codebox task it becomes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use codebox_core::domain::{Limits, Task};
use codebox_core::languages;
use codebox_core::tasks::{LimitsRequest, SubmitRequest, TestRequest};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::problem::ApiError;
use crate::state::AppState;

use super::*;

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
    pub(super) fn view(
        &self,
        state: &AppState,
        task: &Task,
        fields: &[&str],
    ) -> Map<String, Value> {
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

/// The codebox task a Judge0 submission asks for.
/// A Judge0 limit in KB (0–1048576) as whole MiB, rounded up, at least `min`.
pub(super) fn whole_mib(name: &str, kb: Option<f64>, min: u32) -> Result<Option<u32>, ApiError> {
    match kb {
        None => Ok(None),
        Some(kb) if kb.is_finite() && (0.0..=1_048_576.0).contains(&kb) => {
            Ok(Some(((kb / 1024.0).ceil() as u32).max(min)))
        }
        Some(kb) => Err(unprocessable(format!("{name} {kb} KB is not 0 to 1048576"))),
    }
}

pub(super) fn to_task(req: SubmissionRequest, base64: bool) -> Result<SubmitRequest, ApiError> {
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
