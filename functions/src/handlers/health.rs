//! `GET /health`: readiness of the store and the queue.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::dto::Health;
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "Store and queue answer", body = Health),
        (status = 503, description = "A part does not answer; `detail` names it", body = crate::problem::Problem,
            content_type = "application/problem+json")))]
pub async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    match state.tasks.ping().await {
        Ok(()) => Ok(axum::Json(Health {
            status: "ok".into(),
            checks: BTreeMap::from([
                ("store".to_owned(), "ok".to_owned()),
                ("queue".to_owned(), "ok".to_owned()),
            ]),
        })),
        Err((part, err)) => {
            tracing::warn!(part, error = %err, "health check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the {part} does not answer"),
            ))
        }
    }
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/health", get(health))
            .with_state(state),
    )
}
