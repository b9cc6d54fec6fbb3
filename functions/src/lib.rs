//! The codebox HTTP API as a library of small handlers, each with its own
//! `router(state)`, so that the same code runs as one Lambda function per handler
//! behind API Gateway and all together in the local gateway (`router`).

pub mod config;
pub mod dto;
pub mod extract;
pub mod handlers;
pub mod lambda;
pub mod openapi;
pub mod problem;
pub mod state;
pub mod telemetry;
pub mod webhooks;

pub use state::AppState;

use axum::Router;

/// Every route of the API in one router, with `GET /metrics`: what the embedded default
/// and a gateway without `METRICS_ADDR` serve.
pub fn router(state: AppState) -> Router {
    api_router(state).merge(metrics_router())
}

/// Every route of the API, without `GET /metrics` (served on a listener of its own).
pub fn api_router(state: AppState) -> Router {
    let cors = cors(&state.cors_origins);
    let router = handlers::all(state)
        .merge(openapi::router())
        .fallback(problem::not_found_fallback)
        .method_not_allowed_fallback(problem::method_not_allowed_fallback);
    match cors {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// CORS for the allowed origins (`CORS_ORIGINS`): preflights answered, the headers a
/// browser client needs allowed and exposed. No origin configured: no CORS headers, so
/// browsers keep other sites' pages out.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-auth-token"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// `GET /metrics` alone.
pub fn metrics_router() -> Router {
    telemetry::router().layer(axum::middleware::from_fn(telemetry::observe))
}
