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

/// Every route of the API in one router: what the local gateway and the embedded
/// default serve.
pub fn router(state: AppState) -> Router {
    handlers::all(state)
        .merge(openapi::router())
        .fallback(problem::not_found_fallback)
        .method_not_allowed_fallback(problem::method_not_allowed_fallback)
}
