//! `GET /`: liveness.

use axum::Router;
use axum::routing::get;

use crate::dto::ServiceInfo;
use crate::state::AppState;

#[utoipa::path(get, path = "/", tag = "service",
    responses((status = 200, description = "The service is alive", body = ServiceInfo)))]
pub async fn root() -> axum::Json<ServiceInfo> {
    axum::Json(ServiceInfo {
        service: "codebox".into(),
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

pub fn router(_state: AppState) -> Router {
    super::finish(Router::new().route("/", get(root)))
}
