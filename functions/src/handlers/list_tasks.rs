//! `GET /task`: the caller's tasks, newest first, a page at a time.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::dto::{ListParams, TaskList};
use crate::extract::{AuthUser, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

pub const DEFAULT_LIMIT: usize = 50;

#[utoipa::path(get, path = "/task", tag = "tasks", security(("bearer" = [])), params(ListParams),
    responses(
        (status = 200, description = "A page of your tasks", body = TaskList),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json")))]
pub async fn list_tasks(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<TaskList>> {
    let page = state
        .tasks
        .list(
            me.user_id,
            params.limit.unwrap_or(DEFAULT_LIMIT),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(axum::Json(TaskList {
        items: page.items.iter().map(crate::dto::status_of).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task", get(list_tasks))
            .with_state(state),
    )
}
