//! A request checked into a task spec, and a spec checked again where it arrives (the
//! worker trusts no message): every bound of the API in one place.

use base64::Engine;
use uuid::Uuid;

use super::request::*;
use crate::domain::{
    CodeSpec, Compare, CompareMode, Filter, ImageSpec, Limits, MAX_RUNS, ProgramFile, TaskKind,
    TaskSpec, TestCase, Webhook,
};
use crate::error::{Error, Result};
use crate::languages;
use crate::png;

/// Where an image task's PNG comes from.
pub(super) enum ImageInput {
    Inline(Vec<u8>),
    Uploaded(String),
}

pub(super) fn validate_idempotency_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )))
    }
}

/// Turns a request into a spec, and for images also returns where the PNG comes from
/// (inline ones decoded and checked).
pub(super) fn validate(
    req: SubmitRequest,
    inline_max: usize,
) -> Result<(TaskSpec, Option<ImageInput>)> {
    match req.kind.unwrap_or(TaskKind::Code) {
        TaskKind::Code => {
            if req.image_base64.is_some() || req.image_key.is_some() || req.filter.is_some() {
                return Err(Error::Invalid(
                    "image_base64, image_key and filter belong to image tasks".into(),
                ));
            }
            Ok((TaskSpec::Code(validate_code(req)?), None))
        }
        TaskKind::Image => {
            if req.language.is_some()
                || req.code.is_some()
                || req.stdin.is_some()
                || req.args.is_some()
                || req.compiler.is_some()
                || req.limits.is_some()
                || req.tests.is_some()
                || req.compare.is_some()
                || req.stop_on_failure.is_some()
                || req.compiler_options.is_some()
                || req.merge_stderr.is_some()
                || req.files.is_some()
            {
                return Err(Error::Invalid(
                    "language, code, stdin, args, compiler, compiler_options, merge_stderr, files, limits, tests, compare and stop_on_failure belong to code tasks".into(),
                ));
            }
            let (spec, input) = validate_image(req, inline_max)?;
            Ok((TaskSpec::Image(spec), Some(input)))
        }
    }
}

pub(super) fn validate_code(req: SubmitRequest) -> Result<CodeSpec> {
    let language = req.language.ok_or_else(|| {
        Error::Invalid(format!("language is required: one of {}", languages::ids()))
    })?;
    let def = languages::find(&language).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown language {language:?}: one of {}",
            languages::ids()
        ))
    })?;
    let compilers = def.compilers();
    let compiler = match (req.compiler, compilers.first()) {
        (None, default) => default.copied(),
        (Some(c), Some(_)) if compilers.contains(&c) => Some(c),
        (Some(c), Some(_)) => {
            return Err(Error::Invalid(format!(
                "compiler {} is not available for {language}",
                c.as_str()
            )));
        }
        (Some(_), None) => {
            return Err(Error::Invalid(format!(
                "{language} has no choice of compiler; leave compiler out"
            )));
        }
    };
    let code = req
        .code
        .ok_or_else(|| Error::Invalid("code is required".into()))?;
    let (tests, compare, stop_on_failure) = match req.tests {
        Some(tests) => {
            if req.stdin.is_some() || req.args.is_some() {
                return Err(Error::Invalid(
                    "with tests, stdin and args belong to each test".into(),
                ));
            }
            if tests.is_empty() {
                return Err(Error::Invalid(format!(
                    "tests must have 1 to {MAX_TESTS} items"
                )));
            }
            let tests = tests
                .into_iter()
                .map(|t| TestCase {
                    stdin: crate::bytes::Bytes::from(t.stdin.unwrap_or_default()),
                    expected_stdout: crate::bytes::Bytes::from(
                        t.expected_stdout.unwrap_or_default(),
                    ),
                    args: t.args.unwrap_or_default(),
                })
                .collect();
            let c = req.compare.flatten().unwrap_or_default();
            let compare = Compare {
                mode: c.mode.unwrap_or_default(),
                abs_tol: c.abs_tol,
                rel_tol: c.rel_tol,
            };
            (
                tests,
                compare,
                req.stop_on_failure.flatten().unwrap_or(false),
            )
        }
        None => {
            if req.compare.is_some() || req.stop_on_failure.is_some() {
                return Err(Error::Invalid(
                    "compare and stop_on_failure go with tests".into(),
                ));
            }
            (Vec::new(), Compare::default(), false)
        }
    };
    let spec = CodeSpec {
        language,
        compiler,
        code,
        stdin: crate::bytes::Bytes::from(req.stdin.unwrap_or_default()),
        args: req.args.unwrap_or_default(),
        limits: validate_limits(req.limits.unwrap_or_default())?,
        tests,
        compare,
        stop_on_failure,
        compiler_options: compiler_words(req.compiler_options)?,
        merge_stderr: req.merge_stderr.unwrap_or(false),
        webhook: webhook(req.webhook)?,
        files: program_files(req.files.unwrap_or_default())?,
        runs: req.runs.unwrap_or(1),
    };
    check_code(&spec)?;
    Ok(spec)
}

/// Bounds of a judged spec: how many tests, each test's sizes and arguments, tolerances
/// that are numbers and only where they apply.
pub(super) fn check_tests(spec: &CodeSpec) -> Result<()> {
    if spec.tests.len() > MAX_TESTS {
        return Err(Error::Invalid(format!(
            "tests must have 1 to {MAX_TESTS} items, not {}",
            spec.tests.len()
        )));
    }
    if spec.is_judged() && (!spec.stdin.is_empty() || !spec.args.is_empty()) {
        return Err(Error::Invalid(
            "with tests, stdin and args belong to each test".into(),
        ));
    }
    for (i, t) in spec.tests.iter().enumerate() {
        if t.stdin.len() > MAX_STDIN_BYTES {
            return Err(Error::Invalid(format!(
                "tests[{i}].stdin is {} bytes; at most {MAX_STDIN_BYTES} are accepted",
                t.stdin.len()
            )));
        }
        if t.expected_stdout.len() > MAX_EXPECTED_BYTES {
            return Err(Error::Invalid(format!(
                "tests[{i}].expected_stdout is {} bytes; at most {MAX_EXPECTED_BYTES} are accepted",
                t.expected_stdout.len()
            )));
        }
        check_args(&t.args, &format!("tests[{i}].args"))?;
    }
    let c = spec.compare;
    for (name, tol) in [("abs_tol", c.abs_tol), ("rel_tol", c.rel_tol)] {
        match tol {
            None => {}
            Some(_) if c.mode != CompareMode::Tokens => {
                return Err(Error::Invalid(format!(
                    "compare.{name} applies to mode tokens only"
                )));
            }
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(Error::Invalid(format!(
                    "compare.{name} must be a number of at least 0"
                )));
            }
            Some(_) => {}
        }
    }
    if !spec.is_judged() && (!c.is_default() || spec.stop_on_failure) {
        return Err(Error::Invalid(
            "compare and stop_on_failure go with tests".into(),
        ));
    }
    Ok(())
}

pub(super) fn check_args(args: &[String], what: &str) -> Result<()> {
    if args.len() > MAX_ARGS
        || args
            .iter()
            .any(|a| a.len() > MAX_ARG_BYTES || a.contains('\0'))
    {
        return Err(Error::Invalid(format!(
            "{what}: at most {MAX_ARGS} of at most {MAX_ARG_BYTES} bytes each, without NUL"
        )));
    }
    Ok(())
}

/// The bounds of a code spec, checked where it is made and again by the worker, which
/// trusts no message: a queue is not a trust boundary.
pub(super) fn check_code(spec: &CodeSpec) -> Result<()> {
    if spec.code.len() > MAX_CODE_BYTES {
        return Err(Error::Invalid(format!(
            "code is {} bytes; at most {MAX_CODE_BYTES} are accepted",
            spec.code.len()
        )));
    }
    if spec.code.contains('\0') {
        // No compiler or interpreter takes it as source; binary input belongs in stdin.
        return Err(Error::Invalid(
            "code must not contain NUL characters".into(),
        ));
    }
    if spec.stdin.len() > MAX_STDIN_BYTES {
        return Err(Error::Invalid(format!(
            "stdin is {} bytes; at most {MAX_STDIN_BYTES} are accepted",
            spec.stdin.len()
        )));
    }
    check_args(&spec.args, "args")?;
    check_tests(spec)?;
    let l = spec.limits;
    validate_limits(LimitsRequest {
        time_ms: Some(l.time_ms),
        memory_mb: Some(l.memory_mb),
        output_kb: Some(l.output_kb),
        stack_mb: Some(l.stack_mb),
        cpu_ms: l.cpu_ms,
    })?;
    check_compiler_options(spec)?;
    check_files(spec)?;
    if !(1..=MAX_RUNS).contains(&spec.runs) || (spec.runs > 1 && spec.is_judged()) {
        return Err(Error::Invalid(format!(
            "runs: 1 to {MAX_RUNS}, and 1 with tests (each test is a run)"
        )));
    }
    Ok(())
}

/// `files` as bytes.
fn program_files(files: Vec<FileRequest>) -> Result<Vec<ProgramFile>> {
    if files.len() > MAX_FILES {
        return Err(Error::Invalid(format!(
            "files: at most {MAX_FILES}, not {}",
            files.len()
        )));
    }
    files
        .into_iter()
        .map(|f| {
            let content = match f.encoding.unwrap_or_default() {
                FileEncoding::Utf8 => f.content.into_bytes(),
                FileEncoding::Base64 => base64::engine::general_purpose::STANDARD
                    .decode(f.content.as_bytes())
                    .map_err(|e| {
                        Error::Invalid(format!("files: {:?} is not base64: {e}", f.path))
                    })?,
            };
            Ok(ProgramFile {
                path: f.path,
                content: crate::bytes::Bytes::from(content),
            })
        })
        .collect()
}

/// The files beside a program: how many, how big together, and paths that stay inside
/// its directory and take no name of its own.
pub(super) fn check_files(spec: &CodeSpec) -> Result<()> {
    if spec.files.len() > MAX_FILES {
        return Err(Error::Invalid(format!("files: at most {MAX_FILES}")));
    }
    let total: usize = spec.files.iter().map(|f| f.content.len()).sum();
    if total > MAX_FILES_BYTES {
        return Err(Error::Invalid(format!(
            "files: {total} bytes together; at most {MAX_FILES_BYTES}"
        )));
    }
    let own: Vec<&str> = languages::find(&spec.language)
        .map(|d| vec![d.source, d.artifact])
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for f in &spec.files {
        check_file_path(&f.path)?;
        if own.contains(&f.path.as_str()) {
            return Err(Error::Invalid(format!(
                "files: {:?} is the program's own file",
                f.path
            )));
        }
        if !seen.insert(f.path.as_str()) {
            return Err(Error::Invalid(format!("files: {:?} twice", f.path)));
        }
    }
    // A file's path may not be another's directory (`a` and `a/b`).
    for path in &seen {
        let mut dir = *path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if seen.contains(parent) || own.contains(&parent) {
                return Err(Error::Invalid(format!(
                    "files: {parent:?} is a file and {path:?} would put one inside it"
                )));
            }
            dir = parent;
        }
    }
    Ok(())
}

/// A relative path of plain names: no `..` or `.`, no empty part, no leading `/`, no
/// control characters or backslashes, and not the sandbox's own names (`.codebox…`).
pub fn check_file_path(path: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("files: {path:?} {why}")));
    if path.is_empty() || path.len() > MAX_FILE_PATH {
        return bad(&format!("must be 1 to {MAX_FILE_PATH} bytes"));
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return bad("has a control character or a backslash");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("must be names separated by single `/`, without `.` or `..`");
        }
        if part.starts_with(".codebox") {
            return bad("takes a name the sandbox keeps for itself");
        }
    }
    Ok(())
}

/// Re-checks a spec from a queue message against every bound the API applies, so a
/// forged or corrupted message cannot ask for more (`memory_mb: 0` would mean unlimited
/// to the container engine).
///
/// # Errors
/// `Invalid`, naming the first bound the spec breaks.
pub fn check_spec(spec: &TaskSpec) -> Result<()> {
    if let Some(webhook) = spec.webhook() {
        check_webhook(webhook)?;
    }
    match spec {
        TaskSpec::Code(spec) => {
            let def = languages::find(&spec.language)
                .ok_or_else(|| Error::Invalid(format!("unknown language {:?}", spec.language)))?;
            let compiler_ok = match spec.compiler {
                None => def.compilers().is_empty(),
                Some(c) => def.compilers().contains(&c),
            };
            if !compiler_ok {
                return Err(Error::Invalid(format!(
                    "compiler {:?} does not fit {}",
                    spec.compiler.map(|c| c.as_str()),
                    spec.language
                )));
            }
            check_code(spec)
        }
        TaskSpec::Image(spec) => {
            let key_ok = spec
                .input_key
                .strip_prefix("input/")
                .and_then(|k| k.strip_suffix(".png"))
                .is_some_and(|id| Uuid::parse_str(id).is_ok());
            if !key_ok {
                return Err(Error::Invalid(format!(
                    "input key {:?} is not one the API makes",
                    spec.input_key
                )));
            }
            match spec.filter {
                Filter::Sharpen { sigma } | Filter::Blur { sigma }
                    if !SIGMA_RANGE.contains(&sigma) =>
                {
                    Err(Error::Invalid(format!("sigma {sigma} is out of range")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Compiler options: for compiled languages only, bounded as the request's string was
/// (its words, each no longer than it, no NUL).
fn check_compiler_options(spec: &CodeSpec) -> Result<()> {
    let words = &spec.compiler_options;
    if words.is_empty() {
        return Ok(());
    }
    if !languages::find(&spec.language).is_some_and(|l| l.takes_compiler_options()) {
        return Err(Error::Invalid(format!(
            "compiler_options are for languages compiled by a compiler of codebox's; {} is not one",
            spec.language
        )));
    }
    let length: usize = words.iter().map(|w| w.len() + 1).sum();
    if length > MAX_COMPILER_OPTIONS + 1 || words.iter().any(|w| w.contains('\0')) {
        return Err(Error::Invalid(format!(
            "compiler_options must be at most {MAX_COMPILER_OPTIONS} characters, without NUL"
        )));
    }
    Ok(())
}

/// `compiler_options` as the words the compiler gets.
fn compiler_words(options: Option<String>) -> Result<Vec<String>> {
    let Some(line) = options else {
        return Ok(Vec::new());
    };
    if line.chars().count() > MAX_COMPILER_OPTIONS {
        return Err(Error::Invalid(format!(
            "compiler_options must be at most {MAX_COMPILER_OPTIONS} characters"
        )));
    }
    shell_words::split(&line).map_err(|e| Error::Invalid(format!("compiler_options: {e}")))
}

pub(super) fn validate_limits(req: LimitsRequest) -> Result<Limits> {
    let pick = |name: &str, value: Option<u32>, min: u32, default: u32, max: u32| {
        let v = value.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(Error::Invalid(format!(
                "limits.{name} must be {min} to {max}, got {v}"
            )))
        }
    };
    let (d, lo, hi) = (Limits::DEFAULT, Limits::MIN, Limits::MAX);
    Ok(Limits {
        time_ms: pick("time_ms", req.time_ms, lo.time_ms, d.time_ms, hi.time_ms)?,
        memory_mb: pick(
            "memory_mb",
            req.memory_mb,
            lo.memory_mb,
            d.memory_mb,
            hi.memory_mb,
        )?,
        output_kb: pick(
            "output_kb",
            req.output_kb,
            lo.output_kb,
            d.output_kb,
            hi.output_kb,
        )?,
        stack_mb: pick(
            "stack_mb",
            req.stack_mb,
            lo.stack_mb,
            d.stack_mb,
            hi.stack_mb,
        )?,
        cpu_ms: match req.cpu_ms {
            None => None,
            Some(v) => Some(pick("cpu_ms", Some(v), 1, v, 20_000)?),
        },
    })
}

pub(super) fn validate_image(
    req: SubmitRequest,
    inline_max: usize,
) -> Result<(ImageSpec, ImageInput)> {
    let input = match (req.image_base64, req.image_key) {
        (Some(b64), None) => ImageInput::Inline(inline_png(&b64, inline_max)?),
        (None, Some(key)) => ImageInput::Uploaded(key),
        (Some(_), Some(_)) => {
            return Err(Error::Invalid(
                "an image task takes image_base64 or image_key, not both".into(),
            ));
        }
        (None, None) => {
            return Err(Error::Invalid(
                "image_base64 or image_key is required for image tasks".into(),
            ));
        }
    };
    let filter = req
        .filter
        .ok_or_else(|| Error::Invalid("filter is required for image tasks".into()))?;
    let params = filter.parameters.unwrap_or_default();
    let sigma = || {
        let s = params.sigma.flatten().unwrap_or(1.0);
        if SIGMA_REQUEST_RANGE.contains(&s) {
            #[allow(clippy::cast_possible_truncation)] // in range, so it fits
            Ok(s as f32)
        } else {
            Err(Error::Invalid(format!(
                "filter.parameters.sigma must be {} to {}",
                SIGMA_RANGE.start(),
                SIGMA_RANGE.end()
            )))
        }
    };
    let no_params = |name: &str| {
        if params.sigma.is_some() {
            Err(Error::Invalid(format!("filter {name} takes no parameters")))
        } else {
            Ok(())
        }
    };
    let filter = match filter.name.as_str() {
        "sharpen" => Filter::Sharpen { sigma: sigma()? },
        "blur" => Filter::Blur { sigma: sigma()? },
        "negative" => {
            no_params("negative")?;
            Filter::Negative
        }
        "flipx" => {
            no_params("flipx")?;
            Filter::Flipx
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown filter {other:?}: one of sharpen, blur, negative, flipx"
            )));
        }
    };
    let spec = ImageSpec {
        input_key: format!("input/{}.png", Uuid::new_v4()),
        filter,
        webhook: webhook(req.webhook)?,
    };
    Ok((spec, input))
}

/// A webhook's shape: an http(s) URL of bounded length. Where it may point is the API's
/// to check, with the deployment's address rules, before the task is submitted.
fn webhook(req: Option<WebhookRequest>) -> Result<Option<Box<Webhook>>> {
    let Some(req) = req else {
        return Ok(None);
    };
    let webhook = Webhook {
        url: req.url,
        style: req.style,
    };
    check_webhook(&webhook)?;
    Ok(Some(Box::new(webhook)))
}

pub(super) fn check_webhook(webhook: &Webhook) -> Result<()> {
    check_webhook_url(&webhook.url)
}

/// A webhook URL's shape: `http://` or `https://`, at most [`MAX_WEBHOOK_URL`]
/// characters, no whitespace or control characters.
pub fn check_webhook_url(url: &str) -> Result<()> {
    if url.len() > MAX_WEBHOOK_URL {
        return Err(Error::Invalid(format!(
            "webhook.url: is at most {MAX_WEBHOOK_URL} characters"
        )));
    }
    let scheme_ok = ["http://", "https://"].iter().any(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Invalid(
            "webhook.url: must be an http:// or https:// URL".into(),
        ));
    }
    Ok(())
}

/// An inline PNG, decoded and checked.
pub(super) fn inline_png(b64: &str, max: usize) -> Result<Vec<u8>> {
    // Refuse before decoding anything larger than the limit can produce.
    let too_large = || {
        let detail = format!("the image is larger than {max} bytes");
        if max < png::MAX_BYTES {
            // Within the platform's limit, over this deployment's inline one.
            Error::TooLarge(format!(
                "{detail}, the most a request carries here: upload it first (POST /task/upload) and send its image_key"
            ))
        } else {
            Error::Invalid(detail)
        }
    };
    if b64.len() / 4 * 3 > max + 3 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Error::Invalid("image_base64 is not valid base64".into()))?;
    if bytes.len() > max && max < png::MAX_BYTES {
        return Err(too_large());
    }
    png::check(&bytes)?;
    Ok(bytes)
}
