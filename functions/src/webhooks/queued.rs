//! The `webhooks` function's work: a batch of the webhook queue's messages, each an ended
//! task whose webhook is due (handed on by `commit`), called side by side, every call
//! with its tries and pauses. A message whose task cannot be read now is reported failed,
//! so SQS hands it again after its visibility timeout; one that can never be acted on
//! (not a message of codebox's, a task gone or without a webhook) is dropped with a log
//! line. A call that failed every try is not tried again, as on Judge0.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use codebox_adapters::aws::webhook_queue::WebhookDue;
use codebox_core::tasks::TaskService;

use super::WebhookCalls;

/// Calls the webhooks of a batch; answers the messages to be handed again.
pub async fn deliver(
    calls: &WebhookCalls,
    tasks: &TaskService,
    event: SqsEvent,
) -> SqsBatchResponse {
    let again = futures::future::join_all(
        event
            .records
            .into_iter()
            .map(|message| deliver_one(calls, tasks, message)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for id in again.into_iter().flatten() {
        response.add_failure(id);
    }
    response
}

/// The id of `message` when it must be handed again.
async fn deliver_one(
    calls: &WebhookCalls,
    tasks: &TaskService,
    message: SqsMessage,
) -> Option<String> {
    let id = message.message_id.unwrap_or_default();
    let due: WebhookDue = match serde_json::from_str(message.body.as_deref().unwrap_or_default()) {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "not a message of the webhook queue; dropped");
            return None;
        }
    };
    match tasks.webhook_due(due.task).await {
        Ok(Some(task)) => {
            calls.call(&task).await;
            None
        }
        Ok(None) => {
            tracing::warn!(task_id = %due.task, "no webhook due for this task (gone, not ended or without one); dropped");
            None
        }
        Err(e) => {
            tracing::warn!(task_id = %due.task, error = %e, "the task of a due webhook could not be read; handed again");
            Some(id)
        }
    }
}
