//! Request and response bodies of the API, as the OpenAPI document shows them. What a
//! client reads is `codebox_api`'s (re-exported here), made from the domain by the
//! functions below; the workers' bodies and the documented shape of `POST /task` are the
//! server's own.

use base64::Engine;
use codebox_core::domain::{CodeResult, Task, TaskResult, TaskStatus, TaskSummary, TestResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use codebox_api::{
    CodeOutputView, CodeResultView, Credentials, Health, ImageOutputView, ImageResultView,
    OutputEncoding, ResultView, ServiceInfo, TaskAccepted, TaskList, TaskStatusView, TaskView,
    TestView, TokenResponse, UserCreated, WebhookKey,
};

/// The answer to a submitted task.
pub fn accepted(t: &Task) -> TaskAccepted {
    TaskAccepted {
        id: t.id,
        status: t.status,
        created_at: t.created_at,
    }
}

/// A task's status as `GET /status/{id}` and the listings show it.
pub fn status_of(t: &TaskSummary) -> TaskStatusView {
    TaskStatusView {
        id: t.id,
        kind: t.kind,
        status: t.status,
        created_at: t.created_at,
        started_at: t.started_at,
        finished_at: t.finished_at,
        duration_ms: t.duration_ms(),
    }
}

/// Output bytes as a result writes them.
fn write(b: &codebox_core::bytes::Bytes, encoding: OutputEncoding) -> String {
    match encoding {
        OutputEncoding::Utf8 => b.to_text_lossy().into_owned(),
        OutputEncoding::Base64 => b.to_base64(),
    }
}

/// One test's outcome as the API shows it.
pub fn test_view(t: &TestResult, encoding: OutputEncoding) -> TestView {
    TestView {
        index: t.index,
        verdict: t.verdict,
        exit_code: t.exit_code,
        signal: t.signal.clone(),
        stdout: write(&t.stdout, encoding),
        stderr: write(&t.stderr, encoding),
        time_ms: t.time_ms,
        cpu_time_ms: t.cpu_time_ms,
        memory_kb: t.memory_kb,
        truncated: t.truncated,
    }
}

/// A code task's outcome as the API shows it.
pub fn code_output(r: &CodeResult, encoding: OutputEncoding) -> CodeOutputView {
    CodeOutputView {
        passed: r.passed,
        total: r.total,
        tests: r
            .tests
            .as_ref()
            .map(|tests| tests.iter().map(|t| test_view(t, encoding)).collect()),
        verdict: r.verdict,
        exit_code: r.exit_code,
        signal: r.signal.clone(),
        stdout: write(&r.stdout, encoding),
        stderr: write(&r.stderr, encoding),
        compile_output: r.compile_output.as_ref().map(|b| write(b, encoding)),
        time_ms: r.time_ms,
        cpu_time_ms: r.cpu_time_ms,
        memory_kb: r.memory_kb,
        truncated: r.truncated,
        encoding,
    }
}

/// The result part of `GET /task/{id}`.
pub fn result_view(
    result: &TaskResult,
    image: Option<&[u8]>,
    encoding: OutputEncoding,
) -> ResultView {
    match result {
        TaskResult::Code(r) => ResultView::Code(code_output(r, encoding)),
        TaskResult::Image(r) => ResultView::Image(ImageOutputView {
            verdict: r.verdict,
            image_base64: image.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            error: r.error.clone(),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultParams {
    /// `utf-8` (default): output as text, with U+FFFD for bytes that are not UTF-8;
    /// `base64`: the exact bytes the program wrote.
    #[param(value_type = Option<OutputEncoding>)]
    pub encoding: Option<OutputEncoding>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// 1–100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// From the previous page's `next_cursor`.
    #[param(
        pattern = r"^[0-9]{1,15}\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommitAccepted {
    pub task_id: Uuid,
    /// The task's status after the commit (the first outcome stands).
    pub status: TaskStatus,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StartRequest {
    pub task_id: Uuid,
    /// The run asking: one id per delivery of the task's message, the same when the call
    /// is retried. Absent: a run of its own.
    #[serde(default)]
    pub lease: Option<Uuid>,
    /// How often the task's message was deferred before this delivery.
    #[serde(default)]
    pub deferrals: u32,
}

/// A running task's live events from its worker, for the task's event streams.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressRequest {
    pub task_id: Uuid,
    /// The run these events come from: its delivery's attempt, from 1.
    #[serde(default = "first_attempt")]
    #[schema(minimum = 1, default = 1)]
    pub attempt: u32,
    /// 1–1024 events, each `{"event": "stdout" | "stderr", "data": <bytes>}` or
    /// `{"event": "test", "test": <test result>}`.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 1024)]
    pub events: Vec<codebox_core::domain::TaskEvent>,
}

fn first_attempt() -> u32 {
    1
}

/// Events one `POST /commit/events` carries at most.
pub const MAX_PROGRESS_EVENTS: usize = 1024;

/// The running tasks of one worker, asked about together (its cancel watch).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelledRequest {
    /// 1–256 task ids.
    #[schema(min_items = 1, max_items = 256)]
    pub task_ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelledResponse {
    /// Those of the ids whose task was cancelled (or is gone): stop them.
    pub cancelled: Vec<Uuid>,
}

/// A worker's leases on its running tasks: renewed, or given up (`release`) when their
/// messages go back to the queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// 1–256 leases.
    #[schema(min_items = 1, max_items = 256)]
    pub leases: Vec<LeaseRef>,
    #[serde(default)]
    pub release: bool,
}

/// One run's lease on a task: the `lease` its `POST /commit/start` named.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRef {
    pub task_id: Uuid,
    pub lease: Uuid,
}

/// The most task ids one `POST /commit/cancelled` asks about.
pub const MAX_WATCHED: usize = 256;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StartResponse {
    /// Whether the worker should run the task (false: cancelled or finished meanwhile,
    /// or running on another worker).
    pub run: bool,
    /// Another worker runs the task and holds its lease: keep the message and ask again.
    #[serde(default)]
    pub leased: bool,
    /// Not yet (its owner runs as many tasks as a user may): hand the message back to
    /// come again shortly, without counting a delivery.
    #[serde(default)]
    pub deferred: bool,
}

/// The body of `POST /task` as the document describes it: a program (C and C++ alone may
/// name a compiler), run once or judged on test cases, or an image
/// task, told apart by `language` and `kind` (the handler reads them through one flat
/// shape and checks the rest, a real PNG included).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
#[schema(as = TaskRequest)]
pub enum TaskRequestSchema {
    Code(CodeTaskRequest),
    CodeWithCompiler(CodeTaskWithCompilerRequest),
    Judged(JudgedTaskRequest),
    JudgedWithCompiler(JudgedTaskWithCompilerRequest),
    Image(ImageTaskRequest),
    UploadedImage(UploadedImageTaskRequest),
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    Code,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Image,
}

/// Languages with one way to build and run them (no `compiler` field): interpreted ones,
/// and compiled ones with a single compiler (`GET /languages` lists them without
/// compilers).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum FixedToolchainLanguage {
    Python,
    Javascript,
    Typescript,
    Go,
    Rust,
    Java,
    Kotlin,
    Csharp,
    Ruby,
    Php,
    Lua,
    Haskell,
    Bash,
    Perl,
    Plaintext,
    Assembly,
    Commonlisp,
    D,
    Elixir,
    Erlang,
    Fortran,
    Ocaml,
    Octave,
    Pascal,
    Prolog,
    Cobol,
    Objectivec,
    R,
    Scala,
    Sql,
    Clojure,
    Groovy,
    /// A multi-file program: `code` is its `run` script (bash); a `compile` script among
    /// `files` runs first, and the run gets everything it left.
    Multifile,
}

/// C and C++, compiled with the `compiler` chosen (`GET /languages` lists each with its
/// version).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum CompilerChoiceLanguage {
    C,
    Cpp,
}

/// One argument of the program: at most 4 KiB, no NUL.
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct Arg(String);

impl utoipa::PartialSchema for Arg {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .max_length(Some(codebox_core::tasks::MAX_ARG_BYTES))
            .pattern(Some("^[^\\x00]*$"))
            .into()
    }
}

impl ToSchema for Arg {}

/// A program in a language with one toolchain (`kind` may be left out).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CodeTaskRequest {
    kind: Option<CodeKind>,
    #[schema(example = "python")]
    language: FixedToolchainLanguage,
    /// At most 128 KiB, no NUL.
    #[schema(
        example = "print(input())",
        max_length = 131072,
        pattern = "^[^\\x00]*$"
    )]
    code: String,
    /// At most 1 MiB; any character, NUL included.
    #[schema(example = "hi", max_length = 1048576)]
    stdin: Option<String>,
    /// At most 64 arguments of at most 4 KiB, no NUL.
    #[schema(max_items = 64)]
    args: Option<Vec<Arg>>,
    limits: Option<codebox_core::tasks::LimitsRequest>,
}

/// A C or C++ program, with the compiler to build it (`kind` may be left out).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CodeTaskWithCompilerRequest {
    kind: Option<CodeKind>,
    #[schema(example = "c")]
    language: CompilerChoiceLanguage,
    /// At most 128 KiB, no NUL.
    #[schema(
        example = "int main(void){return 0;}",
        max_length = 131072,
        pattern = "^[^\\x00]*$"
    )]
    code: String,
    /// At most 1 MiB; any character, NUL included.
    #[schema(example = "hi", max_length = 1048576)]
    stdin: Option<String>,
    /// At most 64 arguments of at most 4 KiB, no NUL.
    #[schema(max_items = 64)]
    args: Option<Vec<Arg>>,
    /// `gcc` (default) or `clang`.
    compiler: Option<codebox_core::domain::Compiler>,
    limits: Option<codebox_core::tasks::LimitsRequest>,
}

/// A program in a language with one toolchain, built once and judged on test cases.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct JudgedTaskRequest {
    kind: Option<CodeKind>,
    #[schema(example = "python")]
    language: FixedToolchainLanguage,
    /// At most 128 KiB, no NUL.
    #[schema(
        example = "a, b = map(int, input().split())\nprint(a + b)",
        max_length = 131072,
        pattern = "^[^\\x00]*$"
    )]
    code: String,
    /// 1–64 tests, each run in its own sandbox with `limits`.
    #[schema(min_items = 1, max_items = 64)]
    tests: Vec<TestCaseRequest>,
    compare: Option<CompareSchema>,
    /// Stop at the first test that fails; the rest are `skipped`.
    stop_on_failure: Option<bool>,
    limits: Option<codebox_core::tasks::LimitsRequest>,
}

/// A C or C++ program, compiled once and judged on test cases.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct JudgedTaskWithCompilerRequest {
    kind: Option<CodeKind>,
    #[schema(example = "c")]
    language: CompilerChoiceLanguage,
    /// At most 128 KiB, no NUL.
    #[schema(
        example = "#include <stdio.h>\nint main(void){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);}",
        max_length = 131072,
        pattern = "^[^\\x00]*$"
    )]
    code: String,
    /// `gcc` (default) or `clang`.
    compiler: Option<codebox_core::domain::Compiler>,
    /// 1–64 tests, each run in its own sandbox with `limits`.
    #[schema(min_items = 1, max_items = 64)]
    tests: Vec<TestCaseRequest>,
    compare: Option<CompareSchema>,
    /// Stop at the first test that fails; the rest are `skipped`.
    stop_on_failure: Option<bool>,
    limits: Option<codebox_core::tasks::LimitsRequest>,
}

/// One test: the program's stdin and arguments, and the stdout it must print.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct TestCaseRequest {
    /// At most 1 MiB; any character, NUL included.
    #[schema(example = "1 2\n", max_length = 1048576)]
    stdin: Option<String>,
    /// At most 1 MiB; `""` when left out.
    #[schema(example = "3\n", max_length = 1048576)]
    expected_stdout: Option<String>,
    /// At most 64 arguments of at most 4 KiB, no NUL.
    #[schema(max_items = 64)]
    args: Option<Vec<Arg>>,
}

/// How a test's stdout is compared with `expected_stdout`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
#[schema(as = Compare)]
pub enum CompareSchema {
    Text(CompareText),
    Tokens(CompareTokens),
}

/// `lines` (the default): trailing whitespace on each line and trailing empty lines are
/// ignored. `exact`: every byte.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CompareText {
    mode: Option<TextMode>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum TextMode {
    Lines,
    Exact,
}

/// Whitespace-separated tokens; with a tolerance, two tokens that are both numbers are
/// equal within it (absolute, or relative to the expected number).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CompareTokens {
    mode: TokensMode,
    #[schema(minimum = 0.0, example = 1e-6)]
    abs_tol: Option<f64>,
    #[schema(minimum = 0.0, example = 1e-9)]
    rel_tol: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum TokensMode {
    Tokens,
}

/// An image filter on a PNG sent in the request.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct ImageTaskRequest {
    kind: ImageKind,
    /// The PNG, base64-encoded: at most 10 MiB and 40 megapixels (on AWS at most
    /// 3 000 000 bytes: larger ones go through `POST /task/upload`).
    #[schema(format = Byte, content_media_type = "image/png")]
    image_base64: String,
    filter: ImageFilter,
}

/// An image filter on a PNG uploaded first (`POST /task/upload`): any size up to 10 MiB
/// on every deployment.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct UploadedImageTaskRequest {
    kind: ImageKind,
    /// The `image_key` `POST /task/upload` gave, once the PNG is uploaded; an upload is
    /// kept for a day and serves any number of its owner's tasks.
    #[schema(pattern = "^uploads/[0-9a-f-]{36}/[0-9a-f-]{36}\\.png$")]
    image_key: String,
    filter: ImageFilter,
}

/// A filter and its parameters: `sigma` only for the filters that blur.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum ImageFilter {
    Gaussian(GaussianFilter),
    Plain(PlainFilter),
}

/// `blur` or `sharpen`, by a gaussian of `sigma`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct GaussianFilter {
    #[schema(example = "blur")]
    name: GaussianFilterName,
    parameters: Option<GaussianParameters>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum GaussianFilterName {
    Blur,
    Sharpen,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct GaussianParameters {
    /// 0.1–50, default 1.0 (also when null).
    #[schema(minimum = 0.1, maximum = 50.0)]
    sigma: Option<f64>,
}

/// `negative` or `flipx`: no parameters (an empty object or null at most).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct PlainFilter {
    #[schema(example = "negative")]
    name: PlainFilterName,
    parameters: Option<NoParameters>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum PlainFilterName {
    Negative,
    Flipx,
}

/// No parameters at all.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

/// The body of `POST /commit`: the outcome inline, or — when it was too big for one
/// request (a Lambda invocation carries 6 MB) — the key of a blob holding it as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    pub task_id: Uuid,
    pub status: TaskStatus,
    /// The outcome (exactly one of `result` and `result_key`).
    pub result: Option<codebox_core::domain::TaskResult>,
    /// A blob under `results/<task_id>/` holding the outcome as JSON; removed once stored.
    #[schema(pattern = r"^results/[0-9a-f-]{36}/[0-9a-f]{32}\.json$")]
    pub result_key: Option<String>,
    /// The task has a webhook (its worker sees it in the spec): the API tells it.
    #[serde(default)]
    pub notify: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The document's language enums are the language table's, split by whether a
    /// language is compiled: adding a language without them fails here.
    #[test]
    fn the_schema_knows_every_language_and_which_are_compiled() {
        for l in codebox_core::languages::LANGUAGES {
            let id = serde_json::json!(l.id);
            let fixed = serde_json::from_value::<FixedToolchainLanguage>(id.clone()).is_ok();
            let compiled = serde_json::from_value::<CompilerChoiceLanguage>(id).is_ok();
            assert_eq!(
                (fixed, compiled),
                (l.compilers().is_empty(), !l.compilers().is_empty()),
                "{}",
                l.id
            );
        }
        let doc = crate::openapi::ApiDoc::openapi_json();
        let count = |name: &str| {
            doc["components"]["schemas"][name]["enum"]
                .as_array()
                .map_or(0, Vec::len)
        };
        assert_eq!(
            count("FixedToolchainLanguage") + count("CompilerChoiceLanguage"),
            codebox_core::languages::LANGUAGES.len()
        );
    }

    /// The document's comparison modes are the domain's, each in one family.
    #[test]
    fn the_schema_knows_every_compare_mode() {
        for mode in ["exact", "lines", "tokens", "words"] {
            let id = serde_json::json!(mode);
            let domain =
                serde_json::from_value::<codebox_core::domain::CompareMode>(id.clone()).is_ok();
            let text = serde_json::from_value::<TextMode>(id.clone()).is_ok();
            let tokens = serde_json::from_value::<TokensMode>(id).is_ok();
            assert_eq!(domain, text || tokens, "{mode}");
            assert!(!(text && tokens), "{mode}");
        }
    }

    /// The document's filter families cover every filter the API takes, each once, and
    /// only the gaussian ones have parameters.
    #[test]
    fn the_schema_knows_every_filter_and_which_take_sigma() {
        for name in ["blur", "sharpen", "negative", "flipx"] {
            let id = serde_json::json!(name);
            let gaussian = serde_json::from_value::<GaussianFilterName>(id.clone()).is_ok();
            let plain = serde_json::from_value::<PlainFilterName>(id).is_ok();
            assert!(gaussian != plain, "{name}");
            let takes_sigma = serde_json::from_value::<codebox_core::domain::Filter>(
                serde_json::json!({"name": name, "parameters": {"sigma": 1.0}}),
            )
            .is_ok_and(|f| {
                matches!(
                    f,
                    codebox_core::domain::Filter::Blur { .. }
                        | codebox_core::domain::Filter::Sharpen { .. }
                )
            });
            assert_eq!(gaussian, takes_sigma, "{name}");
        }
        let doc = crate::openapi::ApiDoc::openapi_json();
        let count = |name: &str| {
            doc["components"]["schemas"][name]["enum"]
                .as_array()
                .map_or(0, Vec::len)
        };
        assert_eq!(count("GaussianFilterName") + count("PlainFilterName"), 4);
    }
}
