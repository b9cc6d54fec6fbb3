//! What Judge0 clients read about the service: version, configuration, languages,
//! statuses.

use axum::extract::State;
use axum::http::StatusCode;
use codebox_core::domain::{CodeSpec, Limits};
use codebox_core::languages;
use serde_json::{Map, Value, json};

use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

use super::*;

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
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": true,
        "callbacks_max_tries": crate::webhooks::TRIES,
        "callbacks_timeout": crate::webhooks::TIMEOUT.as_secs_f64(),
        "enable_additional_files": true,
        "max_queue_size": 10000,
        "cpu_time_limit": DEFAULT_CPU_S,
        "max_cpu_time_limit": f64::from(max.time_ms) / 1000.0,
        "cpu_extra_time": 1.0,
        "max_cpu_extra_time": 5.0,
        "wall_time_limit": DEFAULT_WALL_S,
        "max_wall_time_limit": f64::from(max.time_ms) / 1000.0,
        "memory_limit": DEFAULT_MEMORY_KB as u64,
        "max_memory_limit": max.memory_mb * 1024,
        "stack_limit": d.stack_mb * 1000,
        "max_stack_limit": max.stack_mb * 1024,
        "max_processes_and_or_threads": 64,
        "max_max_processes_and_or_threads": 64,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": DEFAULT_OUTPUT_KB,
        "max_max_file_size": max.output_kb,
        "number_of_runs": 1,
        "max_number_of_runs": codebox_core::domain::MAX_RUNS,
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
pub(super) fn language_list(
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
        (status = 404, description = "No such language", body = Judge0Error, content_type = "application/json")))]
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

#[utoipa::path(get, path = "/judge0/version", tag = "judge0",
    responses((status = 200, description = "The Judge0 version this API answers as, in plain text", body = String, content_type = "text/plain")))]
pub async fn version() -> &'static str {
    VERSION
}

#[utoipa::path(get, path = "/judge0/languages/all", tag = "judge0",
    responses((status = 200, description = "Every language, archived ones too (none are)", body = Vec<ArchivedLanguageView>)))]
pub async fn languages_all(State(state): State<AppState>) -> axum::Json<Vec<ArchivedLanguageView>> {
    axum::Json(
        language_list(&state)
            .into_iter()
            .map(|(id, name, _, _)| ArchivedLanguageView {
                id,
                name,
                is_archived: false,
            })
            .collect(),
    )
}

#[utoipa::path(get, path = "/judge0/system_info", tag = "judge0",
    responses((status = 200, description = "The host as Judge0 describes it (lscpu's lines, memory and swap): every value a string", body = Object)))]
pub async fn system_info() -> axum::Json<Map<String, Value>> {
    axum::Json(super::system::info())
}

#[utoipa::path(post, path = "/judge0/authenticate", tag = "judge0",
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "The token is good"),
        (status = 401, description = "No valid token")))]
pub async fn authenticate(_user: Judge0User) -> StatusCode {
    StatusCode::OK
}

#[utoipa::path(post, path = "/judge0/authorize", tag = "judge0",
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "The token may list and delete its own submissions (every codebox user may, their own only)"),
        (status = 401, description = "No valid token")))]
pub async fn authorize(_user: Judge0User) -> StatusCode {
    StatusCode::OK
}
