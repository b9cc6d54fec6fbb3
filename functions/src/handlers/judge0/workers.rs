//! `GET /judge0/workers` as Judge0 answers it, for the caller's share: Judge0 lists its
//! one queue's jobs and workers; here the queue is the caller's submissions waiting, the
//! workers the slots the caller may hold at once (the per-user running cap, else the
//! active cap), working those running now, and failed those a worker could not run.

use axum::extract::State;
use codebox_core::domain::TaskStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiResult;
use crate::state::AppState;

use super::Judge0User;

/// One queue, as Judge0 describes its own.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Judge0Workers)]
pub struct QueueWorkers {
    /// The queue's name: the Judge0 version.
    pub queue: &'static str,
    /// Your submissions waiting.
    pub size: usize,
    /// The slots you may hold at once.
    pub available: usize,
    /// Those of them free.
    pub idle: usize,
    /// Your submissions running.
    pub working: usize,
    /// Always 0: no slot is paused.
    pub paused: usize,
    /// Your submissions a worker could not run (an internal error).
    pub failed: usize,
}

#[utoipa::path(get, path = "/judge0/workers", tag = "judge0",
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "Your share of the workers, as Judge0 lists its queue (counted over your newest 1 000 submissions)", body = Vec<QueueWorkers>),
        (status = 401, description = "No valid token")))]
pub async fn workers(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
) -> ApiResult<axum::Json<Vec<QueueWorkers>>> {
    let listed = super::listing::submissions_of(&state, me.user_id).await?;
    let with = |status: TaskStatus| listed.iter().filter(|t| t.status == status).count();
    let (size, working, failed) = (
        with(TaskStatus::Queued),
        with(TaskStatus::Running),
        with(TaskStatus::Failed),
    );
    let limits = state.limits.config();
    let available = match limits.max_running_tasks {
        0 => limits.max_active_tasks,
        cap => cap,
    } as usize;
    Ok(axum::Json(vec![QueueWorkers {
        queue: super::VERSION,
        size,
        available,
        idle: available.saturating_sub(working),
        working,
        paused: 0,
        failed,
    }]))
}
