//! Lambda function `health`: `GET /health` (readiness) and `GET /` (liveness).

use codebox_functions::{AppState, handlers, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init_tracing();
    let state = match AppState::for_function::<true, false>().await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("codebox: {e}");
            std::process::exit(2);
        }
    };
    let cors = state.cors_origins.clone();
    let app = handlers::health::router(state.clone()).merge(handlers::root::router(state));
    lambda::serve(app, &cors, None).await
}
