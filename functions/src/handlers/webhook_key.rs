//! `GET /webhook/key`: the key the caller's webhook calls are signed with. Each user has
//! their own (derived from the deployment's `WEBHOOK_SECRET` and the user's id, stored
//! nowhere), so a receiver that checks it takes calls made for its user alone.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::dto::WebhookKey;
use crate::extract::AuthUser;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// How a call is signed, as `GET /webhook/key` says it.
pub const SCHEME: &str = "X-Codebox-Signature: sha256=<hex HMAC-SHA256 of \"<X-Codebox-Timestamp>.<body>\" under the key>";

#[utoipa::path(get, path = "/webhook/key", tag = "tasks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Your key: a receiver computes the HMAC-SHA256 of the `X-Codebox-Timestamp` header, a dot and the body under it, compares it with `X-Codebox-Signature` (`sha256=<hex>`), and refuses a call whose timestamp is minutes old", body = WebhookKey),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "This deployment signs no webhook call (it has no `WEBHOOK_SECRET`)", body = Problem, content_type = "application/problem+json")))]
pub async fn webhook_key(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> ApiResult<axum::Json<WebhookKey>> {
    let key = state
        .webhooks
        .as_ref()
        .and_then(|w| w.key_for(me.user_id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "this deployment signs no webhook call (it has no WEBHOOK_SECRET)",
            )
        })?;
    Ok(axum::Json(WebhookKey {
        key,
        scheme: SCHEME.to_owned(),
    }))
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/webhook/key", get(webhook_key))
            .with_state(state),
    )
}
