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

pub use state::AppState;

use axum::Router;

/// Every route of the API in one router, with `GET /metrics`: what the embedded default
/// and a gateway without `METRICS_ADDR` serve.
pub fn router(state: AppState) -> Router {
    api_router(state).merge(metrics_router())
}

/// Every route of the API, without `GET /metrics` (served on a listener of its own).
pub fn api_router(state: AppState) -> Router {
    handlers::all(state)
        .merge(openapi::router())
        .fallback(problem::not_found_fallback)
        .method_not_allowed_fallback(problem::method_not_allowed_fallback)
}

/// `GET /metrics` alone.
pub fn metrics_router() -> Router {
    telemetry::router().layer(axum::middleware::from_fn(telemetry::observe))
}
