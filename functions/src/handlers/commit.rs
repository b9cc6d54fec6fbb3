//! The worker's routes, authorised by the worker credential only: `POST /commit` stores
//! an outcome; `POST /commit/start` marks a task running under a lease that
//! `POST /commit/lease` renews; `GET /commit/{id}` tells a
//! worker whether the task it runs was cancelled; `GET /commit/ping` is the worker's
//! readiness probe (its credential and the store), which tells an outage from a task's
//! own failure.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use codebox_core::domain::{Commit, StartDecision, TaskEvent, TaskId};
use codebox_core::languages::Language;
use codebox_core::ports::TaskControl;

use crate::dto::{
    CancelledRequest, CancelledResponse, CommitAccepted, CommitBody, LeaseRequest,
    MAX_PROGRESS_EVENTS, MAX_WATCHED, ProgressRequest, StartRequest, StartResponse,
};
use crate::extract::{Json, JsonObject, Path, Worker};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(post, path = "/commit", tag = "worker", request_body = CommitBody,
    security(("worker" = [])),
    responses(
        (status = 200, description = "Stored, or ignored when the task had finished already", body = CommitAccepted),
        (status = 400, description = "Invalid outcome", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(task_id = %body.task_id))]
pub async fn commit(
    State(state): State<AppState>,
    _worker: Worker,
    JsonObject(body): JsonObject<CommitBody>,
) -> ApiResult<axum::Json<CommitAccepted>> {
    let id = body.task_id;
    let (result, spilled) = match (body.result, body.result_key) {
        (Some(result), None) => (result, None),
        (None, Some(key)) => (read_spilled(&state, id, &key).await?, Some(key)),
        _ => {
            return Err(crate::problem::ApiError::bad_request(
                "give exactly one of result and result_key",
            ));
        }
    };
    // The status the commit left (this outcome, or the one that stood before it).
    let status = state
        .tasks
        .commit(&Commit {
            task_id: id,
            status: body.status,
            result,
            notify: body.notify,
        })
        .await?;
    if let Some(key) = spilled
        && let Err(e) = state.tasks.blobs().delete(&key).await
    {
        tracing::warn!(error = %e, "a stored outcome's blob stays behind");
    }
    Ok(axum::Json(CommitAccepted {
        task_id: id,
        status,
    }))
}

/// The outcome a worker left in the blob store: only under its own task's prefix.
async fn read_spilled(
    state: &AppState,
    id: TaskId,
    key: &str,
) -> Result<codebox_core::domain::TaskResult, crate::problem::ApiError> {
    use crate::problem::ApiError;
    let prefix = format!("results/{id}/");
    let name_ok = key.strip_prefix(&prefix).is_some_and(|rest| {
        rest.strip_suffix(".json")
            .is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !name_ok {
        return Err(ApiError::bad_request(format!(
            "result_key must be {prefix}<32 hex digits>.json"
        )));
    }
    let bytes = state
        .tasks
        .blobs()
        .get(key)
        .await?
        .ok_or_else(|| ApiError::bad_request("result_key names no blob"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the blob is not an outcome: {e}")))
}

#[utoipa::path(post, path = "/commit/start", tag = "worker", request_body = StartRequest,
    security(("worker" = [])),
    responses(
        (status = 200, description = "Whether to run the task", body = StartResponse),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json")))]
pub async fn start(
    State(state): State<AppState>,
    _worker: Worker,
    JsonObject(body): JsonObject<StartRequest>,
) -> ApiResult<axum::Json<StartResponse>> {
    let lease = body.lease.unwrap_or_else(uuid::Uuid::new_v4);
    // A worker from before leases names none and knows only `run`: it is told to run a
    // task that is running, as it always was (a `false` would have it ack the message),
    // and never to defer one. One that knows leases but not deferral reads `run: false,
    // leased: true` and asks again shortly, as for a task running elsewhere.
    let legacy = body.lease.is_none();
    let deferrals = (!legacy).then_some(body.deferrals);
    let decision = state
        .tasks
        .start_run(body.task_id, lease, deferrals)
        .await?;
    let deferred = decision == StartDecision::Defer;
    Ok(axum::Json(StartResponse {
        run: decision == StartDecision::Run || (legacy && decision == StartDecision::Leased),
        leased: (decision == StartDecision::Leased || deferred) && !legacy,
        deferred,
    }))
}

#[utoipa::path(post, path = "/commit/lease", tag = "worker", request_body = LeaseRequest,
    security(("worker" = [])),
    responses(
        (status = 204, description = "The running ones among the tasks keep their worker's lease, or lose it with `release`"),
        (status = 400, description = "No leases, or more than 256", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json")))]
pub async fn lease(
    State(state): State<AppState>,
    _worker: Worker,
    JsonObject(body): JsonObject<LeaseRequest>,
) -> ApiResult<StatusCode> {
    check_count("leases", body.leases.len())?;
    if body.release {
        for l in &body.leases {
            TaskControl::release(&state.tasks, l.task_id, l.lease).await?;
        }
    } else {
        let leases: Vec<_> = body.leases.iter().map(|l| (l.task_id, l.lease)).collect();
        TaskControl::renew(&state.tasks, &leases).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn check_count(what: &str, n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_WATCHED {
        return Err(ApiError::bad_request(format!(
            "{what} holds 1–{MAX_WATCHED} items, not {n}"
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/commit/{id}", tag = "worker", security(("worker" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task's status", body = CommitAccepted),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(state): State<AppState>,
    _worker: Worker,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<CommitAccepted>> {
    Ok(axum::Json(CommitAccepted {
        task_id: id,
        status: state.tasks.status_of(id).await?,
    }))
}

#[utoipa::path(post, path = "/commit/cancelled", tag = "worker", request_body = CancelledRequest,
    security(("worker" = [])),
    responses(
        (status = 200, description = "Which of the tasks were cancelled or are gone", body = CancelledResponse),
        (status = 400, description = "No ids, or more than 256", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json")))]
pub async fn cancelled(
    State(state): State<AppState>,
    _worker: Worker,
    JsonObject(body): JsonObject<CancelledRequest>,
) -> ApiResult<axum::Json<CancelledResponse>> {
    check_count("task_ids", body.task_ids.len())?;
    let cancelled = TaskControl::cancelled_among(&state.tasks, &body.task_ids).await?;
    Ok(axum::Json(CancelledResponse { cancelled }))
}

#[utoipa::path(post, path = "/commit/events", tag = "worker", request_body = ProgressRequest,
    security(("worker" = [])),
    responses(
        (status = 204, description = "Handed to the task's event streams (if any listen)"),
        (status = 400, description = "No events, more than 1024, a status or attempt event (the API makes those), or attempt 0", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<AppState>,
    _worker: Worker,
    JsonObject(body): JsonObject<ProgressRequest>,
) -> ApiResult<StatusCode> {
    if body.events.is_empty() || body.events.len() > MAX_PROGRESS_EVENTS {
        return Err(ApiError::bad_request(format!(
            "events holds 1–{MAX_PROGRESS_EVENTS} events, not {}",
            body.events.len()
        )));
    }
    // A task's status is the store's: listeners hear it from the API, never from a worker;
    // so is the run the events come from (the request's `attempt`).
    if body
        .events
        .iter()
        .any(|e| matches!(e, TaskEvent::Status { .. } | TaskEvent::Attempt { .. }))
    {
        return Err(ApiError::bad_request(
            "a status or attempt event comes from the API, not from a worker",
        ));
    }
    if body.attempt == 0 {
        return Err(ApiError::bad_request("attempt counts from 1"));
    }
    state
        .tasks
        .progress(body.task_id, body.attempt, body.events)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/commit/ping", tag = "worker", security(("worker" = [])),
    responses(
        (status = 204, description = "The credential is valid and outcomes can be stored"),
        (status = 401, description = "No credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the worker credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The task store does not answer", body = Problem, content_type = "application/problem+json")))]
pub async fn ping(State(state): State<AppState>, _worker: Worker) -> ApiResult<StatusCode> {
    state.tasks.ping_store().await.map_err(|e| {
        tracing::warn!(error = %e, "worker probe: the task store does not answer");
        crate::problem::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the task store does not answer",
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/commit/languages", tag = "worker", request_body = Vec<Language>,
    security(("worker" = [])),
    responses(
        (status = 204, description = "`GET /languages` now lists these versions"),
        (status = 400, description = "Not a language listing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A user's token", body = Problem, content_type = "application/problem+json")))]
pub async fn report_languages(
    State(state): State<AppState>,
    _worker: Worker,
    Json(body): Json<Vec<Language>>,
) -> ApiResult<StatusCode> {
    if !super::languages::is_listing(&body) {
        return Err(crate::problem::ApiError::bad_request(
            "the listing must name this API's languages, in order",
        ));
    }
    // Kept in the blob store too: every API process lists it (on AWS the `languages`
    // function, which never hears a worker).
    let bytes = serde_json::to_vec(&body).map_err(|e| codebox_core::Error::Backend(e.into()))?;
    state
        .tasks
        .blobs()
        .put(super::languages::LISTING_KEY, bytes)
        .await?;
    state.set_languages(body);
    Ok(StatusCode::NO_CONTENT)
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/commit", post(commit))
            .route("/commit/start", post(start))
            .route("/commit/cancelled", post(cancelled))
            .route("/commit/lease", post(lease))
            .route("/commit/events", post(events))
            .route("/commit/ping", get(ping))
            .route("/commit/{id}", get(status))
            .route("/commit/languages", put(report_languages))
            .with_state(state),
    )
}
