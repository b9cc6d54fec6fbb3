//! The `webhooks` function's work: a batch of the webhook queue's messages, each an ended
//! task whose webhook is due (handed on by `commit`), called side by side, every call
//! with its tries and pauses. A message whose task cannot be read now is reported failed,
//! so SQS hands it again after its visibility timeout; one that can never be acted on
//! (not a message of codebox's, a task gone or without a webhook) is dropped with a log
//! line. A call that failed every try is not tried again, as on Judge0.

use codebox_adapters::aws::webhook_queue::WebhookDue;
use codebox_core::tasks::TaskService;
use serde::{Deserialize, Serialize};

use super::WebhookCalls;

/// The SQS event Lambda hands the function: of each message, what it reads (the
/// id to report it by, the body).
#[derive(Debug, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SqsMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessage {
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub body: String,
}

/// The answer of a function with `ReportBatchItemFailures`: the messages to hand again.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

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
    SqsBatchResponse {
        batch_item_failures: again
            .into_iter()
            .flatten()
            .map(|item_identifier| BatchItemFailure { item_identifier })
            .collect(),
    }
}

/// The id of `message` when it must be handed again.
async fn deliver_one(
    calls: &WebhookCalls,
    tasks: &TaskService,
    message: SqsMessage,
) -> Option<String> {
    let id = message.message_id;
    let due: WebhookDue = match serde_json::from_str(&message.body) {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "not a message of the webhook queue; dropped");
            return None;
        }
    };
    match tasks.webhook_due(due.task).await {
        Ok(Some(task)) => match calls.call(&task).await {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(task_id = %due.task, error = %e, "a due webhook's call could not be made; handed again");
                Some(id)
            }
        },
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
