//! `POST /login`.

use axum::Router;
use axum::extract::State;
use axum::routing::post;

use crate::dto::{Credentials, TokenResponse};
use crate::extract::{ClientAddr, JsonObject};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(post, path = "/login", tag = "accounts", request_body = Credentials,
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations and logins from this address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonObject(body): JsonObject<Credentials>,
) -> ApiResult<axum::Json<TokenResponse>> {
    state.limits.auth(&client).await?;
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
