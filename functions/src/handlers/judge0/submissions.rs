//! Submissions: create (one or a batch), show, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use codebox_core::domain::Task;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use crate::extract::{JsonObject, Query};
use crate::handlers::create_task::submit;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

use super::*;

/// The caller's task by token; anything else (not a task id, another user's) is 404.
pub(super) async fn task_of(state: &AppState, owner: uuid::Uuid, token: &str) -> ApiResult<Task> {
    let id = uuid::Uuid::parse_str(token.trim())
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no submission {token}")))?;
    Ok(state.tasks.get(owner, id).await?)
}

#[utoipa::path(post, path = "/judge0/submissions", tag = "judge0", request_body = SubmissionRequest,
    params(SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 201, description = "Queued: the token (with `wait=true`: the finished submission, or the token after 25 s)", body = Submission),
        (status = 400, description = "Unknown field in `fields`", body = Judge0Error, content_type = "application/json"),
        (status = 401, description = "No valid token"),
        (status = 422, description = "A submission codebox cannot take", body = Judge0Error, content_type = "application/json"),
        (status = 429, description = "Over your limits; see `Retry-After`", body = Judge0Error, content_type = "application/json"),
        (status = 503, description = "The queue is unavailable", body = Judge0Error, content_type = "application/json")))]
pub async fn create(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<SubmissionParams>,
    Judge0Body(body): Judge0Body<SubmissionRequest>,
) -> ApiResult<Response> {
    let base64 = params.base64();
    let fields = pick_fields(params.fields.as_deref())?;
    let request = to_task(body, base64)?;
    // Listening before the task is published: its end is not missed.
    let watch = params.wait().then(|| state.tasks.watch_ends());
    let submitted = submit(&state, me.user_id, request, None)
        .await
        .map_err(as_unprocessable)?;
    if let Some(watch) = watch {
        let within = crate::handlers::create_task::MAX_WAIT;
        let task = state
            .tasks
            .wait_for_submitted(&submitted, watch, within)
            .await?
            .unwrap_or(submitted.task);
        // As Judge0: the submission was made, so 201 all the same, with its token.
        let body = match super::view::view(&state, &task, base64, &fields) {
            Ok(view) => Value::Object(view),
            Err(NotUtf8) => json!({"error": NotUtf8::ONE, "token": task.id.to_string()}),
        };
        return Ok((StatusCode::CREATED, axum::Json(body)).into_response());
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(Token {
            token: submitted.task.id.to_string(),
        }),
    )
        .into_response())
}

/// codebox's 400 for an invalid task is Judge0's 422.
pub(super) fn as_unprocessable(e: ApiError) -> ApiError {
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
        (status = 400, description = "Unknown field in `fields`", body = Judge0Error, content_type = "application/json"),
        (status = 401, description = "No valid token"),
        (status = 404, description = "No such submission of yours", body = Judge0Error, content_type = "application/json")))]
pub async fn show(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(params): Query<SubmissionParams>,
) -> ApiResult<axum::Json<Map<String, Value>>> {
    let fields = pick_fields(params.fields.as_deref())?;
    let task = task_of(&state, me.user_id, &token).await?;
    Ok(axum::Json(params.view(&state, &task, &fields)?))
}

#[utoipa::path(delete, path = "/judge0/submissions/{token}", tag = "judge0",
    params(("token" = String, Path, description = "The submission's token"), SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "Cancelled (it was queued or running); the submission as it now is", body = Submission),
        (status = 400, description = "Finished submissions are kept (`enable_submission_delete` is false), or an unknown field", body = Judge0Error, content_type = "application/json"),
        (status = 401, description = "No valid token"),
        (status = 404, description = "No such submission of yours", body = Judge0Error, content_type = "application/json")))]
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
    Ok(axum::Json(params.view(&state, &task, &fields)?))
}

#[utoipa::path(post, path = "/judge0/submissions/batch", tag = "judge0", request_body = BatchRequest,
    params(SubmissionParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 201, description = "One item per submission, in order: its token, or the problem that refused it", body = Vec<Object>),
        (status = 401, description = "No valid token"),
        (status = 400, description = "Not 1 to 20 submissions", body = Judge0Error, content_type = "application/json"),
        (status = 422, description = "None of them could be taken: one item per submission, its reasons by field", body = Vec<Object>)))]
pub async fn create_batch(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<SubmissionParams>,
    JsonObject(body): JsonObject<BatchRequest>,
) -> ApiResult<Response> {
    if body.submissions.is_empty() {
        return Err(ApiError::bad_request(
            "there should be at least one submission in a batch",
        ));
    }
    if body.submissions.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
        )));
    }
    let base64 = params.base64();
    let mut items = Vec::with_capacity(body.submissions.len());
    let mut taken = 0usize;
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
            Ok(s) => {
                taken += 1;
                json!({"token": s.task.id.to_string()})
            }
            Err(e) => errors::shape(&e.problem()),
        });
    }
    // As Judge0: 201 when any was taken, 422 when none was.
    let status = if taken > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, axum::Json(items)).into_response())
}

#[utoipa::path(get, path = "/judge0/submissions/batch", tag = "judge0",
    params(BatchParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "The submissions in the order of `tokens`", body = SubmissionList),
        (status = 400, description = "More than 20 tokens, or an unknown field", body = Judge0Error, content_type = "application/json"),
        (status = 401, description = "No valid token")))]
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
    let base64 = params.base64();
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        submissions.push(match task_of(&state, me.user_id, token).await {
            Ok(task) => Some(
                super::view::view(&state, &task, base64, &fields)
                    .map_err(|_| ApiError::bad_request(NotUtf8::SOME))?,
            ),
            Err(e) if e.status == StatusCode::NOT_FOUND => None,
            Err(e) => return Err(e),
        });
    }
    Ok(axum::Json(SubmissionList { submissions }))
}

/// `GET /judge0/submissions`: the caller's own, newest first.
#[derive(Debug, Deserialize, IntoParams)]
pub struct IndexParams {
    /// 1 and up (default 1), read as Rails' `to_i` reads it (leading digits).
    #[param(schema_with = page_schema)]
    pub page: Option<String>,
    /// 1–100 (default 20), read as `page` is.
    #[param(schema_with = per_page_schema)]
    pub per_page: Option<String>,
    /// (`true` or `1`.)
    pub base64_encoded: Option<String>,
    /// Comma-separated fields to return, or `*` for all.
    #[param(schema_with = super::view::fields_schema)]
    pub fields: Option<String>,
}

/// A whole number as [`to_i`] reads it, `whole` its digits (blank: the default).
fn leading_number(whole: &str) -> utoipa::openapi::Object {
    use super::view::SPACE;
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(r"^{SPACE}*(\+?0*{whole}([^0-9][\s\S]*)?)?$")))
        .build()
}

fn page_schema() -> utoipa::openapi::Object {
    // Up to MAX_PAGE.
    leading_number("[1-9][0-9]{0,8}")
}

fn per_page_schema() -> utoipa::openapi::Object {
    leading_number("([1-9][0-9]?|100)")
}

/// A page holds at most this many submissions.
const MAX_PER_PAGE: i64 = 100;
/// The last page asked for that is not refused (far past any list's end).
const MAX_PAGE: i64 = 999_999_999;

/// A whole number as Rails' `to_i` reads it: leading digits, else 0; blank is the default
/// (as Rails' parameters take `""`).
fn to_i(v: Option<&str>, default: i64) -> i64 {
    let Some(v) = v.map(|v| v.trim_start_matches(super::view::RUBY_SPACE)) else {
        return default;
    };
    if v.is_empty() {
        return default;
    }
    let (sign, digits) = match v.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, v.strip_prefix('+').unwrap_or(v)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    sign * digits[..end].parse::<i64>().unwrap_or(0)
}

#[utoipa::path(get, path = "/judge0/submissions", tag = "judge0",
    params(IndexParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "A page of your submissions, newest first, and `meta` (`current_page`, `next_page`, `prev_page`, `total_pages`, `total_count`, counted up to 1 000)", body = Object),
        (status = 400, description = "A page not 1 to 999 999 999, a `per_page` not 1 to 100, or an unknown field", body = Judge0Error, content_type = "application/json"),
        (status = 401, description = "No valid token")))]
pub async fn index(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<IndexParams>,
) -> ApiResult<axum::Json<Value>> {
    let page = to_i(params.page.as_deref(), 1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(ApiError::bad_request(format!("invalid page: {page}")));
    }
    let per_page = to_i(params.per_page.as_deref(), 20);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::bad_request(format!(
            "invalid per_page: {per_page}"
        )));
    }
    let fields = pick_fields(params.fields.as_deref())?;
    let base64 = super::request::lenient::query_flag(params.base64_encoded.as_deref());
    let (page, per_page) = (page as usize, per_page as usize);
    let skip = (page - 1).saturating_mul(per_page);
    let listed = super::listing::submissions_of(&state, me.user_id).await?;
    let total = listed.len();
    let ids: Vec<_> = listed
        .iter()
        .skip(skip)
        .take(per_page)
        .map(|t| t.id)
        .collect();
    let mut submissions = Vec::with_capacity(ids.len());
    for id in ids {
        match state.tasks.get(me.user_id, id).await {
            Ok(task) => submissions.push(Value::Object(
                super::view::view(&state, &task, base64, &fields)
                    .map_err(|_| ApiError::bad_request(NotUtf8::SOME))?,
            )),
            // Gone meanwhile (past its retention).
            Err(codebox_core::Error::NotFound(_) | codebox_core::Error::Gone(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let total_pages = total.div_ceil(per_page).max(1);
    Ok(axum::Json(json!({
        "submissions": submissions,
        "meta": {
            "current_page": page,
            "next_page": (page < total_pages).then_some(page + 1),
            "prev_page": (page > 1).then(|| page - 1),
            "total_pages": total_pages,
            "total_count": total,
        },
    })))
}
