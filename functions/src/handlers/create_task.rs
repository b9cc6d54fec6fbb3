//! `POST /task`: submit a code or image task.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use codebox_core::tasks::{SubmitRequest, Submitted};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use crate::dto::{OutputEncoding, TaskAccepted};
use crate::extract::{AuthUser, JsonObject, Query};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

#[utoipa::path(post, path = "/task", tag = "tasks", request_body = crate::dto::TaskRequestSchema,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The same key from the same user within 24 h returns the first task (1 to 255 visible ASCII characters)",
        min_length = 1, max_length = 255, pattern = "^[!-~]+$"), SubmitParams),
    responses(
        (status = 200, description = "With `wait=true`: the task ended within `wait_s`; the `GET /task/{id}` body", body = crate::dto::TaskView),
        (status = 202, description = "Stored and queued (with `wait=true`: not ended within `wait_s`)", body = TaskAccepted,
            headers(("Location" = String, description = "/task/{id}"))),
        (status = 400, description = "Invalid task, or `wait_s` out of range", body = Problem, content_type = "application/problem+json"),
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
    Query(params): Query<SubmitParams>,
    JsonObject(body): JsonObject<SubmitRequest>,
) -> ApiResult<Response> {
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?,
        ),
        None => None,
    };
    let wait = params.wait()?;
    // Listening before the task is published: its end is not missed.
    let watch = wait.map(|_| state.tasks.watch_ends());
    let submitted = submit(&state, me.user_id, body, key).await?;
    let task = &submitted.task;
    tracing::Span::current().record("task_id", tracing::field::display(task.id));
    if let (Some(within), Some(watch)) = (wait, watch)
        && let Some(finished) = state
            .tasks
            .wait_for_submitted(&submitted, watch, within)
            .await?
    {
        let view = super::get_task::view(&state, &finished, OutputEncoding::default()).await?;
        return Ok((StatusCode::OK, axum::Json(view)).into_response());
    }
    let location = HeaderValue::from_str(&format!("/task/{}", task.id))
        .map_err(|e| codebox_core::Error::Backend(e.into()))?;
    let mut res = (StatusCode::ACCEPTED, axum::Json(crate::dto::accepted(task))).into_response();
    res.headers_mut().insert(header::LOCATION, location);
    if !submitted.created {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// `?wait=true&wait_s=N` of `POST /task`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    /// `true`: answer once the task has ended (`200` with the `GET /task/{id}` body), or
    /// after `wait_s` seconds with the usual `202`.
    pub wait: Option<bool>,
    /// With `wait=true`: 1–25 seconds, default 10.
    #[param(minimum = 1, maximum = 25)]
    pub wait_s: Option<u64>,
}

/// How long `wait=true` waits at most, and by default.
pub const MAX_WAIT: Duration = Duration::from_secs(25);
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

impl SubmitParams {
    fn wait(&self) -> Result<Option<Duration>, ApiError> {
        let within = match self.wait_s {
            None => DEFAULT_WAIT,
            Some(s) if (1..=MAX_WAIT.as_secs()).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(ApiError::bad_request(format!(
                    "wait_s must be 1 to {}, got {s}",
                    MAX_WAIT.as_secs()
                )));
            }
        };
        Ok((self.wait == Some(true)).then_some(within))
    }
}

/// Counts the submission against the caller's limits, then submits.
pub(crate) async fn submit(
    state: &AppState,
    owner: codebox_core::domain::UserId,
    body: SubmitRequest,
    key: Option<&str>,
) -> ApiResult<Submitted> {
    // The rate here; the cap on tasks under way as the task is stored.
    state.limits.submit(owner).await?;
    // After the limits: a lookup costs a thread while it waits.
    if let Some(webhook) = &body.webhook {
        // Its shape first (the task service's words), then where it points.
        codebox_core::tasks::check_webhook_url(&webhook.url).map_err(ApiError::from)?;
        let Some(webhooks) = &state.webhooks else {
            return Err(ApiError::bad_request(
                "webhook.url: this deployment calls no webhooks",
            ));
        };
        webhooks
            .check(&webhook.url)
            .await
            .map_err(|why| ApiError::bad_request(format!("webhook.url: {why}")))?;
    }
    let submitted = state.tasks.submit(owner, body, key).await?;
    if submitted.created {
        let kind = match submitted.task.spec.language() {
            Some(lang) => lang.to_owned(),
            None => "image".to_owned(),
        };
        metrics::counter!("codebox_tasks_submitted_total", "language" => kind).increment(1);
    }
    Ok(submitted)
}

/// The body of `POST /task/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1–20 task bodies as `POST /task` takes them (`TaskRequest`). Each is checked on
    /// its own: one that is not a valid task is refused in its item of the answer, the
    /// others go ahead.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 20)]
    pub tasks: Vec<serde_json::Map<String, serde_json::Value>>,
}

pub const MAX_BATCH: usize = 20;

/// One item of a batch's answer: the task as `POST /task` accepts it, or the problem
/// that refused it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Accepted(TaskAccepted),
    Refused(Problem),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// One per submitted task, in order.
    pub items: Vec<BatchItem>,
}

#[utoipa::path(post, path = "/task/batch", tag = "tasks", request_body = BatchRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Each task stored and queued, or refused on its own (a problem object in its place); each counts toward your limits", body = BatchAccepted),
        (status = 400, description = "Not a batch of 1 to 20 tasks", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 12 MiB", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(user_id = %me.user_id))]
pub async fn create_batch(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    JsonObject(body): JsonObject<BatchRequest>,
) -> ApiResult<Response> {
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return Err(ApiError::bad_request(
            "Idempotency-Key applies to POST /task, not to batches",
        ));
    }
    if !(1..=MAX_BATCH).contains(&body.tasks.len()) {
        return Err(ApiError::bad_request(format!(
            "a batch has 1 to {MAX_BATCH} tasks, not {}",
            body.tasks.len()
        )));
    }
    let mut items = Vec::with_capacity(body.tasks.len());
    for (i, value) in body.tasks.into_iter().enumerate() {
        let item = match parse_task(i, value) {
            Ok(request) => submit(&state, me.user_id, request, None).await,
            Err(e) => Err(e),
        };
        items.push(match item {
            Ok(s) => BatchItem::Accepted(crate::dto::accepted(&s.task)),
            Err(e) => BatchItem::Refused(e.problem()),
        });
    }
    Ok((StatusCode::ACCEPTED, axum::Json(BatchAccepted { items })).into_response())
}

fn parse_task(
    index: usize,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<SubmitRequest, ApiError> {
    serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("tasks[{index}]: {e}")))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task", post(create_task))
            .route("/task/batch", post(create_batch))
            .with_state(state.clone()),
    )
    // The create-task function also hands out upload URLs (it needs the same blobs).
    .merge(super::upload::router(state))
}
