//! `GET /status/{id}`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use codebox_core::domain::TaskId;

use crate::dto::TaskStatusView;
use crate::extract::{AuthUser, Path};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(get, path = "/status/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task's status", body = TaskStatusView),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json")))]
pub async fn get_status(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<TaskStatusView>> {
    let task = state.tasks.summary(me.user_id, id).await?;
    Ok(axum::Json(crate::dto::status_of(&task)))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/status/{id}", get(get_status))
            .with_state(state),
    )
}
