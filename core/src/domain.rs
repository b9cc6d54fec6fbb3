//! Domain types: users, tasks, their specs, limits, statuses and outcomes.
//!
//! These types are also the wire shapes of the queue messages and of `POST /commit`,
//! so that a worker needs nothing but this crate to speak to the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::bytes::Bytes;
use crate::time::{self, Timestamp};

pub type UserId = Uuid;
pub type TaskId = Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    #[serde(with = "time::rfc3339")]
    pub created_at: Timestamp,
}

/// A login session, keyed by the token's `jti`; revoking it logs the token out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub jti: String,
    pub user_id: UserId,
    #[serde(with = "time::rfc3339")]
    pub expires_at: Timestamp,
}

/// A task's kind and status and the verdicts are the API's words, written once in the wire
/// types' crate.
pub use codebox_api::{TaskKind, TaskStatus, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compiler {
    Gcc,
    Clang,
}

impl Compiler {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcc => "gcc",
            Self::Clang => "clang",
        }
    }
}

/// Resource limits of the run step. The compile step has fixed limits of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Limits {
    /// Wall-clock time of the run step, in milliseconds.
    pub time_ms: u32,
    /// Memory (and memory + swap) of the run step, in MiB.
    pub memory_mb: u32,
    /// Output kept per stream (stdout, stderr), in KiB.
    pub output_kb: u32,
    /// The program's stack (`RLIMIT_STACK`), in MiB: deep recursion is a program's right
    /// up to it (Judge0's default `stack_limit` is 64 000 KB).
    #[serde(default = "Limits::default_stack_mb")]
    pub stack_mb: u32,
    /// CPU time of the run step (every process of it together), in milliseconds: over it
    /// the run ends with `time_limit`, as when it passes `time_ms` of wall-clock time.
    /// Only the wall-clock limit applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u32>,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        time_ms: 5_000,
        memory_mb: 256,
        output_kb: 64,
        stack_mb: 64,
        cpu_ms: None,
    };
    pub const MAX: Limits = Limits {
        time_ms: 20_000,
        memory_mb: 1024,
        output_kb: 1024,
        stack_mb: 1024,
        cpu_ms: Some(20_000),
    };
    pub const MIN: Limits = Limits {
        time_ms: 1,
        memory_mb: 16,
        output_kb: 1,
        stack_mb: 1,
        cpu_ms: Some(1),
    };

    fn default_stack_mb() -> u32 {
        Self::DEFAULT.stack_mb
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What to run: the payload a worker needs, carried in the queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "one per task, held in its Task; a code spec's few hundred bytes beside its code and files are nothing to box"
)]
pub enum TaskSpec {
    Code(CodeSpec),
    Image(ImageSpec),
}

impl TaskSpec {
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Code(_) => TaskKind::Code,
            Self::Image(_) => TaskKind::Image,
        }
    }

    pub fn language(&self) -> Option<&str> {
        match self {
            Self::Code(c) => Some(&c.language),
            Self::Image(_) => None,
        }
    }

    /// Where the task's end is to be told, if anywhere.
    pub fn webhook(&self) -> Option<&Webhook> {
        match self {
            Self::Code(c) => c.webhook.as_deref(),
            Self::Image(i) => i.webhook.as_deref(),
        }
    }
}

/// Where a task's end is told, and in whose words: the API sends it once the outcome is
/// stored (see `functions/src/webhooks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub style: WebhookStyle,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStyle {
    /// codebox's own: `POST` of the `GET /task/{id}` body, signed.
    #[default]
    Task,
    /// Judge0's `callback_url`: `PUT` of the submission's default fields, base64.
    Judge0,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeSpec {
    pub language: String,
    /// `None` for interpreted languages.
    pub compiler: Option<Compiler>,
    pub code: String,
    pub stdin: Bytes,
    pub args: Vec<String>,
    pub limits: Limits,
    /// Test cases: the program is compiled once and run once per test, each run in a
    /// fresh sandbox with `limits`. Empty for a plain run (`stdin` and `args` then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestCase>,
    /// How a test's output is compared with its expected output.
    #[serde(default, skip_serializing_if = "Compare::is_default")]
    pub compare: Compare,
    /// Stop at the first test that does not pass (the rest are `skipped`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_on_failure: bool,
    /// Words given to the compiler before the source file (compiled languages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compiler_options: Vec<String>,
    /// The program's stderr goes to its stdout, in the order written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge_stderr: bool,
    /// Boxed: most tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Box<Webhook>>,
    /// Files placed beside the program before it is compiled and before each run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ProgramFile>,
    /// A plain run made this many times (1–[`MAX_RUNS`]), each in a fresh sandbox, until
    /// one does not end `ok`: CPU time and memory are the runs' means, the rest the last
    /// run's (Judge0's `number_of_runs`).
    #[serde(default = "one_run", skip_serializing_if = "is_one_run")]
    pub runs: u8,
}

impl Default for CodeSpec {
    fn default() -> Self {
        Self {
            language: String::new(),
            compiler: None,
            code: String::new(),
            stdin: Bytes::default(),
            args: Vec::new(),
            limits: Limits::default(),
            tests: Vec::new(),
            compare: Compare::default(),
            stop_on_failure: false,
            compiler_options: Vec::new(),
            merge_stderr: false,
            webhook: None,
            files: Vec::new(),
            runs: 1,
        }
    }
}

/// Runs of a task at most (`runs`).
pub const MAX_RUNS: u8 = 5;

fn one_run() -> u8 {
    1
}

fn is_one_run(runs: &u8) -> bool {
    *runs == 1
}

/// A file beside the program: a path relative to the program's directory (`lib/x.py`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramFile {
    pub path: String,
    pub content: Bytes,
}

impl CodeSpec {
    pub fn is_judged(&self) -> bool {
        !self.tests.is_empty()
    }
}

/// One test of a judged task: what the program reads, what it must print, its arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    pub stdin: Bytes,
    pub expected_stdout: Bytes,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// How output is compared: `exact` bytes, `lines` (default: trailing whitespace of each
/// line and trailing empty lines ignored), or `tokens` (whitespace-separated, numbers
/// within `abs_tol`/`rel_tol` when given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompareMode {
    Exact,
    #[default]
    Lines,
    Tokens,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    #[serde(default)]
    pub mode: CompareMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_tol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_tol: Option<f64>,
}

impl Compare {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Key of the input PNG in the blob store (messages carry keys, not bytes).
    pub input_key: String,
    pub filter: Filter,
    /// Boxed: most tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Box<Webhook>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "name", content = "parameters", rename_all = "lowercase")]
pub enum Filter {
    Sharpen { sigma: f32 },
    Blur { sigma: f32 },
    Negative,
    Flipx,
}

impl Filter {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sharpen { .. } => "sharpen",
            Self::Blur { .. } => "blur",
            Self::Negative => "negative",
            Self::Flipx => "flipx",
        }
    }
}

/// The outcome of a code task, as `GET /result` shows it (less `id` and `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeResult {
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    /// The terminating signal's name, e.g. `SIGSEGV`.
    pub signal: Option<String>,
    #[schema(value_type = crate::bytes::BytesSchema)]
    pub stdout: Bytes,
    #[schema(value_type = crate::bytes::BytesSchema)]
    pub stderr: Bytes,
    #[schema(value_type = Option<crate::bytes::BytesSchema>)]
    pub compile_output: Option<Bytes>,
    /// Wall time of the run step, from the program's start to its end.
    pub time_ms: Option<u64>,
    /// CPU time (user + system) of the run step's program and every process it started.
    #[serde(default)]
    pub cpu_time_ms: Option<u64>,
    /// Peak resident memory of the run step's largest process; `null` where the program
    /// never ran.
    pub memory_kb: Option<u64>,
    /// Whether stdout or stderr was cut at the output limit.
    pub truncated: bool,
    /// Judged tasks: how many tests passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<u32>,
    /// Judged tasks: how many tests there are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// Judged tasks: each test's outcome, in order (empty after a compile error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<TestResult>>,
}

impl CodeResult {
    /// An outcome with no program output: cancelled before running, or a platform failure.
    pub fn empty(verdict: Verdict) -> Self {
        Self {
            verdict,
            exit_code: None,
            signal: None,
            stdout: Bytes::default(),
            stderr: Bytes::default(),
            compile_output: None,
            time_ms: None,
            cpu_time_ms: None,
            memory_kb: None,
            truncated: false,
            passed: None,
            total: None,
            tests: None,
        }
    }
}

/// What a task shows before its result, on its live event stream
/// (`GET /task/{id}/events`): its status changes, its output as the sandbox produces it,
/// each test as it ends. Best effort: the result, read from the store, is what counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskEvent {
    Status {
        status: TaskStatus,
    },
    /// The output and tests after it come from this run of the task (its delivery's
    /// attempt, from 1): a run the platform retried starts its output again. The API puts
    /// it before each worker's batch; a worker never sends it.
    Attempt {
        attempt: u32,
    },
    Stdout {
        data: Bytes,
    },
    Stderr {
        data: Bytes,
    },
    Test {
        test: TestResult,
    },
}

impl TaskEvent {
    /// Roughly what the event costs to keep: its bytes of output.
    pub fn weight(&self) -> usize {
        const BASE: usize = 64;
        BASE + match self {
            Self::Stdout { data } | Self::Stderr { data } => data.len(),
            Self::Test { test } => test.stdout.len() + test.stderr.len(),
            Self::Status { .. } | Self::Attempt { .. } => 0,
        }
    }
}

/// The outcome of one test of a judged task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestResult {
    /// The test's place in `tests`, from 0.
    pub index: u32,
    /// `accepted`, `wrong_answer`, `runtime_error`, `time_limit`, `memory_limit`,
    /// `output_limit` or `skipped`.
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    #[schema(value_type = crate::bytes::BytesSchema)]
    pub stdout: Bytes,
    #[schema(value_type = crate::bytes::BytesSchema)]
    pub stderr: Bytes,
    pub time_ms: Option<u64>,
    pub cpu_time_ms: Option<u64>,
    pub memory_kb: Option<u64>,
    pub truncated: bool,
}

impl TestResult {
    /// A test that was not run.
    pub fn skipped(index: u32) -> Self {
        Self {
            index,
            verdict: Verdict::Skipped,
            exit_code: None,
            signal: None,
            stdout: Bytes::default(),
            stderr: Bytes::default(),
            time_ms: None,
            cpu_time_ms: None,
            memory_kb: None,
            truncated: false,
        }
    }
}

/// The outcome of an image task; the output PNG sits in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageResult {
    pub verdict: Verdict,
    /// Blob key of the output PNG when the verdict is `ok`.
    pub output_key: Option<String>,
    /// Why the platform could not produce an output (e.g. the PNG did not decode).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskResult {
    Code(CodeResult),
    Image(ImageResult),
}

impl TaskResult {
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Code(_) => TaskKind::Code,
            Self::Image(_) => TaskKind::Image,
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self {
            Self::Code(r) => r.verdict,
            Self::Image(r) => r.verdict,
        }
    }

    /// The outcome recorded for a task that ends without running (cancel, dead letter).
    pub fn without_output(kind: TaskKind, verdict: Verdict, error: Option<String>) -> Self {
        match kind {
            TaskKind::Code => {
                let mut r = CodeResult::empty(verdict);
                if let Some(e) = error {
                    r.stderr = e.into();
                }
                Self::Code(r)
            }
            TaskKind::Image => Self::Image(ImageResult {
                verdict,
                output_key: None,
                error,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub owner: UserId,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    #[serde(with = "time::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::rfc3339_opt")]
    pub started_at: Option<Timestamp>,
    #[serde(with = "time::rfc3339_opt")]
    pub finished_at: Option<Timestamp>,
    pub result: Option<TaskResult>,
}

impl Task {
    pub fn new(owner: UserId, spec: TaskSpec) -> Self {
        Self {
            id: Uuid::new_v4(),
            owner,
            spec,
            status: TaskStatus::Queued,
            created_at: time::now(),
            started_at: None,
            finished_at: None,
            result: None,
        }
    }

    pub fn kind(&self) -> TaskKind {
        self.spec.kind()
    }

    pub fn duration_ms(&self) -> Option<i64> {
        self.summary().duration_ms()
    }

    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            id: self.id,
            owner: self.owner,
            kind: self.kind(),
            status: self.status,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// A task without its spec and result: what status polling needs, and all a store
/// has to read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    pub id: TaskId,
    pub owner: UserId,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl TaskSummary {
    pub fn duration_ms(&self) -> Option<i64> {
        match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Some((f - s).num_milliseconds()),
            _ => None,
        }
    }
}

/// How long a started task stays with the worker that started it unless renewed: a
/// redelivery of its message (a broker restart, a consumer that lost its channel) is not
/// run again while the lease holds, so only a dead worker's task runs twice.
pub const RUN_LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// How often a worker renews the leases of the tasks it runs (a sixth of [`RUN_LEASE`]:
/// an API outage of several renewals does not lose one).
pub const RUN_LEASE_RENEWAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Who runs a task: one delivery of its message (each gets its own id, so a second
/// delivery to the same worker is told apart from a retried call of the first).
pub type LeaseId = Uuid;

/// A run's lease as a change writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub holder: LeaseId,
    pub until: Timestamp,
}

/// Which lease a change may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseCondition {
    /// Any: the change is about the status alone.
    Any,
    /// A `running` task only if its lease is `holder`'s, or none, or ended before `at`
    /// (a start: it takes over a dead worker's run, never a live one's).
    FreeAt { holder: LeaseId, at: Timestamp },
    /// Only `holder`'s lease (a renewal or a release by the run that holds it).
    HeldBy(LeaseId),
}

/// A change of status, applied only if the task's current status is one of `from` and
/// its lease meets `lease_condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Vec<TaskStatus>,
    pub to: TaskStatus,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub result: Option<TaskResult>,
    /// The run's lease, written when the change applies.
    pub lease: Option<Lease>,
    pub lease_condition: LeaseCondition,
    /// Applies only to a task of this kind: a result of one kind never lands on a task of
    /// the other, checked by the write itself.
    pub kind: Option<TaskKind>,
    /// `started_at` for a task that has none (one that ends without a start of its own);
    /// never replaces one.
    pub first_started_at: Option<Timestamp>,
}

impl Transition {
    /// Queued → running, or a running task whose lease lapsed (its worker died) or is
    /// already `holder`'s (a retried call) → running; either way with `holder`'s lease.
    pub fn start(holder: LeaseId, at: Timestamp) -> Self {
        Self {
            from: vec![TaskStatus::Queued, TaskStatus::Running],
            to: TaskStatus::Running,
            started_at: Some(at),
            finished_at: None,
            result: None,
            lease: Some(Lease {
                holder,
                until: at + RUN_LEASE,
            }),
            lease_condition: LeaseCondition::FreeAt { holder, at },
            kind: None,
            first_started_at: None,
        }
    }

    /// `holder`'s lease on a running task, extended.
    pub fn renew(holder: LeaseId, at: Timestamp) -> Self {
        Self {
            from: vec![TaskStatus::Running],
            to: TaskStatus::Running,
            started_at: None,
            finished_at: None,
            result: None,
            lease: Some(Lease {
                holder,
                until: at + RUN_LEASE,
            }),
            lease_condition: LeaseCondition::HeldBy(holder),
            kind: None,
            first_started_at: None,
        }
    }

    /// `holder`'s lease, given up (its message goes back to the queue): held by nobody
    /// (the nil id, which no run has) and ended before `at`, so the next start takes the
    /// task at once and a renewal of `holder`'s still in flight finds nothing to renew.
    pub fn release(holder: LeaseId, at: Timestamp) -> Self {
        Self {
            lease: Some(Lease {
                holder: LeaseId::nil(),
                until: at - chrono::Duration::seconds(1),
            }),
            ..Self::renew(holder, at)
        }
    }

    /// A queued or running task → `to` with `result`, at `at`: only a task of the
    /// result's kind, and one never started gets `at` as its start too.
    pub fn finish(to: TaskStatus, result: TaskResult, at: Timestamp) -> Self {
        Self {
            from: vec![TaskStatus::Queued, TaskStatus::Running],
            to,
            started_at: None,
            finished_at: Some(at),
            kind: Some(result.kind()),
            result: Some(result),
            lease: None,
            lease_condition: LeaseCondition::Any,
            first_started_at: Some(at),
        }
    }
}

/// What a worker that asks to start a task is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartDecision {
    /// Run it: this worker holds its lease now.
    Run,
    /// Do not: it is cancelled, finished or gone.
    Skip,
    /// Another worker runs it and renews its lease: keep the message and ask again.
    Leased,
    /// Not yet: its owner already runs as many tasks as a user may. Hand the message back
    /// to come again shortly, without counting a delivery, so other users' tasks behind
    /// it start first.
    Defer,
}

/// Whether a conditional status change was applied; either way, the task's summary as it
/// now is (a store reads no spec or result back for it: a commit is one write).
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    Applied(TaskSummary),
    Rejected(TaskSummary),
}

/// What travels through the queue: enough for a worker to run the task without a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub task_id: TaskId,
    pub spec: TaskSpec,
    #[serde(with = "time::rfc3339")]
    pub enqueued_at: Timestamp,
}

/// What a worker reports back through `POST /commit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    pub task_id: Uuid,
    pub status: TaskStatus,
    pub result: TaskResult,
    /// The task asked to be told of its end (a webhook, which its worker sees in the
    /// spec): the API reads the task whole once this outcome is stored, and tells.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
}
