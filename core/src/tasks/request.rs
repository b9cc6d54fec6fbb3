//! What a client sends to submit a task, as it arrives (before validation): the
//! request types, their bounds and the serde rules that keep `null` and wrong shapes out.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{CompareMode, Compiler, TaskKind};

pub const MAX_CODE_BYTES: usize = 128 * 1024;
pub const MAX_STDIN_BYTES: usize = 1024 * 1024;
pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_BYTES: usize = 4096;
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
pub const MAX_LIST_LIMIT: usize = 100;
pub const MAX_TESTS: usize = 64;
pub const MAX_EXPECTED_BYTES: usize = 1024 * 1024;
pub const MAX_COMPILER_OPTIONS: usize = 512;
pub const SIGMA_RANGE: std::ops::RangeInclusive<f32> = 0.1..=50.0;
/// [`SIGMA_RANGE`] as a request writes it (`0.1_f32` widened is above `0.1`).
pub(super) const SIGMA_REQUEST_RANGE: std::ops::RangeInclusive<f64> = 0.1..=50.0;

/// The body of `POST /task`: one flat shape for both kinds, checked by [`TaskService::submit`].
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// `code` (default) or `image`.
    pub kind: Option<TaskKind>,
    /// Code tasks: an id from `GET /languages`.
    #[schema(example = "python")]
    pub language: Option<String>,
    #[schema(example = "print(input())")]
    pub code: Option<String>,
    #[schema(example = "hi")]
    pub stdin: Option<String>,
    pub args: Option<Vec<String>>,
    /// For `c` and `cpp`: `gcc` (default) or `clang`.
    pub compiler: Option<Compiler>,
    #[serde(default, deserialize_with = "object")]
    pub limits: Option<LimitsRequest>,
    /// Image tasks: the PNG, base64-encoded.
    pub image_base64: Option<String>,
    /// Image tasks, instead of `image_base64`: the key of a PNG uploaded through
    /// `POST /task/upload`.
    pub image_key: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub filter: Option<FilterRequest>,
    /// Code tasks: 1–64 test cases (then no top-level `stdin` or `args`). Never null.
    #[serde(default, deserialize_with = "not_null")]
    pub tests: Option<Vec<TestRequest>>,
    /// With `tests` only (null there = the default, `lines`): how output is compared.
    /// `Some(None)` for an explicit null.
    #[serde(default, deserialize_with = "present_object")]
    pub compare: Option<Option<CompareRequest>>,
    /// With `tests` only (null there = false): stop at the first test that fails.
    #[serde(default, deserialize_with = "present")]
    pub stop_on_failure: Option<Option<bool>>,
    /// Compiled languages: options for the compiler, split as a shell splits words (no
    /// shell runs them), at most 512 characters; placed before the source file.
    #[schema(example = "-DDEBUG -O0")]
    pub compiler_options: Option<String>,
    /// The program's stderr goes to its stdout, in the order written.
    pub merge_stderr: Option<bool>,
    /// Code tasks: up to 64 files placed beside the program (4 MiB together), for its
    /// compile and for every run. Never null.
    #[serde(default, deserialize_with = "not_null")]
    pub files: Option<Vec<FileRequest>>,
    /// Plain runs made of the program (Judge0's `number_of_runs`; set by its layer).
    #[serde(skip)]
    #[schema(ignore)]
    pub runs: Option<u8>,
    /// Told when the task ends: the API POSTs the `GET /task/{id}` body to `url`.
    #[serde(default, deserialize_with = "object")]
    pub webhook: Option<WebhookRequest>,
}

/// `webhook` of `POST /task`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// `http://` or `https://`, at most 2 048 characters; not an address of the
    /// deployment's own networks (loopback, private, link-local) unless its host is listed
    /// in `CALLBACK_ALLOWED_HOSTS`.
    #[schema(example = "https://example.com/codebox-ended")]
    pub url: String,
    /// Whose words the call is in: codebox's, or Judge0's for its `callback_url` (set by
    /// the Judge0 layer, never by a body).
    #[serde(skip)]
    #[schema(ignore)]
    pub style: crate::domain::WebhookStyle,
}

pub const MAX_WEBHOOK_URL: usize = 2048;
/// Files of a task beside its program, at most.
pub const MAX_FILES: usize = 64;
/// Their bytes together, at most.
pub const MAX_FILES_BYTES: usize = 4 * 1024 * 1024;
/// A file's path, at most (bytes).
pub const MAX_FILE_PATH: usize = 255;

/// One of `files` of `POST /task`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRequest {
    /// Relative to the program's directory, `/`-separated (`lib/helper.py`): no `..`, no
    /// leading `/`, not the program's own file; at most 255 bytes.
    #[schema(example = "helper.py")]
    pub path: String,
    #[schema(example = "def greet():\n    return 'hi'\n")]
    pub content: String,
    /// `utf8` (default): `content` is the file's text; `base64`: its bytes, encoded.
    pub encoding: Option<FileEncoding>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileEncoding {
    #[default]
    Utf8,
    Base64,
}

/// A field that may be left out but, when given, is not null.
fn not_null<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// [`present`] for a nested object (see [`object`]).
fn present_object<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    object(d).map(Some)
}

/// One test case of `POST /task`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// At most 1 MiB.
    pub stdin: Option<String>,
    /// At most 1 MiB.
    pub expected_stdout: Option<String>,
    pub args: Option<Vec<String>>,
}

/// How a test's output is compared with its expected output.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub mode: Option<CompareMode>,
    /// `tokens` only: numbers within this absolute difference are equal (≥ 0).
    pub abs_tol: Option<f64>,
    /// `tokens` only: numbers within this difference relative to the expected one are
    /// equal (≥ 0).
    pub rel_tol: Option<f64>,
}

/// A nested JSON object, and only an object: serde would also take an array of the
/// fields' values in order (`"limits": [1000, 64]`), which the document does not allow.
fn object<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(other) => Err(D::Error::custom(format!("expected an object, not {other}"))),
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// 1–20000, default 5000.
    #[schema(minimum = 1, maximum = 20000)]
    #[serde(default, deserialize_with = "whole_number")]
    pub time_ms: Option<u32>,
    /// 16–1024, default 256.
    #[schema(minimum = 16, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub memory_mb: Option<u32>,
    /// Per stream, 1–1024, default 64.
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub output_kb: Option<u32>,
    /// The program's stack, 1–1024, default 64.
    #[schema(minimum = 1, maximum = 1024)]
    #[serde(default, deserialize_with = "whole_number")]
    pub stack_mb: Option<u32>,
    /// CPU time of the run (all its processes), 1–20000; only `time_ms` applies when
    /// absent.
    #[schema(minimum = 1, maximum = 20000)]
    #[serde(default, deserialize_with = "whole_number")]
    pub cpu_ms: Option<u32>,
}

/// A whole number as JSON may write it: `3000` or `3000.0` (JSON Schema's `integer`
/// takes both, and so do clients that only have floating point numbers).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return u32::try_from(u)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is out of range")));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            Ok(Some(f as u32))
        }
        _ => Err(D::Error::custom(format!("{n} is not a whole number"))),
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// `sharpen`, `blur`, `negative` or `flipx`.
    #[schema(example = "blur", value_type = FilterName)]
    pub name: String,
    #[serde(default, deserialize_with = "object")]
    pub parameters: Option<FilterParameters>,
}

/// The filters, by name (for the document; requests carry the name as a string).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterName {
    Sharpen,
    Blur,
    Negative,
    Flipx,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterParameters {
    /// For `blur` and `sharpen`: 0.1–50, default 1.0 (also when null). `negative` and
    /// `flipx` take no parameters: `sigma` given to them at all, null included, is refused.
    /// Compared as written (a double), so 50.0000001 is out of range even though it
    /// rounds to 50 as a float.
    #[schema(minimum = 0.1, maximum = 50.0, value_type = Option<f64>)]
    #[serde(default, deserialize_with = "present")]
    pub sigma: Option<Option<f64>>,
}

/// A field that is there, null or not (`Some(None)` for an explicit null), told apart
/// from one left out (`None`, through `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
