//! `GET /languages`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use codebox_core::languages::Language;

use crate::state::AppState;

#[utoipa::path(get, path = "/languages", tag = "service",
    responses((status = 200, description = "The languages and the versions in the runner image",
        body = Vec<Language>)))]
pub async fn languages(State(state): State<AppState>) -> axum::Json<Vec<Language>> {
    axum::Json(state.languages.read().clone())
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/languages", get(languages))
            .with_state(state),
    )
}
