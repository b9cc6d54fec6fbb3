//! Hosting one handler as an AWS Lambda function behind API Gateway (HTTP API, v2 events).

use axum::Router;

/// What a Lambda function serves: one handler's router with the API's fallbacks for
/// unknown routes and methods.
pub fn app(router: Router) -> Router {
    router
        .fallback(crate::problem::not_found_fallback)
        .method_not_allowed_fallback(crate::problem::method_not_allowed_fallback)
}

/// Serves `router` as this Lambda function, with CORS for `cors_origins`.
pub async fn serve(router: Router, cors_origins: &[String]) -> Result<(), lambda_http::Error> {
    let app = app(router);
    match crate::cors(cors_origins) {
        Some(layer) => lambda_http::run(app.layer(layer)).await,
        None => lambda_http::run(app).await,
    }
}

/// The `main` of a Lambda binary serving the handler module `$handler`: tracing, state
/// built once from the environment (a bad setting stops it with one line), then serve.
#[macro_export]
macro_rules! lambda_main {
    ($handler:ident) => {
        #[tokio::main]
        async fn main() -> Result<(), lambda_http::Error> {
            $crate::telemetry::init_tracing();
            let state = match $crate::AppState::for_function(stringify!($handler)).await {
                Ok(state) => state,
                Err(e) => {
                    eprintln!("codebox: {e}");
                    std::process::exit(2);
                }
            };
            let cors = state.cors_origins.clone();
            $crate::lambda::serve($crate::handlers::$handler::router(state), &cors).await
        }
    };
}
