//! Lambda function `webhooks`, fed by the webhook queue: calls the webhook of each ended
//! task `commit` handed on, with every try, timeout and pause a call is due (see
//! `webhooks::queued`); a message whose task could not be read is handed again.

use codebox_functions::webhooks::queued::SqsEvent;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    codebox_functions::telemetry::init_tracing();
    let (state, calls) = match codebox_functions::AppState::for_webhooks().await {
        Ok(built) => built,
        Err(e) => {
            eprintln!("codebox: {e}");
            std::process::exit(2);
        }
    };
    let tasks = state.tasks.clone();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (tasks, calls) = (tasks.clone(), calls.clone());
        async move {
            Ok::<_, lambda_http::Error>(
                codebox_functions::webhooks::queued::deliver(&calls, &tasks, event.payload).await,
            )
        }
    }))
    .await
}
