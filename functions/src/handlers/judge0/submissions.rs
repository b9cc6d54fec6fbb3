//! Submissions: create (one or a batch), show, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use codebox_core::domain::Task;
use serde_json::{Map, Value, json};

use crate::extract::{JsonObject, Query};
use crate::handlers::create_task::{submit, wait_for_end};
use crate::problem::{ApiError, ApiResult, Problem};
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
        let within = crate::handlers::create_task::MAX_WAIT;
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
