//! A task as Judge0 shows a submission: its fields, statuses and languages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use codebox_core::bytes::Bytes;
use codebox_core::domain::{CodeSpec, Task, TaskResult, TaskSpec, TaskStatus, TestResult, Verdict};
use codebox_core::languages;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::state::AppState;

use super::*;

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

/// `GET /judge0/languages/all`: a language and whether it is archived.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0ArchivedLanguage)]
pub struct ArchivedLanguageView {
    pub id: u16,
    pub name: String,
    pub is_archived: bool,
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

/// How a program killed by a signal is told under `/judge0/` (`JUDGE0_SIGNALS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalReport {
    /// By its signal (`signal`, the default): Runtime Error (SIGSEGV) 7, (SIGXFSZ) 8,
    /// (SIGFPE) 9, (SIGABRT) 10, (Other) 12 for the rest, with `exit_signal`.
    #[default]
    Signal,
    /// As Judge0 CE 1.13.1 tells it (`nzec`): Judge0 runs each program under bash, which
    /// exits with 128 + the signal's number, so isolate sees a non-zero exit: Runtime
    /// Error (NZEC) 11, `exit_code` 139 for a SIGSEGV, `exit_signal` null.
    Nzec,
}

impl SignalReport {
    /// A run's `(exit_code, signal)` as this report tells them.
    fn told(self, verdict: Verdict, exit_code: Option<i32>, signal: Option<&str>) -> Told<'_> {
        match (self, verdict, signal.and_then(signal_number)) {
            (Self::Nzec, Verdict::RuntimeError, Some(n)) => (Some(128 + n), None),
            _ => (exit_code, signal),
        }
    }
}

type Told<'a> = (Option<i32>, Option<&'a str>);

/// Judge0's status of a task.
pub(super) fn status_of(task: &Task, report: SignalReport) -> (u8, Option<String>) {
    let Some(TaskResult::Code(r)) = &task.result else {
        return match task.status {
            TaskStatus::Queued => (1, None),
            TaskStatus::Running => (2, None),
            _ => (13, Some("the task has no code result".to_owned())),
        };
    };
    let (code, signal) = report.told(r.verdict, r.exit_code, r.signal.as_deref());
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

pub(super) fn signal_number(name: &str) -> Option<i32> {
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

pub(super) fn seconds(ms: Option<u64>) -> Option<String> {
    ms.map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000))
}

pub(super) fn language_name(
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
            .find(|v| v.id == c.as_str())
            .and_then(|v| v.version.clone()),
        (None, Some(l)) => l.version.clone(),
        _ => None,
    };
    let tool = match compiler {
        Some(c) => c.as_str().to_uppercase().replace("CLANG", "Clang"),
        None => String::new(),
    };
    // Judge0 names plain text (its "version" would be `cat`'s) and multi-file programs
    // without a version.
    let version = version.filter(|_| !matches!(def.id, "plaintext" | "multifile"));
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

/// A submission's text field holds bytes that are not UTF-8, and `base64_encoded` is
/// false: Judge0 refuses to show it rather than change it.
#[derive(Debug)]
pub struct NotUtf8;

impl NotUtf8 {
    pub const ONE: &'static str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
    pub const SOME: &'static str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";
}

/// The fields asked for of a submission, unless one of them is text that is not UTF-8
/// and `base64` is false.
pub(super) fn view(
    state: &AppState,
    task: &Task,
    base64: bool,
    fields: &[&str],
) -> Result<Map<String, Value>, NotUtf8> {
    let mut not_utf8 = Vec::new();
    let all = submission_with(state, task, base64, &mut not_utf8);
    if not_utf8.iter().any(|name| fields.contains(name)) {
        return Err(NotUtf8);
    }
    Ok(filtered(all, fields))
}

/// Every field of a submission, as JSON values; the names of the text fields that are
/// not UTF-8 (shown with replacement characters) go to `not_utf8`.
fn submission_with(
    state: &AppState,
    task: &Task,
    base64: bool,
    not_utf8: &mut Vec<&'static str>,
) -> Map<String, Value> {
    let not_utf8 = std::cell::RefCell::new(not_utf8);
    let encode = |name: &'static str, b: &[u8]| -> Value {
        if b.is_empty() {
            Value::Null
        } else if base64 {
            Value::String(STANDARD.encode(b))
        } else {
            if std::str::from_utf8(b).is_err() {
                not_utf8.borrow_mut().push(name);
            }
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
    // A judged submission's runs are its tests (one per run, all alike): its facts are
    // the last run's, its CPU time and memory the runs' means, as Judge0 reports them.
    let test = spec.tests.first();
    let ran: Vec<&TestResult> = result
        .and_then(|r| r.tests.as_ref())
        .map(|t| t.iter().filter(|t| t.verdict != Verdict::Skipped).collect())
        .unwrap_or_default();
    let run = ran.last().copied();
    let mean = |fact: fn(&TestResult) -> Option<u64>| {
        let facts: Vec<u64> = ran.iter().filter_map(|t| fact(t)).collect();
        (!facts.is_empty()).then(|| facts.iter().sum::<u64>() / facts.len() as u64)
    };
    let (stdout, stderr) = match (run, result) {
        (Some(t), _) => (t.stdout.as_bytes(), t.stderr.as_bytes()),
        (None, Some(r)) => (r.stdout.as_bytes(), r.stderr.as_bytes()),
        (None, None) => (&[][..], &[][..]),
    };
    let (exit_code, signal, cpu, wall, memory) = match (run, result) {
        (Some(t), _) => (
            t.exit_code,
            t.signal.clone(),
            mean(|t| t.cpu_time_ms),
            t.time_ms,
            mean(|t| t.memory_kb),
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
    let (status_id, message) = status_of(task, state.judge0_signals);
    let (exit_code, signal) = match result {
        Some(r) => state
            .judge0_signals
            .told(r.verdict, exit_code, signal.as_deref()),
        None => (exit_code, signal.as_deref()),
    };
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
        // A multi-file program has none: its `run` script came in its zip.
        (
            "source_code",
            if languages::find(&spec.language)
                .is_some_and(|d| matches!(d.build, languages::Build::Scripts))
            {
                Value::Null
            } else {
                encode("source_code", spec.code.as_bytes())
            },
        ),
        ("stdin", encode("stdin", stdin.as_bytes())),
        (
            "expected_output",
            test.map_or(Value::Null, |t| {
                encode("expected_output", t.expected_stdout.as_bytes())
            }),
        ),
        ("stdout", encode("stdout", stdout)),
        ("stderr", encode("stderr", stderr)),
        (
            "compile_output",
            encode(
                "compile_output",
                result
                    .and_then(|r| r.compile_output.as_ref())
                    .map_or(&[][..], Bytes::as_bytes),
            ),
        ),
        (
            "message",
            message.map_or(Value::Null, |m| encode("message", m.as_bytes())),
        ),
        ("exit_code", json!(exit_code)),
        ("exit_signal", json!(signal.and_then(signal_number))),
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
        (
            "number_of_runs",
            json!(if spec.is_judged() {
                spec.tests.len()
            } else {
                usize::from(spec.runs)
            }),
        ),
        (
            "cpu_time_limit",
            json!(seconds(Some(u64::from(limits.cpu_ms.unwrap_or(0))))),
        ),
        ("cpu_extra_time", json!("1.0")),
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
        (
            "compiler_options",
            if spec.compiler_options.is_empty() {
                Value::Null
            } else {
                json!(shell_words::join(&spec.compiler_options))
            },
        ),
        (
            "command_line_arguments",
            if args.is_empty() {
                Value::Null
            } else {
                json!(shell_words::join(args))
            },
        ),
        ("redirect_stderr_to_stdout", json!(spec.merge_stderr)),
        ("callback_url", Value::Null),
        ("additional_files", Value::Null),
        ("enable_network", json!(false)),
    ];
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Whitespace as Ruby's `strip` and `to_i` skip it (and [`SPACE`] says it in a pattern).
pub(super) const RUBY_SPACE: &[char] = &[' ', '\t', '\n', '\r', '\x0b', '\x0c'];
/// [`RUBY_SPACE`] in a pattern of the document.
pub(super) const SPACE: &str = r"[ \t\n\r\x0b\x0c]";

/// `fields` as the document states it: `*`, or field names separated by commas (blank
/// for the default set), whitespace around each.
pub(super) fn fields_schema() -> utoipa::openapi::Object {
    let name = format!("({})", ALL_FIELDS.join("|"));
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(
            r"^{SPACE}*(\*|{name}?({SPACE}*,{SPACE}*{name}?)*){SPACE}*$"
        )))
        .build()
}

/// The fields asked for: `None` = the default set, `*` = all.
pub(super) fn pick_fields(fields: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    match fields.map(|f| f.trim_matches(RUBY_SPACE)) {
        None | Some("") => Ok(DEFAULT_FIELDS.to_vec()),
        Some("*") => Ok(ALL_FIELDS.to_vec()),
        Some(list) => {
            let mut picked = Vec::new();
            let mut unknown = Vec::new();
            for name in list
                .split(',')
                .map(|n| n.trim_matches(RUBY_SPACE))
                .filter(|n| !n.is_empty())
            {
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

pub(super) fn filtered(all: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    all.into_iter()
        .filter(|(k, _)| fields.contains(&k.as_str()))
        .collect()
}
