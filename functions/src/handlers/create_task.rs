//! `POST /task`: submit a code or image task.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use codebox_core::tasks::SubmitRequest;

use crate::dto::TaskAccepted;
use crate::extract::{AuthUser, JsonObject};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[utoipa::path(post, path = "/task", tag = "tasks", request_body = crate::dto::TaskRequestSchema,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The same key from the same user within 24 h returns the first task (1 to 255 visible ASCII characters)",
        min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    responses(
        (status = 202, description = "Stored and queued", body = TaskAccepted,
            headers(("Location" = String, description = "/task/{id}"))),
        (status = 400, description = "Invalid task", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 12 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over your submission rate or your cap of tasks under way; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The queue is unavailable; nothing was stored", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user_id = %me.user_id, task_id))]
pub async fn create_task(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    JsonObject(body): JsonObject<SubmitRequest>,
) -> ApiResult<Response> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?,
        ),
        None => None,
    };
    state
        .limits
        .submit(me.user_id, state.tasks.store().as_ref())
        .await?;
    let submitted = state.tasks.submit(me.user_id, body, key).await?;
    let task = submitted.task;
    tracing::Span::current().record("task_id", tracing::field::display(task.id));
    if submitted.created {
        let kind = match task.spec.language() {
            Some(lang) => lang.to_owned(),
            None => "image".to_owned(),
        };
        metrics::counter!("codebox_tasks_submitted_total", "language" => kind).increment(1);
    }
    let location = HeaderValue::from_str(&format!("/task/{}", task.id))
        .map_err(|e| codebox_core::Error::Backend(e.into()))?;
    let mut res = (
        StatusCode::ACCEPTED,
        axum::Json(TaskAccepted {
            id: task.id,
            status: task.status,
            created_at: task.created_at,
        }),
    )
        .into_response();
    res.headers_mut().insert(header::LOCATION, location);
    if !submitted.created {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task", post(create_task))
            .with_state(state),
    )
}
