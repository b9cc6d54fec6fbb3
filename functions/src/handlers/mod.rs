//! One module per handler, each with its own `router(state)`: a Lambda function
//! serves one of them, the local gateway serves them all.

pub mod cancel_task;
pub mod commit;
pub mod create_task;
pub mod get_result;
pub mod get_status;
pub mod get_task;
pub mod health;
pub mod judge0;
pub mod languages;
pub mod list_tasks;
pub mod login;
pub mod logout;
pub mod register;
pub mod root;
pub mod task_events;
pub mod upload;
pub mod webhook_key;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;

use crate::state::AppState;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 12 * 1024 * 1024;

/// The layers every handler's router gets, wherever it is hosted: body limit, panic
/// guard, request span and metrics.
pub fn finish(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(crate::telemetry::observe))
        .layer(CatchPanicLayer::custom(crate::problem::panic_response))
}

/// Every handler's router merged: the API without the documentation routes.
pub fn all(state: AppState) -> Router {
    Router::new()
        .merge(root::router(state.clone()))
        .merge(health::router(state.clone()))
        .merge(languages::router(state.clone()))
        .merge(register::router(state.clone()))
        .merge(login::router(state.clone()))
        .merge(logout::router(state.clone()))
        .merge(create_task::router(state.clone()))
        .merge(get_status::router(state.clone()))
        .merge(get_result::router(state.clone()))
        .merge(get_task::router(state.clone()))
        .merge(list_tasks::router(state.clone()))
        .merge(cancel_task::router(state.clone()))
        .merge(judge0::router(state.clone()))
        .merge(webhook_key::router(state.clone()))
        .merge(commit::router(state))
}
