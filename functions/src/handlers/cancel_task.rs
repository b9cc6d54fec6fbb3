//! `DELETE /task/{id}`: cancel a queued or running task.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::delete;
use codebox_core::domain::TaskId;

use crate::extract::{AuthUser, Path};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(delete, path = "/task/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    responses(
        (status = 204, description = "Cancelled: a queued task never runs, a running one is killed within 1 s"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already finished", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(task_id = %id))]
pub async fn cancel_task(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
) -> ApiResult<StatusCode> {
    state.tasks.cancel(me.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task/{id}", delete(cancel_task))
            .with_state(state),
    )
}
