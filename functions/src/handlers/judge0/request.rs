//! A submission as Judge0 clients send it, and the codebox task it becomes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use codebox_core::domain::{Limits, MAX_RUNS, Task, WebhookStyle};
use codebox_core::languages;
use codebox_core::tasks::{LimitsRequest, SubmitRequest, TestRequest, WebhookRequest};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::problem::ApiError;
use crate::state::AppState;

use super::*;

/// A submission as Judge0 takes it, with Rails' leniency: numbers may come as strings,
/// `null` or `""` means the default, booleans as Rails reads them. Judge0's defaults apply
/// (CPU 5 s, wall 10 s, 128 000 KB, stack 64 000 KB, output 1 024 KB). What codebox
/// cannot honour is refused (422) rather than ignored — but for the process count and the
/// per-process flags, which Judge0 clients send with their defaults: the sandbox's own
/// (64, limits for all processes together) apply, and the submission shows them.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Judge0SubmissionRequest)]
pub struct SubmissionRequest {
    /// The program (base64 with `base64_encoded=true`); absent for a multi-file program
    /// (89), whose `run` script is in `additional_files`.
    #[serde(default)]
    pub source_code: Option<String>,
    /// A Judge0 language id from `GET /judge0/languages` (a number, or a string of one).
    #[schema(value_type = u16, example = 71)]
    #[serde(deserialize_with = "lenient::language_id")]
    pub language_id: u16,
    /// Compiled languages: options for the compiler, split as a shell would (no shell
    /// runs them), at most 512 characters.
    #[serde(default, deserialize_with = "lenient::text")]
    pub compiler_options: Option<String>,
    /// Split as a shell would (quotes kept together), no shell run.
    #[serde(default, deserialize_with = "lenient::text")]
    pub command_line_arguments: Option<String>,
    pub stdin: Option<String>,
    /// With it, the verdict is Accepted or Wrong Answer.
    pub expected_output: Option<String>,
    /// CPU seconds of the run, 0–20 (0: none; default 5): over it, Time Limit Exceeded.
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 20.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub cpu_time_limit: Option<f64>,
    /// Seconds, 0–5 (default 1). Accepted: the verdict is the same without it (Judge0 lets
    /// a run go on this long past the CPU limit, then calls it Time Limit Exceeded).
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 5.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub cpu_extra_time: Option<f64>,
    /// Wall-clock seconds, 0.001–20 (default 10).
    #[schema(value_type = Option<f64>, minimum = 0.001, maximum = 20.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub wall_time_limit: Option<f64>,
    /// KB, up to 1048576 (1 GiB; default 128000); rounded up to whole MiB, at least 16 MiB.
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 1048576.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub memory_limit: Option<f64>,
    /// KB, up to 1048576 (1 GiB; default 64000); rounded up to whole MiB, at least 1 MiB.
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 1048576.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub stack_limit: Option<f64>,
    /// Accepted; the sandbox's own limit (64 processes and threads) applies, and the
    /// submission shows it.
    #[schema(value_type = Option<f64>)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub max_processes_and_or_threads: Option<f64>,
    /// Accepted; the time limit is for all processes together (false), as shown.
    #[schema(value_type = Option<bool>)]
    #[serde(default, deserialize_with = "lenient::flag")]
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    /// Accepted; the memory limit is for all processes together (false), as shown.
    #[schema(value_type = Option<bool>)]
    #[serde(default, deserialize_with = "lenient::flag")]
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    /// KB of output kept per stream, 0–1024 (default 1024).
    #[schema(value_type = Option<f64>, minimum = 0.0, maximum = 1024.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub max_file_size: Option<f64>,
    /// The program's stderr goes to its stdout, in order.
    #[schema(value_type = Option<bool>)]
    #[serde(default, deserialize_with = "lenient::flag")]
    pub redirect_stderr_to_stdout: Option<bool>,
    /// Must be false: a sandbox has no network.
    #[schema(value_type = Option<bool>)]
    #[serde(default, deserialize_with = "lenient::flag")]
    pub enable_network: Option<bool>,
    /// 1–5 runs, each in a fresh sandbox, stopping at the first not Accepted: `time` and
    /// `memory` are their means, the rest the last run's.
    #[schema(value_type = Option<f64>, minimum = 1.0, maximum = 5.0)]
    #[serde(default, deserialize_with = "lenient::number")]
    pub number_of_runs: Option<f64>,
    /// Called (`PUT`) with the submission when it ends.
    #[serde(default, deserialize_with = "lenient::text")]
    pub callback_url: Option<String>,
    /// A base64 zip of files placed beside the program.
    #[serde(default, deserialize_with = "lenient::text")]
    pub additional_files: Option<String>,
}

/// Values as Rails' parameters take them.
pub(super) mod lenient {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A number, a string of one, or `null`/`""` (the default).
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_f64()),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("{s:?} is not a number"))),
            other => Err(D::Error::custom(format!("{other} is not a number"))),
        }
    }

    /// A language id: a whole number, or a string of one.
    pub fn language_id<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let n = number(d)?.ok_or_else(|| D::Error::custom("language_id can't be blank"))?;
        if n.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&n) {
            Ok(n as u16)
        } else {
            Err(D::Error::custom(format!(
                "language with id {n} doesn't exist"
            )))
        }
    }

    /// A boolean as Rails reads one: `false`, `0`, `"0"`, `"f"`, `"false"`, `"off"` (any
    /// case) are false, `null`/`""` the default, anything else true.
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            Value::Number(n) => Some(n.as_f64() != Some(0.0)),
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(!matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "0" | "f" | "false" | "off"
            )),
            _ => Some(true),
        })
    }

    /// A string, with `null` as absent.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)
    }

    /// `true`, `1`, `"true"` in a query string.
    pub(crate) fn query_flag(v: Option<&str>) -> bool {
        v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "t"))
    }
}

/// A body as Rails takes one: a JSON object, or a form
/// (`application/x-www-form-urlencoded`, each field a string, read as the JSON strings
/// would be).
pub struct Judge0Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Judge0Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            let crate::extract::JsonObject(body) =
                crate::extract::JsonObject::from_request(req, state).await?;
            return Ok(Self(body));
        }
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid form body: {}", e.body_text())))?;
        let object: Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        serde_json::from_value(Value::Object(object))
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

/// `base64_encoded`, `wait`, `fields`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SubmissionParams {
    /// Request and response text fields (`source_code`, `stdin`, `expected_output`,
    /// `stdout`, `stderr`, `compile_output`, `message`) in base64.
    /// (`true` or `1`.)
    pub base64_encoded: Option<String>,
    /// `POST` only: answer once the submission has run (up to 25 s). `true` or `1`.
    pub wait: Option<String>,
    /// Comma-separated fields to return, or `*` for all.
    #[param(schema_with = super::view::fields_schema)]
    pub fields: Option<String>,
}

impl SubmissionParams {
    pub(super) fn base64(&self) -> bool {
        lenient::query_flag(self.base64_encoded.as_deref())
    }

    pub(super) fn wait(&self) -> bool {
        lenient::query_flag(self.wait.as_deref())
    }

    /// `task` as a submission, in the encoding and with the fields asked for.
    pub(super) fn view(
        &self,
        state: &AppState,
        task: &Task,
        fields: &[&str],
    ) -> Result<Map<String, Value>, ApiError> {
        super::view::view(state, task, self.base64(), fields)
            .map_err(|_| ApiError::bad_request(NotUtf8::ONE))
    }
}

/// `GET /judge0/submissions/batch`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct BatchParams {
    /// Comma-separated tokens, at most 20.
    pub tokens: String,
    /// (`true` or `1`.)
    pub base64_encoded: Option<String>,
    /// Comma-separated fields to return, or `*` for all.
    #[param(schema_with = super::view::fields_schema)]
    pub fields: Option<String>,
}

impl BatchParams {
    pub(super) fn base64(&self) -> bool {
        lenient::query_flag(self.base64_encoded.as_deref())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Judge0BatchRequest)]
pub struct BatchRequest {
    /// 1–20 submissions, each taken or refused on its own.
    #[schema(value_type = Vec<SubmissionRequest>, min_items = 1, max_items = 20)]
    pub submissions: Vec<Value>,
}

/// Judge0's defaults for what a submission leaves out.
pub const DEFAULT_CPU_S: f64 = 5.0;
pub const DEFAULT_WALL_S: f64 = 10.0;
pub const DEFAULT_MEMORY_KB: f64 = 128_000.0;
pub const DEFAULT_OUTPUT_KB: u32 = 1024;

/// A limit given (or its default), within its range, as Judge0 words the refusal.
fn in_range(
    name: &str,
    value: Option<f64>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, ApiError> {
    let v = value.unwrap_or(default);
    if v < *range.start() {
        Err(unprocessable(format!(
            "{name} must be greater than or equal to {}",
            range.start()
        )))
    } else if v > *range.end() {
        Err(unprocessable(format!(
            "{name} must be less than or equal to {}",
            range.end()
        )))
    } else {
        Ok(v)
    }
}

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
    let refuse = |set: bool, message: &str| {
        if set {
            Err(unprocessable(message.to_owned()))
        } else {
            Ok(())
        }
    };
    refuse(
        req.enable_network == Some(true),
        "enabling network is not allowed",
    )?;
    // A multi-file program (89) is its zip: `run` (and `compile`) among its files, no
    // source code, and no arguments (Judge0 ignores them).
    let project = matches!(def.build, languages::Build::Scripts);
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    match (project, blank(&req.source_code)) {
        (true, false) => return Err(unprocessable("source_code must be blank")),
        (false, true) => return Err(unprocessable("source_code can't be blank")),
        _ => {}
    }
    if project && blank(&req.additional_files) {
        return Err(unprocessable("additional_files can't be blank"));
    }
    // Always base64, whatever `base64_encoded` says (as Judge0 reads it). The program's
    // own files are left out — but for a multi-file program, whose `run` is its code.
    let own = if project {
        vec![def.artifact]
    } else {
        vec![def.source, def.artifact]
    };
    let mut files = match req.additional_files.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(zip) => Some(super::files::unzip(zip, &own).map_err(unprocessable)?),
    };
    let source_code = if project {
        let all = files.get_or_insert_default();
        let run = all
            .iter()
            .position(|f| f.path == def.source)
            .map(|at| all.remove(at))
            .ok_or_else(|| {
                unprocessable("additional_files must hold the script `run` at the zip's root")
            })?;
        let bytes = STANDARD
            .decode(run.content)
            .map_err(|_| unprocessable("additional_files: `run` could not be read"))?;
        Some(
            String::from_utf8(bytes)
                .map_err(|_| unprocessable("additional_files: `run` is not UTF-8 text"))?,
        )
    } else {
        req.source_code
    };
    // An integer column in Judge0 (2.7 is 2); 0 is "must be greater than 0".
    let runs = match req.number_of_runs.map(f64::trunc) {
        None => 1,
        Some(n) if n < 1.0 => return Err(unprocessable("number_of_runs must be greater than 0")),
        Some(n) => in_range("number_of_runs", Some(n), 1.0, 1.0..=f64::from(MAX_RUNS))? as u8,
    };
    let compiler_options = match req.compiler_options.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) if !def.takes_compiler_options() => {
            return Err(unprocessable(
                "setting compiler options is only allowed for compiled languages",
            ));
        }
        Some(options) => Some(options.to_owned()),
    };
    // CPU time as Judge0 measures it (0: no CPU limit), and wall-clock time.
    let cpu_s = in_range(
        "cpu_time_limit",
        req.cpu_time_limit,
        DEFAULT_CPU_S,
        0.0..=20.0,
    )?;
    in_range("cpu_extra_time", req.cpu_extra_time, 1.0, 0.0..=5.0)?;
    let wall_s = in_range(
        "wall_time_limit",
        req.wall_time_limit,
        DEFAULT_WALL_S,
        0.001..=20.0,
    )?;
    let output_kb = in_range(
        "max_file_size",
        req.max_file_size,
        f64::from(DEFAULT_OUTPUT_KB),
        0.0..=f64::from(Limits::MAX.output_kb),
    )?;
    let memory_mb = whole_mib(
        "memory_limit",
        req.memory_limit.or(Some(DEFAULT_MEMORY_KB)),
        Limits::MIN.memory_mb,
    )?;
    let stack_mb = whole_mib("stack_limit", req.stack_limit, Limits::MIN.stack_mb)?;
    let args = match req.command_line_arguments.as_deref() {
        _ if project => None,
        None | Some("") => None,
        Some(line) => Some(
            shell_words::split(line)
                .map_err(|e| unprocessable(format!("command_line_arguments: {e}")))?,
        ),
    };
    let stdin = text("stdin", req.stdin)?;
    let expected = text("expected_output", req.expected_output)?;
    let code = if project {
        source_code
    } else {
        text("source_code", source_code)?
    };
    let limits = LimitsRequest {
        time_ms: Some(((wall_s * 1000.0).round() as u32).max(1)),
        memory_mb,
        output_kb: Some((output_kb.ceil() as u32).max(1)),
        stack_mb,
        cpu_ms: (cpu_s > 0.0).then(|| ((cpu_s * 1000.0).round() as u32).max(1)),
    };
    let mut task = SubmitRequest {
        language: Some(def.id.to_owned()),
        compiler,
        code,
        limits: Some(limits),
        compiler_options,
        merge_stderr: req.redirect_stderr_to_stdout.filter(|merge| *merge),
        files,
        webhook: req
            .callback_url
            .filter(|url| !url.trim().is_empty())
            .map(|url| WebhookRequest {
                url: url.trim().to_owned(),
                style: WebhookStyle::Judge0,
            }),
        ..SubmitRequest::default()
    };
    match expected {
        Some(expected_stdout) => {
            // Each run a test of its own, stopping at the first that fails (as Judge0
            // stops at the first run not Accepted).
            let test = TestRequest {
                stdin,
                expected_stdout: Some(expected_stdout),
                args,
            };
            task.tests = Some(vec![test; usize::from(runs)]);
            if runs > 1 {
                task.stop_on_failure = Some(Some(true));
            }
        }
        None => {
            task.stdin = stdin;
            task.args = args;
            task.runs = Some(runs);
        }
    }
    Ok(task)
}
