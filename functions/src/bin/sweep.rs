//! Lambda function `sweep`, run once a minute by a schedule: the outbox sweeper. It
//! queues the tasks whose creating function died between storing and queueing them (see
//! `TaskService::sweep`); a task is never left `queued` without a message.

use codebox_core::tasks::{SWEEP_AFTER, SWEEP_BATCH};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    codebox_functions::telemetry::init_tracing();
    let state = match codebox_functions::AppState::for_function::<true, false>().await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("codebox: {e}");
            std::process::exit(2);
        }
    };
    let tasks = state.tasks.clone();
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let tasks = tasks.clone();
        async move {
            let published = tasks
                .sweep(SWEEP_AFTER, SWEEP_BATCH)
                .await
                .map_err(|e| lambda_http::Error::from(e.to_string()))?;
            Ok::<_, lambda_http::Error>(serde_json::json!({ "published": published }))
        }
    }))
    .await
}
