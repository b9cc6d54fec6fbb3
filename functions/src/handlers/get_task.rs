//! `GET /task/{id}`: status and, once finished, the result.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use codebox_core::domain::{Task, TaskId};

use crate::dto::{OutputEncoding, ResultParams, TaskView};
use crate::extract::{AuthUser, Path, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(get, path = "/task/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), ResultParams),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "Unknown query parameter or encoding", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The task is past its retention: what it stored has expired", body = Problem, content_type = "application/problem+json")))]
pub async fn get_task(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
    Query(params): Query<ResultParams>,
) -> ApiResult<axum::Json<TaskView>> {
    let task = state.tasks.get(me.user_id, id).await?;
    Ok(axum::Json(
        view(&state, &task, params.encoding.unwrap_or_default()).await?,
    ))
}

/// A task as `GET /task/{id}` shows it (also the answer of `POST /task?wait=true`).
pub async fn view(state: &AppState, task: &Task, encoding: OutputEncoding) -> ApiResult<TaskView> {
    let result = match &task.result {
        Some(r) if task.status.is_finished() => {
            let image = state.tasks.image_output(task).await?;
            Some(crate::dto::result_view(r, image.as_deref(), encoding))
        }
        _ => None,
    };
    Ok(TaskView {
        status: crate::dto::status_of(&task.summary()),
        result,
    })
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task/{id}", get(get_task))
            .with_state(state.clone())
            .merge(super::task_events::routes(state)),
    )
}
