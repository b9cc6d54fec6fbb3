//! `POST /login`.

use axum::Router;
use axum::extract::State;
use axum::routing::post;

use crate::dto::{Credentials, TokenResponse};
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(post, path = "/login", tag = "accounts", request_body = Credentials,
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let issued = state.accounts.login(&body.username, &body.password).await?;
    Ok(axum::Json(TokenResponse {
        token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
    }))
}

pub fn router(state: AppState) -> Router {
    super::finish(Router::new().route("/login", post(login)).with_state(state))
}
