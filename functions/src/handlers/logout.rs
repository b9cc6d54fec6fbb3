//! `POST /logout`: revokes the token's session at once.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::extract::AuthUser;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(post, path = "/logout", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json")))]
pub async fn logout(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<StatusCode> {
    state.accounts.logout(&me).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/logout", post(logout))
            .with_state(state),
    )
}
