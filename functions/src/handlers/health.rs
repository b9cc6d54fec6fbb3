//! `GET /health`: readiness of everything the API depends on: the task store, the
//! session store, the queue and the blob store.

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
        (status = 200, description = "The task store, the session store, the queue and the blob store answer", body = Health),
        (status = 503, description = "A part does not answer; `detail` names it", body = crate::problem::Problem,
            content_type = "application/problem+json")))]
pub async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    let checked = match state.tasks.ping().await {
        Ok(()) => state
            .accounts
            .ping()
            .await
            .map_err(|e| ("session store", e)),
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => Ok(axum::Json(Health {
            status: "ok".into(),
            checks: ["store", "sessions", "queue", "blobs"]
                .into_iter()
                .map(|part| (part.to_owned(), "ok".to_owned()))
                .collect::<BTreeMap<_, _>>(),
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
