//! `POST /register`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::dto::{Credentials, UserCreated};
use crate::extract::{ClientAddr, JsonObject};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(post, path = "/register", tag = "accounts", request_body = Credentials,
    responses(
        (status = 201, description = "Registered", body = UserCreated),
        (status = 400, description = "Invalid username or password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations and logins from this address; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    JsonObject(body): JsonObject<Credentials>,
) -> ApiResult<(StatusCode, axum::Json<UserCreated>)> {
    state.limits.auth(&client).await?;
    let user = state
        .accounts
        .register(&body.username, &body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UserCreated {
            id: user.id,
            username: user.username,
            created_at: user.created_at,
        }),
    ))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/register", post(register))
            .with_state(state),
    )
}
